// Per-step learning-rate schedules, Keras's keras.optimizers.schedules: passed as an optimizer's
// learningRate, evaluated at the optimizer's step count before every training step (fit,
// trainOnBatch, fitDataset), so a rate change takes effect at the next step even with steps
// queued (the change is queued on the model's stream between them).
import { describeValue, ValueError } from './errors';

export interface LearningRateSchedule {
  /** Keras's class name, saved in the optimizer's config. */
  readonly className: 'ExponentialDecay' | 'PiecewiseConstantDecay' | 'CosineDecay';
  /** The rate for the update after `step` completed steps (Keras passes optimizer.iterations). */
  rate(step: number): number;
  getConfig(): Record<string, number | boolean | number[] | null>;
}

type Options = Record<string, unknown>;

function read(where: string, o: unknown, known: string[]): Options {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new ValueError(`${where}: options must be an object, got ${describeValue(o)}`);
  for (const key of Object.keys(o)) {
    if (!known.includes(key)) throw new ValueError(`${where}: unknown option '${key}' (known: ${known.join(', ')})`);
  }
  return o as Options;
}

function numberOf(where: string, o: Options, name: string, def: number | undefined, check: (v: number) => boolean, expected: string): number {
  const v = o[name] ?? def;
  if (typeof v !== 'number' || !Number.isFinite(v) || !check(v)) {
    throw new ValueError(`${where}: ${name} must be ${expected}, got ${describeValue(o[name])}`);
  }
  return v;
}

const nonNegative = (v: number) => v >= 0;
const positive = (v: number) => v > 0;

/** Keras ExponentialDecay: initialLearningRate * decayRate^(step / decaySteps), floored when staircase. */
function exponentialDecay(opts: { initialLearningRate: number; decaySteps: number; decayRate: number; staircase?: boolean }): LearningRateSchedule {
  const where = 'schedules.exponentialDecay';
  const o = read(where, opts, ['initialLearningRate', 'decaySteps', 'decayRate', 'staircase']);
  const initial = numberOf(where, o, 'initialLearningRate', undefined, nonNegative, 'a number >= 0');
  const decaySteps = numberOf(where, o, 'decaySteps', undefined, positive, 'a number > 0');
  const decayRate = numberOf(where, o, 'decayRate', undefined, nonNegative, 'a number >= 0');
  if (o.staircase !== undefined && typeof o.staircase !== 'boolean') throw new ValueError(`${where}: staircase must be a boolean, got ${describeValue(o.staircase)}`);
  const staircase = o.staircase === true;
  return {
    className: 'ExponentialDecay',
    rate(step) {
      const p = step / decaySteps;
      return initial * decayRate ** (staircase ? Math.floor(p) : p);
    },
    getConfig: () => ({ initialLearningRate: initial, decaySteps, decayRate, staircase }),
  };
}

/** Keras PiecewiseConstantDecay: values[0] up to boundaries[0] (inclusive), values[i] up to boundaries[i], then the last. */
function piecewiseConstantDecay(opts: { boundaries: number[]; values: number[] }): LearningRateSchedule {
  const where = 'schedules.piecewiseConstantDecay';
  const o = read(where, opts, ['boundaries', 'values']);
  const { boundaries, values } = o as { boundaries: unknown; values: unknown };
  const numbers = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x));
  if (!numbers(boundaries) || !numbers(values)) throw new ValueError(`${where}: boundaries and values must be arrays of finite numbers`);
  const b = boundaries as number[];
  const v = values as number[];
  if (v.length !== b.length + 1) {
    throw new ValueError(`${where}: values needs one more element than boundaries, got ${v.length} values for ${b.length} boundaries`);
  }
  if (b.some((x, i) => i > 0 && x <= b[i - 1])) throw new ValueError(`${where}: boundaries must increase, got [${b.join(', ')}]`);
  if (v.some((x) => x < 0)) throw new ValueError(`${where}: values must be >= 0, got [${v.join(', ')}]`);
  return {
    className: 'PiecewiseConstantDecay',
    rate(step) {
      const i = b.findIndex((boundary) => step <= boundary);
      return v[i < 0 ? v.length - 1 : i];
    },
    getConfig: () => ({ boundaries: [...b], values: [...v] }),
  };
}

/**
 * Keras CosineDecay: with warmupTarget, a linear warmup from initialLearningRate to warmupTarget
 * over warmupSteps, then cosine decay from warmupTarget over decaySteps; without, cosine decay
 * from initialLearningRate. Decay: from * ((1 - alpha) * 0.5 * (1 + cos(pi * t / decaySteps)) + alpha),
 * t capped at decaySteps.
 */
function cosineDecay(opts: { initialLearningRate: number; decaySteps: number; alpha?: number; warmupTarget?: number | null; warmupSteps?: number }): LearningRateSchedule {
  const where = 'schedules.cosineDecay';
  const o = read(where, opts, ['initialLearningRate', 'decaySteps', 'alpha', 'warmupTarget', 'warmupSteps']);
  const initial = numberOf(where, o, 'initialLearningRate', undefined, nonNegative, 'a number >= 0');
  const decaySteps = numberOf(where, o, 'decaySteps', undefined, positive, 'a number > 0');
  const alpha = numberOf(where, o, 'alpha', 0, (v) => v >= 0 && v <= 1, 'a number in [0, 1]');
  const warmupTarget = o.warmupTarget === undefined || o.warmupTarget === null ? null : numberOf(where, o, 'warmupTarget', undefined, nonNegative, 'a number >= 0 or null');
  const warmupSteps = numberOf(where, o, 'warmupSteps', 0, nonNegative, 'a number >= 0');
  const decay = (step: number, from: number) => from * ((1 - alpha) * 0.5 * (1 + Math.cos((Math.PI * step) / decaySteps)) + alpha);
  return {
    className: 'CosineDecay',
    rate(step) {
      if (warmupTarget === null) return decay(Math.min(step, decaySteps), initial);
      const s = Math.min(step, decaySteps + warmupSteps);
      if (s < warmupSteps) return initial + ((warmupTarget - initial) * s) / warmupSteps;
      return decay(s - warmupSteps, warmupTarget);
    },
    getConfig: () => ({ initialLearningRate: initial, decaySteps, alpha, warmupTarget, warmupSteps }),
  };
}

export const schedules = { exponentialDecay, piecewiseConstantDecay, cosineDecay };

export function isSchedule(v: unknown): v is LearningRateSchedule {
  return !!v && typeof v === 'object' && typeof (v as LearningRateSchedule).rate === 'function' && 'className' in v;
}

const camel = (key: string) => key.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());

/**
 * A schedule from a saved optimizer config's learning rate: convkit's and tfjs's
 * { className, config } or Keras's { class_name, config } with snake_case names (its `name`
 * passed over).
 */
export function scheduleFromConfig(v: Record<string, unknown>, where: string): LearningRateSchedule {
  const name = String(v.className ?? v.class_name ?? '');
  const config = (v.config && typeof v.config === 'object' ? v.config : {}) as Options;
  const opts: Options = {};
  for (const [key, value] of Object.entries(config)) {
    if (key !== 'name' && value !== undefined) opts[camel(key)] = value;
  }
  switch (name) {
    case 'ExponentialDecay': return exponentialDecay(opts as never);
    case 'PiecewiseConstantDecay': return piecewiseConstantDecay(opts as never);
    case 'CosineDecay': return cosineDecay(opts as never);
    default:
      throw new ValueError(`${where}: learning-rate schedule '${name}' is not one convkit has (known: ExponentialDecay, PiecewiseConstantDecay, CosineDecay)`);
  }
}
