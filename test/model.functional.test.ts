// Functional models (ck.input, layer.apply, ck.model) against TensorFlow.js as the independent
// reference: the same graphs built in both, with the same weights, must give the same shapes,
// parameter counts, predictions and training steps, and each must load the other's saved files.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as path from 'path';
import * as ck from '../lib';
import { lcg, randomArray, tmpDir } from '../test-support/helpers';
import { readArtifacts, saveTfjs, tfjsReady } from '../test-support/tfjs-io';

let root: string;

beforeAll(async () => {
  root = tmpDir('functional');
  await tfjsReady();
});

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

// A residual block, a branch merged by concatenate, multiply and average, batch norm, ReLU6.
// `lib` is either library: both expose the same tfjs-layers names and options.
type Lib = typeof ck | typeof tf;
function residual<L extends Lib>(lib: L) {
  const l = lib.layers as typeof ck.layers & typeof tf.layers;
  const input = lib.input({ shape: [10, 10, 3], name: 'image' }) as never;
  const c1 = l.conv2d({ filters: 6, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c1' }).apply(input);
  const c2 = l.conv2d({ filters: 6, kernelSize: 3, padding: 'same', name: 'c2' }).apply(c1);
  const sum = l.add({ name: 'sum' }).apply([c1, c2] as never);
  const bn = l.batchNormalization({ name: 'bn' }).apply(sum);
  const r6 = l.reLU({ maxValue: 6, name: 'relu6' }).apply(bn);
  const pool = l.maxPooling2d({ poolSize: 2, name: 'pool' }).apply(r6);
  const side = l.conv2d({ filters: 6, kernelSize: 1, activation: 'tanh', name: 'side' }).apply(pool);
  const prod = l.multiply({ name: 'prod' }).apply([pool, side] as never);
  const avg = l.average({ name: 'avg' }).apply([prod, pool] as never);
  const cat = l.concatenate({ name: 'cat' }).apply([avg, side] as never);
  const gap = l.globalAveragePooling2d({ name: 'gap' }).apply(cat);
  const out = l.dense({ units: 4, activation: 'softmax', name: 'probs' }).apply(gap);
  return (lib.model as (a: unknown) => unknown)({ inputs: input, outputs: out, name: 'residual' }) as L extends typeof ck ? ck.Functional : tf.LayersModel;
}

// MobileNet-style layers: zero padding, a strided conv without bias, batch norm, ReLU6,
// depthwise and separable convolutions, bilinear and nearest up-sampling. Training compares
// without the nearest layer and with square images and sizes: tfjs's gradients of those
// resizes are wrong otherwise (its nearest one breaks the identity "nearest up-sampling then
// global average pooling = global average pooling"; its bilinear one swaps height and width).
// native/tests/test_core_net.cpp checks ours against finite differences.
function mobile<L extends Lib>(lib: L, bilinearSize: [number, number] = [2, 3], shape = [11, 12, 3], nearest = true) {
  const l = lib.layers as typeof ck.layers & typeof tf.layers;
  const input = lib.input({ shape, name: 'rgb' }) as never;
  let y = l.zeroPadding2d({ padding: [[1, 0], [0, 1]], name: 'pad' }).apply(input);
  y = l.conv2d({ filters: 8, kernelSize: 3, strides: 2, useBias: false, name: 'stem' }).apply(y);
  y = l.batchNormalization({ name: 'stem_bn' }).apply(y);
  y = l.reLU({ maxValue: 6, name: 'stem_relu' }).apply(y);
  y = l.depthwiseConv2d({ kernelSize: 3, padding: 'same', depthMultiplier: 2, name: 'dw' }).apply(y);
  y = l.separableConv2d({ filters: 6, kernelSize: 3, padding: 'same', activation: 'relu', name: 'sep' }).apply(y);
  y = l.upSampling2d({ size: bilinearSize, interpolation: 'bilinear', name: 'up' }).apply(y);
  if (nearest) y = l.upSampling2d({ size: [2, 2], name: 'up_nearest' }).apply(y);
  y = l.globalAveragePooling2d({ name: 'gap' }).apply(y);
  const out = l.dense({ units: 3, activation: 'softmax', name: 'probs' }).apply(y);
  return (lib.model as (a: unknown) => unknown)({ inputs: input, outputs: out, name: 'mobile' }) as L extends typeof ck ? ck.Functional : tf.LayersModel;
}

// Two inputs (an image and a vector) and two softmax outputs.
function twoHeaded<L extends Lib>(lib: L) {
  const l = lib.layers as typeof ck.layers & typeof tf.layers;
  const image = lib.input({ shape: [6, 6, 2], name: 'pixels' }) as never;
  const meta = lib.input({ shape: [4], name: 'meta' }) as never;
  const conv = l.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', name: 'conv' }).apply(image);
  const flat = l.flatten({ name: 'flat' }).apply(conv);
  const dense = l.dense({ units: 5, activation: 'tanh', name: 'meta_dense' }).apply(meta);
  const joined = l.concatenate({ name: 'joined' }).apply([flat, dense] as never);
  const a = l.dense({ units: 3, activation: 'softmax', name: 'head_a' }).apply(joined);
  const b = l.dense({ units: 2, activation: 'softmax', name: 'head_b' }).apply(joined);
  return (lib.model as (a: unknown) => unknown)({ inputs: [image, meta], outputs: [a, b], name: 'two_headed' }) as L extends typeof ck ? ck.Functional : tf.LayersModel;
}

/** Random weights in convkit, copied into the tfjs model layer by layer (matched by name). */
function shareWeights(model: ck.LayersModel, reference: tf.LayersModel, seed: number): void {
  const next = lcg(seed);
  model.layers.forEach((layer) => {
    const current = layer.getWeights();
    if (!current.length) return;
    const values = current.map((w, k) => {
      const isVariance = k === 3 && layer.className === 'BatchNormalization';
      return ck.tensor(Float32Array.from({ length: w.size }, () => (isVariance ? 0.5 + next() : next() - 0.5)), [...w.shape]);
    });
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

describe('graphs agree with TensorFlow.js', () => {
  test('layers, output shapes and parameter counts', () => {
    for (const build of [residual, mobile, twoHeaded]) {
      const mine = build(ck);
      const ref = build(tf);
      expect(mine.layers.map((layer) => layer.name)).toEqual(ref.layers.map((layer) => layer.name));
      expect(mine.countParams()).toBe(ref.countParams());
      mine.layers.forEach((layer, i) => {
        const refShape = ref.layers[i].outputShape as (number | null)[] | (number | null)[][];
        const want = Array.isArray(refShape[0]) ? refShape[0] : refShape;
        expect([null, ...mine.built!.layerShapes[i].output]).toEqual(want);
      });
    }
  });

  test('predictions with the same weights (one output, and two inputs with two outputs)', () => {
    for (const [build, shape] of [[residual, [10, 10, 3]], [mobile, [11, 12, 3]]] as const) {
      const mine = build(ck);
      const ref = build(tf);
      shareWeights(mine, ref, 3);
      const x = randomArray(7 * shape[0] * shape[1] * shape[2], 4);
      const got = mine.predict(ck.tensor(x, [7, ...shape]));
      const want = ref.predict(tf.tensor(x, [7, ...shape])) as tf.Tensor;
      expect(maxRelDiff(got.dataSync(), want.dataSync())).toBeLessThan(1e-5);
    }

    const two = twoHeaded(ck);
    const twoRef = twoHeaded(tf);
    shareWeights(two, twoRef, 5);
    const px = randomArray(5 * 6 * 6 * 2, 6);
    const mx = randomArray(5 * 4, 7, -1, 1);
    const outs = two.predict([ck.tensor(px, [5, 6, 6, 2]), ck.tensor(mx, [5, 4])]) as unknown as ck.Tensor[];
    const refOuts = twoRef.predict([tf.tensor(px, [5, 6, 6, 2]), tf.tensor(mx, [5, 4])]) as tf.Tensor[];
    expect(outs.map((t) => t.shape)).toEqual([[5, 3], [5, 2]]);
    outs.forEach((t, i) => expect(maxRelDiff(t.dataSync(), refOuts[i].dataSync())).toBeLessThan(1e-5));
  });

  test('SGD training steps: the gradients through every merge and both heads match', async () => {
    const n = 12;
    const px = randomArray(n * 6 * 6 * 2, 8);
    const mx = randomArray(n * 4, 9, -1, 1);
    const next = lcg(10);
    const ya = new Float32Array(n * 3);
    const yb = new Float32Array(n * 2);
    for (let i = 0; i < n; i++) {
      ya[i * 3 + Math.floor(next() * 3)] = 1;
      yb[i * 2 + Math.floor(next() * 2)] = 1;
    }
    const mine = twoHeaded(ck);
    const ref = twoHeaded(tf);
    shareWeights(mine, ref, 11);
    mine.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.1 }), loss: 'categoricalCrossentropy' });
    ref.compile({ optimizer: tf.train.sgd(0.1), loss: 'categoricalCrossentropy' });
    const h = await mine.fit([ck.tensor(px, [n, 6, 6, 2]), ck.tensor(mx, [n, 4])], [ck.tensor(ya, [n, 3]), ck.tensor(yb, [n, 2])],
      { epochs: 4, batchSize: n, shuffle: false, verbose: 0 });
    const hr = await ref.fit([tf.tensor(px, [n, 6, 6, 2]), tf.tensor(mx, [n, 4])], [tf.tensor(ya, [n, 3]), tf.tensor(yb, [n, 2])],
      { epochs: 4, batchSize: n, shuffle: false, verbose: 0 });
    for (const key of ['loss', 'head_a_loss', 'head_b_loss']) {
      expect(maxRelDiff(h.history[key], hr.history[key] as number[])).toBeLessThan(1e-4);
    }
    mine.layers.forEach((layer) => {
      const w = layer.getWeights();
      const r = ref.getLayer(layer.name).getWeights();
      w.forEach((t, k) => expect(maxRelDiff(t.dataSync(), r[k].dataSync())).toBeLessThan(2e-4));
    });
  });
});

test('SGD training steps through depthwise, separable, padding and up-sampling layers match', async () => {
  const n = 6;
  const x = randomArray(n * 12 * 12 * 3, 20);
  const y = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) y[i * 3 + (i % 3)] = 1;
  const mine = mobile(ck, [2, 2], [12, 12, 3], false);
  const ref = mobile(tf, [2, 2], [12, 12, 3], false);
  shareWeights(mine, ref, 21);
  mine.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.05 }), loss: 'categoricalCrossentropy' });
  ref.compile({ optimizer: tf.train.sgd(0.05), loss: 'categoricalCrossentropy' });
  const h = await mine.fit(ck.tensor(x, [n, 12, 12, 3]), ck.tensor(y, [n, 3]), { epochs: 3, batchSize: n, shuffle: false, verbose: 0 });
  const hr = await ref.fit(tf.tensor(x, [n, 12, 12, 3]), tf.tensor(y, [n, 3]), { epochs: 3, batchSize: n, shuffle: false, verbose: 0 });
  expect(maxRelDiff(h.history.loss, hr.history.loss as number[])).toBeLessThan(1e-4);
  mine.layers.forEach((layer) => {
    const r = ref.getLayer(layer.name).getWeights();
    layer.getWeights().forEach((t, k) => expect(maxRelDiff(t.dataSync(), r[k].dataSync())).toBeLessThan(2e-4));
  });
});

describe('save and load in the TensorFlow.js layers format', () => {
  test('convkit -> tfjs and tfjs -> convkit give the same predictions', async () => {
    const mine = residual(ck);
    const ref = residual(tf);
    shareWeights(mine, ref, 12);
    const x = randomArray(4 * 10 * 10 * 3, 13);
    const dir = path.join(root, 'mine');
    await mine.save(`file://${dir}`);
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
    expect(json.modelTopology.class_name).toBe('Model');
    const intoTf = await tf.loadLayersModel(tf.io.fromMemory(readArtifacts(dir)));
    const fromTf = (intoTf.predict(tf.tensor(x, [4, 10, 10, 3])) as tf.Tensor).dataSync();
    expect(maxRelDiff(mine.predict(ck.tensor(x, [4, 10, 10, 3])).dataSync(), fromTf)).toBeLessThan(1e-5);

    const refDir = path.join(root, 'theirs');
    await saveTfjs(ref, refDir);
    const intoCk = await ck.loadModel(`file://${refDir}`);
    expect(intoCk).toBeInstanceOf(ck.Functional);
    const want = (ref.predict(tf.tensor(x, [4, 10, 10, 3])) as tf.Tensor).dataSync();
    expect(maxRelDiff(intoCk.predict(ck.tensor(x, [4, 10, 10, 3])).dataSync(), want)).toBeLessThan(1e-5);
  });

  test('a two-input, two-output model round trips in convkit', async () => {
    ck.setSeed(14);
    const mine = twoHeaded(ck);
    const dir = path.join(root, 'two');
    await mine.save(`file://${dir}`);
    const loaded = await ck.loadModel(`file://${dir}`);
    const inputs = [ck.tensor(randomArray(3 * 72, 15), [3, 6, 6, 2]), ck.tensor(randomArray(12, 16), [3, 4])];
    const a = mine.predict(inputs) as unknown as ck.Tensor[];
    const b = loaded.predict(inputs) as unknown as ck.Tensor[];
    a.forEach((t, i) => expect(Array.from(b[i].dataSync())).toEqual(Array.from(t.dataSync())));
    const lines: string[] = [];
    loaded.summary(undefined, undefined, (line) => lines.push(line));
    expect(lines.join('\n')).toMatch(/joined \(Concatenate\)\s+\(None, 69\)\s+0\s+\['flat\[0\]\[0\]', 'meta_dense\[0\]\[0\]/);
  });
});

test('a model over part of another keeps its trained weights; a frozen base stays put while a new head trains', async () => {
  ck.setSeed(30);
  const base = residual(ck);
  const before = new Map(base.layers.map((layer) => [layer.name, layer.getWeights().map((w) => Array.from(w.dataSync()))]));
  const head = ck.layers.dense({ units: 2, activation: 'softmax', name: 'new_head' }).apply(base.getLayer('gap').output);
  const transfer = ck.model({ inputs: base.inputs, outputs: head });
  expect(transfer.layers.map((layer) => layer.name)).toEqual([...base.layers.slice(0, -1).map((layer) => layer.name), 'new_head']);
  for (const layer of transfer.layers.slice(0, -1)) {
    expect(layer.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(before.get(layer.name));
    layer.trainable = false;
  }
  transfer.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' });
  const n = 8;
  const headBefore = Array.from(transfer.getLayer('new_head').getWeights()[0].dataSync());
  await transfer.fit(ck.tensor(randomArray(n * 300, 31), [n, 10, 10, 3]), ck.tensor(Float32Array.from({ length: n }, (_, i) => i % 2), [n]),
    { epochs: 2, batchSize: 4, verbose: 0 });
  for (const layer of transfer.layers.slice(0, -1)) {
    expect(layer.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(before.get(layer.name));
  }
  expect(Array.from(transfer.getLayer('new_head').getWeights()[0].dataSync())).not.toEqual(headBefore);
});

test('layers reused in a second Sequential model: trained weights carried, each model keeps and saves its own copy, freezing reaches both', async () => {
  ck.setSeed(32);
  const first = ck.sequential([
    ck.layers.input({ shape: [4] }), ck.layers.dense({ units: 3, activation: 'relu' }), ck.layers.dense({ units: 2, activation: 'softmax' }),
  ]);
  first.compile({ optimizer: 'sgd', loss: 'categoricalCrossentropy' });
  const x = ck.tensor(randomArray(8 * 4, 33), [8, 4]);
  const y = ck.toCategorical(ck.tensor(Float32Array.from({ length: 8 }, (_, i) => i % 2), [8]), 2);
  await first.fit(x, y, { epochs: 2, verbose: 0 });
  const trained = Array.from(first.getWeights()[0].dataSync());
  const second = ck.sequential([...first.layers.slice(0, -1), ck.layers.dense({ units: 2, activation: 'softmax' })]);
  second.compile({ optimizer: 'sgd', loss: 'categoricalCrossentropy' });
  expect(Array.from(second.getWeights()[0].dataSync())).toEqual(trained);
  await second.fit(x, y, { epochs: 2, verbose: 0 });
  expect(Array.from(second.getWeights()[0].dataSync())).not.toEqual(trained);
  const dir = path.join(root, 'first');
  await first.save(`file://${dir}`);
  expect(Array.from((await ck.loadModel(`file://${dir}`)).getWeights()[0].dataSync())).toEqual(trained);
  first.layers[1].trainable = false;
  const [w1, w2] = [Array.from(first.getWeights()[0].dataSync()), Array.from(second.getWeights()[0].dataSync())];
  await first.fit(x, y, { epochs: 1, verbose: 0 });
  await second.fit(x, y, { epochs: 1, verbose: 0 });
  expect(Array.from(first.getWeights()[0].dataSync())).toEqual(w1);
  expect(Array.from(second.getWeights()[0].dataSync())).toEqual(w2);
});

describe('fit logs and errors', () => {
  test('a two-output fit logs the total and per-output losses and accuracies, as Keras names them', async () => {
    ck.setSeed(17);
    const model = twoHeaded(ck);
    model.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    const n = 20;
    const xs = [ck.tensor(randomArray(n * 72, 18), [n, 6, 6, 2]), ck.tensor(randomArray(n * 4, 19), [n, 4])];
    const ys = [ck.tensor(Float32Array.from({ length: n }, (_, i) => i % 3), [n]), ck.tensor(Float32Array.from({ length: n }, (_, i) => i % 2), [n])];
    const h = await model.fit(xs, ys, { epochs: 2, batchSize: 5, verbose: 0, validationSplit: 0.25 });
    expect(Object.keys(h.history).sort()).toEqual([
      'head_a_accuracy', 'head_a_loss', 'head_b_accuracy', 'head_b_loss', 'loss',
      'val_head_a_accuracy', 'val_head_a_loss', 'val_head_b_accuracy', 'val_head_b_loss', 'val_loss',
    ]);
    h.history.loss.forEach((total, e) => expect(total).toBeCloseTo(h.history.head_a_loss[e] + h.history.head_b_loss[e], 5));
    const evaluated = await model.evaluate(xs, ys, { batchSize: 7 });
    expect(evaluated).toHaveLength(5);
  });

  test('bad graphs and bad inputs get typed errors that name the layer or the model', async () => {
    const a = ck.input({ shape: [4] });
    const b = ck.input({ shape: [5] });
    const dense = ck.layers.dense({ units: 2 });
    const out = dense.apply(a);
    expect(() => dense.apply(b)).toThrow(ck.ShapeError);
    expect(() => ck.layers.add().apply([a, b])).toThrow(/inputs must have the same shape, got \(None, 4\) and \(None, 5\)/);
    expect(() => ck.layers.add().apply(a)).toThrow(/at least 2 inputs/);
    expect(() => ck.layers.dense({ units: 1 }).apply(ck.zeros([2, 4]) as never)).toThrow(ck.ValueError);
    // an output that needs an input the model was not given
    const c = ck.layers.concatenate().apply([out, ck.layers.dense({ units: 2 }).apply(b)]);
    expect(() => ck.model({ inputs: a, outputs: c })).toThrow(/disconnected/);
    const model = ck.model({ inputs: [a, b], outputs: c });
    model.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
    await expect(model.fit(ck.zeros([3, 4]), ck.zeros([3, 4]))).rejects.toThrow(/takes 2 input\(s\), got 1/);
    await expect(model.fit([ck.zeros([3, 4]), ck.zeros([2, 5])], ck.zeros([3, 4]))).rejects.toThrow(ck.ShapeError);
    await expect(model.fit([ck.zeros([3, 4]), ck.zeros([3, 5])], [ck.zeros([3, 4]), ck.zeros([3, 4])])).rejects.toThrow(/1 output\(s\), got 2/);
  });
});
