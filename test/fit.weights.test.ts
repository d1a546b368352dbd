// fit's classWeight and sampleWeight (Keras's semantics: each row's loss times its weight, then
// the mean over the batch): class weights against the same data with each row repeated weight
// times (the same update once the learning rate absorbs the batch-size ratio), sample weights
// against float64 training written out here, evaluate and val_loss against float64 losses, the
// argument checks, and CUDA (a GPU or the emulator addon) against the CPU.
import { describe, expect, test } from '@jest/globals';
import * as ck from '../lib';
import { randomArray, weightsOf } from '../test-support/helpers';
import * as ref from '../test-support/reference';

const IN = 5;
const CLASSES = 3;
const N = 12;
const x0 = randomArray(N * IN, 51, -1, 1);
const labels = Array.from({ length: N }, (_, r) => (r * 7) % CLASSES);
const kernel0 = randomArray(IN * CLASSES, 52, -0.5, 0.5);
const bias0 = randomArray(CLASSES, 53, -0.1, 0.1);
const classWeight = { 0: 2, 2: 3 };  // class 1 keeps weight 1
const weightOf = (label: number) => (classWeight as Record<number, number>)[label] ?? 1;

function classifier(lr: number, activation: 'softmax' | 'sigmoid', units = CLASSES, device: 'cpu' | 'cuda' = 'cpu'): ck.LayersModel {
  const model = ck.sequential([ck.layers.input({ shape: [IN] }), ck.layers.dense({ units, activation })]);
  model.setWeights([ck.tensor(kernel0.slice(0, IN * units), [IN, units]), ck.tensor(bias0.slice(0, units), [units])]);
  const loss = activation === 'sigmoid' ? 'binaryCrossentropy' : 'sparseCategoricalCrossentropy';
  model.compile({ optimizer: ck.optimizers.sgd({ learningRate: lr }), loss, device });
  return model;
}

/** The rows of x and y each repeated weightOf(its class) times. */
function duplicated(classOf: (r: number) => number, yRow: (r: number) => number[]) {
  const xs: number[] = [];
  const ys: number[] = [];
  for (let r = 0; r < N; r++) {
    for (let k = 0; k < weightOf(classOf(r)); k++) {
      xs.push(...x0.slice(r * IN, (r + 1) * IN));
      ys.push(...yRow(r));
    }
  }
  return { xs, ys, n: xs.length / IN };
}

describe('classWeight equals repeating each row weight times', () => {
  const cases = [
    { label: 'sparse labels', activation: 'softmax' as const, units: CLASSES, loss: 'sparseCategoricalCrossentropy',
      y: (r: number) => [labels[r]], classOf: (r: number) => labels[r], shape: (n: number) => [n] },
    { label: 'one-hot labels (argmax)', activation: 'softmax' as const, units: CLASSES, loss: 'categoricalCrossentropy',
      y: (r: number) => [0, 1, 2].map((c) => (c === labels[r] ? 1 : 0)), classOf: (r: number) => labels[r], shape: (n: number) => [n, CLASSES] },
    { label: 'binary targets (rounded)', activation: 'sigmoid' as const, units: 1, loss: 'binaryCrossentropy',
      y: (r: number) => [labels[r] === 0 ? 0.9 : 0.2], classOf: (r: number) => (labels[r] === 0 ? 1 : 0), shape: (n: number) => [n, 1] },
  ];
  test.each(cases)('$label', async (c) => {
    const lr = 0.1;
    const model = classifier(lr, c.activation, c.units);
    model.compile({ optimizer: ck.optimizers.sgd({ learningRate: lr }), loss: c.loss, device: 'cpu' });
    const y = ck.tensor(Array.from({ length: N }, (_, r) => c.y(r)).flat(), c.shape(N));
    const weighted = await model.fit(ck.tensor(x0, [N, IN]), y, { epochs: 3, batchSize: N, shuffle: false, verbose: 0, classWeight });

    const dup = duplicated(c.classOf, c.y);
    expect(dup.n).toBeGreaterThan(N);
    // Keras's mean over the batch: (1/N) sum w*l against (1/N') sum l over the repeats.
    const repeated = classifier(lr * dup.n / N, c.activation, c.units);
    repeated.compile({ optimizer: ck.optimizers.sgd({ learningRate: lr * dup.n / N }), loss: c.loss, device: 'cpu' });
    const plain = await repeated.fit(ck.tensor(dup.xs, [dup.n, IN]), ck.tensor(dup.ys, c.shape(dup.n)), { epochs: 3, batchSize: dup.n, shuffle: false, verbose: 0 });

    const [a, b] = [weightsOf(model), weightsOf(repeated)];
    ref.expectClose(a[0], b[0], { rtol: 1e-5, atol: 1e-6, name: 'kernel' });
    ref.expectClose(a[1], b[1], { rtol: 1e-5, atol: 1e-6, name: 'bias' });
    ref.expectClose(weighted.history.loss, plain.history.loss.map((l) => (l * dup.n) / N), { rtol: 1e-5, atol: 1e-7, name: 'loss' });
  });
});

describe('sampleWeight', () => {
  const OUT = 2;
  const y0 = randomArray(N * OUT, 54, -1, 1);
  const sw = Array.from(randomArray(N, 55, 0, 2));
  const linear = () => {
    const model = ck.sequential([ck.layers.input({ shape: [IN] }), ck.layers.dense({ units: OUT })]);
    model.setWeights([ck.tensor(kernel0.slice(0, IN * OUT), [IN, OUT]), ck.tensor(bias0.slice(0, OUT), [OUT])]);
    model.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.1 }), loss: 'meanSquaredError', device: 'cpu' });
    return model;
  };
  /** Per-row MSE of y = x W + b in float64, and the weighted mean over `rows`. */
  const weightedMse = (w: Float64Array, rows: number[]) => {
    let sum = 0;
    for (const r of rows) {
      let l = 0;
      for (let o = 0; o < OUT; o++) {
        let yHat = w[IN * OUT + o];
        for (let i = 0; i < IN; i++) yHat += x0[r * IN + i] * w[i * OUT + o];
        l += (yHat - y0[r * OUT + o]) ** 2 / OUT;
      }
      sum += sw[r] * l;
    }
    return sum / rows.length;
  };

  test('fit: batches of 4 against float64 weighted training; weights as a tensor, an array or a Float32Array', async () => {
    const w = Float64Array.from([...kernel0.slice(0, IN * OUT), ...bias0.slice(0, OUT)]);
    const losses: number[] = [];
    for (let e = 0; e < 2; e++) {
      let lossSum = 0;
      for (let start = 0; start < N; start += 4) {
        const g = new Float64Array(w.length);
        lossSum += 4 * weightedMse(w, [0, 1, 2, 3].map((k) => start + k));
        for (let r = start; r < start + 4; r++) {
          for (let o = 0; o < OUT; o++) {
            let yHat = w[IN * OUT + o];
            for (let i = 0; i < IN; i++) yHat += x0[r * IN + i] * w[i * OUT + o];
            const dy = (sw[r] * 2 * (yHat - y0[r * OUT + o])) / (4 * OUT);
            for (let i = 0; i < IN; i++) g[i * OUT + o] += x0[r * IN + i] * dy;
            g[IN * OUT + o] += dy;
          }
        }
        for (let i = 0; i < w.length; i++) w[i] -= 0.1 * g[i];
      }
      losses.push(lossSum / N);
    }
    for (const sampleWeight of [ck.tensor(sw, [N]), sw, Float32Array.from(sw)]) {
      const model = linear();
      const h = await model.fit(ck.tensor(x0, [N, IN]), ck.tensor(y0, [N, OUT]), { epochs: 2, batchSize: 4, shuffle: false, verbose: 0, sampleWeight });
      const got = weightsOf(model);
      ref.expectClose([...got[0], ...got[1]], w, { rtol: 1e-5, atol: 1e-6, name: 'weights' });
      ref.expectClose(h.history.loss, losses, { rtol: 1e-5, atol: 1e-7, name: 'loss' });
    }
  });

  test('evaluate and a validationSplit\'s val_loss weigh each example\'s loss', async () => {
    const model = linear();
    const w = Float64Array.from([...kernel0.slice(0, IN * OUT), ...bias0.slice(0, OUT)]);
    const all = Array.from({ length: N }, (_, r) => r);
    const [loss] = await model.evaluate(ck.tensor(x0, [N, IN]), ck.tensor(y0, [N, OUT]), { sampleWeight: sw, batchSize: 5 });
    expect(Math.abs(loss - weightedMse(w, all))).toBeLessThan(1e-6);
    const [unweighted] = await model.evaluate(ck.tensor(x0, [N, IN]), ck.tensor(y0, [N, OUT]));
    expect(Math.abs(loss - unweighted)).toBeGreaterThan(1e-4);  // the weights matter (100x the tolerance)
    // lr 0: the weights stay, so val_loss is the weighted loss of the last quarter at the start.
    model.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0 }), loss: 'meanSquaredError', device: 'cpu' });
    const h = await model.fit(ck.tensor(x0, [N, IN]), ck.tensor(y0, [N, OUT]), { epochs: 1, batchSize: 4, validationSplit: 0.25, verbose: 0, sampleWeight: sw });
    expect(Math.abs(h.history.val_loss[0] - weightedMse(w, [9, 10, 11]))).toBeLessThan(1e-6);
  });

  test('a spatial output: every pixel row of an example takes its weight', async () => {
    const H = 3;
    const model = ck.sequential([ck.layers.input({ shape: [H, H, 2] }), ck.layers.conv2d({ filters: 2, kernelSize: 1 })]);
    model.compile({ optimizer: 'sgd', loss: 'meanSquaredError', device: 'cpu' });
    const xs = ck.tensor(randomArray(N * H * H * 2, 56, -1, 1), [N, H, H, 2]);
    const target = randomArray(N * H * H * 2, 57, -1, 1);
    const pred = (model.predict(xs) as ck.Tensor).dataSync();
    let sum = 0;
    for (let i = 0; i < pred.length; i++) sum += (sw[Math.floor(i / (H * H * 2))] * (pred[i] - target[i]) ** 2) / 2;
    const [loss] = await model.evaluate(xs, ck.tensor(target, [N, H, H, 2]), { sampleWeight: sw, batchSize: 5 });
    expect(Math.abs(loss - sum / (N * H * H))).toBeLessThan(1e-6);
  });

  const x = ck.tensor(x0, [N, IN]);
  const bad: Array<[string, Record<string, unknown>, RegExp]> = [
    ['both', { classWeight: { 0: 1 }, sampleWeight: sw }, /classWeight and sampleWeight cannot both be given/],
    ['too few weights', { sampleWeight: sw.slice(1) }, /sampleWeight has 11 weights for 12 examples/],
    ['a [N, 1] tensor', { sampleWeight: ck.tensor(sw, [N, 1]) }, /sampleWeight must be \[12\] \(one weight per example\), got \[12, 1\]/],
    ['a negative weight', { sampleWeight: sw.map((v, i) => (i === 3 ? -1 : v)) }, /sampleWeight must be finite numbers >= 0, got -1 at index 3/],
    ['a class name as key', { classWeight: { cat: 2 } }, /classWeight keys must be class ids \(integers >= 0\), got 'cat'/],
    ['a NaN class weight', { classWeight: { 1: NaN } }, /classWeight\[1\] must be a finite number >= 0, got NaN/],
  ];
  test.each(bad)('%s is a typed error naming the option', async (_label, args, message) => {
    const model = linear();
    await expect(model.fit(x, ck.tensor(y0, [N, OUT]), { verbose: 0, ...args })).rejects.toThrow(message);
  });
});

describe('class weights on CUDA match the CPU', () => {
  test('three epochs of three steps (step graphs replay the weighted steps)', async () => {
    const y = ck.tensor(labels, [N]);
    if (!ck.cudaStatus().available) {
      expect(() => classifier(0.1, 'softmax', CLASSES, 'cuda')).toThrow(ck.DeviceError);
      return;
    }
    const gpu = classifier(0.1, 'softmax', CLASSES, 'cuda');
    const cpu = classifier(0.1, 'softmax', CLASSES, 'cpu');
    const args = { epochs: 3, batchSize: 4, shuffle: false, verbose: 0 as const, classWeight, validationSplit: 0.25 };
    const hg = await gpu.fit(ck.tensor(x0, [N, IN]), y, args);
    const hc = await cpu.fit(ck.tensor(x0, [N, IN]), y, args);
    const [a, b] = [weightsOf(gpu), weightsOf(cpu)];
    ref.expectClose(a[0], b[0], { rtol: 1e-5, atol: 1e-6, name: 'kernel on cuda' });
    ref.expectClose(hg.history.loss, hc.history.loss, { rtol: 1e-5, atol: 1e-6, name: 'loss on cuda' });
    ref.expectClose(hg.history.val_loss, hc.history.val_loss, { rtol: 1e-5, atol: 1e-6, name: 'val_loss on cuda' });
  });
});
