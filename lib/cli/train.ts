// convkit train <mnist | fashion-mnist | DIR>: loads the data, builds (or reads) a model, fits it
// with a live progress bar (or plain lines, or JSON lines), measures it on held-out images and
// writes the model, its history and its pictures to the output folder. With --distributed, every
// rank of an MPI job (mpirun) runs it: they train data-parallel and rank 0 alone prints and writes.
import * as fs from 'fs';
import * as path from 'path';
import * as ck from '../index';
import {
  argmaxRows, checkDevice, CliError, writeFileAtomic, DATASETS, formatCount, isDatasetName, ModelMeta, output, Output, percent, silentOutput,
} from './common';
import { checkModelFits, seedsCnn, specModel, transferModel, TransferModel, vggCnn } from './models';
import { ReportFiles, writeConfusion, writeConvPictures, writeCurves } from './report';
import { CHECKPOINT, readCheckpoint, Resumed, RunLog, RunSettings, runCheckpoint } from './resume';

export interface TrainOptions {
  epochs?: number;
  batchSize?: number;
  optimizer: string;
  lr?: number;
  validationSplit?: number;
  augment?: ck.AugmentOptions;
  imageSize?: [number, number];
  channels?: 1 | 3;
  device: string;
  /** The GPU's math (ck.setPrecision); the CPU computes in fp32. */
  precision?: ck.Precision;
  seed?: number;
  model?: string;
  /** A trained model folder whose layers before its classifier become the base (transfer learning). */
  base?: string;
  /** Keeps the --base layers' weights fixed: only the new head trains. */
  freezeBase?: boolean;
  out?: string;
  json: boolean;
  threads?: number;
  trainLimit?: number;
  testLimit?: number;
  /** A run's output folder to carry on from its last checkpoint. */
  resume?: string;
  /** Data-parallel training over the ranks of the MPI job that started this process (docs/distributed.md). */
  distributed?: boolean;
  /** A folder for TensorBoard's event files (ck.callbacks.tensorBoard), kept by --resume. */
  tensorboard?: string;
}

interface Split {
  x: ck.Tensor;
  y: ck.Tensor;
  labels: Float32Array;
}

interface Data {
  name: string;
  label: string;
  shape: [number, number, number];
  classNames: string[];
  train: Split;
  validation: Split | null;
  /** What the final accuracy is measured on. */
  test: Split;
  testKind: 'test' | 'validation' | 'training';
  skipped: number;
}

function split(images: ck.Tensor, labels: Float32Array, classes: number, start: number, end: number): Split {
  const [, h, w, c] = images.shape;
  const row = h * w * c;
  const x = ck.tensor(images.dataSync().slice(start * row, end * row), [end - start, h, w, c]);
  const l = labels.slice(start, end);
  return { x, y: ck.toCategorical(l, classes), labels: l };
}

function whole(images: ck.Tensor, labels: ck.Tensor, classes: number): Split {
  const l = labels.dataSync().slice();
  return { x: images, y: ck.toCategorical(l, classes), labels: l };
}

async function loadData(source: string, opts: TrainOptions, out: Output): Promise<Data> {
  if (isDatasetName(source)) {
    const ds = DATASETS[source];
    if (opts.imageSize && (opts.imageSize[0] !== 28 || opts.imageSize[1] !== 28)) {
      throw new CliError(`--image-size: ${ds.label} images are 28x28 (--image-size applies to image folders)`, 2);
    }
    if (opts.channels !== undefined && opts.channels !== 1) throw new CliError(`--channels: ${ds.label} images have 1 channel (--channels applies to image folders)`, 2);
    let loaded: Awaited<ReturnType<typeof ds.load>>;
    try {
      loaded = await ds.load({ trainLimit: opts.trainLimit, testLimit: opts.testLimit });
    } catch (e) {
      if (e instanceof ck.ConvkitError) throw new CliError(e.message.replace(/^datasets: /, ''));
      throw e;
    }
    const { train, test, classNames } = loaded;
    const classes = classNames.length;
    const n = train.images.shape[0];
    const vs = opts.validationSplit ?? 0.1;
    const nVal = Math.floor(n * vs);
    if (n - nVal < 1) throw new CliError(`--validation-split ${vs} leaves no training images of ${n}`);
    const labels = train.labels.dataSync();
    // As Keras's validationSplit: the last rows are held out.
    return {
      name: source,
      label: ds.label,
      shape: [28, 28, 1],
      classNames,
      train: nVal ? split(train.images, labels, classes, 0, n - nVal) : whole(train.images, train.labels, classes),
      validation: nVal ? split(train.images, labels, classes, n - nVal, n) : null,
      test: whole(test.images, test.labels, classes),
      testKind: 'test',
      skipped: 0,
    };
  }
  const imageSize = opts.imageSize ?? [32, 32];
  const channels = opts.channels ?? 3;
  const vs = opts.validationSplit ?? 0.2;
  let folder: ck.ImageFolderResult;
  try {
    folder = await ck.data.imageFolder(source, { imageSize, channels, validationSplit: vs, seed: opts.seed, onWarning: (m) => out.warn(m.replace(/^imageFolder: /, '')) });
  } catch (e) {
    if (e instanceof ck.ConvkitError) throw new CliError(e.message.replace(/^imageFolder: /, ''));
    throw e;
  }
  const classes = folder.classNames.length;
  const train = whole(folder.train.images, folder.train.labels, classes);
  let validation = folder.validation ? whole(folder.validation.images, folder.validation.labels, classes) : null;
  if (validation && validation.labels.length === 0) {
    out.warn(`--validation-split ${vs}: every class has a single image, so none is held out`);
    validation = null;
  }
  if (opts.trainLimit !== undefined && opts.trainLimit < train.labels.length) {
    Object.assign(train, split(train.x, train.labels, classes, 0, opts.trainLimit));
  }
  const name = path.basename(path.resolve(source));
  return {
    name,
    label: name,
    shape: [imageSize[0], imageSize[1], channels],
    classNames: folder.classNames,
    train,
    validation,
    test: validation ?? train,
    testKind: validation ? 'validation' : 'training',
    skipped: folder.skipped.length,
  };
}

function optimizerFor(name: string, lr: number | undefined): ck.Optimizer {
  const opts = lr === undefined ? {} : { learningRate: lr };
  switch (name.toLowerCase()) {
    case 'adam': return ck.optimizers.adam(opts);
    case 'adamw': return ck.optimizers.adamw(opts);
    case 'sgd': return ck.optimizers.sgd(opts);
    case 'rmsprop': return ck.optimizers.rmsprop(opts);
    case 'adagrad': return ck.optimizers.adagrad(opts);
    case 'nadam': return ck.optimizers.nadam(opts);
    default: throw new CliError(`--optimizer must be adam, sgd, rmsprop, adamw, adagrad or nadam, got '${name}'`, 2);
  }
}

function timestamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

function outputDir(opts: TrainOptions, name: string): string {
  if (opts.out) return path.resolve(opts.out);
  const base = path.resolve('runs', `${name.replace(/[^A-Za-z0-9._-]+/g, '_')}-${timestamp()}`);
  let dir = base;
  for (let i = 2; fs.existsSync(dir); i++) dir = `${base}-${i}`;
  return dir;
}

/** Each epoch's logs and wall time, into the run's log (which a resumed run continues). */
class EpochRecorder extends ck.Callback {
  private t0 = 0;

  constructor(readonly log: RunLog) {
    super();
  }

  async onEpochBegin() {
    this.t0 = performance.now();
  }

  async onEpochEnd(epoch: number, logs: Record<string, number> = {}) {
    this.log.epoch.push(epoch + 1);
    this.log.seconds.push(round((performance.now() - this.t0) / 1000, 3));
    for (const [k, v] of Object.entries(logs)) (this.log.history[k] ??= []).push(v);
  }
}

/** One JSON line per epoch in --json mode, once the epoch's checkpoint is on disk. */
class EpochLines extends ck.Callback {
  constructor(private readonly out: Output, private readonly log: RunLog, private readonly trainImages: number, private readonly epochs: number) {
    super();
  }

  async onEpochEnd(epoch: number, logs: Record<string, number> = {}) {
    const seconds = this.log.seconds.at(-1) ?? 0;
    this.out.emit({ type: 'epoch', epoch: epoch + 1, epochs: this.epochs, ...logs, seconds, imagesPerSecond: Math.round(this.trainImages / Math.max(seconds, 1e-9)) });
  }
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** A resumed run's options: its own settings, with --epochs (a new total), --threads and --json from this command. */
function resumedOptions(resumed: Resumed, opts: TrainOptions): TrainOptions {
  const s = resumed.settings;
  const epochs = opts.epochs ?? s.epochs;
  if (epochs < resumed.epoch) {
    throw new CliError(`--epochs ${epochs}: the run in ${opts.resume} has already trained ${resumed.epoch} epochs`, 2);
  }
  return {
    ...s, epochs, device: opts.device, precision: opts.precision, json: opts.json, threads: opts.threads, out: opts.resume, resume: opts.resume,
  };
}

/**
 * A resumed model (loaded onto the CPU) recompiled for `device`, with its optimizer state and
 * step count carried over: compile alone would start the optimizer afresh.
 */
async function moveResumed(model: ck.LayersModel, device: 'cuda' | 'auto'): Promise<void> {
  const c = model.compiled!;
  const iterations = await model.net.iterations();
  const state = model.net.getOptimizerState();
  model.compile({ optimizer: c.optimizer, loss: c.loss, metrics: c.accuracyName ? [c.accuracyName] : [], device });
  model.net.setOptimizerState(state, iterations);
}

/**
 * --distributed: joins the MPI job that started this process. Every rank reads the same data
 * (and, with --resume, the same checkpoint: a shared file system, or the same paths on every
 * machine); fit's start gives them rank 0's weights and optimizer state.
 */
async function joinJob(opts: TrainOptions): Promise<ck.distributed.Communicator> {
  if (opts.device === 'cuda') throw new CliError('--distributed trains on the CPU for now; leave out --device cuda', 2);
  const comm = await ck.distributed.init();
  if (comm.size === 1) {
    output(opts.json).warn('--distributed: this job has one process (start it with mpirun -np N convkit train ...), so it trains alone');
  }
  return comm;
}

/** Rank 0's seed, on every rank: the weights, the validation split, shuffling and augmentation must agree. */
async function jobSeed(comm: ck.distributed.Communicator, seed: number): Promise<number> {
  // below 2^31: two halves of 16 bits each travel exactly as float32
  const [high, low] = (await comm.broadcast(ck.tensor([Math.floor(seed / 2 ** 16), seed % 2 ** 16], [2]))).dataSync();
  return high * 2 ** 16 + low;
}

export async function train(sourceArg: string | undefined, opts: TrainOptions): Promise<void> {
  const comm = opts.distributed ? await joinJob(opts) : null;
  // Only rank 0 prints, checkpoints and writes the run folder.
  const lead = !comm || comm.rank === 0;
  const out = lead ? output(opts.json) : silentOutput(opts.json);
  const device = comm ? 'cpu' : checkDevice(opts.device);
  const resumed = opts.resume !== undefined ? await readCheckpoint(path.resolve(opts.resume)) : null;
  if (resumed) opts = resumedOptions(resumed, opts);
  const source = resumed ? resumed.settings.source : sourceArg;
  if (source === undefined) throw new CliError("missing required argument 'source' (mnist, fashion-mnist or an image folder), or --resume DIR", 2);
  if (opts.threads !== undefined) ck.setThreads(opts.threads);
  ck.setPrecision(opts.precision ?? 'fp32');
  const drawn = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
  const seed = comm ? await jobSeed(comm, drawn) : drawn;
  ck.setSeed(seed);
  const optimizer = resumed ? resumed.model.compiled!.optimizer : optimizerFor(opts.optimizer, opts.lr);
  if (opts.base !== undefined && opts.model !== undefined) throw new CliError('--base and --model both give the model; use one', 2);
  if (opts.freezeBase && opts.base === undefined) throw new CliError('--freeze-base needs --base MODEL (the model whose layers to freeze)', 2);
  if (!isDatasetName(source) && !fs.existsSync(source)) {
    throw new CliError(`${source} is neither a dataset (mnist, fashion-mnist) nor an existing folder`);
  }

  const t0 = performance.now();
  const data = await loadData(source, opts, out);
  const classes = data.classNames.length;
  let model: ck.LayersModel;
  let transfer: TransferModel | null = null;
  if (resumed) {
    // the checkpoint's model, compiled with its optimizer and that optimizer's state
    model = resumed.model;
    checkModelFits(model, data.shape, classes, `--resume ${opts.resume}`);
    if (device !== 'cpu') await moveResumed(model, device);
  } else if (opts.base !== undefined) {
    transfer = await transferModel(opts.base, classes, Boolean(opts.freezeBase));
    model = transfer.model;
    const input = model.inputShape;
    if (input.length !== 3 || input.some((d, i) => d !== data.shape[i])) {
      const fix = isDatasetName(source) ? `${data.label} images are 28x28x1; use a base trained on 28x28 greyscale images`
        : `pass --image-size ${input[1]}x${input[0]} --channels ${input[2]} to resize the images to what the base takes`;
      throw new CliError(`--base ${opts.base} takes input (None, ${input.join(', ')}) but the images are (None, ${data.shape.join(', ')}); ${fix}`);
    }
    checkModelFits(model, data.shape, classes, `--base ${opts.base}`);
    model.compile({ optimizer, loss: 'categoricalCrossentropy', metrics: ['accuracy'], device });
  } else {
    model = opts.model ? specModel(opts.model, data.shape)
      : isDatasetName(source) ? seedsCnn(data.shape, classes) : vggCnn(data.shape, classes);
    checkModelFits(model, data.shape, classes, opts.model ? `--model ${opts.model}` : 'model');
    model.compile({ optimizer, loss: 'categoricalCrossentropy', metrics: ['accuracy'], device });
  }

  const isDataset = isDatasetName(source);
  const epochs = opts.epochs ?? (isDataset ? 3 : 10);
  const batchSize = opts.batchSize ?? (isDataset ? 100 : 32);
  const initialEpoch = resumed?.epoch ?? 0;
  const nTrain = data.train.labels.length;
  const nVal = data.validation?.labels.length ?? 0;
  const dir = resumed ? path.resolve(opts.resume!) : outputDir(opts, data.name);
  const info = ck.devices()[0];
  const gpu = model.device === 'cuda' ? ck.cudaStatus().devices[0] : null;
  const precision = opts.precision ?? 'fp32';
  const ranks = comm ? `, ${comm.size} ranks (data-parallel: batch ${batchSize} across them)` : '';
  const where = gpu ? `GPU ${gpu.name}, ${precision}` : `CPU ${info.isa}, ${info.threads} threads${ranks}${precision === 'fp32' ? '' : ` (--precision ${precision} applies to GPUs only)`}`;

  if (lead && !opts.json) {
    model.summary();
    out.info(`Training on ${formatCount(nTrain)} images of ${data.label}${nVal ? `, validating on ${formatCount(nVal)}` : ''} (${data.shape[1]}x${data.shape[0]}x${data.shape[2]}, ${classes} classes) ` +
      `with ${optimizer.className} lr ${optimizer.learningRate}, batch ${batchSize}, ${epochs} epoch${epochs === 1 ? '' : 's'}` +
      `${opts.augment ? `, augmented (${Object.keys(opts.augment).join(', ')})` : ''}; ${where}, seed ${seed}`);
    if (transfer) {
      out.info(`Transfer from ${opts.base}: ${transfer.base.length} layers reused${opts.freezeBase ? ' and frozen' : ' (all layers train)'}, ` +
        `${transfer.dropped.join(', ')} replaced by a new ${classes}-class head`);
    }
    if (resumed) out.info(`Resuming from the checkpoint after epoch ${initialEpoch} (${initialEpoch >= epochs ? 'no epochs left: writing the results' : `${epochs - initialEpoch} to go`})`);
  }

  const meta: ModelMeta & Record<string, unknown> = {
    classNames: data.classNames,
    imageSize: [data.shape[0], data.shape[1]],
    channels: data.shape[2] as 1 | 3,
    preprocessing: 'pixels / 255',
    dataset: isDataset ? data.name : path.resolve(source),
    trainedBy: `convkit ${ck.version}`,
  };
  const settings: RunSettings = {
    source: isDataset ? source : path.resolve(source), epochs, batchSize, optimizer: opts.optimizer, seed,
    ...(opts.lr !== undefined && { lr: opts.lr }),
    ...(opts.validationSplit !== undefined && { validationSplit: opts.validationSplit }),
    ...(opts.augment !== undefined && { augment: opts.augment }),
    ...(opts.imageSize !== undefined && { imageSize: opts.imageSize }),
    ...(opts.channels !== undefined && { channels: opts.channels }),
    ...(opts.base !== undefined && { base: path.resolve(opts.base), freezeBase: Boolean(opts.freezeBase) }),
    ...(opts.trainLimit !== undefined && { trainLimit: opts.trainLimit }),
    ...(opts.testLimit !== undefined && { testLimit: opts.testLimit }),
    ...(opts.tensorboard !== undefined && { tensorboard: path.resolve(opts.tensorboard) }),
  };
  const log: RunLog = resumed?.log ?? { epoch: [], history: {}, seconds: [] };
  // Recorded, then checkpointed, then reported: an epoch printed is an epoch on disk.
  const recorder = new EpochRecorder(log);
  const callbacks: ck.Callback[] = lead ? [recorder, runCheckpoint(dir, meta, settings, log), new EpochLines(out, log, nTrain, epochs)] : [];
  if (lead && settings.tensorboard) callbacks.push(ck.callbacks.tensorBoard(settings.tensorboard));
  let augmenter: ck.AugmentImages | null = null;
  if (opts.augment) {
    augmenter = ck.data.augmentImages(data.train.x, opts.augment, { seed });
    callbacks.push(augmenter);
  }
  // Ctrl-C stops after the current batch and still writes everything; a second one quits.
  const stop = new AbortController();
  const onSigint = () => {
    if (stop.signal.aborted) process.exit(130);
    stop.abort();
    process.stderr.write('\nconvkit: stopping after this batch (Ctrl-C again to quit now)\n');
  };
  process.on('SIGINT', onSigint);
  const tFit = performance.now();
  let history: ck.History;
  try {
    history = await model.fit(data.train.x, data.train.y, {
      epochs, initialEpoch, batchSize, seed, callbacks, signal: stop.signal,
      validationData: data.validation ? [data.validation.x, data.validation.y] : undefined,
      verbose: opts.json ? 0 : process.stdout.isTTY ? 1 : 2,
      distributed: comm ?? undefined,
    });
  } finally {
    process.off('SIGINT', onSigint);
  }
  // The ranks hold the same weights: rank 0 measures and writes the results.
  if (!lead) return;
  const fitSeconds = (performance.now() - tFit) / 1000;
  const epochsRun = history.epoch.length;
  const imagesPerSecond = Math.round((nTrain * epochsRun) / Math.max(1e-9, fitSeconds));

  // The final measurement: the held-out test set (datasets) or the validation images (folders).
  const [testLoss, testAccuracy] = await model.evaluate(data.test.x, data.test.y, { batchSize: Math.max(batchSize, 100) });
  const probs = await model.predict(data.test.x, { batchSize: Math.max(batchSize, 100) }).data();
  const predicted = argmaxRows(probs, classes);
  const matrix = ck.viz.confusionMatrix(data.test.labels, predicted, classes);

  fs.mkdirSync(dir, { recursive: true });
  await model.save(`file://${dir}`, { metadata: meta });
  const historyFile = path.join(dir, 'history.json');
  // A partial epoch (Ctrl-C) is in fit's history but not in the checkpointed log.
  const partial = history.epoch.filter((e) => !log.epoch.includes(e + 1));
  const runEpochs = [...log.epoch, ...partial.map((e) => e + 1)];
  const runHistory: Record<string, number[]> = {};
  for (const [k, v] of Object.entries(log.history)) runHistory[k] = [...v];
  for (const e of partial) {
    const i = history.epoch.indexOf(e);
    for (const [k, v] of Object.entries(history.history)) (runHistory[k] ??= []).push(v[i]);
  }
  writeFileAtomic(historyFile, `${JSON.stringify({
    epoch: runEpochs,
    history: runHistory,
    seconds: log.seconds,
    test: { loss: testLoss, accuracy: testAccuracy, images: data.test.labels.length, on: data.testKind },
    params: { source, epochs, batchSize, optimizer: optimizer.className, learningRate: optimizer.learningRate, validationSplit: opts.validationSplit ?? (isDataset ? 0.1 : 0.2), augment: opts.augment ?? null, seed, imageSize: meta.imageSize, channels: meta.channels, base: settings.base ?? null, freezeBase: settings.freezeBase ?? false },
  }, null, 2)}\n`);

  const files: ReportFiles & { model: string; weights: string; history: string } = {
    model: path.join(dir, 'model.json'), weights: path.join(dir, 'weights.bin'), history: historyFile,
  };
  Object.assign(files, await writeCurves(dir, runHistory, `${data.label}: training curves`));
  Object.assign(files, await writeConfusion(dir, matrix, data.classNames,
    `Confusion matrix on ${formatCount(data.test.labels.length)} ${data.testKind} images (accuracy ${percent(testAccuracy)})`));
  const [, h, w, c] = data.test.x.shape;
  const example = ck.tensor(data.test.x.dataSync().slice(0, h * w * c), [1, h, w, c]);
  Object.assign(files, await writeConvPictures(dir, model, example));
  const totalSeconds = (performance.now() - t0) / 1000;

  out.emit({
    type: 'result',
    dataset: data.name,
    testAccuracy,
    testLoss,
    testImages: data.test.labels.length,
    evaluatedOn: data.testKind,
    trainImages: nTrain,
    validationImages: nVal,
    classNames: data.classNames,
    epochs: runEpochs.length,
    resumedFrom: resumed ? initialEpoch : null,
    base: settings.base ?? null,
    freezeBase: settings.freezeBase ?? false,
    stoppedEarly: initialEpoch + epochsRun < epochs || stop.signal.aborted,
    interrupted: stop.signal.aborted,
    imagesPerSecond,
    trainSeconds: round(fitSeconds, 3),
    seconds: round(totalSeconds, 3),
    skippedImages: data.skipped,
    seed,
    device: gpu ? { type: 'cuda', name: gpu.name, precision } : { type: 'cpu', isa: info.isa, threads: info.threads },
    ranks: comm?.size ?? 1,
    out: dir,
    checkpoint: path.join(dir, CHECKPOINT),
    files,
  });
  if (!opts.json) {
    const where = data.testKind === 'test' ? 'held-out test images' : data.testKind === 'validation' ? 'validation images' : 'training images (no validation split)';
    out.info(`Test accuracy: ${percent(testAccuracy)} (loss ${testLoss.toFixed(4)}) on ${formatCount(data.test.labels.length)} ${where}`);
    if (stop.signal.aborted) {
      out.info(`Interrupted (Ctrl-C) during epoch ${initialEpoch + epochsRun}: the figures are for the model as it was then`);
      out.info(`Carry on from the checkpoint after epoch ${log.epoch.length}: convkit train --resume ${path.relative(process.cwd(), dir) || '.'}`);
    }
    out.info(`Trained ${epochsRun} epoch${epochsRun === 1 ? '' : 's'} in ${fitSeconds.toFixed(1)}s (${formatCount(imagesPerSecond)} images/s); total ${totalSeconds.toFixed(1)}s`);
    out.info(`Saved to ${path.relative(process.cwd(), dir) || '.'}/: model.json, weights.bin, history.json, ${['curves', 'confusion'].map((n) => `${n}.png`).join(', ')}` +
      `${files.filters ? ', filters.png, feature-maps.png' : ''} (+ .vl.json specs)`);
    out.info(`Try: convkit predict ${path.relative(process.cwd(), dir) || '.'} IMAGE.png`);
  }
  if (augmenter && augmenter.waited > 1 && !opts.json) {
    out.info(`(waited ${augmenter.waited.toFixed(1)}s for augmented images)`);
  }
}
