// What the commands share: the CLI's error type, option parsers, output (human lines or JSON),
// and finding and checking a model on disk. The CLI uses convkit's public API only.
import * as fs from 'fs';
import * as path from 'path';
import * as ck from '../index';

/** A mistake in what the user asked for: printed as one line, exit code 1 (2 for usage). */
export class CliError extends ck.ConvkitError {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

export interface Output {
  json: boolean;
  /** Human-readable lines (stdout; nothing in --json mode). */
  info(line?: string): void;
  /** One JSON object on one line (stdout; only in --json mode). */
  emit(obj: Record<string, unknown>): void;
  warn(message: string): void;
}

export function output(json: boolean): Output {
  return {
    json,
    info: (line = '') => {
      if (!json) process.stdout.write(`${line}\n`);
    },
    emit: (obj) => {
      if (json) process.stdout.write(`${JSON.stringify(obj)}\n`);
    },
    warn: (message) => process.stderr.write(`convkit: warning: ${message}\n`),
  };
}

/** The output of a rank other than 0 of a --distributed run: rank 0 alone prints. */
export function silentOutput(json: boolean): Output {
  return { json, info: () => undefined, emit: () => undefined, warn: () => undefined };
}

export function parseIntOpt(name: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new CliError(`${name} must be an integer in [${min}, ${max}], got '${value}'`, 2);
    }
    return n;
  };
}

export function parseFloatOpt(name: string, min: number, max: number, { inclusiveMax = true } = {}) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || (inclusiveMax ? n > max : n >= max)) {
      throw new CliError(`${name} must be a number in [${min}, ${max}${inclusiveMax ? ']' : ')'}, got '${value}'`, 2);
    }
    return n;
  };
}

/** 'WxH' (or one number for a square) -> [height, width], as Keras's image_size takes it. */
export function parseImageSize(value: string): [number, number] {
  const m = /^\s*(\d+)\s*(?:[xX×]\s*(\d+))?\s*$/.exec(value);
  const w = m ? Number(m[1]) : NaN;
  const h = m ? Number(m[2] ?? m[1]) : NaN;
  if (!m || !(w >= 1 && w <= 4096 && h >= 1 && h <= 4096)) {
    throw new CliError(`--image-size must be WIDTHxHEIGHT (e.g. 32x32), each 1..4096, got '${value}'`, 2);
  }
  return [h, w];
}

export function parseChannels(value: string): 1 | 3 {
  if (value !== '1' && value !== '3') throw new CliError(`--channels must be 1 or 3, got '${value}'`, 2);
  return Number(value) as 1 | 3;
}

/** '--augment flip,crop,zoom=0.2,brightness' -> options (names alone take the defaults). */
export function parseAugment(value: string): ck.AugmentOptions {
  const out: Record<string, number | boolean> = {};
  const defaults = ck.data.AUGMENT_DEFAULTS as unknown as Record<string, number | boolean>;
  for (const part of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [name, arg] = part.split('=').map((s) => s.trim());
    if (!(name in defaults)) throw new CliError(`--augment: unknown augmentation '${name}' (known: flip, crop, zoom, brightness)`, 2);
    if (arg === undefined) out[name] = defaults[name];
    else if (name === 'flip') throw new CliError(`--augment: flip takes no value`, 2);
    else {
      const n = Number(arg);
      const max = name === 'brightness' ? 1 : 0.5;
      if (arg === '' || !Number.isFinite(n) || n < 0 || n > max) throw new CliError(`--augment: ${name}=${arg}: expected a number in [0, ${max}]`, 2);
      out[name] = n;
    }
  }
  if (Object.keys(out).length === 0) throw new CliError(`--augment needs a list such as flip,crop,zoom,brightness`, 2);
  return out as ck.AugmentOptions;
}

/**
 * Writes a whole file or nothing: into a temporary name beside it, then renamed over it, so a
 * run stopped mid-write (Ctrl-C, a full disk) leaves the previous file, never half a file.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/** --precision: the GPU's math (ck.setPrecision). */
export function parsePrecision(value: string): ck.Precision {
  if (value !== 'fp32' && value !== 'tf32' && value !== 'bf16') {
    throw new CliError(`--precision must be fp32, tf32 or bf16, got '${value}'`, 2);
  }
  return value;
}

/** --device: 'cuda' must be usable here (else a clear error); 'auto' picks CUDA when it can. */
export function checkDevice(device: string): 'cpu' | 'cuda' | 'auto' {
  if (device === 'cuda') {
    const status = ck.cudaStatus();
    if (!status.available) throw new CliError(`--device cuda: CUDA is unavailable: ${status.reason}; use --device cpu or auto`);
    return 'cuda';
  }
  if (device !== 'auto' && device !== 'cpu') throw new CliError(`--device must be auto, cpu or cuda, got '${device}'`, 2);
  return device;
}

export const DATASETS: Record<string, { load: (o: { trainLimit?: number; testLimit?: number }) => ReturnType<typeof ck.datasets.mnist>; label: string }> = {
  'mnist': { load: (o) => ck.datasets.mnist(o), label: 'MNIST' },
  'fashion-mnist': { load: (o) => ck.datasets.fashionMnist(o), label: 'Fashion-MNIST' },
};

/** A built-in dataset name, unless a folder by that name is meant (write ./mnist for the folder). */
export function isDatasetName(source: string): boolean {
  return Object.prototype.hasOwnProperty.call(DATASETS, source);
}

/** What the CLI stores in model.json's userDefinedMetadata to predict as it trained. */
export interface ModelMeta {
  classNames: string[];
  imageSize: [number, number];
  channels: 1 | 3;
}

/** The model folder for MODEL (a folder or its model.json). */
export function modelDir(modelPath: string): string {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(modelPath);
  } catch {
    throw new CliError(`model ${modelPath} does not exist`);
  }
  const dir = stat.isDirectory() ? modelPath : path.dirname(modelPath);
  if (!fs.existsSync(path.join(dir, 'model.json'))) {
    throw new CliError(`${modelPath} is not a model: ${path.join(dir, 'model.json')} does not exist (train one with \`convkit train\`)`);
  }
  return dir;
}

/** The model in folder `dir` (see modelDir); a file convkit cannot use is a CliError naming it. */
export async function loadModelFolder(dir: string): Promise<ck.LayersModel> {
  try {
    return await ck.loadModel(`file://${path.resolve(dir)}`);
  } catch (e) {
    if (e instanceof ck.ConvkitError) throw new CliError(`${dir} is not a usable model: ${e.message.replace(/^loadModel: /, '')}`);
    throw e;
  }
}

export async function loadTrainedModel(modelPath: string): Promise<{ model: ck.LayersModel; meta: ModelMeta; dir: string }> {
  const dir = modelDir(modelPath);
  const model = await loadModelFolder(dir);
  return { model, meta: modelMeta(model, dir), dir };
}

/** Image size, channels and class names: from the metadata, else from the model's shapes. */
export function modelMeta(model: ck.LayersModel, where: string): ModelMeta {
  let input: number[];
  let outputs: (number | null)[][];
  try {
    input = model.inputShape;
    outputs = model.outputShapes;
  } catch (e) {
    throw new CliError(`${where}: ${(e as Error).message}`);
  }
  if (outputs.length !== 1) throw new CliError(`${where}: the model has ${outputs.length} outputs; the CLI works with one (class scores)`);
  const output = outputs[0];
  if (input.length !== 3 || (input[2] !== 1 && input[2] !== 3)) {
    throw new CliError(`${where}: the model takes input (None, ${input.join(', ')}), not images (None, height, width, 1 or 3)`);
  }
  if (output.length !== 2) throw new CliError(`${where}: the model's output (${output.map((d) => d ?? 'None').join(', ')}) is not one score per class`);
  const classes = output[1] as number;
  const m = (model.userDefinedMetadata ?? {}) as Record<string, unknown>;
  const names = Array.isArray(m.classNames) && m.classNames.length === classes && m.classNames.every((c) => typeof c === 'string')
    ? (m.classNames as string[]) : Array.from({ length: classes }, (_, i) => String(i));
  const size = Array.isArray(m.imageSize) && m.imageSize.length === 2 ? (m.imageSize as [number, number]) : [input[0], input[1]] as [number, number];
  if (size[0] !== input[0] || size[1] !== input[1]) {
    throw new CliError(`${where}: the metadata says ${size[1]}x${size[0]} images but the model takes ${input[1]}x${input[0]}`);
  }
  return { classNames: names, imageSize: size, channels: input[2] as 1 | 3 };
}

export function argmaxRows(values: Float32Array, classes: number): Int32Array {
  const n = values.length / classes;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let k = 1; k < classes; k++) if (values[i * classes + k] > values[i * classes + best]) best = k;
    out[i] = best;
  }
  return out;
}

export function percent(v: number): string {
  return `${(100 * v).toFixed(2)}%`;
}

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}
