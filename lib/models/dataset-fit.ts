// model.fitDataset and model.evaluateDataset (as in tfjs): training and evaluation over a
// Dataset of { xs, ys } batches, one native training step per batch, with fit's callbacks and
// progress bar. Epoch logs are the example-weighted means of the batches'. With `distributed`,
// each rank of an MPI job reads its own dataset and every step trains on the ranks' batches
// together (docs/distributed.md).
import { Callback, CustomCallback, CustomCallbackArgs, Logs } from '../callbacks';
import type { Dataset } from '../data/dataset';
import { describeValue, ValueError } from '../errors';
import type { StepSums } from '../native';
import { Tensor } from '../tensor';
import { ProgressLogger } from './progress';
import { checkSyncBatchNorm, DataParallel } from './data-parallel';

export interface FitDatasetArgs {
  epochs?: number;
  /** Batches per epoch (default: the dataset's size when known, else one full pass). */
  batchesPerEpoch?: number;
  /** A dataset of { xs, ys } batches, or [x, y] tensors. */
  validationData?: Dataset<{ xs: Tensor; ys: Tensor }> | [Tensor, Tensor];
  callbacks?: Callback | CustomCallbackArgs | (Callback | CustomCallbackArgs)[];
  /** 0 silent, 1 progress bar (default), 2 one line per epoch. */
  verbose?: 0 | 1 | 2;
  initialEpoch?: number;
  signal?: AbortSignal;
  /**
   * Data-parallel training over the ranks of an MPI job (the communicator ck.distributed.init()
   * resolves to): each rank gives its own dataset (its shard of the data) and step b trains on
   * the ranks' b-th batches together, a global batch of their rows. Alone (rank 0 of 1),
   * fitDataset trains as without it. See docs/distributed.md.
   */
  distributed?: unknown;
  /** With `distributed`: the batch norms normalize over the global batch (see fit's syncBatchNorm). */
  syncBatchNorm?: boolean;
}

/** fitDataset's data-parallel steps, from the model (LayersModel.datasetSteps). */
export interface DatasetSteps {
  readonly rank: number;
  /** Every rank's rows in its next batch (0: its dataset has ended); a sync point. */
  agree(rows: number): Promise<number[]>;
  /** This rank's batch (none: its dataset has ended) as its share of a step on `globalRows` rows: the epoch's running sums. */
  train(batch: { xs: Tensor; ys: Tensor } | null, globalRows: number): Promise<StepSums>;
  resetMetrics(): void;
  logs(sums: StepSums): Logs;
  endEpoch(sums: StepSums, stop: boolean, last: boolean): Promise<{ sums: StepSums; stop: boolean }>;
  fail(error: unknown): Promise<void>;
  end(): void;
}

/** fitDataset's steps on one process: each batch trained natively, adding to the epoch's running sums. */
export interface LocalSteps {
  train(batch: { xs: Tensor; ys: Tensor }): Promise<StepSums>;
  resetMetrics(): void;
  logs(sums: StepSums): Logs;
}

/** What fitDataset needs of the model (the public Sequential API). */
export interface DatasetModel {
  stopTraining: boolean;
  evaluate(x: Tensor, y: Tensor, args?: { batchSize?: number }): Promise<number[]>;
  readonly name: string;
  compiled?: object;
  /** The names of evaluate's values, each with `prefix`. */
  logNames(prefix: string): string[];
  localSteps(): LocalSteps;
  datasetSteps(comm: unknown, o: { epochs: number; initialEpoch: number; batchesPerEpoch?: number; syncBatchNorm: boolean }, where: string): Promise<DatasetSteps | null>;
}

function batchOf(b: unknown, where: string): { xs: Tensor; ys: Tensor } {
  const o = b as { xs?: unknown; ys?: unknown };
  if (!o || !(o.xs instanceof Tensor) || !(o.ys instanceof Tensor)) {
    throw new ValueError(`${where}: dataset elements must be { xs, ys } batches of tensors (use dataset.batch(n))`);
  }
  return { xs: o.xs, ys: o.ys };
}

export async function evaluateDataset(model: DatasetModel, dataset: Dataset<{ xs: Tensor; ys: Tensor }>, args: { batches?: number } = {}): Promise<number[]> {
  const where = `${model.name}.evaluateDataset`;
  const sums: number[] = [];
  let count = 0;
  let b = 0;
  for await (const raw of dataset) {
    if (args.batches !== undefined && b++ >= args.batches) break;
    const { xs, ys } = batchOf(raw, where);
    const n = xs.shape[0];
    const values = await model.evaluate(xs, ys, { batchSize: Math.max(1, n) });
    values.forEach((v, i) => (sums[i] = (sums[i] ?? 0) + v * n));
    count += n;
  }
  if (count === 0) throw new ValueError(`${where}: the dataset is empty`);
  return sums.map((s) => s / count);
}

export async function fitDataset(model: DatasetModel, dataset: Dataset<{ xs: Tensor; ys: Tensor }>, args: FitDatasetArgs = {}): Promise<{ epoch: number[]; history: Record<string, number[]> }> {
  const where = `${model.name}.fitDataset`;
  const epochs = args.epochs ?? 1;
  try {
    if (!model.compiled) throw new ValueError(`${where}: compile the model first (model.compile({ optimizer, loss }))`);
    if (!Number.isInteger(epochs) || epochs < 1) throw new ValueError(`${where}: epochs must be a positive integer, got ${describeValue(epochs)}`);
    checkSyncBatchNorm(args.syncBatchNorm, args.distributed, where);
  } catch (e) {
    // The other ranks of a data-parallel fit wait for this one at the fingerprint exchange.
    await DataParallel.refuse(args.distributed, e);
    throw e;
  }
  const initialEpoch = args.initialEpoch ?? 0;
  const dp = args.distributed === undefined ? null
    : await model.datasetSteps(args.distributed, { epochs, initialEpoch, batchesPerEpoch: args.batchesPerEpoch, syncBatchNorm: args.syncBatchNorm === true }, where);
  const steps = args.batchesPerEpoch ?? dataset.size ?? 0;
  const history = { epoch: [] as number[], history: {} as Record<string, number[]> };
  const callbacks: Callback[] = [];
  // In a data-parallel fit, only rank 0 prints.
  const verbose = dp && dp.rank > 0 ? 0 : args.verbose ?? 1;
  if (verbose > 0) {
    const out = verbose === 2 || !steps ? { isTTY: false, write: (s: string) => process.stdout.write(s) } : process.stdout;
    callbacks.push(new ProgressLogger(epochs, steps, out));
  }
  const user = args.callbacks === undefined ? [] : Array.isArray(args.callbacks) ? args.callbacks : [args.callbacks];
  for (const cb of user) callbacks.push(cb instanceof Callback ? cb : new CustomCallback(cb));
  for (const cb of callbacks) {
    cb.setModel(model as never);
    cb.params = { epochs, steps, samples: null };
  }
  if (dp) return trainTogether(model, dataset, args, dp, callbacks, history, epochs, where);
  const local = model.localSteps();
  model.stopTraining = false;
  for (const cb of callbacks) await cb.onTrainBegin();
  for (let epoch = initialEpoch; epoch < epochs && !model.stopTraining; epoch++) {
    for (const cb of callbacks) await cb.onEpochBegin(epoch);
    // The epoch's running sums, as fit's: the metrics count over every row of the epoch.
    local.resetMetrics();
    let sums: StepSums | null = null;
    let b = 0;
    const it = dataset[Symbol.asyncIterator]();
    for (;;) {
      if (args.batchesPerEpoch !== undefined && b >= args.batchesPerEpoch) break;
      if (args.signal?.aborted || model.stopTraining) {
        model.stopTraining = true;
        break;
      }
      const r = await it.next();
      if (r.done) break;
      const { xs, ys } = batchOf(r.value, where);
      for (const cb of callbacks) await cb.onBatchBegin(b, { batch: b, size: xs.shape[0] });
      sums = await local.train({ xs, ys });
      for (const cb of callbacks) await cb.onBatchEnd(b, { batch: b, size: xs.shape[0], ...local.logs(sums) });
      b++;
    }
    await it.return?.();
    if (!sums) throw new ValueError(`${where}: the dataset gave no batches in epoch ${epoch + 1}`);
    const logs = local.logs(sums);
    if (!model.stopTraining) await validate(model, args, logs);
    history.epoch.push(epoch);
    for (const [k, v] of Object.entries(logs)) (history.history[k] ??= []).push(v);
    for (const cb of callbacks) await cb.onEpochEnd(epoch, logs);
  }
  for (const cb of callbacks) await cb.onTrainEnd();
  return history;
}

async function validate(model: DatasetModel, args: FitDatasetArgs, logs: Logs): Promise<void> {
  if (!args.validationData) return;
  const v = Array.isArray(args.validationData)
    ? await model.evaluate(args.validationData[0], args.validationData[1], { batchSize: 100 })
    : await evaluateDataset(model, args.validationData);
  model.logNames('val_').forEach((k, i) => (logs[k] = v[i]));
}

/**
 * fitDataset on the ranks of an MPI job. Before each step the ranks say how many rows their next
 * batch has: the step trains on all of them (the loss averaged over their sum), a rank whose
 * dataset has ended taking part with none, until every rank's has ended (or batchesPerEpoch).
 * As in fit, a stop takes effect at the end of the epoch and the epoch's logs are summed over the
 * ranks; a rank that fails (its dataset throws on bad data) fails every rank with its message.
 */
async function trainTogether(model: DatasetModel, dataset: Dataset<{ xs: Tensor; ys: Tensor }>, args: FitDatasetArgs,
  dp: DatasetSteps, callbacks: Callback[], history: { epoch: number[]; history: Record<string, number[]> }, epochs: number,
  where: string): Promise<{ epoch: number[]; history: Record<string, number[]> }> {
  model.stopTraining = false;
  try {
    for (const cb of callbacks) await cb.onTrainBegin();
    for (let epoch = args.initialEpoch ?? 0; epoch < epochs && !model.stopTraining; epoch++) {
      for (const cb of callbacks) await cb.onEpochBegin(epoch);
      dp.resetMetrics();
      let sums: StepSums = { lossSum: 0, correct: 0, count: 0, outputLoss: [], outputCorrect: [], metricSums: [] };
      const it = dataset[Symbol.asyncIterator]();
      let ended = false;
      for (let b = 0; args.batchesPerEpoch === undefined || b < args.batchesPerEpoch; b++) {
        const r = ended ? null : await it.next();
        if (r?.done) ended = true;
        const batch = r && !r.done ? batchOf(r.value, where) : null;
        const globalRows = (await dp.agree(batch ? batch.xs.shape[0] : 0)).reduce((a, v) => a + v, 0);
        if (globalRows === 0) break;
        for (const cb of callbacks) await cb.onBatchBegin(b, { batch: b, size: globalRows });
        sums = await dp.train(batch, globalRows);
        for (const cb of callbacks) await cb.onBatchEnd(b, { batch: b, size: globalRows, ...dp.logs(sums) });
        if (args.signal?.aborted) model.stopTraining = true;
      }
      await it.return?.();
      ({ sums, stop: model.stopTraining } = await dp.endEpoch(sums, model.stopTraining, epoch === epochs - 1));
      if (sums.count === 0) throw new ValueError(`${where}: the ranks' datasets gave no batches in epoch ${epoch + 1}`);
      const logs = dp.logs(sums);
      if (!model.stopTraining) await validate(model, args, logs);
      history.epoch.push(epoch);
      for (const [k, v] of Object.entries(logs)) (history.history[k] ??= []).push(v);
      for (const cb of callbacks) await cb.onEpochEnd(epoch, logs);
    }
    for (const cb of callbacks) await cb.onTrainEnd();
  } catch (e) {
    // Every rank fails with this one, at the same step: none waits for it until the timeout.
    await dp.fail(e);
    throw e;
  } finally {
    dp.end();
  }
  return history;
}
