// MobileNet v1 (Howard et al. 2017) as keras.applications.MobileNet builds it: the same layers,
// names, order and weights, so parameter counts equal Keras's and weights move by name.
import { ValueError } from '../errors';
import { Activation, Dropout, ReLU, Reshape } from '../layers/core';
import { BatchNormalization, Conv2D, GlobalAveragePooling2D } from '../layers/conv';
import { DepthwiseConv2D, ZeroPadding2D } from '../layers/spatial';
import { SymbolicTensor } from '../layers/layer';
import { Functional, input } from '../models/functional';
import { ApplicationArgs, checkCommon, checkOptions, numberIn, poolFeatures, withWeights } from './common';

export interface MobileNetArgs extends ApplicationArgs {
  /** Width multiplier: every layer gets floor(filters * alpha) filters (ImageNet weights exist for 0.25, 0.5, 0.75, 1.0). */
  alpha?: number;
  /** Depthwise channel multiplier (the paper's resolution multiplier is the input size instead). */
  depthMultiplier?: number;
  /** Dropout rate before the classifier. */
  dropout?: number;
}

/** (pointwise filters, stride) of depthwise blocks 1..13. */
const BLOCKS: [number, number][] = [
  [64, 1], [128, 2], [128, 1], [256, 2], [256, 1], [512, 2],
  [512, 1], [512, 1], [512, 1], [512, 1], [512, 1], [1024, 2], [1024, 1],
];

/**
 * keras.applications.MobileNet: conv1 (3x3, stride 2, no bias) + conv1_bn + conv1_relu (ReLU6),
 * then 13 depthwise-separable blocks conv_dw_i / conv_dw_i_bn / conv_dw_i_relu / conv_pw_i (1x1) /
 * conv_pw_i_bn / conv_pw_i_relu, the strided ones (2, 4, 6, 12) preceded by conv_pad_i
 * (ZeroPadding2D bottom/right) and a 'valid' depthwise convolution. The top, as Keras 2.6+
 * writes it: GlobalAveragePooling2D(keepdims) -> dropout -> conv_preds (1x1, `classes` filters,
 * bias) -> reshape_2 -> predictions (softmax). Without the top, `pooling` may add global
 * average or max pooling. Any input of at least 32x32 and any class count work.
 *
 * Alpha 1.0 at 224x224 with the top has 4,253,864 parameters (4,231,976 trainable), 91 layers.
 * With `weights: 'file://dir'` it returns a Promise of the model with those weights loaded.
 */
export function mobileNet(args: MobileNetArgs & { weights: string }): Promise<Functional>;
export function mobileNet(args?: MobileNetArgs & { weights?: null }): Functional;
export function mobileNet(args?: MobileNetArgs): Functional | Promise<Functional>;
export function mobileNet(args?: MobileNetArgs): Functional | Promise<Functional> {
  const op = 'applications.mobileNet';
  const raw = checkOptions(op, args, ['alpha', 'depthMultiplier', 'dropout']);
  const opts = checkCommon(op, raw, { inputShape: [224, 224, 3], classes: 1000, minSize: 32 });
  const alpha = numberIn(op, 'alpha', raw.alpha, 1, 0, 64);
  if (Math.floor(32 * alpha) < 1) throw new ValueError(`${op}: alpha ${alpha} leaves conv1 with no filters (alpha must be at least 1/32)`);
  const depthMultiplier = raw.depthMultiplier ?? 1;
  if (!Number.isInteger(depthMultiplier) || (depthMultiplier as number) < 1) {
    throw new ValueError(`${op}: depthMultiplier must be a positive integer, got ${String(depthMultiplier)}`);
  }
  const dropout = numberIn(op, 'dropout', raw.dropout, 1e-3, 0, 0.999);

  const image = input({ shape: opts.inputShape });
  let x = convBlock(image, 32, alpha);
  BLOCKS.forEach(([filters, stride], i) => {
    x = depthwiseConvBlock(x, filters, alpha, depthMultiplier as number, stride, i + 1);
  });
  if (opts.includeTop) {
    x = new GlobalAveragePooling2D({ keepDims: true }).apply(x);
    x = new Dropout({ rate: dropout, name: 'dropout' }).apply(x);
    x = new Conv2D({ filters: opts.classes, kernelSize: 1, padding: 'same', name: 'conv_preds' }).apply(x);
    x = new Reshape({ targetShape: [opts.classes], name: 'reshape_2' }).apply(x);
    x = new Activation({ activation: opts.classifierActivation, name: 'predictions' }).apply(x);
  } else {
    x = poolFeatures(x, opts.pooling);
  }
  const name = opts.name ?? `mobilenet_${alpha.toFixed(2)}_${opts.inputShape[0]}`;
  return withWeights(new Functional({ inputs: image, outputs: x, name }), opts.weights, op);
}

/** conv1: the stem's full 3x3 convolution, batch norm and ReLU6. */
function convBlock(x: SymbolicTensor, filters: number, alpha: number): SymbolicTensor {
  x = new Conv2D({ filters: Math.floor(filters * alpha), kernelSize: 3, strides: 2, padding: 'same', useBias: false, name: 'conv1' }).apply(x);
  x = new BatchNormalization({ name: 'conv1_bn' }).apply(x);
  return new ReLU({ maxValue: 6, name: 'conv1_relu' }).apply(x);
}

/** Block i: 3x3 depthwise (strided ones padded bottom/right, as TensorFlow's slim model) and 1x1 pointwise. */
function depthwiseConvBlock(x: SymbolicTensor, filters: number, alpha: number, depthMultiplier: number, stride: number, id: number): SymbolicTensor {
  if (stride !== 1) x = new ZeroPadding2D({ padding: [[0, 1], [0, 1]], name: `conv_pad_${id}` }).apply(x);
  x = new DepthwiseConv2D({
    kernelSize: 3, strides: stride, padding: stride === 1 ? 'same' : 'valid', depthMultiplier, useBias: false, name: `conv_dw_${id}`,
  }).apply(x);
  x = new BatchNormalization({ name: `conv_dw_${id}_bn` }).apply(x);
  x = new ReLU({ maxValue: 6, name: `conv_dw_${id}_relu` }).apply(x);
  x = new Conv2D({ filters: Math.floor(filters * alpha), kernelSize: 1, padding: 'same', useBias: false, name: `conv_pw_${id}` }).apply(x);
  x = new BatchNormalization({ name: `conv_pw_${id}_bn` }).apply(x);
  return new ReLU({ maxValue: 6, name: `conv_pw_${id}_relu` }).apply(x);
}
