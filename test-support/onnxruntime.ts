// onnxruntime-node for the ONNX tests, in a child process of its own
// (test-support/children/onnxruntime.js says why): start() in beforeAll, stop() in afterAll,
// run(file, feeds) runs a model file on inputs given in the model's input order; and the
// NHWC <-> NCHW conversions between convkit's images and an ONNX model's.
import { ChildProcess, fork } from 'child_process';
import * as path from 'path';

export interface RuntimeResult {
  inputNames: string[];
  outputNames: string[];
  outputs: { data: Float32Array; dims: number[] }[];
  error?: string;
}

export class OnnxRuntime {
  private child: ChildProcess | null = null;
  private requests = 0;
  private readonly pending = new Map<number, (r: RuntimeResult) => void>();

  start(): void {
    this.child = fork(path.join(__dirname, 'children', 'onnxruntime.js'), [], { serialization: 'advanced' });
    this.child.on('message', (m: RuntimeResult & { id: number }) => {
      this.pending.get(m.id)?.(m);
      this.pending.delete(m.id);
    });
  }

  stop(): void {
    this.child?.kill();
    this.child = null;
  }

  /** The ONNX file run by onnxruntime-node on these inputs (in the model's input order). */
  run(file: string, feeds: { data: Float32Array; dims: number[] }[]): Promise<RuntimeResult> {
    return new Promise((resolve, reject) => {
      if (!this.child) throw new Error('OnnxRuntime.run before start()');
      const id = this.requests++;
      this.pending.set(id, (r) => (r.error ? reject(new Error(r.error)) : resolve(r)));
      this.child.send({ id, file, feeds });
    });
  }
}

/** NHWC [n, h, w, c] values as NCHW. */
export function toNchw(x: Float32Array, [n, h, w, c]: number[]): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++)
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++)
        for (let k = 0; k < c; k++) out[((b * c + k) * h + i) * w + j] = x[((b * h + i) * w + j) * c + k];
  return out;
}

/** NCHW values of an NHWC shape [n, h, w, c] back as NHWC, to compare with convkit's. */
export function fromNchw(x: Float32Array, [n, h, w, c]: number[]): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++)
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++)
        for (let k = 0; k < c; k++) out[((b * h + i) * w + j) * c + k] = x[((b * c + k) * h + i) * w + j];
  return out;
}

/** The largest difference relative to the largest value of the reference `want`. */
export function relativeError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return diff / Math.max(scale, 1e-6);
}
