// Training callbacks in tfjs's style (onTrainBegin/End, onEpochBegin/End, onBatchBegin/End) and
// the Keras ones users expect: earlyStopping, modelCheckpoint, learning-rate schedules,
// reduceLROnPlateau, csvLogger, terminateOnNaN.
import * as fs from 'fs';
import { describeValue, IOError, ValueError } from './errors';

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

export interface ReduceLROnPlateauArgs {
  /** The log to watch (default 'val_loss'). */
  monitor?: string;
  /** new rate = rate * factor (default 0.1; must be < 1). */
  factor?: number;
  /** Epochs without improvement before the rate is cut (default 10). */
  patience?: number;
  /** 'auto' watches for a fall, or a rise when the monitor names an accuracy. */
  mode?: 'auto' | 'min' | 'max';
  /** The least change that counts as an improvement (default 1e-4). */
  minDelta?: number;
  /** Epochs after a cut during which no epoch counts against patience (default 0). */
  cooldown?: number;
  /** The rate is never cut below this (default 0). */
  minLr?: number;
  /** 1 prints each cut. */
  verbose?: 0 | 1;
}

function checked(where: string, name: string, v: unknown, def: number, ok: (n: number) => boolean, expected: string): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw new ValueError(`${where}: ${name} must be ${expected}, got ${describeValue(v)}`);
  return v;
}

/**
 * Keras's ReduceLROnPlateau: when the monitored log has not improved by more than minDelta for
 * `patience` epochs, the learning rate is multiplied by `factor` (not below minLr), then
 * `cooldown` epochs pass before epochs count against patience again. The new rate is queued on
 * the model's stream, so the next step uses it.
 */
export class ReduceLROnPlateau extends Callback {
  readonly monitor: string;
  readonly factor: number;
  readonly patience: number;
  readonly minDelta: number;
  readonly cooldown: number;
  readonly minLr: number;
  private readonly mode: 'min' | 'max';
  private readonly verbose: number;
  private best = Infinity;
  private wait = 0;
  private cooldownCounter = 0;

  constructor(args: ReduceLROnPlateauArgs = {}) {
    super();
    const where = 'reduceLROnPlateau';
    if (args === null || typeof args !== 'object') throw new ValueError(`${where}: options must be an object, got ${describeValue(args)}`);
    this.monitor = args.monitor ?? 'val_loss';
    if (typeof this.monitor !== 'string') throw new ValueError(`${where}: monitor must be a log name, got ${describeValue(this.monitor)}`);
    this.factor = checked(where, 'factor', args.factor, 0.1, (f) => f >= 0 && f < 1, 'a number in [0, 1) (a factor >= 1 would not reduce the rate)');
    this.patience = checked(where, 'patience', args.patience, 10, (p) => Number.isInteger(p) && p >= 0, 'an integer >= 0');
    this.minDelta = checked(where, 'minDelta', args.minDelta, 1e-4, (d) => d >= 0, 'a number >= 0');
    this.cooldown = checked(where, 'cooldown', args.cooldown, 0, (c) => Number.isInteger(c) && c >= 0, 'an integer >= 0');
    this.minLr = checked(where, 'minLr', args.minLr, 0, (m) => m >= 0, 'a number >= 0');
    if (args.mode !== undefined && !['auto', 'min', 'max'].includes(args.mode)) {
      throw new ValueError(`${where}: mode must be 'auto', 'min' or 'max', got ${describeValue(args.mode)}`);
    }
    this.mode = modeFor(this.monitor, args.mode ?? 'auto');
    this.verbose = args.verbose ?? 0;
  }

  async onTrainBegin() {
    this.best = this.mode === 'min' ? Infinity : -Infinity;
    this.wait = 0;
    this.cooldownCounter = 0;
  }

  async onEpochEnd(epoch: number, logs: Logs = {}) {
    const current = logs[this.monitor];
    if (current === undefined || !this.model) return;
    if (this.cooldownCounter > 0) {
      this.cooldownCounter--;
      this.wait = 0;
    }
    if (improved(this.mode, current, this.best, this.minDelta)) {
      this.best = current;
      this.wait = 0;
      return;
    }
    if (this.cooldownCounter > 0) return;
    this.wait++;
    if (this.wait < this.patience) return;
    const old = this.model.learningRate;
    if (old <= this.minLr) return;
    const lr = Math.max(old * this.factor, this.minLr);
    this.model.learningRate = lr;
    if (this.verbose > 0) process.stdout.write(`\nEpoch ${epoch + 1}: ReduceLROnPlateau reducing learning rate to ${lr}.\n`);
    this.cooldownCounter = this.cooldown;
    this.wait = 0;
  }
}

/** A number as Python's repr writes a float (Keras's CSV values): 1.0, 0.001, 1e-05, nan, inf. */
function pythonFloat(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  // Python switches to an exponent below 1e-4 and from 1e16; JavaScript's own threshold differs.
  const [mantissa, e] = v.toExponential().split('e');
  const power = Number(e);
  if (power < -4 || power >= 16) return `${mantissa}e${power < 0 ? '-' : '+'}${String(Math.abs(power)).padStart(2, '0')}`;
  const fixed = String(v);
  return Number.isInteger(v) ? `${fixed}.0` : fixed;
}

/**
 * Keras's CSVLogger: one row per epoch (epoch, then the logs sorted by name), `separator`
 * between fields and CRLF line ends as Python's csv module writes them, values as Python prints
 * floats. The columns are fixed by the first epoch; as in Keras, val_ columns are added (NA)
 * when that epoch had none. append: true continues an existing file (its header kept).
 */
export class CSVLogger extends Callback {
  readonly filename: string;
  private readonly separator: string;
  private readonly append: boolean;
  private fd: number | null = null;
  private keys: string[] | null = null;

  constructor(filename: string, args: { separator?: string; append?: boolean } = {}) {
    super();
    if (typeof filename !== 'string' || filename === '') throw new ValueError(`csvLogger: filename must be a non-empty string, got ${describeValue(filename)}`);
    if (args.separator !== undefined && (typeof args.separator !== 'string' || args.separator.length !== 1)) {
      throw new ValueError(`csvLogger: separator must be one character, got ${describeValue(args.separator)}`);
    }
    this.filename = filename;
    this.separator = args.separator ?? ',';
    this.append = args.append ?? false;
  }

  private field(v: string): string {
    return v.includes(this.separator) || /["\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
  }

  private write(fields: string[]): void {
    fs.writeSync(this.fd!, `${fields.map((f) => this.field(f)).join(this.separator)}\r\n`);
  }

  async onTrainBegin() {
    this.keys = null;
    try {
      this.fd = fs.openSync(this.filename, this.append ? 'a' : 'w');
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new IOError(`csvLogger: cannot open '${this.filename}': ${err.message}`, err.code, this.filename);
    }
  }

  async onEpochEnd(epoch: number, logs: Logs = {}) {
    if (this.fd === null) return;
    if (this.keys === null) {
      const keys = Object.keys(logs).sort();
      if (keys.length && !keys.some((k) => k.startsWith('val_'))) keys.push(...keys.map((k) => `val_${k}`));
      this.keys = keys;
      // Appending to a file that already has lines: its header stands.
      const hasHeader = this.append && fs.fstatSync(this.fd).size > 0;
      if (!hasHeader) this.write(['epoch', ...keys]);
    }
    this.write([String(epoch), ...this.keys.map((k) => (logs[k] === undefined ? 'NA' : pythonFloat(logs[k])))]);
  }

  async onTrainEnd() {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
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
  reduceLROnPlateau: (args?: ReduceLROnPlateauArgs) => new ReduceLROnPlateau(args),
  csvLogger: (filename: string, args?: { separator?: string; append?: boolean }) => new CSVLogger(filename, args),
};
