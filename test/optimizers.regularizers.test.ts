// kernelRegularizer / biasRegularizer / depthwiseRegularizer: the penalty's gradient reaches the
// update and the penalty the logged loss, as in Keras. A Dense model's fit against float64
// training written out here (MSE gradient plus l1 * sign(w) + 2 * l2 * w; logged loss the
// batch-size-weighted mean of MSE plus penalty); Conv2D and DepthwiseConv2D against the same model
// without regularizers (one SGD step apart by exactly -lr times the penalty's gradient, evaluate
// apart by the penalty); configs through save -> load and from Keras.
import { describe, expect, test } from '@jest/globals';
import * as path from 'path';
import * as ck from '../lib';
import { randomArray, tmpDir, weightsOf } from '../test-support/helpers';
import * as ref from '../test-support/reference';

const IN = 4;
const OUT = 3;
const N = 20;
const BATCH = 8;  // steps of 8, 8 and 4 rows: the loss mean is weighted by rows, as Keras's
const KERNEL = IN * OUT;
const x0 = randomArray(N * IN, 21, -1, 1);
const y0 = randomArray(N * OUT, 22, -1, 1);
const kernel0 = randomArray(KERNEL, 23, -0.8, 0.8);
const bias0 = randomArray(OUT, 24, -0.5, 0.5);

const sign = (v: number) => (v > 0 ? 1 : v < 0 ? -1 : 0);
function penalty(w: ArrayLike<number>, l1: number, l2: number): number {
  let s = 0;
  for (let i = 0; i < w.length; i++) s += l1 * Math.abs(w[i]) + l2 * w[i] * w[i];
  return s;
}

const K = { l1: 0.01, l2: 0.05 };  // the kernel's l1l2
const B = { l2: 0.2 };             // the bias's l2

function regularizedDense(): ck.LayersModel {
  const model = ck.sequential([ck.layers.input({ shape: [IN] }), ck.layers.dense({
    units: OUT, kernelRegularizer: ck.regularizers.l1l2(K), biasRegularizer: ck.regularizers.l2(B),
  })]);
  model.setWeights([ck.tensor(kernel0, [IN, OUT]), ck.tensor(bias0, [OUT])]);
  model.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.2 }), loss: 'meanSquaredError', device: 'cpu' });
  return model;
}

/** Float64 SGD on MSE + penalties; returns the weights and each epoch's logged loss. */
function reference(epochs: number): { kernel: Float64Array; bias: Float64Array; losses: number[] } {
  const w = Float64Array.from([...kernel0, ...bias0]);
  const losses: number[] = [];
  for (let e = 0; e < epochs; e++) {
    let lossSum = 0;
    for (let start = 0; start < N; start += BATCH) {
      const rows = Math.min(BATCH, N - start);
      const g = new Float64Array(w.length);
      let mse = 0;
      for (let r = start; r < start + rows; r++) {
        for (let o = 0; o < OUT; o++) {
          let yHat = w[KERNEL + o];
          for (let i = 0; i < IN; i++) yHat += x0[r * IN + i] * w[i * OUT + o];
          const err = yHat - y0[r * OUT + o];
          mse += (err * err) / (rows * OUT);
          const dy = (2 * err) / (rows * OUT);
          for (let i = 0; i < IN; i++) g[i * OUT + o] += x0[r * IN + i] * dy;
          g[KERNEL + o] += dy;
        }
      }
      const kernel = w.subarray(0, KERNEL);
      const bias = w.subarray(KERNEL);
      lossSum += rows * (mse + penalty(kernel, K.l1, K.l2) + penalty(bias, 0, B.l2));
      for (let i = 0; i < KERNEL; i++) g[i] += K.l1 * sign(w[i]) + 2 * K.l2 * w[i];
      for (let o = 0; o < OUT; o++) g[KERNEL + o] += 2 * B.l2 * w[KERNEL + o];
      for (let i = 0; i < w.length; i++) w[i] -= 0.2 * g[i];
    }
    losses.push(lossSum / N);
  }
  return { kernel: w.slice(0, KERNEL), bias: w.slice(KERNEL), losses };
}

describe('Dense regularizers: fit against float64 training with the penalties', () => {
  const x = ck.tensor(x0, [N, IN]);
  const y = ck.tensor(y0, [N, OUT]);

  test('weights and the logged loss (penalty included, per-step mean weighted by rows)', async () => {
    const model = regularizedDense();
    const history = await model.fit(x, y, { epochs: 3, batchSize: BATCH, shuffle: false, verbose: 0 });
    const want = reference(3);
    const got = weightsOf(model);
    ref.expectClose(got[0], want.kernel, { rtol: 1e-4, atol: 1e-6, name: 'kernel' });
    ref.expectClose(got[1], want.bias, { rtol: 1e-4, atol: 1e-6, name: 'bias' });
    ref.expectClose(history.history.loss, want.losses, { rtol: 1e-5, atol: 1e-6, name: 'logged loss' });
  });

  test('evaluate\'s loss includes the penalty; a frozen layer\'s weights add none', async () => {
    const model = regularizedDense();
    const plain = ck.sequential([ck.layers.input({ shape: [IN] }), ck.layers.dense({ units: OUT })]);
    plain.setWeights([ck.tensor(kernel0, [IN, OUT]), ck.tensor(bias0, [OUT])]);
    plain.compile({ optimizer: 'sgd', loss: 'meanSquaredError', device: 'cpu' });
    const [withPenalty] = await model.evaluate(x, y, { batchSize: BATCH });
    const [without] = await plain.evaluate(x, y, { batchSize: BATCH });
    const expected = penalty(kernel0, K.l1, K.l2) + penalty(bias0, 0, B.l2);
    expect(expected).toBeGreaterThan(0.05);
    expect(Math.abs(withPenalty - without - expected)).toBeLessThan(1e-5);
    model.layers[1].trainable = false;
    const [frozen] = await model.evaluate(x, y, { batchSize: BATCH });
    expect(Math.abs(frozen - without)).toBeLessThan(1e-6);
  });
});

describe('Conv2D and DepthwiseConv2D: one SGD step moves the weights by -lr * the penalty gradient', () => {
  const H = 6;
  const C = 2;
  const xs = ck.tensor(randomArray(4 * H * H * C, 31, -1, 1), [4, H, H, C]);
  const ys = ck.tensor(randomArray(4 * 3, 32, 0, 1), [4, 3]);
  const build = (regularized: boolean) => {
    const reg = (r: ck.Regularizer) => (regularized ? r : null);
    const model = ck.sequential([
      ck.layers.input({ shape: [H, H, C] }),
      ck.layers.conv2d({ filters: 3, kernelSize: 3, kernelRegularizer: reg(ck.regularizers.l1({ l1: 0.03 })), biasRegularizer: reg(ck.regularizers.l2({ l2: 0.5 })) }),
      ck.layers.depthwiseConv2d({ kernelSize: 3, depthwiseRegularizer: reg(ck.regularizers.l1l2({ l1: 0.02, l2: 0.1 })) }),
      ck.layers.flatten(),
      ck.layers.dense({ units: 3 }),
    ]);
    return model;
  };

  test('weights and evaluate', async () => {
    const plain = build(false);
    const regularized = build(true);
    plain.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.1 }), loss: 'meanSquaredError', device: 'cpu' });
    regularized.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.1 }), loss: 'meanSquaredError', device: 'cpu' });
    // Non-zero biases, so that the bias penalty has a gradient to show.
    const start = plain.getWeights().map((w, i) => (i === 1 ? ck.tensor(randomArray(3, 33, -1, 1), [3]) : w));
    regularized.setWeights(start);
    plain.setWeights(start);
    const w0 = start.map((t) => t.dataSync().slice());
    const [lossPlain] = await plain.evaluate(xs, ys);
    const [lossReg] = await regularized.evaluate(xs, ys);
    const expected = penalty(w0[0], 0.03, 0) + penalty(w0[1], 0, 0.5) + penalty(w0[2], 0.02, 0.1);
    expect(Math.abs(lossReg - lossPlain - expected)).toBeLessThan(1e-5 * Math.max(1, expected));

    await plain.fit(xs, ys, { epochs: 1, batchSize: 4, verbose: 0 });
    await regularized.fit(xs, ys, { epochs: 1, batchSize: 4, verbose: 0 });
    const [a, b] = [weightsOf(plain), weightsOf(regularized)];
    const grads: Array<(w: number) => number> = [
      (w) => 0.03 * sign(w), (w) => 2 * 0.5 * w, (w) => 0.02 * sign(w) + 2 * 0.1 * w, () => 0, () => 0, () => 0,
    ];
    a.forEach((plainW, i) => {
      const want = Float64Array.from(plainW, (v, j) => v - 0.1 * grads[i](w0[i][j]));
      ref.expectClose(b[i], want, { rtol: 1e-5, atol: 1e-6, name: `weight ${i}` });
    });
  });
});

// With CUDA (a GPU, or the addon built on convkit's CUDA emulator): the device's penalties (loss
// and gradient, replayed step graphs included) against the CPU's float64 reference above.
describe('on CUDA', () => {
  test('fit and evaluate match the float64 reference', async () => {
    const model = ck.sequential([ck.layers.input({ shape: [IN] }), ck.layers.dense({
      units: OUT, kernelRegularizer: ck.regularizers.l1l2(K), biasRegularizer: ck.regularizers.l2(B),
    })]);
    const compile = () => model.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.2 }), loss: 'meanSquaredError', device: 'cuda' });
    if (!ck.cudaStatus().available) {
      expect(compile).toThrow(ck.DeviceError);
      return;
    }
    compile();
    model.setWeights([ck.tensor(kernel0, [IN, OUT]), ck.tensor(bias0, [OUT])]);
    const x = ck.tensor(x0, [N, IN]);
    const y = ck.tensor(y0, [N, OUT]);
    const [before] = await model.evaluate(x, y, { batchSize: BATCH });
    const history = await model.fit(x, y, { epochs: 3, batchSize: BATCH, shuffle: false, verbose: 0 });
    const want = reference(3);
    const got = weightsOf(model);
    ref.expectClose(got[0], want.kernel, { rtol: 1e-4, atol: 1e-6, name: 'kernel on cuda' });
    ref.expectClose(got[1], want.bias, { rtol: 1e-4, atol: 1e-6, name: 'bias on cuda' });
    ref.expectClose(history.history.loss, want.losses, { rtol: 1e-5, atol: 1e-6, name: 'logged loss on cuda' });
    const [onCpu] = await regularizedDense().evaluate(x, y, { batchSize: BATCH });  // checked against float64 above
    expect(Math.abs(before - onCpu)).toBeLessThan(1e-5);
  });
});

describe('configs', () => {
  test('getConfig, save -> load keep the regularizers; Keras\'s config form is read', async () => {
    const model = regularizedDense();
    const config = model.layers[1].getConfig();
    expect(config.kernelRegularizer).toEqual({ className: 'L1L2', config: { l1: 0.01, l2: 0.05 } });
    expect(config.biasRegularizer).toEqual({ className: 'L2', config: { l2: 0.2 } });
    const dir = path.join(tmpDir('regularizers'), 'model');
    await model.save(`file://${dir}`);
    const loaded = await ck.loadModel(`file://${dir}`);
    expect(loaded.layers[1].getConfig().kernelRegularizer).toEqual(config.kernelRegularizer);
    expect(loaded.layers[1].getConfig().biasRegularizer).toEqual(config.biasRegularizer);
    const keras = ck.layers.conv2d({ filters: 2, kernelSize: 1, kernelRegularizer: { class_name: 'L2', config: { l2: 0.03 } } as never });
    expect(keras.getConfig().kernelRegularizer).toEqual({ className: 'L2', config: { l2: 0.03 } });
    expect(ck.layers.dense({ units: 2, kernelRegularizer: 'l1' }).getConfig().kernelRegularizer).toEqual({ className: 'L1', config: { l1: 0.01 } });
  });

  const bad: Array<[string, () => unknown, RegExp]> = [
    ['a negative l2', () => ck.regularizers.l2({ l2: -1 }), /regularizers\.l2: l2 must be a finite number >= 0, got -1/],
    ['a misspelled option', () => ck.regularizers.l1l2({ L1: 0.1 } as never), /regularizers\.l1l2: unknown option 'L1'/],
    ['an unknown name', () => ck.layers.dense({ units: 2, kernelRegularizer: 'l3' as never, name: 'd' }), /^d: unknown kernelRegularizer 'l3' \(known: l1, l2, l1l2\)/],
    ['a number', () => ck.layers.conv2d({ filters: 2, kernelSize: 1, biasRegularizer: 0.1 as never, name: 'c' }), /^c: biasRegularizer must be ck\.regularizers/],
    ['an unknown class', () => ck.layers.depthwiseConv2d({ kernelSize: 1, depthwiseRegularizer: { className: 'Orthogonal', config: {} } as never, name: 'dw' }), /^dw: depthwiseRegularizer must be ck\.regularizers/],
  ];
  test.each(bad)('%s is a ValueError naming it', (_label, call, message) => {
    expect(call).toThrow(ck.ValueError);
    expect(call).toThrow(message);
  });
});
