// Keras's loss options and new losses, trained natively: categorical and sparse cross-entropy
// with fromLogits and labelSmoothing, binary cross-entropy from logits, Huber and KL divergence.
// One SGD step of a dense layer is checked against float64 losses written out here from Keras's
// definitions: the logged loss against the loss, the updated weights against a step along the
// loss's finite-difference gradient. Then names, configs, save/load and errors.
import { describe, expect, test } from '@jest/globals';
import * as fs from 'fs';
import * as path from 'path';
import * as ck from '../lib';
import { randomArray, tmpDir } from '../test-support/helpers';
import { expectClose } from '../test-support/reference';

const IN = 4;
const K = 5;
const N = 6;
const EPS = 1e-7;
const x0 = randomArray(N * IN, 71, -1, 1);
const kernel0 = randomArray(IN * K, 72, -1, 1);
const bias0 = randomArray(K, 73, -0.3, 0.3);
const ids = [0, 3, 4, 1, 3, 2];
const oneHot = ids.flatMap((c) => Array.from({ length: K }, (_, j) => (j === c ? 1 : 0)));
const soft = (() => {  // soft targets: rows of positive values summing to 1
  const r = randomArray(N * K, 74, 0.05, 1);
  const out: number[] = [];
  for (let i = 0; i < N; i++) {
    const row = Array.from(r.subarray(i * K, (i + 1) * K));
    const s = row.reduce((a, b) => a + b, 0);
    out.push(...row.map((v) => v / s));
  }
  return out;
})();
const regression = Array.from(randomArray(N * K, 75, -2, 2));

/** The dense layer's outputs in float64: x W + b. */
function logitsOf(w: ArrayLike<number>, b: ArrayLike<number>): number[][] {
  return Array.from({ length: N }, (_, r) => Array.from({ length: K }, (_, k) => {
    let s = b[k];
    for (let i = 0; i < IN; i++) s += x0[r * IN + i] * w[i * K + k];
    return s;
  }));
}

const softmax = (z: number[]) => {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
const clip = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;

/** Keras's cross-entropy of probability rows p against targets t smoothed by ls. */
function crossEntropy(p: number[][], t: number[][], ls: number): number {
  return mean(p.map((row, r) => -row.reduce((s, pc, c) => s + (t[r][c] * (1 - ls) + ls / K) * Math.log(clip(pc, EPS, 1 - EPS)), 0)));
}

const rows = (flat: number[]) => Array.from({ length: N }, (_, r) => flat.slice(r * K, (r + 1) * K));

interface Case {
  label: string;
  loss: string | ck.Loss;
  activation: 'linear' | 'softmax';
  y: () => ck.Tensor;
  /** The batch's mean loss in float64 from the dense layer's pre-activation outputs z. */
  ref: (z: number[][]) => number;
}

const cases: Case[] = [
  { label: 'categorical, fromLogits + labelSmoothing 0.1', loss: ck.losses.categoricalCrossentropy({ fromLogits: true, labelSmoothing: 0.1 }),
    activation: 'linear', y: () => ck.tensor(oneHot, [N, K]), ref: (z) => crossEntropy(z.map(softmax), rows(oneHot), 0.1) },
  { label: 'categorical on a softmax, labelSmoothing 0.2, soft targets', loss: ck.losses.categoricalCrossentropy({ labelSmoothing: 0.2 }),
    activation: 'softmax', y: () => ck.tensor(soft, [N, K]), ref: (z) => crossEntropy(z.map(softmax), rows(soft), 0.2) },
  { label: 'sparse, fromLogits + labelSmoothing 0.3', loss: ck.losses.sparseCategoricalCrossentropy({ fromLogits: true, labelSmoothing: 0.3 }),
    activation: 'linear', y: () => ck.tensor(ids, [N]), ref: (z) => crossEntropy(z.map(softmax), rows(oneHot), 0.3) },
  { label: 'sparse on a softmax, labelSmoothing 0.15', loss: ck.losses.sparseCategoricalCrossentropy({ labelSmoothing: 0.15 }),
    activation: 'softmax', y: () => ck.tensor(ids, [N]), ref: (z) => crossEntropy(z.map(softmax), rows(oneHot), 0.15) },
  { label: 'binary from logits', loss: ck.losses.binaryCrossentropy({ fromLogits: true }), activation: 'linear',
    y: () => ck.tensor(soft, [N, K]),
    ref: (z) => mean(z.map((row, r) => mean(row.map((v, c) => {
      const p = sigmoid(v), t = soft[r * K + c];
      return -(t * Math.log(p) + (1 - t) * Math.log(1 - p));
    })))) },
  { label: 'huber, delta 0.5', loss: ck.losses.huber({ delta: 0.5 }), activation: 'linear', y: () => ck.tensor(regression, [N, K]),
    ref: (z) => mean(z.map((row, r) => mean(row.map((v, c) => {
      const d = Math.abs(v - regression[r * K + c]);
      return d <= 0.5 ? 0.5 * d * d : 0.5 * (d - 0.25);
    })))) },
  { label: "huber by name ('huber', delta 1)", loss: 'huber', activation: 'linear', y: () => ck.tensor(regression, [N, K]),
    ref: (z) => mean(z.map((row, r) => mean(row.map((v, c) => {
      const d = Math.abs(v - regression[r * K + c]);
      return d <= 1 ? 0.5 * d * d : d - 0.5;
    })))) },
  { label: "KL divergence on a softmax ('kl_divergence')", loss: 'kl_divergence', activation: 'softmax', y: () => ck.tensor(soft, [N, K]),
    ref: (z) => mean(z.map(softmax).map((p, r) => p.reduce((s, pc, c) => {
      const t = clip(soft[r * K + c], EPS, 1);
      return s + t * Math.log(t / clip(pc, EPS, 1));
    }, 0))) },
];

function model(activation: 'linear' | 'softmax', loss: string | ck.Loss, lr: number): ck.LayersModel {
  const dense = ck.layers.dense({ units: K, name: 'dense' });
  const layers: ck.Layer[] = [ck.layers.input({ shape: [IN] }), dense];
  // A separate Softmax layer: the step folds it into the cross-entropy (from its logits).
  if (activation === 'softmax') layers.push(ck.layers.softmax());
  const m = ck.sequential(layers);
  dense.setWeights([ck.tensor(kernel0, [IN, K]), ck.tensor(bias0, [K])]);
  m.compile({ optimizer: ck.optimizers.sgd({ learningRate: lr }), loss });
  return m;
}

/** Central differences of the float64 loss over the kernel and the bias. */
function numericGradient(ref: (z: number[][]) => number): { w: number[]; b: number[] } {
  const h = 1e-6;
  const w = Array.from(kernel0, Number), b = Array.from(bias0, Number);
  const at = () => ref(logitsOf(w, b));
  const diff = (a: number[], i: number) => {
    const v = a[i];
    a[i] = v + h;
    const up = at();
    a[i] = v - h;
    const down = at();
    a[i] = v;
    return (up - down) / (2 * h);
  };
  return { w: w.map((_, i) => diff(w, i)), b: b.map((_, i) => diff(b, i)) };
}

describe('one SGD step against float64 losses and their finite-difference gradients', () => {
  test.each(cases)('$label', async (c) => {
    const lr = 0.5;
    const m = model(c.activation, c.loss, lr);
    const [loss] = await m.trainOnBatch(ck.tensor(x0, [N, IN]), c.y());
    const want = c.ref(logitsOf(kernel0, bias0));
    expect(Math.abs(loss - want)).toBeLessThan(1e-5 * Math.max(1, want));
    const g = numericGradient(c.ref);
    const [w, b] = m.getLayer('dense').getWeights().map((t) => t.dataSync());
    expectClose(w, g.w.map((gi, i) => kernel0[i] - lr * gi), { atol: 2e-6, rtol: 1e-5, name: `${c.label} kernel` });
    expectClose(b, g.b.map((gi, i) => bias0[i] - lr * gi), { atol: 2e-6, rtol: 1e-5, name: `${c.label} bias` });
  });

  test('cross-entropy from probabilities (a softmax the loss cannot fold: it reads the model input) smooths the labels too', async () => {
    const m = ck.sequential([ck.layers.input({ shape: [K] }), ck.layers.softmax()]);
    m.compile({ optimizer: 'sgd', loss: ck.losses.categoricalCrossentropy({ labelSmoothing: 0.3 }) });
    const z = Array.from(randomArray(N * K, 76, -3, 3));
    const [loss] = await m.evaluate(ck.tensor(z, [N, K]), ck.tensor(oneHot, [N, K]));
    const want = crossEntropy(rows(z).map(softmax), rows(oneHot), 0.3);
    expect(Math.abs(loss - want)).toBeLessThan(1e-5 * want);
  });

  test('labelSmoothing changes the step (0.1 is not 0)', async () => {
    const a = model('linear', ck.losses.categoricalCrossentropy({ fromLogits: true, labelSmoothing: 0.1 }), 0.5);
    const b = model('linear', ck.losses.categoricalCrossentropy({ fromLogits: true }), 0.5);
    const y = ck.tensor(oneHot, [N, K]);
    const [la] = await a.trainOnBatch(ck.tensor(x0, [N, IN]), y);
    const [lb] = await b.trainOnBatch(ck.tensor(x0, [N, IN]), y);
    expect(Math.abs(la - lb)).toBeGreaterThan(1e-3);
  });
});

describe('names, configs, saving', () => {
  test('Keras names and class names resolve; the config is Keras\'s', () => {
    for (const name of ['huber', 'huber_loss', 'Huber', 'kld', 'kl_divergence', 'KLDivergence', 'kullback_leibler_divergence']) {
      const m = model('softmax', name, 0.1);
      expect(m.compiled!.loss.name).toBe(name.toLowerCase().startsWith('hub') ? 'huber' : 'kld');
    }
    expect(ck.losses.categoricalCrossentropy({ fromLogits: true, labelSmoothing: 0.1 }).getConfig()).toEqual({
      name: 'categorical_crossentropy', reduction: 'sum_over_batch_size', from_logits: true, label_smoothing: 0.1,
    });
    expect(ck.losses.huber({ delta: 2 }).getConfig()).toEqual({ name: 'huber_loss', reduction: 'sum_over_batch_size', delta: 2 });
  });

  test('bad options are ValueErrors naming the loss and the option', () => {
    expect(() => ck.losses.huber({ delta: 0 })).toThrow(/losses\.huber: delta must be a finite number > 0, got 0/);
    expect(() => ck.losses.categoricalCrossentropy({ labelSmoothing: 1.5 })).toThrow(/labelSmoothing must be a number in \[0, 1\], got 1\.5/);
    expect(() => ck.losses.binaryCrossentropy({ labelSmoothing: 0.1 } as never)).toThrow(/losses\.binaryCrossentropy: unknown option 'labelSmoothing' \(known: fromLogits\)/);
    expect(() => model('linear', 'hubber', 0.1)).toThrow(ck.ValueError);
  });

  test('a saved model keeps its loss options (Keras\'s { class_name, config }) and trains the same after loading', async () => {
    const loss = ck.losses.sparseCategoricalCrossentropy({ fromLogits: true, labelSmoothing: 0.25 });
    const m = model('linear', loss, 0.5);
    const dir = tmpDir('ck-loss-save');
    await m.save(`file://${dir}`);
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
    expect(json.trainingConfig.loss).toEqual({ class_name: 'SparseCategoricalCrossentropy', config: loss.getConfig() });
    const loaded = await ck.loadModel(`file://${dir}`);
    expect(loaded.compiled!.loss.labelSmoothing).toBe(0.25);
    expect(loaded.compiled!.loss.fromLogits).toBe(true);
    const y = ck.tensor(ids, [N]);
    const [a] = await m.trainOnBatch(ck.tensor(x0, [N, IN]), y);
    const [b] = await loaded.trainOnBatch(ck.tensor(x0, [N, IN]), y);
    expect(b).toBe(a);
    // Defaults save as the plain name, as before.
    const plain = model('linear', 'huber', 0.1);
    const dir2 = tmpDir('ck-loss-save');
    await plain.save(`file://${dir2}`);
    expect(JSON.parse(fs.readFileSync(path.join(dir2, 'model.json'), 'utf8')).trainingConfig.loss).toBe('huber');
  });
});
