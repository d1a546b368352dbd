// model.fitDataset and model.evaluateDataset (as in tfjs): training and evaluation over a
// Dataset of { xs, ys } batches, one native training step per batch, with fit's callbacks and
// progress bar. Epoch logs are the example-weighted means of the batches'.
import { Callback, CustomCallback, CustomCallbackArgs, Logs } from '../callbacks';
import type { Dataset } from '../data/dataset';
import { describeValue, ValueError } from '../errors';
import { Tensor } from '../tensor';
import { ProgressLogger } from './progress';

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
  /** Not yet: data-parallel training is fit(x, y, { distributed }); here it is a ValueError. */
  distributed?: unknown;
}

/** What fitDataset needs of the model (the public Sequential API). */
export interface DatasetModel {
  stopTraining: boolean;
  /** trainOnBatch without claiming the model (fitDataset holds it). */
  trainBatch(x: Tensor, y: Tensor): Promise<number[]>;
  evaluate(x: Tensor, y: Tensor, args?: { batchSize?: number }): Promise<number[]>;
  readonly name: string;
  compiled?: { accuracyName: string | null };
}

function batchOf(b: unknown, where: string): { xs: Tensor; ys: Tensor } {
  const o = b as { xs?: unknown; ys?: unknown };
  if (!o || !(o.xs instanceof Tensor) || !(o.ys instanceof Tensor)) {
    throw new ValueError(`${where}: dataset elements must be { xs, ys } batches of tensors (use dataset.batch(n))`);
  }
  return { xs: o.xs, ys: o.ys };
}

function namesOf(model: DatasetModel, prefix = ''): string[] {
  const acc = model.compiled?.accuracyName;
  return [`${prefix}loss`, ...(acc ? [`${prefix}${acc}`] : [])];
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
  if (!model.compiled) throw new ValueError(`${where}: compile the model first (model.compile({ optimizer, loss }))`);
  if (args.distributed !== undefined) {
    throw new ValueError(`${where}: distributed training over a Dataset is not there yet; use fit(x, y, { distributed }) (docs/distributed.md)`);
  }
  const epochs = args.epochs ?? 1;
  if (!Number.isInteger(epochs) || epochs < 1) throw new ValueError(`${where}: epochs must be a positive integer, got ${describeValue(epochs)}`);
  const steps = args.batchesPerEpoch ?? dataset.size ?? 0;
  const history = { epoch: [] as number[], history: {} as Record<string, number[]> };
  const callbacks: Callback[] = [];
  const verbose = args.verbose ?? 1;
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
  const names = namesOf(model);
  model.stopTraining = false;
  for (const cb of callbacks) await cb.onTrainBegin();
  for (let epoch = args.initialEpoch ?? 0; epoch < epochs && !model.stopTraining; epoch++) {
    for (const cb of callbacks) await cb.onEpochBegin(epoch);
    const sums = names.map(() => 0);
    let count = 0;
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
      const values = await model.trainBatch(xs, ys);
      const n = xs.shape[0];
      values.forEach((v, i) => (sums[i] += v * n));
      count += n;
      const logs: Logs = { batch: b, size: n };
      names.forEach((k, i) => (logs[k] = sums[i] / count));
      for (const cb of callbacks) await cb.onBatchEnd(b, logs);
      b++;
    }
    await it.return?.();
    if (count === 0) throw new ValueError(`${where}: the dataset gave no batches in epoch ${epoch + 1}`);
    const logs: Logs = {};
    names.forEach((k, i) => (logs[k] = sums[i] / count));
    if (args.validationData && !model.stopTraining) {
      const v = Array.isArray(args.validationData)
        ? await model.evaluate(args.validationData[0], args.validationData[1], { batchSize: 100 })
        : await evaluateDataset(model, args.validationData);
      namesOf(model, 'val_').forEach((k, i) => (logs[k] = v[i]));
    }
    history.epoch.push(epoch);
    for (const [k, v] of Object.entries(logs)) (history.history[k] ??= []).push(v);
    for (const cb of callbacks) await cb.onEpochEnd(epoch, logs);
  }
  for (const cb of callbacks) await cb.onTrainEnd();
  return history;
}
