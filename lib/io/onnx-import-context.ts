// What the ONNX importer's op handlers share: the values they read and make, the context of
// the node being converted, and the checks every handler uses. ONNX images are NCHW, convkit's
// NHWC: every image value remembers which convkit axis each of its ONNX axes is (`axes`), so a
// Transpose only changes that record, and ops that work on channels or space check it. A
// vector flattened from an NCHW image holds its features in c, h, w order where convkit's
// Flatten gives h, w, c: the value keeps that order (`order`) and the Gemm or MatMul that reads
// it takes its weight rows in convkit's order.
import { onnx } from 'onnx-proto';
import { FormatError } from '../errors';
import { Reshape } from '../layers/core';
import { Layer, SymbolicTensor } from '../layers/layer';
import { Attributes, Constant, holdsBatchSize } from './onnx-import-values';

export interface TensorValue {
  kind: 'tensor';
  st: SymbolicTensor;
  /** The ONNX dims after the batch: [C, H, W] for an NCHW image, [F] for a vector. */
  dims: number[];
  /** Images: the convkit axis (1 h, 2 w, 3 c) of ONNX axes 1, 2, 3; NCHW is [3, 1, 2]. Null for vectors. */
  axes: number[] | null;
  /** Vectors: ONNX feature i is convkit feature order[i]; null when they agree. */
  order: Int32Array | null;
  /** Known to hold no negative value (after a ReLU), so zero padding cannot win a max pool. */
  nonNegative: boolean;
}

export type Value = TensorValue | Constant;

export interface LayerWeight {
  data: Float32Array;
  shape: number[];
}

export const NCHW = [3, 1, 2];

/** What a handler sees of the node it converts, and how it adds layers. */
export interface OpContext {
  node: onnx.INodeProto;
  op: string;
  /** "node NAME (OP)", for errors. */
  where: string;
  attrs: Attributes;
  opset: number;
  inputs: (Value | undefined)[];
  /**
   * The layer applied to `x`, named after the node (plus `_suffix` for a helper layer); its
   * weights are set once the model is built.
   */
  apply(layer: (name: string) => Layer, x: SymbolicTensor | SymbolicTensor[], weights?: LayerWeight[], suffix?: string): SymbolicTensor;
  /** The one node reading value `name` (default: this node's output), if it is no graph output. */
  soleConsumer(name?: string): onnx.INodeProto | undefined;
  /** Marks that consumer as done by this node: its output is the value this node makes. */
  absorb(consumer: onnx.INodeProto): void;
  /** The constant an input name holds, if it is one. */
  constantNamed(name: string): Constant | undefined;
}

export type Handler = (ctx: OpContext) => Value;

export const fail = (ctx: OpContext, why: string) => new FormatError(`${ctx.where}: ${why}`);

export function tensorInput(ctx: OpContext, k: number): TensorValue {
  const v = ctx.inputs[k];
  if (!v) throw fail(ctx, `input ${k} is missing`);
  if (v.kind !== 'tensor') throw fail(ctx, `input ${k} is a constant where convkit needs a value computed from the model's input`);
  return v;
}

/** Constant input k; one computed from the batch size (a Shape of a value) only where `batchSizeAllowed`. */
export function constInput(ctx: OpContext, k: number, what: string, batchSizeAllowed = false): Constant {
  const v = ctx.inputs[k];
  if (!v) throw fail(ctx, `input ${what} is missing`);
  if (v.kind !== 'const') throw fail(ctx, `input ${what} must be a constant (an initializer), as convkit's layers hold their own weights`);
  if (!batchSizeAllowed && holdsBatchSize(v)) throw fail(ctx, `input ${what} depends on the batch size, which is known only at run time`);
  return v;
}

export function floats(c: Constant): Float32Array {
  return c.data instanceof Float32Array ? c.data : Float32Array.from(c.data);
}

/**
 * Input k as an NCHW image. A value with at most one axis longer than 1 ([N, 1, 1, C] from a
 * squeeze-and-excitation gate, say) holds its values in the same order whichever axis that is,
 * so a Reshape makes any such view the NCHW image ONNX reads.
 */
export function image(ctx: OpContext, k = 0): TensorValue {
  const x = tensorInput(ctx, k);
  if (x.axes && x.axes.join() !== NCHW.join() && x.dims.filter((d) => d !== 1).length <= 1) {
    const [c, h, w] = x.dims;
    const st = ctx.apply((name) => new Reshape({ name, targetShape: [h, w, c] }), x.st, [], 'nchw');
    return { ...x, st, axes: NCHW };
  }
  if (!x.axes || x.axes.join() !== NCHW.join()) {
    throw fail(ctx, x.axes
      ? `reads an image whose axes were transposed to an order convkit cannot hold (${ctx.op} needs NCHW)`
      : `needs an NCHW image, got a vector of ${x.dims[0]} features`);
  }
  return x;
}

export function imageOut(st: SymbolicTensor, nonNegative = false): TensorValue {
  const [h, w, c] = st.shape.slice(1) as number[];
  return { kind: 'tensor', st, dims: [c, h, w], axes: NCHW, order: null, nonNegative };
}

export function vectorOut(st: SymbolicTensor, order: Int32Array | null = null, nonNegative = false): TensorValue {
  return { kind: 'tensor', st, dims: [st.shape[1] as number], axes: null, order, nonNegative };
}

/** The same kind of value as x (same axes or order), computed by an element-wise layer. */
export const like = (x: TensorValue, st: SymbolicTensor, nonNegative = false): TensorValue => ({ ...x, st, nonNegative });

export function unread(ctx: OpContext, known: string[]): void {
  const extra = ctx.attrs.unknown(known);
  if (extra.length) throw fail(ctx, `attribute ${extra[0]} is not supported (${known.length ? `read: ${known.join(', ')}` : 'none is'})`);
}

/** Per-channel values in convkit's channel order (a vector's features follow its order). */
export function perChannel(x: TensorValue, values: Float32Array | number[]): Float32Array {
  if (!x.order) return Float32Array.from(values);
  const out = new Float32Array(values.length);
  x.order.forEach((ck, i) => { out[ck] = values[i]; });
  return out;
}

export const channels = (x: TensorValue) => (x.axes ? x.dims[x.axes.indexOf(3)] : x.dims[0]);
