// Each ONNX operator the importer maps, as convkit layers. ONNX images are NCHW, convkit's NHWC:
// every image value remembers which convkit axis each of its ONNX axes is (`axes`), so a
// Transpose only changes that record, and ops that work on channels or space check it. A
// vector flattened from an NCHW image holds its features in c, h, w order where convkit's
// Flatten gives h, w, c: the value keeps that order (`order`) and the Gemm or MatMul that reads
// it takes its weight rows in convkit's order. Anything with no faithful convkit form is a
// FormatError naming the node, its op type and why.
import { onnx } from 'onnx-proto';
import { FormatError } from '../errors';
import { Activation, Dense, Flatten, LeakyReLU, ReLU, Reshape, Softmax } from '../layers/core';
import {
  AveragePooling2D, BatchNormalization, Conv2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D,
} from '../layers/conv';
import { Layer, SymbolicTensor } from '../layers/layer';
import { Add, Average, Concatenate, Multiply } from '../layers/merge';
import { DepthwiseConv2D, UpSampling2D, ZeroPadding2D } from '../layers/spatial';
import { Attributes, Constant, count } from './onnx-import-values';

/** A value computed from the model's inputs: a convkit symbolic tensor and how ONNX sees it. */
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

type Handler = (ctx: OpContext) => Value;

const fail = (ctx: OpContext, why: string) => new FormatError(`${ctx.where}: ${why}`);

function tensorInput(ctx: OpContext, k: number): TensorValue {
  const v = ctx.inputs[k];
  if (!v) throw fail(ctx, `input ${k} is missing`);
  if (v.kind !== 'tensor') throw fail(ctx, `input ${k} is a constant where convkit needs a value computed from the model's input`);
  return v;
}

function constInput(ctx: OpContext, k: number, what: string): Constant {
  const v = ctx.inputs[k];
  if (!v) throw fail(ctx, `input ${what} is missing`);
  if (v.kind !== 'const') throw fail(ctx, `input ${what} must be a constant (an initializer), as convkit's layers hold their own weights`);
  return v;
}

function floats(c: Constant): Float32Array {
  return c.data instanceof Float32Array ? c.data : Float32Array.from(c.data);
}

function image(ctx: OpContext, k = 0): TensorValue {
  const x = tensorInput(ctx, k);
  if (!x.axes || x.axes.join() !== NCHW.join()) {
    throw fail(ctx, x.axes
      ? `reads an image whose axes were transposed to an order convkit cannot hold (${ctx.op} needs NCHW)`
      : `needs an NCHW image, got a vector of ${x.dims[0]} features`);
  }
  return x;
}

function imageOut(st: SymbolicTensor, nonNegative = false): TensorValue {
  const [h, w, c] = st.shape.slice(1) as number[];
  return { kind: 'tensor', st, dims: [c, h, w], axes: NCHW, order: null, nonNegative };
}

function vectorOut(st: SymbolicTensor, order: Int32Array | null = null, nonNegative = false): TensorValue {
  return { kind: 'tensor', st, dims: [st.shape[1] as number], axes: null, order, nonNegative };
}

/** The same kind of value as x (same axes or order), computed by an element-wise layer. */
const like = (x: TensorValue, st: SymbolicTensor, nonNegative = false): TensorValue => ({ ...x, st, nonNegative });

function unread(ctx: OpContext, known: string[]): void {
  const extra = ctx.attrs.unknown(known);
  if (extra.length) throw fail(ctx, `attribute ${extra[0]} is not supported (${known.length ? `read: ${known.join(', ')}` : 'none is'})`);
}

// ---- geometry ----

/** convkit's (TensorFlow's) 'same' padding along one axis: [before, after], the odd cell after. */
function samePads(input: number, kernel: number, stride: number, dilation: number): [number, number] {
  const total = Math.max((Math.ceil(input / stride) - 1) * stride + (kernel - 1) * dilation + 1 - input, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

interface Window {
  kernel: [number, number];
  strides: [number, number];
  dilations: [number, number];
  /** [top, left, bottom, right] */
  pads: number[];
}

/** A window op's geometry from its attributes, auto_pad resolved against the input size. */
function window(ctx: OpContext, x: TensorValue, kernel: number[] | undefined): Window {
  const a = ctx.attrs;
  const pair = (name: string, v: number[] | undefined, fallback: number): [number, number] => {
    const p = v ?? [fallback, fallback];
    if (p.length !== 2 || p.some((n) => !Number.isInteger(n) || n < (name === 'pads' ? 0 : 1))) {
      throw fail(ctx, `${name} must be two ${name === 'pads' ? 'non-negative' : 'positive'} integers for a 2-D window, got [${p.join(', ')}]`);
    }
    return [p[0], p[1]];
  };
  const k = pair('kernel_shape', kernel, 0);
  const strides = pair('strides', a.ints('strides'), 1);
  const dilations = pair('dilations', a.ints('dilations'), 1);
  const [, h, w] = x.dims;
  const autoPad = a.string('auto_pad', 'NOTSET');
  let pads: number[];
  if (autoPad === 'NOTSET') {
    pads = a.ints('pads') ?? [0, 0, 0, 0];
    if (pads.length !== 4 || pads.some((p) => !Number.isInteger(p) || p < 0)) throw fail(ctx, `pads must be 4 non-negative integers, got [${pads.join(', ')}]`);
  } else if (autoPad === 'VALID') {
    pads = [0, 0, 0, 0];
  } else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const [t, b] = samePads(h, k[0], strides[0], dilations[0]);
    const [l, r] = samePads(w, k[1], strides[1], dilations[1]);
    pads = autoPad === 'SAME_UPPER' ? [t, l, b, r] : [b, r, t, l];
  } else {
    throw fail(ctx, `auto_pad '${autoPad}' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER`);
  }
  return { kernel: k, strides, dilations, pads };
}

/**
 * The window's pads as convkit expresses them: none ('valid'), TensorFlow's 'same' (the odd
 * cell at the bottom/right), or a ZeroPadding2D before a 'valid' window when `zeroPadOk` (the
 * pads are zeros that the op must see, or zeros that cannot change its result).
 */
function padded(ctx: OpContext, x: TensorValue, win: Window, zeroPadOk: boolean | string): { st: SymbolicTensor; padding: 'valid' | 'same' } {
  const [t, l, b, r] = win.pads;
  if (t + l + b + r === 0) return { st: x.st, padding: 'valid' };
  const [, h, w] = x.dims;
  const [st, sb] = samePads(h, win.kernel[0], win.strides[0], win.dilations[0]);
  const [sl, sr] = samePads(w, win.kernel[1], win.strides[1], win.dilations[1]);
  if (t === st && b === sb && l === sl && r === sr) return { st: x.st, padding: 'same' };
  if (zeroPadOk !== true) throw fail(ctx, `pads [${win.pads.join(', ')}] are not TensorFlow's 'same' pads here ([${[st, sl, sb, sr].join(', ')}]), and ${zeroPadOk}`);
  const pad = ctx.apply((name) => new ZeroPadding2D({ name, padding: [[t, b], [l, r]] }), x.st, undefined, 'pad');
  return { st: pad, padding: 'valid' };
}

/** ONNX's output size of a window along one axis. */
function windowOutput(input: number, kernel: number, stride: number, dilation: number, padBefore: number, padAfter: number, ceil: boolean): number {
  const span = input + padBefore + padAfter - ((kernel - 1) * dilation + 1);
  return (ceil ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
}

/** The layer made what ONNX's formula says, or the mapping is wrong: never a silent mismatch. */
function checkImageShape(ctx: OpContext, st: SymbolicTensor, want: number[]): void {
  const got = st.shape.slice(1) as number[];
  if (got.join() !== [want[1], want[2], want[0]].join()) {
    throw fail(ctx, `convkit's layers give [${got.join(', ')}] (HWC) where ONNX gives [${want.join(', ')}] (CHW)`);
  }
}

// ---- convolution ----

/** OIHW [out, in, kh, kw] as HWIO [kh, kw, in, out]. */
function oihwToHwio(w: Float32Array, [co, ci, kh, kw]: number[]): Float32Array {
  const out = new Float32Array(w.length);
  for (let o = 0; o < co; o++)
    for (let i = 0; i < ci; i++)
      for (let y = 0; y < kh; y++)
        for (let x = 0; x < kw; x++) out[((y * kw + x) * ci + i) * co + o] = w[((o * ci + i) * kh + y) * kw + x];
  return out;
}

const conv: Handler = (ctx) => {
  unread(ctx, ['auto_pad', 'dilations', 'group', 'kernel_shape', 'pads', 'strides']);
  const x = image(ctx);
  const w = constInput(ctx, 1, 'W');
  const b = ctx.inputs[2] ? constInput(ctx, 2, 'B') : undefined;
  if (w.dims.length !== 4) throw fail(ctx, `W must be 4-D (a 2-D convolution), got [${w.dims.join(', ')}]`);
  const [co, ciPerGroup, kh, kw] = w.dims;
  const group = ctx.attrs.int('group', 1);
  const ci = x.dims[0];
  if (group < 1 || ci % group !== 0 || co % group !== 0 || ci / group !== ciPerGroup) {
    throw fail(ctx, `W [${w.dims.join(', ')}] with group ${group} does not fit ${ci} input channels`);
  }
  if (b && count(b.dims) !== co) throw fail(ctx, `B has ${count(b.dims)} values for ${co} output channels`);
  const kernelAttr = ctx.attrs.ints('kernel_shape');
  if (kernelAttr && kernelAttr.join() !== [kh, kw].join()) throw fail(ctx, `kernel_shape [${kernelAttr.join(', ')}] differs from W's [${kh}, ${kw}]`);
  const win = window(ctx, x, [kh, kw]);
  const { st, padding } = padded(ctx, x, win, true);
  const kernel = oihwToHwio(floats(w), w.dims);
  const weights = [{ data: kernel, shape: [kh, kw, ciPerGroup, co] }];
  if (b) weights.push({ data: floats(b), shape: [co] });
  const geometry = { kernelSize: win.kernel, strides: win.strides, dilationRate: win.dilations, padding, useBias: Boolean(b) };
  let y: SymbolicTensor;
  if (group > 1 && group === ci) {
    // One group per input channel: a depthwise convolution; output channel c*M + m reads channel c,
    // so the [kh, kw, 1, C*M] kernel is the depthwise [kh, kw, C, M] as it lies in memory.
    weights[0].shape = [kh, kw, ci, co / ci];
    y = ctx.apply((name) => new DepthwiseConv2D({ name, ...geometry, depthMultiplier: co / ci }), st, weights);
  } else {
    y = ctx.apply((name) => new Conv2D({ name, filters: co, groups: group, ...geometry }), st, weights);
  }
  const [, h, wd] = x.dims;
  checkImageShape(ctx, y, [co, windowOutput(h, kh, win.strides[0], win.dilations[0], win.pads[0], win.pads[2], false),
    windowOutput(wd, kw, win.strides[1], win.dilations[1], win.pads[1], win.pads[3], false)]);
  return imageOut(y);
};

// ---- normalization, affine maps ----

/** Per-channel values in convkit's channel order (a vector's features follow its order). */
function perChannel(x: TensorValue, values: Float32Array | number[]): Float32Array {
  if (!x.order) return Float32Array.from(values);
  const out = new Float32Array(values.length);
  x.order.forEach((ck, i) => { out[ck] = values[i]; });
  return out;
}

const channels = (x: TensorValue) => (x.axes ? x.dims[x.axes.indexOf(3)] : x.dims[0]);

const batchNorm: Handler = (ctx) => {
  unread(ctx, ['epsilon', 'momentum', 'training_mode', 'spatial']);
  if (ctx.attrs.int('training_mode', 0) !== 0) throw fail(ctx, 'training_mode 1 (batch statistics at inference) is not supported');
  if (ctx.attrs.int('spatial', 1) !== 1) throw fail(ctx, 'spatial 0 (statistics per pixel) is not supported');
  const x = tensorInput(ctx, 0);
  if (x.axes && x.axes.join() !== NCHW.join()) image(ctx);
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
  const first = affineStep(ctx, ctx.node, x, ctx.node.input![xIndex])!;
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
  for (const other of xs.slice(1)) {
    if (other.dims.join() !== x.dims.join()) throw fail(ctx, `inputs [N, ${x.dims.join(', ')}] and [N, ${other.dims.join(', ')}] differ (convkit merges equal shapes, no broadcasting)`);
    if (String(other.axes) !== String(x.axes) || String(other.order) !== String(x.order)) throw fail(ctx, 'inputs hold their axes or features in different orders');
  }
  if (xs.length === 1) return x;
  const Kind = { Add, Multiply, Average }[kind];
  const y = ctx.apply((name) => new Kind({ name }), xs.map((v) => v.st));
  return like(x, y, xs.every((v) => v.nonNegative));
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

function namedActivation(act: 'sigmoid' | 'tanh' | 'elu'): Handler {
  return (ctx) => {
    unread(ctx, act === 'elu' ? ['alpha'] : []);
    if (act === 'elu' && ctx.attrs.float('alpha', 1) !== 1) throw fail(ctx, `alpha ${ctx.attrs.float('alpha', 1)}: convkit's ELU has alpha 1`);
    return activation((name) => new Activation({ name, activation: act }), act === 'sigmoid')(ctx);
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

// ---- pooling ----

function pool(kind: 'max' | 'average'): Handler {
  return (ctx) => {
    unread(ctx, ['auto_pad', 'ceil_mode', 'kernel_shape', 'pads', 'strides', ...(kind === 'max' ? ['dilations', 'storage_order'] : ['count_include_pad'])]);
    if ((ctx.node.output ?? []).length > 1 && ctx.node.output![1]) throw fail(ctx, 'the Indices output has no convkit form');
    const x = image(ctx);
    const win = window(ctx, x, ctx.attrs.ints('kernel_shape') ?? []);
    if (win.dilations.some((d) => d !== 1)) throw fail(ctx, `dilations [${win.dilations.join(', ')}]: convkit pools without dilation`);
    const [, h, w] = x.dims;
    const size = (ceil: boolean) => [windowOutput(h, win.kernel[0], win.strides[0], 1, win.pads[0], win.pads[2], ceil),
      windowOutput(w, win.kernel[1], win.strides[1], 1, win.pads[1], win.pads[3], ceil)];
    const ceil = ctx.attrs.int('ceil_mode', 0) === 1;
    if (ceil && size(true).join() !== size(false).join()) throw fail(ctx, 'ceil_mode 1 adds a partial window convkit does not compute');
    // Zeros padded in front of a max pool change nothing when the input is never negative and
    // every window holds a real cell; an average counting its padding averages those zeros.
    const zeroPadOk = kind === 'max'
      ? (x.nonNegative && win.pads.every((p, i) => p < win.kernel[i % 2])) || 'a max pool pads with -inf, which zeros match only after a ReLU'
      : ctx.attrs.int('count_include_pad', 0) === 1 || 'count_include_pad 0 averages only real cells, which convkit does with its own \'same\' pads only';
    const { st, padding } = padded(ctx, x, win, zeroPadOk);
    const args = { poolSize: win.kernel, strides: win.strides, padding };
    const y = ctx.apply((name) => (kind === 'max' ? new MaxPooling2D({ name, ...args }) : new AveragePooling2D({ name, ...args })), st);
    checkImageShape(ctx, y, [x.dims[0], ...size(false)]);
    return imageOut(y, x.nonNegative);
  };
}

function globalPool(kind: 'max' | 'average'): Handler {
  return (ctx) => {
    unread(ctx, []);
    const x = image(ctx);
    const y = ctx.apply((name) => (kind === 'max' ? new GlobalMaxPooling2D({ name, keepDims: true }) : new GlobalAveragePooling2D({ name, keepDims: true })), x.st);
    return imageOut(y, x.nonNegative);
  };
}

// ---- shapes ----

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

/** A vector as the NCHW image [C, H, W]: exact when its features already lie as convkit's image would hold them. */
function toImage(ctx: OpContext, x: TensorValue, [c, h, w]: number[]): TensorValue {
  const want = flatOrder([c, h, w], NCHW);
  if (String(want) !== String(x.order)) throw fail(ctx, `reshaping ${x.dims[0]} features to [${c}, ${h}, ${w}] would need them transposed, which convkit has no layer for`);
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

const flatten: Handler = (ctx) => {
  unread(ctx, ['axis']);
  const x = tensorInput(ctx, 0);
  if (ctx.attrs.int('axis', 1) !== 1) throw fail(ctx, `axis ${ctx.attrs.int('axis', 1)}: only a flattening after the batch axis (1) is supported`);
  return toVector(ctx, x);
};

const reshape: Handler = (ctx) => {
  unread(ctx, ['allowzero']);
  const x = tensorInput(ctx, 0);
  const shape = constInput(ctx, 1, 'shape');
  if (shape.type !== 'int' || shape.dims.length !== 1) throw fail(ctx, 'shape must be a 1-D int64 constant');
  const target = [...shape.data];
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

const squeeze: Handler = (ctx) => {
  unread(ctx, ['axes']);
  const x = tensorInput(ctx, 0);
  const rank = x.dims.length + 1;
  const axes = (squeezeAxes(ctx) ?? x.dims.flatMap((d, a) => (d === 1 ? [a + 1] : []))).map((a) => (a < 0 ? a + rank : a));
  if (axes.some((a) => a < 1 || a >= rank || x.dims[a - 1] !== 1)) throw fail(ctx, `axes [${axes.join(', ')}] are not size-1 axes after the batch of [N, ${x.dims.join(', ')}]`);
  return reshapeTo(ctx, x, x.dims.filter((_, a) => !axes.includes(a + 1)));
};

const unsqueeze: Handler = (ctx) => {
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
const transpose: Handler = (ctx) => {
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

const concat: Handler = (ctx) => {
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

const pad: Handler = (ctx) => {
  unread(ctx, ['mode', 'pads', 'value']);
  const x = image(ctx);
  const mode = ctx.attrs.string('mode', 'constant');
  if (mode !== 'constant') throw fail(ctx, `mode '${mode}': convkit pads with zeros only`);
  const pads = ctx.opset >= 11 ? [...constInput(ctx, 1, 'pads').data] : ctx.attrs.ints('pads') ?? [];
  const value = ctx.opset >= 11 ? (ctx.inputs[2] ? Number(constInput(ctx, 2, 'constant_value').data[0] ?? 0) : 0) : ctx.attrs.float('value', 0);
  if (value !== 0) throw fail(ctx, `constant_value ${value}: convkit pads with zeros only`);
  if (pads.length !== 8 || pads.some((p) => !Number.isInteger(p) || p < 0) || pads[0] || pads[1] || pads[4] || pads[5]) {
    throw fail(ctx, `pads [${pads.join(', ')}]: convkit pads the two spatial axes, by non-negative amounts`);
  }
  const y = ctx.apply((name) => new ZeroPadding2D({ name, padding: [[pads[2], pads[6]], [pads[3], pads[7]]] }), x.st);
  return imageOut(y, x.nonNegative);
};

const resize: Handler = (ctx) => {
  unread(ctx, ['mode', 'coordinate_transformation_mode', 'nearest_mode', 'cubic_coeff_a', 'exclude_outside', 'extrapolation_value']);
  const x = image(ctx);
  const mode = ctx.attrs.string('mode', 'nearest');
  const coordinates = ctx.attrs.string('coordinate_transformation_mode', ctx.opset >= 11 ? 'half_pixel' : 'asymmetric');
  const nearest = ctx.attrs.string('nearest_mode', 'round_prefer_floor');
  // convkit samples source = destination / size: nearest takes its floor, bilinear interpolates there.
  const interpolation = mode === 'nearest' && coordinates === 'asymmetric' && nearest === 'floor' ? 'nearest'
    : mode === 'linear' && coordinates === 'asymmetric' ? 'bilinear' : null;
  if (!interpolation) {
    throw fail(ctx, `mode '${mode}' with coordinate_transformation_mode '${coordinates}'${mode === 'nearest' ? ` and nearest_mode '${nearest}'` : ''} samples differently from convkit's up-sampling (nearest: asymmetric + floor; linear: asymmetric)`);
  }
  const [c, h, w] = x.dims;
  const scalesInput = ctx.opset >= 11 ? 2 : 1;
  const scales = ctx.inputs[scalesInput] && count((ctx.inputs[scalesInput] as Constant).dims ?? []) > 0
    ? [...constInput(ctx, scalesInput, 'scales').data]
    : ctx.inputs[3] ? [...constInput(ctx, 3, 'sizes').data].map((s, a) => s / [1, c, h, w][a]) : [];
  if (scales.length !== 4 || scales[0] !== 1 || scales[1] !== 1 || !scales.slice(2).every((s) => Number.isInteger(s) && s >= 1)) {
    throw fail(ctx, `scales [${scales.join(', ')}]: convkit up-samples height and width by whole factors`);
  }
  const y = ctx.apply((name) => new UpSampling2D({ name, size: [scales[2], scales[3]], interpolation }), x.st);
  return imageOut(y, x.nonNegative);
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
  HardSigmoid: 'convkit has no hard-sigmoid activation',
  HardSwish: 'convkit has no hard-swish activation',
  ConvTranspose: 'convkit has no transposed convolution',
  LpPool: "ONNX's LpPool sums without averaging, unlike convkit's LpPooling2D",
  Shape: 'shapes computed from the input at run time are not supported (export with a fixed shape or use torch.flatten)',
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
};

/** The handler of an op type, or the FormatError naming the node and why it has none. */
export function handlerFor(op: string, where: string): Handler {
  const handler = Object.prototype.hasOwnProperty.call(HANDLERS, op) ? HANDLERS[op] : undefined;
  if (handler) return handler;
  throw new FormatError(`${where}: ${NO_LAYER[op] ?? `the ONNX operator ${op} has no convkit mapping`} (supported: ${Object.keys(HANDLERS).join(', ')})`);
}
