// Losses with Keras's names, options and formulas (computed natively in the training step; see
// native/core/cpu/loss_ref.cpp). compile takes a name (tfjs camelCase, Keras snake_case or class
// name), a ck.losses object, or a saved { className | class_name, config }. A user loss function
// is not possible: the step has no automatic differentiation to take its gradient.
import { describeValue, ValueError } from './errors';

export type LossName = 'categoricalCrossentropy' | 'sparseCategoricalCrossentropy' | 'binaryCrossentropy' | 'meanSquaredError' | 'huber' | 'kld';

export interface Loss {
  /** The loss the native step computes. */
  readonly name: LossName;
  /** The Keras class name used when saving. */
  readonly className: string;
  /** The cross-entropies: the output holds logits (no softmax or sigmoid on it). */
  readonly fromLogits: boolean;
  /** The categorical cross-entropies: targets become t * (1 - s) + s / classes. */
  readonly labelSmoothing: number;
  /** Huber: where the loss turns from quadratic to linear. */
  readonly delta: number;
  /** Keras's config (snake_case), as saved in the training config. */
  getConfig(): Record<string, number | boolean | string>;
}

const classNames: Record<LossName, string> = {
  categoricalCrossentropy: 'CategoricalCrossentropy',
  sparseCategoricalCrossentropy: 'SparseCategoricalCrossentropy',
  binaryCrossentropy: 'BinaryCrossentropy',
  meanSquaredError: 'MeanSquaredError',
  huber: 'Huber',
  kld: 'KLDivergence',
};

// Keras's default `name` of each class's instances.
const kerasNames: Record<LossName, string> = {
  categoricalCrossentropy: 'categorical_crossentropy',
  sparseCategoricalCrossentropy: 'sparse_categorical_crossentropy',
  binaryCrossentropy: 'binary_crossentropy',
  meanSquaredError: 'mean_squared_error',
  huber: 'huber_loss',
  kld: 'kl_divergence',
};

const aliases: Record<string, LossName> = {
  categoricalCrossentropy: 'categoricalCrossentropy',
  categorical_crossentropy: 'categoricalCrossentropy',
  sparseCategoricalCrossentropy: 'sparseCategoricalCrossentropy',
  sparse_categorical_crossentropy: 'sparseCategoricalCrossentropy',
  binaryCrossentropy: 'binaryCrossentropy',
  binary_crossentropy: 'binaryCrossentropy',
  meanSquaredError: 'meanSquaredError',
  mean_squared_error: 'meanSquaredError',
  mse: 'meanSquaredError',
  huber: 'huber',
  huber_loss: 'huber',
  huberLoss: 'huber',
  kld: 'kld',
  kl_divergence: 'kld',
  kullback_leibler_divergence: 'kld',
  klDivergence: 'kld',
  kullbackLeiblerDivergence: 'kld',
};
for (const [name, cls] of Object.entries(classNames)) aliases[cls] = name as LossName;

// The options each loss takes (camelCase), as Keras's constructors do.
const optionsOf: Record<LossName, readonly string[]> = {
  categoricalCrossentropy: ['fromLogits', 'labelSmoothing'],
  sparseCategoricalCrossentropy: ['fromLogits', 'labelSmoothing'],
  binaryCrossentropy: ['fromLogits'],
  meanSquaredError: [],
  huber: ['delta'],
  kld: [],
};

const snake: Record<string, string> = { fromLogits: 'from_logits', labelSmoothing: 'label_smoothing', delta: 'delta' };

function make(name: LossName, args: unknown, where: string): Loss {
  const known = optionsOf[name];
  if (args !== undefined && (args === null || typeof args !== 'object' || Array.isArray(args))) {
    throw new ValueError(`${where}: options must be an object, got ${describeValue(args)}`);
  }
  const o = (args ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!known.includes(key)) throw new ValueError(`${where}: unknown option '${key}' (known: ${known.join(', ') || 'none'})`);
  }
  const fromLogits = o.fromLogits ?? false;
  if (typeof fromLogits !== 'boolean') throw new ValueError(`${where}: fromLogits must be a boolean, got ${describeValue(fromLogits)}`);
  const labelSmoothing = o.labelSmoothing ?? 0;
  if (typeof labelSmoothing !== 'number' || !(labelSmoothing >= 0 && labelSmoothing <= 1)) {
    throw new ValueError(`${where}: labelSmoothing must be a number in [0, 1], got ${describeValue(labelSmoothing)}`);
  }
  const delta = o.delta ?? 1;
  if (typeof delta !== 'number' || !Number.isFinite(delta) || delta <= 0) {
    throw new ValueError(`${where}: delta must be a finite number > 0, got ${describeValue(delta)}`);
  }
  return {
    name, className: classNames[name], fromLogits, labelSmoothing, delta,
    getConfig() {
      const config: Record<string, number | boolean | string> = { name: kerasNames[name], reduction: 'sum_over_batch_size' };
      const values: Record<string, number | boolean> = { fromLogits, labelSmoothing, delta };
      for (const key of known) config[snake[key]] = values[key];
      return config;
    },
  };
}

export const losses = {
  /** Keras CategoricalCrossentropy: one-hot (or soft) targets. */
  categoricalCrossentropy(args?: { fromLogits?: boolean; labelSmoothing?: number }): Loss {
    return make('categoricalCrossentropy', args, 'losses.categoricalCrossentropy');
  },
  /** Keras SparseCategoricalCrossentropy: one class id per example (or per pixel). */
  sparseCategoricalCrossentropy(args?: { fromLogits?: boolean; labelSmoothing?: number }): Loss {
    return make('sparseCategoricalCrossentropy', args, 'losses.sparseCategoricalCrossentropy');
  },
  /** Keras BinaryCrossentropy: the mean over the outputs of each example. */
  binaryCrossentropy(args?: { fromLogits?: boolean }): Loss {
    return make('binaryCrossentropy', args, 'losses.binaryCrossentropy');
  },
  /** Keras MeanSquaredError. */
  meanSquaredError(): Loss {
    return make('meanSquaredError', undefined, 'losses.meanSquaredError');
  },
  /** Keras Huber: 0.5 d² where |d| <= delta, else delta (|d| - 0.5 delta); mean over the outputs. */
  huber(args?: { delta?: number }): Loss {
    return make('huber', args, 'losses.huber');
  },
  /** Keras KLDivergence: sum over the outputs of t log(t / p), both clipped to [1e-7, 1]. */
  kld(): Loss {
    return make('kld', undefined, 'losses.kld');
  },
};

/** A Loss from compile's `loss`: a name, a ck.losses object, or a saved { className, config }. */
export function getLoss(v: unknown): Loss {
  if (typeof v === 'string') {
    const name = aliases[v];
    if (name) return make(name, undefined, 'compile');
  } else if (v && typeof v === 'object' && typeof (v as Loss).getConfig === 'function' && 'fromLogits' in v) {
    return v as Loss;
  } else if (v && typeof v === 'object') {
    // Saved: tfjs's { className, config } or Keras's { class_name, config }, config in either case.
    const o = v as Record<string, unknown>;
    const name = aliases[String(o.className ?? o.class_name ?? '')];
    if (name) {
      const config = (o.config ?? {}) as Record<string, unknown>;
      const args: Record<string, unknown> = {};
      for (const key of optionsOf[name]) {
        const value = config[key] ?? config[snake[key]];
        if (value !== undefined) args[key] = value;
      }
      return make(name, args, 'compile');
    }
  }
  throw new ValueError(`compile: unknown loss ${describeValue(v)} (known: ${Object.keys(aliases).join(', ')}, or a ck.losses object)`);
}

/** What the training config saves: the name when every option is Keras's default, else { class_name, config }. */
export function lossToJson(loss: Loss): string | { class_name: string; config: Record<string, unknown> } {
  const defaults = make(loss.name, undefined, 'save');
  if (loss.fromLogits === defaults.fromLogits && loss.labelSmoothing === defaults.labelSmoothing && loss.delta === defaults.delta) {
    return loss.name;
  }
  return { class_name: loss.className, config: loss.getConfig() };
}
