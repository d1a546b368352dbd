// Keras's preprocessing layer Rescaling: predict against TensorFlow.js's Rescaling and a float64
// loop, the input gradient (a dense kernel before the layer, one SGD step) against central finite
// differences of a float64 loss, the tfjs-format save/load round trip, and, with CUDA (a GPU or
// the emulator addon), the CUDA executor against the CPU.
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

const cuda = ck.cudaStatus();
const onCuda = cuda.available ? describe : describe.skip;
onCuda(`on CUDA (against the CPU)${cuda.available ? '' : ` (skipped: ${cuda.reason})`}`, () => {
  test('fit and predict through Rescaling match the CPU', async () => {
    const build = () => ck.sequential([L.input({ shape: [H, W, C] }), L.rescaling({ scale: 0.5, offset: -0.25 }),
      L.dense({ units: C }), L.flatten(), L.dense({ units: 2 })]);
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
