// Shared fixtures for the model tests: the seeds' models, small deterministic data, comparisons.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ck from '../lib';

/** The seeds' MNIST model (W1, docs/design.md "Benchmark workloads"): 62,346 parameters, as Keras counts them. */
export function mnistModel(extra: { dropout?: number } = {}): ck.Sequential {
  const layers: ck.Layer[] = [
    ck.layers.input({ shape: [28, 28, 1] }),
    ck.layers.conv2d({ filters: 32, kernelSize: 5, activation: 'relu' }),
    ck.layers.maxPooling2d({ poolSize: 2 }),
    ck.layers.conv2d({ filters: 64, kernelSize: 5, activation: 'relu' }),
    ck.layers.maxPooling2d({ poolSize: 2 }),
    ck.layers.flatten(),
  ];
  if (extra.dropout !== undefined) layers.push(ck.layers.dropout({ rate: extra.dropout }));
  layers.push(ck.layers.dense({ units: 10, activation: 'softmax' }));
  return ck.sequential(layers);
}

/** A small CNN on 8x8x1 images with 3 classes: fast enough for many fits per test file. */
export function tinyModel(opts: { dropout?: number; classes?: number; activation?: 'softmax' | 'sigmoid' | 'linear' } = {}): ck.Sequential {
  const layers: ck.Layer[] = [
    ck.layers.input({ shape: [8, 8, 1] }),
    ck.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu' }),
    ck.layers.maxPooling2d({ poolSize: 2 }),
    ck.layers.flatten(),
  ];
  if (opts.dropout !== undefined) layers.push(ck.layers.dropout({ rate: opts.dropout }));
  layers.push(ck.layers.dense({ units: opts.classes ?? 3, activation: opts.activation ?? 'softmax' }));
  return ck.sequential(layers);
}

/** Deterministic uniform numbers in [0, 1) (an LCG independent of convkit's RNG). */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

export function randomArray(n: number, seed: number, lo = 0, hi = 1): Float32Array {
  const next = lcg(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * next();
  return out;
}

/**
 * n 8x8x1 images in 3 learnable classes: class 0 bright on the left half, 1 bright on the
 * right half, 2 bright in the middle rows; plus noise. Returns images and integer labels.
 */
export function tinyData(n: number, seed = 1): { x: ck.Tensor; labels: Float32Array } {
  const next = lcg(seed);
  const x = new Float32Array(n * 64);
  const labels = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    labels[i] = c;
    for (let r = 0; r < 8; r++) {
      for (let q = 0; q < 8; q++) {
        const on = c === 0 ? q < 4 : c === 1 ? q >= 4 : r >= 2 && r < 6;
        x[i * 64 + r * 8 + q] = (on ? 0.7 : 0.1) + 0.3 * next();
      }
    }
  }
  return { x: ck.tensor(x, [n, 8, 8, 1]), labels };
}

export function weightsOf(model: ck.LayersModel): Float32Array[] {
  return model.getWeights().map((w) => w.dataSync().slice());
}

/** True when every weight is bitwise identical (NaN patterns included). */
export function bitwiseEqual(a: Float32Array[], b: Float32Array[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) => x.length === b[i].length && Buffer.from(x.buffer, x.byteOffset, x.byteLength)
    .equals(Buffer.from(b[i].buffer, b[i].byteOffset, b[i].byteLength)));
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `convkit-${prefix}-`));
}

export function summaryLines(model: ck.LayersModel): string[] {
  const lines: string[] = [];
  model.summary(undefined, undefined, (l) => lines.push(l));
  return lines;
}
