// Keras's TensorBoard callback: the epoch logs as scalars, `epoch_<name>` in LOGDIR/train and the
// `val_` logs (without the prefix) in LOGDIR/validation; with updateFreq 'batch' or N, the
// batch logs as `batch_<name>` every N steps; with histogramFreq N, each weight's histogram
// every N epochs; with writeGraph, the model's Keras config for TensorBoard's graph dashboard.
import * as path from 'path';
import { Callback, Logs } from '../callbacks';
import { describeValue, ValueError } from '../errors';
import { SavableModel } from './files';
import { EventFileWriter, histogramOf } from './tfevents';
import { layerToJson } from './topology';

export interface TensorBoardArgs {
  /** Epochs between weight histograms; 0 (the default): none. */
  histogramFreq?: number;
  /** Write the model's graph (its Keras config) once per fit. Default true. */
  writeGraph?: boolean;
  /** 'epoch' (default): scalars per epoch; 'batch' or N: also the batch logs every N steps. */
  updateFreq?: 'epoch' | 'batch' | number;
}

const OP = 'tensorBoard';

function nonNegativeInt(v: unknown, key: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new ValueError(`${OP}: ${key} must be an integer >= 0, got ${describeValue(v)}`);
  }
  return v;
}

export class TensorBoard extends Callback {
  readonly logDir: string;
  private readonly histogramFreq: number;
  private readonly writeGraph: boolean;
  private readonly batchEvery: number;  // 0: epoch logs only
  private train: EventFileWriter | null = null;
  private validation: EventFileWriter | null = null;
  private step = 0;  // training steps since this callback's first fit, as Keras counts them

  constructor(logDir: string, args: TensorBoardArgs = {}) {
    super();
    if (typeof logDir !== 'string' || logDir === '') throw new ValueError(`${OP}: logDir must be a non-empty string, got ${describeValue(logDir)}`);
    const known = new Set(['histogramFreq', 'writeGraph', 'updateFreq']);
    for (const key of Object.keys(args)) {
      if (!known.has(key)) throw new ValueError(`${OP}: unknown option '${key}' (expected one of ${[...known].join(', ')})`);
    }
    this.logDir = logDir;
    this.histogramFreq = nonNegativeInt(args.histogramFreq, 'histogramFreq', 0);
    if (args.writeGraph !== undefined && typeof args.writeGraph !== 'boolean') {
      throw new ValueError(`${OP}: writeGraph must be a boolean, got ${describeValue(args.writeGraph)}`);
    }
    this.writeGraph = args.writeGraph ?? true;
    const freq = args.updateFreq ?? 'epoch';
    if (freq === 'epoch') this.batchEvery = 0;
    else if (freq === 'batch') this.batchEvery = 1;
    else if (typeof freq === 'number' && Number.isInteger(freq) && freq >= 1) this.batchEvery = freq;
    else throw new ValueError(`${OP}: updateFreq must be 'epoch', 'batch' or an integer >= 1, got ${describeValue(freq)}`);
  }

  /** The model as io sees it: its layers, their weight names and the Keras topology. */
  private inspected(): SavableModel | null {
    const m = this.model as unknown as Partial<SavableModel> | undefined;
    return m && Array.isArray(m.layers) && typeof m.getLayerWeights === 'function' && typeof m.topology === 'function'
      ? (m as SavableModel)
      : null;
  }

  async onTrainBegin() {
    this.train = new EventFileWriter(path.join(this.logDir, 'train'), OP);
    this.validation = new EventFileWriter(path.join(this.logDir, 'validation'), OP);
    const model = this.inspected();
    if (this.writeGraph && model) {
      model.build();
      this.train.kerasModel(model.topology(layerToJson), 0);
    }
  }

  async onBatchEnd(_batch: number, logs: Logs = {}) {
    this.step++;
    if (!this.batchEvery || this.step % this.batchEvery !== 0 || !this.train) return;
    for (const [key, value] of Object.entries(logs)) {
      if (key !== 'batch' && key !== 'size') this.train.scalar(`batch_${key}`, value, this.step);
    }
  }

  async onEpochEnd(epoch: number, logs: Logs = {}) {
    if (!this.train || !this.validation) return;
    for (const [key, value] of Object.entries(logs)) {
      if (key.startsWith('val_')) this.validation.scalar(`epoch_${key.slice(4)}`, value, epoch);
      else this.train.scalar(`epoch_${key}`, value, epoch);
    }
    const model = this.inspected();
    if (this.histogramFreq && epoch % this.histogramFreq === 0 && model) this.writeHistograms(model, epoch);
  }

  private writeHistograms(model: SavableModel, epoch: number): void {
    model.layers.forEach((layer, i) => {
      const weights = model.getLayerWeights(layer);
      if (!weights.length) return;
      const specs = layer.weightSpecs(model.built!.layerShapes[i].input);
      weights.forEach((w, k) => {
        this.train!.histogram(`${layer.name}/${specs[k].name}/histogram`, histogramOf(w.dataSync()), epoch);
      });
    });
  }

  async onTrainEnd() {
    this.train?.close();
    this.validation?.close();
    this.train = this.validation = null;
  }
}

/** ck.callbacks.tensorBoard(logDir, { histogramFreq, writeGraph, updateFreq }) */
export const tensorBoard = (logDir: string, args?: TensorBoardArgs): TensorBoard => new TensorBoard(logDir, args);
