// ResNet-50, -101 and -152 v1 (He et al. 2015, the ImageNet networks) as keras.applications
// builds them: the same layers, order, names and weights layout, so weights converted from
// Keras (tensorflowjs_converter) load by name.
import { Activation, Dense } from '../layers/core';
import { BatchNormalization, Conv2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D } from '../layers/conv';
import { Add } from '../layers/merge';
import { SymbolicTensor } from '../layers/layer';
import { ZeroPadding2D } from '../layers/spatial';
import { Functional, input } from '../models/functional';
import { ApplicationArgs, checkCommon, checkOptions, withWeights } from './common';

export type ResNetArgs = ApplicationArgs;

/** Keras's batch-norm epsilon in its ResNets. */
const BN_EPSILON = 1.001e-5;

/**
 * keras.applications.resnet's block1: a 1x1 conv (stride `stride`) down to `filters`, a 3x3 conv,
 * a 1x1 conv up to 4*filters, each with batch norm, added to the shortcut (a 1x1 conv + batch norm
 * on the first block of a stack, else the input), then ReLU.
 */
function block(x: SymbolicTensor, filters: number, stride: number, convShortcut: boolean, name: string): SymbolicTensor {
  const bn = (suffix: string) => new BatchNormalization({ epsilon: BN_EPSILON, name: `${name}_${suffix}_bn` });
  let shortcut = x;
  if (convShortcut) {
    shortcut = new Conv2D({ filters: 4 * filters, kernelSize: 1, strides: stride, name: `${name}_0_conv` }).apply(x);
    shortcut = bn('0').apply(shortcut);
  }
  let y = new Conv2D({ filters, kernelSize: 1, strides: stride, name: `${name}_1_conv` }).apply(x);
  y = new Activation({ activation: 'relu', name: `${name}_1_relu` }).apply(bn('1').apply(y));
  y = new Conv2D({ filters, kernelSize: 3, padding: 'same', name: `${name}_2_conv` }).apply(y);
  y = new Activation({ activation: 'relu', name: `${name}_2_relu` }).apply(bn('2').apply(y));
  y = new Conv2D({ filters: 4 * filters, kernelSize: 1, name: `${name}_3_conv` }).apply(y);
  y = bn('3').apply(y);
  return new Activation({ activation: 'relu', name: `${name}_out` }).apply(new Add({ name: `${name}_add` }).apply([shortcut, y]));
}

function build(op: string, depthName: string, blocks: [number, number, number, number], args?: ResNetArgs) {
  const opts = checkCommon(op, checkOptions(op, args, []), { inputShape: [224, 224, 3], classes: 1000, minSize: 32 });
  const image = input({ shape: opts.inputShape });
  let x = new ZeroPadding2D({ padding: 3, name: 'conv1_pad' }).apply(image);
  x = new Conv2D({ filters: 64, kernelSize: 7, strides: 2, name: 'conv1_conv' }).apply(x);
  x = new BatchNormalization({ epsilon: BN_EPSILON, name: 'conv1_bn' }).apply(x);
  x = new Activation({ activation: 'relu', name: 'conv1_relu' }).apply(x);
  x = new ZeroPadding2D({ padding: 1, name: 'pool1_pad' }).apply(x);
  x = new MaxPooling2D({ poolSize: 3, strides: 2, name: 'pool1_pool' }).apply(x);
  blocks.forEach((count, stage) => {
    const filters = 64 << stage;
    for (let b = 1; b <= count; b++) {
      x = block(x, filters, b === 1 && stage > 0 ? 2 : 1, b === 1, `conv${stage + 2}_block${b}`);
    }
  });
  if (opts.includeTop) {
    x = new GlobalAveragePooling2D({ name: 'avg_pool' }).apply(x);
    x = new Dense({ units: opts.classes, activation: opts.classifierActivation, name: 'predictions' }).apply(x);
  } else if (opts.pooling === 'avg') {
    x = new GlobalAveragePooling2D({ name: 'avg_pool' }).apply(x);
  } else if (opts.pooling === 'max') {
    x = new GlobalMaxPooling2D({ name: 'max_pool' }).apply(x);
  }
  return withWeights(new Functional({ inputs: image, outputs: x, name: opts.name ?? depthName }), opts.weights, op);
}

/**
 * ResNet-50 v1 as keras.applications.ResNet50: a 7x7 stride-2 conv (64) + batch norm + ReLU, a
 * 3x3 stride-2 max pool, then stacks of 3, 4, 6 and 3 bottleneck blocks (64, 128, 256, 512
 * filters; 4x that out), global average pooling and the classifier. 1000 classes at 224x224:
 * 25,636,712 parameters (25,583,592 trainable), as Keras's. Keras's ImageNet weights expect its
 * 'caffe' preprocessing (BGR, ImageNet means subtracted, no scaling). Inputs of at least 32x32.
 * With `weights: 'file://dir'` it returns a Promise of the model with those weights loaded.
 */
export function resNet50(args: ResNetArgs & { weights: string }): Promise<Functional>;
export function resNet50(args?: ResNetArgs & { weights?: null }): Functional;
export function resNet50(args?: ResNetArgs): Functional | Promise<Functional>;
export function resNet50(args?: ResNetArgs): Functional | Promise<Functional> {
  return build('applications.resNet50', 'resnet50', [3, 4, 6, 3], args);
}

/** ResNet-101 v1 as keras.applications.ResNet101: stacks of 3, 4, 23 and 3 blocks (44,707,176 parameters at 1000 classes). */
export function resNet101(args: ResNetArgs & { weights: string }): Promise<Functional>;
export function resNet101(args?: ResNetArgs & { weights?: null }): Functional;
export function resNet101(args?: ResNetArgs): Functional | Promise<Functional>;
export function resNet101(args?: ResNetArgs): Functional | Promise<Functional> {
  return build('applications.resNet101', 'resnet101', [3, 4, 23, 3], args);
}

/** ResNet-152 v1 as keras.applications.ResNet152: stacks of 3, 8, 36 and 3 blocks (60,419,944 parameters at 1000 classes). */
export function resNet152(args: ResNetArgs & { weights: string }): Promise<Functional>;
export function resNet152(args?: ResNetArgs & { weights?: null }): Functional;
export function resNet152(args?: ResNetArgs): Functional | Promise<Functional>;
export function resNet152(args?: ResNetArgs): Functional | Promise<Functional> {
  return build('applications.resNet152', 'resnet152', [3, 8, 36, 3], args);
}
