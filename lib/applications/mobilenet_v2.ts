// MobileNetV2 (Sandler et al. 2018) as keras.applications.MobileNetV2 builds it: inverted
// residual blocks with the same layers, names, order and weights as Keras's.
import { Dense, ReLU } from '../layers/core';
import { BatchNormalization, Conv2D, GlobalAveragePooling2D } from '../layers/conv';
import { Add } from '../layers/merge';
import { DepthwiseConv2D, ZeroPadding2D } from '../layers/spatial';
import { SymbolicTensor } from '../layers/layer';
import { Functional, input } from '../models/functional';
import { ApplicationArgs, checkCommon, checkOptions, numberIn, poolFeatures, withWeights } from './common';

export interface MobileNetV2Args extends ApplicationArgs {
  /** Width multiplier (ImageNet weights exist for 0.35, 0.5, 0.75, 1.0, 1.3, 1.4). */
  alpha?: number;
}

/** (expansion, output filters, stride) of blocks 0..16. */
const BLOCKS: [number, number, number][] = [
  [1, 16, 1],
  [6, 24, 2], [6, 24, 1],
  [6, 32, 2], [6, 32, 1], [6, 32, 1],
  [6, 64, 2], [6, 64, 1], [6, 64, 1], [6, 64, 1],
  [6, 96, 1], [6, 96, 1], [6, 96, 1],
  [6, 160, 2], [6, 160, 1], [6, 160, 1],
  [6, 320, 1],
];

/** Batch norm as MobileNetV2 sets it (Keras: epsilon 1e-3, momentum 0.999). */
const bn = (name: string) => new BatchNormalization({ epsilon: 1e-3, momentum: 0.999, name });

/**
 * keras.applications.MobileNetV2: Conv1 (3x3, stride 2, 'same', no bias) + bn_Conv1 + Conv1_relu
 * (ReLU6); 17 inverted residual blocks: block_i_expand (1x1 to expansion x input channels) +
 * block_i_expand_BN + block_i_expand_relu (none in block 0, whose layers are named
 * expanded_conv_*), block_i_pad (ZeroPadding2D as Keras's correct_pad) before a strided
 * block_i_depthwise (3x3) + _depthwise_BN + _depthwise_relu, block_i_project (1x1, linear) +
 * _project_BN, and block_i_add when input and output shapes agree; then Conv_1 (1x1 to 1280, or
 * 1280 x alpha above 1) + Conv_1_bn + out_relu. Channels are alpha-scaled and rounded to
 * multiples of 8 as Keras's _make_divisible. The top: GlobalAveragePooling2D -> predictions
 * (Dense, softmax). Without the top, `pooling` may add global average or max pooling.
 *
 * Alpha 1.0 at 224x224 with the top has 3,538,984 parameters (3,504,872 trainable), 156 layers.
 * With `weights: 'file://dir'` it returns a Promise of the model with those weights loaded.
 */
export function mobileNetV2(args: MobileNetV2Args & { weights: string }): Promise<Functional>;
export function mobileNetV2(args?: MobileNetV2Args & { weights?: null }): Functional;
export function mobileNetV2(args?: MobileNetV2Args): Functional | Promise<Functional>;
export function mobileNetV2(args?: MobileNetV2Args): Functional | Promise<Functional> {
  const op = 'applications.mobileNetV2';
  const raw = checkOptions(op, args, ['alpha']);
  const opts = checkCommon(op, raw, { inputShape: [224, 224, 3], classes: 1000, minSize: 32 });
  const alpha = numberIn(op, 'alpha', raw.alpha, 1, 0.01, 64);

  const image = input({ shape: opts.inputShape });
  let x = new Conv2D({
    filters: makeDivisible(32 * alpha, 8), kernelSize: 3, strides: 2, padding: 'same', useBias: false, name: 'Conv1',
  }).apply(image);
  x = bn('bn_Conv1').apply(x);
  x = new ReLU({ maxValue: 6, name: 'Conv1_relu' }).apply(x);
  BLOCKS.forEach(([expansion, filters, stride], id) => {
    x = invertedResBlock(x, expansion, stride, alpha, filters, id);
  });
  // As the paper, alpha below 1 does not shrink the last convolution.
  const lastFilters = alpha > 1 ? makeDivisible(1280 * alpha, 8) : 1280;
  x = new Conv2D({ filters: lastFilters, kernelSize: 1, useBias: false, name: 'Conv_1' }).apply(x);
  x = bn('Conv_1_bn').apply(x);
  x = new ReLU({ maxValue: 6, name: 'out_relu' }).apply(x);
  if (opts.includeTop) {
    x = new GlobalAveragePooling2D().apply(x);
    x = new Dense({ units: opts.classes, activation: opts.classifierActivation, name: 'predictions' }).apply(x);
  } else {
    x = poolFeatures(x, opts.pooling);
  }
  const name = opts.name ?? `mobilenetv2_${alpha.toFixed(2)}_${opts.inputShape[0]}`;
  return withWeights(new Functional({ inputs: image, outputs: x, name }), opts.weights, op);
}

function invertedResBlock(inputs: SymbolicTensor, expansion: number, stride: number, alpha: number, filters: number, id: number): SymbolicTensor {
  const inChannels = inputs.shape[3] as number;
  const pointwiseFilters = makeDivisible(Math.trunc(filters * alpha), 8);
  let x = inputs;
  let prefix = `block_${id}_`;
  if (id > 0) {
    x = new Conv2D({ filters: expansion * inChannels, kernelSize: 1, padding: 'same', useBias: false, name: `${prefix}expand` }).apply(x);
    x = bn(`${prefix}expand_BN`).apply(x);
    x = new ReLU({ maxValue: 6, name: `${prefix}expand_relu` }).apply(x);
  } else {
    prefix = 'expanded_conv_';
  }
  if (stride === 2) x = new ZeroPadding2D({ padding: correctPad(x.shape[1] as number, x.shape[2] as number, 3), name: `${prefix}pad` }).apply(x);
  x = new DepthwiseConv2D({
    kernelSize: 3, strides: stride, useBias: false, padding: stride === 1 ? 'same' : 'valid', name: `${prefix}depthwise`,
  }).apply(x);
  x = bn(`${prefix}depthwise_BN`).apply(x);
  x = new ReLU({ maxValue: 6, name: `${prefix}depthwise_relu` }).apply(x);
  x = new Conv2D({ filters: pointwiseFilters, kernelSize: 1, padding: 'same', useBias: false, name: `${prefix}project` }).apply(x);
  x = bn(`${prefix}project_BN`).apply(x);
  if (inChannels === pointwiseFilters && stride === 1) return new Add({ name: `${prefix}add` }).apply([inputs, x]);
  return x;
}

/** Keras's _make_divisible: v rounded to the nearest multiple of divisor, never 10% below v. */
export function makeDivisible(v: number, divisor: number): number {
  let rounded = Math.max(divisor, Math.floor(Math.trunc(v + divisor / 2) / divisor) * divisor);
  if (rounded < 0.9 * v) rounded += divisor;
  return rounded;
}

/**
 * Keras's correct_pad: the zero padding that makes a stride-2 'valid' kernel cover the input as
 * TensorFlow's 'same' would, one row/column less on top/left for even sizes.
 */
export function correctPad(height: number, width: number, kernel: number): [[number, number], [number, number]] {
  const half = Math.floor(kernel / 2);
  return [[half - (1 - (height % 2)), half], [half - (1 - (width % 2)), half]];
}
