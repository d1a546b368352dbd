// ck.data.imageFolder(dir, { imageSize, channels, validationSplit, seed }): one class per
// sub-folder (dir/<class>/*.png|jpg|jpeg|webp, classes in sorted order as Keras takes them),
// decoded and resized with sharp off the JS thread. Unreadable images are skipped and reported
// in one warning; a missing or empty folder, or a class with no images, is an error.
import * as fs from 'fs';
import * as path from 'path';
import { describeValue, FormatError, ValueError } from '../errors';
import { Rng } from '../rng';
import { Tensor, tensor } from '../tensor';
import { Dataset } from './dataset';
import { checkImageOptions, decodePixels, decodeUnitFloats, IMAGE_EXTENSIONS, imageErrorMessage, ImageOptions, mapLimit, toFloat } from './images';

export interface ImageFolderOptions extends Partial<ImageOptions> {
  /** Fraction of each class held out for validation (stratified), default 0. */
  validationSplit?: number;
  /** Seeds the split (and the order of the training examples). */
  seed?: number;
  /** Called once with a summary when images had to be skipped (default: console.warn). */
  onWarning?: (message: string) => void;
  /** Images decoded at once (default 16). */
  concurrency?: number;
}

export interface ImageSplit {
  /** float32 [N, height, width, channels] scaled to 0..1 */
  images: Tensor;
  /** float32 [N] class ids (indices into classNames) */
  labels: Tensor;
  /** The file of each example. */
  files: string[];
}

export interface ImageFolderResult {
  classNames: string[];
  train: ImageSplit;
  /** null when validationSplit is 0. */
  validation: ImageSplit | null;
  /** Images that could not be decoded, with the reason. */
  skipped: { file: string; reason: string }[];
  imageSize: [number, number];
  channels: 1 | 3;
}

function isImage(name: string): boolean {
  return IMAGE_EXTENSIONS.includes(path.extname(name).toLowerCase()) && !name.startsWith('.');
}

/** The class folders of dir and their image files, checked; throws on a folder that cannot be used. */
export function listImageFolder(dir: string, where = 'imageFolder'): { classNames: string[]; files: string[][] } {
  if (typeof dir !== 'string' || dir.length === 0) throw new ValueError(`${where}: expected a folder path`);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch {
    throw new ValueError(`${where}: ${dir} does not exist`);
  }
  if (!stat.isDirectory()) throw new ValueError(`${where}: ${dir} is not a folder (expected ${dir}/<class>/*.png|jpg|jpeg|webp)`);
  const entries = fs.readdirSync(dir, { withFileTypes: true }).filter((e) => !e.name.startsWith('.'));
  const classDirs = entries.filter((e) => e.isDirectory() || (e.isSymbolicLink() && fs.statSync(path.join(dir, e.name)).isDirectory()))
    .map((e) => e.name).sort();
  if (classDirs.length === 0) {
    const loose = entries.filter((e) => e.isFile() && isImage(e.name)).length;
    throw new FormatError(`${where}: ${dir} has no class folders (expected ${dir}/<class>/*.png|jpg|jpeg|webp${loose ? `; it holds ${loose} images directly: move them into one folder per class` : ''})`);
  }
  const files = classDirs.map((c) => {
    const cdir = path.join(dir, c);
    const list = fs.readdirSync(cdir, { withFileTypes: true })
      .filter((e) => (e.isFile() || e.isSymbolicLink()) && isImage(e.name))
      .map((e) => path.join(cdir, e.name)).sort();
    if (list.length === 0) throw new FormatError(`${where}: class '${c}' has no images (${cdir} holds no .png, .jpg, .jpeg or .webp files)`);
    return list;
  });
  if (classDirs.length < 2) {
    throw new FormatError(`${where}: ${dir} has 1 class folder ('${classDirs[0]}'); a classifier needs at least 2 (one folder per class)`);
  }
  return { classNames: classDirs, files };
}

/** Reads a folder of images, one sub-folder per class, into tensors. */
export async function imageFolder(dir: string, options: ImageFolderOptions = {}): Promise<ImageFolderResult> {
  const where = 'imageFolder';
  const { imageSize, channels, interpolation } = checkImageOptions(options, where, { imageSize: [32, 32], channels: 3 });
  const split = options.validationSplit ?? 0;
  if (typeof split !== 'number' || !(split >= 0 && split < 1)) throw new ValueError(`${where}: validationSplit must be in [0, 1), got ${describeValue(split)}`);
  const concurrency = options.concurrency ?? 16;
  const { classNames, files } = listImageFolder(dir, where);
  const [h, w] = imageSize;
  const size = h * w * channels;

  const all = files.flatMap((list, label) => list.map((file) => ({ file, label })));
  const skipped: ImageFolderResult['skipped'] = [];
  const pixels = await mapLimit(all, concurrency, async ({ file }) => {
    try {
      return await decodePixels(file, { imageSize, channels, interpolation });
    } catch (e) {
      skipped.push({ file, reason: imageErrorMessage(e) });
      return null;
    }
  });
  const good = all.map((item, i) => ({ ...item, px: pixels[i] })).filter((item) => item.px !== null) as { file: string; label: number; px: Uint8Array }[];
  if (skipped.length) {
    skipped.sort((a, b) => a.file.localeCompare(b.file));
    const list = skipped.slice(0, 3).map((s) => `${path.relative(dir, s.file)} (${s.reason})`).join(', ');
    const more = skipped.length > 3 ? ` and ${skipped.length - 3} more` : '';
    (options.onWarning ?? ((m: string) => console.warn(m)))(`${where}: skipped ${skipped.length} unreadable image${skipped.length === 1 ? '' : 's'} of ${all.length}: ${list}${more}`);
  }
  const byClass = classNames.map((_, c) => good.filter((g) => g.label === c));
  byClass.forEach((list, c) => {
    if (list.length === 0) throw new FormatError(`${where}: class '${classNames[c]}' has no readable images (all ${files[c].length} skipped)`);
  });

  // Stratified split: each class gives the same fraction to validation (at least one image of a
  // class with two or more, never its last one), chosen by the seeded RNG.
  // The seed's own stream: the same seed given to fit (the CLI does) shuffles independently.
  const rng = new Rng(options.seed ?? 0, 'validation split');
  const trainItems: typeof good = [];
  const valItems: typeof good = [];
  for (const list of byClass) {
    const order = rng.permutation(list.length);
    const nVal = split > 0 && list.length > 1 ? Math.min(list.length - 1, Math.max(1, Math.round(list.length * split))) : 0;
    order.forEach((k, j) => (j < nVal ? valItems : trainItems).push(list[k]));
  }
  const trainOrder = rng.permutation(trainItems.length);
  const shuffled = Array.from(trainOrder, (k) => trainItems[k]);

  const toSplit = (items: typeof good): ImageSplit => {
    const x = new Float32Array(items.length * size);
    items.forEach((it, i) => toFloat(it.px, x, i * size));
    return {
      images: tensor(x, [items.length, h, w, channels]),
      labels: tensor(Float32Array.from(items, (it) => it.label), [items.length]),
      files: items.map((it) => it.file),
    };
  };
  return {
    classNames,
    train: toSplit(shuffled),
    validation: split > 0 ? toSplit(valItems) : null,
    skipped,
    imageSize: [h, w],
    channels,
  };
}

export interface ImageElement {
  /** float32 [height, width, channels] scaled to 0..1 */
  xs: Tensor;
  /** float32 [classes], one-hot */
  ys: Tensor;
}

/**
 * The streaming form of imageFolder: datasets of { xs, ys } elements that decode each image
 * when it is reached (concurrency images at once, on sharp's threads), for folders too large
 * to hold decoded. Chain .shuffle(n).batch(b).prefetch(k) and hand it to model.fitDataset.
 * Unreadable images are skipped, with one warning after the first pass.
 */
export function imageFolderDataset(dir: string, options: ImageFolderOptions = {}): {
  classNames: string[];
  train: Dataset<ImageElement>;
  validation: Dataset<ImageElement> | null;
} {
  const where = 'imageFolderDataset';
  const { imageSize, channels, interpolation } = checkImageOptions(options, where, { imageSize: [32, 32], channels: 3 });
  const split = options.validationSplit ?? 0;
  if (typeof split !== 'number' || !(split >= 0 && split < 1)) throw new ValueError(`${where}: validationSplit must be in [0, 1), got ${describeValue(split)}`);
  const { classNames, files } = listImageFolder(dir, where);
  // The seed's own stream: the same seed given to fit (the CLI does) shuffles independently.
  const rng = new Rng(options.seed ?? 0, 'validation split');
  const trainItems: { file: string; label: number }[] = [];
  const valItems: { file: string; label: number }[] = [];
  files.forEach((list, label) => {
    const order = rng.permutation(list.length);
    const nVal = split > 0 && list.length > 1 ? Math.min(list.length - 1, Math.max(1, Math.round(list.length * split))) : 0;
    order.forEach((k, j) => (j < nVal ? valItems : trainItems).push({ file: list[k], label }));
  });
  const k = classNames.length;
  const [h, w] = imageSize;
  const make = (items: { file: string; label: number }[]): Dataset<ImageElement> => {
    const skipped: string[] = [];
    let warned = false;
    const decoded = Dataset.fromArray(items).map(async (it) => {
      try {
        const xs = await decodeUnitFloats(it.file, { imageSize, channels, interpolation });
        const ys = new Float32Array(k);
        ys[it.label] = 1;
        return { xs: tensor(xs, [h, w, channels]), ys: tensor(ys, [k]) };
      } catch (e) {
        if (!warned && !skipped.includes(it.file)) skipped.push(`${path.relative(dir, it.file)} (${imageErrorMessage(e)})`);
        return null;
      }
    }, { concurrency: options.concurrency ?? 8 });
    const self = decoded.filter((x) => x !== null) as Dataset<ImageElement>;
    return new Dataset(async function* () {
      yield* self;
      if (!warned && skipped.length) {
        warned = true;
        const more = skipped.length > 3 ? ` and ${skipped.length - 3} more` : '';
        (options.onWarning ?? ((m: string) => console.warn(m)))(`${where}: skipped ${skipped.length} unreadable image${skipped.length === 1 ? '' : 's'}: ${skipped.slice(0, 3).join(', ')}${more}`);
      }
      warned = true;
    }, items.length);
  };
  return { classNames, train: make(trainItems), validation: split > 0 ? make(valItems) : null };
}
