// Training callbacks in tfjs's style (onTrainBegin/End, onEpochBegin/End, onBatchBegin/End) and
// the Keras ones users expect: earlyStopping, modelCheckpoint, learning-rate schedules,
// terminateOnNaN.
import { ValueError } from './errors';

export type Logs = Record<string, number>;

/** What callbacks may touch on the model being trained. */
export interface TrainingModel {
  stopTraining: boolean;
  learningRate: number;
  getWeights(): import('./tensor').Tensor[];
  setWeights(weights: import('./tensor').Tensor[]): void;
  save(url: string, options?: { includeOptimizer?: boolean; metadata?: Record<string, unknown>; checkpoint?: Record<string, unknown> }): Promise<unknown>;
}

export abstract class Callback {
  model?: TrainingModel;
  params: Record<string, unknown> = {};
  setModel(model: TrainingModel): void {
    this.model = model;
  }
  async onTrainBegin(_logs?: Logs): Promise<void> {}
  async onTrainEnd(_logs?: Logs): Promise<void> {}
  async onEpochBegin(_epoch: number, _logs?: Logs): Promise<void> {}
  async onEpochEnd(_epoch: number, _logs?: Logs): Promise<void> {}
  async onBatchBegin(_batch: number, _logs?: Logs): Promise<void> {}
  async onBatchEnd(_batch: number, _logs?: Logs): Promise<void> {}
}

/** Plain functions as in tfjs: { onEpochEnd: async (epoch, logs) => ... }. */
export type CustomCallbackArgs = Partial<Record<'onTrainBegin' | 'onTrainEnd', (logs?: Logs) => unknown>> &
  Partial<Record<'onEpochBegin' | 'onEpochEnd' | 'onBatchBegin' | 'onBatchEnd', (n: number, logs?: Logs) => unknown>>;

export class CustomCallback extends Callback {
  constructor(private readonly fns: CustomCallbackArgs) {
    super();
  }
  async onTrainBegin(logs?: Logs) { await this.fns.onTrainBegin?.(logs); }
  async onTrainEnd(logs?: Logs) { await this.fns.onTrainEnd?.(logs); }
  async onEpochBegin(e: number, logs?: Logs) { await this.fns.onEpochBegin?.(e, logs); }
  async onEpochEnd(e: number, logs?: Logs) { await this.fns.onEpochEnd?.(e, logs); }
  async onBatchBegin(b: number, logs?: Logs) { await this.fns.onBatchBegin?.(b, logs); }
  async onBatchEnd(b: number, logs?: Logs) { await this.fns.onBatchEnd?.(b, logs); }
}

function improved(mode: 'min' | 'max', current: number, best: number, minDelta: number): boolean {
  return mode === 'min' ? current < best - minDelta : current > best + minDelta;
}

function modeFor(monitor: string, mode: 'auto' | 'min' | 'max'): 'min' | 'max' {
  if (mode !== 'auto') return mode;
  return /acc/.test(monitor) ? 'max' : 'min';
}

export class EarlyStopping extends Callback {
  readonly monitor: string;
  private readonly mode: 'min' | 'max';
  private best = NaN;
  private wait = 0;
  private bestWeights: import('./tensor').Tensor[] | null = null;
  stoppedEpoch = -1;

  constructor(private readonly args: { monitor?: string; patience?: number; minDelta?: number; mode?: 'auto' | 'min' | 'max'; restoreBestWeights?: boolean } = {}) {
    super();
    this.monitor = args.monitor ?? 'val_loss';
    this.mode = modeFor(this.monitor, args.mode ?? 'auto');
  }

  async onTrainBegin() {
    // Reusable, as in Keras: each fit starts afresh.
    this.best = this.mode === 'min' ? Infinity : -Infinity;
    this.wait = 0;
    this.bestWeights = null;
    this.stoppedEpoch = -1;
  }

  async onEpochEnd(epoch: number, logs: Logs = {}) {
    const current = logs[this.monitor];
    if (current === undefined) return;
    const better = improved(this.mode, current, this.best, Math.abs(this.args.minDelta ?? 0));
    // Keras: the first epoch's weights stand in for the best until an epoch improves (so a
    // monitor that is NaN from the start still restores something).
    if (this.args.restoreBestWeights && this.model && (better || !this.bestWeights)) {
      this.bestWeights?.forEach((t) => t.dispose());
      this.bestWeights = this.model.getWeights();
    }
    if (better) {
      this.best = current;
      this.wait = 0;
      return;
    }
    this.wait++;
    // Keras and tfjs: stop once `patience` epochs in a row brought no improvement; Keras never
    // stops at epoch 0 (a first epoch that does not improve, e.g. NaN, does not end training).
    if (this.wait >= (this.args.patience ?? 0) && epoch > 0 && this.model) {
      this.stoppedEpoch = epoch;
      this.model.stopTraining = true;
      if (this.bestWeights) this.model.setWeights(this.bestWeights);
    }
  }
}

export interface ModelCheckpointArgs {
  /** A folder ('file://' optional); '{epoch}' becomes the epoch number (1-based), as in Keras. */
  filepath: string;
  monitor?: string;
  saveBestOnly?: boolean;
  mode?: 'auto' | 'min' | 'max';
  /** Save the optimizer state and step count too (default true), so training can resume. */
  includeOptimizer?: boolean;
  /**
   * Saved in every checkpoint's userDefinedMetadata (e.g. what a resumed run needs to load its
   * data); a function is called at each save with the epoch and its logs.
   */
  metadata?: Record<string, unknown> | ((epoch: number, logs: Logs) => Record<string, unknown>);
}

/** Where training stood at a checkpoint: userDefinedMetadata.convkitCheckpoint of the saved model. */
export interface CheckpointState {
  /** Epochs completed: pass it as fit's initialEpoch to carry on. */
  epoch: number;
  /** fit's epochs, batchSize, steps per epoch and seed. */
  epochs: number;
  batchSize?: number;
  steps?: number;
  seed?: number;
  /** The completed epoch's logs (loss, metrics). */
  logs: Logs;
}

/**
 * Saves the model at the end of each epoch (Keras's ModelCheckpoint), with the optimizer state
 * and the epoch count: ck.loadModel(dir) and fit({ initialEpoch: checkpoint.epoch, seed }) carry
 * on exactly where it stopped. Each save is atomic. An epoch cut short (an AbortSignal,
 * terminateOnNaN) is not saved, so a checkpoint always holds whole epochs.
 */
export class ModelCheckpoint extends Callback {
  private best: number;
  private readonly mode: 'min' | 'max';
  private batches = 0;

  constructor(private readonly args: ModelCheckpointArgs) {
    super();
    if (typeof args?.filepath !== 'string') throw new ValueError('modelCheckpoint: filepath is required');
    this.mode = modeFor(args.monitor ?? 'val_loss', args.mode ?? 'auto');
    this.best = this.mode === 'min' ? Infinity : -Infinity;
  }

  async onEpochBegin() {
    this.batches = 0;
  }

  async onBatchEnd() {
    this.batches++;
  }

  async onEpochEnd(epoch: number, logs: Logs = {}) {
    if (!this.model) return;
    const steps = Number(this.params.steps ?? 0);
    if (steps > 0 && this.batches < steps) return;
    if (this.args.saveBestOnly) {
      const current = logs[this.args.monitor ?? 'val_loss'];
      if (current === undefined || !improved(this.mode, current, this.best, 0)) return;
      this.best = current;
    }
    const path = this.args.filepath.replace('{epoch}', String(epoch + 1));
    const url = path.includes('://') ? path : `file://${path}`;
    const p = this.params as { epochs?: number; batchSize?: number; steps?: number; seed?: number };
    const checkpoint: CheckpointState = { epoch: epoch + 1, epochs: Number(p.epochs ?? epoch + 1), logs: { ...logs } };
    if (p.batchSize !== undefined) checkpoint.batchSize = p.batchSize;
    if (p.steps) checkpoint.steps = p.steps;
    if (p.seed !== undefined) checkpoint.seed = p.seed;
    await this.model.save(url, {
      includeOptimizer: this.args.includeOptimizer ?? true,
      metadata: typeof this.args.metadata === 'function' ? this.args.metadata(epoch, logs) : this.args.metadata,
      checkpoint: checkpoint as unknown as Record<string, unknown>,
    });
  }
}

/** Sets the learning rate at the start of each epoch from schedule(epoch, currentLr). */
export class LearningRateScheduler extends Callback {
  constructor(private readonly schedule: (epoch: number, lr: number) => number) {
    super();
  }

  async onEpochBegin(epoch: number) {
    if (!this.model) return;
    const lr = this.schedule(epoch, this.model.learningRate);
    if (typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0) {
      throw new ValueError(`learningRateScheduler: the schedule returned ${String(lr)} for epoch ${epoch}`);
    }
    this.model.learningRate = lr;
  }
}

export class TerminateOnNaN extends Callback {
  async onBatchEnd(_batch: number, logs: Logs = {}) {
    if (this.model && logs.loss !== undefined && !Number.isFinite(logs.loss)) this.model.stopTraining = true;
  }
}

/** Schedules (epoch -> learning rate) for learningRateScheduler. */
export const schedules = {
  /** lr * factor^floor(epoch / every) */
  step: (o: { initial: number; factor: number; every: number }) => (epoch: number) => o.initial * o.factor ** Math.floor(epoch / o.every),
  /** lr * rate^(epoch / decayEpochs) */
  exponential: (o: { initial: number; rate: number; decayEpochs?: number }) => (epoch: number) => o.initial * o.rate ** (epoch / (o.decayEpochs ?? 1)),
  /** cosine decay from initial to minimum over `epochs` epochs */
  cosine: (o: { initial: number; epochs: number; minimum?: number }) => (epoch: number) => {
    const min = o.minimum ?? 0;
    const t = Math.min(epoch, o.epochs) / o.epochs;
    return min + 0.5 * (o.initial - min) * (1 + Math.cos(Math.PI * t));
  },
};

export const callbacks = {
  earlyStopping: (args?: ConstructorParameters<typeof EarlyStopping>[0]) => new EarlyStopping(args),
  modelCheckpoint: (args: ModelCheckpointArgs) => new ModelCheckpoint(args),
  learningRateScheduler: (schedule: (epoch: number, lr: number) => number) => new LearningRateScheduler(schedule),
  terminateOnNaN: () => new TerminateOnNaN(),
};
