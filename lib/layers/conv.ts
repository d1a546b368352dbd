// Convolution, pooling and normalization layers (NHWC, HWIO kernels, as Keras).
import { describeValue, ShapeError, ValueError } from '../errors';
import { Initializer } from '../initializers';
import { Regularizer, regularizerConfig, regularizerOf, RegularizerOption } from '../regularizers';
import { ActivationIdentifier, activationConfigName, checkActivation, withActivation } from './activations';
import {
  channelsLast, initializerOf, InitializerOption, KERNEL_EXTRAS, Layer, LayerArgs, NativeLayerSpec, OptionSpec, pairOf,
  paddingOf, positiveInt, requireRank, Shape, unsupported, WeightSpec,
} from './layer';

type Pair = number | [number, number];

/** Output length along one axis, as TensorFlow defines 'valid' and 'same'. */
export function outputLength(input: number, kernel: number, stride: number, dilation: number, padding: 'valid' | 'same'): number {
  if (padding === 'same') return Math.ceil(input / stride);
  const effective = (kernel - 1) * dilation + 1;
  return input >= effective ? Math.floor((input - effective) / stride) + 1 : 0;
}

export interface Conv2DArgs extends LayerArgs {
  filters: number;
  kernelSize: Pair;
  strides?: Pair;
  padding?: 'valid' | 'same';
  dilationRate?: Pair;
  activation?: ActivationIdentifier | null;
  useBias?: boolean;
  kernelInitializer?: InitializerOption;
  biasInitializer?: InitializerOption;
  dataFormat?: 'channelsLast' | 'channels_last' | null;
  /** Keras's grouped convolution: input and output channels split into this many groups. */
  groups?: number;
  /** A penalty on the kernel in the training loss: ck.regularizers.l1/l2/l1l2(...). */
  kernelRegularizer?: RegularizerOption;
  biasRegularizer?: RegularizerOption;
  activityRegularizer?: null;
  kernelConstraint?: null;
  biasConstraint?: null;
}

const CONV_OPTIONS: OptionSpec = {
  filters: 'integer', kernelSize: 'intOrPair', strides: 'intOrPair', padding: 'string', dilationRate: 'intOrPair',
  activation: 'string?', useBias: 'boolean', kernelInitializer: 'initializer?', biasInitializer: 'initializer?',
  dataFormat: 'string?', groups: 'integer', ...KERNEL_EXTRAS,
};

export class Conv2D extends Layer {
  readonly className = 'Conv2D';
  readonly filters: number;
  readonly kernelSize: [number, number];
  readonly strides: [number, number];
  readonly padding: 'valid' | 'same';
  readonly dilationRate: [number, number];
  readonly activation: ActivationIdentifier;
  readonly useBias: boolean;
  readonly kernelInitializer: Initializer;
  readonly biasInitializer: Initializer;
  readonly kernelRegularizer: Regularizer | null;
  readonly biasRegularizer: Regularizer | null;
  readonly groups: number;

  constructor(args: Conv2DArgs) {
    super(args, 'conv2d', CONV_OPTIONS);
    this.groups = args.groups === undefined ? 1 : positiveInt(args.groups, this.name, 'groups');
    this.filters = positiveInt(args.filters, this.name, 'filters');
    this.kernelSize = pairOf(args.kernelSize, undefined, this.name, 'kernelSize');
    this.strides = pairOf(args.strides, 1, this.name, 'strides');
    this.padding = paddingOf(args.padding, this.name);
    this.dilationRate = pairOf(args.dilationRate, 1, this.name, 'dilationRate');
    this.activation = checkActivation(args.activation, this.name);
    this.useBias = args.useBias ?? true;
    this.kernelInitializer = initializerOf(args.kernelInitializer, 'glorotUniform', this.name);
    this.biasInitializer = initializerOf(args.biasInitializer, 'zeros', this.name);
    this.kernelRegularizer = regularizerOf(args.kernelRegularizer, this.name, 'kernelRegularizer');
    this.biasRegularizer = regularizerOf(args.biasRegularizer, this.name, 'biasRegularizer');
    channelsLast(args.dataFormat, this.name);
  }

  computeOutputShape(inputShape: Shape): Shape {
    requireRank(inputShape, 3, this.name, 'images (None, height, width, channels)');
    const [h, w] = inputShape;
    const p = outputLength(h, this.kernelSize[0], this.strides[0], this.dilationRate[0], this.padding);
    const q = outputLength(w, this.kernelSize[1], this.strides[1], this.dilationRate[1], this.padding);
    if (p < 1 || q < 1) {
      throw new ShapeError(`${this.name}: the ${this.kernelSize.join('x')} kernel does not fit the input (None, ${inputShape.join(', ')}) with '${this.padding}' padding`);
    }
    if (inputShape[2] % this.groups !== 0 || this.filters % this.groups !== 0) {
      throw new ShapeError(`${this.name}: input channels (${inputShape[2]}) and filters (${this.filters}) must both be multiples of groups (${this.groups})`);
    }
    return [p, q, this.filters];
  }

  weightSpecs(inputShape: Shape): WeightSpec[] {
    const specs: WeightSpec[] = [{
      name: 'kernel', shape: [...this.kernelSize, inputShape[2] / this.groups, this.filters], initializer: this.kernelInitializer, trainable: true,
      regularizer: this.kernelRegularizer,
    }];
    if (this.useBias) specs.push({ name: 'bias', shape: [this.filters], initializer: this.biasInitializer, trainable: true, regularizer: this.biasRegularizer });
    return specs;
  }

  lower(): NativeLayerSpec[] {
    return withActivation({
      kind: 'conv2d', name: this.name, filters: this.filters, kernelH: this.kernelSize[0], kernelW: this.kernelSize[1],
      strideH: this.strides[0], strideW: this.strides[1], dilationH: this.dilationRate[0], dilationW: this.dilationRate[1],
      padding: this.padding, useBias: this.useBias, trainable: this.trainable, groups: this.groups,
    }, this.activation);
  }

  getConfig(): Record<string, unknown> {
    return {
      ...super.getConfig(), filters: this.filters, kernelSize: this.kernelSize, strides: this.strides,
      padding: this.padding, dataFormat: 'channels_last', dilationRate: this.dilationRate, activation: activationConfigName(this.activation),
      useBias: this.useBias, ...(this.groups !== 1 ? { groups: this.groups } : {}),
      kernelInitializer: { className: this.kernelInitializer.className, config: this.kernelInitializer.config },
      biasInitializer: { className: this.biasInitializer.className, config: this.biasInitializer.config },
      kernelRegularizer: regularizerConfig(this.kernelRegularizer), biasRegularizer: regularizerConfig(this.biasRegularizer),
      activityRegularizer: null, kernelConstraint: null, biasConstraint: null,
    };
  }
}

export interface Pooling2DArgs extends LayerArgs {
  poolSize?: Pair;
  /** Default (or null, Keras's None): poolSize. */
  strides?: Pair | null;
  padding?: 'valid' | 'same';
  dataFormat?: 'channelsLast' | 'channels_last' | null;
}

export const POOL_OPTIONS: OptionSpec = { poolSize: 'intOrPair', strides: 'intOrPair?', padding: 'string', dataFormat: 'string?' };

export abstract class Pooling2D extends Layer {
  readonly poolSize: [number, number];
  readonly strides: [number, number];
  readonly padding: 'valid' | 'same';
  protected abstract readonly nativeKind: string;

  constructor(args: Pooling2DArgs, prefix: string, options: OptionSpec = POOL_OPTIONS) {
    super(args, prefix, options);
    this.poolSize = pairOf(args.poolSize, 2, this.name, 'poolSize');
    this.strides = args.strides === undefined || args.strides === null ? this.poolSize : pairOf(args.strides, undefined, this.name, 'strides');
    this.padding = paddingOf(args.padding, this.name);
    channelsLast(args.dataFormat, this.name);
  }

  computeOutputShape(inputShape: Shape): Shape {
    requireRank(inputShape, 3, this.name, 'images (None, height, width, channels)');
    const p = outputLength(inputShape[0], this.poolSize[0], this.strides[0], 1, this.padding);
    const q = outputLength(inputShape[1], this.poolSize[1], this.strides[1], 1, this.padding);
    if (p < 1 || q < 1) {
      throw new ShapeError(`${this.name}: the ${this.poolSize.join('x')} pool does not fit the input (None, ${inputShape.join(', ')}) with '${this.padding}' padding`);
    }
    return [p, q, inputShape[2]];
  }

  lower(): NativeLayerSpec[] {
    return [{
      kind: this.nativeKind, name: this.name, kernelH: this.poolSize[0], kernelW: this.poolSize[1],
      strideH: this.strides[0], strideW: this.strides[1], padding: this.padding,
    }];
  }

  getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), poolSize: this.poolSize, padding: this.padding, strides: this.strides, dataFormat: 'channels_last' };
  }
}

export class MaxPooling2D extends Pooling2D {
  readonly className = 'MaxPooling2D';
  protected readonly nativeKind = 'maxPool2d';

  constructor(args: Pooling2DArgs = {}) {
    super(args, 'max_pooling2d');
  }
}

export class AveragePooling2D extends Pooling2D {
  readonly className = 'AveragePooling2D';
  protected readonly nativeKind = 'avgPool2d';

  constructor(args: Pooling2DArgs = {}) {
    super(args, 'average_pooling2d');
  }
}

export type GlobalPooling2DArgs = LayerArgs & { dataFormat?: 'channelsLast' | 'channels_last' | null; keepDims?: boolean; keepdims?: boolean };

/**
 * Keras's global pooling over every spatial axis (2 for images; 1 for sequences, which lower to
 * an image one row high first), keepdims keeping them as 1s.
 */
export abstract class GlobalPooling extends Layer {
  protected abstract readonly nativeKind: string;
  /** The spatial axes of its input, and how the input is described in a ShapeError. */
  protected abstract readonly spatialAxes: number;
  protected abstract readonly inputKind: string;
  /** Keras's keepdims: (None, 1, ..., 1, C) instead of (None, C). */
  readonly keepDims: boolean;

  constructor(args: GlobalPooling2DArgs, prefix: string) {
    super(args, prefix, { dataFormat: 'string?', keepDims: 'boolean', keepdims: 'boolean' });
    channelsLast(args.dataFormat, this.name);
    this.keepDims = args.keepDims ?? args.keepdims ?? false;
  }

  /** The native layers that make the input an image (none for an image). */
  protected asImage(_inputShape: Shape): NativeLayerSpec[] {
    return [];
  }

  computeOutputShape(inputShape: Shape): Shape {
    requireRank(inputShape, this.spatialAxes + 1, this.name, this.inputKind);
    const channels = inputShape[this.spatialAxes];
    return this.keepDims ? [...new Array<number>(this.spatialAxes).fill(1), channels] : [channels];
  }

  lower(inputShape: Shape): NativeLayerSpec[] {
    const pool: NativeLayerSpec = { kind: this.nativeKind, name: this.name };
    const kept: NativeLayerSpec[] = this.keepDims ? [{ kind: 'reshape', name: `${this.name}/keepdims`, targetShape: this.computeOutputShape(inputShape) }] : [];
    return [...this.asImage(inputShape), pool, ...kept];
  }

  getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), dataFormat: 'channels_last', keepdims: this.keepDims };
  }
}

abstract class GlobalPooling2D extends GlobalPooling {
  protected readonly spatialAxes = 2;
  protected readonly inputKind = 'images (None, height, width, channels)';
}

export class GlobalAveragePooling2D extends GlobalPooling2D {
  readonly className = 'GlobalAveragePooling2D';
  protected readonly nativeKind = 'globalAvgPool';

  constructor(args: GlobalPooling2DArgs = {}) {
    super(args, 'global_average_pooling2d');
  }
}

export class GlobalMaxPooling2D extends GlobalPooling2D {
  readonly className = 'GlobalMaxPooling2D';
  protected readonly nativeKind = 'globalMaxPool';

  constructor(args: GlobalPooling2DArgs = {}) {
    super(args, 'global_max_pooling2d');
  }
}

export interface BatchNormalizationArgs extends LayerArgs {
  axis?: number;
  momentum?: number;
  epsilon?: number;
  center?: boolean;
  scale?: boolean;
  betaInitializer?: InitializerOption;
  gammaInitializer?: InitializerOption;
  movingMeanInitializer?: InitializerOption;
  movingVarianceInitializer?: InitializerOption;
  betaRegularizer?: null;
  gammaRegularizer?: null;
  betaConstraint?: null;
  gammaConstraint?: null;
  /** Keras 3's synchronized batch statistics across devices (one device here: no effect). */
  synchronized?: boolean;
}

const BATCH_NORM_OPTIONS: OptionSpec = {
  axis: 'integer', momentum: 'number', epsilon: 'number', center: 'boolean', scale: 'boolean',
  betaInitializer: 'initializer?', gammaInitializer: 'initializer?', movingMeanInitializer: 'initializer?',
  movingVarianceInitializer: 'initializer?', synchronized: 'boolean',
  ...unsupported('betaRegularizer', 'gammaRegularizer', 'betaConstraint', 'gammaConstraint'),
};

export class BatchNormalization extends Layer {
  readonly className = 'BatchNormalization';
  readonly momentum: number;
  readonly epsilon: number;
  readonly center: boolean;
  readonly scale: boolean;
  private readonly inits: Record<string, Initializer>;

  constructor(args: BatchNormalizationArgs = {}) {
    super(args, 'batch_normalization', BATCH_NORM_OPTIONS);
    if (args.axis !== undefined && args.axis !== -1) {
      throw new ValueError(`${this.name}: only axis -1 (channels last) is supported, got ${describeValue(args.axis)}`);
    }
    this.momentum = args.momentum ?? 0.99;
    this.epsilon = args.epsilon ?? 1e-3;
    if (!(this.momentum >= 0 && this.momentum <= 1)) {
      throw new ValueError(`${this.name}: momentum must be a number in [0, 1], got ${describeValue(this.momentum)}`);
    }
    if (!(this.epsilon > 0)) throw new ValueError(`${this.name}: epsilon must be a number > 0, got ${describeValue(this.epsilon)}`);
    this.center = args.center ?? true;
    this.scale = args.scale ?? true;
    this.inits = {
      gamma: initializerOf(args.gammaInitializer, 'ones', this.name),
      beta: initializerOf(args.betaInitializer, 'zeros', this.name),
      moving_mean: initializerOf(args.movingMeanInitializer, 'zeros', this.name),
      moving_variance: initializerOf(args.movingVarianceInitializer, 'ones', this.name),
    };
  }

  computeOutputShape(inputShape: Shape): Shape {
    return inputShape;
  }

  weightSpecs(inputShape: Shape): WeightSpec[] {
    const c = [inputShape[inputShape.length - 1]];
    const specs: WeightSpec[] = [];
    if (this.scale) specs.push({ name: 'gamma', shape: c, initializer: this.inits.gamma, trainable: true });
    if (this.center) specs.push({ name: 'beta', shape: c, initializer: this.inits.beta, trainable: true });
    specs.push({ name: 'moving_mean', shape: c, initializer: this.inits.moving_mean, trainable: false });
    specs.push({ name: 'moving_variance', shape: c, initializer: this.inits.moving_variance, trainable: false });
    return specs;
  }

  lower(): NativeLayerSpec[] {
    return [{
      kind: 'batchNorm', name: this.name, epsilon: this.epsilon, momentum: this.momentum, center: this.center,
      scale: this.scale, trainable: this.trainable,
    }];
  }

  getConfig(): Record<string, unknown> {
    const ser = (i: Initializer) => ({ className: i.className, config: i.config });
    return {
      ...super.getConfig(), axis: -1, momentum: this.momentum, epsilon: this.epsilon, center: this.center, scale: this.scale,
      betaInitializer: ser(this.inits.beta), gammaInitializer: ser(this.inits.gamma),
      movingMeanInitializer: ser(this.inits.moving_mean), movingVarianceInitializer: ser(this.inits.moving_variance),
      betaRegularizer: null, gammaRegularizer: null, betaConstraint: null, gammaConstraint: null,
    };
  }
}
