// Weight regularizers with Keras's and tfjs's names: a penalty on a layer's kernel or bias added to
// the training loss (and to the logged loss, as Keras logs it), its gradient added natively in the
// step. L1: l1 * sum |w|; L2: l2 * sum w^2 (Keras's, without a factor 1/2).
import { describeValue, ValueError } from './errors';

export interface Regularizer {
  /** The Keras/tfjs class name used when saving: 'L1', 'L2' or 'L1L2'. */
  readonly className: 'L1' | 'L2' | 'L1L2';
  readonly l1: number;
  readonly l2: number;
  getConfig(): Record<string, number>;
}

function factor(where: string, name: string, v: unknown, def: number): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new ValueError(`${where}: ${name} must be a finite number >= 0, got ${describeValue(v)}`);
  }
  return v;
}

function readArgs(where: string, args: unknown, known: string[]): Record<string, unknown> {
  if (args === undefined) return {};
  if (args === null || typeof args !== 'object' || Array.isArray(args)) {
    throw new ValueError(`${where}: options must be an object like { ${known.map((k) => `${k}: 0.01`).join(', ')} }, got ${describeValue(args)}`);
  }
  for (const key of Object.keys(args)) {
    if (!known.includes(key)) throw new ValueError(`${where}: unknown option '${key}' (known: ${known.join(', ')})`);
  }
  return args as Record<string, unknown>;
}

function make(className: Regularizer['className'], l1: number, l2: number): Regularizer {
  return {
    className, l1, l2,
    getConfig(): Record<string, number> {
      if (className === 'L1') return { l1 };
      return className === 'L2' ? { l2 } : { l1, l2 };
    },
  };
}

export const regularizers = {
  /** tfjs's l1({ l1 }) (Keras L1): l1 * sum |w|, l1 0.01 by default. */
  l1(args?: { l1?: number }): Regularizer {
    const o = readArgs('regularizers.l1', args, ['l1']);
    return make('L1', factor('regularizers.l1', 'l1', o.l1, 0.01), 0);
  },
  /** tfjs's l2({ l2 }) (Keras L2): l2 * sum w^2, l2 0.01 by default. */
  l2(args?: { l2?: number }): Regularizer {
    const o = readArgs('regularizers.l2', args, ['l2']);
    return make('L2', 0, factor('regularizers.l2', 'l2', o.l2, 0.01));
  },
  /** tfjs's l1l2({ l1, l2 }) (Keras l1_l2): both, 0.01 each by default. */
  l1l2(args?: { l1?: number; l2?: number }): Regularizer {
    const o = readArgs('regularizers.l1l2', args, ['l1', 'l2']);
    return make('L1L2', factor('regularizers.l1l2', 'l1', o.l1, 0.01), factor('regularizers.l1l2', 'l2', o.l2, 0.01));
  },
};

/** What a layer's regularizer option takes. */
export type RegularizerOption = Regularizer | 'l1' | 'l2' | 'l1l2' | { className: string; config: Record<string, number> } | null;

const byClass: Record<string, Regularizer['className']> = { l1: 'L1', l2: 'L2', l1l2: 'L1L2', l1_l2: 'L1L2' };

/** A layer's regularizer option: a ck.regularizers object, a name, or a saved { className, config }. */
export function regularizerOf(v: unknown, where: string, option: string): Regularizer | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') {
    const kind = byClass[v.toLowerCase()];
    if (!kind) throw new ValueError(`${where}: unknown ${option} '${v}' (known: l1, l2, l1l2)`);
    return kind === 'L1' ? regularizers.l1() : kind === 'L2' ? regularizers.l2() : regularizers.l1l2();
  }
  if (typeof v === 'object' && typeof (v as Regularizer).getConfig === 'function' && 'className' in v) return v as Regularizer;
  // Saved: tfjs's { className, config }, Keras's { class_name, config } (config l1/l2, as floats).
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const name = String(o.className ?? o.class_name ?? '');
    const kind = byClass[name.toLowerCase()];
    if (kind) {
      const config = (o.config && typeof o.config === 'object' ? o.config : {}) as Record<string, unknown>;
      const w = `${where}: ${option}`;
      const l1 = factor(w, 'l1', config.l1 ?? 0, 0);
      const l2 = factor(w, 'l2', config.l2 ?? 0, 0);
      return make(kind, kind === 'L2' ? 0 : l1, kind === 'L1' ? 0 : l2);
    }
  }
  throw new ValueError(`${where}: ${option} must be ck.regularizers.l1/l2/l1l2(...), 'l1', 'l2', 'l1l2' or null, got ${describeValue(v)}`);
}

/** The config a layer saves for its regularizer option (tfjs's form). */
export function regularizerConfig(r: Regularizer | null): { className: string; config: Record<string, number> } | null {
  return r ? { className: r.className, config: r.getConfig() } : null;
}
