// LayerNormalization and GroupNormalization: predict against float64 loops written here, one
// SGD step's updates (the dense kernel before the norm: the norm's input gradient; gamma, beta)
// against central finite differences of a float64 loss, Keras's numbers for small fixed cases
// worked out by hand, the config checks, the tfjs-format save/load round trip (LayerNormalization
// also read by TensorFlow.js), ONNX export run in onnxruntime, and, with CUDA (a GPU or the
// emulator addon), the CUDA executor against the CPU.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ck from '../lib';
import { randomArray } from '../test-support/helpers';
import { OnnxRuntime } from '../test-support/onnxruntime';
import * as tf from '@tensorflow/tfjs';
import { readArtifacts, tfjsReady } from '../test-support/tfjs-io';

const L = ck.layers;
const EPS = 1e-3;

/** y of a normalization over x [n, positions, channels] in `groups` groups (a layer norm: groups 0). */
function normRef(x: ArrayLike<number>, n: number, positions: number, c: number, groups: number,
  gamma: ArrayLike<number> | null, beta: ArrayLike<number> | null, eps = EPS): Float64Array {
  const y = new Float64Array(n * positions * c);
  // A layer norm is one group of all channels per position.
  const units: number[][] = [];
  for (let e = 0; e < n; e++) {
    if (groups === 0) {
      for (let p = 0; p < positions; p++) units.push(Array.from({ length: c }, (_, k) => (e * positions + p) * c + k));
    } else {
      const cg = c / groups;
      for (let g = 0; g < groups; g++) {
        const idx: number[] = [];
        for (let p = 0; p < positions; p++) for (let k = g * cg; k < (g + 1) * cg; k++) idx.push((e * positions + p) * c + k);
        units.push(idx);
      }
    }
  }
  for (const idx of units) {
    let mean = 0;
    for (const i of idx) mean += x[i];
    mean /= idx.length;
    let v = 0;
    for (const i of idx) v += (x[i] - mean) ** 2;
    v /= idx.length;
    for (const i of idx) {
      const k = i % c;
      y[i] = (x[i] - mean) / Math.sqrt(v + eps) * (gamma ? gamma[k] : 1) + (beta ? beta[k] : 0);
    }
  }
  return y;
}

function expectClose(name: string, got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol = 0): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const tol = atol + rtol * Math.abs(want[i]);
    if (!(Math.abs(got[i] - want[i]) <= tol)) throw new Error(`${name}[${i}]: got ${got[i]}, want ${want[i]} (tolerance ${tol})`);
  }
}

type Kind = 'layer' | 'group';
const normLayer = (kind: Kind, args: Record<string, unknown> = {}) =>
  kind === 'layer' ? L.layerNormalization(args) : L.groupNormalization({ groups: 3, ...args });

describe.each([
  ['layer', 0],
  ['group', 3],
] as [Kind, number][])('%sNormalization', (kind, groups) => {
  const [H, W, C] = [3, 4, 6];
  const P = H * W;

  test('predict matches float64 loops (random gamma and beta, center / scale off)', async () => {
    for (const opts of [{}, { center: false }, { scale: false }]) {
      const model = ck.sequential([L.input({ shape: [H, W, C] }), normLayer(kind, opts)]);
      const layer = model.layers.at(-1)!;
      const weights = layer.getWeights().map((w, k) => ck.tensor(randomArray(w.size, 70 + k, 0.5, 2), [...w.shape]));
      layer.setWeights(weights);
      const gamma = 'scale' in opts ? null : await weights[0].data();
      const beta = 'center' in opts ? null : await weights[weights.length - 1].data();
      const n = 5;
      const x = randomArray(n * P * C, 71, -3, 6);
      const y = await (model.predict(ck.tensor(x, [n, H, W, C])) as ck.Tensor).data();
      expectClose(`${kind} ${JSON.stringify(opts)}`, y, normRef(x, n, P, C, groups, gamma, beta), 1e-5, 1e-5);
    }
  });

  test.each([false, true])('one SGD step moves the weights by the gradients of a float64 loss (finite differences), norm frozen: %s', async (frozen) => {
    // dense (no bias) -> norm, mean squared error: the dense kernel's gradient goes through the
    // norm's input gradient.
    const n = 4;
    const x = randomArray(n * P * C, 72, -1, 1);
    const t = randomArray(n * P * C, 73, -1, 1);
    const kernel = randomArray(C * C, 74, -0.5, 0.5);
    const gamma = randomArray(C, 75, 0.5, 1.5);
    const beta = randomArray(C, 76, -0.5, 0.5);
    const model = ck.sequential([L.input({ shape: [H, W, C] }), L.dense({ units: C, useBias: false }), normLayer(kind)]);
    model.setWeights([ck.tensor(kernel, [C, C]), ck.tensor(gamma, [C]), ck.tensor(beta, [C])]);
    // Frozen, the norm keeps gamma and beta but still normalizes by the batch's statistics (as
    // Keras): the kernel's gradient goes through the full backward.
    if (frozen) model.layers.at(-1)!.trainable = false;
    model.compile({ optimizer: ck.optimizers.sgd({ learningRate: 1 }), loss: 'meanSquaredError' });
    await model.fit(ck.tensor(x, [n, H, W, C]), ck.tensor(t, [n, H, W, C]), { epochs: 1, batchSize: n, verbose: 0 });
    const after = await Promise.all(model.getWeights().map((w) => w.data()));

    // Keras's mean squared error: per example the mean over its values, then the batch mean.
    const loss = (k: ArrayLike<number>, g: ArrayLike<number>, b: ArrayLike<number>) => {
      const h = new Float64Array(n * P * C);
      for (let r = 0; r < n * P; r++) {
        for (let j = 0; j < C; j++) {
          let s = 0;
          for (let i = 0; i < C; i++) s += x[r * C + i] * k[i * C + j];
          h[r * C + j] = s;
        }
      }
      const y = normRef(h, n, P, C, groups, g, b);
      let sum = 0;
      for (let i = 0; i < y.length; i++) sum += (y[i] - t[i]) ** 2;
      return sum / y.length;
    };
    const params = [Float64Array.from(kernel), Float64Array.from(gamma), Float64Array.from(beta)];
    const names = ['kernel (the norm\'s input gradient)', 'gamma', 'beta'];
    params.forEach((p, which) => {
      const grad = new Float64Array(p.length);
      for (let i = 0; i < p.length; i++) {
        const keep = p[i];
        p[i] = keep + 1e-5;
        const up = loss(params[0], params[1], params[2]);
        p[i] = keep - 1e-5;
        const down = loss(params[0], params[1], params[2]);
        p[i] = keep;
        grad[i] = (up - down) / 2e-5;
      }
      const moved = Float64Array.from(p, (v, i) => v - after[which][i]);
      expectClose(`${kind} ${names[which]} gradient`, moved, frozen && which > 0 ? new Float64Array(p.length) : grad, 2e-5, 2e-3);
    });
  });

  test('saves and loads in the tfjs format (config and gamma/beta by Keras\'s names)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-norm-'));
    try {
      const model = ck.sequential([L.input({ shape: [H, W, C] }), normLayer(kind, { epsilon: 0.01, center: false })]);
      model.layers.at(-1)!.setWeights([ck.tensor(randomArray(C, 77, 0.5, 2), [C])]);
      await model.save(`file://${dir}`);
      const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
      const saved = json.modelTopology.config.layers.at(-1);
      expect(saved.class_name).toBe(kind === 'layer' ? 'LayerNormalization' : 'GroupNormalization');
      expect(saved.config).toMatchObject({ epsilon: 0.01, center: false, scale: true, axis: -1, ...(kind === 'group' ? { groups: 3 } : {}) });
      expect(json.weightsManifest[0].weights.map((w: { name: string }) => w.name)).toEqual([`${model.layers.at(-1)!.name}/gamma`]);
      const loaded = await ck.loadModel(`file://${dir}`);
      const x = ck.tensor(randomArray(2 * P * C, 78, -2, 2), [2, H, W, C]);
      const want = await (model.predict(x) as ck.Tensor).data();
      expect(Array.from(await (loaded.predict(x) as ck.Tensor).data())).toEqual(Array.from(want));
      if (kind === 'layer') {
        // TensorFlow.js (which has no GroupNormalization) reads the same layer and computes the same.
        await tfjsReady();
        const tfModel = await tf.loadLayersModel({ load: async () => readArtifacts(dir) });
        const theirs = (tfModel.predict(tf.tensor(await x.data(), [2, H, W, C])) as tf.Tensor).dataSync();
        expectClose('tfjs layer norm', theirs, want, 1e-5, 1e-5);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Keras\'s numbers, worked out by hand', () => {
  test('LayerNormalization of [1, 2, 3, 4] with gamma 2 and beta 0.5', async () => {
    // mean 2.5, biased variance (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25, epsilon 1e-3:
    // (x - 2.5) / sqrt(1.251) = -1.3411045, -0.4470348, 0.4470348, 1.3411045; then * 2 + 0.5.
    const model = ck.sequential([L.input({ shape: [4] }), L.layerNormalization()]);
    model.setWeights([ck.tensor([2, 2, 2, 2], [4]), ck.tensor([0.5, 0.5, 0.5, 0.5], [4])]);
    const y = await (model.predict(ck.tensor([1, 2, 3, 4], [1, 4])) as ck.Tensor).data();
    expectClose('layer norm', y, [-2.1822090, -0.3940696, 1.3940696, 3.1822090], 1e-6);
  });

  test('GroupNormalization, groups 2, of two positions [1, 2, 3, 4] and [5, 6, 7, 9]', async () => {
    // group 0 holds channels 0-1 at both positions: {1, 2, 5, 6}, mean 3.5, variance 4.25;
    // group 1: {3, 4, 7, 9}, mean 5.75, variance 5.6875; each (x - mean) / sqrt(variance + 1e-3).
    const model = ck.sequential([L.input({ shape: [2, 4] }), L.groupNormalization({ groups: 2 })]);
    const y = await (model.predict(ck.tensor([1, 2, 3, 4, 5, 6, 7, 9], [1, 2, 4])) as ck.Tensor).data();
    expectClose('group norm', y, [-1.2125355, -0.7275213, -1.1530120, -0.7337349, 0.7275213, 1.2125355, 0.5240963, 1.3626505], 1e-6);
  });

  test('the defaults are Keras\'s: epsilon 1e-3, center and scale on, 32 groups', () => {
    const ln = L.layerNormalization();
    const gn = L.groupNormalization();
    expect([ln.epsilon, ln.center, ln.scale, ln.axis]).toEqual([1e-3, true, true, -1]);
    expect([gn.epsilon, gn.groups]).toEqual([1e-3, 32]);
  });
});

describe('config checks', () => {
  test('groups must divide the channels: a ValueError naming the layer, the channels and groups', () => {
    expect(() => L.groupNormalization({ groups: 4, name: 'gn' }).apply(ck.input({ shape: [4, 4, 6] })))
      .toThrow(new ck.ValueError('gn: groups must divide the 6 channels of the last axis, got groups 4'));
    expect(() => L.groupNormalization({ name: 'gn32' }).apply(ck.input({ shape: [6] })))
      .toThrow(/gn32: groups must divide the 6 channels of the last axis, got groups 32/);
  });

  test('groups must be a positive integer', () => {
    expect(() => L.groupNormalization({ groups: 0, name: 'g0' })).toThrow(new ck.ValueError('g0: groups must be a positive integer, got 0'));
    expect(() => L.groupNormalization({ groups: 1.5, name: 'g1' })).toThrow(ck.ValueError);
  });

  test('only the last axis: another axis is a ValueError giving the ones allowed', () => {
    expect(() => L.layerNormalization({ axis: 1, name: 'ln' }).apply(ck.input({ shape: [4, 6] })))
      .toThrow(new ck.ValueError('ln: only the last axis can be normalized (axis -1 or 2 for input shape (None, 4, 6)), got axis 1'));
    // axis 2 is the last axis of (None, 4, 6), counting the batch axis as Keras does.
    expect(() => L.layerNormalization({ axis: 2 }).apply(ck.input({ shape: [4, 6] }))).not.toThrow();
    expect(() => L.groupNormalization({ groups: 2, axis: -2, name: 'gn' }).apply(ck.input({ shape: [4, 6] }))).toThrow(/gn: only the last axis/);
  });

  test('epsilon must be > 0; regularizers and constraints are refused', () => {
    expect(() => L.layerNormalization({ epsilon: 0, name: 'ln' })).toThrow(new ck.ValueError('ln: epsilon must be a number > 0, got 0'));
    expect(() => L.layerNormalization({ gammaRegularizer: 'l2' } as never)).toThrow(/gammaRegularizer is not supported/);
    // Keras 3 writes rms_scaling: its default (false) loads, the RMS variant does not.
    expect(() => L.layerNormalization({ rmsScaling: false })).not.toThrow();
    expect(() => L.layerNormalization({ rmsScaling: true, name: 'rms' } as never)).toThrow(new ck.ValueError('rms: rmsScaling must be false, got true'));
  });
});

describe('the executor\'s own checks of a groupNorm spec (lib/ is bypassed)', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { native } = require('../lib/native') as { native: { Net: new (...args: unknown[]) => unknown } };
  const build = (spec: Record<string, unknown>) => new native.Net([[4, 4, 6]], [{ name: 'gn', inputs: [0], ...spec }], [1]);

  test('groups that do not divide the channels: a ValueError naming the layer, groups and channels', () => {
    expect(() => build({ kind: 'groupNorm', groups: 3 })).not.toThrow();
    expect(() => build({ kind: 'groupNorm', groups: 4 }))
      .toThrow(new ck.ValueError('gn: groups (4) must divide the channels of the last axis (6)'));
    // A layer norm has no groups to give.
    expect(() => build({ kind: 'layerNorm', groups: 2 })).toThrow(/gn: a layerNorm layer has no attribute 'groups'/);
  });
});

describe('ONNX export runs in onnxruntime as in convkit', () => {
  const runtime = new OnnxRuntime();
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-norm-onnx-'));
    runtime.start();
  });
  afterAll(() => {
    runtime.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test.each([
    ['layer norm on images after a conv', () => [L.conv2d({ filters: 6, kernelSize: 3 }), L.layerNormalization()]],
    ['group norm on images, scale off', () => [L.conv2d({ filters: 6, kernelSize: 3 }), L.groupNormalization({ groups: 2, scale: false })]],
    ['layer norm on vectors, center off', () => [L.flatten(), L.dense({ units: 5 }), L.layerNormalization({ center: false })]],
  ] as [string, () => ck.Layer[]][])('%s', async (name, make) => {
    const model = ck.sequential([L.input({ shape: [5, 6, 3] }), ...make()]);
    model.layers.forEach((layer, i) => layer.setWeights(layer.getWeights().map((w, k) =>
      ck.tensor(randomArray(w.size, 80 + i * 5 + k, 0.2, 1.5), [...w.shape]))));
    const file = path.join(dir, `${name.replace(/\W+/g, '_')}.onnx`);
    await ck.io.toOnnx(model, file);
    const x = randomArray(3 * 5 * 6 * 3, 81, -2, 2);
    const run = await runtime.run(file, [{ data: x, dims: [3, 5, 6, 3] }]);
    const want = await (model.predict(ck.tensor(x, [3, 5, 6, 3])) as ck.Tensor).data();
    expectClose(name, run.outputs[0].data, want, 1e-4, 1e-4);
  });
});

const cuda = ck.cudaStatus();
const onCuda = cuda.available ? describe : describe.skip;
onCuda(`on CUDA (against the CPU)${cuda.available ? '' : ` (skipped: ${cuda.reason})`}`, () => {
  test('fit, evaluate and predict of a conv net with both norms match the CPU', async () => {
    const build = () => ck.sequential([L.input({ shape: [6, 6, 2] }), L.conv2d({ filters: 6, kernelSize: 3, padding: 'same' }),
      L.groupNormalization({ groups: 3 }), L.activation({ activation: 'relu' }), L.layerNormalization(), L.flatten(), L.dense({ units: 3 })]);
    const cpu = build();
    const gpu = build();
    gpu.setWeights(cpu.getWeights());
    const compile = { optimizer: ck.optimizers.sgd({ learningRate: 0.05 }), loss: 'meanSquaredError' as const };
    cpu.compile({ ...compile, device: 'cpu' });
    gpu.compile({ ...compile, device: 'cuda' });
    const x = ck.tensor(randomArray(16 * 72, 90, -1, 1), [16, 6, 6, 2]);
    const y = ck.tensor(randomArray(16 * 3, 91, -1, 1), [16, 3]);
    const hc = await cpu.fit(x, y, { epochs: 2, batchSize: 8, shuffle: false, verbose: 0 });
    const hg = await gpu.fit(x, y, { epochs: 2, batchSize: 8, shuffle: false, verbose: 0 });
    expectClose('loss', hg.history.loss as number[], hc.history.loss as number[], 1e-5, 1e-4);
    const wc = await Promise.all(cpu.getWeights().map((w) => w.data()));
    const wg = await Promise.all(gpu.getWeights().map((w) => w.data()));
    wc.forEach((w, i) => expectClose(`weight ${i}`, wg[i], w, 1e-5, 1e-4));
    const ec = await cpu.evaluate(x, y, { verbose: 0 });
    const eg = await gpu.evaluate(x, y, { verbose: 0 });
    expectClose('evaluate', [Number(eg)], [Number(ec)], 1e-5, 1e-4);
    expectClose('predict', await (gpu.predict(x) as ck.Tensor).data(), await (cpu.predict(x) as ck.Tensor).data(), 1e-5, 1e-4);
  });
});
