// Core layers: input, dense, flatten, reshape, dropout, activation, reLU, leakyReLU, softmax.
import { describeValue, ShapeError, ValueError } from '../errors';
import { ActivationIdentifier, activationLayer, checkActivation, withActivation } from './activations';
import { checkShape, initializerOf, Layer, LayerArgs, NativeLayerSpec, positiveInt, Shape, WeightSpec } from './layer';
import { Initializer } from '../initializers';

export class InputLayer extends Layer {
  readonly className = 'InputLayer';
  declare readonly declaredInputShape: Shape;

  constructor(args: { shape?: Shape; inputShape?: Shape; batchShape?: (number | null)[]; batchInputShape?: (number | null)[]; name?: string }) {
    const batchShape = args?.batchShape ?? args?.batchInputShape;
    const shape = args?.shape ?? args?.inputShape ?? (Array.isArray(batchShape) ? batchShape.slice(1) : batchShape);
    super({ name: args?.name, inputShape: checkShape(shape, 'input') as number[] }, 'input');
    // An input layer is built when made: its output is its input.
    this.setBuiltShapes(this.declaredInputShape, this.declaredInputShape);
  }

  computeOutputShape(inputShape: Shape): Shape {
    return inputShape;
  }

  lower(): NativeLayerSpec[] {
    return [];
  }

  getConfig(): Record<string, unknown> {
    return { batchInputShape: [null, ...this.declaredInputShape], dtype: 'float32', sparse: false, name: this.name };
  }
}

export interface DenseArgs extends LayerArgs {
  units: number;
  activation?: ActivationIdentifier;
  useBias?: boolean;
  kernelInitializer?: string | Initializer;
  biasInitializer?: string | Initializer;
  /** tfjs's inputDim: shorthand for inputShape [inputDim]. */
  inputDim?: number;
}

export class Dense extends Layer {
  readonly className = 'Dense';
  readonly units: number;
  readonly activation: ActivationIdentifier;
  readonly useBias: boolean;
  readonly kernelInitializer: Initializer;
  readonly biasInitializer: Initializer;

  constructor(args: DenseArgs) {
    // (args may be anything a caller passed: the base constructor rejects what is not a config)
    const withDim = typeof args === 'object' && args !== null && args.inputDim !== undefined && !args.inputShape;
    super(withDim ? { ...args, inputShape: [args.inputDim as number] } : args, 'dense');
    this.units = positiveInt(args.units, this.name, 'units');
    this.activation = checkActivation(args.activation, this.name);
    this.useBias = args.useBias ?? true;
    this.kernelInitializer = initializerOf(args.kernelInitializer, 'glorotUniform', this.name);
    this.biasInitializer = initializerOf(args.biasInitializer, 'zeros', this.name);
  }

  computeOutputShape(inputShape: Shape): Shape {
    return [...inputShape.slice(0, -1), this.units];
  }

  weightSpecs(inputShape: Shape): WeightSpec[] {
    const specs: WeightSpec[] = [
      { name: 'kernel', shape: [inputShape[inputShape.length - 1], this.units], initializer: this.kernelInitializer, trainable: true },
    ];
    if (this.useBias) specs.push({ name: 'bias', shape: [this.units], initializer: this.biasInitializer, trainable: true });
    return specs;
  }

  lower(): NativeLayerSpec[] {
    return withActivation({ kind: 'dense', name: this.name, units: this.units, useBias: this.useBias, trainable: this.trainable }, this.activation);
  }

  getConfig(): Record<string, unknown> {
    return {
      ...super.getConfig(), units: this.units, activation: this.activation, useBias: this.useBias,
      kernelInitializer: { className: this.kernelInitializer.className, config: this.kernelInitializer.config },
      biasInitializer: { className: this.biasInitializer.className, config: this.biasInitializer.config },
      kernelRegularizer: null, biasRegularizer: null, activityRegularizer: null, kernelConstraint: null, biasConstraint: null,
    };
  }
}

export class Flatten extends Layer {
  readonly className = 'Flatten';

  constructor(args: LayerArgs = {}) {
    super(args, 'flatten');
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

  constructor(args: LayerArgs & { rate: number; noiseShape?: unknown; seed?: number }) {
    super(args, 'dropout');
    if (typeof args.rate !== 'number' || !(args.rate >= 0 && args.rate < 1)) {
      throw new ValueError(`${this.name}: rate must be a number in [0, 1), got ${describeValue(args.rate)}`);
    }
    if (args.noiseShape !== undefined && args.noiseShape !== null) {
      throw new ValueError(`${this.name}: noiseShape is not supported`);
    }
    this.rate = args.rate;
  }

  computeOutputShape(inputShape: Shape): Shape {
    return inputShape;
  }

  lower(): NativeLayerSpec[] {
    return [{ kind: 'dropout', name: this.name, rate: this.rate }];
  }

  getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), rate: this.rate, noiseShape: null, seed: null };
  }
}

export class Activation extends Layer {
  readonly className = 'Activation';
  readonly activation: ActivationIdentifier;

  constructor(args: LayerArgs & { activation: ActivationIdentifier }) {
    super(args, 'activation');
    this.activation = checkActivation(args.activation, this.name);
  }

  computeOutputShape(inputShape: Shape): Shape {
    return inputShape;
  }

  lower(): NativeLayerSpec[] {
    return activationLayer(this.activation, this.name);
  }

  getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), activation: this.activation };
  }
}

export class ReLU extends Layer {
  readonly className = 'ReLU';
  /** Caps the output (ReLU6: 6), as Keras's max_value; null for none. */
  readonly maxValue: number | null;

  constructor(args: LayerArgs & { maxValue?: number | null; negativeSlope?: number; threshold?: number } = {}) {
    super(args, 're_lu');
    const max = args.maxValue ?? null;
    if (max !== null && !(typeof max === 'number' && max > 0 && Number.isFinite(max))) {
      throw new ValueError(`${this.name}: maxValue must be a positive number or null, got ${describeValue(max)}`);
    }
    if ((args.negativeSlope ?? 0) !== 0 || (args.threshold ?? 0) !== 0) {
      throw new ValueError(`${this.name}: negativeSlope and threshold other than 0 are not supported`);
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
    super(args, 'reshape');
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

  constructor(args: LayerArgs & { alpha?: number } = {}) {
    super(args, 'leaky_re_lu');
    this.alpha = args.alpha ?? 0.3;
    if (!Number.isFinite(this.alpha) || this.alpha < 0) throw new ValueError(`${this.name}: alpha must be >= 0`);
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

  constructor(args: LayerArgs & { axis?: number } = {}) {
    super(args, 'softmax');
    if (args.axis !== undefined && args.axis !== -1) {
      throw new ValueError(`${this.name}: only axis -1 is supported`);
    }
  }

  computeOutputShape(inputShape: Shape): Shape {
    return inputShape;
  }

  lower(): NativeLayerSpec[] {
    return [{ kind: 'softmax', name: this.name }];
  }

  getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), axis: -1 };
  }
}
