// Core layers: input, dense, flatten, dropout, activation, reLU, leakyReLU, elu, softmax.
import { ValueError } from '../errors';
import { ActivationIdentifier, activationLayer, checkActivation, withActivation } from './activations';
import { checkShape, initializerOf, Layer, LayerArgs, NativeLayerSpec, positiveInt, Shape, WeightSpec } from './layer';
import { Initializer } from '../initializers';

export class InputLayer extends Layer {
  readonly className = 'InputLayer';
  declare readonly inputShape: Shape;

  constructor(args: { shape?: Shape; inputShape?: Shape; batchShape?: (number | null)[]; batchInputShape?: (number | null)[]; name?: string }) {
    const shape = args.shape ?? args.inputShape ?? (args.batchShape ?? args.batchInputShape)?.slice(1);
    super({ name: args.name, inputShape: checkShape(shape, 'input') as number[] }, 'input');
  }

  computeOutputShape(inputShape: Shape): Shape {
    return inputShape;
  }

  lower(): NativeLayerSpec[] {
    return [];
  }

  getConfig(): Record<string, unknown> {
    return { batchInputShape: [null, ...this.inputShape], dtype: 'float32', sparse: false, name: this.name };
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
    super(args.inputDim !== undefined && !args.inputShape ? { ...args, inputShape: [args.inputDim] } : args, 'dense');
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
      throw new ValueError(`${this.name}: rate must be a number in [0, 1), got ${JSON.stringify(args.rate)}`);
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

  constructor(args: LayerArgs & { maxValue?: number | null } = {}) {
    super(args, 're_lu');
    if (args.maxValue !== undefined && args.maxValue !== null) {
      throw new ValueError(`${this.name}: maxValue is not supported`);
    }
  }

  computeOutputShape(inputShape: Shape): Shape {
    return inputShape;
  }

  lower(): NativeLayerSpec[] {
    return activationLayer('relu', this.name);
  }

  getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), maxValue: null };
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
