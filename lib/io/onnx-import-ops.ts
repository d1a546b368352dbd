// Each ONNX operator the importer maps, as convkit layers (the spatial ones are in
// onnx-import-spatial.ts, the shape and layout ones in onnx-import-shapes.ts, the values and
// checks they share in onnx-import-context.ts). Anything
// with no faithful convkit form is a FormatError naming the node, its op type and why.
import { onnx } from 'onnx-proto';
import { FormatError } from '../errors';
import { Activation, Dense, LeakyReLU, ReLU, Reshape, Softmax } from '../layers/core';
import { BatchNormalization } from '../layers/conv';
import { Layer } from '../layers/layer';
import { Add, Average, Multiply } from '../layers/merge';
import {
  channels, constInput, fail, floats, Handler, like, OpContext, perChannel, tensorInput, TensorValue,
  unread, vectorOut,
} from './onnx-import-context';
import { cast, concat, flatten, reshape, shapeOf, squeeze, transpose, unsqueeze } from './onnx-import-shapes';
import { conv, convTranspose, globalPool, pad, pool, reduce, resize, slice, upsample } from './onnx-import-spatial';
import { Constant, count } from './onnx-import-values';

// ---- normalization, affine maps ----

const batchNorm: Handler = (ctx) => {
  unread(ctx, ['epsilon', 'momentum', 'training_mode', 'spatial']);
  if (ctx.attrs.int('training_mode', 0) !== 0) throw fail(ctx, 'training_mode 1 (batch statistics at inference) is not supported');
  if (ctx.attrs.int('spatial', 1) !== 1) throw fail(ctx, 'spatial 0 (statistics per pixel) is not supported');
  const x = tensorInput(ctx, 0);
  // ONNX normalizes axis 1: on an image that must be convkit's channels.
  if (x.axes && x.axes[0] !== 3) throw fail(ctx, `normalizes ONNX axis 1 of an image whose channels lie on axis ${x.axes.indexOf(3) + 1}`);
  const c = channels(x);
  const params = ['scale', 'B', 'mean', 'var'].map((what, k) => {
    const p = constInput(ctx, k + 1, what);
    if (count(p.dims) !== c) throw fail(ctx, `${what} has ${count(p.dims)} values for ${c} channels`);
    return perChannel(x, floats(p));
  });
  const epsilon = ctx.attrs.float('epsilon', 1e-5);
  const momentum = ctx.attrs.float('momentum', 0.9);
  const y = ctx.apply((name) => new BatchNormalization({ name, epsilon, momentum }), x.st, params.map((data) => ({ data, shape: [c] })));
  return like(x, y);
};

/** The constant `c` broadcast against x as one value per channel (length C), or why not. */
function broadcastPerChannel(ctx: OpContext, x: TensorValue, c: Constant): Float32Array {
  const C = channels(x);
  const rank = x.dims.length + 1;
  if (c.dims.length > rank) throw fail(ctx, `constant [${c.dims.join(', ')}] has more axes than the value it scales`);
  const dims = [...new Array<number>(rank - c.dims.length).fill(1), ...c.dims];
  const channelAxis = x.axes ? x.axes.indexOf(3) + 1 : 1;
  const ok = dims.every((d, a) => d === 1 || (a === channelAxis && d === C));
  if (!ok) throw fail(ctx, `constant [${c.dims.join(', ')}] is not one value or one per channel of [N, ${x.dims.join(', ')}] (only those map to a convkit layer)`);
  const values = floats(c);
  return perChannel(x, values.length === 1 ? new Float32Array(C).fill(values[0]) : values);
}

/** (scale, shift) of an Add/Sub/Mul/Div of `x` and a constant, or null when not that pattern. */
function affineStep(ctx: OpContext, node: onnx.INodeProto, x: TensorValue, xName: string): { scale: Float32Array; shift: Float32Array } | null {
  const [a, b] = node.input ?? [];
  const otherName = a === xName ? b : a;
  const c = otherName ? ctx.constantNamed(otherName) : undefined;
  if (!c || (a === xName) === (b === xName)) return null;
  const v = broadcastPerChannel(ctx, x, c);
  const C = v.length;
  const ones = new Float32Array(C).fill(1);
  const zeros = new Float32Array(C);
  switch (node.opType) {
    case 'Mul': return { scale: v, shift: zeros };
    case 'Add': return { scale: ones, shift: v };
    case 'Sub': return a === xName ? { scale: ones, shift: v.map((s) => -s) } : { scale: ones.map(() => -1), shift: v };
    case 'Div':
      if (a !== xName) throw fail(ctx, 'a constant divided by a value has no convkit layer');
      return { scale: v.map((s) => 1 / s), shift: zeros };
    default: return null;
  }
}

/**
 * x * scale + shift per channel, for constant Add/Sub/Mul/Div (input scaling, normalization):
 * a frozen BatchNormalization with mean 0 and variance 1 (frozen batch norms run in inference
 * mode, in training too, so the map stays fixed). A chain of such nodes becomes one layer.
 */
const affine: Handler = (ctx) => {
  unread(ctx, []);
  const xIndex = ctx.inputs[0]?.kind === 'tensor' ? 0 : 1;
  const x = tensorInput(ctx, xIndex);
  const first = affineStep(ctx, ctx.node, x, ctx.node.input![xIndex]);
  if (!first) throw fail(ctx, `${ctx.op} needs a computed value and a constant, or two computed values`);
  let scale = Float64Array.from(first.scale);
  let shift = Float64Array.from(first.shift);
  let tail = ctx.node.output![0];
  for (let next = ctx.soleConsumer(tail); next && ['Add', 'Sub', 'Mul', 'Div'].includes(next.opType ?? ''); next = ctx.soleConsumer(tail)) {
    // A later node whose constant does not fit stays a node of its own (and says why there).
    let s: ReturnType<typeof affineStep> = null;
    try {
      s = affineStep(ctx, next, x, tail);
    } catch (e) {
      if (!(e instanceof FormatError)) throw e;
    }
    if (!s) break;
    scale = scale.map((v, i) => v * s.scale[i]);
    shift = shift.map((v, i) => v * s.scale[i] + s.shift[i]);
    ctx.absorb(next);
    tail = next.output![0];
  }
  const epsilon = 1e-6;
  // The kernel divides by sqrt(1 + epsilon) as float32 rounds it; gamma multiplies that back.
  const norm = Math.sqrt(Math.fround(1 + Math.fround(epsilon)));
  const C = scale.length;
  const y = ctx.apply((name) => new BatchNormalization({ name, epsilon, trainable: false }), x.st, [
    { data: Float32Array.from(scale, (s) => s * norm), shape: [C] }, { data: Float32Array.from(shift), shape: [C] },
    { data: new Float32Array(C), shape: [C] }, { data: new Float32Array(C).fill(1), shape: [C] },
  ]);
  return like(x, y, x.nonNegative && scale.every((s) => s >= 0) && shift.every((s) => s >= 0));
};

/** Add, Sub, Mul, Div: of two values (a residual add, a product), or of a value and a constant. */
const arithmetic: Handler = (ctx) => {
  const [a, b] = ctx.inputs;
  if (ctx.inputs.length !== 2) throw fail(ctx, `${ctx.op} takes 2 inputs, got ${ctx.inputs.length}`);
  if (a?.kind === 'tensor' && b?.kind === 'tensor') {
    unread(ctx, []);
    return merge(ctx, ctx.op === 'Add' ? 'Add' : ctx.op === 'Mul' ? 'Multiply' : null);
  }
  return affine(ctx);
};

/** Sum, Mean, Add and Mul of values of one shape and layout; Sub and Div of two values have no layer. */
function merge(ctx: OpContext, kind: 'Add' | 'Multiply' | 'Average' | null): TensorValue {
  const xs = ctx.inputs.map((_, k) => tensorInput(ctx, k));
  if (!kind) throw fail(ctx, `${ctx.op} of two computed values has no convkit layer (only Add, Mul, Sum, Mean do)`);
  const [x] = xs;
  if (kind === 'Multiply' && xs.length === 2 && xs[0].dims.join() !== xs[1].dims.join()) return gated(ctx, xs[0], xs[1]);
  for (const other of xs.slice(1)) {
    if (other.dims.join() !== x.dims.join()) throw fail(ctx, `inputs [N, ${x.dims.join(', ')}] and [N, ${other.dims.join(', ')}] differ (convkit merges equal shapes, no broadcasting)`);
    if (String(other.axes) !== String(x.axes) || String(other.order) !== String(x.order)) throw fail(ctx, 'inputs hold their axes or features in different orders');
  }
  if (xs.length === 1) return x;
  const Kind = { Add, Multiply, Average }[kind];
  const y = ctx.apply((name) => new Kind({ name }), xs.map((v) => v.st));
  return like(x, y, xs.every((v) => v.nonNegative));
}

/**
 * A Mul of an image and a gate of its channels, [C, 1, 1] in NCHW (squeeze-and-excitation):
 * convkit's Multiply broadcasts the gate over space. The gate's C values lie in channel order
 * whichever convkit axis holds them (a gate reshaped from a vector may hold them along w), so a
 * Reshape to [1, 1, C] makes any such gate convkit's. Other broadcasts have no layer.
 */
function gated(ctx: OpContext, a: TensorValue, b: TensorValue): TensorValue {
  const gates = (g: TensorValue, x: TensorValue) =>
    g.axes !== null && x.axes !== null && g.dims.length === x.dims.length &&
    g.dims.every((d, k) => (x.axes![k] === 3 ? d === x.dims[k] : d === 1));
  const [image, gate] = gates(b, a) ? [a, b] : gates(a, b) ? [b, a] : [null, null];
  if (!image || !gate) {
    throw fail(ctx, `inputs [N, ${a.dims.join(', ')}] and [N, ${b.dims.join(', ')}] do not broadcast as convkit's Multiply does (equal shapes, or an image and one value per channel, [N, C, 1, 1])`);
  }
  const C = channels(image);
  const held = gate.st.shape.slice(1).join();
  const gateSt = held === [1, 1, C].join() ? gate.st : ctx.apply((name) => new Reshape({ name, targetShape: [1, 1, C] }), gate.st, [], 'gate');
  const y = ctx.apply((name) => new Multiply({ name }), gate === a ? [gateSt, image.st] : [image.st, gateSt]);
  return like(image, y, a.nonNegative && b.nonNegative);
}

// ---- activations ----

function activation(make: (name: string) => Layer, nonNegative = false): Handler {
  return (ctx) => {
    const x = tensorInput(ctx, 0);
    return like(x, ctx.apply(make, x.st), nonNegative);
  };
}

const relu: Handler = (ctx) => {
  unread(ctx, []);
  return activation((name) => new ReLU({ name }), true)(ctx);
};

const clip: Handler = (ctx) => {
  unread(ctx, ['min', 'max']);
  const bound = (k: number, attr: string, fallback: number) => {
    if (ctx.opset < 11) return ctx.attrs.float(attr, fallback);
    if (!ctx.inputs[k]) return fallback;
    const c = constInput(ctx, k, attr);
    if (count(c.dims) !== 1) throw fail(ctx, `${attr} must be a scalar`);
    return Number(c.data[0]);
  };
  const min = bound(1, 'min', -Infinity);
  const max = bound(2, 'max', Infinity);
  if (min !== 0) throw fail(ctx, `Clip(${min}, ${max}): convkit clips at 0 only (ReLU, ReLU6, ReLU with maxValue)`);
  return activation((name) => new ReLU({ name, maxValue: max === Infinity ? null : max }), true)(ctx);
};

const leakyRelu: Handler = (ctx) => {
  unread(ctx, ['alpha']);
  const alpha = ctx.attrs.float('alpha', 0.01);
  return activation((name) => new LeakyReLU({ name, alpha }))(ctx);
};

/**
 * x times the gate this node computes from x (Sigmoid: swish/SiLU; HardSigmoid: hard swish, as
 * PyTorch exports them below opset 14): when this node's only reader is a Mul of its output and
 * its own input, the pair becomes one activation and the Mul is absorbed.
 */
function gatedBy(ctx: OpContext, act: 'swish' | 'hardSwish'): TensorValue | null {
  const next = ctx.soleConsumer();
  const [input] = ctx.node.input ?? [];
  const mulInputs = next?.input ?? [];
  if (next?.opType !== 'Mul' || mulInputs.length !== 2 || !mulInputs.includes(ctx.node.output![0]) || !mulInputs.includes(input)) return null;
  const x = tensorInput(ctx, 0);
  ctx.absorb(next);
  return like(x, ctx.apply((name) => new Activation({ name, activation: act }), x.st));
}

function namedActivation(act: 'sigmoid' | 'tanh' | 'elu' | 'softplus' | 'hardSwish'): Handler {
  return (ctx) => {
    unread(ctx, act === 'elu' ? ['alpha'] : []);
    if (act === 'elu' && ctx.attrs.float('alpha', 1) !== 1) throw fail(ctx, `alpha ${ctx.attrs.float('alpha', 1)}: convkit's ELU has alpha 1`);
    return (act === 'sigmoid' && gatedBy(ctx, 'swish')) ||
      activation((name) => new Activation({ name, activation: act }), act === 'sigmoid' || act === 'softplus')(ctx);
  };
}

/** An activation whose float attributes must be convkit's (to float32 precision). */
function fixedActivation(act: 'hardSigmoid' | 'selu', attrs: Record<string, [number, number]>): Handler {
  return (ctx) => {
    unread(ctx, Object.keys(attrs));
    for (const [attr, [fallback, want]] of Object.entries(attrs)) {
      const got = ctx.attrs.float(attr, fallback);
      if (Math.abs(got - want) > 1e-6 * Math.max(1, Math.abs(want))) {
        throw fail(ctx, `${attr} ${got}: convkit's ${act} has ${attr} ${want}`);
      }
    }
    return (act === 'hardSigmoid' && gatedBy(ctx, 'hardSwish')) ||
      activation((name) => new Activation({ name, activation: act }), act === 'hardSigmoid')(ctx);
  };
}

const softmax: Handler = (ctx) => {
  unread(ctx, ['axis']);
  const x = tensorInput(ctx, 0);
  const rank = x.dims.length + 1;
  const given = ctx.attrs.int('axis', ctx.opset >= 13 ? -1 : 1);
  const axis = given < 0 ? given + rank : given;
  // Before opset 13 Softmax works on the input flattened from `axis` on: the same on a vector.
  const ckAxis = x.axes ? (ctx.opset >= 13 || axis === rank - 1 ? x.axes[axis - 1] : -1) : axis === 1 ? 3 : -1;
  if (ckAxis !== 3) throw fail(ctx, `softmax over axis ${given} of [N, ${x.dims.join(', ')}]: convkit's Softmax is over the channels`);
  return like(x, ctx.apply((name) => new Softmax({ name }), x.st), true);
};

// ---- dense ----

/** Weight rows [K, N] in convkit's feature order of the vector that reads them. */
function rowsInOrder(x: TensorValue, w: Float32Array, k: number, n: number): Float32Array {
  if (!x.order) return w;
  const out = new Float32Array(w.length);
  for (let i = 0; i < k; i++) out.set(w.subarray(i * n, (i + 1) * n), x.order[i] * n);
  return out;
}

function dense(ctx: OpContext, x: TensorValue, kernel: Float32Array, k: number, n: number, bias: Float32Array | undefined): TensorValue {
  const weights = [{ data: rowsInOrder(x, kernel, k, n), shape: [k, n] }];
  if (bias) weights.push({ data: bias, shape: [n] });
  const y = ctx.apply((name) => new Dense({ name, units: n, useBias: Boolean(bias) }), x.st, weights);
  return x.axes ? { ...x, st: y, dims: [x.dims[0], x.dims[1], n] } : vectorOut(y);
}

/** A bias of N values: [N], [1, N] or one value for all. */
function biasOf(ctx: OpContext, c: Constant, n: number, scale: number): Float32Array {
  const v = floats(c);
  if (!(v.length === n || v.length === 1) || c.dims.length > 2 || (c.dims.length === 2 && c.dims[0] !== 1)) {
    throw fail(ctx, `bias [${c.dims.join(', ')}] is not one value per output (${n})`);
  }
  return Float32Array.from({ length: n }, (_, i) => scale * v[v.length === 1 ? 0 : i]);
}

const gemm: Handler = (ctx) => {
  unread(ctx, ['alpha', 'beta', 'transA', 'transB']);
  const x = tensorInput(ctx, 0);
  if (x.axes) throw fail(ctx, 'A must be a vector per example (flatten the image first)');
  if (ctx.attrs.int('transA', 0) !== 0) throw fail(ctx, 'transA 1 would transpose the batch');
  const b = constInput(ctx, 1, 'B');
  if (b.dims.length !== 2) throw fail(ctx, `B must be 2-D, got [${b.dims.join(', ')}]`);
  const transB = ctx.attrs.int('transB', 0) === 1;
  const [k, n] = transB ? [b.dims[1], b.dims[0]] : b.dims;
  if (k !== x.dims[0]) throw fail(ctx, `B [${b.dims.join(', ')}]${transB ? ' (transposed)' : ''} does not take ${x.dims[0]} features`);
  const alpha = ctx.attrs.float('alpha', 1);
  const w = floats(b);
  const kernel = new Float32Array(k * n);
  for (let i = 0; i < k; i++)
    for (let j = 0; j < n; j++) kernel[i * n + j] = alpha * (transB ? w[j * k + i] : w[i * n + j]);
  const bias = ctx.inputs[2] ? biasOf(ctx, constInput(ctx, 2, 'C'), n, ctx.attrs.float('beta', 1)) : undefined;
  return dense(ctx, x, kernel, k, n, bias);
};

/** MatMul by a constant on a vector, or on an image's channels; an Add of a bias after it joins it. */
const matMul: Handler = (ctx) => {
  unread(ctx, []);
  const x = tensorInput(ctx, 0);
  const b = constInput(ctx, 1, 'B');
  if (x.axes && x.axes[2] !== 3) throw fail(ctx, 'multiplies an image along an axis that is not its channels');
  const k = x.dims[x.dims.length - 1];
  if (b.dims.length !== 2 || b.dims[0] !== k) throw fail(ctx, `B [${b.dims.join(', ')}] does not take ${k} features`);
  const n = b.dims[1];
  const next = ctx.soleConsumer();
  let bias: Float32Array | undefined;
  if (next?.opType === 'Add') {
    const other = next.input?.find((name) => name !== ctx.node.output![0]);
    const c = other !== undefined ? ctx.constantNamed(other) : undefined;
    if (c && (count(c.dims) === n || count(c.dims) === 1) && c.dims.length <= 2) {
      bias = biasOf(ctx, c, n, 1);
      ctx.absorb(next);
    }
  }
  return dense(ctx, x, floats(b), k, n, bias);
};

const passThrough: Handler = (ctx) => {
  const x = ctx.inputs[0];
  if (!x) throw fail(ctx, 'input 0 is missing');
  return x;
};

/** Operators ONNX exporters write for CNNs that convkit has no layer for, and why. */
const NO_LAYER: Record<string, string> = {
  LpPool: "ONNX's LpPool sums without averaging, unlike convkit's LpPooling2D",
};

export const HANDLERS: Record<string, Handler> = {
  Conv: conv,
  BatchNormalization: batchNorm,
  Relu: relu,
  Clip: clip,
  LeakyRelu: leakyRelu,
  Elu: namedActivation('elu'),
  Sigmoid: namedActivation('sigmoid'),
  Tanh: namedActivation('tanh'),
  Softplus: namedActivation('softplus'),
  HardSwish: namedActivation('hardSwish'),
  // Keras 3's hard sigmoid, relu6(x + 3) / 6, is ONNX's with alpha 1/6 and beta 1/2 (PyTorch's
  // hardsigmoid); ONNX's default alpha 0.2 is the older Keras 2 / tfjs form.
  HardSigmoid: fixedActivation('hardSigmoid', { alpha: [0.2, 1 / 6], beta: [0.5, 0.5] }),
  Selu: fixedActivation('selu', { alpha: [1.67326319217681884765625, 1.6732632423543772], gamma: [1.05070102214813232421875, 1.0507009873554805] }),
  Softmax: softmax,
  Add: arithmetic,
  Sub: arithmetic,
  Mul: arithmetic,
  Div: arithmetic,
  Sum: (ctx) => merge(ctx, 'Add'),
  Mean: (ctx) => merge(ctx, 'Average'),
  MaxPool: pool('max'),
  AveragePool: pool('average'),
  GlobalAveragePool: globalPool('average'),
  GlobalMaxPool: globalPool('max'),
  Gemm: gemm,
  MatMul: matMul,
  Flatten: flatten,
  Reshape: reshape,
  Squeeze: squeeze,
  Unsqueeze: unsqueeze,
  Transpose: transpose,
  Concat: concat,
  Pad: pad,
  Resize: resize,
  Dropout: passThrough,
  Identity: passThrough,
  ConvTranspose: convTranspose,
  Slice: slice,
  Upsample: upsample,
  ReduceMean: reduce('average'),
  ReduceMax: reduce('max'),
  Shape: shapeOf,
  Cast: cast,
};

/** The handler of an op type, or the FormatError naming the node and why it has none. */
export function handlerFor(op: string, where: string): Handler {
  const handler = Object.prototype.hasOwnProperty.call(HANDLERS, op) ? HANDLERS[op] : undefined;
  if (handler) return handler;
  throw new FormatError(`${where}: ${NO_LAYER[op] ?? `the ONNX operator ${op} has no convkit mapping`} (supported: ${Object.keys(HANDLERS).join(', ')})`);
}
