// Keras's built-in metrics beyond accuracy: top-k categorical accuracy (and sparse), precision,
// recall and AUC. The native step adds each metric's counts to the running sums (top-k: the rows
// whose target is in the top k; the others: true/false positives and negatives at thresholds,
// native/core/cpu/loss_ref.cpp); the value Keras logs is computed here from those sums, once per
// progress update, with Keras 3's formulas.
import { describeValue, ValueError } from './errors';

export type MetricClass = 'TopKCategoricalAccuracy' | 'SparseTopKCategoricalAccuracy' | 'Precision' | 'Recall' | 'AUC';

/** What the native step counts for a metric. */
/** What the native step counts for a metric (a confusion count without classId: every output value). */
export type NativeMetric = { kind: 'topK'; k: number } | { kind: 'confusion'; thresholds: number[]; classId?: number };

export interface Metric {
  readonly className: MetricClass;
  /** The name it is logged under (Keras's default name unless given). */
  readonly name: string;
  /** @internal */
  readonly native: NativeMetric;
  /** How many sums the native step keeps for it. */
  readonly slots: number;
  /** Its value from its sums and the rows counted. */
  result(sums: ArrayLike<number>, rows: number): number;
  /** Keras's config (snake_case), as saved in the training config. */
  getConfig(): Record<string, unknown>;
}

type Options = Record<string, unknown>;

function readOptions(where: string, args: unknown, known: readonly string[]): Options {
  if (args === undefined) return {};
  if (args === null || typeof args !== 'object' || Array.isArray(args)) {
    throw new ValueError(`${where}: options must be an object, got ${describeValue(args)}`);
  }
  for (const key of Object.keys(args)) {
    if (!known.includes(key)) throw new ValueError(`${where}: unknown option '${key}' (known: ${known.join(', ')})`);
  }
  return args as Options;
}

function nameOf(where: string, o: Options, def: string): string {
  const v = o.name ?? def;
  if (typeof v !== 'string' || v === '') throw new ValueError(`${where}: name must be a non-empty string, got ${describeValue(v)}`);
  return v;
}

const divideNoNan = (a: number, b: number): number => (b === 0 ? 0 : a / b);

function topK(className: 'TopKCategoricalAccuracy' | 'SparseTopKCategoricalAccuracy', args: unknown, where: string): Metric {
  const o = readOptions(where, args, ['k', 'name']);
  const k = o.k ?? 5;
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 1) throw new ValueError(`${where}: k must be an integer >= 1, got ${describeValue(k)}`);
  const name = nameOf(where, o, className === 'TopKCategoricalAccuracy' ? 'top_k_categorical_accuracy' : 'sparse_top_k_categorical_accuracy');
  return {
    className, name, native: { kind: 'topK', k }, slots: 1,
    result: (sums, rows) => divideNoNan(sums[0], rows),
    getConfig: () => ({ name, k }),
  };
}

/**
 * Precision or recall at one threshold (Keras's default 0.5): tp / (tp + fp) or tp / (tp + fn),
 * over every output value or, with classId, over that class's column only (Keras's class_id).
 */
function thresholded(className: 'Precision' | 'Recall', args: unknown, where: string): Metric {
  const o = readOptions(where, args, ['thresholds', 'classId', 'name']);
  const threshold = o.thresholds ?? 0.5;
  if (typeof threshold !== 'number' || !(threshold >= 0 && threshold <= 1)) {
    throw new ValueError(`${where}: thresholds must be one number in [0, 1], got ${describeValue(threshold)}`);
  }
  const classId = o.classId ?? null;
  if (classId !== null && (typeof classId !== 'number' || !Number.isInteger(classId) || classId < 0)) {
    throw new ValueError(`${where}: classId must be an integer >= 0, got ${describeValue(classId)}`);
  }
  const name = nameOf(where, o, className.toLowerCase());
  return {
    className, name, native: { kind: 'confusion', thresholds: [threshold], ...(classId === null ? {} : { classId }) }, slots: 4,
    // sums: tp, fp, tn, fn
    result: (s) => divideNoNan(s[0], s[0] + (className === 'Precision' ? s[1] : s[3])),
    getConfig: () => ({ name, thresholds: threshold, top_k: null, class_id: classId }),
  };
}

type Curve = 'ROC' | 'PR';
type Summation = 'interpolation' | 'minoring' | 'majoring';

/** Keras AUC's thresholds: num - 2 evenly spaced inside (0, 1), and one just outside each end. */
export function aucThresholds(num: number): number[] {
  const eps = 1e-7;  // keras.backend.epsilon()
  const inner = Array.from({ length: num - 2 }, (_, i) => (i + 1) / (num - 1));
  return [0 - eps, ...inner, 1 + eps];
}

/** Keras 3's AUC.result() over the confusion counts at ascending thresholds. */
function aucResult(s: ArrayLike<number>, n: number, curve: Curve, summation: Summation): number {
  const tp = (i: number) => s[4 * i], fp = (i: number) => s[4 * i + 1], tn = (i: number) => s[4 * i + 2], fn = (i: number) => s[4 * i + 3];
  let total = 0;
  if (curve === 'PR' && summation === 'interpolation') {
    // interpolate_pr_auc (Davis & Goadrich 2006): precision interpolated along true positives.
    for (let i = 0; i < n - 1; i++) {
      const p0 = tp(i) + fp(i), p1 = tp(i + 1) + fp(i + 1);
      const dtp = tp(i) - tp(i + 1);
      const slope = divideNoNan(dtp, Math.max(p0 - p1, 0));
      const intercept = tp(i + 1) - slope * p1;
      const ratio = p0 > 0 && p1 > 0 ? divideNoNan(p0, Math.max(p1, 0)) : 1;
      total += divideNoNan(slope * (dtp + intercept * Math.log(ratio)), Math.max(tp(i + 1) + fn(i + 1), 0));
    }
    return total;
  }
  const recall = (i: number) => divideNoNan(tp(i), tp(i) + fn(i));
  const x = curve === 'ROC' ? (i: number) => divideNoNan(fp(i), fp(i) + tn(i)) : recall;
  const y = curve === 'ROC' ? recall : (i: number) => divideNoNan(tp(i), tp(i) + fp(i));
  for (let i = 0; i < n - 1; i++) {
    const a = y(i), b = y(i + 1);
    const height = summation === 'interpolation' ? (a + b) / 2 : summation === 'minoring' ? Math.min(a, b) : Math.max(a, b);
    total += (x(i) - x(i + 1)) * height;
  }
  return total;
}

function auc(args: unknown, where: string): Metric {
  const o = readOptions(where, args, ['numThresholds', 'curve', 'summationMethod', 'name']);
  const num = o.numThresholds ?? 200;
  if (typeof num !== 'number' || !Number.isInteger(num) || num < 2 || num > 100000) {
    throw new ValueError(`${where}: numThresholds must be an integer in [2, 100000], got ${describeValue(num)}`);
  }
  const curve = typeof o.curve === 'string' ? o.curve.toUpperCase() : o.curve ?? 'ROC';
  if (curve !== 'ROC' && curve !== 'PR') throw new ValueError(`${where}: curve must be 'ROC' or 'PR', got ${describeValue(o.curve)}`);
  const summation = typeof o.summationMethod === 'string' ? o.summationMethod.toLowerCase() : o.summationMethod ?? 'interpolation';
  if (summation !== 'interpolation' && summation !== 'minoring' && summation !== 'majoring') {
    throw new ValueError(`${where}: summationMethod must be 'interpolation', 'minoring' or 'majoring', got ${describeValue(o.summationMethod)}`);
  }
  const name = nameOf(where, o, 'auc');
  return {
    className: 'AUC', name, native: { kind: 'confusion', thresholds: aucThresholds(num) }, slots: 4 * num,
    result: (s) => aucResult(s, num, curve, summation),
    getConfig: () => ({ name, num_thresholds: num, curve, summation_method: summation, multi_label: false }),
  };
}

export const metrics = {
  /** Keras TopKCategoricalAccuracy (k = 5): one-hot targets, logged as top_k_categorical_accuracy. */
  topKCategoricalAccuracy: (args?: { k?: number; name?: string }): Metric => topK('TopKCategoricalAccuracy', args, 'metrics.topKCategoricalAccuracy'),
  /** Keras SparseTopKCategoricalAccuracy (k = 5): class-id targets. */
  sparseTopKCategoricalAccuracy: (args?: { k?: number; name?: string }): Metric => topK('SparseTopKCategoricalAccuracy', args, 'metrics.sparseTopKCategoricalAccuracy'),
  /** Keras Precision at `thresholds` (one number, 0.5 by default), over every output value or one class's (classId). */
  precision: (args?: { thresholds?: number; classId?: number; name?: string }): Metric => thresholded('Precision', args, 'metrics.precision'),
  /** Keras Recall at `thresholds` (one number, 0.5 by default), over every output value or one class's (classId). */
  recall: (args?: { thresholds?: number; classId?: number; name?: string }): Metric => thresholded('Recall', args, 'metrics.recall'),
  /** Keras AUC: 200 thresholds, the ROC curve and interpolation by default. */
  auc: (args?: { numThresholds?: number; curve?: 'ROC' | 'PR'; summationMethod?: Summation; name?: string }): Metric => auc(args, 'metrics.auc'),
};

const byName: Record<string, (args?: Options) => Metric> = {
  top_k_categorical_accuracy: metrics.topKCategoricalAccuracy,
  topKCategoricalAccuracy: metrics.topKCategoricalAccuracy,
  TopKCategoricalAccuracy: metrics.topKCategoricalAccuracy,
  sparse_top_k_categorical_accuracy: metrics.sparseTopKCategoricalAccuracy,
  sparseTopKCategoricalAccuracy: metrics.sparseTopKCategoricalAccuracy,
  SparseTopKCategoricalAccuracy: metrics.sparseTopKCategoricalAccuracy,
  precision: metrics.precision,
  Precision: metrics.precision,
  recall: metrics.recall,
  Recall: metrics.recall,
  auc: metrics.auc,
  AUC: metrics.auc,
};

/** Keras's config names of each class's options, to read a saved metric. */
const savedOptions: Record<MetricClass, Record<string, string>> = {
  TopKCategoricalAccuracy: { k: 'k', name: 'name' },
  SparseTopKCategoricalAccuracy: { k: 'k', name: 'name' },
  Precision: { thresholds: 'thresholds', class_id: 'classId', name: 'name' },
  Recall: { thresholds: 'thresholds', class_id: 'classId', name: 'name' },
  AUC: { num_thresholds: 'numThresholds', curve: 'curve', summation_method: 'summationMethod', name: 'name' },
};

/**
 * A built-in metric from compile's `metrics`: a name (Keras's snake_case, tfjs's camelCase or the
 * class name), a ck.metrics object, or a saved { className | class_name, config }; null for
 * anything else (accuracy and user functions are compile's).
 */
export function metricOf(v: unknown): Metric | null {
  if (typeof v === 'string') return byName[v] ? byName[v]() : null;
  if (!v || typeof v !== 'object') return null;
  if (typeof (v as Metric).result === 'function' && 'native' in v) return v as Metric;
  const o = v as Record<string, unknown>;
  const cls = String(o.className ?? o.class_name ?? '');
  if (!(cls in savedOptions)) return null;
  const config = (o.config ?? {}) as Record<string, unknown>;
  const args: Options = {};
  for (const [saved, option] of Object.entries(savedOptions[cls as MetricClass])) {
    const value = config[saved] ?? config[option];
    // Keras saves unset options as null; a threshold list of one is the one number.
    if (value !== undefined && value !== null) args[option] = Array.isArray(value) && value.length === 1 ? value[0] : value;
  }
  return byName[cls](args);
}

/** What the training config saves for a built-in metric: { class_name, config }. */
export function metricToJson(m: Metric): { class_name: string; config: Record<string, unknown> } {
  return { class_name: m.className, config: m.getConfig() };
}
