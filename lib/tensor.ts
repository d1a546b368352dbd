// Tensors: a shape over native float32 memory, on the CPU (host memory) or a CUDA GPU. Results of
// ops are computed on the core's stream (a CUDA stream for CUDA tensors); `await t.data()` waits
// without blocking the event loop, `t.dataSync()` blocks.
import { ConvkitError, describeValue, DeviceError, DistributedError, DTypeError, FormatError, ShapeError, ValueError } from './errors';
import { native, NativeHandle } from './native';

native.setErrorClasses({ ConvkitError, ShapeError, DTypeError, DeviceError, FormatError, ValueError, DistributedError });

export type Device = 'cpu' | 'cuda';

/** The most elements a tensor may hold (2^31-1, as the native core bounds them). */
export const MAX_ELEMENTS = 2 ** 31 - 1;
export type TensorLike = Float32Array | ArrayLike<number> | NestedArray;
export interface NestedArray extends Array<number | NestedArray> {}

export class Tensor {
  /** @internal */
  readonly handle: NativeHandle;
  readonly shape: readonly number[];
  /** Where the values live: 'cpu' (host memory) or 'cuda' (the GPU). Ops run where their inputs are. */
  readonly device: Device;

  /** @internal */
  constructor(handle: NativeHandle) {
    this.handle = handle;
    this.shape = Object.freeze(handle.shape());
    this.device = handle.device();
  }

  get rank(): number {
    return this.shape.length;
  }

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  get isDisposed(): boolean {
    return this.handle.disposed();
  }

  /**
   * Resolves with the values once the op that makes them has run: a view of a CPU tensor's memory
   * (not a copy); for a CUDA tensor, a host copy made without blocking the event loop.
   */
  data(): Promise<Float32Array> {
    return this.handle.data();
  }

  /** Blocks the calling thread until the values are ready. Prefer `await data()`. */
  dataSync(): Float32Array {
    return this.handle.dataSync();
  }

  /** The values as nested arrays, like tf.Tensor.array(). */
  async array(): Promise<NestedArray | number> {
    return toNested(await this.data(), this.shape);
  }

  /** Frees the native memory now instead of at garbage collection; idempotent. */
  dispose(): void {
    this.handle.dispose();
  }

  /** A copy with a new shape of the same size; one dimension may be -1. */
  reshape(shape: number[]): Tensor {
    return new Tensor(native.reshape(this.handle, inferShape(shape, this.size, 'reshape')));
  }

  /**
   * This tensor on `device`: itself if it is already there, else an asynchronous copy. Throws
   * DeviceError saying why when CUDA is unavailable (see ck.cudaStatus()).
   */
  to(device: Device): Tensor {
    if (device !== 'cpu' && device !== 'cuda') {
      throw new ValueError(`to: unknown device ${describeValue(device)} (expected 'cpu' or 'cuda')`);
    }
    if (device === this.device) return this;
    return new Tensor(native.toDevice(this.handle, device));
  }

  toString(): string {
    return `Tensor(shape=[${this.shape.join(',')}], device=${this.device})`;
  }
}

function inferShape(shape: number[], size: number, op: string): number[] {
  if (!Array.isArray(shape)) throw new ShapeError(`${op}: shape must be an array of integers`);
  let unknown = -1;
  let known = 1;
  shape.forEach((d, i) => {
    if (d === -1 && unknown < 0) unknown = i;
    else if (!Number.isInteger(d) || d < 0) {
      throw new ShapeError(`${op}: shape entries must be non-negative integers, got ${describeValue(shape)}`);
    } else known *= d;
  });
  const out = shape.slice();
  if (unknown >= 0) {
    if (known === 0 || size % known !== 0) {
      throw new ShapeError(`${op}: cannot infer -1 in ${describeValue(shape)} for ${size} elements`);
    }
    out[unknown] = size / known;
  }
  return out;
}

function toNested(values: Float32Array, shape: readonly number[]): NestedArray | number {
  if (shape.length === 0) return values[0];
  const build = (offset: number, dim: number): NestedArray => {
    const stride = shape.slice(dim + 1).reduce((a, b) => a * b, 1);
    const out: NestedArray = [];
    for (let i = 0; i < shape[dim]; i++) {
      out.push(dim === shape.length - 1 ? values[offset + i] : build(offset + i * stride, dim + 1));
    }
    return out;
  };
  return build(0, 0);
}

function flattenNested(values: unknown, op: string): { flat: number[]; shape: number[] } {
  const shape: number[] = [];
  for (let v: unknown = values; Array.isArray(v); v = v[0]) {
    // Tensors have at most 8 dimensions: deeper nesting (or an array inside itself) is refused
    // before it is walked.
    if (shape.length === 8) throw new ShapeError(`${op}: nested arrays go deeper than 8 dimensions (or an array contains itself)`);
    shape.push(v.length);
  }
  const flat: number[] = [];
  const walk = (v: unknown, dim: number): void => {
    if (dim === shape.length) {
      if (typeof v !== 'number') throw new DTypeError(`${op}: values must be numbers, got ${typeof v}`);
      flat.push(v);
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[dim]) {
      throw new ShapeError(`${op}: nested arrays are ragged; expected length ${shape[dim]} at depth ${dim}`);
    }
    for (const item of v) walk(item, dim + 1);
  };
  walk(values, 0);
  return { flat, shape };
}

/** The device new tensors are made on: CONVKIT_DEVICE=cpu|cuda (default cpu). */
export function defaultDevice(): Device {
  const env = process.env.CONVKIT_DEVICE;
  if (env === undefined || env === '' || env === 'cpu') return 'cpu';
  if (env === 'cuda') return 'cuda';
  throw new ValueError(`CONVKIT_DEVICE must be 'cpu' or 'cuda', got '${env}'`);
}

/** A new host tensor's handle moved to the default device. */
function onDefaultDevice(h: NativeHandle, op: string): Tensor {
  if (defaultDevice() === 'cpu') return new Tensor(h);
  try {
    return new Tensor(native.toDevice(h, 'cuda'));
  } catch (e) {
    if (e instanceof DeviceError) throw new DeviceError(`${op}: CONVKIT_DEVICE=cuda, but ${e.message}`);
    throw e;
  }
}

/**
 * Creates a tensor on the default device (CONVKIT_DEVICE, default cpu). On the CPU a Float32Array
 * is wrapped without a copy (do not modify it while ops that read it are running); numbers,
 * nested arrays and other typed arrays are copied to float32.
 */
export function tensor(values: TensorLike, shape?: number[]): Tensor {
  const op = 'tensor';
  let data: Float32Array;
  let inferred: number[];
  if (values instanceof Float32Array) {
    data = values;
    inferred = [values.length];
  } else if (ArrayBuffer.isView(values) && !(values instanceof DataView)) {
    if (typeof (values as unknown as ArrayLike<unknown>)[0] === 'bigint') {
      throw new DTypeError(`${op}: BigInt arrays are not supported; use a Float32Array`);
    }
    data = Float32Array.from(values as unknown as ArrayLike<number>);
    inferred = [data.length];
  } else if (Array.isArray(values)) {
    const { flat, shape: nested } = flattenNested(values, op);
    data = Float32Array.from(flat);
    inferred = nested;
  } else {
    throw new DTypeError(`${op}: values must be a Float32Array, a typed array or (nested) number arrays, got ${describe(values)}`);
  }
  const finalShape = shape === undefined ? inferred : inferShape(shape, data.length, op);
  const size = finalShape.reduce((a, b) => a * b, 1);
  if (size !== data.length) {
    throw new ShapeError(`${op}: shape [${finalShape.join(',')}] needs ${size} values, got ${data.length}`);
  }
  return onDefaultDevice(native.fromArray(data, finalShape), op);
}

/** A tensor of the given shape filled with `value` (default 0), on the default device. */
export function fill(shape: number[], value = 0): Tensor {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new ValueError(`fill: value must be a finite number, got ${describeValue(value)}`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new ShapeError(`fill: shape entries must be non-negative integers, got ${describeValue(shape)}`);
  }
  return onDefaultDevice(native.fill(shape.slice(), value), 'fill');
}

export const zeros = (shape: number[]): Tensor => fill(shape, 0);
export const ones = (shape: number[]): Tensor => fill(shape, 1);

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? (v as object).constructor?.name ?? 'object' : typeof v;
}

/** Checks that `t` is a live Tensor, naming the op and argument otherwise. */
export function checkTensor(t: unknown, op: string, name: string): Tensor {
  if (!(t instanceof Tensor) || !t.handle) {
    throw new DTypeError(`${op}: ${name} must be a Tensor, got ${describe(t)}`);
  }
  if (t.isDisposed) throw new ValueError(`${op}: ${name} has been disposed`);
  return t;
}
