// Per-example normalization layers (Keras LayerNormalization and GroupNormalization): each
// example is normalized with its own statistics, in training and inference alike, over the last
// axis (the native groupNorm kernels; a layer norm is one group per position).
import { describeValue, ValueError } from '../errors';
import { Initializer } from '../initializers';
import { initializerOf, InitializerOption, Layer, LayerArgs, NativeLayerSpec, OptionSpec, positiveInt, Shape, unsupported, WeightSpec } from './layer';

interface NormalizationArgs extends LayerArgs {
  /** The normalized axis: the last one only (-1, or its index counting the batch axis). */
  axis?: number;
  epsilon?: number;
  center?: boolean;
  scale?: boolean;
  betaInitializer?: InitializerOption;
  gammaInitializer?: InitializerOption;
  betaRegularizer?: null;
  gammaRegularizer?: null;
  betaConstraint?: null;
  gammaConstraint?: null;
}

export interface LayerNormalizationArgs extends NormalizationArgs {
  /** Keras 3's RMS variant (written in its configs): only false, the default. */
  rmsScaling?: false;
}

export interface GroupNormalizationArgs extends NormalizationArgs {
  /** Channel groups, each normalized over its channels at every position: divides the channels. */
  groups?: number;
}

const NORM_OPTIONS: OptionSpec = {
  axis: 'integer', epsilon: 'number', center: 'boolean', scale: 'boolean', betaInitializer: 'initializer?',
  gammaInitializer: 'initializer?', ...unsupported('betaRegularizer', 'gammaRegularizer', 'betaConstraint', 'gammaConstraint'),
};

/** What LayerNormalization and GroupNormalization share: gamma and beta over the last axis. */
abstract class Normalization extends Layer {
  readonly axis: number;
  readonly epsilon: number;
  readonly center: boolean;
  readonly scale: boolean;
  private readonly inits: Record<'gamma' | 'beta', Initializer>;

  constructor(args: NormalizationArgs, prefix: string, options: OptionSpec) {
    super(args, prefix, options);
    this.axis = args.axis ?? -1;
    this.epsilon = args.epsilon ?? 1e-3;
    if (!(this.epsilon > 0)) throw new ValueError(`${this.name}: epsilon must be a number > 0, got ${describeValue(this.epsilon)}`);
    this.center = args.center ?? true;
    this.scale = args.scale ?? true;
    this.inits = {
      gamma: initializerOf(args.gammaInitializer, 'ones', this.name),
      beta: initializerOf(args.betaInitializer, 'zeros', this.name),
    };
  }

  computeOutputShape(inputShape: Shape): Shape {
    // Keras counts the batch axis: for (None, h, w, c), the last axis is -1 or 3.
    if (this.axis !== -1 && this.axis !== inputShape.length) {
      throw new ValueError(`${this.name}: only the last axis can be normalized (axis -1 or ${inputShape.length} for input ` +
        `shape (None, ${inputShape.join(', ')})), got axis ${this.axis}`);
    }
    return inputShape;
  }

  weightSpecs(inputShape: Shape): WeightSpec[] {
    const c = [inputShape[inputShape.length - 1]];
    const specs: WeightSpec[] = [];
    if (this.scale) specs.push({ name: 'gamma', shape: c, initializer: this.inits.gamma, trainable: true });
    if (this.center) specs.push({ name: 'beta', shape: c, initializer: this.inits.beta, trainable: true });
    return specs;
  }

  getConfig(): Record<string, unknown> {
    const ser = (i: Initializer) => ({ className: i.className, config: i.config });
    return {
      ...super.getConfig(), axis: this.axis, epsilon: this.epsilon, center: this.center, scale: this.scale,
      betaInitializer: ser(this.inits.beta), gammaInitializer: ser(this.inits.gamma),
      betaRegularizer: null, gammaRegularizer: null, betaConstraint: null, gammaConstraint: null,
    };
  }
}

/** Keras LayerNormalization: each position's last-axis values normalized by their own mean and variance. */
export class LayerNormalization extends Normalization {
  readonly className = 'LayerNormalization';

  constructor(args: LayerNormalizationArgs = {}) {
    super(args, 'layer_normalization', { ...NORM_OPTIONS, rmsScaling: [false] });
  }

  lower(): NativeLayerSpec[] {
    return [{ kind: 'layerNorm', name: this.name, epsilon: this.epsilon, center: this.center, scale: this.scale, trainable: this.trainable }];
  }
}

/** Keras GroupNormalization: per example, each group of channels normalized over all its positions. */
export class GroupNormalization extends Normalization {
  readonly className = 'GroupNormalization';
  readonly groups: number;

  constructor(args: GroupNormalizationArgs = {}) {
    super(args, 'group_normalization', { ...NORM_OPTIONS, groups: 'integer' });
    this.groups = positiveInt(args.groups ?? 32, this.name, 'groups');
  }

  computeOutputShape(inputShape: Shape): Shape {
    const out = super.computeOutputShape(inputShape);
    const channels = inputShape[inputShape.length - 1];
    if (channels % this.groups !== 0) {
      throw new ValueError(`${this.name}: groups must divide the ${channels} channels of the last axis, got groups ${this.groups}`);
    }
    return out;
  }

  lower(): NativeLayerSpec[] {
    return [{
      kind: 'groupNorm', name: this.name, groups: this.groups, epsilon: this.epsilon, center: this.center, scale: this.scale,
      trainable: this.trainable,
    }];
  }

  getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), groups: this.groups };
  }
}
