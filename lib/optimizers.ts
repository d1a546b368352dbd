// Optimizers with Keras's names, defaults and update rules (the updates run natively, fused
// over all parameters; see native/core/cpu/optimizer_ref.cpp).
import { describeValue, ValueError } from './errors';

export type OptimizerKind = 'sgd' | 'adam' | 'adamw' | 'rmsprop';

export interface Optimizer {
  readonly kind: OptimizerKind;
  /** The Keras/tfjs class name used when saving. */
  readonly className: string;
  learningRate: number;
  /** Everything the native update needs (and Keras's config names in camelCase). */
  getConfig(): Record<string, number | boolean>;
}

function checked(v: unknown, def: number, name: string, lo: number, hi: number): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi) {
    throw new ValueError(`optimizer: ${name} must be a number in [${lo}, ${hi}], got ${describeValue(v)}`);
  }
  return v;
}

function make(kind: OptimizerKind, className: string, learningRate: number, rest: Record<string, number | boolean>): Optimizer {
  return {
    kind,
    className,
    learningRate,
    getConfig() {
      return { learningRate: this.learningRate, ...rest };
    },
  };
}

export const optimizers = {
  /** Keras SGD: lr 0.01, momentum 0, nesterov false. */
  sgd(opts: { learningRate?: number; momentum?: number; nesterov?: boolean } = {}): Optimizer {
    return make('sgd', 'SGD', checked(opts.learningRate, 0.01, 'learningRate', 0, 1e6), {
      momentum: checked(opts.momentum, 0, 'momentum', 0, 1), nesterov: opts.nesterov ?? false,
    });
  },
  /** Keras Adam: lr 0.001, beta1 0.9, beta2 0.999, epsilon 1e-7. */
  adam(opts: { learningRate?: number; beta1?: number; beta2?: number; epsilon?: number } = {}): Optimizer {
    return make('adam', 'Adam', checked(opts.learningRate, 0.001, 'learningRate', 0, 1e6), {
      beta1: checked(opts.beta1, 0.9, 'beta1', 0, 1), beta2: checked(opts.beta2, 0.999, 'beta2', 0, 1),
      epsilon: checked(opts.epsilon, 1e-7, 'epsilon', 0, 1),
    });
  },
  /** Keras AdamW: Adam with decoupled weight decay 0.004. */
  adamw(opts: { learningRate?: number; beta1?: number; beta2?: number; epsilon?: number; weightDecay?: number } = {}): Optimizer {
    return make('adamw', 'AdamW', checked(opts.learningRate, 0.001, 'learningRate', 0, 1e6), {
      beta1: checked(opts.beta1, 0.9, 'beta1', 0, 1), beta2: checked(opts.beta2, 0.999, 'beta2', 0, 1),
      epsilon: checked(opts.epsilon, 1e-7, 'epsilon', 0, 1), weightDecay: checked(opts.weightDecay, 0.004, 'weightDecay', 0, 1e6),
    });
  },
  /** Keras RMSprop: lr 0.001, rho 0.9, momentum 0, epsilon 1e-7, centered false. */
  rmsprop(opts: { learningRate?: number; rho?: number; momentum?: number; epsilon?: number; centered?: boolean } = {}): Optimizer {
    return make('rmsprop', 'RMSprop', checked(opts.learningRate, 0.001, 'learningRate', 0, 1e6), {
      rho: checked(opts.rho, 0.9, 'rho', 0, 1), momentum: checked(opts.momentum, 0, 'momentum', 0, 1),
      epsilon: checked(opts.epsilon, 1e-7, 'epsilon', 0, 1), centered: opts.centered ?? false,
    });
  },
};

const names: Record<string, OptimizerKind> = { sgd: 'sgd', adam: 'adam', adamw: 'adamw', rmsprop: 'rmsprop' };

/** An optimizer from a name ('adam', any case) or an optimizer object. */
export function getOptimizer(v: unknown): Optimizer {
  if (typeof v === 'string') {
    const kind = names[v.toLowerCase()];
    if (!kind) throw new ValueError(`compile: unknown optimizer '${v}' (known: sgd, adam, adamw, rmsprop)`);
    return optimizers[kind]();
  }
  if (v && typeof v === 'object' && 'kind' in v && typeof (v as Optimizer).getConfig === 'function') {
    return v as Optimizer;
  }
  throw new ValueError(`compile: optimizer must be a name or a ck.optimizers.* object, got ${describeValue(v)}`);
}
