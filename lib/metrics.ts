// Keras's built-in metrics beyond accuracy: top-k categorical accuracy (and sparse), precision,
// recall, AUC, and the confusion matrix. The native step adds each metric's counts to the running
// sums (top-k: the rows whose target is in the top k; precision, recall and AUC: true/false
// positives and negatives at thresholds; the confusion matrix: its cells;
// native/core/cpu/loss_ref.cpp); the value Keras logs is computed here from those sums, once per
// progress update, with Keras 3's formulas.
import { describeValue, ValueError } from './errors';

export type MetricClass = 'TopKCategoricalAccuracy' | 'SparseTopKCategoricalAccuracy' | 'Precision' | 'Recall' | 'AUC' | 'ConfusionMatrix';

/**
 * What the native step counts for a metric: a confusion count without classId counts every output
 * value, without topK every prediction; the confusion matrix counts each row's (label, prediction).
 */
export type NativeMetric =
  | { kind: 'topK'; k: number }
  | { kind: 'confusion'; thresholds: number[]; classId?: number; topK?: number }
  | { kind: 'confusionMatrix'; numClasses: number };

/**
 * A metric's value, as Keras's result() gives it: one number; one per threshold (Precision and
 * Recall given several thresholds, in the order given); or the confusion matrix, rows the true
 * class and columns the predicted one (tf.math.confusion_matrix's layout).
 */
export type MetricValue = number | number[] | number[][];

export interface Metric {
  readonly className: MetricClass;
  /** The name it is logged under (Keras's default name unless given). */
  readonly name: string;
  /** @internal */
  readonly native: NativeMetric;
  /** How many sums the native step keeps for it. */
  readonly slots: number;
  /** The targets it reads: class ids (the sparse loss's), one per output value, or either. */
  readonly targets: 'classIds' | 'values' | 'either';
  /** Its value from its sums and the rows counted. */
  compute(sums: ArrayLike<number>, rows: number): MetricValue;
  /**
   * The numbers its value is logged as, [key, number]: the metric's name; with several thresholds
   * <name>_<threshold> per threshold (logs hold numbers); none for the confusion matrix, which is
   * read with result().
   */
  logEntries(sums: ArrayLike<number>, rows: number): [string, number][];
  /**
   * Keras's metric.result(): the value over the rows of the model's latest logs (after evaluate,
   * the evaluation's; during fit, the epoch's so far, and after it the validation's when fit has
   * validation data), of output `output` (default the first); null before any.
   */
  result(output?: number): MetricValue | null;
  /** @internal Keeps the sums of output `output`'s latest logs for result(). */
  record(sums: ArrayLike<number>, rows: number, output: number): void;
  /** Keras's config (snake_case), as saved in the training config. */
  getConfig(): Record<string, unknown>;
}

/** A metric from its parts, with result()'s record of the latest sums. */
function metric(parts: Omit<Metric, 'result' | 'record' | 'logEntries' | 'targets'> &
  Partial<Pick<Metric, 'logEntries' | 'targets'>>): Metric {
  const latest: { sums: ArrayLike<number>; rows: number }[] = [];
  return {
    targets: 'values',
    logEntries: (sums, rows) => [[parts.name, parts.compute(sums, rows) as number]],
    ...parts,
    result(output = 0) {
      const at = latest[output];
      return at ? this.compute(at.sums, at.rows) : null;
    },
    record(sums, rows, output) {
      latest[output] = { sums, rows };
    },
  };
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
  const sparse = className === 'SparseTopKCategoricalAccuracy';
  const name = nameOf(where, o, sparse ? 'sparse_top_k_categorical_accuracy' : 'top_k_categorical_accuracy');
  return metric({
    className, name, native: { kind: 'topK', k }, slots: 1, targets: sparse ? 'classIds' : 'values',
    compute: (sums, rows) => divideNoNan(sums[0], rows),
    getConfig: () => ({ name, k }),
  });
}

/** Keras's NEG_INF: the threshold Precision and Recall take by default with top_k. */
const NEG_INF = -1e10;

/**
 * Precision or recall (Keras's Precision / Recall): tp / (tp + fp) or tp / (tp + fn) at each
 * threshold (0.5 by default; with topK, Keras's NEG_INF, so that exactly each row's top k count
 * as predicted positive), over every output value or one class's column (classId), after keeping
 * each row's top k predictions (topK; the others count as negatives).
 */
function thresholded(className: 'Precision' | 'Recall', args: unknown, where: string): Metric {
  const o = readOptions(where, args, ['thresholds', 'topK', 'classId', 'name']);
  const given = o.thresholds ?? null;
  const list = given === null ? null : Array.isArray(given) ? given : [given];
  if (list !== null && (list.length === 0 || list.some((t) => typeof t !== 'number' || !(t >= 0 && t <= 1)))) {
    throw new ValueError(`${where}: thresholds must be a number or a non-empty list of numbers in [0, 1], got ${describeValue(given)}`);
  }
  const classId = o.classId ?? null;
  if (classId !== null && (typeof classId !== 'number' || !Number.isInteger(classId) || classId < 0)) {
    throw new ValueError(`${where}: classId must be an integer >= 0, got ${describeValue(classId)}`);
  }
  const topK = o.topK ?? null;
  if (topK !== null && (typeof topK !== 'number' || !Number.isInteger(topK) || topK < 1)) {
    throw new ValueError(`${where}: topK must be an integer >= 1, got ${describeValue(topK)}`);
  }
  const thresholds = (list ?? [topK === null ? 0.5 : NEG_INF]) as number[];
  // The native counts take the thresholds ascending; position[i] is the i-th given one's place.
  const ascending = thresholds.map((t, i) => ({ t, i })).sort((a, b) => a.t - b.t);
  const position = new Array<number>(thresholds.length);
  ascending.forEach(({ i }, at) => { position[i] = at; });
  const name = nameOf(where, o, className.toLowerCase());
  const native: NativeMetric = {
    kind: 'confusion', thresholds: ascending.map(({ t }) => t),
    ...(classId === null ? {} : { classId }), ...(topK === null ? {} : { topK }),
  };
  // sums: tp, fp, tn, fn at each ascending threshold
  const at = (s: ArrayLike<number>, j: number) => {
    const tp = s[4 * j], other = className === 'Precision' ? s[4 * j + 1] : s[4 * j + 3];
    return divideNoNan(tp, tp + other);
  };
  return metric({
    className, name, native, slots: 4 * thresholds.length,
    // Keras returns a number for one threshold, else one per threshold.
    compute: (s) => (thresholds.length === 1 ? at(s, 0) : position.map((j) => at(s, j))),
    logEntries: (s) => (thresholds.length === 1 ? [[name, at(s, 0)]] : thresholds.map((t, i): [string, number] => [`${name}_${t}`, at(s, position[i])])),
    // Keras saves the thresholds as given (null when not: the default follows top_k).
    getConfig: () => ({ name, thresholds: given ?? (topK === null ? 0.5 : null), top_k: topK, class_id: classId }),
  });
}

/**
 * The confusion matrix of a classifier (tf.math.confusion_matrix over the rows): row t, column p
 * counts the rows labelled t (the class id, or the target's argmax) predicted p (the output's
 * argmax); a single sigmoid column is two classes, thresholded at 0.5. numClasses must be the
 * output's classes (2 for one column). Counted natively in each step of fit and evaluate; not
 * logged (logs hold numbers): read it with result() after evaluate or fit.
 */
function confusionMatrix(args: unknown, where: string): Metric {
  const o = readOptions(where, args, ['numClasses', 'name']);
  const n = o.numClasses;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 2 || n > 4096) {
    throw new ValueError(`${where}: numClasses must be an integer in [2, 4096], got ${describeValue(n)}`);
  }
  const name = nameOf(where, o, 'confusion_matrix');
  return metric({
    className: 'ConfusionMatrix', name, native: { kind: 'confusionMatrix', numClasses: n }, slots: n * n, targets: 'either',
    compute: (s) => Array.from({ length: n }, (_, t) => Array.from({ length: n }, (_, p) => s[t * n + p])),
    logEntries: () => [],
    getConfig: () => ({ name, num_classes: n }),
  });
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
  return metric({
    className: 'AUC', name, native: { kind: 'confusion', thresholds: aucThresholds(num) }, slots: 4 * num,
    compute: (s) => aucResult(s, num, curve, summation),
    getConfig: () => ({ name, num_thresholds: num, curve, summation_method: summation, multi_label: false }),
  });
}

export const metrics = {
  /** Keras TopKCategoricalAccuracy (k = 5): one-hot targets, logged as top_k_categorical_accuracy. */
  topKCategoricalAccuracy: (args?: { k?: number; name?: string }): Metric => topK('TopKCategoricalAccuracy', args, 'metrics.topKCategoricalAccuracy'),
  /** Keras SparseTopKCategoricalAccuracy (k = 5): class-id targets. */
  sparseTopKCategoricalAccuracy: (args?: { k?: number; name?: string }): Metric => topK('SparseTopKCategoricalAccuracy', args, 'metrics.sparseTopKCategoricalAccuracy'),
  /**
   * Keras Precision at `thresholds` (a number or a list; 0.5 by default, with topK Keras's -1e10),
   * over every output value or one class's (classId), counting only each row's topK predictions
   * when given. A list of several thresholds logs <name>_<threshold> per threshold.
   */
  precision: (args?: { thresholds?: number | number[]; topK?: number; classId?: number; name?: string }): Metric => thresholded('Precision', args, 'metrics.precision'),
  /** Keras Recall, with precision's options. */
  recall: (args?: { thresholds?: number | number[]; topK?: number; classId?: number; name?: string }): Metric => thresholded('Recall', args, 'metrics.recall'),
  /** Keras AUC: 200 thresholds, the ROC curve and interpolation by default. */
  auc: (args?: { numThresholds?: number; curve?: 'ROC' | 'PR'; summationMethod?: Summation; name?: string }): Metric => auc(args, 'metrics.auc'),
  /**
   * The numClasses x numClasses confusion matrix (tf.math.confusion_matrix: rows the true class,
   * columns the predicted one), counted natively in fit and evaluate, with class-id or one-hot
   * targets; read it with the metric's result() (it is not logged).
   */
  confusionMatrix: (args: { numClasses: number; name?: string }): Metric => confusionMatrix(args, 'metrics.confusionMatrix'),
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
  ConfusionMatrix: metrics.confusionMatrix as (args?: Options) => Metric,
};

/** Keras's config names of each class's options, to read a saved metric. */
const savedOptions: Record<MetricClass, Record<string, string>> = {
  TopKCategoricalAccuracy: { k: 'k', name: 'name' },
  SparseTopKCategoricalAccuracy: { k: 'k', name: 'name' },
  Precision: { thresholds: 'thresholds', top_k: 'topK', class_id: 'classId', name: 'name' },
  Recall: { thresholds: 'thresholds', top_k: 'topK', class_id: 'classId', name: 'name' },
  AUC: { num_thresholds: 'numThresholds', curve: 'curve', summation_method: 'summationMethod', name: 'name' },
  ConfusionMatrix: { num_classes: 'numClasses', name: 'name' },
};

/**
 * A built-in metric from compile's `metrics`: a name (Keras's snake_case, tfjs's camelCase or the
 * class name), a ck.metrics object, or a saved { className | class_name, config }; null for
 * anything else (accuracy and user functions are compile's).
 */
export function metricOf(v: unknown): Metric | null {
  if (typeof v === 'string') return byName[v] ? byName[v]() : null;
  if (!v || typeof v !== 'object') return null;
  if (typeof (v as Metric).compute === 'function' && 'native' in v) return v as Metric;
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
