// Multiply broadcast over space (squeeze-and-excitation): ck.ops.mul / mulGrad against plain
// loops and central differences in float64, and SE blocks (a gate [C] or reshaped to [1, 1, C],
// before or after the image) against TensorFlow.js, whose Multiply broadcasts as Keras does:
// the same predictions, SGD steps and tfjs-format files both ways.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as path from 'path';
import * as ck from '../lib';
import { lcg, randomArray, tmpDir } from '../test-support/helpers';
import { readArtifacts, saveTfjs, tfjsReady } from '../test-support/tfjs-io';

let root: string;

beforeAll(async () => {
  root = tmpDir('multiply');
  await tfjsReady();
});

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

const [N, H, W, C] = [2, 3, 4, 5];

/** y[n, p, c] = x[n, p, c] * g[n, c] and x's gradient (one float32 product each: exact), g's in float64. */
function reference(x: Float32Array, g: Float32Array, dy: Float32Array) {
  const hw = H * W;
  const y = new Float32Array(x.length);
  const dx = new Float32Array(x.length);
  const dg = new Float64Array(g.length);
  for (let n = 0; n < N; n++)
    for (let p = 0; p < hw; p++)
      for (let c = 0; c < C; c++) {
        const i = (n * hw + p) * C + c;
        y[i] = x[i] * g[n * C + c];
        dx[i] = dy[i] * g[n * C + c];
        dg[n * C + c] += dy[i] * x[i];
      }
  return { y, dx, dg };
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(want[i])));
}

describe('ck.ops.mul and mulGrad with a gate broadcast over space', () => {
  const x = randomArray(N * H * W * C, 1, -2, 2);
  const g = randomArray(N * C, 2, -1, 1);
  const dy = randomArray(N * H * W * C, 3, -1, 1);
  const want = reference(x, g, dy);

  test('the product and both gradients match plain loops, in either order', () => {
    const image = ck.tensor(x, [N, H, W, C]);
    const gate = ck.tensor(g, [N, 1, 1, C]);
    for (const [a, b] of [[image, gate], [gate, image]]) {
      const y = ck.ops.mul(a, b);
      expect(y.shape).toEqual([N, H, W, C]);
      expectClose(y.dataSync(), want.y, 0);
      const { da, db } = ck.ops.mulGrad(ck.tensor(dy, [N, H, W, C]), a, b);
      expect(da.shape).toEqual(a.shape);
      expect(db.shape).toEqual(b.shape);
      const [dImage, dGate] = a === image ? [da, db] : [db, da];
      expectClose(dImage.dataSync(), want.dx, 0);
      expectClose(dGate.dataSync(), want.dg, 1e-5);
    }
  });

  test("the gate's gradient is the central difference of sum(dy * mul(x, g))", () => {
    const loss = (gate: Float32Array) => {
      const y = ck.ops.mul(ck.tensor(x, [N, H, W, C]), ck.tensor(gate, [N, 1, 1, C])).dataSync();
      let s = 0;
      for (let i = 0; i < y.length; i++) s += dy[i] * y[i];
      return s;
    };
    const { db } = ck.ops.mulGrad(ck.tensor(dy, [N, H, W, C]), ck.tensor(x, [N, H, W, C]), ck.tensor(g, [N, 1, 1, C]));
    const got = db.dataSync();
    const eps = 1e-2;
    for (let i = 0; i < g.length; i++) {
      const up = Float32Array.from(g);
      const down = Float32Array.from(g);
      up[i] += eps;
      down[i] -= eps;
      expect(Math.abs(got[i] - (loss(up) - loss(down)) / (2 * eps))).toBeLessThan(1e-3);
    }
  });

  test('shapes that neither match nor gate one another are ShapeErrors naming the op and shapes', () => {
    const image = ck.tensor(x, [N, H, W, C]);
    for (const shape of [[N, 1, 1, C - 1], [N, H, 1, C], [1, 1, 1, C], [N, C]]) {
      const other = ck.zeros(shape);
      expect(() => ck.ops.mul(image, other)).toThrow(ck.ShapeError);
      expect(() => ck.ops.mul(image, other)).toThrow(/^mul: a \[2, ?3, ?4, ?5\] and b \[/);
      expect(() => ck.ops.mulGrad(image, image, other)).toThrow(/mulGrad/);
    }
    expect(() => ck.ops.mulGrad(ck.zeros([N, H, W, C + 1]), image, ck.tensor(g, [N, 1, 1, C]))).toThrow(/mulGrad: dy must have the output shape/);
  });
});

// An SE block as Keras writes it: squeeze (global average), excite (two dense layers, ReLU then
// sigmoid), and the image scaled by the gate; `reshaped` puts the gate through Reshape([1, 1, C])
// and first, otherwise the [C] gate comes second and broadcasts as Keras's Merge expands it.
type Lib = typeof ck | typeof tf;
function seBlock<L extends Lib>(lib: L, reshaped: boolean) {
  const l = lib.layers as typeof ck.layers & typeof tf.layers;
  const input = lib.input({ shape: [6, 5, 3], name: 'image' }) as never;
  const x = l.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv' }).apply(input);
  const squeeze = l.globalAveragePooling2d({ name: 'se_squeeze' }).apply(x);
  const reduce = l.dense({ units: 2, activation: 'relu', name: 'se_reduce' }).apply(squeeze);
  let gate = l.dense({ units: 8, activation: 'sigmoid', name: 'se_expand' }).apply(reduce);
  if (reshaped) gate = l.reshape({ targetShape: [1, 1, 8], name: 'se_reshape' }).apply(gate);
  const scaled = l.multiply({ name: 'se_excite' }).apply((reshaped ? [gate, x] : [x, gate]) as never);
  const pooled = l.globalAveragePooling2d({ name: 'gap' }).apply(scaled);
  const out = l.dense({ units: 3, activation: 'softmax', name: 'probs' }).apply(pooled);
  return (lib.model as (a: unknown) => unknown)({ inputs: input, outputs: out, name: 'se' }) as L extends typeof ck ? ck.Functional : tf.LayersModel;
}

function shareWeights(model: ck.LayersModel, reference: tf.LayersModel, seed: number): void {
  const next = lcg(seed);
  model.layers.forEach((layer) => {
    const current = layer.getWeights();
    if (!current.length) return;
    const values = current.map((w) => ck.tensor(Float32Array.from({ length: w.size }, () => 2 * next() - 1), [...w.shape]));
    layer.setWeights(values);
    reference.getLayer(layer.name).setWeights(values.map((v) => tf.tensor(v.dataSync(), [...v.shape])));
  });
}

function maxRelDiff(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  expect(got.length).toBe(ref.length);
  let d = 0;
  for (let i = 0; i < got.length; i++) d = Math.max(d, Math.abs(got[i] - ref[i]) / Math.max(1, Math.abs(ref[i])));
  return d;
}

describe.each([true, false])('a squeeze-and-excitation block (gate reshaped to [1, 1, C] first: %s) against TensorFlow.js', (reshaped) => {
  const n = 6;
  const x = randomArray(n * 6 * 5 * 3, 4, -1, 1);

  test('output shapes, parameter count and predictions', () => {
    const mine = seBlock(ck, reshaped);
    const ref = seBlock(tf, reshaped);
    expect(mine.countParams()).toBe(ref.countParams());
    const excite = mine.layers.findIndex((layer) => layer.name === 'se_excite');
    expect(mine.built!.layerShapes[excite].output).toEqual([6, 5, 8]);
    shareWeights(mine, ref, 5);
    const got = mine.predict(ck.tensor(x, [n, 6, 5, 3])).dataSync();
    const want = (ref.predict(tf.tensor(x, [n, 6, 5, 3])) as tf.Tensor).dataSync();
    expect(maxRelDiff(got, want)).toBeLessThan(1e-5);
  });

  test('SGD steps: the gradients through the gate and the image match', async () => {
    const labels = new Float32Array(n * 3);
    for (let i = 0; i < n; i++) labels[i * 3 + (i % 3)] = 1;
    const mine = seBlock(ck, reshaped);
    const ref = seBlock(tf, reshaped);
    shareWeights(mine, ref, 6);
    mine.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.5 }), loss: 'categoricalCrossentropy' });
    ref.compile({ optimizer: tf.train.sgd(0.5), loss: 'categoricalCrossentropy' });
    const h = await mine.fit(ck.tensor(x, [n, 6, 5, 3]), ck.tensor(labels, [n, 3]), { epochs: 3, batchSize: n, shuffle: false, verbose: 0 });
    const hr = await ref.fit(tf.tensor(x, [n, 6, 5, 3]), tf.tensor(labels, [n, 3]), { epochs: 3, batchSize: n, shuffle: false, verbose: 0 });
    expect(maxRelDiff(h.history.loss, hr.history.loss as number[])).toBeLessThan(1e-4);
    for (const name of ['conv', 'se_reduce', 'se_expand']) {
      const moved = mine.getLayer(name).getWeights()[0].dataSync();
      expect(maxRelDiff(moved, ref.getLayer(name).getWeights()[0].dataSync())).toBeLessThan(2e-4);
    }
  });

  test('saved in the TensorFlow.js format, it loads in tfjs and back in convkit with the same predictions', async () => {
    const mine = seBlock(ck, reshaped);
    const ref = seBlock(tf, reshaped);
    shareWeights(mine, ref, 7);
    const dir = path.join(root, `mine-${reshaped}`);
    await mine.save(`file://${dir}`);
    const want = mine.predict(ck.tensor(x, [n, 6, 5, 3])).dataSync();
    const intoTf = await tf.loadLayersModel(tf.io.fromMemory(readArtifacts(dir)));
    expect(maxRelDiff((intoTf.predict(tf.tensor(x, [n, 6, 5, 3])) as tf.Tensor).dataSync(), want)).toBeLessThan(1e-5);
    const back = await ck.loadModel(`file://${dir}`);
    expect(Array.from(back.predict(ck.tensor(x, [n, 6, 5, 3])).dataSync())).toEqual(Array.from(want));
    const refDir = path.join(root, `theirs-${reshaped}`);
    await saveTfjs(ref, refDir);
    const fromTf = await ck.loadModel(`file://${refDir}`);
    expect(maxRelDiff(fromTf.predict(ck.tensor(x, [n, 6, 5, 3])).dataSync(), want)).toBeLessThan(1e-5);
  });
});

test("a Multiply whose inputs do not broadcast is a ShapeError naming the layer and both shapes", () => {
  const image = ck.input({ shape: [4, 4, 3] });
  for (const shape of [[2], [1, 1, 2], [4, 1, 3], [4, 3]]) {
    const other = ck.input({ shape });
    expect(() => ck.layers.multiply({ name: 'bad_gate' }).apply([image, other])).toThrow(ck.ShapeError);
    expect(() => ck.layers.multiply({ name: 'bad_gate' }).apply([image, other])).toThrow(`bad_gate: inputs (None, 4, 4, 3) and (None, ${shape.join(', ')}) do not broadcast`);
  }
});
