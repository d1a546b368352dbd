// ck.ops: the op layer. Tensors first, then one options object with tfjs names; each op checks
// its options here (a plain object of the keys it takes; types, integers, NaN) and the native
// core checks shapes. Ops return at once; the kernel runs on the core's stream. Gradients:
// `<op>Grad(dy, ...inputs, opts)`.
import { describeValue, DTypeError, ShapeError, ValueError } from './errors';
import { native, NativeHandle, Padding } from './native';
import { checkTensor, Tensor } from './tensor';

export type Pair = number | [number, number];
export type ActivationName = 'linear' | 'relu' | 'leakyRelu' | 'elu' | 'sigmoid' | 'tanh';

export interface Conv2dOptions {
  strides?: Pair;
  padding?: Padding;
  /** tfjs calls it `dilations`; both are accepted. */
  dilation?: Pair;
  dilations?: Pair;
  bias?: Tensor;
  /** A fused epilogue: 'linear' (default) or 'relu'. */
  activation?: 'linear' | 'relu';
}
export interface GroupedConv2dOptions extends Conv2dOptions {
  /**
   * Keras Conv2D's `groups` (default 1): input and output channels split into this many groups,
   * each convolved on its own; filter [kH, kW, C/groups, K]. Groups > 1 run on the CPU.
   */
  groups?: number;
}
/** conv2dGrad's options: the forward op's geometry (the gradient is of conv2d without its bias and activation). */
export type Conv2dGradOptions = Omit<GroupedConv2dOptions, 'bias' | 'activation'>;
export type DepthwiseConv2dGradOptions = Omit<Conv2dOptions, 'bias' | 'activation'>;
export interface Pool2dOptions {
  poolSize?: Pair;
  strides?: Pair;
  padding?: Padding;
}
export interface LpPool2dOptions extends Pool2dOptions {
  /** The norm's exponent, >= 1 (default 2: the square root of the window's mean square). */
  p?: number;
}
/** Keras ZeroPadding2D's padding: n, [rows, cols] or [[top, bottom], [left, right]]. */
export type ZeroPadding = number | [number, number] | [[number, number], [number, number]];
export interface UpSampling2dOptions {
  /** Integer factors [rows, cols] (default 2). */
  size?: Pair;
  interpolation?: 'nearest' | 'bilinear';
  /**
   * Bilinear sampling positions. true (default): tf.image.resize's half-pixel centres, which
   * Keras's UpSampling2D uses; false: tf.image.resizeBilinear's default, which tfjs's uses.
   */
  halfPixelCenters?: boolean;
}

const wrap = (h: NativeHandle): Tensor => new Tensor(h);
const h = (t: unknown, op: string, name: string): NativeHandle => checkTensor(t, op, name).handle;
const hOpt = (t: unknown, op: string, name: string): NativeHandle | null =>
  t === undefined || t === null ? null : h(t, op, name);

/** A plain object ({ ... } or Object.create(null)), from any realm: not a Tensor, array or class instance. */
function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object') return false;
  const proto = Object.getPrototypeOf(v);
  return proto === null || Object.getPrototypeOf(proto) === null;
}

/**
 * The op's options object: undefined (every default) or a plain object whose keys are all in
 * `known`. A misspelt or foreign key (`stride`, a pooling option given to an activation) is a
 * ValueError rather than an option silently left at its default; a key set to undefined is
 * absent, as every option's default is.
 */
function options<T extends object>(opts: T | undefined, op: string, known: readonly string[]): T {
  if (opts === undefined) return {} as T;
  if (!isPlainObject(opts)) {
    const what = opts instanceof Tensor ? 'a Tensor' : Array.isArray(opts) ? 'an array' : describeValue(opts);
    throw new ValueError(`${op}: options must be an object ({ ${known.join(', ')} }), got ${what}`);
  }
  for (const key of Object.keys(opts)) {
    if (!known.includes(key) && opts[key] !== undefined) {
      throw new ValueError(`${op}: unknown option '${key}' (${op} takes ${known.length ? known.join(', ') : 'no options'})`);
    }
  }
  return opts;
}

const CONV_GRAD_KEYS = ['strides', 'padding', 'dilation', 'dilations'] as const;
const CONV_KEYS = [...CONV_GRAD_KEYS, 'bias', 'activation'] as const;
const POOL_KEYS = ['poolSize', 'strides', 'padding'] as const;
const UP_KEYS = ['size', 'interpolation', 'halfPixelCenters'] as const;

/** A positive integer or [h, w] pair of them. */
export function pair(v: unknown, def: number, op: string, name: string): [number, number] {
  if (v === undefined) return [def, def];
  const arr = typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(arr) || arr.length !== 2 || !arr.every((x) => Number.isInteger(x) && x >= 1)) {
    throw new ValueError(`${op}: ${name} must be a positive integer or a pair of them, got ${describeValue(v)}`);
  }
  return [arr[0], arr[1]];
}

function padding(v: unknown, op: string): Padding {
  if (v === undefined) return 'valid';
  if (v !== 'valid' && v !== 'same') {
    throw new ValueError(`${op}: padding must be 'valid' or 'same', got ${describeValue(v)}`);
  }
  return v;
}

/** A finite number in [lo, hi] (or [lo, hi) with hiOpen). */
function finite(v: unknown, def: number, op: string, name: string, lo = -Infinity, hi = Infinity, hiOpen = false): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi || (hiOpen && v === hi)) {
    throw new ValueError(`${op}: ${name} must be a finite number in [${lo}, ${hi}${hiOpen ? ')' : ']'}, got ${describeValue(v)}`);
  }
  return v;
}

function bool(v: unknown, def: boolean, op: string, name: string): boolean {
  if (v === undefined) return def;
  if (typeof v !== 'boolean') throw new ValueError(`${op}: ${name} must be a boolean, got ${describeValue(v)}`);
  return v;
}

/** The native options of a convolution: { strides, padding, dilation }, every default filled. */
function convArgs(o: Conv2dOptions, op: string): { strides: [number, number]; padding: Padding; dilation: [number, number] } {
  const strides = pair(o.strides, 1, op, 'strides');
  if (o.dilation !== undefined && o.dilations !== undefined) {
    throw new ValueError(`${op}: give dilation or dilations (the same option), not both`);
  }
  const dilation = pair(o.dilation !== undefined ? o.dilation : o.dilations, 1, op, 'dilation');
  return { strides, padding: padding(o.padding, op), dilation };
}

function groupsArg(v: unknown, op: string): number {
  if (v === undefined) return 1;
  if (!Number.isInteger(v) || (v as number) < 1) {
    throw new ValueError(`${op}: groups must be a positive integer, got ${describeValue(v)}`);
  }
  return v as number;
}

/** The native options of a pooling: { poolSize, strides, padding }, every default filled. */
function poolArgs(o: Pool2dOptions, op: string): { poolSize: [number, number]; strides: [number, number]; padding: Padding } {
  const poolSize = pair(o.poolSize, 2, op, 'poolSize');
  const strides = o.strides === undefined ? poolSize : pair(o.strides, 1, op, 'strides');
  return { poolSize, strides, padding: padding(o.padding, op) };
}

// ---- convolution and dense ----

/** 2-D convolution: x [N,H,W,C], filter [kH,kW,C/groups,K] (HWIO) -> [N,P,Q,K]. */
export function conv2d(x: Tensor, filter: Tensor, opts?: GroupedConv2dOptions): Tensor {
  const op = 'conv2d';
  const o = options(opts, op, [...CONV_KEYS, 'groups']);
  const act = o.activation === undefined ? 'linear' : o.activation;
  if (act !== 'linear' && act !== 'relu') {
    throw new ValueError(`${op}: activation must be 'linear' or 'relu', got ${describeValue(act)}`);
  }
  return wrap(native.conv2d(h(x, op, 'x'), h(filter, op, 'filter'), hOpt(o.bias, op, 'bias'),
    { ...convArgs(o, op), activation: act, groups: groupsArg(o.groups, op) }));
}

/** Gradients of conv2d (without its activation) for dy: { dx, dw, db }. */
export function conv2dGrad(dy: Tensor, x: Tensor, filter: Tensor, opts?: Conv2dGradOptions):
  { dx: Tensor; dw: Tensor; db: Tensor } {
  const op = 'conv2dGrad';
  const o = options(opts, op, [...CONV_GRAD_KEYS, 'groups']);
  const g = native.conv2dGrad(h(dy, op, 'dy'), h(x, op, 'x'), h(filter, op, 'filter'),
    { ...convArgs(o, op), withBias: true, groups: groupsArg(o.groups, op) });
  return { dx: wrap(g.dx), dw: wrap(g.dw), db: wrap(g.db as NativeHandle) };
}

/**
 * Depthwise 2-D convolution (tf.depthwiseConv2d): x [N,H,W,C], filter [kH,kW,C,M] (M: the depth
 * multiplier) -> [N,P,Q,C*M], output channel c*M + m from input channel c.
 */
export function depthwiseConv2d(x: Tensor, filter: Tensor, opts?: Conv2dOptions): Tensor {
  const op = 'depthwiseConv2d';
  const o = options(opts, op, CONV_KEYS);
  const act = o.activation === undefined ? 'linear' : o.activation;
  if (act !== 'linear' && act !== 'relu') {
    throw new ValueError(`${op}: activation must be 'linear' or 'relu', got ${describeValue(act)}`);
  }
  return wrap(native.depthwiseConv2d(h(x, op, 'x'), h(filter, op, 'filter'), hOpt(o.bias, op, 'bias'),
    { ...convArgs(o, op), activation: act }));
}

/** Gradients of depthwiseConv2d (without its activation) for dy: { dx, dw, db }. */
export function depthwiseConv2dGrad(dy: Tensor, x: Tensor, filter: Tensor, opts?: DepthwiseConv2dGradOptions):
  { dx: Tensor; dw: Tensor; db: Tensor } {
  const op = 'depthwiseConv2dGrad';
  const o = options(opts, op, CONV_GRAD_KEYS);
  const g = native.depthwiseConv2dGrad(h(dy, op, 'dy'), h(x, op, 'x'), h(filter, op, 'filter'),
    { ...convArgs(o, op), withBias: true });
  return { dx: wrap(g.dx), dw: wrap(g.dw), db: wrap(g.db as NativeHandle) };
}

export interface Conv2dTransposeOptions extends Conv2dOptions {
  /**
   * Keras Conv2DTranspose's output_padding: rows and columns added after the last window (each
   * smaller than its stride). Left out (or null, Keras's None), the output is in * stride with
   * 'same' padding and in * stride + max(kernel - stride, 0) with 'valid'.
   */
  outputPadding?: number | [number, number] | null;
}
export type Conv2dTransposeGradOptions = Omit<Conv2dTransposeOptions, 'bias' | 'activation'>;
const CONV_TRANSPOSE_GRAD_KEYS = [...CONV_GRAD_KEYS, 'outputPadding'] as const;

/** outputPadding as the native op takes it: [-1, -1] for none. */
function outputPaddingArg(v: unknown, op: string): [number, number] {
  if (v === undefined || v === null) return [-1, -1];
  const arr = typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(arr) || arr.length !== 2 || !arr.every((x) => Number.isInteger(x) && x >= 0)) {
    throw new ValueError(`${op}: outputPadding must be an integer >= 0, a pair of them or null, got ${describeValue(v)}`);
  }
  return [arr[0], arr[1]];
}

/**
 * Transposed 2-D convolution (Keras Conv2DTranspose, tf.conv2dTranspose): x [N,H,W,C], filter
 * [kH,kW,filters,C] (Keras's kernel layout) -> [N,Ho,Wo,filters], Ho as Keras's
 * deconv_output_length. It is conv2d's gradient with respect to its input, for the convolution
 * from the output back to x.
 */
export function conv2dTranspose(x: Tensor, filter: Tensor, opts?: Conv2dTransposeOptions): Tensor {
  const op = 'conv2dTranspose';
  const o = options(opts, op, [...CONV_KEYS, 'outputPadding']);
  const act = o.activation === undefined ? 'linear' : o.activation;
  if (act !== 'linear' && act !== 'relu') {
    throw new ValueError(`${op}: activation must be 'linear' or 'relu', got ${describeValue(act)}`);
  }
  return wrap(native.conv2dTranspose(h(x, op, 'x'), h(filter, op, 'filter'), hOpt(o.bias, op, 'bias'),
    { ...convArgs(o, op), outputPadding: outputPaddingArg(o.outputPadding, op), activation: act }));
}

/** Gradients of conv2dTranspose (without its activation) for dy: { dx, dw, db }. */
export function conv2dTransposeGrad(dy: Tensor, x: Tensor, filter: Tensor, opts?: Conv2dTransposeGradOptions):
  { dx: Tensor; dw: Tensor; db: Tensor } {
  const op = 'conv2dTransposeGrad';
  const o = options(opts, op, CONV_TRANSPOSE_GRAD_KEYS);
  const g = native.conv2dTransposeGrad(h(dy, op, 'dy'), h(x, op, 'x'), h(filter, op, 'filter'),
    { ...convArgs(o, op), outputPadding: outputPaddingArg(o.outputPadding, op), withBias: true });
  return { dx: wrap(g.dx), dw: wrap(g.dw), db: wrap(g.db as NativeHandle) };
}

/** Fully connected: x [..., in] times kernel [in, out] (+ bias) -> [..., out]. */
export function dense(x: Tensor, kernel: Tensor, opts?: { bias?: Tensor; activation?: 'linear' | 'relu' }): Tensor {
  const op = 'dense';
  const o = options(opts, op, ['bias', 'activation']);
  const act = o.activation === undefined ? 'linear' : o.activation;
  if (act !== 'linear' && act !== 'relu') {
    throw new ValueError(`${op}: activation must be 'linear' or 'relu', got ${describeValue(act)}`);
  }
  return wrap(native.dense(h(x, op, 'x'), h(kernel, op, 'kernel'), hOpt(o.bias, op, 'bias'), { activation: act }));
}

export function denseGrad(dy: Tensor, x: Tensor, kernel: Tensor): { dx: Tensor; dw: Tensor; db: Tensor } {
  const op = 'denseGrad';
  const g = native.denseGrad(h(dy, op, 'dy'), h(x, op, 'x'), h(kernel, op, 'kernel'), { withBias: true });
  return { dx: wrap(g.dx), dw: wrap(g.dw), db: wrap(g.db as NativeHandle) };
}

// ---- pooling ----

export function maxPool2d(x: Tensor, opts?: Pool2dOptions): Tensor {
  const op = 'maxPool2d';
  return wrap(native.maxPool2d(h(x, op, 'x'), poolArgs(options(opts, op, POOL_KEYS), op)));
}

export function maxPool2dGrad(dy: Tensor, x: Tensor, opts?: Pool2dOptions): Tensor {
  const op = 'maxPool2dGrad';
  return wrap(native.maxPool2dGrad(h(dy, op, 'dy'), h(x, op, 'x'), poolArgs(options(opts, op, POOL_KEYS), op)));
}

export function avgPool2d(x: Tensor, opts?: Pool2dOptions): Tensor {
  const op = 'avgPool2d';
  return wrap(native.avgPool2d(h(x, op, 'x'), poolArgs(options(opts, op, POOL_KEYS), op)));
}

export function avgPool2dGrad(dy: Tensor, x: Tensor, opts?: Pool2dOptions): Tensor {
  const op = 'avgPool2dGrad';
  return wrap(native.avgPool2dGrad(h(dy, op, 'dy'), h(x, op, 'x'), poolArgs(options(opts, op, POOL_KEYS), op)));
}

function lpArgs(o: LpPool2dOptions, op: string): ReturnType<typeof poolArgs> & { p: number } {
  return { ...poolArgs(o, op), p: finite(o.p, 2, op, 'p', 1, 1e6) };
}

/** Lp pooling: (mean over the window's real cells of |x|^p)^(1/p); p = 2 (default): sqrt(mean x^2). */
export function lpPool2d(x: Tensor, opts?: LpPool2dOptions): Tensor {
  const op = 'lpPool2d';
  return wrap(native.lpPool2d(h(x, op, 'x'), lpArgs(options(opts, op, [...POOL_KEYS, 'p']), op)));
}

export function lpPool2dGrad(dy: Tensor, x: Tensor, opts?: LpPool2dOptions): Tensor {
  const op = 'lpPool2dGrad';
  return wrap(native.lpPool2dGrad(h(dy, op, 'dy'), h(x, op, 'x'), lpArgs(options(opts, op, [...POOL_KEYS, 'p']), op)));
}

/** { top, bottom, left, right } from Keras's forms of ZeroPadding2D's padding. */
function zeroPaddingArgs(v: unknown, op: string): { top: number; bottom: number; left: number; right: number } {
  const [top, bottom, left, right] = zeroPaddingSides(v, op);
  return { top, bottom, left, right };
}

function zeroPaddingSides(v: unknown, op: string): [number, number, number, number] {
  const ok = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 0 && (n as number) < 2 ** 24;
  const bad = (): never => {
    throw new ValueError(`${op}: padding must be a non-negative integer, [rows, cols] or [[top, bottom], [left, right]], got ${describeValue(v)}`);
  };
  if (v === undefined) return [1, 1, 1, 1];
  if (ok(v)) return [v, v, v, v];
  if (!Array.isArray(v) || v.length !== 2) return bad();
  if (ok(v[0]) && ok(v[1])) return [v[0], v[0], v[1], v[1]];
  const [r, c] = v as unknown[];
  if (Array.isArray(r) && Array.isArray(c) && r.length === 2 && c.length === 2 && [...r, ...c].every(ok)) {
    return [r[0], r[1], c[0], c[1]];
  }
  return bad();
}

/** Zero rows and columns around each image: [N,H,W,C] -> [N, H+top+bottom, W+left+right, C]. */
export function zeroPadding2d(x: Tensor, opts?: { padding?: ZeroPadding }): Tensor {
  const op = 'zeroPadding2d';
  return wrap(native.zeroPadding2d(h(x, op, 'x'), zeroPaddingArgs(options(opts, op, ['padding']).padding, op)));
}

export function zeroPadding2dGrad(dy: Tensor, x: Tensor, opts?: { padding?: ZeroPadding }): Tensor {
  const op = 'zeroPadding2dGrad';
  return wrap(native.zeroPadding2dGrad(h(dy, op, 'dy'), h(x, op, 'x'), zeroPaddingArgs(options(opts, op, ['padding']).padding, op)));
}

function upArgs(o: UpSampling2dOptions, op: string): { size: [number, number]; interpolation: string; halfPixelCenters: boolean } {
  const size = pair(o.size, 2, op, 'size');
  const interpolation = o.interpolation === undefined ? 'nearest' : o.interpolation;
  if (interpolation !== 'nearest' && interpolation !== 'bilinear') {
    throw new ValueError(`${op}: interpolation must be 'nearest' or 'bilinear', got ${describeValue(interpolation)}`);
  }
  return { size, interpolation, halfPixelCenters: bool(o.halfPixelCenters, true, op, 'halfPixelCenters') };
}

/** Up-sampling by integer factors (Keras UpSampling2D): [N,H,W,C] -> [N, H*size[0], W*size[1], C]. */
export function upSampling2d(x: Tensor, opts?: UpSampling2dOptions): Tensor {
  const op = 'upSampling2d';
  return wrap(native.upSampling2d(h(x, op, 'x'), upArgs(options(opts, op, UP_KEYS), op)));
}

export function upSampling2dGrad(dy: Tensor, x: Tensor, opts?: UpSampling2dOptions): Tensor {
  const op = 'upSampling2dGrad';
  return wrap(native.upSampling2dGrad(h(dy, op, 'dy'), h(x, op, 'x'), upArgs(options(opts, op, UP_KEYS), op)));
}

/** [N,H,W,C] -> [N,C] */
export const globalAvgPool = (x: Tensor): Tensor => wrap(native.globalAvgPool(h(x, 'globalAvgPool', 'x')));
export const globalAvgPoolGrad = (dy: Tensor, x: Tensor): Tensor =>
  wrap(native.globalAvgPoolGrad(h(dy, 'globalAvgPoolGrad', 'dy'), h(x, 'globalAvgPoolGrad', 'x')));
export const globalMaxPool = (x: Tensor): Tensor => wrap(native.globalMaxPool(h(x, 'globalMaxPool', 'x')));
export const globalMaxPoolGrad = (dy: Tensor, x: Tensor): Tensor =>
  wrap(native.globalMaxPoolGrad(h(dy, 'globalMaxPoolGrad', 'dy'), h(x, 'globalMaxPoolGrad', 'x')));

// ---- activations: forward from x, gradient from the OUTPUT y (relu, sigmoid, tanh, leakyRelu, elu) ----

function act(name: ActivationName, alpha: number) {
  return {
    fwd: (x: Tensor): Tensor => wrap(native.activation(h(x, name, 'x'), { activation: name, alpha })),
    grad: (dy: Tensor, y: Tensor): Tensor =>
      wrap(native.activationGrad(h(dy, `${name}Grad`, 'dy'), h(y, `${name}Grad`, 'y'), { activation: name, alpha })),
  };
}

export const relu = (x: Tensor): Tensor => act('relu', 0).fwd(x);
export const reluGrad = (dy: Tensor, y: Tensor): Tensor => act('relu', 0).grad(dy, y);
export const sigmoid = (x: Tensor): Tensor => act('sigmoid', 0).fwd(x);
export const sigmoidGrad = (dy: Tensor, y: Tensor): Tensor => act('sigmoid', 0).grad(dy, y);
export const tanh = (x: Tensor): Tensor => act('tanh', 0).fwd(x);
export const tanhGrad = (dy: Tensor, y: Tensor): Tensor => act('tanh', 0).grad(dy, y);

/** tfjs's default slope is 0.2. */
export function leakyRelu(x: Tensor, opts?: { alpha?: number }): Tensor {
  return act('leakyRelu', finite(options(opts, 'leakyRelu', ['alpha']).alpha, 0.2, 'leakyRelu', 'alpha', 0)).fwd(x);
}
export function leakyReluGrad(dy: Tensor, y: Tensor, opts?: { alpha?: number }): Tensor {
  return act('leakyRelu', finite(options(opts, 'leakyReluGrad', ['alpha']).alpha, 0.2, 'leakyReluGrad', 'alpha', 0)).grad(dy, y);
}
export function elu(x: Tensor, opts?: { alpha?: number }): Tensor {
  return act('elu', finite(options(opts, 'elu', ['alpha']).alpha, 1, 'elu', 'alpha')).fwd(x);
}
export function eluGrad(dy: Tensor, y: Tensor, opts?: { alpha?: number }): Tensor {
  return act('elu', finite(options(opts, 'eluGrad', ['alpha']).alpha, 1, 'eluGrad', 'alpha')).grad(dy, y);
}

// ---- activations whose gradient reads the INPUT x: gelu, swish and mish are not monotonic, so
// their output does not determine x (the others here follow them, so the newer ones share one rule) ----

export type ActivationFromInputName = 'gelu' | 'geluTanh' | 'swish' | 'hardSwish' | 'hardSigmoid' | 'softplus' | 'selu' | 'mish';

function actX(name: ActivationFromInputName, op: string) {
  return {
    fwd: (x: Tensor): Tensor => wrap(native.activation(h(x, op, 'x'), { activation: name, alpha: 0 })),
    grad: (dy: Tensor, x: Tensor): Tensor =>
      wrap(native.activationGrad(h(dy, `${op}Grad`, 'dy'), h(x, `${op}Grad`, 'x'), { activation: name, alpha: 0 })),
  };
}

/** x * Phi(x) (Phi the standard normal CDF); `approximate: true` takes the tanh form (Keras's `approximate`). */
export function gelu(x: Tensor, opts?: { approximate?: boolean }): Tensor {
  return actX(bool(options(opts, 'gelu', ['approximate']).approximate, false, 'gelu', 'approximate') ? 'geluTanh' : 'gelu', 'gelu').fwd(x);
}
export function geluGrad(dy: Tensor, x: Tensor, opts?: { approximate?: boolean }): Tensor {
  const approximate = bool(options(opts, 'geluGrad', ['approximate']).approximate, false, 'geluGrad', 'approximate');
  return actX(approximate ? 'geluTanh' : 'gelu', 'gelu').grad(dy, x);
}
/** x * sigmoid(x) (SiLU). */
export const swish = (x: Tensor): Tensor => actX('swish', 'swish').fwd(x);
export const swishGrad = (dy: Tensor, x: Tensor): Tensor => actX('swish', 'swish').grad(dy, x);
/** x * hardSigmoid(x). */
export const hardSwish = (x: Tensor): Tensor => actX('hardSwish', 'hardSwish').fwd(x);
export const hardSwishGrad = (dy: Tensor, x: Tensor): Tensor => actX('hardSwish', 'hardSwish').grad(dy, x);
/** relu6(x + 3) / 6, as Keras 3 (tfjs and Keras 2 used clip(0.2x + 0.5, 0, 1)). */
export const hardSigmoid = (x: Tensor): Tensor => actX('hardSigmoid', 'hardSigmoid').fwd(x);
export const hardSigmoidGrad = (dy: Tensor, x: Tensor): Tensor => actX('hardSigmoid', 'hardSigmoid').grad(dy, x);
/** log(1 + e^x). */
export const softplus = (x: Tensor): Tensor => actX('softplus', 'softplus').fwd(x);
export const softplusGrad = (dy: Tensor, x: Tensor): Tensor => actX('softplus', 'softplus').grad(dy, x);
/** scale * elu(x, alpha) with SELU's fixed scale and alpha. */
export const selu = (x: Tensor): Tensor => actX('selu', 'selu').fwd(x);
export const seluGrad = (dy: Tensor, x: Tensor): Tensor => actX('selu', 'selu').grad(dy, x);
/** x * tanh(softplus(x)). */
export const mish = (x: Tensor): Tensor => actX('mish', 'mish').fwd(x);
export const mishGrad = (dy: Tensor, x: Tensor): Tensor => actX('mish', 'mish').grad(dy, x);

/** Softmax over the last axis. */
export const softmax = (x: Tensor): Tensor => wrap(native.softmax(h(x, 'softmax', 'x')));
export const softmaxGrad = (dy: Tensor, y: Tensor): Tensor =>
  wrap(native.softmaxGrad(h(dy, 'softmaxGrad', 'dy'), h(y, 'softmaxGrad', 'y')));

// ---- dropout ----

/** Inverted dropout with a seeded mask: { y, mask }; its gradient is dropoutGrad(dy, mask). */
export function dropout(x: Tensor, opts: { rate: number; seed?: number }): { y: Tensor; mask: Tensor } {
  const op = 'dropout';
  const o = options(opts, op, ['rate', 'seed']);
  const rate = finite(o.rate, NaN, op, 'rate', 0, 0.999999);
  if (Number.isNaN(rate)) throw new ValueError(`${op}: rate is required`);
  const seed = o.seed === undefined ? Math.floor(Math.random() * 2 ** 32) : o.seed;
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new ValueError(`${op}: seed must be a non-negative integer, got ${describeValue(seed)}`);
  }
  const r = native.dropout(h(x, op, 'x'), { rate, seed });
  return { y: wrap(r.y), mask: wrap(r.mask) };
}

/** dy * mask (the mask dropout returned). Checks the shapes here: the kernel is mul's, whose errors name mul. */
export function dropoutGrad(dy: Tensor, mask: Tensor): Tensor {
  const op = 'dropoutGrad';
  const d = checkTensor(dy, op, 'dy');
  const m = checkTensor(mask, op, 'mask');
  if (d.shape.length !== m.shape.length || d.shape.some((n, i) => n !== m.shape[i])) {
    throw new ShapeError(`${op}: dy [${d.shape}] and mask [${m.shape}] must have the same shape`);
  }
  return wrap(native.mul(d.handle, m.handle));
}

/**
 * a * b elementwise: equal shapes, or an image [N, ..., C] and a gate [N, 1, ..., 1, C] (either
 * order) broadcast over the axes between, as a squeeze-and-excitation block multiplies.
 */
export const mul = (a: Tensor, b: Tensor): Tensor => wrap(native.mul(h(a, 'mul', 'a'), h(b, 'mul', 'b')));

/** The gradients of mul(a, b) given dy: { da, db } (a gate's sums dy * image over the broadcast axes). */
export function mulGrad(dy: Tensor, a: Tensor, b: Tensor): { da: Tensor; db: Tensor } {
  const op = 'mulGrad';
  const r = native.mulGrad(h(dy, op, 'dy'), h(a, op, 'a'), h(b, op, 'b'));
  return { da: wrap(r.da), db: wrap(r.db) };
}

// ---- merges (the functional API's add / concatenate layers) ----

/** a + b elementwise (same shapes; its gradient is dy for both). */
export const add = (a: Tensor, b: Tensor): Tensor => wrap(native.add(h(a, 'add', 'a'), h(b, 'add', 'b')));

function tensorList(v: unknown, op: string): NativeHandle[] {
  if (!Array.isArray(v)) throw new DTypeError(`${op}: tensors must be an array of Tensors, got ${describeValue(v)}`);
  if (v.length === 0) throw new ValueError(`${op}: needs at least one tensor`);
  return v.map((t, i) => h(t, op, `tensors[${i}]`));
}

function lastAxis(axis: unknown, rank: number, op: string): void {
  if (axis === undefined || axis === -1 || axis === rank - 1) return;
  throw new ValueError(`${op}: only the last axis (-1 or ${rank - 1}) is supported, got ${describeValue(axis)}`);
}

/** Concatenation along the last axis; the other dimensions must match. */
export function concatenate(tensors: Tensor[], opts?: { axis?: number }): Tensor {
  const op = 'concatenate';
  const hs = tensorList(tensors, op);
  lastAxis(options(opts, op, ['axis']).axis, tensors[0].shape.length, op);
  return wrap(native.concatenate(hs));
}

/** The gradient of concatenate: dy split into one tensor per input (shaped like it). */
export function concatenateGrad(dy: Tensor, tensors: Tensor[], opts?: { axis?: number }): Tensor[] {
  const op = 'concatenateGrad';
  const hs = tensorList(tensors, op);
  lastAxis(options(opts, op, ['axis']).axis, tensors[0].shape.length, op);
  return native.concatenateGrad(h(dy, op, 'dy'), hs).map(wrap);
}

// ---- batch normalization over the last axis ----

export interface BatchNormOptions {
  gamma?: Tensor;
  beta?: Tensor;
  epsilon?: number;
}

/** Inference: (x - mean) / sqrt(variance + epsilon) * gamma + beta. */
export function batchNorm(x: Tensor, opts: BatchNormOptions & { mean: Tensor; variance: Tensor }): Tensor {
  const op = 'batchNorm';
  const o = options(opts, op, ['mean', 'variance', 'gamma', 'beta', 'epsilon']);
  return wrap(native.batchNormInfer(h(x, op, 'x'), hOpt(o.gamma, op, 'gamma'), hOpt(o.beta, op, 'beta'),
    h(o.mean, op, 'mean'), h(o.variance, op, 'variance'), { epsilon: finite(o.epsilon, 1e-3, op, 'epsilon', 0) }));
}

/**
 * Training: normalizes with the batch statistics and updates movingMean / movingVariance in place
 * (Keras: moving = moving * momentum + batch * (1 - momentum)). Returns what the gradient needs.
 */
export function batchNormTrain(x: Tensor, opts?: BatchNormOptions & {
  movingMean?: Tensor; movingVariance?: Tensor; momentum?: number;
}): { y: Tensor; mean: Tensor; invstd: Tensor } {
  const op = 'batchNormTrain';
  const o = options(opts, op, ['gamma', 'beta', 'epsilon', 'movingMean', 'movingVariance', 'momentum']);
  const r = native.batchNormTrain(h(x, op, 'x'), hOpt(o.gamma, op, 'gamma'), hOpt(o.beta, op, 'beta'),
    hOpt(o.movingMean, op, 'movingMean'), hOpt(o.movingVariance, op, 'movingVariance'),
    { epsilon: finite(o.epsilon, 1e-3, op, 'epsilon', 0), momentum: finite(o.momentum, 0.99, op, 'momentum', 0, 1) });
  return { y: wrap(r.y), mean: wrap(r.mean), invstd: wrap(r.invstd) };
}

export function batchNormGrad(dy: Tensor, x: Tensor, opts: { mean: Tensor; invstd: Tensor; gamma?: Tensor }):
  { dx: Tensor; dgamma: Tensor; dbeta: Tensor } {
  const op = 'batchNormGrad';
  const o = options(opts, op, ['mean', 'invstd', 'gamma']);
  const g = native.batchNormGrad(h(dy, op, 'dy'), h(x, op, 'x'), h(o.mean, op, 'mean'),
    h(o.invstd, op, 'invstd'), hOpt(o.gamma, op, 'gamma'));
  return { dx: wrap(g.dx), dgamma: wrap(g.dgamma), dbeta: wrap(g.dbeta) };
}

// ---- losses: per-example loss and the gradient of their mean ----

export interface LossOutput {
  /** One loss per example (row); the batch loss is their mean. */
  loss: Tensor;
  /** Gradient of the mean loss with respect to the input. */
  grad: Tensor;
}

/** Softmax cross-entropy from logits; labels one-hot [N,C] or, with sparse, class ids [N]. */
export function softmaxCrossEntropy(logits: Tensor, labels: Tensor, opts?: { sparse?: boolean }): LossOutput {
  const op = 'softmaxCrossEntropy';
  const r = native.softmaxCrossEntropy(h(logits, op, 'logits'), h(labels, op, 'labels'),
    { sparse: bool(options(opts, op, ['sparse']).sparse, false, op, 'sparse') });
  return { loss: wrap(r.loss), grad: wrap(r.grad) };
}

export function binaryCrossEntropy(input: Tensor, target: Tensor, opts?: { fromLogits?: boolean }): LossOutput {
  const op = 'binaryCrossEntropy';
  const r = native.binaryCrossEntropy(h(input, op, 'input'), h(target, op, 'target'),
    { fromLogits: bool(options(opts, op, ['fromLogits']).fromLogits, false, op, 'fromLogits') });
  return { loss: wrap(r.loss), grad: wrap(r.grad) };
}

export function meanSquaredError(prediction: Tensor, target: Tensor): LossOutput {
  const op = 'meanSquaredError';
  const r = native.meanSquaredError(h(prediction, op, 'prediction'), h(target, op, 'target'));
  return { loss: wrap(r.loss), grad: wrap(r.grad) };
}

// ---- optimizer updates, in place (Keras formulas and defaults) ----

export function sgdUpdate(w: Tensor, g: Tensor, opts?: {
  learningRate?: number; momentum?: number; nesterov?: boolean; velocity?: Tensor;
}): void {
  const op = 'sgdUpdate';
  const o = options(opts, op, ['learningRate', 'momentum', 'nesterov', 'velocity']);
  native.sgdUpdate(h(w, op, 'weights'), h(g, op, 'gradient'), hOpt(o.velocity, op, 'velocity'),
    {
      learningRate: finite(o.learningRate, 0.01, op, 'learningRate', 0),
      momentum: finite(o.momentum, 0, op, 'momentum', 0, 1),
      nesterov: bool(o.nesterov, false, op, 'nesterov'),
    });
}

export function adamUpdate(w: Tensor, g: Tensor, opts: {
  m: Tensor; v: Tensor; step: number; learningRate?: number; beta1?: number; beta2?: number;
  epsilon?: number; weightDecay?: number;
}): void {
  const op = 'adamUpdate';
  const o = options(opts, op, ['m', 'v', 'step', 'learningRate', 'beta1', 'beta2', 'epsilon', 'weightDecay']);
  if (!Number.isInteger(o.step) || o.step < 1) throw new ValueError(`${op}: step must be an integer >= 1, got ${describeValue(o.step)}`);
  native.adamUpdate(h(w, op, 'weights'), h(g, op, 'gradient'), h(o.m, op, 'm'), h(o.v, op, 'v'),
    {
      learningRate: finite(o.learningRate, 0.001, op, 'learningRate', 0),
      // beta 1 would divide by 1 - beta^step = 0 (NaN weights); ck.optimizers.adam refuses it too
      beta1: finite(o.beta1, 0.9, op, 'beta1', 0, 1, true),
      beta2: finite(o.beta2, 0.999, op, 'beta2', 0, 1, true),
      epsilon: finite(o.epsilon, 1e-7, op, 'epsilon', 0),
      weightDecay: finite(o.weightDecay, 0, op, 'weightDecay', 0),
      step: o.step,
    });
}

export function rmspropUpdate(w: Tensor, g: Tensor, opts: {
  ms: Tensor; momentumBuffer?: Tensor; mg?: Tensor; learningRate?: number; rho?: number;
  momentum?: number; epsilon?: number; centered?: boolean;
}): void {
  const op = 'rmspropUpdate';
  const o = options(opts, op, ['ms', 'momentumBuffer', 'mg', 'learningRate', 'rho', 'momentum', 'epsilon', 'centered']);
  native.rmspropUpdate(h(w, op, 'weights'), h(g, op, 'gradient'), h(o.ms, op, 'ms'),
    hOpt(o.momentumBuffer, op, 'momentumBuffer'), hOpt(o.mg, op, 'mg'),
    {
      learningRate: finite(o.learningRate, 0.001, op, 'learningRate', 0),
      rho: finite(o.rho, 0.9, op, 'rho', 0, 1),
      momentum: finite(o.momentum, 0, op, 'momentum', 0, 1),
      epsilon: finite(o.epsilon, 1e-7, op, 'epsilon', 0),
      centered: bool(o.centered, false, op, 'centered'),
    });
}

// ---- image augmentation (Keras's random preprocessing layers' kernels) ----

export interface ImageTransformOptions {
  /** 'bilinear' (default) or 'nearest'. */
  interpolation?: 'bilinear' | 'nearest';
  /** How points outside the image read: 'constant' (default, as Keras's op), 'reflect', 'wrap', 'nearest'. */
  fillMode?: 'constant' | 'reflect' | 'wrap' | 'nearest';
  /** The value of fillMode 'constant' (default 0). */
  fillValue?: number;
}
const TRANSFORM_KEYS = ['interpolation', 'fillMode', 'fillValue'] as const;

function samplingArgs(opts: ImageTransformOptions | undefined, op: string): { interpolation: string; fillMode: string; fillValue: number } {
  const o = options(opts, op, TRANSFORM_KEYS);
  const oneOf = (v: unknown, def: string, allowed: readonly string[], name: string): string => {
    if (v === undefined) return def;
    if (typeof v !== 'string' || !allowed.includes(v)) {
      throw new ValueError(`${op}: ${name} must be ${allowed.map((a) => `'${a}'`).join(', ')}, got ${describeValue(v)}`);
    }
    return v;
  };
  return {
    interpolation: oneOf(o.interpolation, 'bilinear', ['bilinear', 'nearest'], 'interpolation'),
    fillMode: oneOf(o.fillMode, 'constant', ['constant', 'reflect', 'wrap', 'nearest'], 'fillMode'),
    fillValue: finite(o.fillValue, 0, op, 'fillValue'),
  };
}

/**
 * Keras's ops.image.affine_transform: images [N,H,W,C], transforms [N, 8], each
 * [a0, a1, a2, b0, b1, b2, c0, c1]: output pixel (x, y) reads the input at
 * ((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k), k = c0 x + c1 y + 1.
 */
export function imageTransform(images: Tensor, transforms: Tensor, opts?: ImageTransformOptions): Tensor {
  const op = 'imageTransform';
  return wrap(native.imageTransform(h(images, op, 'images'), h(transforms, op, 'transforms'), samplingArgs(opts, op)));
}

/** The gradient of imageTransform wrt its images, given dy [N,H,W,C]. */
export function imageTransformGrad(dy: Tensor, transforms: Tensor, opts?: ImageTransformOptions): Tensor {
  const op = 'imageTransformGrad';
  return wrap(native.imageTransformGrad(h(dy, op, 'dy'), h(transforms, op, 'transforms'), samplingArgs(opts, op)));
}

export interface ValueRangeOptions {
  /** The range outputs are clipped to (default [0, 255], as Keras). */
  valueRange?: [number, number];
}

function rangeArgs(opts: ValueRangeOptions | undefined, op: string): { valueLow: number; valueHigh: number } {
  const r: unknown = options(opts, op, ['valueRange']).valueRange;
  if (r === undefined) return { valueLow: 0, valueHigh: 255 };
  if (!Array.isArray(r) || r.length !== 2 || !r.every((v) => typeof v === 'number' && Number.isFinite(v)) || !(r[0] < r[1])) {
    throw new ValueError(`${op}: valueRange must be [low, high], finite numbers with low < high, got ${describeValue(r)}`);
  }
  return { valueLow: r[0], valueHigh: r[1] };
}

/** Keras's RandomContrast with given factors [N]: clip((x - mean) * factor + mean) per image and channel. */
export function imageContrast(images: Tensor, factors: Tensor, opts?: ValueRangeOptions): Tensor {
  const op = 'imageContrast';
  return wrap(native.imageContrast(h(images, op, 'images'), h(factors, op, 'factors'), rangeArgs(opts, op)));
}

export function imageContrastGrad(dy: Tensor, images: Tensor, factors: Tensor, opts?: ValueRangeOptions): Tensor {
  const op = 'imageContrastGrad';
  return wrap(native.imageContrastGrad(h(dy, op, 'dy'), h(images, op, 'images'), h(factors, op, 'factors'), rangeArgs(opts, op)));
}

/** Keras's RandomBrightness with given offsets [N]: clip(x + delta) per image. */
export function imageBrightness(images: Tensor, deltas: Tensor, opts?: ValueRangeOptions): Tensor {
  const op = 'imageBrightness';
  return wrap(native.imageBrightness(h(images, op, 'images'), h(deltas, op, 'deltas'), rangeArgs(opts, op)));
}

export function imageBrightnessGrad(dy: Tensor, images: Tensor, deltas: Tensor, opts?: ValueRangeOptions): Tensor {
  const op = 'imageBrightnessGrad';
  return wrap(native.imageBrightnessGrad(h(dy, op, 'dy'), h(images, op, 'images'), h(deltas, op, 'deltas'), rangeArgs(opts, op)));
}
