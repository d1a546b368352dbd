// What the ONNX importer reads out of the decoded protobuf messages: tensors (initializers and
// Constant nodes) as plain arrays, node attributes by name and type, and the shape arithmetic
// PyTorch's exporter writes out as nodes on constants (F.pad's pads are a Concat / Reshape /
// Slice / Transpose / Cast chain), evaluated here so the op that reads the result sees a constant.
// Every malformed field is a FormatError naming the node or tensor.
import { onnx } from 'onnx-proto';
import { FormatError } from '../errors';

/** A tensor known when the file is read: float values (float32 or float64 widened), or integers. */
export interface Constant {
  kind: 'const';
  dims: number[];
  type: 'float' | 'int';
  data: number[] | Float32Array;
}

/**
 * A shape read from a computed value (the Shape op) holds NaN for its batch size, known only
 * at run time: data-moving ops on constants keep it where it is, so a Reshape can find it as
 * its first target size; any arithmetic on it, or any other op reading it, is refused.
 */
export const BATCH_SIZE = NaN;

export const holdsBatchSize = (c: Constant) => c.type === 'int' && c.data.some((v) => Number.isNaN(v));

/** The ops on constants that only move values, which may move the batch size of a shape too. */
const MOVES_VALUES = ['Identity', 'Cast', 'Concat', 'Reshape', 'Slice', 'Transpose', 'Unsqueeze', 'Squeeze', 'Gather'];

/** No tensor of the file may hold more elements than this (2^31 - 1 bytes cannot hold more floats anyway). */
const MAX_ELEMENTS = 2 ** 29;

const DT = onnx.TensorProto.DataType;

/** protobufjs gives int64 fields as Long objects (from the long package) unless they are small. */
type Int64 = number | { toNumber(): number; toString(): string };

/** A protobuf int64 as a safe JS integer. */
export function int(v: Int64 | null | undefined, where: string): number {
  if (v === null || v === undefined) return 0;
  const n = typeof v === 'number' ? v : typeof v.toNumber === 'function' ? v.toNumber() : NaN;
  if (!Number.isSafeInteger(n)) throw new FormatError(`${where}: ${String(v)} is not an integer convkit can hold`);
  return n;
}

export const count = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

function checkDims(dims: Int64[], where: string): number[] {
  const out = dims.map((d) => int(d, where));
  if (out.some((d) => d < 0)) throw new FormatError(`${where}: negative dimension in [${out.join(', ')}]`);
  if (count(out) > MAX_ELEMENTS) throw new FormatError(`${where}: [${out.join(', ')}] holds more than ${MAX_ELEMENTS} elements`);
  return out;
}

/** An initializer or a Constant node's tensor (float, double, int64, int32; inline data only). */
export function decodeTensor(t: onnx.ITensorProto, where: string): Constant {
  const dims = checkDims(t.dims ?? [], where);
  const n = count(dims);
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL || (t.externalData ?? []).length > 0) {
    throw new FormatError(`${where}: external data is not read (save the model with its weights inside the file)`);
  }
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : null;
  const view = raw ? new DataView(raw.buffer, raw.byteOffset, raw.byteLength) : null;
  const sized = (bytes: number, found: number) => {
    if (found !== n) throw new FormatError(`${where}: dims [${dims.join(', ')}] need ${n} values, the tensor holds ${raw ? `${raw.length} bytes (${bytes} each)` : found}`);
  };
  switch (t.dataType) {
    case DT.FLOAT: {
      if (view) {
        sized(4, raw!.length / 4);
        const data = new Float32Array(n);
        for (let i = 0; i < n; i++) data[i] = view.getFloat32(i * 4, true);
        return { kind: 'const', dims, type: 'float', data };
      }
      sized(4, (t.floatData ?? []).length);
      return { kind: 'const', dims, type: 'float', data: Float32Array.from(t.floatData ?? []) };
    }
    case DT.DOUBLE: {
      if (view) {
        sized(8, raw!.length / 8);
        return { kind: 'const', dims, type: 'float', data: Array.from({ length: n }, (_, i) => view.getFloat64(i * 8, true)) };
      }
      sized(8, (t.doubleData ?? []).length);
      return { kind: 'const', dims, type: 'float', data: [...(t.doubleData ?? [])] };
    }
    case DT.INT64: {
      if (view) {
        sized(8, raw!.length / 8);
        return { kind: 'const', dims, type: 'int', data: Array.from({ length: n }, (_, i) => clampInt(view.getBigInt64(i * 8, true))) };
      }
      sized(8, (t.int64Data ?? []).length);
      return { kind: 'const', dims, type: 'int', data: (t.int64Data ?? []).map((v) => clampInt(BigInt(v.toString()))) };
    }
    case DT.INT32: {
      if (view) {
        sized(4, raw!.length / 4);
        return { kind: 'const', dims, type: 'int', data: Array.from({ length: n }, (_, i) => view.getInt32(i * 4, true)) };
      }
      sized(4, (t.int32Data ?? []).length);
      return { kind: 'const', dims, type: 'int', data: [...(t.int32Data ?? [])] };
    }
    default:
      throw new FormatError(`${where}: data type ${DT[t.dataType ?? 0] ?? t.dataType} is not read (float, double, int64, int32)`);
  }
}

/** int64 slice bounds use INT64_MAX for "to the end": kept as the largest safe integer. */
function clampInt(v: bigint): number {
  const max = BigInt(Number.MAX_SAFE_INTEGER);
  return Number(v > max ? max : v < -max ? -max : v);
}

/** A node's attributes, read by name and checked for the type each op expects. */
export class Attributes {
  private readonly byName = new Map<string, onnx.IAttributeProto>();

  constructor(node: onnx.INodeProto, private readonly where: string) {
    for (const a of node.attribute ?? []) {
      if (typeof a.name !== 'string' || a.name === '') throw new FormatError(`${where}: an attribute has no name`);
      this.byName.set(a.name, a);
    }
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  private get(name: string, type: onnx.AttributeProto.AttributeType): onnx.IAttributeProto | undefined {
    const a = this.byName.get(name);
    if (a && a.type !== type) {
      const T = onnx.AttributeProto.AttributeType;
      throw new FormatError(`${this.where}: attribute ${name} must be ${T[type]}, got ${T[a.type ?? 0] ?? a.type}`);
    }
    return a;
  }

  int(name: string, fallback: number): number {
    const a = this.get(name, onnx.AttributeProto.AttributeType.INT);
    return a ? int(a.i, `${this.where}: attribute ${name}`) : fallback;
  }

  float(name: string, fallback: number): number {
    const a = this.get(name, onnx.AttributeProto.AttributeType.FLOAT);
    return a ? Number(a.f) : fallback;
  }

  floats(name: string): number[] | undefined {
    const a = this.get(name, onnx.AttributeProto.AttributeType.FLOATS);
    return a ? (a.floats ?? []).map(Number) : undefined;
  }

  ints(name: string): number[] | undefined {
    const a = this.get(name, onnx.AttributeProto.AttributeType.INTS);
    return a ? (a.ints ?? []).map((v) => int(v, `${this.where}: attribute ${name}`)) : undefined;
  }

  string(name: string, fallback: string): string {
    const a = this.get(name, onnx.AttributeProto.AttributeType.STRING);
    return a ? new TextDecoder().decode(a.s ?? new Uint8Array()) : fallback;
  }

  tensor(name: string): onnx.ITensorProto | undefined {
    return this.get(name, onnx.AttributeProto.AttributeType.TENSOR)?.t ?? undefined;
  }

  /** The names of attributes this op does not read (so an unread attribute is never ignored). */
  unknown(known: string[]): string[] {
    return [...this.byName.keys()].filter((k) => !known.includes(k));
  }
}

/** A Constant node's value (tensor, or the scalar / list forms of opset 12 and later). */
export function constantNode(attrs: Attributes, where: string): Constant {
  const t = attrs.tensor('value');
  if (t) return decodeTensor(t, where);
  if (attrs.has('value_float')) return { kind: 'const', dims: [], type: 'float', data: [attrs.float('value_float', 0)] };
  if (attrs.has('value_int')) return { kind: 'const', dims: [], type: 'int', data: [attrs.int('value_int', 0)] };
  const ints = attrs.has('value_ints') ? attrs.ints('value_ints') : undefined;
  if (ints) return { kind: 'const', dims: [ints.length], type: 'int', data: ints };
  throw new FormatError(`${where}: a Constant needs a value, value_float, value_int or value_ints attribute`);
}

// ---- shape arithmetic on constants ----

const strides = (dims: number[]) => dims.map((_, a) => count(dims.slice(a + 1)));

function axisOf(axis: number, rank: number, where: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!(a >= 0 && a < rank)) throw new FormatError(`${where}: axis ${axis} is outside a tensor of rank ${rank}`);
  return a;
}

function intsOf(c: Constant | undefined, what: string, where: string): number[] | undefined {
  if (!c) return undefined;
  if (c.type !== 'int' || c.dims.length > 1) throw new FormatError(`${where}: ${what} must be a 1-D int64 tensor, got ${c.type} [${c.dims.join(', ')}]`);
  return [...c.data];
}

function transpose(c: Constant, perm: number[]): Constant {
  const dims = perm.map((p) => c.dims[p]);
  const inStrides = strides(c.dims);
  const outStrides = strides(dims);
  const data = new Array<number>(count(dims));
  for (let i = 0; i < data.length; i++) {
    let src = 0;
    for (let a = 0; a < dims.length; a++) src += Math.floor(i / outStrides[a]) % dims[a] * inStrides[perm[a]];
    data[i] = c.data[src];
  }
  return { ...c, dims, data: c.type === 'float' ? Float32Array.from(data) : data };
}

function elementwise(op: string, a: Constant, b: Constant, where: string): Constant {
  const scalarA = count(a.dims) === 1;
  const scalarB = count(b.dims) === 1;
  if (!scalarA && !scalarB && a.dims.join() !== b.dims.join()) {
    throw new FormatError(`${where}: ${op} of constants [${a.dims.join(', ')}] and [${b.dims.join(', ')}] (only equal shapes or a scalar)`);
  }
  const dims = scalarA && !scalarB ? b.dims : a.dims;
  const f = { Add: (x: number, y: number) => x + y, Sub: (x: number, y: number) => x - y, Mul: (x: number, y: number) => x * y,
    Div: (x: number, y: number) => (a.type === 'int' && b.type === 'int' ? Math.trunc(x / y) : x / y) }[op]!;
  const data = Array.from({ length: count(dims) }, (_, i) => f(a.data[scalarA ? 0 : i], b.data[scalarB ? 0 : i]));
  const type = a.type === 'float' || b.type === 'float' ? 'float' : 'int';
  return { kind: 'const', dims, type, data: type === 'float' ? Float32Array.from(data) : data };
}

/** The ops evaluated on constants: what exporters use to compute shapes and pads. */
export const CONSTANT_OPS = ['Identity', 'Cast', 'Concat', 'Reshape', 'Slice', 'Transpose', 'Unsqueeze', 'Squeeze', 'Gather',
  'ConstantOfShape', 'Add', 'Sub', 'Mul', 'Div', 'Neg'];

/** Node `op` on constant inputs (undefined for an absent optional input). */
export function foldConstant(op: string, inputs: (Constant | undefined)[], attrs: Attributes, opset: number, where: string): Constant {
  const [x] = inputs;
  if (!x && op !== 'ConstantOfShape') throw new FormatError(`${where}: ${op} needs an input`);
  // Data inputs may carry a shape's batch size along; indices, axes and target shapes may not.
  const dataInputs = op === 'Concat' ? inputs.length : MOVES_VALUES.includes(op) ? 1 : 0;
  if (inputs.some((c, k) => c && k >= dataInputs && holdsBatchSize(c))) {
    throw new FormatError(`${where}: ${op} computes with the batch size, which is known only at run time (convkit evaluates shapes when the file is read)`);
  }
  switch (op) {
    case 'Identity':
      return x!;
    case 'Neg':
      return { ...x!, data: x!.type === 'float' ? Float32Array.from(x!.data, (v) => -v) : x!.data.map((v) => -v) };
    case 'Cast': {
      const to = attrs.int('to', 0);
      if ((to === DT.FLOAT || to === DT.DOUBLE) && holdsBatchSize(x!)) throw new FormatError(`${where}: Cast of the batch size to ${DT[to]} is not evaluated (it is known only at run time)`);
      if (to === DT.FLOAT || to === DT.DOUBLE) return { ...x!, type: 'float', data: Float32Array.from(x!.data) };
      if (to === DT.INT64 || to === DT.INT32) return { ...x!, type: 'int', data: Array.from(x!.data, Math.trunc) };
      throw new FormatError(`${where}: Cast to ${DT[to] ?? to} is not evaluated (float, double, int64, int32)`);
    }
    case 'Add': case 'Sub': case 'Mul': case 'Div':
      return elementwise(op, x!, inputs[1] ?? missing(where, 'B'), where);
    case 'Concat': {
      const parts = inputs.filter((c): c is Constant => c !== undefined);
      const rank = parts[0].dims.length;
      const axis = axisOf(attrs.int('axis', 0), rank, where);
      if (parts.some((p) => p.dims.length !== rank || p.dims.some((d, a) => a !== axis && d !== parts[0].dims[a]))) {
        throw new FormatError(`${where}: Concat of constants whose shapes differ off axis ${axis}`);
      }
      // Move the axis to the front, join, move it back.
      const front = (c: Constant) => transpose(c, [axis, ...c.dims.map((_, a) => a).filter((a) => a !== axis)]);
      const joined: Constant = {
        kind: 'const', type: parts.some((p) => p.type === 'float') ? 'float' : 'int',
        dims: [parts.reduce((n, p) => n + p.dims[axis], 0), ...parts[0].dims.filter((_, a) => a !== axis)],
        data: parts.flatMap((p) => Array.from(front(p).data)),
      };
      const back = joined.dims.map((_, a) => (a < axis ? a + 1 : a === axis ? 0 : a));
      return transpose(joined, back);
    }
    case 'Reshape': {
      const target = intsOf(inputs[1], 'shape', where) ?? missing(where, 'shape');
      const dims = target.map((d, a) => (d === 0 ? x!.dims[a] : d));
      const known = count(dims.filter((d) => d !== -1));
      const inferred = dims.map((d) => (d === -1 ? count(x!.dims) / known : d));
      if (dims.filter((d) => d === -1).length > 1 || count(inferred) !== count(x!.dims) || inferred.some((d) => !Number.isInteger(d) || d < 0)) {
        throw new FormatError(`${where}: cannot reshape [${x!.dims.join(', ')}] to [${target.join(', ')}]`);
      }
      return { ...x!, dims: inferred };
    }
    case 'Transpose': {
      const perm = attrs.ints('perm') ?? x!.dims.map((_, a) => x!.dims.length - 1 - a);
      if (perm.length !== x!.dims.length || [...perm].sort().some((p, a) => p !== a)) {
        throw new FormatError(`${where}: perm [${perm.join(', ')}] is not a permutation of ${x!.dims.length} axes`);
      }
      return transpose(x!, perm);
    }
    case 'Unsqueeze': case 'Squeeze': {
      const axes = (opset >= 13 ? intsOf(inputs[1], 'axes', where) : attrs.ints('axes'));
      if (op === 'Squeeze') {
        const drop = (axes ?? x!.dims.flatMap((d, a) => (d === 1 ? [a] : []))).map((a) => axisOf(a, x!.dims.length, where));
        if (drop.some((a) => x!.dims[a] !== 1)) throw new FormatError(`${where}: Squeeze of an axis whose size is not 1`);
        return { ...x!, dims: x!.dims.filter((_, a) => !drop.includes(a)) };
      }
      if (!axes) throw new FormatError(`${where}: Unsqueeze needs axes`);
      const rank = x!.dims.length + axes.length;
      const add = axes.map((a) => axisOf(a, rank, where));
      const dims: number[] = [];
      for (let a = 0, k = 0; a < rank; a++) dims.push(add.includes(a) ? 1 : x!.dims[k++]);
      return { ...x!, dims };
    }
    case 'Gather': {
      const indices = inputs[1] ?? missing(where, 'indices');
      const axis = axisOf(attrs.int('axis', 0), x!.dims.length, where);
      if (x!.dims.length !== 1 || axis !== 0 || indices.type !== 'int') throw new FormatError(`${where}: Gather is evaluated on 1-D constants only`);
      const data = Array.from(indices.data, (i) => {
        const k = i < 0 ? i + x!.dims[0] : i;
        if (!(k >= 0 && k < x!.dims[0])) throw new FormatError(`${where}: Gather index ${i} is outside [0, ${x!.dims[0]})`);
        return x!.data[k];
      });
      return { kind: 'const', dims: indices.dims, type: x!.type, data: x!.type === 'float' ? Float32Array.from(data) : data };
    }
    case 'Slice': {
      const rank = x!.dims.length;
      const [starts, ends, axesGiven, steps] = [1, 2, 3, 4].map((k) => intsOf(inputs[k], ['starts', 'ends', 'axes', 'steps'][k - 1], where));
      if (!starts || !ends || starts.length !== ends.length) throw new FormatError(`${where}: Slice needs as many starts as ends`);
      const axes = (axesGiven ?? starts.map((_, a) => a)).map((a) => axisOf(a, rank, where));
      // The indices kept along each axis (all of them where the slice does not touch it).
      const kept = x!.dims.map((n) => Array.from({ length: n }, (_, i) => i));
      axes.forEach((axis, j) => {
        const n = x!.dims[axis];
        const step = steps?.[j] ?? 1;
        if (step === 0) throw new FormatError(`${where}: Slice step 0`);
        const at = (v: number, lo: number, hi: number) => Math.min(Math.max(v < 0 ? v + n : v, lo), hi);
        const picked: number[] = [];
        if (step > 0) for (let i = at(starts[j], 0, n); i < at(ends[j], 0, n); i += step) picked.push(i);
        else for (let i = at(starts[j], 0, n - 1); i > at(ends[j], -1, n - 1); i += step) picked.push(i);
        kept[axis] = picked;
      });
      const dims = kept.map((k) => k.length);
      const inStrides = strides(x!.dims);
      const outStrides = strides(dims);
      const data = Array.from({ length: count(dims) }, (_, i) =>
        x!.data[dims.reduce((src, d, a) => src + kept[a][Math.floor(i / outStrides[a]) % d] * inStrides[a], 0)]);
      return { kind: 'const', dims, type: x!.type, data: x!.type === 'float' ? Float32Array.from(data) : data };
    }
    case 'ConstantOfShape': {
      const dims = intsOf(x, 'shape', where) ?? missing(where, 'input');
      const t = attrs.tensor('value');
      const fill = t ? decodeTensor(t, where) : { kind: 'const' as const, dims: [1], type: 'float' as const, data: [0] };
      const n = count(checkDims(dims, where));
      return { kind: 'const', dims, type: fill.type, data: fill.type === 'float' ? new Float32Array(n).fill(fill.data[0]) : new Array<number>(n).fill(fill.data[0]) };
    }
    default:
      throw new FormatError(`${where}: ${op} is not evaluated on constants`);
  }
}

function missing(where: string, what: string): never {
  throw new FormatError(`${where}: input ${what} is missing`);
}
