// ck.applications against two independent references: Keras's published figures for the same
// settings (parameter, layer and weight counts, each cited where it comes from), and
// TensorFlow.js building the same graphs, written here from the Keras sources
// (keras/applications/mobilenet.py, mobilenet_v2.py, vgg16.py; keras-team/keras
// examples/cifar10_resnet.py): layer order, output shapes, parameter counts and, with shared
// weights, predictions. Then: any input size and class count trains, and weights saved by
// convkit or TensorFlow.js load by name (or position), with typed errors when they do not fit.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as ck from '../lib';
import { lcg, randomArray, tmpDir } from '../test-support/helpers';
import { saveTfjs } from '../test-support/tfjs-io';

let root: string;

beforeAll(async () => {
  root = tmpDir('applications');
  const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
  const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
  await tf.setBackend('cpu');
  await tf.ready();
  tf.tensor([0]).dispose();
  warn.mockRestore();
  log.mockRestore();
});

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

type Model = ck.LayersModel;

/** Keras's counts: parameters, trainable parameters, layers (input included), weight tensors, trainable ones. */
function counts(m: Model): { params: number; trainable: number; layers: number; weights: number; trainableWeights: number } {
  const specs = m.layers.flatMap((layer, i) => layer.weightSpecs(m.built!.layerShapes[i].input));
  const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
  return {
    params: m.countParams(),
    trainable: specs.filter((w) => w.trainable).reduce((n, w) => n + size(w.shape), 0),
    layers: m.layers.length,
    weights: specs.length,
    trainableWeights: specs.filter((w) => w.trainable).length,
  };
}

describe("Keras's published figures", () => {
  test('MobileNet v1', () => {
    // Total/trainable params: the issue (#10) and model.summary() of
    // keras.applications.MobileNet() as printed in many public notebooks ("Total params:
    // 4,253,864 / Trainable params: 4,231,976"; include_top=False: "3,228,864 / 3,206,976 /
    // Non-trainable 21,888"); len(model.weights) 137 and len(model.trainable_weights) 83 as
    // printed for MobileNet() in public TF 2 scripts. Layers: 91 with the top (input, conv1 x3,
    // 13 blocks x 6, 4 conv_pad, 5 top layers, as mobilenet.py builds them), 86 without.
    expect(counts(ck.applications.mobileNet())).toEqual({ params: 4253864, trainable: 4231976, layers: 91, weights: 137, trainableWeights: 83 });
    expect(counts(ck.applications.mobileNet({ includeTop: false }))).toEqual({
      params: 3228864, trainable: 3206976, layers: 86, weights: 135, trainableWeights: 81,
    });
  });

  test('MobileNetV2', () => {
    // keras.applications.MobileNetV2(): "Total params: 3,538,984 / Trainable params: 3,504,872 /
    // Non-trainable params: 34,112", len(model.weights) 262, len(model.trainable_weights) 158
    // (public summaries of tf.keras.applications). include_top=False: "Total params: 2,257,984 /
    // Trainable 2,223,872" and "Number of layers in the base model: 154" (the TensorFlow
    // tutorial tensorflow.org/tutorials/images/transfer_learning). alpha 0.35 without the top:
    // "Total params: 410,208 / Trainable params: 396,128" (a published Keras summary of
    // MobileNetV2(alpha=0.35, include_top=False, pooling='max'); max pooling adds no weights).
    expect(counts(ck.applications.mobileNetV2())).toEqual({ params: 3538984, trainable: 3504872, layers: 156, weights: 262, trainableWeights: 158 });
    expect(counts(ck.applications.mobileNetV2({ includeTop: false }))).toEqual({
      params: 2257984, trainable: 2223872, layers: 154, weights: 260, trainableWeights: 156,
    });
    const small = counts(ck.applications.mobileNetV2({ alpha: 0.35, includeTop: false, pooling: 'max' }));
    expect([small.params, small.trainable, small.layers]).toEqual([410208, 396128, 155]);
  });

  test('ResNet-20 v1 (the Keras CIFAR-10 example)', () => {
    // model.summary() of keras-team/keras examples/cifar10_resnet.py with n = 3, version 1, as
    // published with the example's runs: "Total params: 274,442 / Trainable params: 273,066 /
    // Non-trainable params: 1,376"; 72 layers (input, 21 conv, 19 batch norm, 19 activation,
    // 9 add, pool, flatten, dense), in the order that summary lists them.
    const model = ck.applications.resNet20();
    expect(counts(model)).toEqual({ params: 274442, trainable: 273066, layers: 72, weights: 120, trainableWeights: 82 });
    const kinds = model.layers.map((l) => l.className);
    // The first block of stage 2 in Keras's order: its shortcut conv comes after the block's
    // second conv, before that conv's batch norm.
    const stage2 = model.built!.layerShapes.findIndex((s) => s.output.join() === '16,16,32');
    expect(kinds.slice(stage2 - 2, stage2)).toEqual(['Add', 'Activation']);
    expect(kinds.slice(stage2, stage2 + 8)).toEqual(['Conv2D', 'BatchNormalization', 'Activation', 'Conv2D', 'Conv2D', 'BatchNormalization', 'Add', 'Activation']);
    expect(model.outputShape).toEqual([null, 10]);
  });

  test('ResNet-50, -101 and -152 v1', () => {
    // keras.applications.ResNet50(): "Total params: 25,636,712 / Trainable params: 25,583,592 /
    // Non-trainable params: 53,120" (model.summary() in public notebooks; the Keras
    // applications table lists 25.6M); len(model.layers) 177 and len(model.weights) 320.
    // ResNet101: "Total params: 44,707,176"; ResNet152: "Total params: 60,419,944".
    expect(counts(ck.applications.resNet50())).toEqual({ params: 25636712, trainable: 25583592, layers: 177, weights: 320, trainableWeights: 214 });
    // The deeper two in a plain Node process on dist/: initializing 105 M weights in jest's vm
    // context takes over a minute.
    const deeper = spawnSync(process.execPath, ['-e', `const ck = require(${JSON.stringify(path.join(__dirname, '..', 'dist'))});
      console.log(JSON.stringify([ck.applications.resNet101().countParams(), ck.applications.resNet152().countParams()]));`], { encoding: 'utf8' });
    expect(JSON.parse(deeper.stdout)).toEqual([44707176, 60419944]);
    // include_top=False: "Total params: 23,587,712" (the same notebooks' feature extractors).
    const base = ck.applications.resNet50({ includeTop: false, pooling: 'avg' });
    expect(base.countParams()).toBe(23587712);
    expect(base.layers.at(-1)!.name).toBe('avg_pool');
    expect(base.layers.at(-2)!.name).toBe('conv5_block3_out');
  });

  test('VGG16 laid out by vgg()', () => {
    // keras.applications.VGG16(include_top=False): "Total params: 14,714,688", 19 layers, 26
    // weights (VGG16's convolutions do not depend on the input size, so a small input is used).
    const base = ck.applications.vgg({ inputShape: [32, 32, 3], blocks: [2, 2, 3, 3, 3], filters: 64, includeTop: false });
    expect(counts(base)).toEqual({ params: 14714688, trainable: 14714688, layers: 19, weights: 26, trainableWeights: 26 });
    expect(base.layers.slice(1, 4).map((l) => l.name)).toEqual(['block1_conv1', 'block1_conv2', 'block1_pool']);
    expect(base.layers.at(-1)!.name).toBe('block5_pool');
    // The default small net, counted by hand: convs 896 + 9,248 + 18,496 + 36,928 + 73,856 +
    // 2 x 147,584; fc1 2,048 x 256 + 256; predictions 256 x 10 + 10.
    expect(ck.applications.vgg().countParams()).toBe(896 + 9248 + 18496 + 36928 + 73856 + 2 * 147584 + 2048 * 256 + 256 + 2570);
  });
});

describe('MobileNetV3Small and MobileNetV3Large', () => {
  test("Keras's parameter counts, from keras/src/applications/mobilenet_v3.py's formula", () => {
    // Keras is not installed here: the totals are the sums of the layer sizes that
    // mobilenet_v3.py builds (_depth rounding, SE to a quarter, conv_2 to 1024), computed by
    // hand; 2,554,968 is also the figure keras.io lists for MobileNetV3Small. Non-trainable: the
    // 12,112 moving means and variances of its batch norms, so 2,542,856 trainable, which is
    // torchvision's mobilenet_v3_small count (torchvision counts no statistics).
    // Weights: 34 batch norms x 4 (2 trainable); 34 convolutions without bias (stem, expand,
    // depthwise, project, conv_1) x 1; 20 with (9 SE blocks x 2, conv_2, logits) x 2.
    const c = counts(ck.applications.mobileNetV3Small());
    expect([c.params, c.trainable, c.weights, c.trainableWeights]).toEqual([2554968, 2542856, 34 * 4 + 34 + 20 * 2, 34 * 2 + 34 + 20 * 2]);
    expect(ck.applications.mobileNetV3Small({ includeTop: false }).countParams()).toBe(939120);
    expect(ck.applications.mobileNetV3Small({ alpha: 0.75 }).countParams()).toBe(2051552);
    expect(ck.applications.mobileNetV3Small({ minimalistic: true }).countParams()).toBe(2056848);
    expect(ck.applications.mobileNetV3Small({ alpha: 0.75, classes: 10 }).countParams()).toBe(1036802);
    const m = ck.applications.mobileNetV3Small();
    expect(m.name).toBe('MobileNetV3Small');
    const names = m.layers.map((l) => l.name);
    for (const n of ['conv', 'conv_bn', 'expanded_conv_depthwise_pad', 'expanded_conv_squeeze_excite_mul', 'expanded_conv_1_expand',
      'expanded_conv_2_add', 'expanded_conv_10_project_bn', 'conv_1', 'conv_2', 'logits', 'predictions']) expect(names).toContain(n);
    expect(m.layers.filter((l) => l.className === 'Multiply')).toHaveLength(9);  // every block but 1 and 2
    expect(ck.applications.mobileNetV3Small({ includeTop: false, pooling: 'avg', inputShape: [96, 96, 3] }).outputShape).toEqual([null, 576]);
  });

  test("MobileNetV3Large: Keras's parameter counts, from the same formula", () => {
    // 5,507,432 is keras.io's figure too; non-trainable: 24,400 batch-norm statistics, so
    // 5,483,032 trainable, torchvision's mobilenet_v3_large count.
    const c = counts(ck.applications.mobileNetV3Large());
    expect([c.params, c.trainable]).toEqual([5507432, 5483032]);
    expect(ck.applications.mobileNetV3Large({ includeTop: false }).countParams()).toBe(2996352);
    expect(ck.applications.mobileNetV3Large({ alpha: 0.75 }).countParams()).toBe(4012616);
    expect(ck.applications.mobileNetV3Large({ minimalistic: true }).countParams()).toBe(3948688);
    const m = ck.applications.mobileNetV3Large();
    expect(m.name).toBe('MobileNetV3Large');
    expect(m.layers.filter((l) => l.className === 'Multiply')).toHaveLength(8);  // blocks 3-5 and 10-14
    expect(m.getLayer('expanded_conv_14_add').outputShape).toEqual([null, 7, 7, 160]);
  });

  test("includePreprocessing: Keras's Rescaling(1/127.5, -1) first, so raw pixels give what scaled pixels give without it", async () => {
    const shape = [40, 40, 3];
    // the features, not near-uniform softmax probabilities, so that a small error shows
    const raw = ck.applications.mobileNetV3Small({ inputShape: shape, includeTop: false, includePreprocessing: true });
    const plain = ck.applications.mobileNetV3Small({ inputShape: shape, includeTop: false });
    expect(raw.layers[1].name).toBe('rescaling');
    expect(raw.countParams()).toBe(plain.countParams());
    plain.setWeights(raw.getWeights());
    const n = 2 * 40 * 40 * 3;
    const pixels = Float32Array.from({ length: n }, (_, i) => (i * 37) % 256);
    const got = await raw.predict(ck.tensor(pixels, [2, ...shape])).data();
    const want = await plain.predict(ck.tensor(pixels.map((v) => v / 127.5 - 1), [2, ...shape])).data();
    const scale = Math.max(...Array.from(want, Math.abs));
    for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(1e-5 * scale);
  });

  test('bad options are typed errors naming the builder', () => {
    expect(() => ck.applications.mobileNetV3Small({ includePreprocessing: 1 as never })).toThrow(/applications.mobileNetV3Small: includePreprocessing must be a boolean/);
    expect(() => ck.applications.mobileNetV3Small({ minimalistic: 1 as never })).toThrow(ck.ValueError);
    expect(() => ck.applications.mobileNetV3Small({ dropoutRate: 1 })).toThrow(/dropoutRate must be a number in \[0, 0.999\]/);
    expect(() => ck.applications.mobileNetV3Small({ inputShape: [31, 64, 3] })).toThrow(ck.ShapeError);
  });

  // torchvision's mobilenet_v3_small and _large are the same networks (their classifiers' Linear
  // layers are the 1x1 conv_2 and logits): with their weights, convkit must give their logits.
  // At 65x65 every strided layer sees an odd size, where PyTorch's symmetric padding equals Keras's.
  const python = '/usr/bin/python3';
  const hasTorch = spawnSync(python, ['-c', 'import torch, torchvision'], { encoding: 'utf8' }).status === 0;
  const variants: [string, 'mobileNetV3Small' | 'mobileNetV3Large'][] = [['small', 'mobileNetV3Small'], ['large', 'mobileNetV3Large']];
  (hasTorch ? test.each : test.skip.each)(variants)(
    "with torchvision's mobilenet_v3_%s weights, %s gives its logits; it saves and reloads in the TensorFlow.js format", async (size, builder) => {
      const out = path.join(root, `torch-mobilenet-v3-${size}`);
      fs.mkdirSync(out, { recursive: true });
      const made = spawnSync(python, [path.join(__dirname, 'fixtures', 'applications', 'torch_mobilenet_v3.py'), size, out], { encoding: 'utf8' });
      expect({ status: made.status, stderr: made.status === 0 ? '' : made.stderr.slice(-500) }).toEqual({ status: 0, stderr: '' });
      const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')) as { name: string; shape: number[] }[];
      const bytes = fs.readFileSync(path.join(out, 'weights.bin'));
      const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      const stored = new Map<string, { data: Float32Array; shape: number[] }>();
      let at = 0;
      for (const { name, shape } of manifest) {
        const n = shape.reduce((a, b) => a * b, 1);
        stored.set(name, { data: all.slice(at, at + n), shape });
        at += n;
      }
      const build = ck.applications[builder];
      const args = { inputShape: [65, 65, 3], classes: 10, classifierActivation: 'linear' as const };
      const model = build(args);
      let used = 0;
      for (const [i, layer] of model.layers.entries()) {
        const specs = layer.weightSpecs(model.built!.layerShapes[i].input);
        if (!specs.length) continue;
        layer.setWeights(specs.map((w) => {
          const t = stored.get(`${layer.name}/${w.name}`);
          if (!t) throw new Error(`torchvision has no ${layer.name}/${w.name}`);
          expect(t.shape).toEqual(w.shape);
          used++;
          return ck.tensor(t.data, t.shape);
        }));
      }
      expect(used).toBe(manifest.length - 2);  // every torchvision weight found its layer
      const x = stored.get('x')!;
      const want = stored.get('y')!.data;
      const got = model.predict(ck.tensor(x.data, x.shape)).dataSync();
      expect(maxRelDiff(got, want)).toBeLessThan(1e-4);
      const dir = path.join(root, `mobilenet-v3-${size}`);
      await model.save(`file://${dir}`);
      const reloaded = await ck.loadModel(`file://${dir}`);
      expect(Array.from(reloaded.predict(ck.tensor(x.data, x.shape)).dataSync())).toEqual(Array.from(got));
      const byName = await build({ ...args, weights: `file://${dir}` });
      expect(Array.from(byName.predict(ck.tensor(x.data, x.shape)).dataSync())).toEqual(Array.from(got));
    }, 120_000);
});

// ---- The same graphs in TensorFlow.js, written from the Keras sources ----

type TfSym = tf.SymbolicTensor;
const tl = tf.layers;

/** MobileNet v1 as tf.keras 2.0-2.5 wrote its top (GAP, reshape_1): tfjs 4 has no GAP keepdims. */
function tfMobileNet(alpha: number, shape: number[], classes: number, includeTop = true): tf.LayersModel {
  const inputs = tf.input({ shape });
  let x: TfSym = tl.conv2d({ filters: Math.trunc(32 * alpha), kernelSize: 3, strides: 2, padding: 'same', useBias: false, name: 'conv1' }).apply(inputs) as TfSym;
  x = tl.batchNormalization({ name: 'conv1_bn' }).apply(x) as TfSym;
  x = tl.reLU({ maxValue: 6, name: 'conv1_relu' }).apply(x) as TfSym;
  const blocks = [[64, 1], [128, 2], [128, 1], [256, 2], [256, 1], [512, 2], [512, 1], [512, 1], [512, 1], [512, 1], [512, 1], [1024, 2], [1024, 1]];
  blocks.forEach(([filters, stride], i) => {
    const id = i + 1;
    if (stride === 2) x = tl.zeroPadding2d({ padding: [[0, 1], [0, 1]], name: `conv_pad_${id}` }).apply(x) as TfSym;
    x = tl.depthwiseConv2d({ kernelSize: 3, strides: stride, padding: stride === 1 ? 'same' : 'valid', useBias: false, name: `conv_dw_${id}` }).apply(x) as TfSym;
    x = tl.batchNormalization({ name: `conv_dw_${id}_bn` }).apply(x) as TfSym;
    x = tl.reLU({ maxValue: 6, name: `conv_dw_${id}_relu` }).apply(x) as TfSym;
    x = tl.conv2d({ filters: Math.trunc(filters * alpha), kernelSize: 1, padding: 'same', useBias: false, name: `conv_pw_${id}` }).apply(x) as TfSym;
    x = tl.batchNormalization({ name: `conv_pw_${id}_bn` }).apply(x) as TfSym;
    x = tl.reLU({ maxValue: 6, name: `conv_pw_${id}_relu` }).apply(x) as TfSym;
  });
  if (includeTop) {
    x = tl.globalAveragePooling2d({}).apply(x) as TfSym;
    x = tl.reshape({ targetShape: [1, 1, Math.trunc(1024 * alpha)], name: 'reshape_1' }).apply(x) as TfSym;
    x = tl.dropout({ rate: 1e-3, name: 'dropout' }).apply(x) as TfSym;
    x = tl.conv2d({ filters: classes, kernelSize: 1, padding: 'same', name: 'conv_preds' }).apply(x) as TfSym;
    x = tl.reshape({ targetShape: [classes], name: 'reshape_2' }).apply(x) as TfSym;
    x = tl.activation({ activation: 'linear', name: 'predictions' }).apply(x) as TfSym;
  }
  return tf.model({ inputs, outputs: x });
}

/** Keras's _make_divisible, written out again. */
function divisible(v: number, d: number): number {
  const n = Math.max(d, Math.floor((Math.floor(v + d / 2)) / d) * d);
  return n < 0.9 * v ? n + d : n;
}

function tfMobileNetV2(alpha: number, shape: number[], classes: number, includeTop = true): tf.LayersModel {
  const bn = (name: string) => tl.batchNormalization({ epsilon: 1e-3, momentum: 0.999, name });
  const inputs = tf.input({ shape });
  let x: TfSym = tl.conv2d({ filters: divisible(32 * alpha, 8), kernelSize: 3, strides: 2, padding: 'same', useBias: false, name: 'Conv1' }).apply(inputs) as TfSym;
  x = bn('bn_Conv1').apply(x) as TfSym;
  x = tl.reLU({ maxValue: 6, name: 'Conv1_relu' }).apply(x) as TfSym;
  const blocks = [[1, 16, 1], [6, 24, 2], [6, 24, 1], [6, 32, 2], [6, 32, 1], [6, 32, 1], [6, 64, 2], [6, 64, 1], [6, 64, 1], [6, 64, 1],
    [6, 96, 1], [6, 96, 1], [6, 96, 1], [6, 160, 2], [6, 160, 1], [6, 160, 1], [6, 320, 1]];
  blocks.forEach(([expansion, filters, stride], id) => {
    const input = x;
    const inC = input.shape[3] as number;
    const out = divisible(Math.trunc(filters * alpha), 8);
    const prefix = id ? `block_${id}_` : 'expanded_conv_';
    if (id) {
      x = tl.conv2d({ filters: expansion * inC, kernelSize: 1, padding: 'same', useBias: false, name: `${prefix}expand` }).apply(x) as TfSym;
      x = bn(`${prefix}expand_BN`).apply(x) as TfSym;
      x = tl.reLU({ maxValue: 6, name: `${prefix}expand_relu` }).apply(x) as TfSym;
    }
    if (stride === 2) {
      const [h, w] = [x.shape[1] as number, x.shape[2] as number];
      x = tl.zeroPadding2d({ padding: [[h % 2, 1], [w % 2, 1]], name: `${prefix}pad` }).apply(x) as TfSym;
    }
    x = tl.depthwiseConv2d({ kernelSize: 3, strides: stride, useBias: false, padding: stride === 1 ? 'same' : 'valid', name: `${prefix}depthwise` }).apply(x) as TfSym;
    x = bn(`${prefix}depthwise_BN`).apply(x) as TfSym;
    x = tl.reLU({ maxValue: 6, name: `${prefix}depthwise_relu` }).apply(x) as TfSym;
    x = tl.conv2d({ filters: out, kernelSize: 1, padding: 'same', useBias: false, name: `${prefix}project` }).apply(x) as TfSym;
    x = bn(`${prefix}project_BN`).apply(x) as TfSym;
    if (inC === out && stride === 1) x = tl.add({ name: `${prefix}add` }).apply([input, x]) as TfSym;
  });
  x = tl.conv2d({ filters: alpha > 1 ? divisible(1280 * alpha, 8) : 1280, kernelSize: 1, useBias: false, name: 'Conv_1' }).apply(x) as TfSym;
  x = bn('Conv_1_bn').apply(x) as TfSym;
  x = tl.reLU({ maxValue: 6, name: 'out_relu' }).apply(x) as TfSym;
  if (includeTop) {
    x = tl.globalAveragePooling2d({}).apply(x) as TfSym;
    x = tl.dense({ units: classes, name: 'predictions' }).apply(x) as TfSym;
  }
  return tf.model({ inputs, outputs: x });
}

function tfResNet20(shape: number[], classes: number): tf.LayersModel {
  const layer = (x: TfSym, filters: number, kernelSize: number, strides: number, relu: boolean, norm: boolean) => {
    x = tl.conv2d({ filters, kernelSize, strides, padding: 'same' }).apply(x) as TfSym;
    if (norm) x = tl.batchNormalization({}).apply(x) as TfSym;
    return relu ? tl.activation({ activation: 'relu' }).apply(x) as TfSym : x;
  };
  const inputs = tf.input({ shape });
  let filters = 16;
  let x = layer(inputs, 16, 3, 1, true, true);
  for (let stage = 0; stage < 3; stage++) {
    for (let block = 0; block < 3; block++) {
      const strides = stage > 0 && block === 0 ? 2 : 1;
      let y = layer(x, filters, 3, strides, true, true);
      y = layer(y, filters, 3, 1, false, true);
      if (strides === 2) x = layer(x, filters, 1, strides, false, false);
      x = tl.add({}).apply([x, y]) as TfSym;
      x = tl.activation({ activation: 'relu' }).apply(x) as TfSym;
    }
    filters *= 2;
  }
  x = tl.averagePooling2d({ poolSize: 8 }).apply(x) as TfSym;
  x = tl.flatten({}).apply(x) as TfSym;
  x = tl.dense({ units: classes }).apply(x) as TfSym;
  return tf.model({ inputs, outputs: x });
}

/** keras/applications/resnet.py's ResNet (v1, stack1 of block1) with Keras's layer names. */
function tfResNet(stacks: number[], shape: number[], classes: number): tf.LayersModel {
  const bn = (name: string) => tl.batchNormalization({ axis: 3, epsilon: 1.001e-5, name });
  const block = (x: TfSym, filters: number, stride: number, convShortcut: boolean, name: string) => {
    let shortcut = x;
    if (convShortcut) {
      shortcut = tl.conv2d({ filters: 4 * filters, kernelSize: 1, strides: stride, name: `${name}_0_conv` }).apply(x) as TfSym;
      shortcut = bn(`${name}_0_bn`).apply(shortcut) as TfSym;
    }
    let y = tl.conv2d({ filters, kernelSize: 1, strides: stride, name: `${name}_1_conv` }).apply(x) as TfSym;
    y = tl.activation({ activation: 'relu', name: `${name}_1_relu` }).apply(bn(`${name}_1_bn`).apply(y)) as TfSym;
    y = tl.conv2d({ filters, kernelSize: 3, padding: 'same', name: `${name}_2_conv` }).apply(y) as TfSym;
    y = tl.activation({ activation: 'relu', name: `${name}_2_relu` }).apply(bn(`${name}_2_bn`).apply(y)) as TfSym;
    y = tl.conv2d({ filters: 4 * filters, kernelSize: 1, name: `${name}_3_conv` }).apply(y) as TfSym;
    y = bn(`${name}_3_bn`).apply(y) as TfSym;
    const sum = tl.add({ name: `${name}_add` }).apply([shortcut, y]) as TfSym;
    return tl.activation({ activation: 'relu', name: `${name}_out` }).apply(sum) as TfSym;
  };
  const inputs = tf.input({ shape });
  let x = tl.zeroPadding2d({ padding: 3, name: 'conv1_pad' }).apply(inputs) as TfSym;
  x = tl.conv2d({ filters: 64, kernelSize: 7, strides: 2, name: 'conv1_conv' }).apply(x) as TfSym;
  x = tl.activation({ activation: 'relu', name: 'conv1_relu' }).apply(bn('conv1_bn').apply(x)) as TfSym;
  x = tl.zeroPadding2d({ padding: 1, name: 'pool1_pad' }).apply(x) as TfSym;
  x = tl.maxPooling2d({ poolSize: 3, strides: 2, name: 'pool1_pool' }).apply(x) as TfSym;
  stacks.forEach((blocks, i) => {
    // stack1(x, filters, blocks, stride1): block1 with a conv shortcut, then blocks - 1 without.
    const filters = [64, 128, 256, 512][i];
    x = block(x, filters, i === 0 ? 1 : 2, true, `conv${i + 2}_block1`);
    for (let b = 2; b <= blocks; b++) x = block(x, filters, 1, false, `conv${i + 2}_block${b}`);
  });
  x = tl.globalAveragePooling2d({ name: 'avg_pool' }).apply(x) as TfSym;
  x = tl.dense({ units: classes, name: 'predictions' }).apply(x) as TfSym;
  return tf.model({ inputs, outputs: x });
}

function tfVgg(shape: number[], blocks: number[], filters: number, fcUnits: number[], classes: number): tf.LayersModel {
  const inputs = tf.input({ shape });
  let x: TfSym = inputs;
  blocks.forEach((convs, b) => {
    for (let i = 0; i < convs; i++) x = tl.conv2d({ filters: Math.min(filters * 2 ** b, 512), kernelSize: 3, padding: 'same', activation: 'relu' }).apply(x) as TfSym;
    x = tl.maxPooling2d({ poolSize: 2 }).apply(x) as TfSym;
  });
  x = tl.flatten({}).apply(x) as TfSym;
  for (const units of fcUnits) x = tl.dense({ units, activation: 'relu' }).apply(x) as TfSym;
  x = tl.dense({ units: classes }).apply(x) as TfSym;
  return tf.model({ inputs, outputs: x });
}

/** Layers with weights, in order: [className, weight shapes]. */
function weighted(m: Model): [string, number[][]][] {
  return m.layers.flatMap((l, i) => {
    const shapes = l.weightSpecs(m.built!.layerShapes[i].input).map((w) => w.shape);
    return shapes.length ? [[l.className, shapes] as [string, number[][]]] : [];
  });
}

function tfWeighted(m: tf.LayersModel): [string, number[][]][] {
  return m.layers.filter((l) => l.weights.length).map((l) => [l.getClassName(), l.weights.map((w) => w.shape as number[])]);
}

/**
 * Weights that keep the signal alive through dozens of layers (He-scaled kernels, batch norm
 * near the identity but not it), so outputs depend on the input and on every layer.
 */
function liveWeights(className: string, shape: number[], k: number, next: () => number): Float32Array {
  let draw: () => number;
  if (className === 'BatchNormalization') draw = k === 0 || k === 3 ? () => 0.8 + 0.4 * next() : () => 0.2 * next() - 0.1;
  else if (shape.length === 1) draw = () => 0.2 * next() - 0.1;
  else {
    const fanIn = className === 'DepthwiseConv2D' ? shape[0] * shape[1] : shape.slice(0, -1).reduce((x, y) => x * y, 1);
    const limit = Math.sqrt(6 / fanIn);
    draw = () => (2 * next() - 1) * limit;
  }
  return Float32Array.from({ length: shape.reduce((x, y) => x * y, 1) }, draw);
}

function setLiveWeights(model: Model, seed: number): void {
  const next = lcg(seed);
  for (const layer of model.layers) {
    const weights = layer.getWeights();
    if (weights.length) layer.setWeights(weights.map((w, k) => ck.tensor(liveWeights(layer.className, [...w.shape], k, next), [...w.shape])));
  }
}

/** Live weights in convkit's model, copied into the tfjs model layer by layer in order. */
function shareWeights(mine: Model, ref: tf.LayersModel, seed: number): void {
  setLiveWeights(mine, seed);
  const refLayers = ref.layers.filter((l) => l.weights.length);
  const myLayers = mine.layers.filter((l) => l.getWeights().length);
  expect(myLayers.length).toBe(refLayers.length);
  myLayers.forEach((layer, i) => refLayers[i].setWeights(layer.getWeights().map((v) => tf.tensor(v.dataSync(), [...v.shape]))));
}

function maxRelDiff(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  expect(got.length).toBe(ref.length);
  let d = 0;
  for (let i = 0; i < got.length; i++) d = Math.max(d, Math.abs(got[i] - ref[i]) / Math.max(1, Math.abs(ref[i])));
  return d;
}

function expectSameGraph(mine: Model, ref: tf.LayersModel): void {
  expect(mine.countParams()).toBe(ref.countParams());
  expect(weighted(mine)).toEqual(tfWeighted(ref));
  expect(mine.outputShape).toEqual(ref.outputs[0].shape);
}

describe('the same graphs in TensorFlow.js', () => {
  test('MobileNet v1 at every alpha: layer order, names, shapes and parameter counts', () => {
    // The counts at 224x224 (as docs/applications.md lists them); tfjs counts the same at
    // 32x32, as no weight of MobileNet depends on the input size.
    for (const [alpha, params] of [[0.25, 475544], [0.5, 1342536], [0.75, 2601976]]) {
      const mine = ck.applications.mobileNet({ alpha, classifierActivation: 'linear' });
      const ref = tfMobileNet(alpha, [32, 32, 3], 1000);
      expect(mine.countParams()).toBe(params);
      expectSameGraph(mine, ref);
      // tfjs's top has reshape_1 where Keras 2.6+ (and convkit) keep the pooled dims.
      const refNames = ref.layers.map((l) => l.name).filter((n) => n !== 'reshape_1').slice(1);
      expect(mine.layers.slice(1).map((l) => l.name).map((n) => (n.startsWith('global_average') ? 'gap' : n)))
        .toEqual(refNames.map((n) => (n.startsWith('global_average') ? 'gap' : n)));
    }
  });

  test('MobileNetV2 at several alphas and an odd input size: the same layers, shapes and counts', () => {
    for (const [alpha, shape] of [[0.35, [64, 64, 3]], [0.75, [33, 47, 3]], [1.3, [32, 32, 3]]] as [number, number[]][]) {
      const mine = ck.applications.mobileNetV2({ alpha, inputShape: shape, classes: 7, classifierActivation: 'linear' });
      const ref = tfMobileNetV2(alpha, shape, 7);
      expectSameGraph(mine, ref);
      expect(mine.layers.slice(1).map((l) => l.name).filter((n) => !n.startsWith('global')))
        .toEqual(ref.layers.slice(1).map((l) => l.name).filter((n) => !n.startsWith('global')));
      mine.layers.forEach((layer, i) => {
        expect([null, ...mine.built!.layerShapes[i].output]).toEqual(ref.layers[i].outputShape);
      });
    }
  });

  test('ResNet-50: layer order, names, shapes and counts, and predictions with shared weights', () => {
    for (const [name, stacks] of [['resNet50', [3, 4, 6, 3]]] as [string, number[]][]) {
      const mine = (ck.applications as unknown as Record<string, (a: object) => Model>)[name]({ inputShape: [40, 48, 3], classes: 7, classifierActivation: 'linear' });
      const ref = tfResNet(stacks, [40, 48, 3], 7);
      expectSameGraph(mine, ref);
      expect(mine.layers.slice(1).map((l) => l.name)).toEqual(ref.layers.slice(1).map((l) => l.name));
      mine.layers.forEach((layer, i) => {
        expect([null, ...mine.built!.layerShapes[i].output]).toEqual(ref.layers[i].outputShape);
      });
      shareWeights(mine, ref, 77);
      const x = randomArray(2 * 40 * 48 * 3, 78, -1, 1);
      const got = mine.predict(ck.tensor(x, [2, 40, 48, 3])).dataSync();
      const want = (ref.predict(tf.tensor(x, [2, 40, 48, 3])) as tf.Tensor).dataSync();
      expect(maxRelDiff(got, want)).toBeLessThan(1e-4);
    }
  });

  test('predictions with shared weights: MobileNet v1, MobileNetV2, ResNet-20, VGG', () => {
    const cases: [Model, tf.LayersModel, number[]][] = [
      [ck.applications.mobileNet({ alpha: 0.25, inputShape: [64, 64, 3], classes: 6, classifierActivation: 'linear' }), tfMobileNet(0.25, [64, 64, 3], 6), [64, 64, 3]],
      [ck.applications.mobileNetV2({ alpha: 0.35, inputShape: [48, 40, 3], classes: 5, classifierActivation: 'linear' }), tfMobileNetV2(0.35, [48, 40, 3], 5), [48, 40, 3]],
      [ck.applications.resNet20({ classifierActivation: 'linear' }), tfResNet20([32, 32, 3], 10), [32, 32, 3]],
      [ck.applications.vgg({ classifierActivation: 'linear' }), tfVgg([32, 32, 3], [2, 2, 3], 32, [256], 10), [32, 32, 3]],
    ];
    cases.forEach(([mine, ref, shape], c) => {
      expectSameGraph(mine, ref);
      shareWeights(mine, ref, 30 + c);
      const n = 3;
      const x = randomArray(n * shape[0] * shape[1] * shape[2], 40 + c, -1, 1);
      const got = mine.predict(ck.tensor(x, [n, ...shape])).dataSync();
      const want = (ref.predict(tf.tensor(x, [n, ...shape])) as tf.Tensor).dataSync();
      expect(maxRelDiff(got, want)).toBeLessThan(1e-4);
      // The comparison has something to see: other images give clearly other logits.
      const other = mine.predict(ck.tensor(randomArray(x.length, 50 + c, -1, 1), [n, ...shape])).dataSync();
      expect(maxRelDiff(other, want)).toBeGreaterThan(1e-2);
    });
  });
});

describe('any input size and class count', () => {
  test('mobileNet at 96x96 with 5 classes trains, and the loss falls on a fixed batch', async () => {
    ck.setSeed(50);
    const model = ck.applications.mobileNet({ alpha: 0.25, inputShape: [96, 96, 3], classes: 5 });
    expect(model.outputShape).toEqual([null, 5]);
    expect(model.name).toBe('mobilenet_0.25_96');
    model.compile({ optimizer: ck.optimizers.adam({ learningRate: 0.01 }), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    const n = 10;
    const x = ck.tensor(randomArray(n * 96 * 96 * 3, 51), [n, 96, 96, 3]);
    const y = ck.tensor(Float32Array.from({ length: n }, (_, i) => i % 5), [n]);
    const before = model.getLayer('conv_preds').getWeights()[0].dataSync().slice();
    const h = await model.fit(x, y, { epochs: 6, batchSize: n, verbose: 0, shuffle: false });
    expect(h.history.loss.every(Number.isFinite)).toBe(true);
    expect(h.history.loss.at(-1)!).toBeLessThan(h.history.loss[0]);
    expect(model.getLayer('conv_preds').getWeights()[0].dataSync()).not.toEqual(before);
    const p = model.predict(x).dataSync();
    for (let i = 0; i < n; i++) expect(p.slice(i * 5, i * 5 + 5).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
  });

  test('other sizes, class counts and the pooling options give the shapes Keras would', () => {
    expect(ck.applications.mobileNetV2({ alpha: 0.5, inputShape: [96, 128, 3], classes: 7 }).outputShape).toEqual([null, 7]);
    expect(ck.applications.mobileNet({ alpha: 0.5, inputShape: [128, 160, 1], includeTop: false }).outputShape).toEqual([null, 4, 5, 512]);
    expect(ck.applications.mobileNet({ alpha: 0.25, inputShape: [64, 64, 3], includeTop: false, pooling: 'avg' }).outputShape).toEqual([null, 256]);
    expect(ck.applications.mobileNetV2({ alpha: 0.35, inputShape: [64, 64, 3], includeTop: false, pooling: 'max' }).outputShape).toEqual([null, 1280]);
    const resnet = ck.applications.resNet20({ inputShape: [64, 64, 3], classes: 3 });
    expect(resnet.outputShape).toEqual([null, 3]);
    expect(resnet.layers.find((l) => l.className === 'Dense')!.getWeights()[0].shape).toEqual([2 * 2 * 64, 3]);
    expect(ck.applications.resNet20({ includeTop: false }).outputShape).toEqual([null, 8, 8, 64]);
    expect(ck.applications.vgg({ inputShape: [48, 48, 3], blocks: [1, 1], filters: 8, fcUnits: [], classes: 4 }).outputShape).toEqual([null, 4]);
    expect(ck.applications.vgg({ includeTop: false, pooling: 'avg' }).outputShape).toEqual([null, 128]);
  });

  test('bad options get typed errors naming the builder', () => {
    expect(() => ck.applications.mobileNet({ inputShape: [31, 64, 3] })).toThrow(ck.ShapeError);
    expect(() => ck.applications.mobileNet({ inputShape: [31, 64, 3] })).toThrow(/applications\.mobileNet: the input must be at least 32x32/);
    expect(() => ck.applications.mobileNet({ alpha: -1 })).toThrow(ck.ValueError);
    expect(() => ck.applications.mobileNet({ alpha: 0.01 })).toThrow(/at least 1\/32/);
    expect(() => ck.applications.mobileNet({ classes: 0 })).toThrow(ck.ValueError);
    expect(() => ck.applications.mobileNet({ depthMultiplier: 1.5 })).toThrow(ck.ValueError);
    expect(() => ck.applications.mobileNetV2({ pooling: 'mean' as never })).toThrow(/pooling must be 'avg', 'max' or null/);
    expect(() => ck.applications.mobileNetV2({ weights: 'imagenet' })).toThrow(/downloads nothing/);
    expect(() => ck.applications.resNet20({ inputShape: [28, 28, 1] })).toThrow(ck.ShapeError);
    expect(() => ck.applications.resNet20({ depth: 32 } as never)).toThrow(/unknown option 'depth'/);
    expect(() => ck.applications.vgg({ blocks: [2, 2, 2, 2, 2, 2], inputShape: [32, 32, 3] })).toThrow(/at least 64x64/);
    expect(() => ck.applications.vgg({ blocks: [] })).toThrow(ck.ValueError);
    expect(() => ck.applications.vgg('big' as never)).toThrow(ck.ValueError);
  });
});

describe("weights: 'file://dir'", () => {
  const x = randomArray(2 * 64 * 64 * 3, 60, -1, 1);
  const input = () => ck.tensor(x, [2, 64, 64, 3]);

  test('a convkit save loads into a new model by name, also into the model without its top', async () => {
    ck.setSeed(61);
    const trained = ck.applications.mobileNet({ alpha: 0.25, inputShape: [64, 64, 3], classes: 4, classifierActivation: 'linear' });
    setLiveWeights(trained, 62);
    const dir = path.join(root, 'mobilenet');
    await trained.save(`file://${dir}`);
    const loaded = await ck.applications.mobileNet({ alpha: 0.25, inputShape: [64, 64, 3], classes: 4, classifierActivation: 'linear', weights: `file://${dir}` });
    expect(loaded).toBeInstanceOf(ck.Functional);
    const want = trained.predict(input()).dataSync();
    expect(Array.from(loaded.predict(input()).dataSync())).toEqual(Array.from(want));
    expect(maxRelDiff(trained.predict(ck.tensor(randomArray(x.length, 63, -1, 1), [2, 64, 64, 3])).dataSync(), want)).toBeGreaterThan(1e-2);
    const reloaded = await ck.loadModel(`file://${dir}`);
    expect(reloaded.layers.map((l) => l.name)).toEqual(trained.layers.map((l) => l.name));
    expect(Array.from(reloaded.predict(input()).dataSync())).toEqual(Array.from(want));
    const base = await ck.applications.mobileNet({ alpha: 0.25, inputShape: [64, 64, 3], includeTop: false, weights: `file://${dir}` });
    const features = trained.layerOutput(input(), trained.getLayer('conv_pw_13_relu')).dataSync();
    expect(Array.from(base.predict(input()).dataSync())).toEqual(Array.from(features));
  });

  test('a TensorFlow.js save loads by name and predicts as tfjs does', async () => {
    const ref = tfMobileNet(0.25, [64, 64, 3], 3);
    const next = lcg(70);
    ref.layers.forEach((layer) => layer.setWeights(layer.getWeights().map((w, k) => tf.tensor(liveWeights(layer.getClassName(), w.shape, k, next), w.shape))));
    const dir = path.join(root, 'tfjs-mobilenet');
    await saveTfjs(ref, dir);
    const mine = await ck.applications.mobileNet({ alpha: 0.25, inputShape: [64, 64, 3], classes: 3, classifierActivation: 'linear', weights: `file://${dir}` });
    const want = (ref.predict(tf.tensor(x, [2, 64, 64, 3])) as tf.Tensor).dataSync();
    expect(maxRelDiff(mine.predict(input()).dataSync(), want)).toBeLessThan(1e-4);
    expect(maxRelDiff(mine.predict(ck.tensor(randomArray(x.length, 71, -1, 1), [2, 64, 64, 3])).dataSync(), want)).toBeGreaterThan(1e-2);
  });

  test('auto-named layers (ResNet-20) numbered differently load by position', async () => {
    ck.setSeed(80);
    const first = ck.applications.resNet20();
    setLiveWeights(first, 82);
    const dir = path.join(root, 'resnet');
    await first.save(`file://${dir}`);
    const second = await ck.applications.resNet20({ weights: `file://${dir}` });
    expect(second.layers[1].name).not.toBe(first.layers[1].name);
    const images = ck.tensor(randomArray(2 * 32 * 32 * 3, 81), [2, 32, 32, 3]);
    expect(Array.from(second.predict(images).dataSync())).toEqual(Array.from(first.predict(images).dataSync()));
  });

  test('weights that do not fit get typed errors naming the weight and the shapes', async () => {
    const dir = path.join(root, 'mobilenet-0.25');
    await ck.applications.mobileNet({ alpha: 0.25, inputShape: [64, 64, 3], classes: 4 }).save(`file://${dir}`);
    await expect(ck.applications.mobileNet({ alpha: 0.5, inputShape: [64, 64, 3], classes: 4, weights: `file://${dir}` }))
      .rejects.toThrow(/weight conv1\/kernel in .* has shape \[3, 3, 3, 8\] but mobilenet_0\.50_64's conv1\/kernel needs \[3, 3, 3, 16\]/);
    await expect(ck.applications.mobileNet({ alpha: 0.25, inputShape: [64, 64, 3], classes: 5, weights: `file://${dir}` }))
      .rejects.toThrow(ck.ShapeError);
    const vgg = ck.applications.vgg({ weights: `file://${dir}` });
    await expect(vgg).rejects.toThrow(ck.ShapeError);
    await expect(vgg).rejects.toThrow(/needs \[3, 3, 3, 32\] \(matched by position: the file has no weight named block1_conv1\/kernel\)/);
    const small = path.join(root, 'vgg-small');
    await ck.applications.vgg({ blocks: [1], filters: 4, fcUnits: [], classes: 2 }).save(`file://${small}`);
    const tooFew = ck.applications.mobileNet({ alpha: 0.25, inputShape: [64, 64, 3], weights: `file://${small}` });
    await expect(tooFew).rejects.toThrow(ck.FormatError);
    await expect(tooFew).rejects.toThrow(/has no weight named conv1\/kernel \(nor 136 more of the model's\), and holds 4 weights where mobilenet_0\.25_64 needs 137/);
    await expect(ck.applications.resNet20({ weights: `file://${path.join(root, 'nothing')}` })).rejects.toThrow(ck.FormatError);
    await expect(ck.applications.loadWeights(ck.applications.mobileNetV2({ alpha: 0.35, inputShape: [32, 32, 3] }), `file://${dir}`))
      .rejects.toThrow(ck.ConvkitError);
  });
});
