// Precision and recall with Keras's top_k and threshold lists, and the confusion matrix, counted
// natively in fit and evaluate. The references are written out here in plain loops on the model's
// own predictions: Keras 3's _filter_top_k (each row's k largest kept, the lower column first
// among equal values; the rest become NEG_INF = -1e10) followed by the confusion counts at float32
// thresholds, and tf.math.confusion_matrix of the labels' and predictions' argmax. Ties are real:
// a ReLU output has many exact zeros. On CUDA (a GPU, or the addon built on the CUDA emulator) the
// same models give the same counts exactly.
import { describe, expect, test } from '@jest/globals';
import * as ck from '../lib';
import { metricOf, metricToJson } from '../lib/metrics';
import { randomArray } from '../test-support/helpers';

const IN = 6;
const K = 5;
const N = 37;
const x0 = randomArray(N * IN, 71, -1, 1);
const kernel0 = randomArray(IN * K, 72, -1, 1);
const bias0 = randomArray(K, 73, -0.3, 0.3);
// Multi-hot targets (about 2 of 5 set per row), and class ids for the matrix.
const multiHot = Array.from(randomArray(N * K, 74, 0, 1), (v) => (v < 0.4 ? 1 : 0));
const ids = Array.from({ length: N }, (_, r) => (r * 7 + (r % 3)) % K);
const oneHot = ids.flatMap((c) => Array.from({ length: K }, (_, j) => (j === c ? 1 : 0)));

const cuda = ck.cudaStatus();
const devices: ('cpu' | 'cuda')[] = cuda.available ? ['cpu', 'cuda'] : ['cpu'];

/** A dense layer over fixed weights, then `head` (relu: many tied zeros); learning rate 0. */
function model(head: 'relu' | 'softmax' | 'sigmoid', loss: string, metrics: unknown[], device: 'cpu' | 'cuda' = 'cpu', units = K): ck.LayersModel {
  const dense = ck.layers.dense({ units, name: 'dense' });
  const m = ck.sequential([ck.layers.input({ shape: [IN] }), dense, head === 'softmax' ? ck.layers.softmax() : ck.layers.activation({ activation: head })]);
  dense.setWeights([ck.tensor(kernel0.slice(0, IN * units), [IN, units]), ck.tensor(bias0.slice(0, units), [units])]);
  m.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0 }), loss, metrics: metrics as ck.CompileArgs['metrics'], device });
  return m;
}

const x = () => ck.tensor(x0, [N, IN]);

// ---- the references ----

/** Keras's _filter_top_k on each row of [rows, cols]. */
function filterTopK(pred: ArrayLike<number>, cols: number, k: number): number[] {
  const out: number[] = [];
  for (let r = 0; r * cols < pred.length; r++) {
    const row = Array.from({ length: cols }, (_, c) => pred[r * cols + c]);
    // Sorted by value, descending; equal values keep their column order (a stable sort).
    const order = row.map((v, c) => ({ v, c })).sort((a, b) => b.v - a.v).map(({ c }) => c);
    const kept = new Set(order.slice(0, k));
    row.forEach((v, c) => out.push(kept.has(c) ? v : -1e10));
  }
  return out;
}

/** tp, fp, fn at one threshold over the values (every column, or classId's). */
function counts(pred: number[], labels: ArrayLike<number>, cols: number, threshold: number, classId: number | null) {
  const t = Math.fround(threshold);
  const c = { tp: 0, fp: 0, fn: 0 };
  for (let i = 0; i < pred.length; i++) {
    if (classId !== null && i % cols !== classId) continue;
    const p = pred[i] > t, l = labels[i] !== 0;
    if (p && l) c.tp++; else if (p) c.fp++; else if (l) c.fn++;
  }
  return c;
}

const ratio = (a: number, b: number) => (b === 0 ? 0 : a / b);

function precisionRecall(pred: ArrayLike<number>, labels: ArrayLike<number>, cols: number, o: { topK?: number; thresholds?: number[]; classId?: number }) {
  const filtered = o.topK ? filterTopK(pred, cols, o.topK) : Array.from(pred);
  const ths = o.thresholds ?? [o.topK ? -1e10 : 0.5];
  const cs = ths.map((t) => counts(filtered, labels, cols, t, o.classId ?? null));
  return { precision: cs.map((c) => ratio(c.tp, c.tp + c.fp)), recall: cs.map((c) => ratio(c.tp, c.tp + c.fn)) };
}

const argmax = (v: ArrayLike<number>, r: number, cols: number) => {
  let best = 0;
  for (let c = 1; c < cols; c++) if (v[r * cols + c] > v[r * cols + best]) best = c;
  return best;
};

/** tf.math.confusion_matrix(labels, predictions, numClasses). */
function confusionMatrix(labels: number[], predictions: number[], n: number): number[][] {
  const m = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  labels.forEach((t, i) => { m[t][predictions[i]] += 1; });
  return m;
}

describe('precision and recall with topK (Keras top_k)', () => {
  test.each(devices)('each row\'s top k predictions count, ties to the lower column, at the default threshold -1e10 (%s)', async (device) => {
    const metrics = [
      ck.metrics.precision({ topK: 2 }), ck.metrics.recall({ topK: 2 }),
      ck.metrics.precision({ topK: 3, classId: 1, name: 'p3_class1' }), ck.metrics.recall({ topK: 1, thresholds: 0.2, name: 'r1_at_0.2' }),
    ];
    const m = model('relu', 'meanSquaredError', metrics, device);
    const pred = (m.predict(x()) as ck.Tensor).dataSync();
    // The ReLU's zeros tie: without the tie rule the top k would differ.
    let zeros = 0;
    for (let r = 0; r < N; r++) {
      let z = 0;
      for (let c = 0; c < K; c++) z += pred[r * K + c] === 0 ? 1 : 0;
      if (z >= K - 1) zeros++;
    }
    expect(zeros).toBeGreaterThan(2);
    const want = {
      precision: precisionRecall(pred, multiHot, K, { topK: 2 }).precision[0],
      recall: precisionRecall(pred, multiHot, K, { topK: 2 }).recall[0],
      p3_class1: precisionRecall(pred, multiHot, K, { topK: 3, classId: 1 }).precision[0],
      'r1_at_0.2': precisionRecall(pred, multiHot, K, { topK: 1, thresholds: [0.2] }).recall[0],
    };
    // Not what the unfiltered counts give: the filter matters.
    expect(want.precision).not.toBeCloseTo(precisionRecall(pred, multiHot, K, {}).precision[0], 3);
    const y = ck.tensor(multiHot, [N, K]);
    const got = await m.evaluate(x(), y, { batchSize: 8 });
    expect(got.slice(1)).toEqual([want.precision, want.recall, want.p3_class1, want['r1_at_0.2']].map((v) => expect.closeTo(v, 12)));
    expect(metrics[0].result()).toBeCloseTo(want.precision, 12);
    // fit's logs count the same (learning rate 0: the weights stay).
    const h = await m.fit(x(), y, { epochs: 1, batchSize: 10, verbose: 0 });
    for (const [name, v] of Object.entries(want)) expect(h.history[name][0]).toBeCloseTo(v, 12);
  });

  test.each(devices)('a list of thresholds gives one value per threshold, in the order given, logged as <name>_<threshold> (%s)', async (device) => {
    const p = ck.metrics.precision({ thresholds: [0.6, 0.2, 0.4] });
    const r = ck.metrics.recall({ thresholds: [0.6, 0.2, 0.4], topK: 3 });
    const m = model('relu', 'meanSquaredError', [p, r], device);
    const pred = (m.predict(x()) as ck.Tensor).dataSync();
    const ths = [0.6, 0.2, 0.4];
    const wantP = precisionRecall(pred, multiHot, K, { thresholds: ths }).precision;
    const wantR = precisionRecall(pred, multiHot, K, { thresholds: ths, topK: 3 }).recall;
    expect(new Set(wantP.map((v) => v.toFixed(6))).size).toBe(3);  // the thresholds differ in effect
    const y = ck.tensor(multiHot, [N, K]);
    const h = await m.fit(x(), y, { epochs: 1, batchSize: 16, verbose: 0, validationData: [x(), y] });
    const keys = ['precision_0.6', 'precision_0.2', 'precision_0.4', 'recall_0.6', 'recall_0.2', 'recall_0.4'];
    expect(Object.keys(h.history)).toEqual(['loss', ...keys, 'val_loss', ...keys.map((k) => `val_${k}`)]);
    [...wantP, ...wantR].forEach((v, i) => {
      expect(h.history[keys[i]][0]).toBeCloseTo(v, 12);
      expect(h.history[`val_${keys[i]}`][0]).toBeCloseTo(v, 12);
    });
    expect(p.result()).toEqual(wantP.map((v) => expect.closeTo(v, 12)));
    expect((await m.evaluate(x(), y)).slice(1)).toEqual([...wantP, ...wantR].map((v) => expect.closeTo(v, 12)));
  });

  test('configs save as Keras\'s (thresholds as given, top_k) and read back; bad options are ValueErrors', () => {
    const p = ck.metrics.precision({ topK: 2, classId: 1 });
    expect(p.getConfig()).toEqual({ name: 'precision', thresholds: null, top_k: 2, class_id: 1 });
    const back = metricOf(metricToJson(p))!;
    expect(back.native).toEqual(p.native);
    expect(back.native).toEqual({ kind: 'confusion', thresholds: [-1e10], classId: 1, topK: 2 });
    const list = metricOf(metricToJson(ck.metrics.recall({ thresholds: [0.7, 0.1] })))!;
    expect(list.native).toEqual({ kind: 'confusion', thresholds: [0.1, 0.7] });
    expect(list.getConfig().thresholds).toEqual([0.7, 0.1]);
    expect(() => ck.metrics.precision({ topK: 0 })).toThrow(/metrics\.precision: topK must be an integer >= 1, got 0/);
    expect(() => ck.metrics.recall({ thresholds: [0.5, 1.5] })).toThrow(/thresholds must be a number or a non-empty list of numbers in \[0, 1\]/);
    expect(() => ck.metrics.recall({ thresholds: [] })).toThrow(ck.ValueError);
    expect(() => model('relu', 'meanSquaredError', [ck.metrics.precision({ topK: K + 1 })])).toThrow(/topK must be at most the output's 5 classes, got 6/);
  });
});

describe('the confusion matrix (tf.math.confusion_matrix, rows true, columns predicted)', () => {
  test.each(devices)('over evaluate and fit, class-id and one-hot targets (%s)', async (device) => {
    const targets = { sparseCategoricalCrossentropy: (n: number) => ck.tensor(ids.slice(0, n), [n]), categoricalCrossentropy: (n: number) => ck.tensor(oneHot.slice(0, n * K), [n, K]) };
    for (const [loss, y] of Object.entries(targets)) {
      const cm = ck.metrics.confusionMatrix({ numClasses: K });
      const m = model('softmax', loss, ['accuracy', cm], device);
      expect(cm.result()).toBeNull();
      const pred = (m.predict(x()) as ck.Tensor).dataSync();
      const want = confusionMatrix(ids, ids.map((_, r) => argmax(pred, r, K)), K);
      // Neither all right nor all wrong.
      const trace = want.reduce((s, row, i) => s + row[i], 0);
      expect(trace > 0 && trace < N).toBe(true);
      const [, accuracy] = await m.evaluate(x(), y(N), { batchSize: 8 });
      expect(cm.result()).toEqual(want);
      expect(accuracy).toBeCloseTo(trace / N, 12);
      // fit: the epoch's rows (learning rate 0), the matrix not among the logs.
      const half = Math.floor(N / 2);
      const h = await m.fit(ck.tensor(x0.slice(0, half * IN), [half, IN]), y(half), { epochs: 1, batchSize: 4, verbose: 0 });
      expect(Object.keys(h.history)).toEqual(['loss', 'accuracy']);
      expect(cm.result()).toEqual(confusionMatrix(ids.slice(0, half), ids.slice(0, half).map((_, r) => argmax(pred, r, K)), K));
    }
  });

  test.each(devices)('one sigmoid column is two classes, thresholded at 0.5 (%s)', async (device) => {
    const cm = ck.metrics.confusionMatrix({ numClasses: 2, name: 'cm' });
    const m = model('sigmoid', 'binaryCrossentropy', [cm], device, 1);
    const pred = (m.predict(x()) as ck.Tensor).dataSync();
    const labels = ids.map((c) => (c % 2));
    await m.evaluate(x(), ck.tensor(labels, [N, 1]), { batchSize: 16 });
    const want = confusionMatrix(labels, Array.from(pred, (p) => (p > 0.5 ? 1 : 0)), 2);
    expect(want[0][1] + want[1][0]).toBeGreaterThan(0);
    expect(cm.result()).toEqual(want);
  });

  test('numClasses must be the output\'s classes; the config reads back', () => {
    expect(() => model('softmax', 'categoricalCrossentropy', [ck.metrics.confusionMatrix({ numClasses: 4 })])).toThrow(/confusionMatrix's numClasses must be the output's 5 classes, got 4/);
    expect(() => ck.metrics.confusionMatrix({} as never)).toThrow(/metrics\.confusionMatrix: numClasses must be an integer in \[2, 4096\], got undefined/);
    const back = metricOf(metricToJson(ck.metrics.confusionMatrix({ numClasses: 3, name: 'cm' })))!;
    expect(back.native).toEqual({ kind: 'confusionMatrix', numClasses: 3 });
    expect(back.name).toBe('cm');
  });
});
