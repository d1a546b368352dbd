// Keras's 1D layers over sequences (None, steps, channels): Conv1D, MaxPooling1D,
// AveragePooling1D, GlobalAveragePooling1D and GlobalMaxPooling1D. Each runs as its 2D layer on
// the sequence seen as an image one row high (as TensorFlow computes conv1d), so every kernel,
// ISA path and device of the 2D layers serves them. Conv1D's kernel [K, in, filters] has the
// memory layout of Conv2D's [1, K, in, filters]; the executor holds the latter.
import { describeValue, ShapeError, ValueError } from '../errors';
import { Initializer } from '../initializers';
import { Regularizer, regularizerConfig, regularizerOf, RegularizerOption } from '../regularizers';
import { ActivationIdentifier, activationConfigName, checkActivation, withActivation } from './activations';
import { GlobalPooling, GlobalPooling2DArgs, outputLength } from './conv';
import {
  channelsLast, initializerOf, InitializerOption, KERNEL_EXTRAS, Layer, LayerArgs, NativeLayerSpec, OptionSpec,
  positiveInt, requireRank, Shape, WeightSpec,
} from './layer';

const sequences = 'sequences (None, steps, channels)';

/** A length from Keras's int or 1-tuple. */
function single(v: unknown, def: number | undefined, where: string, name: string): number {
  if (v === undefined && def !== undefined) return def;
  const n = Array.isArray(v) && v.length === 1 ? v[0] : v;
  if (!Number.isInteger(n) || (n as number) < 1) throw new ValueError(`${where}: ${name} must be an integer >= 1 or [integer], got ${describeValue(v)}`);
  return n as number;
}

/** The sequence as an image one row high, and back. */
const toImage = (name: string, [steps, channels]: Shape): NativeLayerSpec => ({ kind: 'reshape', name: `${name}/as_image`, targetShape: [1, steps, channels] });
const toSequence = (name: string, [steps, channels]: Shape): NativeLayerSpec => ({ kind: 'reshape', name: `${name}/as_sequence`, targetShape: [steps, channels] });

export interface Conv1DArgs extends LayerArgs {
  filters: number;
  kernelSize: number | [number];
  strides?: number | [number];
  /** 'causal': output t sees inputs up to t only (zeros padded on the left), as Keras. */
  padding?: 'valid' | 'same' | 'causal';
  dilationRate?: number | [number];
  groups?: number;
  activation?: ActivationIdentifier | null;
  useBias?: boolean;
  kernelInitializer?: InitializerOption;
  biasInitializer?: InitializerOption;
  kernelRegularizer?: RegularizerOption;
  biasRegularizer?: RegularizerOption;
  dataFormat?: 'channelsLast' | 'channels_last' | null;
  activityRegularizer?: null;
  kernelConstraint?: null;
  biasConstraint?: null;
}

const CONV1D_OPTIONS: OptionSpec = {
  filters: 'integer', kernelSize: 'intOrSingle', strides: 'intOrSingle', padding: 'string', dilationRate: 'intOrSingle', groups: 'integer',
  activation: 'string?', useBias: 'boolean', kernelInitializer: 'initializer?', biasInitializer: 'initializer?',
  dataFormat: 'string?', ...KERNEL_EXTRAS,
};

/** Keras Conv1D. */
export class Conv1D extends Layer {
  readonly className = 'Conv1D';
  readonly filters: number;
  readonly kernelSize: number;
  readonly strides: number;
  readonly padding: 'valid' | 'same' | 'causal';
  readonly dilationRate: number;
  readonly groups: number;
  readonly activation: ActivationIdentifier;
  readonly useBias: boolean;
  readonly kernelInitializer: Initializer;
  readonly biasInitializer: Initializer;
  readonly kernelRegularizer: Regularizer | null;
  readonly biasRegularizer: Regularizer | null;

  constructor(args: Conv1DArgs) {
    super(args, 'conv1d', CONV1D_OPTIONS);
    this.filters = positiveInt(args.filters, this.name, 'filters');
    this.kernelSize = single(args.kernelSize, undefined, this.name, 'kernelSize');
    this.strides = single(args.strides, 1, this.name, 'strides');
    this.dilationRate = single(args.dilationRate, 1, this.name, 'dilationRate');
    this.groups = args.groups === undefined ? 1 : positiveInt(args.groups, this.name, 'groups');
    const padding = args.padding ?? 'valid';
    if (padding !== 'valid' && padding !== 'same' && padding !== 'causal') {
      throw new ValueError(`${this.name}: padding must be 'valid', 'same' or 'causal', got ${describeValue(args.padding)}`);
    }
    this.padding = padding;
    if (this.strides > 1 && this.dilationRate > 1) {
      throw new ValueError(`${this.name}: strides > 1 with dilationRate > 1 is not supported (as in Keras), got strides ${this.strides} and dilationRate ${this.dilationRate}`);
    }
    this.activation = checkActivation(args.activation, this.name);
    this.useBias = args.useBias ?? true;
    this.kernelInitializer = initializerOf(args.kernelInitializer, 'glorotUniform', this.name);
    this.biasInitializer = initializerOf(args.biasInitializer, 'zeros', this.name);
    this.kernelRegularizer = regularizerOf(args.kernelRegularizer, this.name, 'kernelRegularizer');
    this.biasRegularizer = regularizerOf(args.biasRegularizer, this.name, 'biasRegularizer');
    channelsLast(args.dataFormat, this.name);
  }

  /** Zeros added on the left of the sequence for 'causal' padding. */
  private get causalPad(): number {
    return this.padding === 'causal' ? (this.kernelSize - 1) * this.dilationRate : 0;
  }

  computeOutputShape(inputShape: Shape): Shape {
    requireRank(inputShape, 2, this.name, sequences);
    const [steps, channels] = inputShape;
    const padding = this.padding === 'causal' ? 'valid' : this.padding;
    const out = outputLength(steps + this.causalPad, this.kernelSize, this.strides, this.dilationRate, padding);
    if (out < 1) {
      throw new ShapeError(`${this.name}: the kernel of ${this.kernelSize} does not fit the input (None, ${inputShape.join(', ')}) with '${this.padding}' padding`);
    }
    if (channels % this.groups !== 0 || this.filters % this.groups !== 0) {
      throw new ShapeError(`${this.name}: input channels (${channels}) and filters (${this.filters}) must both be multiples of groups (${this.groups})`);
    }
    return [out, this.filters];
  }

  weightSpecs(inputShape: Shape): WeightSpec[] {
    const specs: WeightSpec[] = [{
      name: 'kernel', shape: [this.kernelSize, inputShape[1] / this.groups, this.filters], initializer: this.kernelInitializer,
      trainable: true, regularizer: this.kernelRegularizer,
    }];
    if (this.useBias) specs.push({ name: 'bias', shape: [this.filters], initializer: this.biasInitializer, trainable: true, regularizer: this.biasRegularizer });
    return specs;
  }

  lower(inputShape: Shape): NativeLayerSpec[] {
    const specs = [toImage(this.name, inputShape)];
    if (this.causalPad) specs.push({ kind: 'zeroPadding2d', name: `${this.name}/causal_pad`, padTop: 0, padBottom: 0, padLeft: this.causalPad, padRight: 0 });
    specs.push(...withActivation({
      kind: 'conv2d', name: this.name, filters: this.filters, kernelH: 1, kernelW: this.kernelSize, strideH: 1, strideW: this.strides,
      dilationH: 1, dilationW: this.dilationRate, padding: this.padding === 'same' ? 'same' : 'valid', useBias: this.useBias,
      trainable: this.trainable, groups: this.groups,
    }, this.activation));
    specs.push(toSequence(this.name, this.computeOutputShape(inputShape)));
    return specs;
  }

  getConfig(): Record<string, unknown> {
    return {
      ...super.getConfig(), filters: this.filters, kernelSize: [this.kernelSize], strides: [this.strides], padding: this.padding,
      dataFormat: 'channels_last', dilationRate: [this.dilationRate], ...(this.groups !== 1 ? { groups: this.groups } : {}),
      activation: activationConfigName(this.activation), useBias: this.useBias,
      kernelInitializer: { className: this.kernelInitializer.className, config: this.kernelInitializer.config },
      biasInitializer: { className: this.biasInitializer.className, config: this.biasInitializer.config },
      kernelRegularizer: regularizerConfig(this.kernelRegularizer), biasRegularizer: regularizerConfig(this.biasRegularizer),
      activityRegularizer: null, kernelConstraint: null, biasConstraint: null,
    };
  }
}

export interface Pooling1DArgs extends LayerArgs {
  poolSize?: number | [number];
  /** Default (or null, Keras's None): poolSize. */
  strides?: number | [number] | null;
  padding?: 'valid' | 'same';
  dataFormat?: 'channelsLast' | 'channels_last' | null;
}

abstract class Pooling1D extends Layer {
  readonly poolSize: number;
  readonly strides: number;
  readonly padding: 'valid' | 'same';
  protected abstract readonly nativeKind: string;

  constructor(args: Pooling1DArgs, prefix: string) {
    super(args, prefix, { poolSize: 'intOrSingle', strides: 'intOrSingle?', padding: 'string', dataFormat: 'string?' });
    this.poolSize = single(args.poolSize, 2, this.name, 'poolSize');
    this.strides = args.strides === undefined || args.strides === null ? this.poolSize : single(args.strides, undefined, this.name, 'strides');
    const padding = args.padding ?? 'valid';
    if (padding !== 'valid' && padding !== 'same') throw new ValueError(`${this.name}: padding must be 'valid' or 'same', got ${describeValue(args.padding)}`);
    this.padding = padding;
    channelsLast(args.dataFormat, this.name);
  }

  computeOutputShape(inputShape: Shape): Shape {
    requireRank(inputShape, 2, this.name, sequences);
    const out = outputLength(inputShape[0], this.poolSize, this.strides, 1, this.padding);
    if (out < 1) throw new ShapeError(`${this.name}: the pool of ${this.poolSize} does not fit the input (None, ${inputShape.join(', ')}) with '${this.padding}' padding`);
    return [out, inputShape[1]];
  }

  lower(inputShape: Shape): NativeLayerSpec[] {
    return [
      toImage(this.name, inputShape),
      { kind: this.nativeKind, name: this.name, kernelH: 1, kernelW: this.poolSize, strideH: 1, strideW: this.strides, padding: this.padding },
      toSequence(this.name, this.computeOutputShape(inputShape)),
    ];
  }

  getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), poolSize: [this.poolSize], strides: [this.strides], padding: this.padding, dataFormat: 'channels_last' };
  }
}

export class MaxPooling1D extends Pooling1D {
  readonly className = 'MaxPooling1D';
  protected readonly nativeKind = 'maxPool2d';

  constructor(args: Pooling1DArgs = {}) {
    super(args, 'max_pooling1d');
  }
}

export class AveragePooling1D extends Pooling1D {
  readonly className = 'AveragePooling1D';
  protected readonly nativeKind = 'avgPool2d';

  constructor(args: Pooling1DArgs = {}) {
    super(args, 'average_pooling1d');
  }
}

export type GlobalPooling1DArgs = GlobalPooling2DArgs;

abstract class GlobalPooling1D extends GlobalPooling {
  protected readonly spatialAxes = 1;
  protected readonly inputKind = sequences;

  protected asImage(inputShape: Shape): NativeLayerSpec[] {
    return [toImage(this.name, inputShape)];
  }
}

export class GlobalAveragePooling1D extends GlobalPooling1D {
  readonly className = 'GlobalAveragePooling1D';
  protected readonly nativeKind = 'globalAvgPool';

  constructor(args: GlobalPooling1DArgs = {}) {
    super(args, 'global_average_pooling1d');
  }
}

export class GlobalMaxPooling1D extends GlobalPooling1D {
  readonly className = 'GlobalMaxPooling1D';
  protected readonly nativeKind = 'globalMaxPool';

  constructor(args: GlobalPooling1DArgs = {}) {
    super(args, 'global_max_pooling1d');
  }
}
