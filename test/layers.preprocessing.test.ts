// Keras's preprocessing layers Rescaling and Normalization: predict against TensorFlow.js's
// Rescaling and float64 loops written here, the input gradient (a dense kernel before the layer,
// one SGD step) against central finite differences of a float64 loss, adapt()'s statistics
// against float64 sums, the tfjs-format save/load round trip with Keras's weight names, and,
// with CUDA (a GPU or the emulator addon), the CUDA executor against the CPU.
import { describe, expect, test } from '@jest/globals';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import * as ck from '../lib';
import { randomArray } from '../test-support/helpers';
import { tfjsReady } from '../test-support/tfjs-io';

const L = ck.layers;
const [H, W, C] = [3, 4, 5];
const P = H * W;

function expectClose(name: string, got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol = 0): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const tol = atol + rtol * Math.abs(want[i]);
    if (!(Math.abs(got[i] - want[i]) <= tol)) throw new Error(`${name}[${i}]: got ${got[i]}, want ${want[i]} (tolerance ${tol})`);
  }
}

/** Keras's Normalization in float64: (x - mean[c]) / max(sqrt(variance[c]), 1e-7). */
function normalizeRef(x: ArrayLike<number>, mean: ArrayLike<number>, variance: ArrayLike<number>): Float64Array {
  const c = mean.length;
  return Float64Array.from(x, (v, i) => (v - mean[i % c]) / Math.max(Math.sqrt(variance[i % c]), 1e-7));
}

/**
 * The dense kernel's gradient of a mean squared error through `after` (float64), by central
 * differences, against what one SGD step (learning rate 1) moved it by.
 */
async function expectKernelGradient(layer: ck.Layer, after: (h: Float64Array) => Float64Array): Promise<void> {
  const n = 3;
  const x = randomArray(n * P * C, 81, -1, 1);
  const t = randomArray(n * P * C, 82, -1, 1);
  const kernel = randomArray(C * C, 83, -0.5, 0.5);
  const dense = L.dense({ units: C, useBias: false });
  const model = ck.sequential([L.input({ shape: [H, W, C] }), dense, layer]);
  dense.setWeights([ck.tensor(kernel, [C, C])]);
  model.compile({ optimizer: ck.optimizers.sgd({ learningRate: 1 }), loss: 'meanSquaredError' });
  await model.fit(ck.tensor(x, [n, H, W, C]), ck.tensor(t, [n, H, W, C]), { epochs: 1, batchSize: n, verbose: 0 });
  const moved = await dense.getWeights()[0].data();
  const loss = (k: ArrayLike<number>) => {
    const h = new Float64Array(n * P * C);
    for (let r = 0; r < n * P; r++) {
      for (let j = 0; j < C; j++) {
        let s = 0;
        for (let i = 0; i < C; i++) s += x[r * C + i] * k[i * C + j];
        h[r * C + j] = s;
      }
    }
    const y = after(h);
    let sum = 0;
    for (let i = 0; i < y.length; i++) sum += (y[i] - t[i]) ** 2;
    return sum / y.length;
  };
  const k = Float64Array.from(kernel);
  const grad = new Float64Array(k.length);
  for (let i = 0; i < k.length; i++) {
    const keep = k[i];
    k[i] = keep + 1e-5;
    const up = loss(k);
    k[i] = keep - 1e-5;
    const down = loss(k);
    k[i] = keep;
    grad[i] = (up - down) / 2e-5;
  }
  expectClose(`${layer.name} input gradient`, Float64Array.from(kernel, (v, i) => v - moved[i]), grad, 2e-5, 2e-3);
}

describe('Rescaling', () => {
  test('predict matches TensorFlow.js\'s Rescaling and a float64 loop', async () => {
    await tfjsReady();
    for (const [scale, offset] of [[1 / 255, 0], [1 / 127.5, -1], [-3, 0.25]]) {
      const model = ck.sequential([L.input({ shape: [H, W, C] }), L.rescaling({ scale, offset })]);
      const x = randomArray(2 * P * C, 80, 0, 255);
      const y = await (model.predict(ck.tensor(x, [2, H, W, C])) as ck.Tensor).data();
      expectClose('loop', y, Float64Array.from(x, (v) => v * scale + offset), 1e-6, 1e-6);
      const theirs = (tf.layers.rescaling({ scale, offset }).apply(tf.tensor(x, [2, H, W, C])) as tf.Tensor).dataSync();
      expectClose('tfjs', y, theirs, 1e-6, 1e-6);
    }
  });

  test('the gradient to its input is dy * scale (finite differences)', async () => {
    await expectKernelGradient(L.rescaling({ scale: -1.5, offset: 0.5 }), (h) => h.map((v) => v * -1.5 + 0.5));
  });

  test('saves and loads in the tfjs format, read by TensorFlow.js alike', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-rescaling-'));
    try {
      const model = ck.sequential([L.input({ shape: [H, W, C] }), L.rescaling({ scale: 0.5, offset: 2, name: 'scaled' })]);
      await model.save(`file://${dir}`);
      const saved = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8')).modelTopology.config.layers.at(-1);
      expect(saved.class_name).toBe('Rescaling');
      expect(saved.config).toMatchObject({ name: 'scaled', scale: 0.5, offset: 2 });
      const loaded = await ck.loadModel(`file://${dir}`);
      const x = ck.tensor(randomArray(P * C, 84, -2, 2), [1, H, W, C]);
      expect(Array.from(await (loaded.predict(x) as ck.Tensor).data())).toEqual(Array.from(await (model.predict(x) as ck.Tensor).data()));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('bad options: a ValueError naming the layer', () => {
    expect(() => L.rescaling({ scale: Number.NaN, name: 'r1' })).toThrow(/^r1: scale must be a finite number, got NaN/);
    expect(() => L.rescaling({ name: 'r2' } as never)).toThrow(/^r2: scale must be a finite number, got undefined/);
  });
});

describe('Normalization', () => {
  const mean = [0.5, -1, 2, 0, 3];
  const variance = [4, 0.25, 1, 0, 2];  // channel 3: variance 0 divides by Keras's epsilon 1e-7

  test('mean, variance and count are its non-trainable weights, by Keras\'s names (EfficientNet counts them)', () => {
    const layer = L.normalization({ name: 'norm' });
    ck.sequential([L.input({ shape: [H, W, C] }), layer]).build();
    expect(layer.countParams()).toBe(2 * C + 1);
    expect(layer.weightSpecs([H, W, C]).map((w) => [w.name, w.trainable])).toEqual([['mean', false], ['variance', false], ['count', false]]);
    expect(layer.getWeights().map((w) => w.shape)).toEqual([[C], [C], []]);
  });

  test('predict with fixed statistics matches a float64 loop, epsilon included', async () => {
    const model = ck.sequential([L.input({ shape: [H, W, C] }), L.normalization({ mean, variance })]);
    const x = randomArray(2 * P * C, 85, -3, 3);
    x[3] = 1e-6;  // channel 3 at 1e-6: divided by 1e-7, not by 0
    const y = await (model.predict(ck.tensor(x, [2, H, W, C])) as ck.Tensor).data();
    expectClose('normalization', y, normalizeRef(x, mean, variance), 1e-4, 1e-6);
    expect(y[3]).toBeCloseTo(10, 4);
  });

  test('adapt() sets mean, biased variance and count from data (float64 sums), before or after the build', async () => {
    const n = 7;
    const data = randomArray(n * P * C, 86, -2, 5);
    const rows = n * P;
    const wantMean = new Float64Array(C);
    const wantVar = new Float64Array(C);
    for (let i = 0; i < data.length; i++) wantMean[i % C] += data[i] / rows;
    for (let i = 0; i < data.length; i++) wantVar[i % C] += (data[i] - wantMean[i % C]) ** 2 / rows;
    const early = L.normalization();
    early.adapt(ck.tensor(data, [n, H, W, C]));
    const late = L.normalization();
    const model = ck.sequential([L.input({ shape: [H, W, C] }), late]);
    late.adapt(ck.tensor(data, [n, H, W, C]));
    for (const layer of [early, late]) {
      if (layer === early) ck.sequential([L.input({ shape: [H, W, C] }), early]).build();
      const [m, v, count] = await Promise.all(layer.getWeights().map((w) => w.data()));
      expectClose('mean', m, wantMean, 1e-5);
      expectClose('variance', v, wantVar, 1e-5, 1e-5);
      expect(Array.from(count)).toEqual([rows]);
    }
    const y = await (model.predict(ck.tensor(data, [n, H, W, C])) as ck.Tensor).data();
    expectClose('adapted predict', y, normalizeRef(data, wantMean, wantVar), 1e-4, 1e-4);
  });

  test('the gradient to its input is dy / max(sqrt(variance), 1e-7) (finite differences)', async () => {
    const v = [4, 0.25, 1, 0.5, 2];
    await expectKernelGradient(L.normalization({ mean, variance: v }), (h) => normalizeRef(h, mean, v));
  });

  test('saves and loads in the tfjs format: mean, variance and count by name', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-normalization-'));
    try {
      const layer = L.normalization({ name: 'norm' });
      const model = ck.sequential([L.input({ shape: [H, W, C] }), layer]);
      layer.adapt(ck.tensor(randomArray(4 * P * C, 87, -1, 3), [4, H, W, C]));
      await model.save(`file://${dir}`);
      const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
      expect(json.modelTopology.config.layers.at(-1).class_name).toBe('Normalization');
      expect(json.weightsManifest[0].weights.map((w: { name: string }) => w.name)).toEqual(['norm/mean', 'norm/variance', 'norm/count']);
      const loaded = await ck.loadModel(`file://${dir}`);
      const want = await Promise.all(model.getWeights().map((w) => w.data()));
      const got = await Promise.all(loaded.getWeights().map((w) => w.data()));
      expect(got.map((w) => Array.from(w))).toEqual(want.map((w) => Array.from(w)));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('bad options and data: errors naming the layer', () => {
    expect(() => L.normalization({ mean: [1], name: 'n1' })).toThrow(/^n1: give both mean and variance, or neither/);
    expect(() => L.normalization({ mean: 0, variance: -1, name: 'n2' })).toThrow(/^n2: variance must be >= 0, got -1/);
    expect(() => L.normalization({ axis: 1, name: 'n3' }).apply(ck.input({ shape: [4, 3] })))
      .toThrow(/^n3: only the last axis can be normalized \(axis -1 or 2 for input shape \(None, 4, 3\)\), got axis 1/);
    expect(() => ck.sequential([L.input({ shape: [3] }), L.normalization({ mean: [1, 2], variance: [1, 1], name: 'n4' })]).build())
      .toThrow(/^n4: mean has 2 values, the input has 3 channels/);
    expect(() => L.normalization({ name: 'n5' }).adapt([1, 2] as never)).toThrow(/^n5.adapt: data must be a non-empty tensor/);
  });
});

const cuda = ck.cudaStatus();
const onCuda = cuda.available ? describe : describe.skip;
onCuda(`on CUDA (against the CPU)${cuda.available ? '' : ` (skipped: ${cuda.reason})`}`, () => {
  test('fit and predict through Rescaling and Normalization match the CPU', async () => {
    const build = () => ck.sequential([L.input({ shape: [H, W, C] }), L.rescaling({ scale: 0.5, offset: -0.25 }),
      L.dense({ units: C }), L.normalization({ mean, variance: [1, 2, 0.5, 4, 0.25] }), L.flatten(), L.dense({ units: 2 })]);
    const mean = [0.1, -0.2, 0.3, 0, 0.5];
    const cpu = build();
    const gpu = build();
    gpu.setWeights(cpu.getWeights());
    const compile = { optimizer: ck.optimizers.sgd({ learningRate: 0.05 }), loss: 'meanSquaredError' as const };
    cpu.compile({ ...compile, device: 'cpu' });
    gpu.compile({ ...compile, device: 'cuda' });
    const x = ck.tensor(randomArray(8 * P * C, 88, -1, 1), [8, H, W, C]);
    const y = ck.tensor(randomArray(16, 89, -1, 1), [8, 2]);
    const hc = await cpu.fit(x, y, { epochs: 2, batchSize: 4, shuffle: false, verbose: 0 });
    const hg = await gpu.fit(x, y, { epochs: 2, batchSize: 4, shuffle: false, verbose: 0 });
    expectClose('loss', hg.history.loss as number[], hc.history.loss as number[], 1e-5, 1e-4);
    expectClose('predict', await (gpu.predict(x) as ck.Tensor).data(), await (cpu.predict(x) as ck.Tensor).data(), 1e-5, 1e-4);
  });
});
