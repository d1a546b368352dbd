// ONNX export checked against a real runtime: every model is written with ck.io.toOnnx (or
// model.save('onnx://...')), run by onnxruntime-node on random inputs, and its outputs compared
// with convkit's predict (max error within 1e-4 of the output's scale). One model per layer
// kind and option that changes the ONNX form (padding, strides, dilation, groups, activations,
// layouts), both model kinds, several inputs and outputs, ck.applications' networks, and a
// TensorFlow.js model loaded by convkit, against tfjs's own predictions.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { onnx } from 'onnx-proto';
import * as ck from '../lib';
import { fromNchw, OnnxRuntime, relativeError, RuntimeResult, toNchw } from '../test-support/onnxruntime';
import { BatchNormalization, Dense } from '../lib/layers';
import * as tf from '@tensorflow/tfjs';
import { randomArray } from '../test-support/helpers';
import { saveTfjs, tfjsReady } from '../test-support/tfjs-io';

let dir: string;
let fileCount = 0;
const runtime = new OnnxRuntime();

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-onnx-'));
  runtime.start();
});

afterAll(() => {
  runtime.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const runOnnx = (file: string, feeds: { data: Float32Array; dims: number[] }[]) => runtime.run(file, feeds);

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * Every weight set to random values, so that biases, batch-norm statistics and betas take part
 * (their initial zeros and ones would hide a misplaced one); moving variances stay positive.
 */
function randomizeWeights(model: ck.LayersModel, seed: number): void {
  model.layers.forEach((layer, i) => {
    const weights = layer.getWeights();
    if (weights.length === 0) return;
    const isBatchNorm = layer instanceof BatchNormalization;
    layer.setWeights(weights.map((w, k) => {
      const variance = isBatchNorm && k === weights.length - 1;
      return ck.tensor(randomArray(w.size, seed * 100 + i * 7 + k, variance ? 0.5 : -0.6, variance ? 2 : 0.6), [...w.shape]);
    }));
  });
}

interface Compared {
  errors: number[];
  file: string;
  run: RuntimeResult;
}

/**
 * Exports `model`, runs it in onnxruntime and in convkit on the same random batch, and returns
 * the relative error of each output (the file and the runtime's answer for further checks).
 */
async function compare(model: ck.LayersModel, opts: { layout?: 'nhwc' | 'nchw'; batch?: number; seed?: number; randomize?: boolean; inputScale?: number } = {}): Promise<Compared> {
  const batch = opts.batch ?? 3;
  if (opts.randomize !== false) randomizeWeights(model, opts.seed ?? 1);
  const file = path.join(dir, `model${fileCount++}.onnx`);
  await ck.io.toOnnx(model, file, opts.layout ? { layout: opts.layout } : {});
  const inputShapes = model.built!.inputShapes;
  const scale = opts.inputScale ?? 1;
  const xs = inputShapes.map((s, i) => randomArray(batch * size(s), (opts.seed ?? 1) * 31 + i, -scale, scale));
  const run = await runOnnx(file, inputShapes.map((s, i) => {
    const nchw = opts.layout === 'nchw' && s.length === 3;
    return { data: nchw ? toNchw(xs[i], [batch, ...s]) : xs[i], dims: nchw ? [batch, s[2], s[0], s[1]] : [batch, ...s] };
  }));
  const predicted = model.predict(xs.length === 1 ? ck.tensor(xs[0], [batch, ...inputShapes[0]]) : xs.map((x, i) => ck.tensor(x, [batch, ...inputShapes[i]])));
  const wants = Array.isArray(predicted) ? predicted : [predicted];
  expect(run.outputs).toHaveLength(wants.length);
  const errors = await Promise.all(wants.map(async (t, o) => {
    const want = await t.data();
    const got = run.outputs[o];
    const shape = [...t.shape];
    const nchw = opts.layout === 'nchw' && shape.length === 4;
    expect(got.dims).toEqual(nchw ? [shape[0], shape[3], shape[1], shape[2]] : shape);
    return relativeError(nchw ? fromNchw(got.data, shape) : got.data, want);
  }));
  return { errors, file, run };
}

const TOLERANCE = 1e-4;

async function expectMatches(model: ck.LayersModel, opts: Parameters<typeof compare>[1] = {}): Promise<Compared> {
  const r = await compare(model, opts);
  for (const e of r.errors) expect(e).toBeLessThan(TOLERANCE);
  if (process.env.ONNX_DEBUG) console.log(expect.getState().currentTestName, r.errors);
  return r;
}

/** A Sequential model on a 7x9x3 image (odd sizes: 'same' pads are uneven at stride 2). */
const seq = (...layers: ck.Layer[]) => ck.sequential([ck.layers.input({ shape: [7, 9, 3] }), ...layers]);
const L = ck.layers;

describe('each layer kind runs in onnxruntime as in convkit', () => {
  const cases: [string, () => ck.LayersModel][] = [
    ['conv2d valid', () => seq(L.conv2d({ filters: 4, kernelSize: [3, 2] }))],
    ['conv2d same, stride 2 (pads bottom/right), relu', () => seq(L.conv2d({ filters: 5, kernelSize: 4, strides: 2, padding: 'same', activation: 'relu' }))],
    ['conv2d same, strides [2, 3], elu', () => seq(L.conv2d({ filters: 4, kernelSize: [3, 2], strides: [2, 3], padding: 'same', activation: 'elu' }))],
    ['conv2d dilated, sigmoid', () => seq(L.conv2d({ filters: 3, kernelSize: 3, dilationRate: [2, 1], padding: 'same', activation: 'sigmoid' }))],
    ['conv2d groups 3, no bias, tanh', () => seq(L.conv2d({ filters: 6, kernelSize: 3, groups: 3, useBias: false, activation: 'tanh' }))],
    ['conv2d relu6, softmax over channels', () => seq(L.conv2d({ filters: 4, kernelSize: 1, activation: 'relu6' }), L.conv2d({ filters: 4, kernelSize: 1, activation: 'softmax' }))],
    ['depthwiseConv2d same stride 2, multiplier 2, relu6', () => seq(L.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'same', depthMultiplier: 2, activation: 'relu6' }))],
    ['depthwiseConv2d dilated, no bias', () => seq(L.depthwiseConv2d({ kernelSize: 2, dilationRate: 2, useBias: false }))],
    ['separableConv2d same, multiplier 2, relu', () => seq(L.separableConv2d({ filters: 5, kernelSize: 3, padding: 'same', depthMultiplier: 2, activation: 'relu' }))],
    ['flatten (NHWC order) + dense softmax', () => seq(L.conv2d({ filters: 2, kernelSize: 2 }), L.flatten(), L.dense({ units: 6, activation: 'softmax' }))],
    ['dense on images (last axis), no bias', () => seq(L.dense({ units: 4, useBias: false }), L.conv2d({ filters: 2, kernelSize: 2 }))],
    ['dense on images with bias, then sigmoid', () => seq(L.dense({ units: 4, activation: 'sigmoid' }))],
    ['conv2d swish, depthwiseConv2d hardSwish, dense gelu', () => seq(L.conv2d({ filters: 4, kernelSize: 3, activation: 'swish' }), L.depthwiseConv2d({ kernelSize: 3, activation: 'hardSwish' }), L.dense({ units: 3, activation: 'gelu' }))],
    ['batchNormalization on images', () => seq(L.batchNormalization({ epsilon: 0.01 }))],
    ['batchNormalization on vectors, center/scale off', () => seq(L.flatten(), L.dense({ units: 5 }), L.batchNormalization({ center: false }), L.batchNormalization({ scale: false }))],
    ...(['relu', 'relu6', 'elu', 'sigmoid', 'tanh', 'softmax', 'gelu', 'gelu_new', 'swish', 'hardSwish', 'hardSigmoid', 'softplus', 'selu', 'mish'] as const).map((a): [string, () => ck.LayersModel] =>
      [`activation ${a}`, () => seq(L.activation({ activation: a }))]),
    ['activation linear', () => seq(L.conv2d({ filters: 2, kernelSize: 1 }), L.activation({ activation: 'linear' }))],
    ['leakyReLU', () => seq(L.leakyReLU({ alpha: 0.15 }))],
    ['reLU, reLU maxValue, softmax layer', () => seq(L.reLU(), L.conv2d({ filters: 3, kernelSize: 1 }), L.reLU({ maxValue: 0.4 }), L.softmax())],
    ['maxPooling2d same (pads bottom/right)', () => seq(L.maxPooling2d({ poolSize: [2, 4], strides: [2, 3], padding: 'same' }))],
    ['maxPooling2d valid [2, 3]', () => seq(L.maxPooling2d({ poolSize: [2, 3] }))],
    ['averagePooling2d same (padding not counted)', () => seq(L.averagePooling2d({ poolSize: [2, 4], strides: [2, 3], padding: 'same' }))],
    ['averagePooling2d same 3x3 stride 1', () => seq(L.averagePooling2d({ poolSize: 3, strides: 1, padding: 'same' }))],
    ['averagePooling2d valid stride 1', () => seq(L.averagePooling2d({ poolSize: 2, strides: 1 }))],
    ['lpPooling2d p=2 same', () => seq(L.lpPooling2d({ poolSize: [2, 4], strides: [2, 3], padding: 'same' }))],
    ['lpPooling2d p=3 valid', () => seq(L.lpPooling2d({ poolSize: 2, p: 3 }))],
    ['globalAveragePooling2d', () => seq(L.globalAveragePooling2d(), L.dense({ units: 2 }))],
    ['globalMaxPooling2d keepDims', () => seq(L.globalMaxPooling2d({ keepDims: true }), L.conv2d({ filters: 2, kernelSize: 1 }))],
    ['globalAveragePooling2d keepDims', () => seq(L.globalAveragePooling2d({ keepDims: true }))],
    ['reshape image -> rows -> image', () => seq(L.reshape({ targetShape: [21, 3, 3] }), L.conv2d({ filters: 2, kernelSize: 2 }), L.reshape({ targetShape: [-1, 2] }), L.dense({ units: 3 }))],
    ['dropout (identity at inference)', () => seq(L.dropout({ rate: 0.5 }), L.conv2d({ filters: 2, kernelSize: 1 }), L.dropout({ rate: 0.3 }))],
    ['zeroPadding2d uneven', () => seq(L.zeroPadding2d({ padding: [[1, 2], [0, 3]] }), L.conv2d({ filters: 2, kernelSize: 3 }))],
    ['upSampling2d nearest [2, 3]', () => seq(L.upSampling2d({ size: [2, 3] }))],
    ['upSampling2d bilinear', () => seq(L.upSampling2d({ size: [3, 2], interpolation: 'bilinear' }))],
    ['a Sequential model without an input layer', () => ck.sequential([L.conv2d({ filters: 2, kernelSize: 3, inputShape: [6, 5, 2] }), L.flatten(), L.dense({ units: 3 })])],
    ['a vector model', () => ck.sequential([L.dense({ units: 8, inputShape: [5], activation: 'tanh' }), L.dropout({ rate: 0.2 }), L.dense({ units: 3, activation: 'softmax' })])],
    ['upSampling2d bilinear half-pixel centres (Resize half_pixel)', () => seq(L.conv2d({ filters: 2, kernelSize: 2 }), L.upSampling2d({ size: [3, 2], interpolation: 'bilinear', halfPixelCenters: true }))],
  ];
  test.each(cases)('%s', async (_, make) => {
    // inputs well past the activations' bends (ReLU6's cap, sigmoid's tails)
    await expectMatches(make(), { inputScale: 8 });
  });
});

describe('functional models', () => {
  /** Two branches of one image merged by `merge`, then a head. */
  function branches(merge: (xs: ck.SymbolicTensor[]) => ck.SymbolicTensor, count = 2, head = true): ck.Functional {
    const image = ck.input({ shape: [6, 8, 3] });
    const xs = Array.from({ length: count }, (_, k) => L.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: k % 2 ? 'relu' : 'linear' }).apply(image) as ck.SymbolicTensor);
    let y = merge(xs);
    if (head) y = L.dense({ units: 3 }).apply(L.flatten().apply(y) as ck.SymbolicTensor) as ck.SymbolicTensor;
    return ck.model({ inputs: image, outputs: y });
  }

  test('add of three branches', async () => {
    await expectMatches(branches((xs) => L.add().apply(xs) as ck.SymbolicTensor, 3));
  });

  test('multiply of three branches', async () => {
    await expectMatches(branches((xs) => L.multiply().apply(xs) as ck.SymbolicTensor, 3));
  });

  // Squeeze-and-excitation: the image scaled by a gate of its channels, [C] (second) or
  // reshaped to [1, 1, C] (first), on images held NCHW and NHWC, and a sequence [L, C] by [C].
  test('multiply by a gate broadcast over space (squeeze-and-excitation), both layouts', async () => {
    const se = (reshaped: boolean) => {
      const image = ck.input({ shape: [6, 8, 3] });
      const x = L.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(image) as ck.SymbolicTensor;
      const squeezed = L.globalAveragePooling2d().apply(x) as ck.SymbolicTensor;
      let gate = L.dense({ units: 4, activation: 'sigmoid' }).apply(L.dense({ units: 2, activation: 'relu' }).apply(squeezed) as ck.SymbolicTensor) as ck.SymbolicTensor;
      if (reshaped) gate = L.reshape({ targetShape: [1, 1, 4] }).apply(gate) as ck.SymbolicTensor;
      const y = L.multiply().apply(reshaped ? [gate, x] : [x, gate]) as ck.SymbolicTensor;
      return ck.model({ inputs: image, outputs: y });
    };
    for (const reshaped of [false, true]) {
      for (const layout of ['nhwc', 'nchw'] as const) await expectMatches(se(reshaped), { layout });
    }
    const rows = ck.input({ shape: [5, 3] });
    const gate = L.dense({ units: 3, activation: 'sigmoid' }).apply(L.flatten().apply(rows) as ck.SymbolicTensor) as ck.SymbolicTensor;
    await expectMatches(ck.model({ inputs: rows, outputs: L.multiply().apply([rows, gate]) as ck.SymbolicTensor }));
  });

  test('average', async () => {
    await expectMatches(branches((xs) => L.average().apply(xs) as ck.SymbolicTensor));
  });

  test('concatenate images (channels) and vectors', async () => {
    await expectMatches(branches((xs) => L.concatenate().apply(xs) as ck.SymbolicTensor));
    const a = ck.input({ shape: [4] });
    const b = ck.input({ shape: [3] });
    const joined = L.concatenate().apply([L.dense({ units: 2 }).apply(a) as ck.SymbolicTensor, b]) as ck.SymbolicTensor;
    await expectMatches(ck.model({ inputs: [a, b], outputs: L.dense({ units: 2 }).apply(joined) as ck.SymbolicTensor }));
  });

  test('a merge of an image held NCHW and one held NHWC (after a reshape)', async () => {
    const image = ck.input({ shape: [4, 6, 2] });
    const conv = L.conv2d({ filters: 2, kernelSize: 1 }).apply(image) as ck.SymbolicTensor;
    const reshaped = L.reshape({ targetShape: [4, 6, 2] }).apply(L.dense({ units: 2 }).apply(image) as ck.SymbolicTensor) as ck.SymbolicTensor;
    await expectMatches(ck.model({ inputs: image, outputs: L.add().apply([reshaped, conv]) as ck.SymbolicTensor }));
  });

  test('several inputs and outputs', async () => {
    const image = ck.input({ shape: [5, 5, 2], name: 'image' });
    const extra = ck.input({ shape: [3], name: 'extra' });
    const features = L.globalAveragePooling2d().apply(L.conv2d({ filters: 3, kernelSize: 3, name: 'features' }).apply(image) as ck.SymbolicTensor) as ck.SymbolicTensor;
    const scores = L.dense({ units: 2, activation: 'softmax', name: 'scores' }).apply(L.add().apply([features, extra]) as ck.SymbolicTensor) as ck.SymbolicTensor;
    const map = L.conv2d({ filters: 1, kernelSize: 1, name: 'map' }).apply(image) as ck.SymbolicTensor;
    const model = ck.model({ inputs: [image, extra], outputs: [scores, map] });
    const r = await expectMatches(model);
    expect(r.errors).toHaveLength(2);
    expect(r.run.inputNames).toEqual(['image', 'extra']);
    expect(r.run.outputNames).toEqual(['scores', 'map']);
  });
});

describe('applications', () => {
  test('mobileNetV2 (alpha 0.35, 32x32)', async () => {
    const model = ck.applications.mobileNetV2({ alpha: 0.35, inputShape: [32, 32, 3], classes: 7, classifierActivation: 'linear' });
    await expectMatches(model, { batch: 2 });
  });

  test('mobileNetV3Small (alpha 0.75, 48x48): squeeze-and-excitation, hard swish and hard sigmoid', async () => {
    const model = ck.applications.mobileNetV3Small({ alpha: 0.75, inputShape: [48, 48, 3], classes: 7, classifierActivation: 'linear' });
    await expectMatches(model, { batch: 2 });
  });

  test('resNet20', async () => {
    const model = ck.applications.resNet20({ inputShape: [32, 32, 3], classes: 10, classifierActivation: 'linear' });
    await expectMatches(model, { batch: 2 });
  });
});

describe('a TensorFlow.js model through convkit to ONNX', () => {
  test("onnxruntime gives tfjs's own predictions", async () => {
    await tfjsReady();
    const ref = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [9, 7, 3], filters: 6, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' }),
        tf.layers.batchNormalization(),
        tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', depthMultiplier: 2 }),
        tf.layers.maxPooling2d({ poolSize: 2, padding: 'same' }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 4, activation: 'softmax' }),
      ],
    });
    ref.layers.forEach((layer, i) => layer.setWeights(layer.weights.map((w, k) => {
      const variance = w.name.includes('moving_variance');
      return tf.tensor(randomArray(size(w.shape as number[]), 700 + i * 10 + k, variance ? 0.5 : -0.6, variance ? 2 : 0.6), w.shape as number[]);
    })));
    const folder = path.join(dir, 'tfjs-model');
    await saveTfjs(ref, folder);
    const file = path.join(dir, 'from-tfjs.onnx');
    await ck.io.toOnnx(await ck.loadModel(`file://${folder}`), file);
    const x = randomArray(2 * 9 * 7 * 3, 77, -1, 1);
    const want = (ref.predict(tf.tensor(x, [2, 9, 7, 3])) as tf.Tensor).dataSync() as Float32Array;
    const run = await runOnnx(file, [{ data: x, dims: [2, 9, 7, 3] }]);
    expect(relativeError(run.outputs[0].data, want)).toBeLessThan(TOLERANCE);
  });
});

describe('layouts, metadata, the file', () => {
  test("layout 'nchw' takes and gives channels-first images", async () => {
    const model = seq(L.conv2d({ filters: 4, kernelSize: 3, padding: 'same', strides: 2 }), L.batchNormalization());
    const r = await expectMatches(model, { layout: 'nchw' });
    expect(r.run.inputNames).toHaveLength(1);
    const decoded = onnx.ModelProto.decode(fs.readFileSync(r.file));
    const dims = decoded.graph!.input![0].type!.tensorType!.shape!.dim!.map((d) => d.dimValue ? Number(d.dimValue) : d.dimParam);
    expect(dims).toEqual(['batch', 3, 7, 9]);
    // no Transpose is needed when both ends are NCHW
    expect(decoded.graph!.node!.map((n) => n.opType)).not.toContain('Transpose');
  });

  test("model.save('onnx://...') writes opset 13 with the class names in metadata_props", async () => {
    const model = seq(L.flatten(), L.dense({ units: 3, activation: 'softmax' }));
    model.userDefinedMetadata = { classNames: ['cat', 'dog', 'eel'] };
    const file = path.join(dir, 'saved.onnx');
    const result = await model.save(`onnx://${file}`);
    expect(result.modelArtifactsInfo.modelTopologyType).toBe('ONNX');
    const decoded = onnx.ModelProto.decode(fs.readFileSync(file));
    expect(decoded.opsetImport.map((o) => [o.domain, Number(o.version)])).toEqual([['', 13]]);
    expect(decoded.producerName).toBe('convkit');
    const meta = Object.fromEntries(decoded.metadataProps.map((p) => [p.key, p.value]));
    expect(JSON.parse(meta.classNames)).toEqual(['cat', 'dog', 'eel']);
    expect(meta.imageLayout).toBe('NHWC');
    const run = await runOnnx(file, [{ data: randomArray(7 * 9 * 3, 5), dims: [1, 7, 9, 3] }]);
    expect(run.outputNames).toEqual([model.layers[2].name]);
    expect(run.outputs[0].dims).toEqual([1, 3]);
  });

  test('a layer with no ONNX form is a ValueError naming it, and nothing is written', async () => {
    class MyDense extends Dense {}
    const custom = new MyDense({ units: 2, name: 'my_custom' });
    const model = ck.sequential([L.input({ shape: [3] }), custom]);
    const file = path.join(dir, 'never.onnx');
    await expect(ck.io.toOnnx(model, file)).rejects.toThrow(ck.ValueError);
    await expect(ck.io.toOnnx(model, file)).rejects.toThrow(/my_custom \(Dense\) has no ONNX form/);
    expect(fs.existsSync(file)).toBe(false);
  });

  test('an activation the exporter does not know is a ValueError naming it', async () => {
    const conv = L.conv2d({ filters: 2, kernelSize: 1, name: 'future_act' });
    const model = seq(conv);
    model.build();
    // as a newly added activation would arrive: the exporter must refuse it, not drop it
    Object.defineProperty(conv, 'activation', { value: 'future' });
    await expect(ck.io.toOnnx(model, path.join(dir, 'future.onnx'))).rejects.toThrow(/future_act \(Conv2D\).*activation 'future'/);
  });

  test('bad options and paths are typed errors', async () => {
    const model = seq(L.flatten());
    await expect(ck.io.toOnnx(model, path.join(dir, 'x.onnx'), { layout: 'nwhc' as never })).rejects.toThrow(/layout must be 'nhwc' or 'nchw'/);
    await expect(ck.io.toOnnx(model, path.join(dir, 'x.onnx'), { layouts: 'nchw' } as never)).rejects.toThrow(/unknown option 'layouts'/);
    await expect(ck.io.toOnnx(model, path.join(dir, 'x.onnx'), { classNames: [1, 2] as never })).rejects.toThrow(ck.ValueError);
    await expect(ck.io.toOnnx(model, '')).rejects.toThrow(ck.ValueError);
    await expect(ck.io.toOnnx(model, path.join(dir, 'missing', 'x.onnx'))).rejects.toThrow(ck.IOError);
  });
});
