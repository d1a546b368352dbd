// The layers of MobileNet-style and encoder-decoder networks (tfjs/Keras names): depthwise and
// separable convolution, zero padding, up-sampling, and Lp (power-average) pooling.
import { Regularizer, regularizerConfig, regularizerOf, RegularizerOption } from '../regularizers';
import { describeValue, ShapeError, ValueError } from '../errors';
import { Initializer } from '../initializers';
import { ActivationIdentifier, activationConfigName, checkActivation, withActivation } from './activations';
import { outputLength, POOL_OPTIONS, Pooling2D, Pooling2DArgs } from './conv';
import {
  channelsLast, initializerOf, InitializerOption, Layer, LayerArgs, NativeLayerSpec, OptionSpec, pairOf, paddingOf,
  positiveInt, requireRank, Shape, unsupported, WeightSpec,
} from './layer';

type Pair = number | [number, number];
const images = 'images (None, height, width, channels)';
const ser = (i: Initializer) => ({ className: i.className, config: i.config });

export interface DepthwiseConv2DArgs extends LayerArgs {
  kernelSize: Pair;
  strides?: Pair;
  padding?: 'valid' | 'same';
  depthMultiplier?: number;
  dilationRate?: Pair;
  activation?: ActivationIdentifier | null;
  useBias?: boolean;
  depthwiseInitializer?: InitializerOption;
  biasInitializer?: InitializerOption;
  dataFormat?: 'channelsLast' | 'channels_last' | null;
  /** Keras 2 writes groups: 1 (the only value) in depthwise and separable configs. */
  groups?: 1;
  /** A penalty on the depthwise kernel in the training loss: ck.regularizers.l1/l2/l1l2(...). */
  depthwiseRegularizer?: RegularizerOption;
  biasRegularizer?: RegularizerOption;
  activityRegularizer?: null;
  depthwiseConstraint?: null;
  biasConstraint?: null;
}

// Keras 2 writes groups: 1 in depthwise and separable configs (the base convolution's option).
const DEPTHWISE_OPTIONS: OptionSpec = {
  kernelSize: 'intOrPair', strides: 'intOrPair', padding: 'string', depthMultiplier: 'integer', dilationRate: 'intOrPair',
  activation: 'string?', useBias: 'boolean', depthwiseInitializer: 'initializer?', biasInitializer: 'initializer?',
  dataFormat: 'string?', groups: [1],
  depthwiseRegularizer: 'regularizer?', biasRegularizer: 'regularizer?',
  ...unsupported('activityRegularizer', 'depthwiseConstraint', 'biasConstraint'),
};

/** The window geometry depthwise and separable convolutions share. */
abstract class DepthwiseBase extends Layer {
  readonly kernelSize: [number, number];
  readonly strides: [number, number];
  readonly padding: 'valid' | 'same';
  readonly dilationRate: [number, number];
  readonly depthMultiplier: number;
  readonly activation: ActivationIdentifier;
  readonly useBias: boolean;
  readonly depthwiseInitializer: Initializer;
  readonly biasInitializer: Initializer;
  readonly depthwiseRegularizer: Regularizer | null;
  readonly biasRegularizer: Regularizer | null;

  constructor(args: DepthwiseConv2DArgs, prefix: string, options: OptionSpec) {
    super(args, prefix, options);
    this.kernelSize = pairOf(args.kernelSize, undefined, this.name, 'kernelSize');
    this.strides = pairOf(args.strides, 1, this.name, 'strides');
    this.padding = paddingOf(args.padding, this.name);
    this.dilationRate = pairOf(args.dilationRate, 1, this.name, 'dilationRate');
    this.depthMultiplier = args.depthMultiplier === undefined ? 1 : positiveInt(args.depthMultiplier, this.name, 'depthMultiplier');
    this.activation = checkActivation(args.activation, this.name);
    this.useBias = args.useBias ?? true;
    this.depthwiseInitializer = initializerOf(args.depthwiseInitializer, 'glorotUniform', this.name);
    this.biasInitializer = initializerOf(args.biasInitializer, 'zeros', this.name);
    this.depthwiseRegularizer = regularizerOf(args.depthwiseRegularizer, this.name, 'depthwiseRegularizer');
    this.biasRegularizer = regularizerOf(args.biasRegularizer, this.name, 'biasRegularizer');
    channelsLast(args.dataFormat, this.name);
  }

  /** (P, Q) of the window over the input. */
  protected outputSize(inputShape: Shape): [number, number] {
    requireRank(inputShape, 3, this.name, images);
    const p = outputLength(inputShape[0], this.kernelSize[0], this.strides[0], this.dilationRate[0], this.padding);
    const q = outputLength(inputShape[1], this.kernelSize[1], this.strides[1], this.dilationRate[1], this.padding);
    if (p < 1 || q < 1) {
      throw new ShapeError(`${this.name}: the ${this.kernelSize.join('x')} kernel does not fit the input (None, ${inputShape.join(', ')}) with '${this.padding}' padding`);
    }
    return [p, q];
  }

  protected depthwiseSpec(useBias: boolean): NativeLayerSpec {
    return {
      kind: 'depthwiseConv2d', name: this.name, kernelH: this.kernelSize[0], kernelW: this.kernelSize[1],
      strideH: this.strides[0], strideW: this.strides[1], dilationH: this.dilationRate[0], dilationW: this.dilationRate[1],
      padding: this.padding, depthMultiplier: this.depthMultiplier, useBias, trainable: this.trainable,
    };
  }

  getConfig(): Record<string, unknown> {
    return {
      ...super.getConfig(), kernelSize: this.kernelSize, strides: this.strides, padding: this.padding,
      dataFormat: 'channels_last', dilationRate: this.dilationRate, depthMultiplier: this.depthMultiplier,
      activation: activationConfigName(this.activation), useBias: this.useBias, depthwiseInitializer: ser(this.depthwiseInitializer),
      biasInitializer: ser(this.biasInitializer), depthwiseRegularizer: regularizerConfig(this.depthwiseRegularizer),
      biasRegularizer: regularizerConfig(this.biasRegularizer),
      activityRegularizer: null, depthwiseConstraint: null, biasConstraint: null,
    };
  }
}

/** Each input channel convolved with its own depthMultiplier filters (MobileNet's 3x3 layers). */
export class DepthwiseConv2D extends DepthwiseBase {
  readonly className = 'DepthwiseConv2D';

  constructor(args: DepthwiseConv2DArgs) {
    super(args, 'depthwise_conv2d', DEPTHWISE_OPTIONS);
  }

  computeOutputShape(inputShape: Shape): Shape {
    return [...this.outputSize(inputShape), inputShape[2] * this.depthMultiplier];
  }

  weightSpecs(inputShape: Shape): WeightSpec[] {
    const specs: WeightSpec[] = [{
      name: 'depthwise_kernel', shape: [...this.kernelSize, inputShape[2], this.depthMultiplier],
      initializer: this.depthwiseInitializer, trainable: true, regularizer: this.depthwiseRegularizer,
    }];
    if (this.useBias) {
      specs.push({ name: 'bias', shape: [inputShape[2] * this.depthMultiplier], initializer: this.biasInitializer, trainable: true, regularizer: this.biasRegularizer });
    }
    return specs;
  }

  lower(): NativeLayerSpec[] {
    return withActivation(this.depthwiseSpec(this.useBias), this.activation);
  }
}

export interface SeparableConv2DArgs extends DepthwiseConv2DArgs {
  filters: number;
  pointwiseInitializer?: InitializerOption;
  pointwiseRegularizer?: null;
  pointwiseConstraint?: null;
}

const SEPARABLE_OPTIONS: OptionSpec = {
  ...DEPTHWISE_OPTIONS, filters: 'integer', pointwiseInitializer: 'initializer?', ...unsupported('pointwiseRegularizer', 'pointwiseConstraint'),
};

/** A depthwise convolution followed by a 1x1 convolution to `filters` channels (Keras's). */
export class SeparableConv2D extends DepthwiseBase {
  readonly className = 'SeparableConv2D';
  readonly filters: number;
  readonly pointwiseInitializer: Initializer;

  constructor(args: SeparableConv2DArgs) {
    super(args, 'separable_conv2d', SEPARABLE_OPTIONS);
    this.filters = positiveInt(args.filters, this.name, 'filters');
    this.pointwiseInitializer = initializerOf(args.pointwiseInitializer, 'glorotUniform', this.name);
  }

  computeOutputShape(inputShape: Shape): Shape {
    return [...this.outputSize(inputShape), this.filters];
  }

  weightSpecs(inputShape: Shape): WeightSpec[] {
    const middle = inputShape[2] * this.depthMultiplier;
    const specs: WeightSpec[] = [
      { name: 'depthwise_kernel', shape: [...this.kernelSize, inputShape[2], this.depthMultiplier], initializer: this.depthwiseInitializer, trainable: true, regularizer: this.depthwiseRegularizer },
      { name: 'pointwise_kernel', shape: [1, 1, middle, this.filters], initializer: this.pointwiseInitializer, trainable: true },
    ];
    if (this.useBias) specs.push({ name: 'bias', shape: [this.filters], initializer: this.biasInitializer, trainable: true, regularizer: this.biasRegularizer });
    return specs;
  }

  lower(): NativeLayerSpec[] {
    const pointwise: NativeLayerSpec = {
      kind: 'conv2d', name: `${this.name}/pointwise`, filters: this.filters, kernelH: 1, kernelW: 1,
      useBias: this.useBias, trainable: this.trainable,
    };
    return [this.depthwiseSpec(false), ...withActivation(pointwise, this.activation)];
  }

  getConfig(): Record<string, unknown> {
    return {
      ...super.getConfig(), filters: this.filters, pointwiseInitializer: ser(this.pointwiseInitializer),
      pointwiseRegularizer: null, pointwiseConstraint: null,
    };
  }
}

/** [[top, bottom], [left, right]] from Keras's int, (h, w) or ((t, b), (l, r)). */
function paddingPairs(v: unknown, where: string): [[number, number], [number, number]] {
  const count = (x: unknown): x is number => Number.isInteger(x) && (x as number) >= 0 && (x as number) < 1 << 16;
  if (v === undefined) return [[1, 1], [1, 1]];
  if (count(v)) return [[v, v], [v, v]];
  if (Array.isArray(v) && v.length === 2 && v.every(count)) return [[v[0], v[0]], [v[1], v[1]]];
  if (Array.isArray(v) && v.length === 2 && v.every((p) => Array.isArray(p) && p.length === 2 && p.every(count))) {
    return [[v[0][0], v[0][1]], [v[1][0], v[1][1]]];
  }
  throw new ValueError(`${where}: padding must be an integer, [h, w] or [[top, bottom], [left, right]] of integers >= 0, got ${describeValue(v)}`);
}

export class ZeroPadding2D extends Layer {
  readonly className = 'ZeroPadding2D';
  readonly padding: [[number, number], [number, number]];

  constructor(args: LayerArgs & { padding?: number | [number, number] | [[number, number], [number, number]]; dataFormat?: 'channelsLast' | 'channels_last' | null } = {}) {
    super(args, 'zero_padding2d', { padding: 'padding2d', dataFormat: 'string?' });
    this.padding = paddingPairs(args.padding, this.name);
    channelsLast(args.dataFormat, this.name);
  }

  computeOutputShape(inputShape: Shape): Shape {
    requireRank(inputShape, 3, this.name, images);
    const [[t, b], [l, r]] = this.padding;
    return [inputShape[0] + t + b, inputShape[1] + l + r, inputShape[2]];
  }

  lower(): NativeLayerSpec[] {
    const [[t, b], [l, r]] = this.padding;
    return [{ kind: 'zeroPadding2d', name: this.name, padTop: t, padBottom: b, padLeft: l, padRight: r }];
  }

  getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), padding: this.padding, dataFormat: 'channels_last' };
  }
}

/**
 * Repeats rows and columns by `size` ('nearest'), or interpolates ('bilinear', sampling as
 * TensorFlow.js's layer does: source = destination / size). `halfPixelCenters: true` samples
 * bilinear at (destination + 0.5) / size - 0.5 instead, as Keras 3's layer, PyTorch's
 * Upsample(align_corners=False) and ONNX Resize's half_pixel do; it is left out of the config
 * unless set, so tfjs files keep their sampling and their configs.
 */
export class UpSampling2D extends Layer {
  readonly className = 'UpSampling2D';
  readonly size: [number, number];
  readonly interpolation: 'nearest' | 'bilinear';
  readonly halfPixelCenters: boolean;

  constructor(args: LayerArgs & { size?: Pair; interpolation?: 'nearest' | 'bilinear'; halfPixelCenters?: boolean; dataFormat?: 'channelsLast' | 'channels_last' | null } = {}) {
    super(args, 'up_sampling2d', { size: 'intOrPair', interpolation: 'string', halfPixelCenters: 'boolean?', dataFormat: 'string?' });
    this.size = pairOf(args.size, 2, this.name, 'size');
    const interp = args.interpolation ?? 'nearest';
    if (interp !== 'nearest' && interp !== 'bilinear') {
      throw new ValueError(`${this.name}: interpolation must be 'nearest' or 'bilinear', got ${describeValue(interp)}`);
    }
    this.interpolation = interp;
    this.halfPixelCenters = args.halfPixelCenters ?? false;
    if (this.halfPixelCenters && interp === 'nearest') {
      // Nearest at whole factors reads floor(dst / size) either way; a flag that changes nothing is a mistake.
      throw new ValueError(`${this.name}: halfPixelCenters applies to interpolation 'bilinear', got interpolation 'nearest'`);
    }
    channelsLast(args.dataFormat, this.name);
  }

  computeOutputShape(inputShape: Shape): Shape {
    requireRank(inputShape, 3, this.name, images);
    return [inputShape[0] * this.size[0], inputShape[1] * this.size[1], inputShape[2]];
  }

  lower(): NativeLayerSpec[] {
    return [{ kind: 'upSampling2d', name: this.name, sizeH: this.size[0], sizeW: this.size[1], interpolation: this.interpolation, halfPixelCenters: this.halfPixelCenters }];
  }

  getConfig(): Record<string, unknown> {
    const halfPixel = this.halfPixelCenters ? { halfPixelCenters: true } : {};
    return { ...super.getConfig(), size: this.size, interpolation: this.interpolation, ...halfPixel, dataFormat: 'channels_last' };
  }
}

/**
 * L2 (power-average) pooling as the seed tutorial describes it: the square root of the mean of
 * the squares over each window; `p` generalises it to (mean |x|^p)^(1/p).
 */
export class LpPooling2D extends Pooling2D {
  readonly className = 'LpPooling2D';
  protected readonly nativeKind = 'lpPool2d';
  readonly p: number;

  constructor(args: Pooling2DArgs & { p?: number } = {}) {
    super(args, 'lp_pooling2d', { ...POOL_OPTIONS, p: 'number' });
    this.p = args.p ?? 2;
    // The executor's rule (check_lp_norm): the same bounds as ck.ops.lpPool2d's p.
    if (!(this.p >= 1 && this.p <= 1e6)) {
      throw new ValueError(`${this.name}: p must be a number in [1, 1000000], got ${describeValue(args.p)}`);
    }
  }

  lower(): NativeLayerSpec[] {
    return [{ ...super.lower()[0], power: this.p }];
  }

  getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), p: this.p };
  }
}
