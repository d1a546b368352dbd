// ONNX import checked against a real runtime: ONNX files made by PyTorch's torch.onnx.export
// (committed fixtures, made by test/fixtures/onnx/make-fixtures.py; full torchvision resnet18
// and mobilenet_v2 too when PyTorch is installed) and by convkit's own exporter are imported with
// ck.io.loadOnnx, and convkit's predictions on random NHWC inputs are compared with
// onnxruntime-node's on the same file (max error within 1e-4 of the output's scale). The
// imported models train (whole, and frozen under a new head), save and reload; hostile files
// are typed errors.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { onnx } from 'onnx-proto';
import * as ck from '../lib';
import { OnnxRuntime, relativeError, toNchw } from '../test-support/onnxruntime';
import { BatchNormalization } from '../lib/layers';
import { lcg, randomArray } from '../test-support/helpers';

const FIXTURES = path.join(__dirname, 'fixtures', 'onnx');
let dir: string;
const runtime = new OnnxRuntime();

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-onnx-import-'));
  runtime.start();
});

afterAll(() => {
  runtime.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const runOnnx = (file: string, feeds: { data: Float32Array; dims: number[] }[]) => runtime.run(file, feeds);

const TOLERANCE = 1e-4;

/**
 * Imports `file`, runs it in convkit on a random NHWC batch and in onnxruntime on the same batch
 * (NCHW when the file takes NCHW), and returns the relative error and the model.
 */
async function versusRuntime(file: string, opts: { batch?: number; nchw?: boolean; seed?: number } = {}): Promise<{ error: number; model: ck.Functional; x: ck.Tensor }> {
  const model = await ck.io.loadOnnx(file);
  const shape = model.inputs[0].shape.slice(1) as number[];
  const batch = opts.batch ?? 3;
  const dims = [batch, ...shape];
  const xs = randomArray(dims.reduce((a, b) => a * b, 1), opts.seed ?? 7, -1.5, 1.5);
  const nchw = opts.nchw ?? true;
  const run = await runOnnx(file, [{ data: nchw ? toNchw(xs, dims) : xs, dims: nchw ? [batch, shape[2], shape[0], shape[1]] : dims }]);
  const x = ck.tensor(xs, dims);
  const got = await (model.predict(x) as ck.Tensor).data();
  expect(got.length).toBe(run.outputs[0].data.length);
  const error = relativeError(got, run.outputs[0].data);
  if (process.env.ONNX_DEBUG) console.log(path.basename(file), error);
  return { error, model, x };
}

const fixture = (name: string) => path.join(FIXTURES, name);

describe('PyTorch exports (torch.onnx.export, opset 13) predict as in onnxruntime', () => {
  test('a resnet18-style network (torchvision BasicBlocks, 7x7/2 stem, padded max pool, downsample)', async () => {
    const { error, model } = await versusRuntime(fixture('tiny_resnet.onnx'));
    expect(error).toBeLessThan(TOLERANCE);
    expect(model.inputs[0].shape).toEqual([null, 32, 32, 3]);
    const kinds = new Set(model.layers.map((l) => l.className));
    for (const k of ['Conv2D', 'ZeroPadding2D', 'MaxPooling2D', 'Add', 'GlobalAveragePooling2D', 'Flatten', 'Dense']) expect(kinds).toContain(k);
  });

  test('torchvision mobilenet_v2 (width 0.25, short): depthwise convs, ReLU6, residuals, dropout', async () => {
    const { error, model } = await versusRuntime(fixture('mobilenet_v2.onnx'));
    expect(error).toBeLessThan(TOLERANCE);
    expect(model.layers.some((l) => l.className === 'DepthwiseConv2D')).toBe(true);
  });

  test('the other operators: F.pad, asymmetric and dilated grouped convs, pools both ways, Resize, Concat, scaling, BatchNorm1d, Flatten into Linear', async () => {
    const { error, model } = await versusRuntime(fixture('ops.onnx'));
    expect(error).toBeLessThan(TOLERANCE);
    // x * 0.5 + 0.25 is one frozen affine layer, not two
    const affine = model.layers.filter((l) => l instanceof BatchNormalization && !l.trainable);
    expect(affine).toHaveLength(1);
  });

  test('torchvision mobilenet_v3 (width 0.5, short): squeeze-and-excitation with a hard sigmoid gate, x * HardSigmoid(x) as hard swish', async () => {
    const { error, model } = await versusRuntime(fixture('mobilenet_v3.onnx'));
    expect(error).toBeLessThan(TOLERANCE);
    const kinds = model.layers.map((l) => [l.className, (l.getConfig() as { activation?: string }).activation]);
    // Three SE blocks, each an image scaled by its [1, 1, C] gate; the written-out hard swishes
    // (stem, two blocks' expansions and depthwise convs, the last conv, the classifier) are one layer each.
    expect(kinds.filter(([k]) => k === 'Multiply')).toHaveLength(3);
    expect(kinds.filter(([, a]) => a === 'hard_silu')).toHaveLength(7);
  });

  test('torchvision efficientnet (width 0.5, short): MBConv squeeze-and-excitation, x * Sigmoid(x) as swish', async () => {
    const { error, model } = await versusRuntime(fixture('efficientnet.onnx'));
    expect(error).toBeLessThan(TOLERANCE);
    const kinds = model.layers.map((l) => [l.className, (l.getConfig() as { activation?: string }).activation]);
    expect(kinds.filter(([k]) => k === 'Multiply')).toHaveLength(4);
    expect(kinds.filter(([, a]) => a === 'swish').length).toBeGreaterThanOrEqual(9);
  });

  const python = '/usr/bin/python3';
  const torch = spawnSync(python, ['-c', 'import torch, torchvision'], { encoding: 'utf8' });
  const hasTorch = torch.status === 0;
  if (!hasTorch) console.warn(`onnx.import: PyTorch is not installed (${python} -c 'import torch, torchvision' failed), so the full torchvision resnet18 / mobilenet_v2 / mobilenet_v3_small / efficientnet_b0 exports are not made; the committed fixtures are checked`);
  (hasTorch ? test : test.skip)('full torchvision resnet18, mobilenet_v2 (width 0.35), mobilenet_v3_small and efficientnet_b0, exported here by PyTorch', async () => {
    const out = path.join(dir, 'torch');
    fs.mkdirSync(out);
    const made = spawnSync(python, [path.join(FIXTURES, 'make-fixtures.py'), out, '--full'], { encoding: 'utf8' });
    expect(made.status).toBe(0);
    for (const name of ['resnet18.onnx', 'mobilenet_v2_full.onnx', 'mobilenet_v3_small.onnx', 'efficientnet_b0.onnx', 'tiny_resnet.onnx']) {
      const { error } = await versusRuntime(path.join(out, name), { batch: 2, seed: 3 });
      expect(error).toBeLessThan(TOLERANCE);
    }
  }, 120_000);
});

describe('a hand-written graph: Transposes folded into the layout, shape ops, Gemm alpha/beta', () => {
  test('predicts as onnxruntime does', async () => {
    const T = onnx.AttributeProto.AttributeType;
    const ints = (name: string, v: number[]) => ({ name, type: T.INTS, ints: v });
    const float = (name: string, f: number) => ({ name, type: T.FLOAT, f });
    let k = 0;
    const weights = (name: string, dims: number[]) => ({
      name, dims, dataType: onnx.TensorProto.DataType.FLOAT,
      floatData: Array.from(randomArray(dims.reduce((a, b) => a * b, 1), 40 + k++, -0.8, 0.8)),
    });
    const int64s = (name: string, v: number[]) => ({ name, dims: [v.length], dataType: onnx.TensorProto.DataType.INT64, int64Data: v });
    const node = (opType: string, input: string[], output: string, attribute: onnx.IAttributeProto[] = []) => ({ opType, input, output: [output], name: output, attribute });
    const nodes = [
      node('Transpose', ['x'], 'nhwc', [ints('perm', [0, 2, 3, 1])]),
      node('MatMul', ['nhwc', 'w1'], 'mixed'),             // on the channels of an NHWC view
      node('Add', ['mixed', 'b1'], 'biased'),
      node('Transpose', ['biased'], 'nchw', [ints('perm', [0, 3, 1, 2])]),
      node('Relu', ['nchw'], 'relu'),
      node('MaxPool', ['relu'], 'pool', [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])]),
      node('GlobalAveragePool', ['pool'], 'gap'),
      node('Squeeze', ['gap', 'axes23'], 'squeezed'),
      node('Unsqueeze', ['squeezed', 'axes23'], 'unsqueezed'),
      node('Concat', ['unsqueezed', 'gap'], 'joined', [{ name: 'axis', type: T.INT, i: 1 }]),
      node('Reshape', ['joined', 'flat_shape'], 'features'),
      node('Gemm', ['features', 'w2', 'b2'], 'scores1', [float('alpha', 0.5), float('beta', 2)]),
      node('Flatten', ['pool'], 'flat'),                    // c, h, w order: the MatMul's rows are permuted
      node('MatMul', ['flat', 'w3'], 'scores2'),
      node('Add', ['scores1', 'scores2'], 'sum'),
      node('Softmax', ['sum'], 'probs', [{ name: 'axis', type: T.INT, i: -1 }]),
    ];
    const proto = onnx.ModelProto.create({
      irVersion: 7, opsetImport: [{ domain: '', version: 13 }],
      graph: {
        name: 'hand', node: nodes,
        initializer: [weights('w1', [3, 4]), weights('b1', [4]), weights('w2', [8, 3]), weights('b2', [3]), weights('w3', [36, 3]),
          int64s('axes23', [2, 3]), int64s('flat_shape', [0, -1])],
        input: [{ name: 'x', type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: 3 }, { dimValue: 6 }, { dimValue: 6 }] } } } }],
        output: [{ name: 'probs', type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: 3 }] } } } }],
      },
    });
    const file = path.join(dir, 'hand.onnx');
    fs.writeFileSync(file, onnx.ModelProto.encode(proto).finish());
    const { error, model } = await versusRuntime(file);
    expect(error).toBeLessThan(TOLERANCE);
    // the Transposes and the Add of the bias cost no layer
    expect(model.layers.filter((l) => l.className === 'Dense')).toHaveLength(3);
    expect(model.layers.some((l) => l.className === 'Add' && l.name.startsWith('biased'))).toBe(false);
  });
});

describe('an imported model is a convkit model', () => {
  /**
   * Inputs and targets a small network can learn after global pooling: class c (of 4, one-hot
   * over `classes`) brightens colour channel c, class 3 none of them.
   */
  function colours(n: number, classes: number, seed: number): { x: ck.Tensor; y: ck.Tensor } {
    const xs = randomArray(n * 32 * 32 * 3, seed, -0.5, 0.5);
    const ys = new Float32Array(n * classes);
    for (let i = 0; i < n; i++) {
      const c = i % 4;
      ys[i * classes + c] = 1;
      if (c < 3) for (let p = 0; p < 32 * 32; p++) xs[(i * 32 * 32 + p) * 3 + c] += 1;
    }
    return { x: ck.tensor(xs, [n, 32, 32, 3]), y: ck.tensor(ys, [n, classes]) };
  }

  test('trains: the whole imported network fits (loss falls)', async () => {
    const model = await ck.io.loadOnnx(fixture('tiny_resnet.onnx'));
    const head = L.softmax().apply(model.outputs[0]) as ck.SymbolicTensor;
    const classifier = ck.model({ inputs: model.inputs, outputs: head });
    classifier.compile({ optimizer: ck.optimizers.adam({ learningRate: 3e-3 }), loss: 'categoricalCrossentropy' });
    const data = colours(40, 10, 1);
    const h = await classifier.fit(data.x, data.y, { epochs: 6, batchSize: 10, seed: 1, verbose: 0 });
    expect(h.history.loss[5]).toBeLessThan(h.history.loss[0] * 0.8);
  });

  test('transfer: base frozen bit for bit, a new head on its features learns', async () => {
    const base = await ck.io.loadOnnx(fixture('mobilenet_v2.onnx'));
    const flatten = base.layers.find((l) => l.className === 'Flatten')!;
    for (const layer of base.layers) layer.trainable = false;
    const head = L.dense({ units: 4, activation: 'softmax', name: 'new_head' }).apply(flatten.output) as ck.SymbolicTensor;
    const model = ck.model({ inputs: base.inputs, outputs: head });
    model.compile({ optimizer: ck.optimizers.adam({ learningRate: 1e-2 }), loss: 'categoricalCrossentropy' });
    const frozen = base.layers.flatMap((l) => l.getWeights().map((w) => w.dataSync().slice()));
    const data = colours(32, 4, 2);
    const h = await model.fit(data.x, data.y, { epochs: 8, batchSize: 8, seed: 2, verbose: 0 });
    expect(h.history.loss[7]).toBeLessThan(h.history.loss[0] * 0.8);
    const after = base.layers.flatMap((l) => l.getWeights().map((w) => w.dataSync().slice()));
    after.forEach((w, i) => expect(Buffer.compare(Buffer.from(w.buffer), Buffer.from(frozen[i].buffer))).toBe(0));
  });

  test("saves in convkit's format and reloads with the same predictions and class names; exports again", async () => {
    const file = path.join(dir, 'named.onnx');
    const proto = onnx.ModelProto.decode(fs.readFileSync(fixture('tiny_resnet.onnx')));
    proto.metadataProps = [{ key: 'classNames', value: JSON.stringify(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j']) }];
    fs.writeFileSync(file, onnx.ModelProto.encode(proto).finish());
    const model = await ck.io.loadOnnx(file);
    expect(model.userDefinedMetadata?.classNames).toHaveLength(10);
    await model.save(`file://${path.join(dir, 'saved')}`);
    const reloaded = await ck.loadModel(`file://${path.join(dir, 'saved')}`);
    const x = ck.tensor(randomArray(2 * 32 * 32 * 3, 9, -1, 1), [2, 32, 32, 3]);
    expect(await (reloaded.predict(x) as ck.Tensor).data()).toEqual(await (model.predict(x) as ck.Tensor).data());
    expect(reloaded.userDefinedMetadata?.classNames).toEqual(model.userDefinedMetadata?.classNames);
    // and back out to ONNX: the imported layers (padding, frozen affine maps, ...) all export
    for (const [imported, input] of [[model, x], [await ck.io.loadOnnx(fixture('ops.onnx')), ck.tensor(randomArray(2 * 16 * 16 * 3, 8, -1, 1), [2, 16, 16, 3])]] as const) {
      const again = path.join(dir, `again-${imported.name}.onnx`);
      await ck.io.toOnnx(imported, again);
      const run = await runOnnx(again, [{ data: await input.data(), dims: [...input.shape] }]);
      expect(relativeError(run.outputs[0].data, await (imported.predict(input) as ck.Tensor).data())).toBeLessThan(TOLERANCE);
    }
  });
});

const L = ck.layers;

describe('convkit -> ONNX -> convkit gives the same predictions', () => {
  /**
   * Kernels scaled by their fan-in so activations neither vanish nor saturate through the depth
   * (a saturated ReLU6 or softmax would hide a misplaced weight); biases and batch-norm values
   * away from their initial 0s and 1s.
   */
  function randomizeWeights(model: ck.LayersModel, seed: number): void {
    model.layers.forEach((layer, i) => {
      const weights = layer.getWeights();
      if (weights.length === 0) return;
      const isBatchNorm = layer instanceof BatchNormalization;
      layer.setWeights(weights.map((w, k) => {
        const s = seed * 100 + i * 7 + k;
        let [lo, hi] = [-0.2, 0.2];
        if (isBatchNorm && (k === 0 || k === weights.length - 1)) [lo, hi] = [0.6, 1.4];  // gamma, variance
        else if (w.shape.length > 1) {
          const bound = Math.sqrt(3 / (w.size / w.shape[w.shape.length - 1]));
          [lo, hi] = [-bound, bound];
        }
        return ck.tensor(randomArray(w.size, s, lo, hi), [...w.shape]);
      }));
    });
  }

  const seq = (...layers: ck.Layer[]) => ck.sequential([L.input({ shape: [9, 7, 3] }), ...layers]);
  const cases: [string, () => ck.LayersModel][] = [
    ['mobileNetV2 (alpha 0.35, 32x32)', () => ck.applications.mobileNetV2({ alpha: 0.35, inputShape: [32, 32, 3], classes: 5, classifierActivation: 'linear' })],
    ['resNet20', () => ck.applications.resNet20({ inputShape: [32, 32, 3], classes: 4, classifierActivation: 'linear' })],
    ['mobileNetV3Small (alpha 0.75, 48x48)', () => ck.applications.mobileNetV3Small({ alpha: 0.75, inputShape: [48, 48, 3], classes: 5, classifierActivation: 'linear' })],
    ['convs (same/valid, strides, dilation, groups), pools, up-sampling, padding, flatten + dense', () => seq(
      L.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' }),
      L.conv2d({ filters: 6, kernelSize: 2, groups: 3, dilationRate: [1, 2], padding: 'same', activation: 'elu' }),
      L.batchNormalization(),
      L.depthwiseConv2d({ kernelSize: 3, padding: 'same', depthMultiplier: 2, activation: 'relu6' }),
      L.upSampling2d({ size: [2, 2], interpolation: 'bilinear' }),
      L.averagePooling2d({ poolSize: 3, strides: 2, padding: 'same' }),
      L.zeroPadding2d({ padding: [[1, 0], [2, 1]] }),
      L.maxPooling2d({ poolSize: 2, padding: 'same' }),
      L.leakyReLU({ alpha: 0.2 }),
      L.upSampling2d({ size: [2, 3] }),
      L.conv2d({ filters: 3, kernelSize: 3, activation: 'sigmoid' }),
      L.flatten(),
      L.dense({ units: 8, activation: 'tanh' }),
      L.dropout({ rate: 0.3 }),
      L.dense({ units: 4, activation: 'softmax' }))],
    ['dense on images (MatMul + Add) and global max pooling', () => seq(L.dense({ units: 4 }), L.globalMaxPooling2d(), L.dense({ units: 2 }))],
    ['squeeze-and-excitation (a gate [C] and one reshaped to [1, 1, C]), swish and hard swish', () => {
      const image = ck.input({ shape: [9, 7, 3] });
      const x = L.conv2d({ filters: 6, kernelSize: 3, padding: 'same', activation: 'swish' }).apply(image) as ck.SymbolicTensor;
      const gate = L.dense({ units: 6, activation: 'sigmoid' }).apply(L.globalAveragePooling2d().apply(x) as ck.SymbolicTensor) as ck.SymbolicTensor;
      const once = L.multiply().apply([x, gate]) as ck.SymbolicTensor;
      const gate4 = L.reshape({ targetShape: [1, 1, 6] }).apply(gate) as ck.SymbolicTensor;
      const twice = L.activation({ activation: 'hardSwish' }).apply(L.multiply().apply([gate4, once]) as ck.SymbolicTensor) as ck.SymbolicTensor;
      return ck.model({ inputs: image, outputs: L.dense({ units: 3 }).apply(L.globalAveragePooling2d().apply(twice) as ck.SymbolicTensor) as ck.SymbolicTensor });
    }],
  ];
  test.each(cases)('%s, NHWC and NCHW files', async (_, make) => {
    const model = make();
    randomizeWeights(model, 3);
    const shape = model.built!.inputShapes[0];
    const x = ck.tensor(randomArray(2 * shape.reduce((a, b) => a * b, 1), 5, -2, 2), [2, ...shape]);
    const want = await (model.predict(x) as ck.Tensor).data();
    for (const layout of ['nhwc', 'nchw'] as const) {
      const file = path.join(dir, `roundtrip-${model.name}-${layout}.onnx`);
      await ck.io.toOnnx(model, file, { layout });
      const imported = await ck.io.loadOnnx(file);
      expect(imported.inputs[0].shape).toEqual([null, ...shape]);
      const got = await (imported.predict(x) as ck.Tensor).data();
      expect(relativeError(got, want)).toBeLessThan(1e-6);
    }
  });
});

describe('files convkit cannot take are typed errors', () => {
  // The decoded messages' fields, which protobufjs fills (its generated types leave them optional).
  interface GraphFields {
    node: { name: string; opType: string; input: string[]; output: string[]; attribute: { name: string; type: number; ints: number[]; i: number }[] }[];
    input: { type: { tensorType: { elemType: number } } }[];
    initializer: { rawData: Uint8Array; dataLocation: number; dims: number[] }[];
  }
  const graph = (p: onnx.ModelProto) => p.graph as unknown as GraphFields;
  const tiny = () => onnx.ModelProto.decode(fs.readFileSync(fixture('tiny_resnet.onnx')));
  let n = 0;
  function write(bytes: Uint8Array | string): string {
    const file = path.join(dir, `bad${n++}.onnx`);
    fs.writeFileSync(file, bytes);
    return file;
  }
  const writeProto = (p: onnx.ModelProto) => write(onnx.ModelProto.encode(p).finish());

  test('truncated, random and non-ONNX bytes', async () => {
    const bytes = fs.readFileSync(fixture('tiny_resnet.onnx'));
    await expect(ck.io.loadOnnx(write(bytes.subarray(0, bytes.length >> 1)))).rejects.toThrow(ck.FormatError);
    await expect(ck.io.loadOnnx(write(Uint8Array.from(randomArray(4096, 3), (v) => Math.floor(v * 256))))).rejects.toThrow(ck.FormatError);
    await expect(ck.io.loadOnnx(write('{"modelTopology": {}}'))).rejects.toThrow(ck.FormatError);
    await expect(ck.io.loadOnnx(write(new Uint8Array()))).rejects.toThrow(/no graph/);
  });

  test('oversized files are refused before reading', async () => {
    await expect(ck.io.loadOnnx(fixture('tiny_resnet.onnx'), { maxBytes: 1000 })).rejects.toThrow(/more than maxBytes \(1000\)/);
    const huge = path.join(dir, 'huge.onnx');
    fs.closeSync(fs.openSync(huge, 'w'));
    fs.truncateSync(huge, 2 ** 31);  // sparse: takes no disk
    await expect(ck.io.loadOnnx(huge)).rejects.toThrow(ck.FormatError);
    await expect(ck.io.loadOnnx(path.join(dir, 'missing.onnx'))).rejects.toThrow(ck.IOError);
    await expect(ck.io.loadOnnx(fixture('tiny_resnet.onnx'), { maxBytez: 1 } as never)).rejects.toThrow(ck.ValueError);
  });

  test('a dangling input, a cycle, a duplicated output', async () => {
    const dangling = tiny();
    graph(dangling).node[3].input[0] = 'nowhere';
    await expect(ck.io.loadOnnx(writeProto(dangling))).rejects.toThrow(/reads 'nowhere', which no node, input or initializer makes/);
    const cyclic = tiny();
    const nodes = graph(cyclic).node.filter((x) => x.opType !== 'Constant');
    nodes[1].input[0] = nodes[4].output[0];  // a Conv reads a value made after it
    await expect(ck.io.loadOnnx(writeProto(cyclic))).rejects.toThrow(/cycle through node/);
    const twice = tiny();
    graph(twice).node[2].output[0] = graph(twice).node[1].output[0];
    await expect(ck.io.loadOnnx(writeProto(twice))).rejects.toThrow(/already makes/);
  });

  test('wrong types: an int64 input, an attribute of the wrong type, weights of the wrong size, external data', async () => {
    const intInput = tiny();
    graph(intInput).input[0].type!.tensorType!.elemType = onnx.TensorProto.DataType.INT64;
    await expect(ck.io.loadOnnx(writeProto(intInput))).rejects.toThrow(/element type INT64/);
    const attr = tiny();
    const conv = graph(attr).node.find((x) => x.opType === 'Conv')!;
    const strides = conv.attribute.find((a) => a.name === 'strides')!;
    strides.type = onnx.AttributeProto.AttributeType.FLOAT;
    await expect(ck.io.loadOnnx(writeProto(attr))).rejects.toThrow(/attribute strides must be INTS, got FLOAT/);
    const short = tiny();
    graph(short).initializer[0].rawData = graph(short).initializer[0].rawData.subarray(4);
    await expect(ck.io.loadOnnx(writeProto(short))).rejects.toThrow(/need \d+ values, the tensor holds/);
    const external = tiny();
    graph(external).initializer[0].dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    await expect(ck.io.loadOnnx(writeProto(external))).rejects.toThrow(/external data/);
  });

  test('the activations convkit has import in place of a ReLU and predict as onnxruntime does', async () => {
    const cases: [string, Record<string, number>][] = [
      ['HardSwish', {}], ['Softplus', {}], ['HardSigmoid', { alpha: 1 / 6, beta: 0.5 }],
      ['Selu', { alpha: 1.6732632423543772, gamma: 1.0507009873554805 }],
    ];
    for (const [op, attrs] of cases) {
      const p = tiny();
      p.opsetImport[0].version = 14; // HardSwish is an opset 14 operator
      // Every ReLU but the stem's: a padded max pool follows it, which only a ReLU's zeros allow.
      for (const node of graph(p).node.filter((x) => x.opType === 'Relu').slice(1)) {
        node.opType = op;
        node.attribute = Object.entries(attrs).map(([name, f]) => onnx.AttributeProto.create({ name, f, type: onnx.AttributeProto.AttributeType.FLOAT }));
      }
      const { error } = await versusRuntime(writeProto(p));
      expect(error).toBeLessThan(TOLERANCE);
    }
    // ONNX's default HardSigmoid (alpha 0.2, Keras 2's) is not convkit's.
    const old = tiny();
    graph(old).node.filter((x) => x.opType === 'Relu')[1].opType = 'HardSigmoid';
    await expect(ck.io.loadOnnx(writeProto(old))).rejects.toThrow(/\(HardSigmoid\): alpha 0.2: convkit's hardSigmoid has alpha 0.16666/);
  });

  test('a Mul broadcasting other than an image by one value per channel (spatial attention) names the node', async () => {
    const T = onnx.AttributeProto.AttributeType;
    const dims = (c: number, h: number, w: number) => ({ tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: c }, { dimValue: h }, { dimValue: w }] } } });
    const proto = onnx.ModelProto.create({
      irVersion: 7, opsetImport: [{ domain: '', version: 13 }],
      graph: {
        name: 'attention',
        node: [
          { opType: 'Conv', input: ['x', 'w'], output: ['map'], name: 'map', attribute: [{ name: 'kernel_shape', type: T.INTS, ints: [1, 1] }] },
          { opType: 'Sigmoid', input: ['map'], output: ['weights'], name: 'weights' },
          { opType: 'Mul', input: ['x', 'weights'], output: ['y'], name: 'attend' },
        ],
        initializer: [{ name: 'w', dims: [1, 3, 1, 1], dataType: onnx.TensorProto.DataType.FLOAT, floatData: [0.5, -0.5, 0.25] }],
        input: [{ name: 'x', type: dims(3, 4, 4) }],
        output: [{ name: 'y', type: dims(3, 4, 4) }],
      },
    });
    const load = ck.io.loadOnnx(write(onnx.ModelProto.encode(proto).finish()));
    await expect(load).rejects.toThrow(ck.FormatError);
    await expect(load).rejects.toThrow(/node attend \(Mul\): inputs \[N, 3, 4, 4\] and \[N, 1, 4, 4\] do not broadcast as convkit's Multiply does/);
  });

  test('an operator convkit has no layer for names the node and its op type', async () => {
    const p = tiny();
    const relu = graph(p).node.find((x) => x.opType === 'Relu')!;
    relu.opType = 'LpPool';
    await expect(ck.io.loadOnnx(writeProto(p))).rejects.toThrow(new RegExp(`node ${relu.name.replace(/[/.]/g, '\\$&')} \\(LpPool\\): ONNX's LpPool sums without averaging`));
    const q = tiny();
    graph(q).node.find((x) => x.opType === 'Relu')!.opType = 'Gelu';
    await expect(ck.io.loadOnnx(writeProto(q))).rejects.toThrow(/\(Gelu\): the ONNX operator Gelu has no convkit mapping/);
  });

  test('300 randomly damaged graphs (op types, attributes, inputs, dims) import and predict, or are typed errors', async () => {
    const next = lcg(5);
    const pick = <T>(xs: T[]): T => xs[Math.floor(next() * xs.length)];
    const ops = ['Conv', 'Relu', 'Clip', 'MaxPool', 'AveragePool', 'Add', 'Mul', 'Sub', 'Div', 'Gemm', 'MatMul', 'Flatten', 'Reshape',
      'Squeeze', 'Unsqueeze', 'Transpose', 'Concat', 'Pad', 'Resize', 'Softmax', 'BatchNormalization', 'GlobalAveragePool', 'Slice', 'Gather'];
    const outcomes = { imported: 0, refused: 0 };
    for (let t = 0; t < 300; t++) {
      const p = onnx.ModelProto.decode(fs.readFileSync(fixture(pick(['tiny_resnet.onnx', 'ops.onnx']))));
      const g = graph(p);
      const node = pick(g.node);
      const r = next();
      if (r < 0.3) node.opType = pick(ops);
      else if (r < 0.55 && node.attribute.length) {
        const a = pick(node.attribute);
        if (a.ints.length) a.ints[Math.floor(next() * a.ints.length)] = Math.floor(next() * 12) - 3;
        else a.i = Math.floor(next() * 12) - 3;
      } else if (r < 0.8) node.input[Math.floor(next() * (node.input.length + 1))] = pick(pick(g.node).output);
      else {
        const init = pick(g.initializer);
        init.dims = init.dims.map(() => Math.floor(next() * 6));
      }
      try {
        const model = ck.io.modelFromOnnx(p);
        const shape = model.inputs[0].shape.slice(1) as number[];
        await (model.predict(ck.tensor(randomArray(shape.reduce((a, b) => a * b, 1), t), [1, ...shape])) as ck.Tensor).data();
        outcomes.imported++;
      } catch (e) {
        if (!(e instanceof ck.ConvkitError)) throw new Error(`damaged graph ${t}: ${(e as Error).stack}`);
        outcomes.refused++;
      }
    }
    expect(outcomes.refused).toBeGreaterThan(100);
    expect(outcomes.imported).toBeGreaterThan(10);
  });

  test('a max pool whose zero padding could win is refused, not approximated', async () => {
    // The stem's ReLU removed: zeros padded in front of the max pool would beat negative values.
    const p = tiny();
    const relu = graph(p).node.find((x) => x.opType === 'Relu')!;
    relu.opType = 'Identity';
    await expect(ck.io.loadOnnx(writeProto(p))).rejects.toThrow(/\(MaxPool\): pads \[1, 1, 1, 1\].*-inf/);
  });
});
