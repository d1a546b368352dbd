// LayersModel: the training and inference loops every model shares (Sequential and functional).
// Each batch is one native call (gather, forward, loss, backward, update) on the model's own
// stream; the loop keeps the next batch queued while the current one runs, and awaits, so the
// event loop never blocks.
import { Callback, CustomCallback, CustomCallbackArgs, Logs } from '../callbacks';
import { describeValue, DeviceError, ShapeError, ValueError } from '../errors';
import { Communicator, jobOf } from '../distributed';
import { Layer } from '../layers/layer';
import { lossToJson } from '../losses';
import { metricToJson } from '../metrics';
import { StepSums } from '../native';
import { globalRng } from '../random';
import { Rng } from '../rng';
import { checkTensor, Tensor, tensor } from '../tensor';
import { ModelBase } from './base';
import { InputLayer } from '../layers/core';
import { ProgressLogger } from './progress';
import { saveModel, SaveOptions, SaveResult } from '../io/files';
import { toOnnx } from '../io/onnx';
import type { Dataset } from '../data/dataset';
import { DatasetSteps, evaluateDataset, fitDataset, FitDatasetArgs, LocalSteps } from './dataset-fit';
import { checkSyncBatchNorm, DataParallel, FingerprintField } from './data-parallel';

export interface FitArgs {
  epochs?: number;
  batchSize?: number;
  /** Fraction of the examples (the last ones, as Keras takes them) held out for validation. */
  validationSplit?: number;
  validationData?: [Tensor | Tensor[], Tensor | Tensor[]];
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
  /**
   * Data-parallel training over the ranks of an MPI job (the communicator ck.distributed.init()
   * resolves to): batchSize is the global batch, of which each rank trains its share, and the
   * gradients are summed over the ranks every step. Every rank must call fit alike (checked when
   * it starts); stopTraining and signal take effect at the end of an epoch, on every rank.
   * Alone (rank 0 of 1), fit trains as without it. See docs/distributed.md.
   */
  distributed?: Communicator;
  /**
   * With `distributed`: every batch norm normalizes with the statistics of the whole global
   * batch, summed over the ranks in each step (forward and backward), so that training equals one
   * process on the global batches, as PyTorch's SyncBatchNorm and Keras's
   * BatchNormalization(synchronized=True). Default false: each rank's batch norms use its own
   * rows (as PyTorch's DistributedDataParallel), and their moving statistics are averaged over
   * the ranks at each epoch's end. See docs/distributed.md.
   */
  syncBatchNorm?: boolean;
  /**
   * A test and debugging mode (default 1), one process on the cpu without `distributed`: each
   * batch's gradient is the sum of those of n slices, split as a data-parallel fit on n ranks
   * splits the global batch, each slice's rows run alone through forward and backward as that
   * rank runs its share, the gradients added in slice order. With as many threads per process
   * (CONVKIT_THREADS), this gives the weights of a fit on n ranks whose communicator sums in rank
   * order (ck.distributed.init({ orderedSum: true })) bit for bit, for models without batch norm.
   */
  gradientSlices?: number;
  /**
   * Keras's class_weight: { classId: weight }, each training example's loss multiplied by its
   * class's weight (1 for a class not listed); the class is the label (sparse), the one-hot
   * argmax, or the rounded binary target. Models with one output; not with sampleWeight.
   */
  classWeight?: Record<number, number>;
  /**
   * Keras's sample_weight: one loss weight per example ([N]). The loss is the mean over the batch
   * of weight * loss (Keras's sum over the batch size, not a mean over the weights); a
   * validationSplit's examples keep theirs in val_loss.
   */
  sampleWeight?: Tensor | Float32Array | number[];
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
  if (!Number.isInteger(v) || (v as number) < lo) throw new ValueError(`${where}: ${name} must be an integer >= ${lo}, got ${describeValue(v)}`);
  return v as number;
}

/** Marks a promise handled (it is awaited later, or a later one reports the same failure). */
function inFlight<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

/**
 * How many training steps fit queues behind the one it awaits, to keep the executor busy
 * between awaits: one on the CPU, whose steps are long; up to 8 on a GPU, whose steps are short
 * enough that a JS round trip per step would leave it idle, as long as their page-locked staging
 * (the batch rows of the host tensors among `data`) stays within 64 MiB. Each step still reports
 * its own sums, and after stopTraining (or an abort) the steps already queued run and report.
 */
export function stepsQueuedAhead(device: 'cpu' | 'cuda', data: Tensor[], batchSize: number): number {
  if (device !== 'cuda') return 1;
  const rowBytes = data.reduce((sum, t) => sum + (t.device === 'cpu' ? (4 * t.size) / Math.max(1, t.shape[0]) : 0), 0);
  return Math.max(1, Math.min(8, Math.floor(2 ** 26 / Math.max(1, rowBytes * batchSize))));
}

function range(start: number, end: number): Int32Array {
  const r = new Int32Array(end - start);
  for (let i = 0; i < r.length; i++) r[i] = start + i;
  return r;
}

/** A model's inputs or targets: one tensor, or one per model input / output. */
type Tensors = Tensor | Tensor[];
const handles = (ts: Tensor[]) => ts.map((t) => t.handle);

export abstract class LayersModel extends ModelBase {
  /** Metadata read from or written to model.json (e.g. class names). */
  userDefinedMetadata?: Record<string, unknown>;

  /**
   * Saves in the TensorFlow.js layers format: 'file://dir' gets model.json and weights.bin; or,
   * to 'onnx://path/model.onnx', as an ONNX model (ck.io.toOnnx, its class names from the metadata).
   */
  async save(url: string, options: SaveOptions = {}): Promise<SaveResult> {
    if (typeof url === 'string' && url.startsWith('onnx://')) {
      const classNames = options.metadata?.classNames;
      const written = await toOnnx(this, url, Array.isArray(classNames) ? { classNames: classNames as string[] } : {});
      return {
        modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'ONNX', modelTopologyBytes: written.bytes - written.weightBytes, weightDataBytes: written.weightBytes },
      };
    }
    return saveModel(this, url, { ...options, metadata: { ...(this.userDefinedMetadata ?? {}), ...(options.metadata ?? {}) } });
  }

  /** The names Keras logs per-output losses and metrics under: the output layers' names. */
  get outputNames(): string[] {
    this.build();
    return this.built!.outputLayers.map((l, o) => (l >= 0 ? this.layers[this.layerOfNative(l)].name : `output_${o}`));
  }

  /** @internal The Keras layer whose lowering (of any of its applications) contains native layer `native`. */
  layerOfNative(native: number): number {
    const node = this.built!.nodeRange.findIndex(([a, b]) => native >= a && native < b);
    return node < 0 ? -1 : this.built!.nodeLayer[node];
  }

  /** Checks targets (one tensor per output) against the outputs and the loss. */
  private checkTargets(y: unknown, n: number, op: string): Tensor[] {
    const where = `${this.name}.${op}`;
    this.requireCompiled(op);
    this.build();
    const outs = this.built!.outputShapes;
    const list = Array.isArray(y) && y.length > 0 && y.every((t) => t instanceof Tensor) ? y : [y];
    if (list.length !== outs.length) throw new ValueError(`${where}: the model has ${outs.length} output(s), got ${list.length} target tensor(s)`);
    return list.map((t, o) => this.checkTarget(t, outs[o], n, where, outs.length > 1 ? `y[${o}]` : 'y'));
  }

  private checkTarget(y: unknown, out: number[], n: number, where: string, what: string): Tensor {
    const t = checkTensor(y, where, what);
    const c = this.compiled!;
    if (t.shape[0] !== n) {
      throw new ShapeError(`${where}: x has ${n} examples but ${what} has ${t.shape[0] ?? 0} (${what} shape [${t.shape.join(',')}])`);
    }
    const sparse = c.loss.name === 'sparseCategoricalCrossentropy';
    const wantShape = sparse ? out.slice(0, -1) : out;
    const got = t.shape.slice(1);
    const sameSize = got.reduce((a, b) => a * b, 1) === wantShape.reduce((a, b) => a * b, 1);
    if (!sameSize) {
      throw new ShapeError(`${where}: targets [${t.shape.join(',')}] do not match the model output (None, ${out.join(', ')})${sparse ? ' (sparse labels: one class id per example)' : ''}`);
    }
    const classes = out[out.length - 1];
    if (sparse || c.loss.name === 'categoricalCrossentropy') {
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

  /**
   * Trains on (x, y). One training call at a time per model: a second fit (or fitDataset,
   * trainOnBatch, compile) while this one runs is a BusyError, as in tfjs; predict, evaluate, save
   * and get/setWeights may run beside it and see the weights between two steps.
   */
  async fit(x: Tensors, y: Tensors, args: FitArgs = {}): Promise<History> {
    this.beginTraining('fit');
    try {
      return await this.fitLoop(x, y, args);
    } finally {
      this.training = null;
    }
  }

  private async fitLoop(x: Tensors, y: Tensors, args: FitArgs): Promise<History> {
    const where = `${this.name}.fit`;
    const { xs, ys, epochs, batchSize, initialEpoch, nTrain, weights, val, job, slices } = await (async () => {
      try {
        return this.fitArguments(x, y, args, where);
      } catch (e) {
        // The other ranks of a data-parallel fit wait for this one at the fingerprint exchange:
        // they fail there with this rank's message instead of waiting until the timeout.
        await DataParallel.refuse(args?.distributed, e);
        throw e;
      }
    })();
    let dp: DataParallel | null = null;
    let seed = args.seed;
    if (job) {
      ({ dp, seed } = await DataParallel.start(this.net, job.comm, job.timeoutMs, this.built!.outputShapes.length, this.metricSlots(),
        this.fingerprint(args, batchSize, epochs, initialEpoch, nTrain, val ? val.rows.length : 0), args.seed, where,
        initialEpoch < epochs, args.syncBatchNorm === true));
    }
    try {
      return await this.trainEpochs(xs, ys, val, args, { batchSize, epochs, initialEpoch, nTrain, seed, dp, weights, slices });
    } catch (e) {
      // Every rank fails with this one, at the same step: none waits for it until the timeout.
      await dp?.fail(e);
      throw e;
    } finally {
      dp?.end();
    }
  }

  /** fit's arguments, checked, and the MPI job of its `distributed` option (null: none). */
  private fitArguments(x: Tensors, y: Tensors, args: FitArgs, where: string) {
    this.requireCompiled('fit');
    const { xs, n } = this.checkInputs(x, 'fit');
    const ys = this.checkTargets(y, n, 'fit');
    const epochs = intIn(args.epochs, 1, 1, where, 'epochs');
    const batchSize = intIn(args.batchSize, 32, 1, where, 'batchSize');
    const initialEpoch = intIn(args.initialEpoch, 0, 0, where, 'initialEpoch');
    const split = args.validationSplit ?? 0;
    if (typeof split !== 'number' || !(split >= 0 && split < 1)) throw new ValueError(`${where}: validationSplit must be in [0, 1), got ${describeValue(split)}`);
    if (args.signal !== undefined && !(args.signal instanceof AbortSignal)) throw new ValueError(`${where}: signal must be an AbortSignal`);
    const nTrain = args.validationData ? n : n - Math.floor(n * split);
    if (nTrain < 1) throw new ValueError(`${where}: no examples left to train on (validationSplit ${split} of ${n})`);
    const weights = this.lossWeights(args, ys, n, where);

    let val: { xs: Tensor[]; ys: Tensor[]; rows: Int32Array; weights?: Tensor } | null = null;
    if (args.validationData) {
      if (!Array.isArray(args.validationData) || args.validationData.length !== 2) throw new ValueError(`${where}: validationData must be [x, y]`);
      const [vx, vy] = args.validationData;
      const v = this.checkInputs(vx, 'fit (validationData)');
      val = { xs: v.xs, ys: this.checkTargets(vy, v.n, 'fit (validationData)'), rows: range(0, v.n) };
    } else if (nTrain < n) {
      // Keras splits sample weights with the data; class weights weigh the training loss only.
      val = { xs, ys, rows: range(nTrain, n), weights: args.sampleWeight !== undefined ? weights! : undefined };
    }

    checkSyncBatchNorm(args.syncBatchNorm, args.distributed, where);
    const job = args.distributed === undefined ? null : jobOf(args.distributed, where);
    const slices = intIn(args.gradientSlices, 1, 1, where, 'gradientSlices');
    if (slices > 1 && args.distributed !== undefined) throw new ValueError(`${where}: gradientSlices trains one process as that many ranks would; not with distributed`);
    if (slices > 1 && this.device !== 'cpu') throw new DeviceError(`${where}: gradientSlices runs models on the cpu (compiled for ${this.device})`);
    return { xs, ys, epochs, batchSize, initialEpoch, nTrain, weights, val, job, slices };
  }

  /** What every rank of a data-parallel fit must agree on (see DataParallel.start). */
  private fingerprint(args: FitArgs, batchSize: number, epochs: number, initialEpoch: number, nTrain: number,
    validationRows: number): FingerprintField[] {
    return [
      ...this.modelFingerprint(),
      { name: 'batchSize (the global batch)', value: batchSize },
      { name: 'the number of training examples', value: nTrain },
      { name: 'the number of validation examples', value: validationRows },
      { name: 'epochs', value: epochs },
      { name: 'initialEpoch', value: initialEpoch },
      { name: 'shuffle', value: args.shuffle === false ? 0 : 1 },
      { name: 'seed', value: args.seed === undefined ? undefined : args.seed >>> 0 },
      { name: 'syncBatchNorm', value: args.syncBatchNorm === true ? 1 : 0 },
    ];
  }

  /** The model and its compilation, as the ranks of a data-parallel fit must share them. */
  private modelFingerprint(): FingerprintField[] {
    const c = this.compiled!;
    // The layers' kinds and options (less their names and initializers, which the weights from
    // rank 0 make moot), the graph, and every weight's shape.
    const layers = this.layers.map((l) => {
      const config = Object.entries(l.getConfig()).filter(([k]) => k !== 'name' && !k.endsWith('Initializer'));
      return [l.className, config];
    });
    const weights = this.net.params().map((p) => [p.layer, p.name, p.shape, p.trainable]);
    return [
      { name: 'the model (its layers and weight shapes)', value: JSON.stringify([layers, this.graph(), weights]) },
      { name: 'the parameter count', value: this.countParams() },
      { name: 'the optimizer', value: JSON.stringify([c.optimizer.kind, c.optimizer.getConfig(), lossToJson(c.loss), c.accuracyName, c.metrics.map(metricToJson)]) },
    ];
  }

  /**
   * @internal fitDataset's data-parallel steps over the job behind `comm` (dataset-fit.ts), after
   * the ranks agreed and took rank 0's state; null alone (rank 0 of 1: fitDataset trains as
   * without it).
   */
  async datasetSteps(comm: unknown, o: { epochs: number; initialEpoch: number; batchesPerEpoch?: number; syncBatchNorm: boolean }, where: string): Promise<DatasetSteps | null> {
    const job = jobOf(comm, where);
    if (!job) return null;
    const fields: FingerprintField[] = [
      ...this.modelFingerprint(),
      { name: 'epochs', value: o.epochs },
      { name: 'initialEpoch', value: o.initialEpoch },
      { name: 'batchesPerEpoch', value: o.batchesPerEpoch },
      { name: 'syncBatchNorm', value: o.syncBatchNorm ? 1 : 0 },
    ];
    const { dp, seed } = await DataParallel.start(this.net, job.comm, job.timeoutMs, this.built!.outputShapes.length, this.metricSlots(), fields,
      undefined, where, o.initialEpoch < o.epochs, o.syncBatchNorm);
    const rng = new Rng(seed);
    const seedBase = rng.nextUint32();
    let step = 0;
    // The optimizer's step count (rank 0's, taken by every rank), for a per-step schedule.
    let iteration = this.compiled!.optimizer.schedule ? await this.net.iterations() : 0;
    // A rank whose dataset has ended takes the remaining steps with no rows: its last batch gives
    // the step the tensors' shapes.
    let last: { xs: Tensor[]; ys: Tensor[] } | null = null;
    const net = this.net;
    return {
      rank: dp.rank,
      agree: (rows) => dp.agree(rows),
      train: (batch, globalRows) => {
        let rows: Int32Array = new Int32Array(0);
        if (batch) {
          const { xs, n } = this.checkInputs(batch.xs, 'fitDataset');
          last = { xs, ys: this.checkTargets(batch.ys, n, 'fitDataset') };
          rows = range(0, n);
        } else if (!last) {
          throw new ValueError(`${where}: rank ${dp.rank}'s dataset gave no batch while other ranks' did; every rank's dataset must give at least one`);
        }
        // Each rank's dropout masks differ (the rank moves the seed), as in fit.
        const seed = (seedBase + step++ * 0x9e3779b1 + dp.rank * 0x85ebca6b) % 2 ** 52;
        this.scheduleRate(iteration++);
        return inFlight(dp.step(net.trainStep(handles(last.xs), handles(last.ys), rows, seed, globalRows)));
      },
      resetMetrics: () => net.resetMetrics(),
      logs: (sums) => this.stepLogs(sums, ''),
      endEpoch: (sums, stop, lastEpoch) => dp.endEpoch(sums, stop, lastEpoch),
      fail: (e) => dp.fail(e),
      end: () => dp.end(),
    };
  }

  /** @internal fitDataset's steps on this process (dataset-fit.ts), as fit's: the epoch's running sums. */
  localSteps(): LocalSteps {
    const net = this.net;
    // The optimizer's step count, for a per-step schedule (read once, then counted here).
    let iteration: number | null = null;
    return {
      resetMetrics: () => net.resetMetrics(),
      train: async (batch) => {
        this.requireCompiled('trainOnBatch');
        const { xs, n } = this.checkInputs(batch.xs, 'trainOnBatch');
        const ys = this.checkTargets(batch.ys, n, 'trainOnBatch');
        if (this.compiled!.optimizer.schedule) {
          iteration ??= await net.iterations();
          this.scheduleRate(iteration++);
        }
        return net.trainStep(handles(xs), handles(ys), range(0, n), globalRng().nextUint32());
      },
      logs: (sums) => this.stepLogs(sums, ''),
    };
  }

  /** @internal The names of evaluate's values (loss, accuracy, metrics, user metrics), each with `prefix`. */
  logNames(prefix: string): string[] {
    const c = this.requireCompiled('evaluate');
    const none: StepSums = { lossSum: 0, correct: 0, count: 0, outputLoss: [], outputCorrect: [], metricSums: [] };
    return [...Object.keys(this.stepLogs(none, prefix)), ...c.userMetrics.map((m) => `${prefix}${m.name}`)];
  }

  /** fit's per-example loss weights from sampleWeight or classWeight (Keras's rules), or null. */
  private lossWeights(args: FitArgs, ys: Tensor[], n: number, where: string): Tensor | null {
    const { classWeight, sampleWeight } = args;
    if (classWeight !== undefined && sampleWeight !== undefined) {
      throw new ValueError(`${where}: classWeight and sampleWeight cannot both be given (as in Keras); fold the class weights into sampleWeight`);
    }
    const checked = (w: ArrayLike<number>, what: string): Tensor => {
      for (let i = 0; i < w.length; i++) {
        if (!(Number.isFinite(w[i]) && w[i] >= 0)) throw new ValueError(`${where}: ${what} must be finite numbers >= 0, got ${describeValue(w[i])} at index ${i}`);
      }
      return tensor(Float32Array.from(w), [n]);
    };
    if (sampleWeight !== undefined) {
      if (sampleWeight instanceof Tensor) {
        if (sampleWeight.shape.length !== 1 || sampleWeight.shape[0] !== n) {
          throw new ShapeError(`${where}: sampleWeight must be [${n}] (one weight per example), got [${sampleWeight.shape.join(', ')}]`);
        }
        return checked(sampleWeight.dataSync(), 'sampleWeight');
      }
      if (!(sampleWeight instanceof Float32Array) && !Array.isArray(sampleWeight)) {
        throw new ValueError(`${where}: sampleWeight must be a tensor, Float32Array or array of ${n} numbers, got ${describeValue(sampleWeight)}`);
      }
      if (sampleWeight.length !== n) throw new ShapeError(`${where}: sampleWeight has ${sampleWeight.length} weights for ${n} examples`);
      return checked(sampleWeight, 'sampleWeight');
    }
    if (classWeight === undefined) return null;
    if (classWeight === null || typeof classWeight !== 'object' || Array.isArray(classWeight)) {
      throw new ValueError(`${where}: classWeight must be an object { classId: weight }, got ${describeValue(classWeight)}`);
    }
    if (ys.length !== 1) throw new ValueError(`${where}: classWeight needs a model with one output (this one has ${ys.length}); use sampleWeight`);
    const byClass = new Map<number, number>();
    for (const [key, w] of Object.entries(classWeight)) {
      if (!/^\d+$/.test(key)) throw new ValueError(`${where}: classWeight keys must be class ids (integers >= 0), got '${key}'`);
      if (typeof w !== 'number' || !Number.isFinite(w) || w < 0) throw new ValueError(`${where}: classWeight[${key}] must be a finite number >= 0, got ${describeValue(w)}`);
      byClass.set(Number(key), w);
    }
    const y = ys[0];
    const cols = y.shape.length === 1 ? 1 : y.shape[y.shape.length - 1];
    if (y.shape.length > 2) throw new ValueError(`${where}: classWeight needs one label per example (targets [N] or [N, classes]), got targets [${y.shape.join(', ')}]; use sampleWeight`);
    const labels = y.dataSync();
    const w = new Float32Array(n);
    for (let r = 0; r < n; r++) {
      let id = 0;
      if (cols === 1) {
        id = Math.round(labels[r]);
      } else {
        for (let c = 1; c < cols; c++) if (labels[r * cols + c] > labels[r * cols + id]) id = c;
      }
      w[r] = byClass.get(id) ?? 1;
    }
    return tensor(w, [n]);
  }

  private async trainEpochs(xs: Tensor[], ys: Tensor[], val: { xs: Tensor[]; ys: Tensor[]; rows: Int32Array; weights?: Tensor } | null,
    args: FitArgs, o: { batchSize: number; epochs: number; initialEpoch: number; nTrain: number; seed?: number; dp: DataParallel | null; weights: Tensor | null; slices: number }): Promise<History> {
    const { batchSize, epochs, initialEpoch, nTrain, dp } = o;
    const rng = new Rng(o.seed);
    const seedBase = rng.nextUint32();
    const steps = Math.ceil(nTrain / batchSize);
    // Resuming at initialEpoch k shuffles and drops out as an uninterrupted run did from epoch k.
    if (args.shuffle !== false) for (let e = 0; e < initialEpoch; e++) rng.permutation(nTrain);
    const history = new History();
    const callbacks: Callback[] = [history];
    // In a data-parallel fit, only rank 0 prints.
    const verbose = dp && dp.rank > 0 ? 0 : args.verbose ?? 1;
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
    const logsOf = (s: StepSums, prefix = ''): Logs => this.stepLogs(s, prefix);
    const stepsAhead = stepsQueuedAhead(this.device, [...xs, ...ys], batchSize);

    this.stopTraining = false;
    let step = initialEpoch * steps;
    // The optimizer's step count, for a per-step learning-rate schedule.
    let iteration = this.compiled!.optimizer.schedule ? await net.iterations() : 0;
    for (const cb of callbacks) await cb.onTrainBegin();
    for (let epoch = initialEpoch; epoch < epochs && !this.stopTraining; epoch++) {
      for (const cb of callbacks) await cb.onEpochBegin(epoch);
      const order = args.shuffle === false ? range(0, nTrain) : rng.permutation(nTrain);
      net.resetMetrics();
      const launch = (b: number): Promise<StepSums> => {
        const rows = order.subarray(b * batchSize, Math.min(nTrain, (b + 1) * batchSize));
        const seed = (seedBase + step++ * 0x9e3779b1) % 2 ** 52;
        this.scheduleRate(iteration++);
        const w = o.weights ? [o.weights.handle] : undefined;
        if (!dp) return inFlight(net.trainStep(handles(xs), handles(ys), rows, seed, null, w ?? null, 0, o.slices));
        // Every rank draws the dropout masks of its rows' places in the global batch, and its
        // loss averages over the whole global batch: the step one process would take.
        const share = dp.share(rows);
        return inFlight(dp.step(net.trainStep(handles(xs), handles(ys), share.rows, seed, rows.length, w ?? null, share.first)));
      };
      // Every rank of a data-parallel fit runs every step of an epoch (the others wait for its
      // gradients): a stop takes effect at the end of the epoch.
      const stopping = () => !dp && (args.signal?.aborted || this.stopTraining);
      let sums: StepSums = { lossSum: 0, correct: 0, count: 0, outputLoss: [], outputCorrect: [], metricSums: [] };
      const queued: Promise<StepSums>[] = [launch(0)];
      let launched = 1;
      for (let b = 0; b < steps && queued.length; b++) {
        for (const cb of callbacks) await cb.onBatchBegin(b, { batch: b, size: batchSize });
        while (queued.length <= stepsAhead && launched < steps && !stopping()) {
          queued.push(launch(launched++));
        }
        sums = await queued.shift()!;
        for (const cb of callbacks) await cb.onBatchEnd(b, { batch: b, size: batchSize, ...logsOf(sums) });
        if (args.signal?.aborted) this.stopTraining = true;
      }
      if (dp) ({ sums, stop: this.stopTraining } = await dp.endEpoch(sums, this.stopTraining, epoch === epochs - 1));
      const logs = logsOf(sums);
      if (val && !this.stopTraining) Object.assign(logs, await this.evaluateRows(val.xs, val.ys, val.rows, batchSize, 'val_', val.weights));
      for (const cb of callbacks) await cb.onEpochEnd(epoch, logs);
    }
    for (const cb of callbacks) await cb.onTrainEnd();
    return history;
  }

  /**
   * With a per-step schedule as the learning rate: its rate for the update after `done`
   * completed steps, queued on the model's stream ahead of that step (so it applies to exactly
   * that step, however many steps are queued before it).
   */
  private scheduleRate(done: number): void {
    const optimizer = this.compiled!.optimizer;
    if (!optimizer.schedule) return;
    const lr = optimizer.schedule.rate(done);
    if (lr === optimizer.learningRate) return;
    this.net.setLearningRate(lr);
    optimizer.learningRate = lr;
  }

  /** How many sums the native step keeps for the built-in metrics (all outputs). */
  private metricSlots(): number {
    return this.built!.outputShapes.length * this.compiled!.metrics.reduce((n, m) => n + m.slots, 0);
  }

  /**
   * Logs for running sums, as Keras names them: loss (the sum over outputs), accuracy and the
   * built-in metrics; with several outputs also <output>_loss, <output>_accuracy and
   * <output>_<metric> per output.
   */
  private stepLogs(s: StepSums, prefix: string): Logs {
    const c = this.compiled!;
    const count = Math.max(1, s.count);
    const logs: Logs = { [`${prefix}loss`]: s.lossSum / count };
    const names = this.outputNames;
    const slots = c.metrics.reduce((n, m) => n + m.slots, 0);
    const metricLogs = (o: number, head: string) => {
      let at = o * slots;
      for (const m of c.metrics) {
        // A step that has not run yet (a rank with no rows) has no sums: its metrics log 0.
        const sums = s.metricSums.length ? s.metricSums.slice(at, at + m.slots) : new Array<number>(m.slots).fill(0);
        if (s.metricSums.length) m.record(sums, count, o);
        for (const [key, value] of m.logEntries(sums, count)) logs[`${head}${key}`] = value;
        at += m.slots;
      }
    };
    if (names.length > 1) {
      names.forEach((name, o) => { logs[`${prefix}${name}_loss`] = s.outputLoss[o] / count; });
      if (c.accuracyName) names.forEach((name, o) => { logs[`${prefix}${name}_${c.accuracyName}`] = s.outputCorrect[o] / count; });
      names.forEach((name, o) => metricLogs(o, `${prefix}${name}_`));
    } else {
      if (c.accuracyName) logs[`${prefix}${c.accuracyName}`] = s.correct / count;
      metricLogs(0, prefix);
    }
    return logs;
  }

  /** Loss, accuracy and user metrics over the given rows, as logs. */
  private async evaluateRows(xs: Tensor[], ys: Tensor[], rows: Int32Array, batchSize: number, prefix = '', weights?: Tensor): Promise<Logs> {
    const c = this.requireCompiled('evaluate');
    if (c.userMetrics.length && ys.length > 1) throw new ValueError(`${this.name}: user metric functions need a model with one output`);
    const net = this.net;
    // Queued in one turn (with the prediction user metrics read), the evaluation sees one set of
    // weights even while a fit trains; its own sums leave the fit's alone.
    net.resetEvalMetrics();
    const steps: Promise<StepSums>[] = [];
    for (let b = 0; b < rows.length; b += batchSize) {
      steps.push(inFlight(net.evalStep(handles(xs), handles(ys), rows.subarray(b, Math.min(rows.length, b + batchSize)), weights ? [weights.handle] : undefined)));
    }
    const start = rows[0];
    const pred = c.userMetrics.length ? this.predictRows(xs, start, rows.length, batchSize)[0] : null;
    const logs = this.stepLogs((await Promise.all(steps)).at(-1)!, prefix);
    if (pred) {
      const whole = rows.every((r, i) => r === start + i) && start === 0 && rows.length === xs[0].shape[0];
      // Beside the predictions, which are host tensors (sliceRows reads any device).
      const yTrue = whole ? ys[0].to('cpu') : sliceRows(ys[0], start, rows.length);
      for (const m of c.userMetrics) logs[`${prefix}${m.name}`] = Number(await m.fn(yTrue, pred));
    }
    return logs;
  }

  /**
   * Mean loss and metrics over (x, y): [loss, accuracy?, ...user metrics]. sampleWeight weighs
   * each example's loss as in fit (the metrics stay unweighted, as Keras's `metrics` are).
   */
  async evaluate(x: Tensors, y: Tensors, args: { batchSize?: number; verbose?: number; sampleWeight?: FitArgs['sampleWeight'] } = {}): Promise<number[]> {
    const { xs, n } = this.checkInputs(x, 'evaluate');
    const ys = this.checkTargets(y, n, 'evaluate');
    const batchSize = intIn(args.batchSize, 32, 1, `${this.name}.evaluate`, 'batchSize');
    const weights = args.sampleWeight === undefined ? undefined : this.lossWeights({ sampleWeight: args.sampleWeight }, ys, n, `${this.name}.evaluate`)!;
    return Object.values(await this.evaluateRows(xs, ys, range(0, n), batchSize, '', weights));
  }

  /**
   * Outputs for x, computed in batches; returns at once, the values come when ready. A model
   * with several outputs gives one tensor per output.
   */
  predict(x: Tensors, args?: { batchSize?: number; verbose?: number }): Tensor;
  predict(x: Tensors, args?: { batchSize?: number; verbose?: number }): Tensor | Tensor[];
  predict(x: Tensors, args: { batchSize?: number; verbose?: number } = {}): Tensor | Tensor[] {
    const { xs, n } = this.checkInputs(x, 'predict');
    return this.oneOrMany(this.predictRows(xs, 0, n, intIn(args.batchSize, 32, 1, `${this.name}.predict`, 'batchSize')));
  }

  private oneOrMany(ts: Tensor[]): Tensor | Tensor[] {
    return ts.length === 1 ? ts[0] : ts;
  }

  private predictRows(xs: Tensor[], start: number, count: number, batchSize: number): Tensor[] {
    this.build();
    const outs = this.built!.outputLayers;
    if (outs.some((l) => l < 0)) {
      throw new ValueError(`${this.name}.predict: an output of this model is one of its inputs`);
    }
    return this.net.layerOutputs(handles(xs), start, count, outs, batchSize).map((h) => new Tensor(h));
  }

  predictOnBatch(x: Tensors): Tensor;
  predictOnBatch(x: Tensors): Tensor | Tensor[];
  predictOnBatch(x: Tensors): Tensor | Tensor[] {
    const { xs, n } = this.checkInputs(x, 'predictOnBatch');
    return this.oneOrMany(this.predictRows(xs, 0, n, n));
  }

  /** One training step on exactly this batch: [loss, accuracy?, metrics...] (Keras's order). */
  async trainOnBatch(x: Tensors, y: Tensors): Promise<number[]> {
    this.beginTraining('trainOnBatch');
    try {
      this.requireCompiled('trainOnBatch');
      const { xs, n } = this.checkInputs(x, 'trainOnBatch');
      const ys = this.checkTargets(y, n, 'trainOnBatch');
      this.net.resetMetrics();
      if (this.compiled!.optimizer.schedule) this.scheduleRate(await this.net.iterations());
      const sums = await this.net.trainStep(handles(xs), handles(ys), range(0, n), globalRng().nextUint32());
      return Object.values(this.stepLogs(sums, ''));
    } finally {
      this.training = null;
    }
  }

  /** Trains on a Dataset of { xs, ys } batches (e.g. ck.data.imageFolderDataset(...).train.batch(32)), as tfjs. */
  async fitDataset(dataset: Dataset<{ xs: Tensor; ys: Tensor }>, args: FitDatasetArgs = {}): Promise<History> {
    this.beginTraining('fitDataset');
    try {
      const history = new History();
      const user = args.callbacks === undefined ? [] : Array.isArray(args.callbacks) ? args.callbacks : [args.callbacks];
      await fitDataset(this, dataset, { ...args, callbacks: [history, ...user] });
      return history;
    } finally {
      this.training = null;
    }
  }

  /** Mean loss and metrics over a Dataset of { xs, ys } batches: [loss, accuracy?]. */
  async evaluateDataset(dataset: Dataset<{ xs: Tensor; ys: Tensor }>, args: { batches?: number } = {}): Promise<number[]> {
    return evaluateDataset(this, dataset, args);
  }

  /** The output of `layer` (an index or a layer of this model) for x, in inference mode. */
  layerOutput(x: Tensors, layer: number | Layer, args: { batchSize?: number } = {}): Tensor {
    const { xs, n } = this.checkInputs(x, 'layerOutput');
    const i = typeof layer === 'number' ? layer : this.layers.indexOf(layer);
    if (!Number.isInteger(i) || i < 0 || i >= this.layers.length) throw new ValueError(`${this.name}.layerOutput: no such layer`);
    // A layer lowered to nothing (an input layer) shows the value it passes on.
    let native = -1;
    for (let j = i; j >= 0 && native < 0; j--) {
      const [a, b] = this.built!.nativeRange[j];
      if (b > a) native = b - 1;
      else if (this.layers[j] instanceof InputLayer) break;
    }
    if (native < 0) return xs[Math.max(0, this.inputLayers().indexOf(this.layers[i]))];
    const batchSize = intIn(args.batchSize, 32, 1, `${this.name}.layerOutput`, 'batchSize');
    return new Tensor(this.net.layerOutputs(handles(xs), 0, n, [native], batchSize)[0]);
  }

  /** The model's input layers, in input order. */
  protected abstract inputLayers(): Layer[];

  /** @internal The Keras topology (modelTopology of model.json) with each layer as layerJson gives it. */
  abstract topology(layerJson: (layer: Layer) => { class_name: string; config: unknown }): { class_name: string; config: unknown };
}

function sliceRows(t: Tensor, start: number, count: number): Tensor {
  const row = t.size / t.shape[0];
  const data = t.dataSync().slice(start * row, (start + count) * row);
  return tensor(data, [count, ...t.shape.slice(1)]);
}
