// Core layers: input, dense, flatten, reshape, dropout, activation, reLU, leakyReLU, softmax.
import { describeValue, ShapeError, ValueError } from '../errors';
import { ActivationIdentifier, activationConfigName, activationLayer, checkActivation, withActivation } from './activations';
import {
  BASE_OPTIONS, BatchShape, channelsLast, checkLayerOptions, checkShape, initializerOf, InitializerOption, KERNEL_EXTRAS,
  Layer, LayerArgs, NativeLayerSpec, OptionSpec, positiveInt, Shape, symbolicInputs, SymbolicTensor, WeightSpec,
} from './layer';
import { Initializer } from '../initializers';
import { Regularizer, regularizerConfig, regularizerOf, RegularizerOption } from '../regularizers';

export interface InputLayerArgs {
  /** One example's shape (ck.input / Keras's shape). */
  shape?: Shape;
  /** tfjs's inputLayer option: the same as shape. */
  inputShape?: Shape;
  batchShape?: BatchShape;
  batchInputShape?: BatchShape;
  batchSize?: number | null;
  name?: string;
  dtype?: 'float32' | null;
  sparse?: false | null;
  ragged?: false | null;
}

// Keras 2 writes batch_input_shape, Keras 3 batch_shape; tfjs takes inputShape or batchInputShape.
const INPUT_OPTIONS: OptionSpec = {
  shape: 'inputShape', batchShape: 'batchInputShape', sparse: [false, null], ragged: [false, null], ...BASE_OPTIONS,
};

export class InputLayer extends Layer {
  readonly className = 'InputLayer';
  declare readonly declaredInputShape: Shape;

  constructor(args: InputLayerArgs) {
    const where = typeof args?.name === 'string' ? args.name : 'input';
    checkLayerOptions(args, where, 'InputLayer', INPUT_OPTIONS);
    const given = (['shape', 'inputShape', 'batchShape', 'batchInputShape'] as const).find((k) => args[k] !== undefined);
    if (!given) throw new ShapeError(`${where}: an input layer needs its shape (shape, inputShape, batchShape or batchInputShape)`);
    const batch = given === 'batchShape' || given === 'batchInputShape';
    const shape = batch ? (args[given] as BatchShape).slice(1) : args[given];
    if (args.batchSize !== undefined && args.batchSize !== null) positiveInt(args.batchSize, where, 'batchSize');
    super({ name: args.name, inputShape: checkShape(shape, where, given) }, 'input', {});
    // An input layer is built when made: its output is its input.
    this.setBuiltShapes(this.declaredInputShape, this.declaredInputShape);
  }

  computeOutputShape(inputShape: Shape): Shape {
    return inputShape;
  }

  lower(): NativeLayerSpec[] {
    return [];
  }

  /** An input layer starts a graph (ck.input makes its output) and reads nothing. */
  apply(inputs: SymbolicTensor | SymbolicTensor[]): SymbolicTensor {
    symbolicInputs(this, inputs);
    throw new ValueError(`${this.name}: an input layer is not applied; use ck.input({ shape })`);
  }

  getConfig(): Record<string, unknown> {
    return { batchInputShape: [null, ...this.declaredInputShape], dtype: 'float32', sparse: false, name: this.name };
  }
}

export interface DenseArgs extends LayerArgs {
  units: number;
  activation?: ActivationIdentifier | null;
  useBias?: boolean;
  kernelInitializer?: InitializerOption;
  biasInitializer?: InitializerOption;
  /** tfjs's inputDim: shorthand for inputShape [inputDim]. */
  inputDim?: number;
  /** A penalty on the kernel in the training loss: ck.regularizers.l1/l2/l1l2(...). */
  kernelRegularizer?: RegularizerOption;
  biasRegularizer?: RegularizerOption;
  activityRegularizer?: null;
  kernelConstraint?: null;
  biasConstraint?: null;
}

const DENSE_OPTIONS: OptionSpec = {
  units: 'integer', activation: 'string?', useBias: 'boolean', kernelInitializer: 'initializer?', biasInitializer: 'initializer?',
  inputDim: 'integer', ...KERNEL_EXTRAS,
};

export class Dense extends Layer {
  readonly className = 'Dense';
  readonly units: number;
  readonly activation: ActivationIdentifier;
  readonly useBias: boolean;
  readonly kernelInitializer: Initializer;
  readonly biasInitializer: Initializer;
  readonly kernelRegularizer: Regularizer | null;
  readonly biasRegularizer: Regularizer | null;

  constructor(args: DenseArgs) {
    super(args, 'dense', DENSE_OPTIONS);
    if (args.inputDim !== undefined && args.inputShape === undefined && args.batchInputShape === undefined) {
      this.declaredInputShape = [positiveInt(args.inputDim, this.name, 'inputDim')];
    }
    this.units = positiveInt(args.units, this.name, 'units');
    this.activation = checkActivation(args.activation, this.name);
    this.useBias = args.useBias ?? true;
    this.kernelInitializer = initializerOf(args.kernelInitializer, 'glorotUniform', this.name);
    this.biasInitializer = initializerOf(args.biasInitializer, 'zeros', this.name);
    this.kernelRegularizer = regularizerOf(args.kernelRegularizer, this.name, 'kernelRegularizer');
    this.biasRegularizer = regularizerOf(args.biasRegularizer, this.name, 'biasRegularizer');
  }

  computeOutputShape(inputShape: Shape): Shape {
    return [...inputShape.slice(0, -1), this.units];
  }

  weightSpecs(inputShape: Shape): WeightSpec[] {
    const specs: WeightSpec[] = [
      { name: 'kernel', shape: [inputShape[inputShape.length - 1], this.units], initializer: this.kernelInitializer, trainable: true, regularizer: this.kernelRegularizer },
    ];
    if (this.useBias) specs.push({ name: 'bias', shape: [this.units], initializer: this.biasInitializer, trainable: true, regularizer: this.biasRegularizer });
    return specs;
  }

  lower(): NativeLayerSpec[] {
    return withActivation({ kind: 'dense', name: this.name, units: this.units, useBias: this.useBias, trainable: this.trainable }, this.activation);
  }

  getConfig(): Record<string, unknown> {
    return {
      ...super.getConfig(), units: this.units, activation: activationConfigName(this.activation), useBias: this.useBias,
      kernelInitializer: { className: this.kernelInitializer.className, config: this.kernelInitializer.config },
      biasInitializer: { className: this.biasInitializer.className, config: this.biasInitializer.config },
      kernelRegularizer: regularizerConfig(this.kernelRegularizer), biasRegularizer: regularizerConfig(this.biasRegularizer),
      activityRegularizer: null, kernelConstraint: null, biasConstraint: null,
    };
  }
}

export class Flatten extends Layer {
  readonly className = 'Flatten';

  constructor(args: LayerArgs & { dataFormat?: 'channelsLast' | 'channels_last' | null } = {}) {
    super(args, 'flatten', { dataFormat: 'string?' });
    channelsLast(args.dataFormat, this.name);
  }

  computeOutputShape(inputShape: Shape): Shape {
    return [inputShape.reduce((a, b) => a * b, 1)];
  }

  lower(): NativeLayerSpec[] {
    return [{ kind: 'flatten', name: this.name }];
  }

  getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), dataFormat: 'channels_last' };
  }
}

export class Dropout extends Layer {
  readonly className = 'Dropout';
  readonly rate: number;
  /**
   * Keras's noiseShape: the mask's shape, batch first, broadcast over the axes where it is 1
   * ([null, 1, 1, C] drops whole channels, [null, 1, 1, 1] whole examples); null: one mask
   * value per input value.
   */
  readonly noiseShape: (number | null)[] | null;

  constructor(args: LayerArgs & { rate: number; noiseShape?: (number | null)[] | null; seed?: number | null }) {
    super(args, 'dropout', { rate: 'number', noiseShape: 'noiseShape?', seed: 'integer?' });
    if (typeof args.rate !== 'number' || !(args.rate >= 0 && args.rate < 1)) {
      throw new ValueError(`${this.name}: rate must be a number in [0, 1), got ${describeValue(args.rate)}`);
    }
    this.rate = args.rate;
    this.noiseShape = args.noiseShape ? args.noiseShape.slice() : null;
  }

  computeOutputShape(inputShape: Shape): Shape {
    this.noiseFlags(inputShape);
    return inputShape;
  }

  /**
   * Per axis of the input (batch first): 1 where the mask is broadcast, 0 where each index has
   * its own value. Keras allows, per axis, 1, the axis's size or null (its size).
   */
  private noiseFlags(inputShape: Shape): number[] | undefined {
    const noise = this.noiseShape;
    if (!noise) return undefined;
    const dims = [null, ...inputShape];
    if (noise.length !== dims.length) {
      throw new ShapeError(`${this.name}: noiseShape [${noise.map(String).join(', ')}] needs one entry per axis of the input (None, ${inputShape.join(', ')}), batch first`);
    }
    return noise.map((d, a) => {
      if (d === null || (a > 0 && d === dims[a] && d !== 1)) return 0;
      if (d === 1) return 1;
      throw new ShapeError(`${this.name}: noiseShape [${noise.map(String).join(', ')}] has ${d} at axis ${a} of the input (None, ${inputShape.join(', ')}); each entry must be 1, null or the axis's size`);
    });
  }

  lower(inputShape: Shape): NativeLayerSpec[] {
    const flags = this.noiseFlags(inputShape);
    return [{ kind: 'dropout', name: this.name, rate: this.rate, ...(flags ? { noiseShape: flags } : {}) }];
  }

  getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), rate: this.rate, noiseShape: this.noiseShape ? this.noiseShape.slice() : null, seed: null };
  }
}

export class Activation extends Layer {
  readonly className = 'Activation';
  readonly activation: ActivationIdentifier;

  constructor(args: LayerArgs & { activation: ActivationIdentifier }) {
    super(args, 'activation', { activation: 'string' });
    if (args.activation === undefined) throw new ValueError(`${this.name}: activation is required (one of the activation names)`);
    this.activation = checkActivation(args.activation, this.name);
  }

  computeOutputShape(inputShape: Shape): Shape {
    return inputShape;
  }

  lower(): NativeLayerSpec[] {
    return activationLayer(this.activation, this.name);
  }

  getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), activation: activationConfigName(this.activation) };
  }
}

export class ReLU extends Layer {
  readonly className = 'ReLU';
  /** Caps the output (ReLU6: 6), as Keras's max_value; null for none. */
  readonly maxValue: number | null;

  constructor(args: LayerArgs & { maxValue?: number | null; negativeSlope?: number; threshold?: number } = {}) {
    super(args, 're_lu', { maxValue: 'number?', negativeSlope: 'number', threshold: 'number' });
    const max = args.maxValue ?? null;
    if (max !== null && !(typeof max === 'number' && max > 0 && Number.isFinite(max))) {
      throw new ValueError(`${this.name}: maxValue must be a positive number or null, got ${describeValue(max)}`);
    }
    if ((args.negativeSlope ?? 0) !== 0 || (args.threshold ?? 0) !== 0) {
      throw new ValueError(`${this.name}: negativeSlope and threshold other than 0 are not supported, ` +
        `got ${describeValue(args.negativeSlope ?? 0)} and ${describeValue(args.threshold ?? 0)}`);
    }
    this.maxValue = max;
  }

  computeOutputShape(inputShape: Shape): Shape {
    return inputShape;
  }

  lower(): NativeLayerSpec[] {
    if (this.maxValue === null) return activationLayer('relu', this.name);
    return [{ kind: 'activation', name: this.name, activation: 'clippedRelu', alpha: this.maxValue }];
  }

  getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), maxValue: this.maxValue };
  }
}

export class Reshape extends Layer {
  readonly className = 'Reshape';
  /** One example's new shape; one entry may be -1 (inferred). */
  readonly targetShape: number[];

  constructor(args: LayerArgs & { targetShape: number[] }) {
    super(args, 'reshape', { targetShape: 'shape' });
    const t = args.targetShape;
    if (!Array.isArray(t) || t.length === 0 || t.length > 7 || !t.every((d) => Number.isInteger(d) && (d > 0 || d === -1)) ||
      t.filter((d) => d === -1).length > 1) {
      throw new ValueError(`${this.name}: targetShape must be positive integers (at most one -1), got ${describeValue(t)}`);
    }
    this.targetShape = t.slice();
  }

  computeOutputShape(inputShape: Shape): Shape {
    const total = inputShape.reduce((a, b) => a * b, 1);
    const known = this.targetShape.reduce((a, d) => (d === -1 ? a : a * d), 1);
    const out = this.targetShape.map((d) => (d === -1 ? total / known : d));
    if (out.reduce((a, b) => a * b, 1) !== total || !out.every(Number.isInteger)) {
      throw new ShapeError(`${this.name}: cannot reshape (None, ${inputShape.join(', ')}) to (None, ${this.targetShape.join(', ')})`);
    }
    return out;
  }

  lower(inputShape: Shape): NativeLayerSpec[] {
    return [{ kind: 'reshape', name: this.name, targetShape: this.computeOutputShape(inputShape) as never }];
  }

  getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), targetShape: this.targetShape };
  }
}

export class LeakyReLU extends Layer {
  readonly className = 'LeakyReLU';
  readonly alpha: number;

  /** alpha (tfjs, Keras 2) or negativeSlope (Keras 3's name for it). */
  constructor(args: LayerArgs & { alpha?: number; negativeSlope?: number } = {}) {
    super(args, 'leaky_re_lu', { alpha: 'number', negativeSlope: 'number' });
    this.alpha = args.alpha ?? args.negativeSlope ?? 0.3;
    if (!(this.alpha >= 0)) throw new ValueError(`${this.name}: alpha must be a number >= 0, got ${describeValue(this.alpha)}`);
  }

  computeOutputShape(inputShape: Shape): Shape {
    return inputShape;
  }

  lower(): NativeLayerSpec[] {
    return [{ kind: 'activation', name: this.name, activation: 'leakyRelu', alpha: this.alpha }];
  }

  getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), alpha: this.alpha };
  }
}

export class Softmax extends Layer {
  readonly className = 'Softmax';
  /**
   * The last axis: -1, or its index counting the batch axis (tfjs's default, 1, is the last
   * axis of vectors); which index that is is checked when the layer is built.
   */
  readonly axis: number;

  constructor(args: LayerArgs & { axis?: number } = {}) {
    super(args, 'softmax', { axis: 'integer' });
    this.axis = args.axis ?? -1;
    if (this.axis !== -1 && !(this.axis >= 1)) {
      throw new ValueError(`${this.name}: only axis -1 (the last axis) is supported, got ${describeValue(args.axis)}`);
    }
  }

  computeOutputShape(inputShape: Shape): Shape {
    if (this.axis !== -1 && this.axis !== inputShape.length) {
      throw new ValueError(`${this.name}: only the last axis (-1, or ${inputShape.length} for input ` +
        `(None, ${inputShape.join(', ')})) is supported, got axis ${this.axis}`);
    }
    return inputShape;
  }

  lower(): NativeLayerSpec[] {
    return [{ kind: 'softmax', name: this.name }];
  }

  getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), axis: this.axis };
  }
}
