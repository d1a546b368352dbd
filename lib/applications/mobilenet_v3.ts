// MobileNetV3 Small and Large (Howard et al. 2019) as keras.applications builds them:
// inverted residual blocks with squeeze-and-excitation and hard swish, with Keras's layer
// names, order and weights, so parameter counts equal Keras's and weights move by name.
import { ValueError } from '../errors';
import { Activation, Dropout, Flatten, ReLU } from '../layers/core';
import { BatchNormalization, Conv2D, GlobalAveragePooling2D } from '../layers/conv';
import { SymbolicTensor } from '../layers/layer';
import { Add, Multiply } from '../layers/merge';
import { Rescaling } from '../layers/preprocessing';
import { DepthwiseConv2D, ZeroPadding2D } from '../layers/spatial';
import { Functional, input } from '../models/functional';
import { ApplicationArgs, checkCommon, checkOptions, numberIn, poolFeatures, withWeights } from './common';
import { correctPad, makeDivisible } from './mobilenet_v2';

export interface MobileNetV3Args extends ApplicationArgs {
  /** Width multiplier (ImageNet weights exist for 0.75 and 1.0). */
  alpha?: number;
  /** Keras's minimalistic variant: 3x3 kernels, ReLU everywhere, no squeeze-and-excitation. */
  minimalistic?: boolean;
  /** Dropout rate before the classifier. */
  dropoutRate?: number;
  /**
   * true puts Keras's Rescaling(1/127.5, offset -1) first, so the model takes pixels in [0, 255];
   * the default false (Keras's is true) takes pixels already scaled to [-1, 1] (x / 127.5 - 1).
   */
  includePreprocessing?: boolean;
}

type Act = (x: SymbolicTensor) => SymbolicTensor;
const relu: Act = (x) => new ReLU().apply(x);
const hardSwish: Act = (x) => new Activation({ activation: 'hardSwish' }).apply(x);

/** Batch norm as MobileNetV3 sets it (Keras: epsilon 1e-3, momentum 0.999). */
const bn = (name: string) => new BatchNormalization({ epsilon: 1e-3, momentum: 0.999, name });

/**
 * One block row of Keras's stack_fn: expansion, output filters before alpha, kernel (0: the
 * variant's, 5 or 3 when minimalistic), stride, squeeze-and-excitation, and whether it uses the
 * variant's activation (hard swish; ReLU when minimalistic) rather than ReLU.
 */
type BlockRow = [number, number, number, number, boolean, boolean];

const SMALL: BlockRow[] = [
  [1, 16, 3, 2, true, false], [72 / 16, 24, 3, 2, false, false], [88 / 24, 24, 3, 1, false, false],
  [4, 40, 0, 2, true, true], [6, 40, 0, 1, true, true], [6, 40, 0, 1, true, true],
  [3, 48, 0, 1, true, true], [3, 48, 0, 1, true, true],
  [6, 96, 0, 2, true, true], [6, 96, 0, 1, true, true], [6, 96, 0, 1, true, true],
];

const LARGE: BlockRow[] = [
  [1, 16, 3, 1, false, false], [4, 24, 3, 2, false, false], [3, 24, 3, 1, false, false],
  [3, 40, 0, 2, true, false], [3, 40, 0, 1, true, false], [3, 40, 0, 1, true, false],
  [6, 80, 3, 2, false, true], [2.5, 80, 3, 1, false, true], [2.3, 80, 3, 1, false, true], [2.3, 80, 3, 1, false, true],
  [6, 112, 3, 1, true, true], [6, 112, 3, 1, true, true],
  [6, 160, 0, 2, true, true], [6, 160, 0, 1, true, true], [6, 160, 0, 1, true, true],
];

/**
 * keras.applications.MobileNetV3Small: conv (3x3, stride 2, 'same', no bias) + conv_bn + hard
 * swish; 11 inverted residual blocks expanded_conv[_i]_: expand (1x1, none in block 0) + _bn +
 * activation, depthwise_pad (correct_pad) before a strided 'valid' depthwise (3x3 or 5x5) +
 * _bn + activation, squeeze_excite_* (global average pool, 1x1 conv to a quarter of the
 * channels + ReLU, 1x1 conv back + hard sigmoid, squeeze_excite_mul: the image times that gate),
 * project (1x1) + _bn, and add when shapes agree; then conv_1 (1x1 to 6x the channels) +
 * conv_1_bn + activation. The top: GlobalAveragePooling2D(keepdims) -> conv_2 (1x1 to 1024, or
 * 1024 x alpha above 1, with bias) + activation -> dropout -> logits (1x1, `classes`) ->
 * flatten -> predictions. Without the top, `pooling` adds global average or max pooling.
 * Channels are alpha-scaled and rounded to multiples of 8 as Keras's _depth.
 *
 * Alpha 1.0 with the top has 2,554,968 parameters (2,542,856 trainable; torchvision's
 * mobilenet_v3_small has the same trainable count), 939,120 without it.
 */
export function mobileNetV3Small(args: MobileNetV3Args & { weights: string }): Promise<Functional>;
export function mobileNetV3Small(args?: MobileNetV3Args & { weights?: null }): Functional;
export function mobileNetV3Small(args?: MobileNetV3Args): Functional | Promise<Functional>;
export function mobileNetV3Small(args?: MobileNetV3Args): Functional | Promise<Functional> {
  return mobileNetV3('applications.mobileNetV3Small', args, SMALL, 1024, 'MobileNetV3Small');
}

/**
 * keras.applications.MobileNetV3Large: the same layers as mobileNetV3Small over Keras's 15
 * large blocks (ReLU in blocks 0-5, squeeze-and-excitation in 3-5 and 10-14), conv_2 to 1280.
 *
 * Alpha 1.0 with the top has 5,507,432 parameters (5,483,032 trainable, torchvision's
 * mobilenet_v3_large count), 2,996,352 without it.
 */
export function mobileNetV3Large(args: MobileNetV3Args & { weights: string }): Promise<Functional>;
export function mobileNetV3Large(args?: MobileNetV3Args & { weights?: null }): Functional;
export function mobileNetV3Large(args?: MobileNetV3Args): Functional | Promise<Functional>;
export function mobileNetV3Large(args?: MobileNetV3Args): Functional | Promise<Functional> {
  return mobileNetV3('applications.mobileNetV3Large', args, LARGE, 1280, 'MobileNetV3Large');
}

function mobileNetV3(op: string, args: MobileNetV3Args | undefined, rows: BlockRow[], lastPointChannels: number, defaultName: string): Functional | Promise<Functional> {
  const raw = checkOptions(op, args, ['alpha', 'minimalistic', 'dropoutRate', 'includePreprocessing']);
  const opts = checkCommon(op, raw, { inputShape: [224, 224, 3], classes: 1000, minSize: 32 });
  const alpha = numberIn(op, 'alpha', raw.alpha, 1, 0.01, 64);
  const dropoutRate = numberIn(op, 'dropoutRate', raw.dropoutRate, 0.2, 0, 0.999);
  const minimalistic = raw.minimalistic ?? false;
  if (typeof minimalistic !== 'boolean') throw new ValueError(`${op}: minimalistic must be a boolean, got ${String(minimalistic)}`);
  const includePreprocessing = raw.includePreprocessing ?? false;
  if (typeof includePreprocessing !== 'boolean') throw new ValueError(`${op}: includePreprocessing must be a boolean, got ${String(includePreprocessing)}`);
  const kernel = minimalistic ? 3 : 5;
  const activation = minimalistic ? relu : hardSwish;
  const se = minimalistic ? null : 0.25;

  const image = input({ shape: opts.inputShape });
  // Keras's stem maps pixels in [0, 255] to [-1, 1]
  const pixels = includePreprocessing ? new Rescaling({ scale: 1 / 127.5, offset: -1, name: 'rescaling' }).apply(image) : image;
  let x = new Conv2D({ filters: 16, kernelSize: 3, strides: 2, padding: 'same', useBias: false, name: 'conv' }).apply(pixels);
  x = activation(bn('conv_bn').apply(x));
  rows.forEach(([expansion, filters, k, stride, withSe, variantAct], id) => {
    x = invertedResBlock(x, expansion, makeDivisible(filters * alpha, 8), k || kernel, stride, withSe ? se : null, variantAct ? activation : relu, id);
  });
  const lastConv = makeDivisible((x.shape[3] as number) * 6, 8);
  const lastPoint = alpha > 1 ? makeDivisible(lastPointChannels * alpha, 8) : lastPointChannels;
  x = new Conv2D({ filters: lastConv, kernelSize: 1, padding: 'same', useBias: false, name: 'conv_1' }).apply(x);
  x = activation(bn('conv_1_bn').apply(x));
  if (opts.includeTop) {
    x = new GlobalAveragePooling2D({ keepDims: true }).apply(x);
    x = activation(new Conv2D({ filters: lastPoint, kernelSize: 1, padding: 'same', name: 'conv_2' }).apply(x));
    if (dropoutRate > 0) x = new Dropout({ rate: dropoutRate }).apply(x);
    x = new Conv2D({ filters: opts.classes, kernelSize: 1, padding: 'same', name: 'logits' }).apply(x);
    x = new Flatten().apply(x);
    x = new Activation({ activation: opts.classifierActivation, name: 'predictions' }).apply(x);
  } else {
    x = poolFeatures(x, opts.pooling);
  }
  return withWeights(new Functional({ inputs: image, outputs: x, name: opts.name ?? defaultName }), opts.weights, op);
}

/** Keras's _se_block: the image times a gate of its channels computed from its global average. */
function seBlock(inputs: SymbolicTensor, filters: number, ratio: number, prefix: string): SymbolicTensor {
  let x = new GlobalAveragePooling2D({ keepDims: true, name: `${prefix}squeeze_excite_avg_pool` }).apply(inputs);
  x = new Conv2D({ filters: makeDivisible(filters * ratio, 8), kernelSize: 1, padding: 'same', name: `${prefix}squeeze_excite_conv` }).apply(x);
  x = new ReLU({ name: `${prefix}squeeze_excite_relu` }).apply(x);
  x = new Conv2D({ filters, kernelSize: 1, padding: 'same', name: `${prefix}squeeze_excite_conv_1` }).apply(x);
  // Keras writes relu6(x + 3) / 6 with ops; the one activation computes the same.
  x = new Activation({ activation: 'hardSigmoid' }).apply(x);
  return new Multiply({ name: `${prefix}squeeze_excite_mul` }).apply([inputs, x]);
}

function invertedResBlock(inputs: SymbolicTensor, expansion: number, filters: number, kernel: number, stride: number,
  ratio: number | null, activation: Act, id: number): SymbolicTensor {
  const inFilters = inputs.shape[3] as number;
  const expanded = makeDivisible(inFilters * expansion, 8);
  let x = inputs;
  let prefix = 'expanded_conv_';
  if (id > 0) {
    prefix = `expanded_conv_${id}_`;
    x = new Conv2D({ filters: expanded, kernelSize: 1, padding: 'same', useBias: false, name: `${prefix}expand` }).apply(x);
    x = activation(bn(`${prefix}expand_bn`).apply(x));
  }
  if (stride === 2) {
    x = new ZeroPadding2D({ padding: correctPad(x.shape[1] as number, x.shape[2] as number, kernel), name: `${prefix}depthwise_pad` }).apply(x);
  }
  x = new DepthwiseConv2D({
    kernelSize: kernel, strides: stride, padding: stride === 1 ? 'same' : 'valid', useBias: false, name: `${prefix}depthwise`,
  }).apply(x);
  x = activation(bn(`${prefix}depthwise_bn`).apply(x));
  if (ratio) x = seBlock(x, expanded, ratio, prefix);
  x = new Conv2D({ filters, kernelSize: 1, padding: 'same', useBias: false, name: `${prefix}project` }).apply(x);
  x = bn(`${prefix}project_bn`).apply(x);
  if (stride === 1 && inFilters === filters) return new Add({ name: `${prefix}add` }).apply([inputs, x]);
  return x;
}
