// Keras's built-in metrics counted natively in the step and in evaluation: top-k categorical
// accuracy (and sparse), precision, recall and AUC (ROC and PR, every summation method). The
// reference is a plain-JS re-implementation of Keras 3's algorithms written out here (threshold
// list, confusion counts per threshold in float32 comparisons, AUC.result and
// interpolate_pr_auc) run on the model's predictions; the interpolated AUC is also checked
// against the exact ROC AUC (the Mann-Whitney statistic, ties counted half). Then the logs of fit
// (History, val_ logs, the progress line), multi-output names, save/load and errors.
import { describe, expect, jest, test } from '@jest/globals';
import * as ck from '../lib';
import { randomArray, tmpDir } from '../test-support/helpers';

const IN = 6;
const K = 4;
const N = 45;
const x0 = randomArray(N * IN, 81, -1, 1);
const kernel0 = randomArray(IN * K, 82, -1.5, 1.5);
const bias0 = randomArray(K, 83, -0.2, 0.2);
// Labels that agree with the model often but not always: every metric lands strictly inside (0, 1).
const ids = Array.from({ length: N }, (_, r) => (r % 3 === 0 ? (r * 7) % K : -1));
const oneHot = (labels: number[]) => labels.flatMap((c) => Array.from({ length: K }, (_, j) => (j === c ? 1 : 0)));

function classifier(loss: string, metrics: unknown[], outputs: 1 | 2 = 1): ck.LayersModel {
  const dense = ck.layers.dense({ units: K, name: 'dense' });
  const m = outputs === 1
    ? ck.sequential([ck.layers.input({ shape: [IN] }), dense, ck.layers.softmax({ name: 'probs' })])
    : (() => {
      const inp = ck.input({ shape: [IN] });
      const z = dense.apply(inp) as ck.SymbolicTensor;
      return ck.model({ inputs: inp, outputs: [ck.layers.softmax({ name: 'a' }).apply(z) as ck.SymbolicTensor, ck.layers.softmax({ name: 'b' }).apply(z) as ck.SymbolicTensor] });
    })();
  dense.setWeights([ck.tensor(kernel0, [IN, K]), ck.tensor(bias0, [K])]);
  m.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0 }), loss, metrics: metrics as ck.CompileArgs['metrics'] });
  return m;
}

/** The class ids: the model's own argmax where ids[r] < 0, so accuracy is neither 0 nor 1. */
function labelsFor(pred: Float32Array): number[] {
  return ids.map((id, r) => {
    if (id >= 0) return id;
    let best = 0;
    for (let c = 1; c < K; c++) if (pred[r * K + c] > pred[r * K + best]) best = c;
    return best;
  });
}

// ---- Keras 3's algorithms, written out ----

function kerasThresholds(num: number): number[] {
  const inner: number[] = [];
  for (let i = 0; i < num - 2; i++) inner.push((i + 1) * 1.0 / (num - 1));
  return [0.0 - 1e-7, ...inner, 1.0 + 1e-7].map(Math.fround);  // float32 variables in Keras
}

/** tp, fp, tn, fn per threshold over flattened predictions and labels (cast to bool). */
function confusion(pred: ArrayLike<number>, labels: ArrayLike<number>, thresholds: number[]) {
  return thresholds.map((t) => {
    const c = { tp: 0, fp: 0, tn: 0, fn: 0 };
    for (let i = 0; i < pred.length; i++) {
      const p = pred[i] > t, l = labels[i] !== 0;
      if (p && l) c.tp++; else if (p) c.fp++; else if (l) c.fn++; else c.tn++;
    }
    return c;
  });
}

const divNoNan = (a: number, b: number) => (b === 0 ? 0 : a / b);

function kerasAuc(pred: ArrayLike<number>, labels: ArrayLike<number>, num: number, curve: 'ROC' | 'PR', summation: string): number {
  const c = confusion(pred, labels, kerasThresholds(num));
  const tp = c.map((v) => v.tp), fp = c.map((v) => v.fp), tn = c.map((v) => v.tn), fn = c.map((v) => v.fn);
  const T = num;
  if (curve === 'PR' && summation === 'interpolation') {
    const dtp = tp.slice(0, T - 1).map((v, i) => v - tp[i + 1]);
    const p = tp.map((v, i) => v + fp[i]);
    const dp = p.slice(0, T - 1).map((v, i) => v - p[i + 1]);
    const precSlope = dtp.map((v, i) => divNoNan(v, Math.max(dp[i], 0)));
    const intercept = tp.slice(1).map((v, i) => v - precSlope[i] * p[i + 1]);
    const safePRatio = p.slice(0, T - 1).map((v, i) => (v > 0 && p[i + 1] > 0 ? divNoNan(v, Math.max(p[i + 1], 0)) : 1));
    const inc = precSlope.map((s, i) => divNoNan(s * (dtp[i] + intercept[i] * Math.log(safePRatio[i])), Math.max(tp[i + 1] + fn[i + 1], 0)));
    return inc.reduce((a, b) => a + b, 0);
  }
  const recall = tp.map((v, i) => divNoNan(v, v + fn[i]));
  let x: number[], y: number[];
  if (curve === 'ROC') {
    x = fp.map((v, i) => divNoNan(v, v + tn[i]));
    y = recall;
  } else {
    x = recall;
    y = tp.map((v, i) => divNoNan(v, v + fp[i]));
  }
  const heights = y.slice(0, T - 1).map((v, i) => (summation === 'interpolation' ? (v + y[i + 1]) / 2 : summation === 'minoring' ? Math.min(v, y[i + 1]) : Math.max(v, y[i + 1])));
  return heights.reduce((s, h, i) => s + (x[i] - x[i + 1]) * h, 0);
}

/** The exact ROC AUC: the share of (positive, negative) pairs ranked right, ties counted half. */
function exactRocAuc(pred: ArrayLike<number>, labels: ArrayLike<number>): number {
  let good = 0, pairs = 0;
  for (let i = 0; i < pred.length; i++) {
    if (labels[i] === 0) continue;
    for (let j = 0; j < pred.length; j++) {
      if (labels[j] !== 0) continue;
      pairs++;
      good += pred[i] > pred[j] ? 1 : pred[i] === pred[j] ? 0.5 : 0;
    }
  }
  return good / pairs;
}

/** tf.math.in_top_k: fewer than k classes with a strictly greater score than the target's. */
function topK(pred: Float32Array, labels: number[], k: number): number {
  let hits = 0;
  labels.forEach((c, r) => {
    let above = 0;
    for (let j = 0; j < K; j++) above += pred[r * K + j] > pred[r * K + c] ? 1 : 0;
    hits += above < k ? 1 : 0;
  });
  return hits / labels.length;
}

function precisionRecall(pred: ArrayLike<number>, labels: ArrayLike<number>, t: number) {
  const [c] = confusion(pred, labels, [Math.fround(t)]);
  return { precision: divNoNan(c.tp, c.tp + c.fp), recall: divNoNan(c.tp, c.tp + c.fn) };
}

const x = () => ck.tensor(x0, [N, IN]);
const metricList = () => [
  'accuracy', 'top_k_categorical_accuracy', ck.metrics.topKCategoricalAccuracy({ k: 2, name: 'top2' }), 'precision',
  ck.metrics.recall({ thresholds: 0.3 }), 'auc', ck.metrics.auc({ curve: 'PR', name: 'pr_auc' }),
  ck.metrics.auc({ numThresholds: 50, summationMethod: 'minoring', name: 'auc_min' }),
  ck.metrics.auc({ curve: 'PR', summationMethod: 'majoring', numThresholds: 30, name: 'pr_maj' }),
];

/** The reference values, in metricList's order, from predictions and labels. */
function reference(pred: Float32Array, labels: number[]): Record<string, number> {
  const y = oneHot(labels);
  return {
    top_k_categorical_accuracy: topK(pred, labels, 5),
    top2: topK(pred, labels, 2),
    precision: precisionRecall(pred, y, 0.5).precision,
    recall: precisionRecall(pred, y, 0.3).recall,
    auc: kerasAuc(pred, y, 200, 'ROC', 'interpolation'),
    pr_auc: kerasAuc(pred, y, 200, 'PR', 'interpolation'),
    auc_min: kerasAuc(pred, y, 50, 'ROC', 'minoring'),
    pr_maj: kerasAuc(pred, y, 30, 'PR', 'majoring'),
  };
}

describe('metrics against a re-implementation of Keras\'s algorithms', () => {
  test('evaluate, in batches that do not divide the data', async () => {
    const m = classifier('categoricalCrossentropy', metricList());
    const pred = (m.predict(x()) as ck.Tensor).dataSync();
    const labels = labelsFor(pred);
    const values = await m.evaluate(x(), ck.tensor(oneHot(labels), [N, K]), { batchSize: 7 });
    const want = reference(pred, labels);
    const names = ['top_k_categorical_accuracy', 'top2', 'precision', 'recall', 'auc', 'pr_auc', 'auc_min', 'pr_maj'];
    names.forEach((name, i) => {
      const got = values[2 + i];
      if (Math.abs(got - want[name]) > 1e-6) throw new Error(`${name}: got ${got}, Keras's algorithm gives ${want[name]}`);
    });
    // Every value strictly inside (0, 1), so none passes by being trivially 0 or 1.
    for (const name of names.filter((n) => n !== 'top_k_categorical_accuracy')) expect(want[name] > 0 && want[name] < 1).toBe(true);
    // Keras's 200-threshold interpolation is close to the exact ROC AUC.
    expect(Math.abs(values[6] - exactRocAuc(pred, oneHot(labels)))).toBeLessThan(0.01);
  });

  test('sparse top-k with class-id targets, k 1 to 4', async () => {
    const metrics = [1, 2, 3, 4].map((k) => ck.metrics.sparseTopKCategoricalAccuracy({ k, name: `top${k}` }));
    const m = classifier('sparseCategoricalCrossentropy', ['sparse_top_k_categorical_accuracy', ...metrics]);
    const pred = (m.predict(x()) as ck.Tensor).dataSync();
    const labels = labelsFor(pred);
    const values = await m.evaluate(x(), ck.tensor(labels, [N]), { batchSize: 8 });
    expect(values[1]).toBe(1);  // k = 5 >= 4 classes
    [1, 2, 3, 4].forEach((k, i) => expect(Math.abs(values[2 + i] - topK(pred, labels, k))).toBeLessThan(1e-12));
    expect(values[2]).toBeLessThan(values[3]);
  });
});

describe('fit logs them', () => {
  test('History and val_ logs under Keras\'s names (a rate of 0 keeps the weights, so the epoch\'s values are the data\'s)', async () => {
    const m = classifier('categoricalCrossentropy', metricList());
    const pred = (m.predict(x()) as ck.Tensor).dataSync();
    const labels = labelsFor(pred);
    const y = ck.tensor(oneHot(labels), [N, K]);
    const lines: string[] = [];
    const write = jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => { lines.push(String(s)); return true; });
    let history: ck.History;
    try {
      history = await m.fit(x(), y, { epochs: 2, batchSize: 10, verbose: 2, validationData: [x(), y] });
    } finally {
      write.mockRestore();
    }
    const want = reference(pred, labels);
    for (const [name, v] of Object.entries(want)) {
      expect(history.history[name]).toHaveLength(2);
      expect(Math.abs(history.history[name][1] - v)).toBeLessThan(1e-6);
      expect(Math.abs(history.history[`val_${name}`][1] - v)).toBeLessThan(1e-6);
    }
    const last = lines.filter((l) => l.includes('/step')).at(-1)!;
    for (const name of ['top_k_categorical_accuracy', 'top2', 'precision', 'recall', 'auc', 'pr_auc', 'val_auc']) expect(last).toContain(` - ${name}: `);
  });

  test('fitDataset counts them over the whole epoch, as fit does, and names val_ metrics of a validation dataset', async () => {
    const m = classifier('categoricalCrossentropy', metricList());
    const pred = (m.predict(x()) as ck.Tensor).dataSync();
    const labels = labelsFor(pred);
    const y = oneHot(labels);
    const batches = (size: number) => ck.data.array(Array.from({ length: Math.ceil(N / size) }, (_, b) => {
      const n = Math.min(size, N - b * size);
      return { xs: ck.tensor(x0.slice(b * size * IN, (b * size + n) * IN), [n, IN]), ys: ck.tensor(y.slice(b * size * K, (b * size + n) * K), [n, K]) };
    }));
    const history = await m.fitDataset(batches(10), { epochs: 1, verbose: 0, validationData: batches(45) });
    const want = reference(pred, labels);
    for (const [name, v] of Object.entries(want)) {
      expect(Math.abs(history.history[name][0] - v)).toBeLessThan(1e-6);
      // One validation batch: evaluateDataset's per-batch mean is the whole set's value.
      expect(Math.abs(history.history[`val_${name}`][0] - v)).toBeLessThan(1e-6);
    }
  });

  test('with several outputs, <output>_<metric> per output', async () => {
    const m = classifier('categoricalCrossentropy', ['auc', ck.metrics.precision()], 2);
    const [pa, pb] = (m.predict(x()) as unknown as ck.Tensor[]).map((t) => t.dataSync());
    const labels = labelsFor(pa);
    const ya = oneHot(labels), yb = oneHot(labels.map((c) => (c + 1) % K));
    const history = await m.fit(x(), [ck.tensor(ya, [N, K]), ck.tensor(yb, [N, K])], { epochs: 1, batchSize: 9, verbose: 0 });
    expect(Math.abs(history.history.a_auc[0] - kerasAuc(pa, ya, 200, 'ROC', 'interpolation'))).toBeLessThan(1e-6);
    expect(Math.abs(history.history.b_auc[0] - kerasAuc(pb, yb, 200, 'ROC', 'interpolation'))).toBeLessThan(1e-6);
    expect(Math.abs(history.history.b_precision[0] - precisionRecall(pb, yb, 0.5).precision)).toBeLessThan(1e-6);
  });
});

describe('classId: precision and recall of one class', () => {
  test("over that class's column only (Keras's class_id), in fit's logs and after a save and load", async () => {
    const m = classifier('categoricalCrossentropy', [ck.metrics.precision({ classId: 1 }), ck.metrics.recall({ classId: 2, thresholds: 0.3, name: 'recall_2' })]);
    const pred = (m.predict(x()) as ck.Tensor).dataSync();
    const labels = labelsFor(pred);
    const y = oneHot(labels);
    const column = (v: ArrayLike<number>, c: number) => Array.from({ length: N }, (_, r) => v[r * K + c]);
    const [, precision1, recall2] = await m.evaluate(x(), ck.tensor(y, [N, K]), { batchSize: 7 });
    const want1 = precisionRecall(column(pred, 1), column(y, 1), 0.5).precision;
    const want2 = precisionRecall(column(pred, 2), column(y, 2), 0.3).recall;
    expect(Math.abs(precision1 - want1)).toBeLessThan(1e-6);
    expect(Math.abs(recall2 - want2)).toBeLessThan(1e-6);
    // Not the value over every output: the column is what is counted.
    expect(Math.abs(want1 - precisionRecall(pred, y, 0.5).precision)).toBeGreaterThan(1e-3);
    const dir = tmpDir('ck-metrics-class');
    await m.save(`file://${dir}`);
    const loaded = await ck.loadModel(`file://${dir}`);
    expect(loaded.compiled!.metrics.map((v) => v.getConfig().class_id)).toEqual([1, 2]);
    expect(await loaded.evaluate(x(), ck.tensor(y, [N, K]), { batchSize: 7 })).toEqual(await m.evaluate(x(), ck.tensor(y, [N, K]), { batchSize: 7 }));
  });

  test('a classId the output does not have, or a bad one, is a ValueError', () => {
    expect(() => classifier('categoricalCrossentropy', [ck.metrics.precision({ classId: K })])).toThrow(new RegExp(`classId must be below the output's ${K} classes, got ${K}`));
    expect(() => ck.metrics.recall({ classId: -1 })).toThrow(/metrics\.recall: classId must be an integer >= 0, got -1/);
  });
});

describe('configs and errors', () => {
  test('a saved model keeps its metrics (Keras\'s { class_name, config }) and evaluates the same after loading', async () => {
    const m = classifier('categoricalCrossentropy', metricList());
    const pred = (m.predict(x()) as ck.Tensor).dataSync();
    const y = ck.tensor(oneHot(labelsFor(pred)), [N, K]);
    const dir = tmpDir('ck-metrics-save');
    await m.save(`file://${dir}`);
    const loaded = await ck.loadModel(`file://${dir}`);
    expect(loaded.compiled!.metrics.map((v) => v.name)).toEqual(m.compiled!.metrics.map((v) => v.name));
    expect(await loaded.evaluate(x(), y)).toEqual(await m.evaluate(x(), y));
  });

  test('targets in the wrong layout and bad options are ValueErrors naming the metric', () => {
    expect(() => classifier('sparseCategoricalCrossentropy', ['top_k_categorical_accuracy'])).toThrow(/top_k_categorical_accuracy needs one target per output value.*use sparse_top_k_categorical_accuracy/);
    expect(() => classifier('categoricalCrossentropy', ['sparse_top_k_categorical_accuracy'])).toThrow(/needs class-id targets/);
    expect(() => classifier('sparseCategoricalCrossentropy', ['auc'])).toThrow(/auc needs one target per output value/);
    expect(() => classifier('categoricalCrossentropy', ['auc', 'AUC'])).toThrow(/two metrics are named 'auc'/);
    expect(() => ck.metrics.auc({ curve: 'XY' as never })).toThrow(/metrics\.auc: curve must be 'ROC' or 'PR'/);
    expect(() => ck.metrics.auc({ numThresholds: 1 })).toThrow(/numThresholds must be an integer in \[2, 100000\], got 1/);
    expect(() => ck.metrics.topKCategoricalAccuracy({ k: 0 })).toThrow(/k must be an integer >= 1, got 0/);
    expect(() => ck.metrics.precision({ thresholds: [0.5, 1.7] })).toThrow(/thresholds must be a number or a non-empty list of numbers in \[0, 1\]/);
    expect(() => classifier('categoricalCrossentropy', ['f1'])).toThrow(ck.ValueError);
  });
});
