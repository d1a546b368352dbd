// Optimizers with Keras's names, defaults and update rules (the updates run natively, fused
// over all parameters; see native/core/cpu/optimizer_ref.cpp).
import { describeValue, ValueError } from './errors';
import { isSchedule, LearningRateSchedule, scheduleFromConfig, schedules } from './schedules';

export type OptimizerKind = 'sgd' | 'adam' | 'adamw' | 'rmsprop' | 'adagrad' | 'nadam';

/**
 * What every optimizer takes besides its own settings, as Keras 3 names them: gradient clipping
 * (at most one of the three) and decoupled weight decay (w -= w * weightDecay * learningRate
 * before each update; AdamW's defaults to 0.004, the others' to none).
 */
export interface CommonOptions {
  /** Each weight's gradient scaled down to this L2 norm when above it. */
  clipnorm?: number;
  /** Each gradient element clipped to [-clipvalue, clipvalue]. */
  clipvalue?: number;
  /** All gradients scaled together to this global L2 norm when above it. */
  globalClipnorm?: number;
  weightDecay?: number;
  /**
   * Keras 3's gradient accumulation: each batch's gradients are summed into a buffer (natively),
   * and every N-th batch the optimizer applies their mean as one update (clipped as one gradient;
   * weight decay and the update's step, e.g. Adam's bias correction, count updates). The loss is
   * still logged for every batch, and a per-step learning-rate schedule still gets the number of
   * batches so far (Keras's optimizer._iterations). An integer >= 2; unset, every batch updates.
   */
  gradientAccumulationSteps?: number;
}

/** A saved schedule: { className, config }. */
export type ScheduleConfig = { className: string; config: ReturnType<LearningRateSchedule['getConfig']> };

export interface Optimizer {
  readonly kind: OptimizerKind;
  /** The Keras/tfjs class name used when saving. */
  readonly className: string;
  /** The rate in force (with a schedule: the one it gave for the latest step). */
  learningRate: number;
  /** The per-step schedule given as learningRate, if any. */
  readonly schedule?: LearningRateSchedule;
  /** Everything the native update needs (and Keras's config names in camelCase). */
  getConfig(): Record<string, number | boolean | ScheduleConfig>;
}

type Options = Record<string, unknown>;

/** Reads the user's options object: unknown keys (a misspelled `beta_2`) are errors, not defaults. */
function readOptions(kind: OptimizerKind, opts: unknown, known: readonly string[]): Options {
  if (opts === undefined) return {};
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) {
    throw new ValueError(`optimizers.${kind}: options must be an object, got ${describeValue(opts)}`);
  }
  for (const key of Object.keys(opts)) {
    if (!known.includes(key)) {
      throw new ValueError(`optimizers.${kind}: unknown option '${key}' (known: ${known.join(', ')})`);
    }
  }
  return opts as Options;
}

/** A number in [lo, hi] (hi excluded when `open`), or the default when absent. */
function num(kind: OptimizerKind, o: Options, name: string, def: number, lo: number, hi: number, open = false): number {
  const v = o[name];
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || (open ? v >= hi : v > hi)) {
    throw new ValueError(`optimizers.${kind}: ${name} must be a number in [${lo}, ${hi}${open ? ')' : ']'}, got ${describeValue(v)}`);
  }
  return v;
}

function bool(kind: OptimizerKind, o: Options, name: string): boolean {
  const v = o[name];
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw new ValueError(`optimizers.${kind}: ${name} must be a boolean, got ${describeValue(v)}`);
  return v;
}

const clipNames = ['clipnorm', 'clipvalue', 'globalClipnorm'] as const;
const commonNames = [...clipNames, 'weightDecay', 'gradientAccumulationSteps'];

/** The clipping and weight decay options given (absent ones stay out of the config, as unset). */
function common(kind: OptimizerKind, o: Options): Record<string, number> {
  const out: Record<string, number> = {};
  const clips = clipNames.filter((name) => o[name] !== undefined);
  if (clips.length > 1) {
    throw new ValueError(`optimizers.${kind}: only one of clipnorm, clipvalue and globalClipnorm can be set, got ${clips.join(' and ')}`);
  }
  for (const name of clips) {
    const v = o[name];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw new ValueError(`optimizers.${kind}: ${name} must be a number > 0, got ${describeValue(v)}`);
    }
    out[name] = v;
  }
  if (o.weightDecay !== undefined && kind !== 'adamw') out.weightDecay = num(kind, o, 'weightDecay', 0, 0, 1e6);
  const steps = o.gradientAccumulationSteps;
  if (steps !== undefined) {
    if (typeof steps !== 'number' || !Number.isInteger(steps) || steps < 2 || steps > 2 ** 24) {
      throw new ValueError(`optimizers.${kind}: gradientAccumulationSteps must be an integer >= 2, got ${describeValue(steps)}`);
    }
    out.gradientAccumulationSteps = steps;
  }
  return out;
}

function make(kind: OptimizerKind, className: string, o: Options, def: number, rest: Record<string, number | boolean>): Optimizer {
  const extra = common(kind, o);
  const schedule = isSchedule(o.learningRate) ? o.learningRate : undefined;
  return {
    kind,
    className,
    learningRate: schedule ? schedule.rate(0) : num(kind, o, 'learningRate', def, 0, 1e6),
    schedule,
    getConfig() {
      const learningRate = schedule ? { className: schedule.className, config: schedule.getConfig() } : this.learningRate;
      return { learningRate, ...rest, ...extra };
    },
  };
}

// Adam's bias correction divides by 1 - beta^t: a beta of 1 is refused, as Keras does.
const adamBetas = (kind: OptimizerKind, o: Options) => ({
  beta1: num(kind, o, 'beta1', 0.9, 0, 1, true), beta2: num(kind, o, 'beta2', 0.999, 0, 1, true),
  epsilon: num(kind, o, 'epsilon', 1e-7, 0, 1),
});

/** Each optimizer's option names, as its factory reads them and getConfig writes them. */
const optionNames: Record<OptimizerKind, readonly string[]> = {
  sgd: ['learningRate', 'momentum', 'nesterov', ...commonNames],
  adam: ['learningRate', 'beta1', 'beta2', 'epsilon', ...commonNames],
  adamw: ['learningRate', 'beta1', 'beta2', 'epsilon', ...commonNames],
  rmsprop: ['learningRate', 'rho', 'momentum', 'epsilon', 'centered', ...commonNames],
  adagrad: ['learningRate', 'initialAccumulatorValue', 'epsilon', ...commonNames],
  nadam: ['learningRate', 'beta1', 'beta2', 'epsilon', ...commonNames],
};

export const optimizers = {
  /** Keras SGD: lr 0.01, momentum 0, nesterov false. */
  sgd(opts: { learningRate?: number | LearningRateSchedule; momentum?: number; nesterov?: boolean } & CommonOptions = {}): Optimizer {
    const o = readOptions('sgd', opts, optionNames.sgd);
    return make('sgd', 'SGD', o, 0.01, {
      momentum: num('sgd', o, 'momentum', 0, 0, 1), nesterov: bool('sgd', o, 'nesterov'),
    });
  },
  /** Keras Adam: lr 0.001, beta1 0.9, beta2 0.999, epsilon 1e-7. */
  adam(opts: { learningRate?: number | LearningRateSchedule; beta1?: number; beta2?: number; epsilon?: number } & CommonOptions = {}): Optimizer {
    const o = readOptions('adam', opts, optionNames.adam);
    return make('adam', 'Adam', o, 0.001, adamBetas('adam', o));
  },
  /** Keras AdamW: Adam with decoupled weight decay 0.004. */
  adamw(opts: { learningRate?: number | LearningRateSchedule; beta1?: number; beta2?: number; epsilon?: number } & CommonOptions = {}): Optimizer {
    const o = readOptions('adamw', opts, optionNames.adamw);
    return make('adamw', 'AdamW', o, 0.001, {
      ...adamBetas('adamw', o), weightDecay: num('adamw', o, 'weightDecay', 0.004, 0, 1e6),
    });
  },
  /** Keras RMSprop: lr 0.001, rho 0.9, momentum 0, epsilon 1e-7, centered false. */
  rmsprop(opts: { learningRate?: number | LearningRateSchedule; rho?: number; momentum?: number; epsilon?: number; centered?: boolean } & CommonOptions = {}): Optimizer {
    const o = readOptions('rmsprop', opts, optionNames.rmsprop);
    return make('rmsprop', 'RMSprop', o, 0.001, {
      rho: num('rmsprop', o, 'rho', 0.9, 0, 1), momentum: num('rmsprop', o, 'momentum', 0, 0, 1),
      epsilon: num('rmsprop', o, 'epsilon', 1e-7, 0, 1), centered: bool('rmsprop', o, 'centered'),
    });
  },
  /** Keras Adagrad: lr 0.001, initialAccumulatorValue 0.1, epsilon 1e-7. */
  adagrad(opts: { learningRate?: number | LearningRateSchedule; initialAccumulatorValue?: number; epsilon?: number } & CommonOptions = {}): Optimizer {
    const o = readOptions('adagrad', opts, optionNames.adagrad);
    return make('adagrad', 'Adagrad', o, 0.001, {
      initialAccumulatorValue: num('adagrad', o, 'initialAccumulatorValue', 0.1, 0, 1e6),
      epsilon: num('adagrad', o, 'epsilon', 1e-7, 0, 1),
    });
  },
  /** Keras Nadam: lr 0.001, beta1 0.9, beta2 0.999, epsilon 1e-7 (Keras 3's momentum schedule). */
  nadam(opts: { learningRate?: number | LearningRateSchedule; beta1?: number; beta2?: number; epsilon?: number } & CommonOptions = {}): Optimizer {
    const o = readOptions('nadam', opts, optionNames.nadam);
    return make('nadam', 'Nadam', o, 0.001, adamBetas('nadam', o));
  },
  /** Per-step learning-rate schedules to pass as learningRate (Keras's keras.optimizers.schedules). */
  schedules,
};

const names: Record<string, OptimizerKind> = {
  sgd: 'sgd', adam: 'adam', adamw: 'adamw', rmsprop: 'rmsprop', adagrad: 'adagrad', nadam: 'nadam',
};
const knownNames = Object.keys(names).join(', ');

/** An optimizer from a name ('adam', any case) or an optimizer object. */
export function getOptimizer(v: unknown): Optimizer {
  if (typeof v === 'string') {
    const kind = names[v.toLowerCase()];
    if (!kind) throw new ValueError(`compile: unknown optimizer '${v}' (known: ${knownNames})`);
    return optimizers[kind]();
  }
  if (v && typeof v === 'object' && 'kind' in v && typeof (v as Optimizer).getConfig === 'function') {
    return v as Optimizer;
  }
  throw new ValueError(`compile: optimizer must be a name or a ck.optimizers.* object, got ${describeValue(v)}`);
}

// Keras's snake_case config names and tfjs's spellings (tfjs's RMSProp calls rho `decay`, its
// Momentum optimizer is SGD with momentum) mapped to convkit's option names.
const kerasNames: Record<string, string> = {
  learning_rate: 'learningRate', lr: 'learningRate', beta_1: 'beta1', beta_2: 'beta2', weight_decay: 'weightDecay',
  useNesterov: 'nesterov', use_nesterov: 'nesterov', global_clipnorm: 'globalClipnorm',
  initial_accumulator_value: 'initialAccumulatorValue', gradient_accumulation_steps: 'gradientAccumulationSteps',
};
const classKinds: Record<string, OptimizerKind> = { ...names, momentum: 'sgd' };

/**
 * The optimizer a saved training config names (convkit's, Keras's or tfjs's class name and config),
 * with every setting convkit has read from it; settings convkit has no use for (a name, use_ema)
 * are passed over. An optimizer convkit does not have is a ValueError.
 */
export function optimizerFromConfig(className: unknown, config: unknown): Optimizer {
  const kind = classKinds[String(className).toLowerCase()];
  if (!kind) throw new ValueError(`loadModel: optimizer '${String(className)}' is not one convkit has (known: SGD, Adam, AdamW, RMSprop, Adagrad, Nadam)`);
  const opts: Options = {};
  const entries = config && typeof config === 'object' ? Object.entries(config as Options) : [];
  for (const [key, value] of entries) {
    const name = className === 'RMSProp' && key === 'decay' ? 'rho' : (kerasNames[key] ?? key);
    if (!optionNames[kind].includes(name) || value === null || value === undefined) continue;
    opts[name] = name === 'learningRate' && typeof value === 'object' ? scheduleFromConfig(value as Options, 'loadModel') : value;
  }
  return optimizers[kind](opts);
}
