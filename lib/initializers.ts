// Weight initializers with Keras's names, defaults and formulas (fan_in/fan_out as Keras
// computes them for dense [in,out] and conv [kH,kW,in,out] kernels), drawn from a seeded RNG.
import { describeValue, ValueError } from './errors';
import { Rng } from './rng';

export interface Initializer {
  className: string;
  config: Record<string, unknown>;
  generate(shape: readonly number[], rng: Rng): Float32Array;
}

function fans(shape: readonly number[]): [number, number] {
  if (shape.length < 1) return [1, 1];
  if (shape.length === 1) return [shape[0], shape[0]];
  if (shape.length === 2) return [shape[0], shape[1]];
  const receptive = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  return [shape[shape.length - 2] * receptive, shape[shape.length - 1] * receptive];
}

const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

function constant(className: string, value: number): Initializer {
  return { className, config: {}, generate: (shape) => new Float32Array(size(shape)).fill(value) };
}

type Mode = 'fanIn' | 'fanOut' | 'fanAvg';
type Distribution = 'normal' | 'truncatedNormal' | 'uniform';

/** Keras VarianceScaling: the family behind glorot* and he*. */
export function varianceScaling(opts: { scale?: number; mode?: Mode; distribution?: Distribution; seed?: number } = {},
  className = 'VarianceScaling'): Initializer {
  const scale = opts.scale ?? 1;
  const mode = opts.mode ?? 'fanIn';
  const distribution = opts.distribution ?? 'truncatedNormal';
  return {
    className,
    // Serialized with Keras's values (fan_avg, truncated_normal).
    config: { scale, mode: mode.replace(/([A-Z])/g, '_$1').toLowerCase(), distribution: distribution.replace(/([A-Z])/g, '_$1').toLowerCase(), seed: opts.seed ?? null },
    generate(shape, rng) {
      const [fanIn, fanOut] = fans(shape);
      const n = mode === 'fanIn' ? fanIn : mode === 'fanOut' ? fanOut : (fanIn + fanOut) / 2;
      const variance = scale / Math.max(1, n);
      const out = new Float32Array(size(shape));
      if (distribution === 'uniform') {
        const limit = Math.sqrt(3 * variance);
        for (let i = 0; i < out.length; i++) out[i] = (rng.uniform() * 2 - 1) * limit;
      } else if (distribution === 'normal') {
        const std = Math.sqrt(variance);
        for (let i = 0; i < out.length; i++) out[i] = rng.normal() * std;
      } else {
        // A normal truncated at 2 sigma has std 0.8796 of the untruncated one; Keras divides it out.
        const std = Math.sqrt(variance) / 0.87962566103423978;
        for (let i = 0; i < out.length; i++) out[i] = rng.truncatedNormal() * std;
      }
      return out;
    },
  };
}

export const initializers = {
  zeros: (): Initializer => constant('Zeros', 0),
  ones: (): Initializer => constant('Ones', 1),
  constant: (opts: { value: number }): Initializer => ({ ...constant('Constant', opts.value), config: { value: opts.value } }),
  glorotUniform: (opts: { seed?: number } = {}) => varianceScaling({ scale: 1, mode: 'fanAvg', distribution: 'uniform', ...opts }, 'GlorotUniform'),
  glorotNormal: (opts: { seed?: number } = {}) => varianceScaling({ scale: 1, mode: 'fanAvg', distribution: 'truncatedNormal', ...opts }, 'GlorotNormal'),
  heNormal: (opts: { seed?: number } = {}) => varianceScaling({ scale: 2, mode: 'fanIn', distribution: 'truncatedNormal', ...opts }, 'HeNormal'),
  heUniform: (opts: { seed?: number } = {}) => varianceScaling({ scale: 2, mode: 'fanIn', distribution: 'uniform', ...opts }, 'HeUniform'),
  leCunNormal: (opts: { seed?: number } = {}) => varianceScaling({ scale: 1, mode: 'fanIn', distribution: 'truncatedNormal', ...opts }, 'LeCunNormal'),
  randomNormal: (opts: { mean?: number; stddev?: number; seed?: number } = {}): Initializer => {
    const mean = opts.mean ?? 0;
    const stddev = opts.stddev ?? 0.05;
    return {
      className: 'RandomNormal',
      config: { mean, stddev, seed: opts.seed ?? null },
      generate(shape, rng) {
        const out = new Float32Array(size(shape));
        for (let i = 0; i < out.length; i++) out[i] = mean + rng.normal() * stddev;
        return out;
      },
    };
  },
  randomUniform: (opts: { minval?: number; maxval?: number; seed?: number } = {}): Initializer => {
    const lo = opts.minval ?? -0.05;
    const hi = opts.maxval ?? 0.05;
    return {
      className: 'RandomUniform',
      config: { minval: lo, maxval: hi, seed: opts.seed ?? null },
      generate(shape, rng) {
        const out = new Float32Array(size(shape));
        for (let i = 0; i < out.length; i++) out[i] = lo + rng.uniform() * (hi - lo);
        return out;
      },
    };
  },
};

export type InitializerName = keyof typeof initializers;
const byName: Record<string, () => Initializer> = {
  zeros: initializers.zeros, ones: initializers.ones, glorotUniform: initializers.glorotUniform,
  glorotNormal: initializers.glorotNormal, heNormal: initializers.heNormal, heUniform: initializers.heUniform,
  leCunNormal: initializers.leCunNormal, randomNormal: initializers.randomNormal, randomUniform: initializers.randomUniform,
};
// tfjs/Keras serialized class names.
const byClass: Record<string, (config: Record<string, unknown>) => Initializer> = {
  Zeros: () => initializers.zeros(),
  Ones: () => initializers.ones(),
  Constant: (c) => initializers.constant({ value: Number(c.value ?? 0) }),
  GlorotUniform: () => initializers.glorotUniform(),
  GlorotNormal: () => initializers.glorotNormal(),
  HeNormal: () => initializers.heNormal(),
  HeUniform: () => initializers.heUniform(),
  LeCunNormal: () => initializers.leCunNormal(),
  RandomNormal: (c) => initializers.randomNormal({ mean: c.mean as number, stddev: c.stddev as number }),
  RandomUniform: (c) => initializers.randomUniform({ minval: c.minval as number, maxval: c.maxval as number }),
  VarianceScaling: (c) => varianceScaling({
    scale: c.scale as number, mode: normalizeMode(c.mode), distribution: normalizeDistribution(c.distribution),
  }),
};

function normalizeMode(m: unknown): Mode {
  const s = String(m ?? 'fanIn').replace('_', '').toLowerCase();
  return s === 'fanout' ? 'fanOut' : s === 'fanavg' ? 'fanAvg' : 'fanIn';
}
function normalizeDistribution(d: unknown): Distribution {
  const s = String(d ?? 'truncatedNormal').replace('_', '').toLowerCase();
  return s === 'uniform' ? 'uniform' : s === 'normal' || s === 'untruncatednormal' ? 'normal' : 'truncatedNormal';
}

/** An initializer from a name ('heNormal'), a serialized {className, config}, or an object. */
export function getInitializer(v: unknown, where: string): Initializer {
  if (v === undefined) throw new ValueError(`${where}: initializer missing`);
  if (typeof v === 'string') {
    const make = byName[v];
    if (!make) throw new ValueError(`${where}: unknown initializer '${v}' (known: ${Object.keys(byName).join(', ')})`);
    return make();
  }
  if (v && typeof v === 'object') {
    const o = v as Partial<Initializer> & { config?: Record<string, unknown> };
    if (typeof o.generate === 'function' && typeof o.className === 'string') return o as Initializer;
    const make = typeof o.className === 'string' ? byClass[o.className] : undefined;
    if (make) return make(o.config ?? {});
  }
  throw new ValueError(`${where}: unknown initializer ${describeValue(v)}`);
}
