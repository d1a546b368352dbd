// Built layers know their shapes (issue #17, item 1): countParams() takes no argument, as in
// tfjs and Keras, and equals an independently computed count and the sum of getWeights()' sizes;
// inputShape/outputShape carry the batch dimension as null; a layer that is not built says so with
// a ValueError naming it. Checked for every layer kind in Sequential and functional models, after
// a save and load, in ck.applications models, and against tfjs on the same models.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as ck from '../lib';
import { tmpDir } from '../test-support/helpers';
import { tfjsReady } from '../test-support/tfjs-io';

let root: string;
beforeAll(async () => {
  root = tmpDir('layer-shapes');
  await tfjsReady();
});
afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

type Shape = number[];
const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);
const pair = (v: unknown, def: number): [number, number] => (v === undefined || v === null ? [def, def] : typeof v === 'number' ? [v, v] : (v as [number, number]));

/**
 * The weight count of a layer from its kind, its config and its input shape, written from the
 * Keras definitions (not from convkit's weightSpecs).
 */
function expectedParams(layer: ck.Layer, input: Shape): number {
  const c = layer.getConfig() as Record<string, any>;
  const cin = input[input.length - 1];
  switch (layer.className) {
    case 'Conv2D': {
      const [kh, kw] = pair(c.kernelSize, 1);
      const groups = c.groups ?? 1;
      return kh * kw * (cin / groups) * c.filters + (c.useBias ? c.filters : 0);
    }
    case 'Dense':
      return cin * c.units + (c.useBias ? c.units : 0);
    case 'DepthwiseConv2D': {
      const [kh, kw] = pair(c.kernelSize, 1);
      return kh * kw * cin * c.depthMultiplier + (c.useBias ? cin * c.depthMultiplier : 0);
    }
    case 'SeparableConv2D': {
      const [kh, kw] = pair(c.kernelSize, 1);
      const dm = c.depthMultiplier;
      return kh * kw * cin * dm + cin * dm * c.filters + (c.useBias ? c.filters : 0);
    }
    case 'BatchNormalization':
      // gamma (scale), beta (center), moving mean and moving variance: one value per channel each
      return cin * ((c.scale ? 1 : 0) + (c.center ? 1 : 0) + 2);
    case 'LayerNormalization': case 'GroupNormalization':
      // gamma (scale) and beta (center), one value per channel each
      return cin * ((c.scale ? 1 : 0) + (c.center ? 1 : 0));
    case 'InputLayer': case 'Flatten': case 'Dropout': case 'Activation': case 'ReLU': case 'LeakyReLU': case 'Softmax':
    case 'Reshape': case 'MaxPooling2D': case 'AveragePooling2D': case 'LpPooling2D': case 'GlobalAveragePooling2D':
    case 'GlobalMaxPooling2D': case 'ZeroPadding2D': case 'UpSampling2D': case 'Add': case 'Multiply': case 'Average':
    case 'Concatenate': case 'Cropping2D': case 'MaxPooling1D': case 'AveragePooling1D': case 'GlobalAveragePooling1D':
    case 'GlobalMaxPooling1D': case 'Rescaling':
    case 'RandomFlip': case 'RandomRotation': case 'RandomZoom': case 'RandomTranslation': case 'RandomContrast': case 'RandomBrightness':
      return 0;
    case 'Normalization':
      // mean and variance per channel, and adapt()'s count
      return 2 * cin + 1;
    case 'Conv1D':
      // Keras's kernel [k, in / groups, filters]
      return c.kernelSize[0] * (cin / (c.groups ?? 1)) * c.filters + (c.useBias ? c.filters : 0);
    case 'Conv2DTranspose': {
      // Keras's kernel [kh, kw, filters, in]
      const [kh, kw] = pair(c.kernelSize, 1);
      return kh * kw * c.filters * cin + (c.useBias ? c.filters : 0);
    }
    default:
      throw new Error(`expectedParams: no formula for ${layer.className}`);
  }
}

interface Case {
  factory: keyof typeof ck.layers;
  options: Record<string, unknown>;
  /** One example's input shape (one per input for merge layers). */
  input: Shape | Shape[];
  output: Shape;
}

const merge = (factory: Case['factory'], output: Shape, second: Shape = [4, 4, 3]): Case =>
  ({ factory, options: {}, input: [[4, 4, 3], second], output });

/** One case (at least) per ck.layers factory. */
const CASES: Case[] = [
  { factory: 'input', options: { shape: [6, 6, 3] }, input: [6, 6, 3], output: [6, 6, 3] },
  { factory: 'inputLayer', options: { inputShape: [7] }, input: [7], output: [7] },
  { factory: 'conv2d', options: { filters: 4, kernelSize: 3 }, input: [8, 8, 3], output: [6, 6, 4] },
  { factory: 'conv2d', options: { filters: 6, kernelSize: [3, 1], strides: 2, padding: 'same', useBias: false }, input: [8, 7, 3], output: [4, 4, 6] },
  { factory: 'conv2d', options: { filters: 6, kernelSize: 3, groups: 2, padding: 'same' }, input: [5, 5, 4], output: [5, 5, 6] },
  { factory: 'dense', options: { units: 5 }, input: [7], output: [5] },
  { factory: 'dense', options: { units: 3, useBias: false }, input: [4], output: [3] },
  { factory: 'flatten', options: {}, input: [2, 3, 4], output: [24] },
  { factory: 'dropout', options: { rate: 0.25 }, input: [7], output: [7] },
  { factory: 'activation', options: { activation: 'tanh' }, input: [7], output: [7] },
  { factory: 'reLU', options: { maxValue: 6 }, input: [4, 4, 3], output: [4, 4, 3] },
  { factory: 'reshape', options: { targetShape: [3, -1] }, input: [2, 3, 4], output: [3, 8] },
  { factory: 'depthwiseConv2d', options: { kernelSize: 3, depthMultiplier: 2 }, input: [8, 8, 3], output: [6, 6, 6] },
  { factory: 'separableConv2d', options: { filters: 5, kernelSize: 3, depthMultiplier: 2, padding: 'same' }, input: [8, 8, 3], output: [8, 8, 5] },
  { factory: 'zeroPadding2d', options: { padding: [[1, 2], [0, 1]] }, input: [4, 4, 3], output: [7, 5, 3] },
  { factory: 'upSampling2d', options: { size: [2, 3] }, input: [4, 4, 3], output: [8, 12, 3] },
  { factory: 'lpPooling2d', options: { poolSize: 2 }, input: [8, 8, 3], output: [4, 4, 3] },
  merge('add', [4, 4, 3]),
  merge('multiply', [4, 4, 3]),
  merge('average', [4, 4, 3]),
  merge('concatenate', [4, 4, 8], [4, 4, 5]),
  { factory: 'leakyReLU', options: { alpha: 0.1 }, input: [7], output: [7] },
  { factory: 'softmax', options: {}, input: [7], output: [7] },
  { factory: 'maxPooling2d', options: { poolSize: 2 }, input: [8, 8, 3], output: [4, 4, 3] },
  { factory: 'averagePooling2d', options: { poolSize: 3, strides: 1 }, input: [8, 8, 3], output: [6, 6, 3] },
  { factory: 'globalAveragePooling2d', options: {}, input: [8, 8, 3], output: [3] },
  { factory: 'globalMaxPooling2d', options: { keepDims: true }, input: [8, 8, 3], output: [1, 1, 3] },
  { factory: 'batchNormalization', options: {}, input: [4, 4, 3], output: [4, 4, 3] },
  { factory: 'batchNormalization', options: { center: false }, input: [5], output: [5] },
  { factory: 'layerNormalization', options: {}, input: [4, 4, 3], output: [4, 4, 3] },
  { factory: 'layerNormalization', options: { scale: false }, input: [5], output: [5] },
  { factory: 'groupNormalization', options: { groups: 3 }, input: [4, 4, 6], output: [4, 4, 6] },
  { factory: 'groupNormalization', options: { groups: 2, center: false }, input: [6], output: [6] },
  { factory: 'conv2dTranspose', options: { filters: 4, kernelSize: 3, strides: 2, padding: 'same' }, input: [4, 5, 3], output: [8, 10, 4] },
  { factory: 'conv2dTranspose', options: { filters: 2, kernelSize: [2, 3], strides: [3, 1], outputPadding: [1, 0], useBias: false }, input: [4, 4, 3], output: [12, 6, 2] },
  { factory: 'cropping2D', options: { cropping: [[1, 0], [2, 1]] }, input: [4, 5, 3], output: [3, 2, 3] },
  { factory: 'conv1d', options: { filters: 4, kernelSize: 3, strides: 2, padding: 'same' }, input: [9, 3], output: [5, 4] },
  { factory: 'conv1d', options: { filters: 6, kernelSize: 2, dilationRate: 3, padding: 'causal', groups: 3, useBias: false }, input: [7, 3], output: [7, 6] },
  { factory: 'maxPooling1d', options: { poolSize: 3 }, input: [10, 2], output: [3, 2] },
  { factory: 'averagePooling1d', options: { poolSize: 2, strides: 1, padding: 'same' }, input: [5, 2], output: [5, 2] },
  { factory: 'globalAveragePooling1d', options: {}, input: [5, 2], output: [2] },
  { factory: 'globalMaxPooling1d', options: { keepdims: true }, input: [5, 2], output: [1, 2] },
  { factory: 'rescaling', options: { scale: 1 / 255, offset: -1 }, input: [4, 4, 3], output: [4, 4, 3] },
  { factory: 'normalization', options: {}, input: [4, 4, 3], output: [4, 4, 3] },
  { factory: 'normalization', options: { mean: [1, 2], variance: 4 }, input: [2], output: [2] },
  { factory: 'randomFlip', options: { mode: 'horizontal' }, input: [4, 5, 3], output: [4, 5, 3] },
  { factory: 'randomRotation', options: { factor: [-0.1, 0.2], fillMode: 'constant' }, input: [4, 5, 3], output: [4, 5, 3] },
  { factory: 'randomZoom', options: { heightFactor: 0.2 }, input: [4, 5, 3], output: [4, 5, 3] },
  { factory: 'randomTranslation', options: { heightFactor: 0.1, widthFactor: 0.2 }, input: [4, 5, 3], output: [4, 5, 3] },
  { factory: 'randomContrast', options: { factor: 0.3, valueRange: [0, 1] }, input: [4, 5, 3], output: [4, 5, 3] },
  { factory: 'randomBrightness', options: { factor: 0.3 }, input: [4, 5, 1], output: [4, 5, 1] },
];

const make = (c: Case, name?: string): ck.Layer =>
  (ck.layers[c.factory] as (o: unknown) => ck.Layer)({ ...c.options, ...(name ? { name } : {}) });
const batch = (s: Shape) => [null, ...s];
const isInput = (c: Case) => c.factory === 'input' || c.factory === 'inputLayer';
const isMerge = (c: Case) => Array.isArray(c.input[0]);
const sizes = (ws: ck.Tensor[]) => ws.reduce((n, w) => n + w.size, 0);

/** Everything a built layer must agree on: shapes, the count, the formula and its weights. */
function expectBuilt(layer: ck.Layer, c: Case): void {
  const inputs = (isMerge(c) ? c.input : [c.input]) as Shape[];
  const params = expectedParams(layer, inputs[0]);
  expect({ name: layer.name, isBuilt: layer.isBuilt }).toEqual({ name: layer.name, isBuilt: true });
  expect(layer.inputShape).toEqual(isMerge(c) ? inputs.map(batch) : batch(inputs[0]));
  expect(layer.outputShape).toEqual(batch(c.output));
  expect({ name: layer.name, params: layer.countParams() }).toEqual({ name: layer.name, params });
  expect({ name: layer.name, weights: sizes(layer.getWeights()) }).toEqual({ name: layer.name, weights: params });
}

describe('every layer kind, built', () => {
  test('the table covers every ck.layers factory', () => {
    expect(new Set(CASES.map((c) => c.factory))).toEqual(new Set(Object.keys(ck.layers)));
  });

  test('in a Sequential model: known as soon as the model is made, before and after it builds', () => {
    for (const c of CASES.filter((k) => !isMerge(k))) {
      const layer = make(c);
      const model = ck.sequential(isInput(c) ? [layer] : [ck.layers.input({ shape: c.input as Shape }), layer]);
      // the issue: this threw "Cannot read properties of undefined (reading '2')" for conv2d
      expect(model.layers.map((l) => l.countParams())).toEqual(model.layers.map((l) => expectedParams(l, c.input as Shape)));
      expectBuilt(layer, c);
      if (isInput(c)) continue;  // (a model of an input layer alone does not build)
      model.build();
      expectBuilt(layer, c);
      expect(model.countParams()).toBe(layer.countParams());
    }
  });

  test('in a Sequential model grown with add(), and with inputShape on the first layer', () => {
    for (const c of CASES.filter((k) => !isMerge(k) && !isInput(k))) {
      const model = ck.sequential();
      const layer = make({ ...c, options: { ...c.options, inputShape: c.input } });
      model.add(layer);
      expectBuilt(layer, c);
      model.add(ck.layers.flatten({ name: `${layer.name}_then_flatten` }));
      expect(model.layers[1].outputShape).toEqual([null, prod(c.output)]);
      expect(model.layers.map((l) => l.name)).toEqual([layer.name, `${layer.name}_then_flatten`]);
    }
  });

  test('in a functional model, applied to ck.input, and loaded back from its files', async () => {
    for (const [i, c] of CASES.entries()) {
      if (isInput(c)) continue;
      const name = `case_${i}_${c.factory}`;
      const layer = make(c, name);
      const inputs = (isMerge(c) ? c.input : [c.input]) as Shape[];
      const xs = inputs.map((shape) => ck.input({ shape }));
      const y = layer.apply(isMerge(c) ? xs : xs[0]);
      expectBuilt(layer, c);  // applying builds the layer, as in tfjs
      const model = ck.model({ inputs: xs, outputs: y });
      expectBuilt(layer, c);
      expect(model.layers.filter((l) => l.className === 'InputLayer').map((l) => l.outputShape)).toEqual(inputs.map(batch));

      const dir = `${root}/${name}`;
      await model.save(`file://${dir}`);
      const loaded = await ck.loadModel(`file://${dir}`);
      const again = loaded.getLayer(name);
      expectBuilt(again, c);
      expect(loaded.countParams()).toBe(model.countParams());
      // the loaded weights are the saved ones, count for count
      expect(again.getWeights().map((w) => w.shape)).toEqual(layer.getWeights().map((w) => w.shape));
    }
  });
});

describe('a layer that is not built', () => {
  test('countParams() and outputShape: a ValueError naming the layer; inputShape only as declared; no weights', () => {
    const layers = [
      ck.layers.conv2d({ filters: 4, kernelSize: 3, name: 'lonely_conv' }),
      // declaring an input shape does not build a layer that no model holds (as in tfjs)
      ck.layers.dense({ units: 3, inputShape: [4], name: 'lonely_dense' }),
    ];
    for (const layer of layers) {
      expect(layer.isBuilt).toBe(false);
      expect(() => layer.countParams()).toThrow(ck.ValueError);
      expect(() => layer.countParams()).toThrow(new RegExp(`^${layer.name}\\.countParams: the layer is not built yet`));
      expect(() => layer.outputShape).toThrow(ck.ValueError);
      expect(() => layer.outputShape).toThrow(new RegExp(`^${layer.name}\\.outputShape: the layer is not built yet`));
      expect(layer.inputShape).toEqual(layer.batchInputShape);
      expect(layer.getWeights()).toEqual([]);
      expect(() => layer.setWeights([])).toThrow(ck.ValueError);
    }
    expect(layers[0].inputShape).toBeUndefined();
    expect(layers[1].inputShape).toEqual([null, 4]);
  });

  test('in a Sequential model without an input shape, or after a layer whose shape does not fit', () => {
    const shapeless = ck.sequential([ck.layers.dense({ units: 2, name: 'shapeless' })]);
    expect(() => shapeless.layers[0].countParams()).toThrow(/^shapeless\.countParams: the layer is not built yet/);
    // a kernel larger than its input: the model reports it on build; the layers after it are not built
    const model = ck.sequential([
      ck.layers.input({ shape: [4, 4, 1] }), ck.layers.conv2d({ filters: 2, kernelSize: 5, name: 'too_big' }),
      ck.layers.flatten({ name: 'after_too_big' }),
    ]);
    expect(() => model.layers[1].countParams()).toThrow(ck.ValueError);
    expect(() => model.layers[2].outputShape).toThrow(ck.ValueError);
    expect(() => model.build()).toThrow(/too_big: the 5x5 kernel does not fit/);
  });
});

describe('weights of a layer built before its model', () => {
  test('getWeights in a Sequential model that has not built yet: the model builds, and they are its weights', () => {
    const conv = ck.layers.conv2d({ filters: 3, kernelSize: 2, biasInitializer: 'ones' });
    const model = ck.sequential([ck.layers.input({ shape: [5, 5, 2] }), conv, ck.layers.flatten()]);
    expect(model.built).toBeUndefined();
    const before = conv.getWeights();
    expect(model.built).toBeDefined();
    expect(before.map((w) => w.shape)).toEqual([[2, 2, 2, 3], [3]]);
    expect(Array.from(before[1].dataSync())).toEqual([1, 1, 1]);
    expect(model.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(before.map((w) => Array.from(w.dataSync())));
  });

  test('a layer applied to ck.input before its model exists: its weights are made once, and the model starts from them', () => {
    const dense = ck.layers.dense({ units: 2 });
    const x = ck.input({ shape: [3] });
    const y = dense.apply(x);
    const before = dense.getWeights();
    expect(before.map((w) => w.shape)).toEqual([[3, 2], [2]]);
    expect(Array.from(dense.getWeights()[0].dataSync())).toEqual(Array.from(before[0].dataSync()));
    const model = ck.model({ inputs: x, outputs: y });
    expect(model.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(before.map((w) => Array.from(w.dataSync())));
    // and set before the model exists
    const other = ck.layers.dense({ units: 1 });
    const z = other.apply(x);
    other.setWeights([ck.fill([3, 1], 2), ck.fill([1], 1)]);
    expect(Array.from(ck.model({ inputs: x, outputs: z }).predict(ck.ones([1, 3])).dataSync())).toEqual([7]);
  });

  test('setWeights before the model builds, checked against the built shapes', () => {
    const dense = ck.layers.dense({ units: 2 });
    const model = ck.sequential([ck.layers.input({ shape: [3] }), dense]);
    expect(() => dense.setWeights([ck.zeros([2, 2]), ck.zeros([2])])).toThrow(ck.ShapeError);
    dense.setWeights([ck.fill([3, 2], 0.5), ck.fill([2], -1)]);
    expect(Array.from(model.predict(ck.ones([1, 3])).dataSync())).toEqual([0.5, 0.5]);
  });

  test('a layer in two models of different input sizes: its shapes are those of the model built last', () => {
    const dense = ck.layers.dense({ units: 2 });
    const a = ck.sequential([ck.layers.input({ shape: [3] }), dense]);
    const b = ck.sequential([ck.layers.input({ shape: [5] }), dense]);
    expect(dense.countParams()).toBe(5 * 2 + 2);  // added to b last
    a.build();
    expect([dense.inputShape, dense.countParams(), sizes(dense.getWeights())]).toEqual([[null, 3], 3 * 2 + 2, 3 * 2 + 2]);
    b.build();
    expect([dense.inputShape, dense.countParams(), sizes(dense.getWeights())]).toEqual([[null, 5], 5 * 2 + 2, 5 * 2 + 2]);
  });

  test('a layer reused in another model (transfer learning) keeps its count and its trained weights', () => {
    const base = ck.sequential([ck.layers.input({ shape: [6, 6, 1] }), ck.layers.conv2d({ filters: 2, kernelSize: 3 })]);
    base.build();
    const conv = base.layers[1];
    const trained = conv.getWeights().map((w) => Array.from(w.dataSync()));
    const head = ck.layers.dense({ units: 4 });
    const model = ck.sequential([...base.layers, ck.layers.flatten(), head]);
    expect(model.layers.map((l) => l.countParams())).toEqual([0, 3 * 3 * 1 * 2 + 2, 0, 4 * 4 * 2 * 4 + 4]);
    expect(sizes(head.getWeights())).toBe(head.countParams());
    model.build();
    expect(conv.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(trained);
  });
});

describe('ck.applications models', () => {
  const models: [string, () => ck.LayersModel][] = [
    ['mobileNet', () => ck.applications.mobileNet({ alpha: 0.25, inputShape: [32, 32, 3], classes: 5 })],
    ['mobileNetV2', () => ck.applications.mobileNetV2({ alpha: 0.35, inputShape: [32, 32, 3], classes: 5 })],
    ['resNet20', () => ck.applications.resNet20({ classes: 4 })],
    ['vgg', () => ck.applications.vgg({ inputShape: [16, 16, 3], blocks: [1, 1], filters: 4, fcUnits: [8], classes: 3 })],
  ];
  test.each(models)('%s: every layer built, its count the formula and its weights, its input the outputs it reads', (_, build) => {
    const model = build();
    for (const layer of model.layers) {
      const reads = layer.inboundNodes[0].inputs.map((t) => t.sourceLayer.outputShape);
      const inputShape = layer.className === 'InputLayer' ? layer.outputShape : layer.multiInput ? reads : reads[0];
      expect({ layer: layer.name, inputShape: layer.inputShape }).toEqual({ layer: layer.name, inputShape });
      const first = (layer.multiInput ? (layer.inputShape as (number | null)[][])[0] : layer.inputShape as (number | null)[]).slice(1) as number[];
      const params = expectedParams(layer, first);
      expect({ layer: layer.name, params: layer.countParams(), weights: sizes(layer.getWeights()) }).toEqual({ layer: layer.name, params, weights: params });
    }
    expect(model.layers.reduce((n, l) => n + l.countParams(), 0)).toBe(model.countParams());
    expect(model.layers.at(-1)!.outputShape).toEqual(model.outputShape);
  });
});

describe('as tfjs on the same models', () => {
  type Lib = typeof ck | typeof tf;
  /** A Sequential model of most layer kinds both libraries have, every layer named. */
  function sequentialOf(lib: Lib, explicitInput: boolean): { layers: { name: string; countParams(): number; outputShape: unknown; getWeights(): { shape: number[] }[] }[] } {
    const l = lib.layers as typeof ck.layers & typeof tf.layers;
    const first = { filters: 4, kernelSize: 3, padding: 'same' as const, name: 'conv' };
    const layers = [
      ...(explicitInput ? [l.inputLayer({ inputShape: [10, 10, 3], name: 'image' })] : []),
      l.conv2d(explicitInput ? first : { ...first, inputShape: [10, 10, 3] }),
      l.batchNormalization({ name: 'bn' }),
      l.reLU({ maxValue: 6, name: 'relu6' }),
      l.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, name: 'dw' }),
      l.separableConv2d({ filters: 5, kernelSize: 3, padding: 'same', name: 'sep' }),
      l.zeroPadding2d({ padding: 1, name: 'pad' }),
      l.maxPooling2d({ poolSize: 2, name: 'max' }),
      l.upSampling2d({ size: [2, 2], name: 'up' }),  // (tfjs: a number gives NaN shapes)
      l.averagePooling2d({ poolSize: 2, name: 'avg' }),
      l.leakyReLU({ alpha: 0.2, name: 'leaky' }),
      l.reshape({ targetShape: [25, 5], name: 'reshape' }),
      l.flatten({ name: 'flat' }),
      l.dropout({ rate: 0.5, name: 'drop' }),
      l.dense({ units: 6, name: 'fc' }),
      l.activation({ activation: 'relu', name: 'act' }),
      l.dense({ units: 3, useBias: false, name: 'logits' }),
      l.softmax({ name: 'probs' }),
    ];
    // (ck.sequential takes the list, tf.sequential { layers })
    return lib === ck ? ck.sequential(layers as unknown as ck.Layer[]) as never : tf.sequential({ layers: layers as unknown as tf.layers.Layer[] }) as never;
  }

  /** A functional model with merges and global pooling, every layer named. */
  function functionalOf(lib: Lib) {
    const l = lib.layers as typeof ck.layers & typeof tf.layers;
    const x = lib.input({ shape: [8, 8, 3], name: 'x' }) as never;
    const a = l.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'a' }).apply(x) as never;
    const b = l.conv2d({ filters: 4, kernelSize: 1, name: 'b' }).apply(x) as never;
    const sum = l.add({ name: 'sum' }).apply([a, b]) as never;
    const times = l.multiply({ name: 'times' }).apply([a, sum]) as never;
    const mean = l.average({ name: 'mean' }).apply([times, b]) as never;
    const cat = l.concatenate({ name: 'cat' }).apply([mean, x]) as never;
    const gmax = l.globalMaxPooling2d({ name: 'gmax' }).apply(cat) as never;
    const gap = l.globalAveragePooling2d({ name: 'gap' }).apply(cat) as never;
    const both = l.concatenate({ name: 'both' }).apply([gmax, gap]) as never;
    const out = l.dense({ units: 2, name: 'out' }).apply(both);
    return (lib.model as (a: unknown) => never)({ inputs: x, outputs: out }) as ReturnType<typeof sequentialOf>;
  }

  const describeLayers = (m: ReturnType<typeof sequentialOf>) => m.layers.map((layer) => ({
    name: layer.name, params: layer.countParams(), outputShape: layer.outputShape, weights: layer.getWeights().map((w) => w.shape),
  }));

  test.each([
    ['Sequential with an input layer', (lib: Lib) => sequentialOf(lib, true)],
    ['Sequential with inputShape on its first layer', (lib: Lib) => sequentialOf(lib, false)],
    ['functional', functionalOf],
  ])('%s: model.layers (length, names, order), counts, output shapes and weight shapes', (_, build) => {
    const mine = describeLayers(build(ck));
    const theirs = describeLayers(build(tf));
    expect(mine.map((l) => l.name)).toEqual(theirs.map((l) => l.name));
    expect(mine).toEqual(theirs);
  });

  test('model.layers keeps an explicit input layer, as tfjs does (Keras 3 leaves it out of Sequential.layers)', () => {
    expect(sequentialOf(ck, true).layers.map((l) => l.name)[0]).toBe('image');
    expect(sequentialOf(tf, true).layers.map((l) => l.name)[0]).toBe('image');
    expect(sequentialOf(ck, false).layers.map((l) => l.name)[0]).toBe('conv');
    expect(sequentialOf(tf, false).layers.map((l) => l.name)[0]).toBe('conv');
  });
});
