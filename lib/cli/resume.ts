// `convkit train` checkpoints its run after every epoch into OUT/checkpoint (the model, the
// optimizer state, the epoch count, the settings and the history so far), and
// `convkit train --resume OUT` carries on from there: the same data and settings, so a run
// killed at any moment loses at most the epoch it was in, and a resumed run ends with the same
// weights as one never interrupted (same seed and thread count).
import * as path from 'path';
import * as ck from '../index';
import { CliError } from './common';

export const CHECKPOINT = 'checkpoint';

/** The settings a run was started with, as resuming needs them (everything that shapes the training). */
export interface RunSettings {
  /** 'mnist', 'fashion-mnist' or an image folder's absolute path. */
  source: string;
  epochs: number;
  batchSize: number;
  optimizer: string;
  lr?: number;
  validationSplit?: number;
  augment?: ck.AugmentOptions;
  imageSize?: [number, number];
  channels?: 1 | 3;
  /** --base: the model folder the run's base came from (its absolute path), and --freeze-base. */
  base?: string;
  freezeBase?: boolean;
  seed: number;
  trainLimit?: number;
  testLimit?: number;
  /** --tensorboard: the event files' folder (absolute). */
  tensorboard?: string;
}

/** Per-epoch logs and times of the whole run (all sessions of it). */
export interface RunLog {
  epoch: number[];
  history: Record<string, number[]>;
  seconds: number[];
}

export interface Resumed {
  model: ck.LayersModel;
  settings: RunSettings;
  log: RunLog;
  /** Epochs already trained. */
  epoch: number;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown, min = 0): v is number => Number.isSafeInteger(v) && (v as number) >= min;
const numbers = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => typeof x === 'number');

/** The checkpoint callback: saves OUT/checkpoint with the run's settings and log after each whole epoch. */
export function runCheckpoint(out: string, meta: Record<string, unknown>, settings: RunSettings, log: RunLog): ck.Callback {
  return ck.callbacks.modelCheckpoint({
    filepath: `file://${path.join(out, CHECKPOINT)}`,
    includeOptimizer: true,
    metadata: () => ({ ...meta, convkitTrain: { settings, log } }),
  });
}

function checkSettings(v: unknown, where: string): RunSettings {
  const s = v as Partial<RunSettings>;
  const ok = isObject(v) && typeof s.source === 'string' && s.source.length > 0 && isCount(s.epochs, 1) && isCount(s.batchSize, 1)
    && typeof s.optimizer === 'string' && isCount(s.seed)
    && (s.lr === undefined || (typeof s.lr === 'number' && s.lr >= 0))
    && (s.validationSplit === undefined || (typeof s.validationSplit === 'number' && s.validationSplit >= 0 && s.validationSplit < 1))
    && (s.augment === undefined || isObject(s.augment))
    && (s.imageSize === undefined || (numbers(s.imageSize) && s.imageSize.length === 2 && s.imageSize.every((d) => isCount(d, 1))))
    && (s.channels === undefined || s.channels === 1 || s.channels === 3)
    && (s.base === undefined || typeof s.base === 'string') && (s.freezeBase === undefined || typeof s.freezeBase === 'boolean')
    && (s.trainLimit === undefined || isCount(s.trainLimit, 1)) && (s.testLimit === undefined || isCount(s.testLimit, 1))
    && (s.tensorboard === undefined || (typeof s.tensorboard === 'string' && s.tensorboard.length > 0));
  if (!ok) throw new CliError(`${where}: the run's settings (convkitTrain.settings in model.json) are missing or malformed`);
  return s as RunSettings;
}

function checkLog(v: unknown, where: string): RunLog {
  const l = v as Partial<RunLog>;
  if (!isObject(v) || !numbers(l.epoch) || !numbers(l.seconds) || !isObject(l.history) || !Object.values(l.history).every(numbers)) {
    throw new CliError(`${where}: the run's history (convkitTrain.log in model.json) is missing or malformed`);
  }
  return { epoch: [...l.epoch], seconds: [...l.seconds], history: Object.fromEntries(Object.entries(l.history).map(([k, a]) => [k, [...(a as number[])]])) };
}

/** Reads OUT/checkpoint: the model with its optimizer state, the settings, the log and the epoch count. */
export async function readCheckpoint(out: string): Promise<Resumed> {
  const dir = path.join(out, CHECKPOINT);
  const where = `--resume ${out}`;
  let model: ck.LayersModel;
  try {
    model = await ck.loadModel(`file://${dir}`);
  } catch (e) {
    if (e instanceof ck.ConvkitError) {
      throw new CliError(`${where}: no usable checkpoint in ${dir} (${e.message.replace(/^loadModel: /, '')}); a run writes one after its first epoch`);
    }
    throw e;
  }
  const meta = model.userDefinedMetadata ?? {};
  const train = meta.convkitTrain as { settings?: unknown; log?: unknown } | undefined;
  const state = meta.convkitCheckpoint as Partial<ck.CheckpointState> | undefined;
  if (!isObject(train) || !isObject(state) || !isCount(state.epoch, 1)) {
    throw new CliError(`${where}: ${dir} is a model but not a checkpoint of \`convkit train\` (no convkitTrain / convkitCheckpoint metadata)`);
  }
  if (!model.compiled || !isObject(meta.convkitOptimizer)) throw new CliError(`${where}: ${dir} holds no optimizer state to resume from`);
  const settings = checkSettings(train.settings, where);
  const log = checkLog(train.log, where);
  if (log.epoch.length !== state.epoch) throw new CliError(`${where}: the checkpoint is at epoch ${state.epoch} but its history has ${log.epoch.length} epochs`);
  // The final model keeps the run's own metadata, not the checkpoint's bookkeeping.
  const { convkitTrain: _t, convkitCheckpoint: _c, convkitOptimizer: _o, ...rest } = meta;
  model.userDefinedMetadata = rest;
  return { model, settings, log, epoch: state.epoch };
}
