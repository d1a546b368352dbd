// The ONNX operators that change a value's shape or layout but compute nothing (Flatten,
// Reshape, Squeeze, Unsqueeze, Transpose, Concat), and Shape and Cast: what exporters write
// between the layers. Transposes only change which convkit axis each ONNX axis is; flattening
// an image that NCHW holds otherwise records the feature order its Dense reader must follow.
import { onnx } from 'onnx-proto';
import { Flatten, Reshape } from '../layers/core';
import { Concatenate } from '../layers/merge';
import { constInput, fail, Handler, imageOut, NCHW, OpContext, tensorInput, TensorValue, unread, vectorOut } from './onnx-import-context';
import { BATCH_SIZE, count } from './onnx-import-values';

/** Where each ONNX feature of a flattened image lands in convkit's h, w, c flattening (null: the same). */
function flatOrder(dims: number[], axes: number[]): Int32Array | null {
  const ck = [0, 0, 0];
  axes.forEach((c, a) => { ck[c - 1] = dims[a]; });
  const ckStrides = [ck[1] * ck[2], ck[2], 1];
  const order = new Int32Array(count(dims));
  let identity = true;
  let f = 0;
  for (let i = 0; i < dims[0]; i++)
    for (let j = 0; j < dims[1]; j++)
      for (let k = 0; k < dims[2]; k++, f++) {
        order[f] = i * ckStrides[axes[0] - 1] + j * ckStrides[axes[1] - 1] + k * ckStrides[axes[2] - 1];
        if (order[f] !== f) identity = false;
      }
  return identity ? null : order;
}

function toVector(ctx: OpContext, x: TensorValue): TensorValue {
  if (!x.axes) return x;
  const y = ctx.apply((name) => new Flatten({ name }), x.st);
  return vectorOut(y, flatOrder(x.dims, x.axes), x.nonNegative);
}

/**
 * A vector as the NCHW image [C, H, W]: exact when its features already lie as convkit's image
 * would hold them. A shape with one axis longer than 1 ([1, 1, C]: Keras's squeeze-and-excitation
 * gate reshaped to [-1, 1, 1, C]) holds the vector in the same order on any axis, so that axis
 * becomes convkit's channels: a gate multiplies an image's channels with no further layer, and
 * an op reading it as NCHW gets it reshaped there (see image()).
 */
function toImage(ctx: OpContext, x: TensorValue, [c, h, w]: number[]): TensorValue {
  const want = flatOrder([c, h, w], NCHW);
  if (String(want) !== String(x.order)) throw fail(ctx, `reshaping ${x.dims[0]} features to [${c}, ${h}, ${w}] would need them transposed, which convkit has no layer for`);
  const dims = [c, h, w];
  const long = dims.findIndex((d) => d !== 1);
  if (long > 0 && dims.filter((d) => d !== 1).length === 1) {
    const others = [1, 2];
    const axes = dims.map((_, a) => (a === long ? 3 : others.shift()!));
    const y = ctx.apply((name) => new Reshape({ name, targetShape: [1, 1, dims[long]] }), x.st);
    return { kind: 'tensor', st: y, dims, axes, order: null, nonNegative: x.nonNegative };
  }
  const y = ctx.apply((name) => new Reshape({ name, targetShape: [h, w, c] }), x.st);
  return imageOut(y, x.nonNegative);
}

/** A per-example shape (after the batch) as an image, a vector, or unchanged. */
function reshapeTo(ctx: OpContext, x: TensorValue, dims: number[]): TensorValue {
  if (count(dims) !== count(x.dims)) throw fail(ctx, `cannot reshape [N, ${x.dims.join(', ')}] to [N, ${dims.join(', ')}]`);
  if (dims.join() === x.dims.join()) return x;
  if (dims.length === 1) return toVector(ctx, x);
  if (dims.length === 3) return toImage(ctx, toVector(ctx, x), dims);
  throw fail(ctx, `[N, ${dims.join(', ')}]: convkit holds images (N, C, H, W) and vectors (N, F) only`);
}

export const flatten: Handler = (ctx) => {
  unread(ctx, ['axis']);
  const x = tensorInput(ctx, 0);
  if (ctx.attrs.int('axis', 1) !== 1) throw fail(ctx, `axis ${ctx.attrs.int('axis', 1)}: only a flattening after the batch axis (1) is supported`);
  return toVector(ctx, x);
};

export const reshape: Handler = (ctx) => {
  unread(ctx, ['allowzero']);
  const x = tensorInput(ctx, 0);
  const shape = constInput(ctx, 1, 'shape', true);
  if (shape.type !== 'int' || shape.dims.length !== 1) throw fail(ctx, 'shape must be a 1-D int64 constant');
  // The batch size read by a Shape (TensorFlow's Flatten: [batch, -1]) may stand first, nowhere else.
  const target = Array.from(shape.data, (d, a) => (a === 0 && Number.isNaN(d) ? 0 : d));
  if (target.some((d) => Number.isNaN(d))) throw fail(ctx, `shape [${[...shape.data].map((d) => (Number.isNaN(d) ? 'batch' : d)).join(', ')}] puts the batch size after the batch axis`);
  // The first axis stays the batch: 0 (copy), -1 (with everything else known) or the batch size the exporter saw.
  if (target.length < 2) throw fail(ctx, `shape [${target.join(', ')}] drops the batch axis`);
  const rest = target.slice(1).map((d, a) => (d === 0 && a + 1 < x.dims.length + 1 ? x.dims[a] : d));
  if (rest.some((d) => d < -1 || d === 0) || rest.filter((d) => d === -1).length > (target[0] === -1 ? 0 : 1)) {
    throw fail(ctx, `shape [${target.join(', ')}] does not keep the batch axis first`);
  }
  const known = count(rest.filter((d) => d !== -1));
  return reshapeTo(ctx, x, rest.map((d) => (d === -1 ? count(x.dims) / known : d)));
};

function squeezeAxes(ctx: OpContext): number[] | undefined {
  if (ctx.opset < 13) return ctx.attrs.ints('axes');
  if (!ctx.inputs[1]) return undefined;
  const c = constInput(ctx, 1, 'axes');
  return [...c.data];
}

export const squeeze: Handler = (ctx) => {
  unread(ctx, ['axes']);
  const x = tensorInput(ctx, 0);
  const rank = x.dims.length + 1;
  const axes = (squeezeAxes(ctx) ?? x.dims.flatMap((d, a) => (d === 1 ? [a + 1] : []))).map((a) => (a < 0 ? a + rank : a));
  if (axes.some((a) => a < 1 || a >= rank || x.dims[a - 1] !== 1)) throw fail(ctx, `axes [${axes.join(', ')}] are not size-1 axes after the batch of [N, ${x.dims.join(', ')}]`);
  return reshapeTo(ctx, x, x.dims.filter((_, a) => !axes.includes(a + 1)));
};

export const unsqueeze: Handler = (ctx) => {
  unread(ctx, ['axes']);
  const x = tensorInput(ctx, 0);
  const given = squeezeAxes(ctx);
  if (!given) throw fail(ctx, 'axes are missing');
  const rank = x.dims.length + 1 + given.length;
  const axes = given.map((a) => (a < 0 ? a + rank : a));
  if (axes.some((a) => a < 1 || a >= rank)) throw fail(ctx, `axes [${given.join(', ')}] must come after the batch axis`);
  const dims: number[] = [];
  for (let a = 1, k = 0; a < rank; a++) dims.push(axes.includes(a) ? 1 : x.dims[k++]);
  return reshapeTo(ctx, x, dims);
};

/** A Transpose of an image changes only which convkit axis each ONNX axis is; no layer. */
export const transpose: Handler = (ctx) => {
  unread(ctx, ['perm']);
  const x = tensorInput(ctx, 0);
  const rank = x.dims.length + 1;
  const perm = ctx.attrs.ints('perm') ?? Array.from({ length: rank }, (_, a) => rank - 1 - a);
  if (perm.length !== rank || perm[0] !== 0 || [...perm].sort().some((p, a) => p !== a)) {
    throw fail(ctx, `perm [${perm.join(', ')}] moves the batch axis or is not a permutation of ${rank} axes`);
  }
  if (!x.axes) return x;  // [0, 1]
  return { ...x, dims: perm.slice(1).map((p) => x.dims[p - 1]), axes: perm.slice(1).map((p) => x.axes![p - 1]) };
};

export const concat: Handler = (ctx) => {
  unread(ctx, ['axis']);
  const xs = ctx.inputs.map((_, k) => tensorInput(ctx, k));
  const [x] = xs;
  const rank = x.dims.length + 1;
  const given = ctx.attrs.int('axis', 1);
  const axis = given < 0 ? given + rank : given;
  const onChannels = x.axes ? x.axes[axis - 1] === 3 : axis === 1 && xs.every((v) => !v.order);
  if (!onChannels) throw fail(ctx, `concatenation on axis ${given} of [N, ${x.dims.join(', ')}]: convkit concatenates channels (or unpermuted features)`);
  if (xs.some((v) => String(v.axes) !== String(x.axes))) throw fail(ctx, 'inputs hold their axes in different orders');
  const y = ctx.apply((name) => new Concatenate({ name }), xs.map((v) => v.st));
  const out: TensorValue = x.axes ? { ...x, st: y, dims: x.dims.map((d, a) => (a === axis - 1 ? xs.reduce((n, v) => n + v.dims[a], 0) : d)) } : vectorOut(y);
  return { ...out, nonNegative: xs.every((v) => v.nonNegative) };
};

/** Shape of a computed value: its sizes, known when the file is read, but for the batch size. */
export const shapeOf: Handler = (ctx) => {
  unread(ctx, ['start', 'end']);
  const x = tensorInput(ctx, 0);
  const all = [BATCH_SIZE, ...x.dims];
  const at = (v: number) => Math.min(Math.max(v < 0 ? v + all.length : v, 0), all.length);
  const data = all.slice(at(ctx.attrs.int('start', 0)), at(ctx.attrs.int('end', all.length)));
  return { kind: 'const', dims: [data.length], type: 'int', data };
};

/** Cast of a computed value: convkit's values are float32 already. */
export const cast: Handler = (ctx) => {
  unread(ctx, ['to', 'saturate']);
  const to = ctx.attrs.int('to', 0);
  if (to !== onnx.TensorProto.DataType.FLOAT) throw fail(ctx, `Cast to ${onnx.TensorProto.DataType[to] ?? to}: convkit computes in float32 only`);
  return tensorInput(ctx, 0);
};
