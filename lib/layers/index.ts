// ck.layers: factories with tfjs-layers names, and the registry that rebuilds layers from their
// serialized {className, config}.
import { FormatError } from '../errors';
import { Activation, Dense, DenseArgs, Dropout, Flatten, InputLayer, InputLayerArgs, LeakyReLU, ReLU, Reshape, Softmax } from './core';
import {
  AveragePooling2D, BatchNormalization, BatchNormalizationArgs, Conv2D, Conv2DArgs, GlobalAveragePooling2D,
  GlobalMaxPooling2D, GlobalPooling2DArgs, MaxPooling2D, Pooling2DArgs,
} from './conv';
import { Add, Average, Concatenate, Multiply } from './merge';
import {
  DepthwiseConv2D, DepthwiseConv2DArgs, LpPooling2D, SeparableConv2D, SeparableConv2DArgs, UpSampling2D, ZeroPadding2D,
} from './spatial';
import { Conv2DTranspose, Conv2DTransposeArgs, Cropping2D } from './decoder';
import {
  AveragePooling1D, Conv1D, Conv1DArgs, GlobalAveragePooling1D, GlobalMaxPooling1D, GlobalPooling1DArgs, MaxPooling1D, Pooling1DArgs,
} from './conv1d';
import { Layer, LayerArgs } from './layer';
import { GroupNormalization, GroupNormalizationArgs, LayerNormalization, LayerNormalizationArgs } from './normalization';
import { ActivationIdentifier } from './activations';
import { Normalization, NormalizationArgs, Rescaling, RescalingArgs } from './preprocessing';
import {
  RandomBrightness, RandomBrightnessArgs, RandomContrast, RandomContrastArgs, RandomFlip, RandomFlipArgs, RandomRotation,
  RandomRotationArgs, RandomTranslation, RandomTranslationArgs, RandomZoom, RandomZoomArgs,
} from './augment';

export { Layer } from './layer';
export type { BatchShape, LayerArgs, Shape } from './layer';
export type { InputLayerArgs } from './core';
export type { Conv2DTransposeArgs, Cropping } from './decoder';
export {
  Activation, Add, Average, AveragePooling2D, BatchNormalization, Concatenate, Conv2D, Dense, DepthwiseConv2D, Dropout,
  Flatten, GlobalAveragePooling2D, GlobalMaxPooling2D, InputLayer, LeakyReLU, LpPooling2D, MaxPooling2D, Multiply, ReLU,
  Reshape, SeparableConv2D, Softmax, UpSampling2D, ZeroPadding2D, LayerNormalization, GroupNormalization,
  Conv2DTranspose, Cropping2D, Conv1D, MaxPooling1D, AveragePooling1D, GlobalAveragePooling1D, GlobalMaxPooling1D,
};
export type { Conv1DArgs, Pooling1DArgs, GlobalPooling1DArgs };
export type { GroupNormalizationArgs, LayerNormalizationArgs };
export { Normalization, Rescaling };
export type { NormalizationArgs, RescalingArgs };
export { RandomBrightness, RandomContrast, RandomFlip, RandomRotation, RandomTranslation, RandomZoom };
export type {
  RandomBrightnessArgs, RandomContrastArgs, RandomFlipArgs, RandomRotationArgs, RandomTranslationArgs, RandomZoomArgs,
};
export type { AugmentInterpolation, Factor, FillMode, FlipMode } from './augment';

export const layers = {
  input: (args: InputLayerArgs & { shape: number[] }) => new InputLayer(args),
  inputLayer: (args: InputLayerArgs) => new InputLayer(args),
  conv2d: (args: Conv2DArgs) => new Conv2D(args),
  dense: (args: DenseArgs) => new Dense(args),
  flatten: (args?: ConstructorParameters<typeof Flatten>[0]) => new Flatten(args),
  dropout: (args: ConstructorParameters<typeof Dropout>[0]) => new Dropout(args),
  activation: (args: LayerArgs & { activation: ActivationIdentifier }) => new Activation(args),
  reLU: (args?: ConstructorParameters<typeof ReLU>[0]) => new ReLU(args),
  reshape: (args: LayerArgs & { targetShape: number[] }) => new Reshape(args),
  depthwiseConv2d: (args: DepthwiseConv2DArgs) => new DepthwiseConv2D(args),
  separableConv2d: (args: SeparableConv2DArgs) => new SeparableConv2D(args),
  zeroPadding2d: (args?: ConstructorParameters<typeof ZeroPadding2D>[0]) => new ZeroPadding2D(args),
  upSampling2d: (args?: ConstructorParameters<typeof UpSampling2D>[0]) => new UpSampling2D(args),
  lpPooling2d: (args?: ConstructorParameters<typeof LpPooling2D>[0]) => new LpPooling2D(args),
  add: (args?: LayerArgs) => new Add(args),
  multiply: (args?: LayerArgs) => new Multiply(args),
  average: (args?: LayerArgs) => new Average(args),
  concatenate: (args?: ConstructorParameters<typeof Concatenate>[0]) => new Concatenate(args),
  leakyReLU: (args?: ConstructorParameters<typeof LeakyReLU>[0]) => new LeakyReLU(args),
  softmax: (args?: LayerArgs & { axis?: number }) => new Softmax(args),
  maxPooling2d: (args?: Pooling2DArgs) => new MaxPooling2D(args),
  averagePooling2d: (args?: Pooling2DArgs) => new AveragePooling2D(args),
  globalAveragePooling2d: (args?: GlobalPooling2DArgs) => new GlobalAveragePooling2D(args),
  globalMaxPooling2d: (args?: GlobalPooling2DArgs) => new GlobalMaxPooling2D(args),
  batchNormalization: (args?: BatchNormalizationArgs) => new BatchNormalization(args),
  layerNormalization: (args?: LayerNormalizationArgs) => new LayerNormalization(args),
  groupNormalization: (args?: GroupNormalizationArgs) => new GroupNormalization(args),
  conv2dTranspose: (args: Conv2DTransposeArgs) => new Conv2DTranspose(args),
  cropping2D: (args?: ConstructorParameters<typeof Cropping2D>[0]) => new Cropping2D(args),
  conv1d: (args: Conv1DArgs) => new Conv1D(args),
  maxPooling1d: (args?: Pooling1DArgs) => new MaxPooling1D(args),
  averagePooling1d: (args?: Pooling1DArgs) => new AveragePooling1D(args),
  globalAveragePooling1d: (args?: GlobalPooling1DArgs) => new GlobalAveragePooling1D(args),
  globalMaxPooling1d: (args?: GlobalPooling1DArgs) => new GlobalMaxPooling1D(args),
  rescaling: (args: RescalingArgs) => new Rescaling(args),
  normalization: (args?: NormalizationArgs) => new Normalization(args),
  randomFlip: (args?: RandomFlipArgs) => new RandomFlip(args),
  randomRotation: (args: RandomRotationArgs) => new RandomRotation(args),
  randomZoom: (args: RandomZoomArgs) => new RandomZoom(args),
  randomTranslation: (args: RandomTranslationArgs) => new RandomTranslation(args),
  randomContrast: (args: RandomContrastArgs) => new RandomContrast(args),
  randomBrightness: (args: RandomBrightnessArgs) => new RandomBrightness(args),
};

type Factory = (config: Record<string, unknown>) => Layer;
const registry = new Map<string, Factory>([
  ['InputLayer', (c) => new InputLayer(c as never)],
  ['Conv2D', (c) => new Conv2D(c as never)],
  ['Dense', (c) => new Dense(c as never)],
  ['Flatten', (c) => new Flatten(c as never)],
  ['Dropout', (c) => new Dropout(c as never)],
  ['Activation', (c) => new Activation(c as never)],
  ['ReLU', (c) => new ReLU(c as never)],
  ['LeakyReLU', (c) => new LeakyReLU(c as never)],
  ['Softmax', (c) => new Softmax(c as never)],
  ['MaxPooling2D', (c) => new MaxPooling2D(c as never)],
  ['MaxPool2D', (c) => new MaxPooling2D(c as never)],
  ['AveragePooling2D', (c) => new AveragePooling2D(c as never)],
  ['AvgPool2D', (c) => new AveragePooling2D(c as never)],
  ['GlobalAveragePooling2D', (c) => new GlobalAveragePooling2D(c as never)],
  ['GlobalMaxPooling2D', (c) => new GlobalMaxPooling2D(c as never)],
  ['BatchNormalization', (c) => new BatchNormalization(c as never)],
  ['Reshape', (c) => new Reshape(c as never)],
  ['DepthwiseConv2D', (c) => new DepthwiseConv2D(c as never)],
  ['SeparableConv2D', (c) => new SeparableConv2D(c as never)],
  ['ZeroPadding2D', (c) => new ZeroPadding2D(c as never)],
  ['UpSampling2D', (c) => new UpSampling2D(c as never)],
  ['LpPooling2D', (c) => new LpPooling2D(c as never)],
  ['Add', (c) => new Add(c as never)],
  ['Multiply', (c) => new Multiply(c as never)],
  ['Average', (c) => new Average(c as never)],
  ['Concatenate', (c) => new Concatenate(c as never)],
  ['LayerNormalization', (c) => new LayerNormalization(c as never)],
  ['GroupNormalization', (c) => new GroupNormalization(c as never)],
  ['Conv2DTranspose', (c) => new Conv2DTranspose(c as never)],
  ['Convolution2DTranspose', (c) => new Conv2DTranspose(c as never)],
  ['Cropping2D', (c) => new Cropping2D(c as never)],
  ['Conv1D', (c) => new Conv1D(c as never)],
  ['Convolution1D', (c) => new Conv1D(c as never)],
  ['MaxPooling1D', (c) => new MaxPooling1D(c as never)],
  ['MaxPool1D', (c) => new MaxPooling1D(c as never)],
  ['AveragePooling1D', (c) => new AveragePooling1D(c as never)],
  ['AvgPool1D', (c) => new AveragePooling1D(c as never)],
  ['GlobalAveragePooling1D', (c) => new GlobalAveragePooling1D(c as never)],
  ['GlobalMaxPooling1D', (c) => new GlobalMaxPooling1D(c as never)],
  ['Rescaling', (c) => new Rescaling(c as never)],
  ['Normalization', (c) => new Normalization(c as never)],
  ['RandomFlip', (c) => new RandomFlip(c as never)],
  ['RandomRotation', (c) => new RandomRotation(c as never)],
  ['RandomZoom', (c) => new RandomZoom(c as never)],
  ['RandomTranslation', (c) => new RandomTranslation(c as never)],
  ['RandomContrast', (c) => new RandomContrast(c as never)],
  ['RandomBrightness', (c) => new RandomBrightness(c as never)],
]);

/** Registers a layer class for deserialization (custom layers must lower to native layers). */
export function registerLayer(className: string, factory: Factory): void {
  registry.set(className, factory);
}

/** A layer from its tfjs-style (camelCase) config. */
export function deserializeLayer(className: string, config: Record<string, unknown>): Layer {
  const make = registry.get(className);
  if (!make) {
    throw new FormatError(`unknown layer class '${className}' (supported: ${[...registry.keys()].join(', ')})`);
  }
  return make(config);
}
