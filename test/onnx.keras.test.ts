// ONNX import of Keras CNNs in the forms tf2onnx writes them (NHWC input and Transposes around
// each Conv, or those pushed through by its transpose optimizer; Clip with min/max inputs,
// ReduceMean as global pooling, MatMul + Add, the Shape -> ... -> Reshape flatten, Pad with
// input pads, Resize tf_half_pixel_for_nn). The files are written by
// test/fixtures/onnx/make-keras.py with onnx.helper, reproducing tf2onnx's patterns (tf2onnx
// itself is not installed). convkit's predictions on NHWC pixel batches are compared with
// onnxruntime-node's on the same file; the imported models fine-tune and save.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { onnx } from 'onnx-proto';
import * as ck from '../lib';
import { OnnxRuntime, relativeError, toNchw } from '../test-support/onnxruntime';
import { lcg } from '../test-support/helpers';

const FIXTURES = path.join(__dirname, 'fixtures', 'onnx');
const TOLERANCE = 1e-4;
let dir: string;
const runtime = new OnnxRuntime();

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-onnx-keras-'));
  runtime.start();
});

afterAll(() => {
  runtime.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * Pixels in [0, 255] as Keras models take them: per example a colour of its own plus noise, so
 * the examples differ after global pooling too.
 */
function pixels(dims: number[], seed: number): Float32Array {
  const next = lcg(seed);
  const [n, h, w, c] = dims;
  const out = new Float32Array(n * h * w * c);
  for (let b = 0; b < n; b++) {
    const colour = Array.from({ length: c }, () => 40 + 170 * next());
    for (let p = 0; p < h * w; p++) for (let k = 0; k < c; k++) out[(b * h * w + p) * c + k] = colour[k] + 80 * (next() - 0.5);
  }
  return out;
}

async function versusRuntime(file: string): Promise<{ error: number; model: ck.Functional; x: ck.Tensor }> {
  const model = await ck.io.loadOnnx(file);
  const dims = [3, ...(model.inputs[0].shape.slice(1) as number[])];
  const xs = pixels(dims, 11);
  const run = await runtime.run(file, [{ data: xs, dims }]);  // the file's input is NHWC too
  const x = ck.tensor(xs, dims);
  const got = await (model.predict(x) as ck.Tensor).data();
  expect(got.length).toBe(run.outputs[0].data.length);
  const error = relativeError(got, run.outputs[0].data);
  if (process.env.ONNX_DEBUG) console.log(path.basename(file), error, classes(model).join(' '));
  return { error, model, x };
}

const fixture = (name: string) => path.join(FIXTURES, name);
const classes = (model: ck.Functional) => model.layers.map((l) => l.className);

describe('Keras CNNs as tf2onnx writes them predict as in onnxruntime', () => {
  test('opset 13, transposes optimized: conv-bn-relu6 (Clip inputs), depthwise, SE, Concat, pools, Gemm, softmax', async () => {
    const { error, model } = await versusRuntime(fixture('keras_tf2onnx_opset13.onnx'));
    expect(error).toBeLessThan(TOLERANCE);
    expect(model.inputs[0].shape).toEqual([null, 16, 16, 3]);  // NHWC, as the Keras model took it
    expect(classes(model)).toEqual(expect.arrayContaining(['DepthwiseConv2D', 'GlobalAveragePooling2D', 'Multiply', 'Concatenate', 'Dense', 'Softmax']));
  });

  test('opset 18: ReduceMean with axes as an input (keepdims 0 and 1), a Dense SE gate multiplied on NHWC, auto_pad SAME_UPPER, Identity chains', async () => {
    const { error, model } = await versusRuntime(fixture('keras_tf2onnx_opset18.onnx'));
    expect(error).toBeLessThan(TOLERANCE);
    expect(model.layers.filter((l) => l.className === 'GlobalAveragePooling2D')).toHaveLength(2);
    // depth multiplier 2: a grouped Conv with 2 outputs per input channel
    expect(classes(model)).toEqual(expect.arrayContaining(['DepthwiseConv2D', 'Multiply']));
    // the gate reshaped to [-1, 1, 1, C] is convkit's [1, 1, C] at once: one Reshape, then Multiply
    expect(model.layers.filter((l) => l.className === 'Reshape')).toHaveLength(1);
  });

  test('transposes around every conv: NHWC ops, ReduceMean axes [1, 2], Pad, Resize, Concat axis 3, Shape-computed flatten', async () => {
    const { error, model } = await versusRuntime(fixture('keras_tf2onnx_nhwc.onnx'));
    expect(error).toBeLessThan(TOLERANCE);
    expect(classes(model)).toEqual(expect.arrayContaining(['ZeroPadding2D', 'UpSampling2D', 'Flatten', 'Dense']));
    expect(model.layers.filter((l) => l.className === 'Transpose')).toHaveLength(0);
  });
});

describe('a vector reshaped to [-1, 1, 1, C]', () => {
  test('multiplies an NHWC image per channel, and a Conv reading it as NCHW sees 1 channel of width C', async () => {
    const T = onnx.AttributeProto.AttributeType;
    const floats = (name: string, dims: number[], seed: number) => {
      const next = lcg(seed);
      return { name, dims, dataType: onnx.TensorProto.DataType.FLOAT, floatData: Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => next() - 0.5) };
    };
    const node = (opType: string, input: string[], output: string, attribute: onnx.IAttributeProto[] = []) => ({ opType, input, output: [output], name: output, attribute });
    const proto = onnx.ModelProto.create({
      irVersion: 7, opsetImport: [{ domain: '', version: 13 }],
      graph: {
        name: 'unit', node: [
          node('GlobalAveragePool', ['x'], 'gap'),
          node('Flatten', ['gap'], 'vector'),
          node('Reshape', ['vector', 'to_1_1_c'], 'gate'),   // [N, 1, 1, 4]
          node('Conv', ['gate', 'w1'], 'across', [{ name: 'kernel_shape', type: T.INTS, ints: [1, 2] }]),  // 1 channel of width 4
          node('Flatten', ['across'], 'across_flat'),
          node('MatMul', ['across_flat', 'w2'], 'scores1'),
          node('Transpose', ['x'], 'nhwc', [{ name: 'perm', type: T.INTS, ints: [0, 2, 3, 1] }]),
          node('Mul', ['nhwc', 'gate'], 'gated'),            // [N, 5, 5, 4] * [N, 1, 1, 4]: per channel
          node('Transpose', ['gated'], 'back', [{ name: 'perm', type: T.INTS, ints: [0, 3, 1, 2] }]),
          node('Conv', ['back', 'w3'], 'whole'),
          node('Flatten', ['whole'], 'whole_flat'),
          node('MatMul', ['whole_flat', 'w4'], 'scores2'),
          node('Add', ['scores1', 'scores2'], 'y'),
        ],
        initializer: [floats('w1', [2, 1, 1, 2], 1), floats('w2', [6, 3], 2), floats('w3', [2, 4, 5, 5], 3), floats('w4', [2, 3], 4),
          { name: 'to_1_1_c', dims: [4], dataType: onnx.TensorProto.DataType.INT64, int64Data: [-1, 1, 1, 4] }],
        input: [{ name: 'x', type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: 4 }, { dimValue: 5 }, { dimValue: 5 }] } } } }],
        output: [{ name: 'y', type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: 3 }] } } } }],
      },
    });
    const file = path.join(dir, 'unit.onnx');
    fs.writeFileSync(file, onnx.ModelProto.encode(proto).finish());
    const model = await ck.io.loadOnnx(file);
    const dims = [3, 5, 5, 4];
    const xs = pixels(dims, 3).map((v) => v / 255 - 0.5);
    const run = await runtime.run(file, [{ data: toNchw(xs, dims), dims: [3, 4, 5, 5] }]);
    const got = await (model.predict(ck.tensor(xs, dims)) as ck.Tensor).data();
    expect(relativeError(got, run.outputs[0].data)).toBeLessThan(TOLERANCE);
  });
});

describe('an imported Keras model fine-tunes and saves', () => {
  test.each(['keras_tf2onnx_opset13.onnx', 'keras_tf2onnx_opset18.onnx', 'keras_tf2onnx_nhwc.onnx'])('%s: a training step changes it, it saves and reloads', async (name) => {
    const model = await ck.io.loadOnnx(fixture(name));
    const dims = [4, ...(model.inputs[0].shape.slice(1) as number[])];
    const x = ck.tensor(pixels(dims, 5), dims);
    const units = model.outputs[0].shape[1] as number;
    const y = ck.tensor(Float32Array.from({ length: 4 * units }, (_, i) => (i % units === Math.floor(i / units) ? 1 : 0)), [4, units]);
    model.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.05 }), loss: 'categoricalCrossentropy' });
    const before = await (model.predict(x) as ck.Tensor).data();
    const h = await model.fit(x, y, { epochs: 3, batchSize: 4, seed: 1, verbose: 0 });
    expect(h.history.loss[2]).toBeLessThan(h.history.loss[0]);
    const after = await (model.predict(x) as ck.Tensor).data();
    expect(relativeError(after, before)).toBeGreaterThan(1e-4);
    await model.save(`file://${path.join(dir, name)}`);
    const reloaded = await ck.loadModel(`file://${path.join(dir, name)}`);
    expect(await (reloaded.predict(x) as ck.Tensor).data()).toEqual(after);
  });
});

describe('tf2onnx patterns convkit cannot take are typed errors naming the node and op', () => {
  /** The NHWC fixture with one node changed by `edit`, imported. */
  async function importEdited(edit: (nodes: onnx.INodeProto[], proto: onnx.ModelProto) => void): Promise<unknown> {
    const proto = onnx.ModelProto.decode(fs.readFileSync(fixture('keras_tf2onnx_nhwc.onnx')));
    edit(proto.graph!.node!, proto);
    const file = path.join(dir, 'edited.onnx');
    fs.writeFileSync(file, onnx.ModelProto.encode(proto).finish());
    return ck.io.loadOnnx(file).catch((e: unknown) => e);
  }
  const named = (nodes: onnx.INodeProto[], suffix: string) => nodes.find((n) => n.name!.endsWith(suffix))!;

  test('ReduceMean over the channels is not global pooling', async () => {
    const e = await importEdited((nodes) => {
      named(nodes, 'se/Mean').attribute!.find((a) => a.name === 'axes')!.ints = [3];
    });
    expect(e).toBeInstanceOf(ck.FormatError);
    expect(String(e)).toMatch(/se\/Mean \(ReduceMean\).*axes \[3\].*not the image's two spatial axes/);
  });

  test('a flatten whose shape puts the batch size elsewhere, or computes with it', async () => {
    const moved = await importEdited((nodes) => {
      const concat = named(nodes, 'shape_Concat__26');
      concat.input = [concat.input![1], concat.input![0]];  // [-1, batch]
    });
    expect(moved).toBeInstanceOf(ck.FormatError);
    expect(String(moved)).toMatch(/flatten\/Reshape \(Reshape\).*shape \[-1, batch\] puts the batch size after the batch axis/);
    const doubled = await importEdited((nodes, proto) => {
      const unsqueeze = named(nodes, 'shape_Unsqueeze__25');
      proto.graph!.initializer!.push({ name: 'two', dims: [], dataType: onnx.TensorProto.DataType.INT32, int32Data: [2] });
      nodes.splice(nodes.indexOf(unsqueeze), 0, { name: 'times2', opType: 'Mul', input: [unsqueeze.input![0], 'two'], output: ['doubled'] });
      unsqueeze.input![0] = 'doubled';
    });
    expect(doubled).toBeInstanceOf(ck.FormatError);
    expect(String(doubled)).toMatch(/times2 \(Mul\).*batch size/);
  });

  test('Resize tf_half_pixel_for_nn with a nearest mode other than floor samples differently', async () => {
    const e = await importEdited((nodes) => {
      named(nodes, 'up_sampling2d/resize').attribute!.find((a) => a.name === 'nearest_mode')!.s = Buffer.from('round_prefer_floor');
    });
    expect(e).toBeInstanceOf(ck.FormatError);
    expect(String(e)).toMatch(/up_sampling2d\/resize \(Resize\).*tf_half_pixel_for_nn.*round_prefer_floor/);
  });

  test('a Cast of a computed value to another type than float', async () => {
    const e = await importEdited((nodes, proto) => {
      const mul = named(nodes, 'rescaling/mul');
      nodes.unshift({ name: 'to_int', opType: 'Cast', input: [mul.input![0]], output: ['as_int'], attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: onnx.TensorProto.DataType.INT32 }] });
      mul.input![0] = 'as_int';
      void proto;
    });
    expect(e).toBeInstanceOf(ck.FormatError);
    expect(String(e)).toMatch(/to_int \(Cast\).*INT32/);
  });
});
