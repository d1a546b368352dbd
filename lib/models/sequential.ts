// The Sequential model's training and inference loops. Each batch is one native call (gather,
// forward, loss, backward, update) on the model's own stream; the loop keeps the next batch
// queued while the current one runs, and awaits, so the event loop never blocks.
import { Callback, CustomCallback, CustomCallbackArgs, Logs } from '../callbacks';
import { ShapeError, ValueError } from '../errors';
import { Layer } from '../layers/layer';
import { StepSums } from '../native';
import { globalRng } from '../random';
import { Rng } from '../rng';
import { checkTensor, Tensor, tensor } from '../tensor';
import { ModelBase } from './base';
import { ProgressLogger } from './progress';
import { saveModel, SaveOptions, SaveResult } from '../io/files';
import type { Dataset } from '../data/dataset';
import { evaluateDataset, fitDataset, FitDatasetArgs } from './dataset-fit';

export interface FitArgs {
  epochs?: number;
  batchSize?: number;
  /** Fraction of the examples (the last ones, as Keras takes them) held out for validation. */
  validationSplit?: number;
  validationData?: [Tensor, Tensor];
  shuffle?: boolean;
  callbacks?: Callback | CustomCallbackArgs | (Callback | CustomCallbackArgs)[];
  /** 0 silent, 1 progress bar (default), 2 one line per epoch. */
  verbose?: 0 | 1 | 2;
  /** Seeds shuffling and dropout: the same seed repeats the run bit for bit on the CPU. */
  seed?: number;
  /**
   * Stops fit cleanly after the running batch. fit keeps one batch queued behind the running
   * one, so that queued batch also completes (and is counted) before fit returns.
   */
  signal?: AbortSignal;
  initialEpoch?: number;
}

export class History extends Callback {
  epoch: number[] = [];
  history: Record<string, number[]> = {};

  async onEpochEnd(epoch: number, logs: Logs = {}) {
    this.epoch.push(epoch);
    for (const [k, v] of Object.entries(logs)) (this.history[k] ??= []).push(v);
  }
}

function intIn(v: unknown, def: number, lo: number, where: string, name: string): number {
  if (v === undefined) return def;
  if (!Number.isInteger(v) || (v as number) < lo) throw new ValueError(`${where}: ${name} must be an integer >= ${lo}, got ${JSON.stringify(v)}`);
  return v as number;
}

/** Marks a promise handled (it is awaited later, or a later one reports the same failure). */
function inFlight<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

function range(start: number, end: number): Int32Array {
  const r = new Int32Array(end - start);
  for (let i = 0; i < r.length; i++) r[i] = start + i;
  return r;
}

export class Sequential extends ModelBase {
  /** Metadata read from or written to model.json (e.g. class names). */
  userDefinedMetadata?: Record<string, unknown>;

  /** Saves in the TensorFlow.js layers format: 'file://dir' gets model.json and weights.bin. */
  async save(url: string, options: SaveOptions = {}): Promise<SaveResult> {
    return saveModel(this, url, { ...options, metadata: { ...(this.userDefinedMetadata ?? {}), ...(options.metadata ?? {}) } });
  }

  /** Checks targets against the model's output and loss; returns the example count. */
  private checkTargets(y: unknown, n: number, op: string): Tensor {
    const where = `${this.name}.${op}`;
    const t = checkTensor(y, where, 'y');
    const c = this.requireCompiled(op);
    const out = this.outputShape.slice(1) as number[];
    if (t.shape[0] !== n) {
      throw new ShapeError(`${where}: x has ${n} examples but y has ${t.shape[0] ?? 0} (y shape [${t.shape.join(',')}])`);
    }
    const sparse = c.loss === 'sparseCategoricalCrossentropy';
    const wantShape = sparse ? out.slice(0, -1) : out;
    const got = t.shape.slice(1);
    const sameSize = got.reduce((a, b) => a * b, 1) === wantShape.reduce((a, b) => a * b, 1);
    if (!sameSize) {
      throw new ShapeError(`${where}: targets [${t.shape.join(',')}] do not match the model output (None, ${out.join(', ')})${sparse ? ' (sparse labels: one class id per example)' : ''}`);
    }
    const classes = out[out.length - 1];
    if (sparse || c.loss === 'categoricalCrossentropy') {
      const data = t.dataSync();
      for (let i = 0; i < data.length; i++) {
        const v = data[i];
        const bad = sparse ? !(Number.isInteger(v) && v >= 0 && v < classes) : !(v >= 0 && v <= 1);
        if (bad) {
          throw new ValueError(`${where}: label ${v} at index ${i} is outside ${sparse ? `the class range [0, ${classes - 1}]` : '[0, 1] (one-hot)'}`);
        }
      }
    }
    return t;
  }

  async fit(x: Tensor, y: Tensor, args: FitArgs = {}): Promise<History> {
    const where = `${this.name}.fit`;
    const c = this.requireCompiled('fit');
    const n = this.checkInput(x, 'fit');
    this.checkTargets(y, n, 'fit');
    const epochs = intIn(args.epochs, 1, 1, where, 'epochs');
    const batchSize = intIn(args.batchSize, 32, 1, where, 'batchSize');
    const initialEpoch = intIn(args.initialEpoch, 0, 0, where, 'initialEpoch');
    const split = args.validationSplit ?? 0;
    if (typeof split !== 'number' || !(split >= 0 && split < 1)) throw new ValueError(`${where}: validationSplit must be in [0, 1), got ${JSON.stringify(split)}`);
    if (args.signal !== undefined && !(args.signal instanceof AbortSignal)) throw new ValueError(`${where}: signal must be an AbortSignal`);
    const nTrain = args.validationData ? n : n - Math.floor(n * split);
    if (nTrain < 1) throw new ValueError(`${where}: no examples left to train on (validationSplit ${split} of ${n})`);

    let val: { x: Tensor; y: Tensor; rows: Int32Array } | null = null;
    if (args.validationData) {
      if (!Array.isArray(args.validationData) || args.validationData.length !== 2) throw new ValueError(`${where}: validationData must be [x, y]`);
      const [vx, vy] = args.validationData;
      const nv = this.checkInput(vx, 'fit (validationData)');
      this.checkTargets(vy, nv, 'fit (validationData)');
      val = { x: vx, y: vy, rows: range(0, nv) };
    } else if (nTrain < n) {
      val = { x, y, rows: range(nTrain, n) };
    }

    const rng = new Rng(args.seed);
    const seedBase = rng.nextUint32();
    const steps = Math.ceil(nTrain / batchSize);
    // Resuming at initialEpoch k shuffles and drops out as an uninterrupted run did from epoch k.
    if (args.shuffle !== false) for (let e = 0; e < initialEpoch; e++) rng.permutation(nTrain);
    const history = new History();
    const callbacks: Callback[] = [history];
    const verbose = args.verbose ?? 1;
    if (verbose > 0) {
      const out = verbose === 2 ? { isTTY: false, write: (s: string) => process.stdout.write(s) } : process.stdout;
      callbacks.push(new ProgressLogger(epochs, steps, out));
    }
    const user = args.callbacks === undefined ? [] : Array.isArray(args.callbacks) ? args.callbacks : [args.callbacks];
    for (const cb of user) callbacks.push(cb instanceof Callback ? cb : new CustomCallback(cb));
    const params = { epochs, steps, batchSize, samples: nTrain, seed: args.seed };
    for (const cb of callbacks) {
      cb.setModel(this);
      cb.params = params;
    }

    const net = this.net;
    const accName = c.accuracyName;
    const logsOf = (s: StepSums, prefix = ''): Logs => {
      const logs: Logs = { [`${prefix}loss`]: s.lossSum / Math.max(1, s.count) };
      if (accName) logs[`${prefix}${accName}`] = s.correct / Math.max(1, s.count);
      return logs;
    };

    this.stopTraining = false;
    let step = initialEpoch * steps;
    for (const cb of callbacks) await cb.onTrainBegin();
    for (let epoch = initialEpoch; epoch < epochs && !this.stopTraining; epoch++) {
      for (const cb of callbacks) await cb.onEpochBegin(epoch);
      const order = args.shuffle === false ? range(0, nTrain) : rng.permutation(nTrain);
      net.resetMetrics();
      // One batch queued behind the running one keeps the executor busy between awaits.
      const launch = (b: number): Promise<StepSums> =>
        inFlight(net.trainStep(x.handle, y.handle, order.subarray(b * batchSize, Math.min(nTrain, (b + 1) * batchSize)),
          (seedBase + step++ * 0x9e3779b1) % 2 ** 52));
      let sums: StepSums = { lossSum: 0, correct: 0, count: 0 };
      let pending: Promise<StepSums> | null = launch(0);
      for (let b = 0; b < steps && pending; b++) {
        for (const cb of callbacks) await cb.onBatchBegin(b, { batch: b, size: batchSize });
        const next: Promise<StepSums> | null = b + 1 < steps && !args.signal?.aborted && !this.stopTraining ? launch(b + 1) : null;
        sums = await pending;
        for (const cb of callbacks) await cb.onBatchEnd(b, { batch: b, size: batchSize, ...logsOf(sums) });
        pending = next;
        if (args.signal?.aborted) this.stopTraining = true;
      }
      if (pending) sums = await pending;
      const logs = logsOf(sums);
      if (val && !this.stopTraining) Object.assign(logs, await this.evaluateRows(val.x, val.y, val.rows, batchSize, 'val_'));
      for (const cb of callbacks) await cb.onEpochEnd(epoch, logs);
    }
    for (const cb of callbacks) await cb.onTrainEnd();
    return history;
  }

  /** Loss, accuracy and user metrics over the given rows, as logs. */
  private async evaluateRows(x: Tensor, y: Tensor, rows: Int32Array, batchSize: number, prefix = ''): Promise<Logs> {
    const c = this.requireCompiled('evaluate');
    const net = this.net;
    net.resetMetrics();
    const steps: Promise<StepSums>[] = [];
    for (let b = 0; b < rows.length; b += batchSize) {
      steps.push(inFlight(net.evalStep(x.handle, y.handle, rows.subarray(b, Math.min(rows.length, b + batchSize)))));
    }
    const sums = (await Promise.all(steps)).at(-1)!;
    const logs: Logs = { [`${prefix}loss`]: sums.lossSum / Math.max(1, sums.count) };
    if (c.accuracyName) logs[`${prefix}${c.accuracyName}`] = sums.correct / Math.max(1, sums.count);
    if (c.userMetrics.length) {
      const start = rows[0];
      const contiguous = rows.every((r, i) => r === start + i);
      const xs = contiguous && start === 0 && rows.length === x.shape[0] ? x : null;
      const pred = xs ? this.predict(xs, { batchSize }) : this.predictRows(x, start, rows.length, batchSize);
      const yTrue = xs ? y : sliceRows(y, start, rows.length);
      for (const m of c.userMetrics) logs[`${prefix}${m.name}`] = Number(await m.fn(yTrue, pred));
    }
    return logs;
  }

  /** Mean loss and metrics over (x, y): [loss, accuracy?, ...user metrics]. */
  async evaluate(x: Tensor, y: Tensor, args: { batchSize?: number; verbose?: number } = {}): Promise<number[]> {
    const n = this.checkInput(x, 'evaluate');
    this.checkTargets(y, n, 'evaluate');
    const batchSize = intIn(args.batchSize, 32, 1, `${this.name}.evaluate`, 'batchSize');
    return Object.values(await this.evaluateRows(x, y, range(0, n), batchSize));
  }

  /** Outputs for x, computed in batches; returns at once, the values come when ready. */
  predict(x: Tensor, args: { batchSize?: number; verbose?: number } = {}): Tensor {
    const n = this.checkInput(x, 'predict');
    return this.predictRows(x, 0, n, intIn(args.batchSize, 32, 1, `${this.name}.predict`, 'batchSize'));
  }

  private predictRows(x: Tensor, start: number, count: number, batchSize: number): Tensor {
    return new Tensor(this.net.layerOutput(x.handle, start, count, this.built!.nativeRange.at(-1)![1] - 1, batchSize));
  }

  predictOnBatch(x: Tensor): Tensor {
    const n = this.checkInput(x, 'predictOnBatch');
    return this.predictRows(x, 0, n, n);
  }

  /** One training step on exactly this batch: [loss, accuracy?]. */
  async trainOnBatch(x: Tensor, y: Tensor): Promise<number[]> {
    this.requireCompiled('trainOnBatch');
    const n = this.checkInput(x, 'trainOnBatch');
    this.checkTargets(y, n, 'trainOnBatch');
    this.net.resetMetrics();
    const sums = await this.net.trainStep(x.handle, y.handle, range(0, n), globalRng().nextUint32());
    const out = [sums.lossSum / sums.count];
    if (this.compiled!.accuracyName) out.push(sums.correct / sums.count);
    return out;
  }

  /** Trains on a Dataset of { xs, ys } batches (e.g. ck.data.imageFolderDataset(...).train.batch(32)), as tfjs. */
  async fitDataset(dataset: Dataset<{ xs: Tensor; ys: Tensor }>, args: FitDatasetArgs = {}): Promise<History> {
    const history = new History();
    const user = args.callbacks === undefined ? [] : Array.isArray(args.callbacks) ? args.callbacks : [args.callbacks];
    await fitDataset(this, dataset, { ...args, callbacks: [history, ...user] });
    return history;
  }

  /** Mean loss and metrics over a Dataset of { xs, ys } batches: [loss, accuracy?]. */
  async evaluateDataset(dataset: Dataset<{ xs: Tensor; ys: Tensor }>, args: { batches?: number } = {}): Promise<number[]> {
    return evaluateDataset(this, dataset, args);
  }

  /** The output of `layer` (an index or a layer of this model) for x, in inference mode. */
  layerOutput(x: Tensor, layer: number | Layer, args: { batchSize?: number } = {}): Tensor {
    const n = this.checkInput(x, 'layerOutput');
    const i = typeof layer === 'number' ? layer : this.layers.indexOf(layer);
    if (!Number.isInteger(i) || i < 0 || i >= this.layers.length) throw new ValueError(`${this.name}.layerOutput: no such layer`);
    const [, end] = this.built!.nativeRange[i];
    if (end === 0) return x;
    return new Tensor(this.net.layerOutput(x.handle, 0, n, end - 1, intIn(args.batchSize, 32, 1, `${this.name}.layerOutput`, 'batchSize')));
  }
}

function sliceRows(t: Tensor, start: number, count: number): Tensor {
  const row = t.size / t.shape[0];
  const data = t.dataSync().slice(start * row, (start + count) * row);
  return tensor(data, [count, ...t.shape.slice(1)]);
}

/** ck.sequential([...layers]) as in tfjs. */
export function sequential(layers: Layer[] = [], args: { name?: string } = {}): Sequential {
  if (!Array.isArray(layers)) throw new ValueError(`sequential: expected an array of layers`);
  return new Sequential({ layers, name: args.name });
}
