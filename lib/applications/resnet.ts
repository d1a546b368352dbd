// ResNet-20 v1 for CIFAR-sized images (He et al. 2015, section 4.2) as the Keras example
// cifar10_resnet.py builds it (resnet_v1, depth 20): the same layers, order and weights.
import { Activation, Dense, Flatten } from '../layers/core';
import { AveragePooling2D, BatchNormalization, Conv2D } from '../layers/conv';
import { Add } from '../layers/merge';
import { SymbolicTensor } from '../layers/layer';
import { Functional, input } from '../models/functional';
import { ApplicationArgs, checkCommon, checkOptions, poolFeatures, withWeights } from './common';

export type ResNet20Args = ApplicationArgs;

/** Residual blocks per stage: depth 20 = 6 * 3 + 2. */
const BLOCKS_PER_STAGE = 3;

/**
 * ResNet-20 v1 as keras-team/keras examples/cifar10_resnet.py's resnet_v1(depth=20): a 3x3
 * conv (16 filters) + batch norm + ReLU, then 3 stages of 3 residual blocks with 16, 32 and 64
 * filters. A block is conv3x3 + BN + ReLU, conv3x3 + BN, added to the shortcut, then ReLU; the
 * first block of stages 2 and 3 halves the size with stride 2 and its shortcut is a 1x1
 * stride-2 conv (no BN). Convolutions have biases and he_normal kernels (the example's L2
 * regularizer is left out: it adds no weights). The top: AveragePooling2D(8) -> Flatten ->
 * Dense softmax (he_normal). Layers keep Keras's automatic names (conv2d, batch_normalization,
 * activation, add, ...), numbered on from earlier models of the process as Keras numbers them.
 *
 * 10 classes at 32x32: 274,442 parameters (273,066 trainable), 72 layers. Inputs need at least
 * 29x29 (the 8x8 pool reads the 4x smaller last stage); larger ones give a larger flatten.
 * With `weights: 'file://dir'` it returns a Promise of the model with those weights loaded.
 */
export function resNet20(args: ResNet20Args & { weights: string }): Promise<Functional>;
export function resNet20(args?: ResNet20Args & { weights?: null }): Functional;
export function resNet20(args?: ResNet20Args): Functional | Promise<Functional>;
export function resNet20(args?: ResNet20Args): Functional | Promise<Functional> {
  const op = 'applications.resNet20';
  const opts = checkCommon(op, checkOptions(op, args, []), { inputShape: [32, 32, 3], classes: 10, minSize: 29 });
  const image = input({ shape: opts.inputShape });
  let filters = 16;
  let x = resnetLayer(image, filters, 3, 1, true, true);
  for (let stage = 0; stage < 3; stage++) {
    for (let block = 0; block < BLOCKS_PER_STAGE; block++) {
      const downsample = stage > 0 && block === 0;
      const strides = downsample ? 2 : 1;
      let y = resnetLayer(x, filters, 3, strides, true, true);
      y = resnetLayer(y, filters, 3, 1, false, true);
      // A linear projection shortcut where the size and filters change.
      if (downsample) x = resnetLayer(x, filters, 1, strides, false, false);
      x = new Add().apply([x, y]);
      x = new Activation({ activation: 'relu' }).apply(x);
    }
    filters *= 2;
  }
  if (opts.includeTop) {
    x = new AveragePooling2D({ poolSize: 8 }).apply(x);
    x = new Flatten().apply(x);
    x = new Dense({ units: opts.classes, activation: opts.classifierActivation, kernelInitializer: 'heNormal' }).apply(x);
  } else {
    x = poolFeatures(x, opts.pooling);
  }
  return withWeights(new Functional({ inputs: image, outputs: x, name: opts.name ?? 'resnet20_v1' }), opts.weights, op);
}

/** The example's resnet_layer (conv first): conv, then optional batch norm and ReLU. */
function resnetLayer(x: SymbolicTensor, filters: number, kernelSize: number, strides: number, relu: boolean, batchNorm: boolean): SymbolicTensor {
  x = new Conv2D({ filters, kernelSize, strides, padding: 'same', kernelInitializer: 'heNormal' }).apply(x);
  if (batchNorm) x = new BatchNormalization().apply(x);
  if (relu) x = new Activation({ activation: 'relu' }).apply(x);
  return x;
}
