// ck.applications.efficientNetB0 against keras/src/applications/efficientnet.py: parameter and
// layer counts computed here from Keras's block table (checked against Keras's published
// 5,330,571 / 4,049,571), layer names and order, TensorFlow.js building the same graph (without
// the preprocessing stem, which tfjs lacks) predicting the same with shared weights, and the
// save/load round trip by name.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as path from 'path';
import * as ck from '../lib';
import { lcg, randomArray, tmpDir } from '../test-support/helpers';

let root: string;

beforeAll(async () => {
  root = tmpDir('efficientnet');
  const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
  const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
  await tf.setBackend('cpu');
  await tf.ready();
  warn.mockRestore();
  log.mockRestore();
});

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

// Keras's DEFAULT_BLOCKS_ARGS: kernel, repeats, filters in, filters out, expand ratio, strides (SE 0.25 in all).
const BLOCKS = [[3, 1, 32, 16, 1, 1], [3, 2, 16, 24, 6, 2], [5, 2, 24, 40, 6, 2], [3, 3, 40, 80, 6, 2],
  [5, 3, 80, 112, 6, 1], [5, 4, 112, 192, 6, 2], [3, 1, 192, 320, 6, 1]];

/** Each block of B0 as efficientnet.py unrolls it: its name prefix and settings. */
function unrolled(): { name: string; kernel: number; cin: number; cout: number; expand: number; stride: number }[] {
  return BLOCKS.flatMap(([kernel, repeats, cin, cout, expand, stride], i) => Array.from({ length: repeats }, (_, j) => ({
    name: `block${i + 1}${String.fromCharCode(97 + j)}_`, kernel, cin: j ? cout : cin, cout, expand, stride: j ? 1 : stride,
  })));
}

/** Keras's counts for B0 from the layer sizes: total, non-trainable, layers (input included). */
function kerasCounts(includeTop: boolean, classes = 1000): { params: number; nonTrainable: number; layers: number } {
  const bn = (c: number) => 4 * c;  // gamma, beta, moving mean and variance
  let params = 2 * 3 + 1;  // Normalization: mean, variance, count
  let nonTrainable = 2 * 3 + 1;
  let layers = 1 + 2 + 4;  // input, rescaling, normalization; stem pad, conv, bn, activation
  params += 3 * 3 * 3 * 32 + bn(32);
  nonTrainable += 2 * 32;
  for (const b of unrolled()) {
    const filters = b.cin * b.expand;
    const se = Math.max(1, Math.trunc(b.cin * 0.25));
    if (b.expand !== 1) {
      params += b.cin * filters + bn(filters);
      nonTrainable += 2 * filters;
      layers += 3;
    }
    params += b.kernel * b.kernel * filters + bn(filters);  // dwconv (no bias) + bn
    params += filters * se + se + se * filters + filters;  // se_reduce and se_expand, with biases
    params += filters * b.cout + bn(b.cout);  // project_conv + project_bn
    nonTrainable += 2 * filters + 2 * b.cout;
    // dwconv, bn, activation, 5 SE layers, project conv and bn; pad if strided; drop and add if residual
    layers += 10 + (b.stride === 2 ? 1 : 0) + (b.stride === 1 && b.cin === b.cout ? 2 : 0);
  }
  params += 320 * 1280 + bn(1280);
  nonTrainable += 2 * 1280;
  layers += 3;
  if (includeTop) {
    params += 1280 * classes + classes;
    layers += 3;
  }
  return { params, nonTrainable, layers };
}

const nonTrainableOf = (m: ck.LayersModel) =>
  m.layers.flatMap((l, i) => l.weightSpecs(m.built!.layerShapes[i].input)).filter((w) => !w.trainable)
    .reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1), 0);

describe('EfficientNetB0', () => {
  test("Keras's parameter and layer counts, from efficientnet.py's block table", () => {
    const want = kerasCounts(true);
    // keras.io lists EfficientNetB0 at 5.3M; model.summary() in Keras 3 reports 5,330,571 total
    // and 42,023 non-trainable, 4,049,571 total without the top.
    expect([want.params, want.nonTrainable, kerasCounts(false).params]).toEqual([5330571, 42023, 4049571]);
    const m = ck.applications.efficientNetB0();
    expect(m.name).toBe('efficientnetb0');
    expect([m.countParams(), nonTrainableOf(m), m.layers.length]).toEqual([want.params, want.nonTrainable, want.layers]);
    const base = ck.applications.efficientNetB0({ includeTop: false });
    const noTop = kerasCounts(false);
    expect([base.countParams(), nonTrainableOf(base), base.layers.length]).toEqual([noTop.params, noTop.nonTrainable, noTop.layers]);
    expect(ck.applications.efficientNetB0({ classes: 10 }).countParams()).toBe(kerasCounts(true, 10).params);
  });

  test("Keras's layer names, in Keras's order", () => {
    const m = ck.applications.efficientNetB0({ inputShape: [64, 64, 3] });
    const want = ['input', 'rescaling', 'normalization', 'stem_conv_pad', 'stem_conv', 'stem_bn', 'stem_activation'];
    for (const b of unrolled()) {
      if (b.expand !== 1) want.push(`${b.name}expand_conv`, `${b.name}expand_bn`, `${b.name}expand_activation`);
      if (b.stride === 2) want.push(`${b.name}dwconv_pad`);
      want.push(...['dwconv', 'bn', 'activation', 'se_squeeze', 'se_reshape', 'se_reduce', 'se_expand', 'se_excite', 'project_conv', 'project_bn']
        .map((s) => b.name + s));
      if (b.stride === 1 && b.cin === b.cout) want.push(`${b.name}drop`, `${b.name}add`);
    }
    want.push('top_conv', 'top_bn', 'top_activation', 'avg_pool', 'top_dropout', 'predictions');
    const names = m.layers.map((l) => l.name);
    expect(names.slice(1)).toEqual(want.slice(1));
    // Keras's drop-connect schedule: 0.2 * block index / 16, on residual blocks only
    const drops = m.layers.filter((l) => l.name.endsWith('_drop')) as unknown as { name: string; rate: number }[];
    const index = new Map(unrolled().map((b, i) => [`${b.name}drop`, i]));
    for (const d of drops) expect(d.rate).toBeCloseTo(0.2 * index.get(d.name)! / 16, 12);
    // Stochastic depth as Keras's: each example's whole residual branch is kept or dropped
    for (const d of drops as unknown as { noiseShape: (number | null)[] }[]) expect(d.noiseShape).toEqual([null, 1, 1, 1]);
    expect(drops).toHaveLength(9);
    expect(ck.applications.efficientNetB0({ includeTop: false, pooling: 'max', inputShape: [64, 64, 3] }).layers.at(-1)!.name).toBe('max_pool');
    expect(ck.applications.efficientNetB0({ includeTop: false, inputShape: [96, 96, 3] }).outputShape).toEqual([null, 3, 3, 1280]);
  });

  test('predicts as TensorFlow.js does on the same graph with shared weights (64x64, 7 classes)', async () => {
    const mine = ck.applications.efficientNetB0({ inputShape: [64, 64, 3], classes: 7, includePreprocessing: false });
    const ref = tfEfficientNetB0([64, 64, 3], 7);
    expect(mine.countParams()).toBe(ref.countParams());
    const next = lcg(5);
    const mineWeighted = mine.layers.filter((l) => l.getWeights().length);
    const refWeighted = ref.layers.filter((l) => l.weights.length);
    expect(mineWeighted.map((l) => l.name)).toEqual(refWeighted.map((l) => l.name));
    mineWeighted.forEach((layer, i) => {
      const ws = layer.getWeights().map((w, k) => {
        const n = w.size;
        // batch norms near the identity (variance > 0), kernels He-scaled so the signal lives
        const bnStat = layer.className === 'BatchNormalization' && (k === 0 || k === 3);
        const fanIn = w.shape.length > 1 ? (layer.className === 'DepthwiseConv2D' ? w.shape[0] * w.shape[1] : w.size / w.shape[w.shape.length - 1]) : 1;
        const limit = w.shape.length > 1 ? Math.sqrt(6 / fanIn) : 0.1;
        return ck.tensor(Float32Array.from({ length: n }, () => (bnStat ? 0.8 + 0.4 * next() : (2 * next() - 1) * limit)), [...w.shape]);
      });
      layer.setWeights(ws);
      refWeighted[i].setWeights(ws.map((w) => tf.tensor(w.dataSync(), [...w.shape])));
    });
    const x = randomArray(2 * 64 * 64 * 3, 6, -1, 1);
    const got = mine.predict(ck.tensor(x, [2, 64, 64, 3])).dataSync();
    const want = (ref.predict(tf.tensor(x, [2, 64, 64, 3])) as tf.Tensor).dataSync();
    let diff = 0;
    for (let i = 0; i < want.length; i++) diff = Math.max(diff, Math.abs(got[i] - want[i]));
    expect(diff).toBeLessThan(1e-4);
    expect(Math.max(...Array.from(want)) - Math.min(...Array.from(want))).toBeGreaterThan(1e-3);  // not a constant output
  });

  test('saves and loads: weights by name (Normalization\'s adapted statistics too), and as a whole model', async () => {
    ck.setSeed(7);
    const model = ck.applications.efficientNetB0({ inputShape: [32, 32, 3], classes: 3 });
    (model.getLayer('normalization') as ReturnType<typeof ck.layers.normalization>).adapt(ck.tensor(randomArray(4 * 32 * 32 * 3, 8, 0, 255), [4, 32, 32, 3]));
    const dir = path.join(root, 'b0');
    await model.save(`file://${dir}`);
    const x = ck.tensor(randomArray(2 * 32 * 32 * 3, 9, 0, 255), [2, 32, 32, 3]);
    const want = Array.from(model.predict(x).dataSync());
    const byName = await ck.applications.efficientNetB0({ inputShape: [32, 32, 3], classes: 3, weights: `file://${dir}` });
    expect(Array.from(byName.predict(x).dataSync())).toEqual(want);
    const whole = await ck.loadModel(`file://${dir}`);
    expect(whole.layers.map((l) => l.name)).toEqual(model.layers.map((l) => l.name));
    expect(Array.from(whole.predict(x).dataSync())).toEqual(want);
    const fresh = ck.applications.efficientNetB0({ inputShape: [32, 32, 3], classes: 3 });
    expect(Array.from(fresh.predict(x).dataSync())).not.toEqual(want);
  });

  test('bad options are typed errors naming the builder', () => {
    expect(() => ck.applications.efficientNetB0({ includePreprocessing: 1 as never })).toThrow(/^applications.efficientNetB0: includePreprocessing must be a boolean/);
    expect(() => ck.applications.efficientNetB0({ alpha: 1 } as never)).toThrow(/^applications.efficientNetB0: unknown option 'alpha'/);
    expect(() => ck.applications.efficientNetB0({ inputShape: [16, 16, 3] })).toThrow(ck.ShapeError);
  });
});

/** efficientnet.py's graph (from stem_conv_pad on) in TensorFlow.js, with Keras's names. */
function tfEfficientNetB0(shape: number[], classes: number): tf.LayersModel {
  const L = tf.layers;
  const pad = (h: number, w: number, k: number): [[number, number], [number, number]] =>
    [[Math.floor(k / 2) - (1 - (h % 2)), Math.floor(k / 2)], [Math.floor(k / 2) - (1 - (w % 2)), Math.floor(k / 2)]];
  const image = tf.input({ shape });
  let x = L.zeroPadding2d({ padding: pad(shape[0], shape[1], 3), name: 'stem_conv_pad' }).apply(image) as tf.SymbolicTensor;
  x = L.conv2d({ filters: 32, kernelSize: 3, strides: 2, padding: 'valid', useBias: false, name: 'stem_conv' }).apply(x) as tf.SymbolicTensor;
  x = L.batchNormalization({ name: 'stem_bn' }).apply(x) as tf.SymbolicTensor;
  x = L.activation({ activation: 'swish', name: 'stem_activation' }).apply(x) as tf.SymbolicTensor;
  for (const b of unrolled()) {
    const inputs = x;
    const filters = b.cin * b.expand;
    if (b.expand !== 1) {
      x = L.conv2d({ filters, kernelSize: 1, padding: 'same', useBias: false, name: `${b.name}expand_conv` }).apply(x) as tf.SymbolicTensor;
      x = L.batchNormalization({ name: `${b.name}expand_bn` }).apply(x) as tf.SymbolicTensor;
      x = L.activation({ activation: 'swish', name: `${b.name}expand_activation` }).apply(x) as tf.SymbolicTensor;
    }
    if (b.stride === 2) {
      x = L.zeroPadding2d({ padding: pad(x.shape[1]!, x.shape[2]!, b.kernel), name: `${b.name}dwconv_pad` }).apply(x) as tf.SymbolicTensor;
    }
    x = L.depthwiseConv2d({ kernelSize: b.kernel, strides: b.stride, padding: b.stride === 2 ? 'valid' : 'same', useBias: false, name: `${b.name}dwconv` })
      .apply(x) as tf.SymbolicTensor;
    x = L.batchNormalization({ name: `${b.name}bn` }).apply(x) as tf.SymbolicTensor;
    x = L.activation({ activation: 'swish', name: `${b.name}activation` }).apply(x) as tf.SymbolicTensor;
    let se = L.globalAveragePooling2d({ name: `${b.name}se_squeeze` }).apply(x) as tf.SymbolicTensor;
    se = L.reshape({ targetShape: [1, 1, filters], name: `${b.name}se_reshape` }).apply(se) as tf.SymbolicTensor;
    se = L.conv2d({ filters: Math.max(1, Math.trunc(b.cin * 0.25)), kernelSize: 1, padding: 'same', activation: 'swish', name: `${b.name}se_reduce` })
      .apply(se) as tf.SymbolicTensor;
    se = L.conv2d({ filters, kernelSize: 1, padding: 'same', activation: 'sigmoid', name: `${b.name}se_expand` }).apply(se) as tf.SymbolicTensor;
    x = L.multiply({ name: `${b.name}se_excite` }).apply([x, se]) as tf.SymbolicTensor;
    x = L.conv2d({ filters: b.cout, kernelSize: 1, padding: 'same', useBias: false, name: `${b.name}project_conv` }).apply(x) as tf.SymbolicTensor;
    x = L.batchNormalization({ name: `${b.name}project_bn` }).apply(x) as tf.SymbolicTensor;
    if (b.stride === 1 && b.cin === b.cout) x = L.add({ name: `${b.name}add` }).apply([x, inputs]) as tf.SymbolicTensor;
  }
  x = L.conv2d({ filters: 1280, kernelSize: 1, padding: 'same', useBias: false, name: 'top_conv' }).apply(x) as tf.SymbolicTensor;
  x = L.batchNormalization({ name: 'top_bn' }).apply(x) as tf.SymbolicTensor;
  x = L.activation({ activation: 'swish', name: 'top_activation' }).apply(x) as tf.SymbolicTensor;
  x = L.globalAveragePooling2d({ name: 'avg_pool' }).apply(x) as tf.SymbolicTensor;
  x = L.dense({ units: classes, activation: 'softmax', name: 'predictions' }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: image, outputs: x });
}
