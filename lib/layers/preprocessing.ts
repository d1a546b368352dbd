// Keras's preprocessing layers that run inside a model: Rescaling (y = x * scale + offset, the
// native rescaling kind) and Normalization (the native normalization kind: (x - mean) /
// max(sqrt(variance), 1e-7) over the last axis, its statistics set by adapt() or the options).
import { describeValue, ShapeError, ValueError } from '../errors';
import { Initializer } from '../initializers';
import { native } from '../native';
import { Tensor } from '../tensor';
import { Layer, LayerArgs, NativeLayerSpec, Shape, WeightSpec } from './layer';

export interface RescalingArgs extends LayerArgs {
  /** The factor each input value is multiplied by (Keras's scale: 1 / 255 maps bytes to [0, 1]). */
  scale: number;
  /** Added after the scaling (default 0). */
  offset?: number;
}

function finiteNumber(v: unknown, where: string, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new ValueError(`${where}: ${what} must be a finite number, got ${describeValue(v)}`);
  }
  return v;
}

/** Keras Rescaling: y = x * scale + offset over every value. */
export class Rescaling extends Layer {
  readonly className = 'Rescaling';
  readonly scale: number;
  readonly offset: number;

  constructor(args: RescalingArgs) {
    super(args, 'rescaling', { scale: 'number', offset: 'number' });
    this.scale = finiteNumber(args?.scale, this.name, 'scale');
    this.offset = finiteNumber(args.offset ?? 0, this.name, 'offset');
  }

  computeOutputShape(inputShape: Shape): Shape {
    return inputShape;
  }

  lower(): NativeLayerSpec[] {
    return [{ kind: 'rescaling', name: this.name, factor: this.scale, offset: this.offset }];
  }

  getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), scale: this.scale, offset: this.offset };
  }
}

export interface NormalizationArgs extends LayerArgs {
  /** The normalized axis: the last one only (-1, or its index counting the batch axis). */
  axis?: number | null;
  /** Fixed statistics, one value per channel (or one for every channel); adapt() computes them otherwise. */
  mean?: number | number[] | null;
  variance?: number | number[] | null;
  /** Keras 3's inverse transform: only false, the default. */
  invert?: false;
}

/** An initializer that fills a weight with these values (one per channel, or one for all). */
function valuesInitializer(values: readonly number[], where: string, what: string): Initializer {
  return {
    className: 'Constant',
    config: {},
    generate(shape) {
      const n = shape.reduce((a, b) => a * b, 1);
      if (values.length !== 1 && values.length !== n) {
        throw new ShapeError(`${where}: ${what} has ${values.length} values, the input has ${n} channels`);
      }
      return Float32Array.from({ length: n }, (_, i) => values[values.length === 1 ? 0 : i]);
    },
  };
}

function statisticsOf(v: unknown, where: string, what: string): number[] | null {
  if (v === undefined || v === null) return null;
  const values = typeof v === 'number' ? [v] : v;
  if (!Array.isArray(values) || values.length === 0 || !values.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new ValueError(`${where}: ${what} must be a finite number or a non-empty array of them, got ${describeValue(v)}`);
  }
  if (what === 'variance' && values.some((x) => x < 0)) {
    throw new ValueError(`${where}: variance must be >= 0, got ${describeValue(v)}`);
  }
  return values;
}

/**
 * Keras Normalization over the last axis: y = (x - mean) / max(sqrt(variance), 1e-7), with mean,
 * variance and count as non-trainable weights (by those names) that adapt() sets from data.
 */
export class Normalization extends Layer {
  readonly className = 'Normalization';
  readonly axis: number;
  private readonly fixedMean: number[] | null;
  private readonly fixedVariance: number[] | null;
  private adapted?: { mean: Float32Array; variance: Float32Array; count: number };

  constructor(args: NormalizationArgs = {}) {
    super(args, 'normalization', { axis: 'integer?', mean: 'numberOrList?', variance: 'numberOrList?', invert: [false] });
    this.axis = args.axis ?? -1;
    this.fixedMean = statisticsOf(args.mean, this.name, 'mean');
    this.fixedVariance = statisticsOf(args.variance, this.name, 'variance');
    if ((this.fixedMean === null) !== (this.fixedVariance === null)) {
      throw new ValueError(`${this.name}: give both mean and variance, or neither (adapt() computes them)`);
    }
  }

  computeOutputShape(inputShape: Shape): Shape {
    if (this.axis !== -1 && this.axis !== inputShape.length) {
      throw new ValueError(`${this.name}: only the last axis can be normalized (axis -1 or ${inputShape.length} for input ` +
        `shape (None, ${inputShape.join(', ')})), got axis ${this.axis}`);
    }
    return inputShape;
  }

  weightSpecs(inputShape: Shape): WeightSpec[] {
    const c = [inputShape[inputShape.length - 1]];
    const init = (values: ArrayLike<number> | null, fill: number, what: string) =>
      valuesInitializer(values ? Array.from(values) : [fill], this.name, what);
    const mean = this.adapted?.mean ?? this.fixedMean;
    const variance = this.adapted?.variance ?? this.fixedVariance;
    return [
      { name: 'mean', shape: c, initializer: init(mean, 0, 'mean'), trainable: false },
      { name: 'variance', shape: c, initializer: init(variance, 1, 'variance'), trainable: false },
      { name: 'count', shape: [], initializer: init(null, this.adapted?.count ?? 0, 'count'), trainable: false },
    ];
  }

  /**
   * Sets mean and variance (biased, as Keras) per channel of the last axis from `data` [..., C],
   * computed natively (the batch-norm kernel's statistics), and count to the number of rows.
   */
  adapt(data: Tensor): void {
    const where = `${this.name}.adapt`;
    if (!(data instanceof Tensor) || data.shape.length < 1 || data.size === 0) {
      throw new ValueError(`${where}: data must be a non-empty tensor [..., channels], got ${describeValue(data)}`);
    }
    const channels = data.shape[data.shape.length - 1];
    const rows = data.size / channels;
    const mean = native.fromArray(new Float32Array(channels), [channels]);
    const variance = native.fromArray(new Float32Array(channels).fill(1), [channels]);
    // momentum 0: the moving statistics become the batch's own mean and biased variance.
    native.batchNormTrain(native.reshape(data.handle, [rows, channels]), null, null, mean, variance, { epsilon: 1e-3, momentum: 0 });
    this.adapted = { mean: mean.dataSync(), variance: variance.dataSync(), count: rows };
    if (this.isBuilt) {
      const specs = this.weightSpecs(this.builtInputShape());
      this.setWeights(specs.map((w) => new Tensor(native.fromArray(w.initializer.generate(w.shape, undefined as never), w.shape))));
    }
  }

  private builtInputShape(): Shape {
    return (this.inputShape as (number | null)[]).slice(1) as Shape;
  }

  lower(): NativeLayerSpec[] {
    return [{ kind: 'normalization', name: this.name }];
  }

  getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), axis: this.axis, mean: this.fixedMean, variance: this.fixedVariance, invert: false };
  }
}
