// Plain-JS reference implementations of convkit's ops, written from the documented semantics
// (docs/design.md "Layouts and numerics", native/core/kernels.h, Keras's formulas) with straightforward loops and float64
// accumulation. Nothing here imports convkit's ops or models, which the tests compare against it:
// only its seeded generator (lib/rng.ts), for test data.
import { mulberry32 } from '../lib/rng';

// Global lookups (Math.*, Number.*) inside jest's vm context go through a slow interceptor on
// every access: hot loops use these module-level aliases instead.
const { PI, abs, ceil, cos, cosh, exp, expm1, floor, fround, log, log1p, max, min, sqrt, tanh } = Math;
const isNaNNum = Number.isNaN;
const isFiniteNum = Number.isFinite;

// ---------------------------------------------------------------------------------------------
// Seeded random numbers
// ---------------------------------------------------------------------------------------------

/** A small seeded RNG (mulberry32) with helpers for test data. */
export class Rng {
  /** Uniform in [0, 1). */
  readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  uniform(lo = 0, hi = 1): number {
    return lo + (hi - lo) * this.next();
  }
  /** Integer in [lo, hi] inclusive. */
  int(lo: number, hi: number): number {
    return lo + floor(this.next() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[floor(this.next() * items.length)];
  }
  normal(): number {
    const u = max(this.next(), 1e-12);
    return sqrt(-2 * log(u)) * cos(2 * PI * this.next());
  }
  /** n uniform float32 values in [lo, hi). */
  array(n: number, lo = -1, hi = 1): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = this.uniform(lo, hi);
    return a;
  }
  /** n values whose magnitude is at least `gap` away from 0 (for kinks at 0: relu, |x|). */
  arrayAwayFromZero(n: number, gap: number, hi = 2): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = (this.next() < 0.5 ? -1 : 1) * this.uniform(gap, hi);
    return a;
  }
  /**
   * n distinct values, pairwise at least `spacing` apart (a shuffled ramp): for max pooling,
   * where ties would make the gradient ambiguous and finite differences would cross a switch.
   */
  distinct(n: number, spacing = 0.01): Float32Array {
    const idx = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = floor(this.next() * (i + 1));
      [idx[i], idx[j]] = [idx[j], idx[i]];
    }
    const a = new Float32Array(n);
    const offset = -(n * spacing) / 2;
    for (let i = 0; i < n; i++) a[i] = offset + idx[i] * spacing;
    return a;
  }
  /** n indices in [0, size), without repeats when n <= size. */
  sample(size: number, n: number): number[] {
    if (n >= size) return Array.from({ length: size }, (_, i) => i);
    const chosen = new Set<number>();
    while (chosen.size < n) chosen.add(floor(this.next() * size));
    return [...chosen].sort((a, b) => a - b);
  }
}

// ---------------------------------------------------------------------------------------------
// Comparisons
// ---------------------------------------------------------------------------------------------

export interface CloseOptions {
  rtol?: number;
  atol?: number;
  /** Names the compared quantity in the failure message. */
  name?: string;
  /** The shape, to print multi-dimensional indices of mismatches. */
  shape?: readonly number[];
}

function unravel(i: number, shape?: readonly number[]): string {
  if (!shape || shape.length === 0) return `[${i}]`;
  const idx: number[] = [];
  let r = i;
  for (let d = shape.length - 1; d >= 0; d--) {
    idx.unshift(r % shape[d]);
    r = floor(r / shape[d]);
  }
  return `[${idx.join(',')}]`;
}

function toF64(a: ArrayLike<number>): Float64Array {
  if (a instanceof Float64Array) return a;
  return ArrayBuffer.isView(a) ? new Float64Array(a as unknown as ArrayLike<number>) : Float64Array.from(a as ArrayLike<number>);
}

/**
 * Compares elementwise: |a - e| <= atol + rtol * |e|, NaN only where expected is NaN, infinities
 * must match exactly. Returns null when close, else a message with the worst mismatches.
 */
export function allclose(actualIn: ArrayLike<number>, expectedIn: ArrayLike<number>, opts: CloseOptions = {}): string | null {
  // Monomorphic float64 copies: element access on mixed array kinds is slow in a hot loop.
  const actual = toF64(actualIn);
  const expected = toF64(expectedIn);
  const rtol = opts.rtol ?? 1e-5;
  const atol = opts.atol ?? 1e-6;
  const name = opts.name ?? 'values';
  if (actual.length !== expected.length) {
    return `${name}: length ${actual.length} != expected length ${expected.length}`;
  }
  const bad: { i: number; a: number; e: number; err: number }[] = [];
  let maxErr = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    let ok: boolean;
    let err: number;
    if (isNaNNum(e)) {
      ok = isNaNNum(a);
      err = ok ? 0 : Infinity;
    } else if (!isFiniteNum(e)) {
      ok = a === e;
      err = ok ? 0 : Infinity;
    } else if (!isFiniteNum(a)) {
      ok = false;
      err = Infinity;
    } else {
      err = abs(a - e);
      ok = err <= atol + rtol * abs(e);
    }
    if (err > maxErr) maxErr = err;
    if (!ok) bad.push({ i, a, e, err });
  }
  if (bad.length === 0) return null;
  bad.sort((x, y) => y.err - x.err);
  const lines = bad
    .slice(0, 6)
    .map((b) => `  at ${unravel(b.i, opts.shape)}: got ${b.a}, expected ${b.e} (|diff| ${b.err.toPrecision(3)})`);
  return (
    `${name}: ${bad.length} of ${actual.length} elements differ (rtol ${rtol}, atol ${atol}, ` +
    `max |diff| ${maxErr.toPrecision(3)}${opts.shape ? `, shape [${opts.shape.join(',')}]` : ''})\n` +
    lines.join('\n')
  );
}

/** Throws (failing the test) with allclose's message when the values differ. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, opts: CloseOptions = {}): void {
  const msg = allclose(actual, expected, opts);
  if (msg !== null) throw new Error(msg);
}

/** Largest |x|, for scaling tolerances of sums. */
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = max(m, abs(a[i]));
  return m;
}

export const prod = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** sum(a * b) in float64. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

// ---------------------------------------------------------------------------------------------
// Finite differences
// ---------------------------------------------------------------------------------------------

export interface FiniteDiffOptions {
  /** Step (default 1e-2). Each side is rounded to float32 and the actual distance is used. */
  eps?: number;
  /** Which elements of the input to perturb (default: all). */
  indices?: number[];
}

/**
 * Central-difference estimate of d loss / d inputs[which][i] for each requested i. `loss` gets
 * fresh copies of all inputs for every evaluation (so native tensors wrapping them never alias)
 * and returns a scalar computed in float64 (e.g. dot(op(...).dataSync(), r)).
 */
export function finiteDiff(
  loss: (inputs: Float32Array[]) => number,
  inputs: Float32Array[],
  which: number,
  opts: FiniteDiffOptions = {},
): { indices: number[]; grad: Float64Array } {
  const eps = opts.eps ?? 1e-2;
  const base = inputs[which];
  const indices = opts.indices ?? Array.from({ length: base.length }, (_, i) => i);
  const grad = new Float64Array(indices.length);
  const evalAt = (i: number, v: number): number => {
    const copies = inputs.map((a) => Float32Array.from(a));
    copies[which][i] = v;
    return loss(copies);
  };
  indices.forEach((i, k) => {
    const x0 = base[i];
    const xp = fround(x0 + eps);
    const xm = fround(x0 - eps);
    grad[k] = (evalAt(i, xp) - evalAt(i, xm)) / (xp - xm);
  });
  return { indices, grad };
}

/** Picks analytic[indices] to compare with finiteDiff's estimates. */
export function gather(a: ArrayLike<number>, indices: number[]): Float64Array {
  return Float64Array.from(indices, (i) => a[i]);
}

// ---------------------------------------------------------------------------------------------
// Geometry (TensorFlow's 'valid' and 'same')
// ---------------------------------------------------------------------------------------------

export type Padding = 'valid' | 'same';

/** Output size and top/left padding along one axis. */
export function axisGeometry(inSize: number, k: number, stride: number, dilation: number, padding: Padding): { out: number; padBefore: number } {
  const kEff = (k - 1) * dilation + 1;
  if (padding === 'same') {
    const out = ceil(inSize / stride);
    const total = max((out - 1) * stride + kEff - inSize, 0);
    return { out, padBefore: floor(total / 2) };
  }
  return { out: inSize >= kEff ? floor((inSize - kEff) / stride) + 1 : 0, padBefore: 0 };
}

const pairOf = (v: number | [number, number] | undefined, def: number): [number, number] =>
  v === undefined ? [def, def] : typeof v === 'number' ? [v, v] : v;

// ---------------------------------------------------------------------------------------------
// Convolution (NHWC input, HWIO filter)
// ---------------------------------------------------------------------------------------------

export interface ConvSpec {
  xShape: [number, number, number, number]; // N,H,W,C
  wShape: [number, number, number, number]; // R,S,C,K
  strides?: number | [number, number];
  dilation?: number | [number, number];
  padding?: Padding;
}

export interface ConvGeometry {
  N: number; H: number; W: number; C: number; R: number; S: number; K: number;
  P: number; Q: number; sh: number; sw: number; dh: number; dw: number; padH: number; padW: number;
  yShape: [number, number, number, number];
}

export function convGeometry(spec: ConvSpec): ConvGeometry {
  const [N, H, W, C] = spec.xShape;
  const [R, S, C2, K] = spec.wShape;
  if (C2 !== C) throw new Error(`reference conv: channels ${C} vs ${C2}`);
  const [sh, sw] = pairOf(spec.strides, 1);
  const [dh, dw] = pairOf(spec.dilation, 1);
  const pad = spec.padding ?? 'valid';
  const gh = axisGeometry(H, R, sh, dh, pad);
  const gw = axisGeometry(W, S, sw, dw, pad);
  return { N, H, W, C, R, S, K, P: gh.out, Q: gw.out, sh, sw, dh, dw, padH: gh.padBefore, padW: gw.padBefore, yShape: [N, gh.out, gw.out, K] };
}

/** y[n,p,q,k] = act(sum_{r,s,c} x[n, p*sh - padH + r*dh, q*sw - padW + s*dw, c] * w[r,s,c,k] + b[k]) */
export function conv2d(x: ArrayLike<number>, w: ArrayLike<number>, spec: ConvSpec, bias?: ArrayLike<number>, relu = false): Float32Array {
  const g = convGeometry(spec);
  const { N, H, W, C, R, S, K, P, Q } = g;
  const y = new Float32Array(N * P * Q * K);
  const acc = new Float64Array(K);
  for (let n = 0; n < N; n++) {
    for (let p = 0; p < P; p++) {
      for (let q = 0; q < Q; q++) {
        for (let k = 0; k < K; k++) acc[k] = bias ? bias[k] : 0;
        for (let r = 0; r < R; r++) {
          const ih = p * g.sh - g.padH + r * g.dh;
          if (ih < 0 || ih >= H) continue;
          for (let s = 0; s < S; s++) {
            const iw = q * g.sw - g.padW + s * g.dw;
            if (iw < 0 || iw >= W) continue;
            for (let c = 0; c < C; c++) {
              const xv = x[((n * H + ih) * W + iw) * C + c];
              const wb = ((r * S + s) * C + c) * K;
              for (let k = 0; k < K; k++) acc[k] += xv * w[wb + k];
            }
          }
        }
        const yb = ((n * P + p) * Q + q) * K;
        for (let k = 0; k < K; k++) y[yb + k] = relu ? max(acc[k], 0) : acc[k];
      }
    }
  }
  return y;
}

/** Gradients of conv2d (no activation) by direct loops over the forward's index map. */
export function conv2dGrad(dy: ArrayLike<number>, x: ArrayLike<number>, w: ArrayLike<number>, spec: ConvSpec): { dx: Float32Array; dw: Float32Array; db: Float32Array } {
  const g = convGeometry(spec);
  const { N, H, W, C, R, S, K, P, Q } = g;
  const dx = new Float64Array(N * H * W * C);
  const dwAcc = new Float64Array(R * S * C * K);
  const db = new Float64Array(K);
  for (let n = 0; n < N; n++) {
    for (let p = 0; p < P; p++) {
      for (let q = 0; q < Q; q++) {
        const yb = ((n * P + p) * Q + q) * K;
        for (let k = 0; k < K; k++) db[k] += dy[yb + k];
        for (let r = 0; r < R; r++) {
          const ih = p * g.sh - g.padH + r * g.dh;
          if (ih < 0 || ih >= H) continue;
          for (let s = 0; s < S; s++) {
            const iw = q * g.sw - g.padW + s * g.dw;
            if (iw < 0 || iw >= W) continue;
            for (let c = 0; c < C; c++) {
              const xi = ((n * H + ih) * W + iw) * C + c;
              const wb = ((r * S + s) * C + c) * K;
              let sdx = 0;
              for (let k = 0; k < K; k++) {
                sdx += dy[yb + k] * w[wb + k];
                dwAcc[wb + k] += x[xi] * dy[yb + k];
              }
              dx[xi] += sdx;
            }
          }
        }
      }
    }
  }
  return { dx: Float32Array.from(dx), dw: Float32Array.from(dwAcc), db: Float32Array.from(db) };
}

// ---------------------------------------------------------------------------------------------
// Dense: x [M,K] times w [K,N]
// ---------------------------------------------------------------------------------------------

export function dense(x: ArrayLike<number>, w: ArrayLike<number>, M: number, K: number, N: number, bias?: ArrayLike<number>, relu = false): Float32Array {
  const y = new Float32Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = bias ? bias[n] : 0;
      for (let k = 0; k < K; k++) s += x[m * K + k] * w[k * N + n];
      y[m * N + n] = relu ? max(s, 0) : s;
    }
  }
  return y;
}

export function denseGrad(dy: ArrayLike<number>, x: ArrayLike<number>, w: ArrayLike<number>, M: number, K: number, N: number): { dx: Float32Array; dw: Float32Array; db: Float32Array } {
  const dx = new Float32Array(M * K);
  const dw = new Float32Array(K * N);
  const db = new Float32Array(N);
  for (let m = 0; m < M; m++) {
    for (let k = 0; k < K; k++) {
      let s = 0;
      for (let n = 0; n < N; n++) s += dy[m * N + n] * w[k * N + n];
      dx[m * K + k] = s;
    }
  }
  for (let k = 0; k < K; k++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let m = 0; m < M; m++) s += x[m * K + k] * dy[m * N + n];
      dw[k * N + n] = s;
    }
  }
  for (let n = 0; n < N; n++) {
    let s = 0;
    for (let m = 0; m < M; m++) s += dy[m * N + n];
    db[n] = s;
  }
  return { dx, dw, db };
}

// ---------------------------------------------------------------------------------------------
// Pooling (NHWC); max pads with -inf (padding cells never win), avg averages real cells only
// ---------------------------------------------------------------------------------------------

export interface PoolSpec {
  xShape: [number, number, number, number];
  poolSize?: number | [number, number];
  strides?: number | [number, number];
  padding?: Padding;
}

export interface PoolGeometry {
  N: number; H: number; W: number; C: number; R: number; S: number; P: number; Q: number;
  sh: number; sw: number; padH: number; padW: number; yShape: [number, number, number, number];
}

export function poolGeometry(spec: PoolSpec): PoolGeometry {
  const [N, H, W, C] = spec.xShape;
  const [R, S] = pairOf(spec.poolSize, 2);
  const [sh, sw] = spec.strides === undefined ? [R, S] : pairOf(spec.strides, 1);
  const pad = spec.padding ?? 'valid';
  const gh = axisGeometry(H, R, sh, 1, pad);
  const gw = axisGeometry(W, S, sw, 1, pad);
  return { N, H, W, C, R, S, P: gh.out, Q: gw.out, sh, sw, padH: gh.padBefore, padW: gw.padBefore, yShape: [N, gh.out, gw.out, C] };
}

/** Calls fn(yIndex, xIndices of the real cells of the window) for every output element. */
function forEachWindow(g: PoolGeometry, fn: (yi: number, cells: number[]) => void): void {
  const { N, H, W, C, R, S, P, Q } = g;
  for (let n = 0; n < N; n++) {
    for (let p = 0; p < P; p++) {
      for (let q = 0; q < Q; q++) {
        for (let c = 0; c < C; c++) {
          const cells: number[] = [];
          // The window's rows/cols clipped to the image (so huge windows stay cheap).
          const h0 = p * g.sh - g.padH;
          const w0 = q * g.sw - g.padW;
          for (let ih = max(h0, 0); ih < min(h0 + R, H); ih++) {
            for (let iw = max(w0, 0); iw < min(w0 + S, W); iw++) {
              cells.push(((n * H + ih) * W + iw) * C + c);
            }
          }
          fn(((n * P + p) * Q + q) * C + c, cells);
        }
      }
    }
  }
}

export function maxPool2d(x: ArrayLike<number>, spec: PoolSpec): Float32Array {
  const g = poolGeometry(spec);
  const y = new Float32Array(prod(g.yShape));
  forEachWindow(g, (yi, cells) => {
    let m = -Infinity;
    for (const i of cells) m = max(m, x[i]);
    y[yi] = m;
  });
  return y;
}

/** Routes each dy to its window's maximum (the first one in scan order on a tie). */
export function maxPool2dGrad(dy: ArrayLike<number>, x: ArrayLike<number>, spec: PoolSpec): Float32Array {
  const g = poolGeometry(spec);
  const dx = new Float64Array(prod(spec.xShape));
  forEachWindow(g, (yi, cells) => {
    let best = cells[0];
    for (const i of cells) if (x[i] > x[best]) best = i;
    dx[best] += dy[yi];
  });
  return Float32Array.from(dx);
}

export function avgPool2d(x: ArrayLike<number>, spec: PoolSpec): Float32Array {
  const g = poolGeometry(spec);
  const y = new Float32Array(prod(g.yShape));
  forEachWindow(g, (yi, cells) => {
    let s = 0;
    for (const i of cells) s += x[i];
    y[yi] = s / cells.length;
  });
  return y;
}

export function avgPool2dGrad(dy: ArrayLike<number>, spec: PoolSpec): Float32Array {
  const g = poolGeometry(spec);
  const dx = new Float64Array(prod(spec.xShape));
  forEachWindow(g, (yi, cells) => {
    for (const i of cells) dx[i] += dy[yi] / cells.length;
  });
  return Float32Array.from(dx);
}

/** [N,H,W,C] -> [N,C] */
export function globalAvgPool(x: ArrayLike<number>, N: number, HW: number, C: number): Float32Array {
  const y = new Float32Array(N * C);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let i = 0; i < HW; i++) s += x[(n * HW + i) * C + c];
      y[n * C + c] = s / HW;
    }
  }
  return y;
}

export function globalAvgPoolGrad(dy: ArrayLike<number>, N: number, HW: number, C: number): Float32Array {
  const dx = new Float32Array(N * HW * C);
  for (let n = 0; n < N; n++) for (let i = 0; i < HW; i++) for (let c = 0; c < C; c++) dx[(n * HW + i) * C + c] = dy[n * C + c] / HW;
  return dx;
}

export function globalMaxPool(x: ArrayLike<number>, N: number, HW: number, C: number): Float32Array {
  const y = new Float32Array(N * C);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      let m = -Infinity;
      for (let i = 0; i < HW; i++) m = max(m, x[(n * HW + i) * C + c]);
      y[n * C + c] = m;
    }
  }
  return y;
}

export function globalMaxPoolGrad(dy: ArrayLike<number>, x: ArrayLike<number>, N: number, HW: number, C: number): Float32Array {
  const dx = new Float32Array(N * HW * C);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      let best = 0;
      for (let i = 1; i < HW; i++) if (x[(n * HW + i) * C + c] > x[(n * HW + best) * C + c]) best = i;
      dx[(n * HW + best) * C + c] = dy[n * C + c];
    }
  }
  return dx;
}

// ---------------------------------------------------------------------------------------------
// Activations: forward from x, gradient from the output y
// ---------------------------------------------------------------------------------------------

export type ActName = FromYActName | FromXActName;
/** The activations whose gradient convkit takes from the output y. */
export type FromYActName = 'relu' | 'leakyRelu' | 'elu' | 'sigmoid' | 'tanh';
/** The activations whose gradient convkit takes from the input x. */
export type FromXActName = 'gelu' | 'geluTanh' | 'swish' | 'hardSwish' | 'hardSigmoid' | 'softplus' | 'selu' | 'mish';

/** erfc(z) in float64: 1 - erf's Maclaurin series below 2.5, Laplace's continued fraction above. */
export function erfc(z: number): number {
  if (z < 0) return 2 - erfc(-z);
  if (z < 2.5) {
    // erf(z) = 2/sqrt(pi) * sum_n (-1)^n z^(2n+1) / (n! (2n+1))
    let power = z;
    let sum = z;
    for (let n = 1; n < 200; n++) {
      power *= (-z * z) / n;
      const term = power / (2 * n + 1);
      sum += term;
      if (abs(term) < 1e-17 * abs(sum)) break;
    }
    return 1 - (2 / sqrt(PI)) * sum;
  }
  // erfc(z) = e^{-z^2} / sqrt(pi) / (z + (1/2) / (z + 1 / (z + (3/2) / (z + ...)))), from the tail.
  let f = z;
  for (let k = 80; k >= 1; k--) f = z + k / 2 / f;
  return exp(-z * z) / sqrt(PI) / f;
}

const SELU_ALPHA = 1.6732632423543772848170429916717;
const SELU_SCALE = 1.0507009873554804934193349852946;
const normalCdf = (x: number): number => 0.5 * erfc(-x / Math.SQRT2);
const normalPdf = (x: number): number => exp(-0.5 * x * x) / sqrt(2 * PI);
const sigmoid64 = (x: number): number => 1 / (1 + exp(-x));
const softplus64 = (x: number): number => max(x, 0) + log1p(exp(-abs(x)));
const hardSigmoid64 = (x: number): number => min(max(x + 3, 0), 6) / 6;
const GELU_K = sqrt(2 / PI);

export function activate(name: ActName, x: number, alpha = 0): number {
  switch (name) {
    case 'relu': return x > 0 ? x : 0;
    case 'leakyRelu': return x > 0 ? x : alpha * x;
    case 'elu': return x > 0 ? x : alpha * expm1(x);
    case 'sigmoid': return 1 / (1 + exp(-x));
    case 'tanh': return tanh(x);
    case 'gelu': return x * normalCdf(x);
    case 'geluTanh': return 0.5 * x * (1 + tanh(GELU_K * (x + 0.044715 * x * x * x)));
    case 'swish': return x * sigmoid64(x);
    case 'hardSwish': return x * hardSigmoid64(x);
    case 'hardSigmoid': return hardSigmoid64(x);
    case 'softplus': return softplus64(x);
    case 'selu': return SELU_SCALE * (x > 0 ? x : SELU_ALPHA * expm1(x));
    case 'mish': return x * tanh(softplus64(x));
  }
}

/** d act / dx at x, for the activations whose gradient convkit takes from x; at the hard ones'
 * corners (x = -3, 3) the flat side's slope, as relu6's gradient is 0 at 0 and 6. */
export function derivativeFromX(name: FromXActName, x: number): number {
  switch (name) {
    case 'gelu': return normalCdf(x) + x * normalPdf(x);
    case 'geluTanh': {
      const t = tanh(GELU_K * (x + 0.044715 * x * x * x));
      const sech2 = 1 / cosh(GELU_K * (x + 0.044715 * x * x * x)) ** 2;
      return 0.5 * (1 + t) + 0.5 * x * sech2 * GELU_K * (1 + 3 * 0.044715 * x * x);
    }
    case 'swish': return sigmoid64(x) * (1 + x * sigmoid64(-x));
    case 'hardSwish': return x <= -3 ? 0 : x >= 3 ? 1 : (2 * x + 3) / 6;
    case 'hardSigmoid': return x > -3 && x < 3 ? 1 / 6 : 0;
    case 'softplus': return sigmoid64(x);
    case 'selu': return x > 0 ? SELU_SCALE : SELU_SCALE * SELU_ALPHA * exp(x);
    case 'mish': return tanh(softplus64(x)) + (x * sigmoid64(x)) / cosh(softplus64(x)) ** 2;
  }
}

export function activationGradFromX(name: FromXActName, dy: ArrayLike<number>, x: ArrayLike<number>): Float32Array {
  const dx = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) dx[i] = dy[i] * derivativeFromX(name, x[i]);
  return dx;
}

/** d act / dx expressed through y = act(x). */
export function derivativeFromY(name: FromYActName, y: number, alpha = 0): number {
  switch (name) {
    case 'relu': return y > 0 ? 1 : 0;
    case 'leakyRelu': return y > 0 ? 1 : alpha;
    case 'elu': return y > 0 ? 1 : y + alpha;
    case 'sigmoid': return y * (1 - y);
    case 'tanh': return 1 - y * y;
  }
}

export function activation(name: ActName, x: ArrayLike<number>, alpha = 0): Float32Array {
  return Float32Array.from(x, (v) => activate(name, v, alpha));
}

export function activationGrad(name: FromYActName, dy: ArrayLike<number>, y: ArrayLike<number>, alpha = 0): Float32Array {
  const dx = new Float32Array(y.length);
  for (let i = 0; i < y.length; i++) dx[i] = dy[i] * derivativeFromY(name, y[i], alpha);
  return dx;
}

/** Softmax over the last axis of [rows, cols]. */
export function softmax(x: ArrayLike<number>, rows: number, cols: number): Float32Array {
  const y = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let c = 0; c < cols; c++) m = max(m, x[r * cols + c]);
    let s = 0;
    for (let c = 0; c < cols; c++) s += exp(x[r * cols + c] - m);
    for (let c = 0; c < cols; c++) y[r * cols + c] = exp(x[r * cols + c] - m) / s;
  }
  return y;
}

/** dx = y * (dy - sum(dy * y)) per row. */
export function softmaxGrad(dy: ArrayLike<number>, y: ArrayLike<number>, rows: number, cols: number): Float32Array {
  const dx = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let d = 0;
    for (let c = 0; c < cols; c++) d += dy[r * cols + c] * y[r * cols + c];
    for (let c = 0; c < cols; c++) dx[r * cols + c] = y[r * cols + c] * (dy[r * cols + c] - d);
  }
  return dx;
}

// ---------------------------------------------------------------------------------------------
// Batch normalization over the last axis of [rows, C]
// ---------------------------------------------------------------------------------------------

export function batchNormTrain(
  x: ArrayLike<number>, rows: number, C: number,
  opts: { gamma?: ArrayLike<number>; beta?: ArrayLike<number>; eps?: number; momentum?: number; movingMean?: ArrayLike<number>; movingVariance?: ArrayLike<number> } = {},
): { y: Float32Array; mean: Float32Array; variance: Float32Array; invstd: Float32Array; movingMean?: Float32Array; movingVariance?: Float32Array } {
  const eps = opts.eps ?? 1e-3;
  const momentum = opts.momentum ?? 0.99;
  const mean = new Float64Array(C);
  const variance = new Float64Array(C);
  for (let r = 0; r < rows; r++) for (let c = 0; c < C; c++) mean[c] += x[r * C + c];
  for (let c = 0; c < C; c++) mean[c] /= rows;
  for (let r = 0; r < rows; r++) for (let c = 0; c < C; c++) variance[c] += (x[r * C + c] - mean[c]) ** 2;
  for (let c = 0; c < C; c++) variance[c] /= rows; // biased, as Keras
  const invstd = Float64Array.from(variance, (v) => 1 / sqrt(v + eps));
  const y = new Float32Array(rows * C);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < C; c++) {
      const g = opts.gamma ? opts.gamma[c] : 1;
      const b = opts.beta ? opts.beta[c] : 0;
      y[r * C + c] = (x[r * C + c] - mean[c]) * invstd[c] * g + b;
    }
  }
  const out: ReturnType<typeof batchNormTrain> = {
    y, mean: Float32Array.from(mean), variance: Float32Array.from(variance), invstd: Float32Array.from(invstd),
  };
  if (opts.movingMean) out.movingMean = Float32Array.from(opts.movingMean, (m, c) => m * momentum + mean[c] * (1 - momentum));
  if (opts.movingVariance) out.movingVariance = Float32Array.from(opts.movingVariance, (v, c) => v * momentum + variance[c] * (1 - momentum));
  return out;
}

export function batchNormInfer(
  x: ArrayLike<number>, rows: number, C: number, mean: ArrayLike<number>, variance: ArrayLike<number>,
  opts: { gamma?: ArrayLike<number>; beta?: ArrayLike<number>; eps?: number } = {},
): Float32Array {
  const eps = opts.eps ?? 1e-3;
  const y = new Float32Array(rows * C);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < C; c++) {
      const g = opts.gamma ? opts.gamma[c] : 1;
      const b = opts.beta ? opts.beta[c] : 0;
      y[r * C + c] = ((x[r * C + c] - mean[c]) / sqrt(variance[c] + eps)) * g + b;
    }
  }
  return y;
}

/** Training-mode gradient (the batch statistics depend on x). */
export function batchNormGrad(
  dy: ArrayLike<number>, x: ArrayLike<number>, rows: number, C: number, mean: ArrayLike<number>, invstd: ArrayLike<number>, gamma?: ArrayLike<number>,
): { dx: Float32Array; dgamma: Float32Array; dbeta: Float32Array } {
  const dgamma = new Float64Array(C);
  const dbeta = new Float64Array(C);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < C; c++) {
      const xhat = (x[r * C + c] - mean[c]) * invstd[c];
      dbeta[c] += dy[r * C + c];
      dgamma[c] += dy[r * C + c] * xhat;
    }
  }
  const dx = new Float32Array(rows * C);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < C; c++) {
      const g = gamma ? gamma[c] : 1;
      const xhat = (x[r * C + c] - mean[c]) * invstd[c];
      dx[r * C + c] = ((g * invstd[c]) / rows) * (rows * dy[r * C + c] - dbeta[c] - xhat * dgamma[c]);
    }
  }
  return { dx, dgamma: Float32Array.from(dgamma), dbeta: Float32Array.from(dbeta) };
}

// ---------------------------------------------------------------------------------------------
// Losses: per-row loss and the gradient of the batch-mean loss
// ---------------------------------------------------------------------------------------------

export interface LossRef {
  loss: Float32Array;
  grad: Float32Array;
}

/** Softmax cross-entropy from logits; labels [rows, cols] (dense) or [rows] class ids (sparse). */
export function softmaxCrossEntropy(logits: ArrayLike<number>, labels: ArrayLike<number>, rows: number, cols: number, sparse = false): LossRef {
  const loss = new Float32Array(rows);
  const grad = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let c = 0; c < cols; c++) m = max(m, logits[r * cols + c]);
    let s = 0;
    for (let c = 0; c < cols; c++) s += exp(logits[r * cols + c] - m);
    const lse = m + log(s);
    const t = (c: number): number => (sparse ? (labels[r] === c ? 1 : 0) : labels[r * cols + c]);
    let l = 0;
    let tsum = 0;
    for (let c = 0; c < cols; c++) {
      l -= t(c) * (logits[r * cols + c] - lse);
      tsum += t(c);
    }
    loss[r] = l;
    for (let c = 0; c < cols; c++) {
      const p = exp(logits[r * cols + c] - lse);
      grad[r * cols + c] = (p * tsum - t(c)) / rows;
    }
  }
  return { loss, grad };
}

export const BCE_EPSILON = 1e-7;

/**
 * Binary cross-entropy, per-row mean over cols. From probabilities: Keras clips p to
 * [1e-7, 1 - 1e-7] in float32 (the gradient is that of the clipped value: zero where clipping is active).
 * From logits: max(x,0) - x*t + log(1 + exp(-|x|)), gradient sigmoid(x) - t.
 */
export function binaryCrossEntropy(input: ArrayLike<number>, target: ArrayLike<number>, rows: number, cols: number, fromLogits = false): LossRef {
  const loss = new Float32Array(rows);
  const grad = new Float32Array(rows * cols);
  // Keras clips float32 tensors: the bounds are float32 numbers (1 - 1e-7 rounds to 1 - 2^-23).
  const lo = fround(BCE_EPSILON);
  const hi = fround(1 - BCE_EPSILON);
  for (let r = 0; r < rows; r++) {
    let l = 0;
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      const x = input[i];
      const t = target[i];
      let g: number;
      if (fromLogits) {
        l += max(x, 0) - x * t + log1p(exp(-abs(x)));
        g = 1 / (1 + exp(-x)) - t;
      } else {
        const p = min(max(x, lo), hi);
        l -= t * log(p) + (1 - t) * log(1 - p);
        g = x > lo && x < hi ? (p - t) / (p * (1 - p)) : 0;
      }
      grad[i] = g / cols / rows;
    }
    loss[r] = l / cols;
  }
  return { loss, grad };
}

export function meanSquaredError(y: ArrayLike<number>, target: ArrayLike<number>, rows: number, cols: number): LossRef {
  const loss = new Float32Array(rows);
  const grad = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let l = 0;
    for (let c = 0; c < cols; c++) {
      const d = y[r * cols + c] - target[r * cols + c];
      l += d * d;
      grad[r * cols + c] = (2 * d) / cols / rows;
    }
    loss[r] = l / cols;
  }
  return { loss, grad };
}

// ---------------------------------------------------------------------------------------------
// Optimizers (Keras 3's update rules), in place on float64 copies, returned as float32
// ---------------------------------------------------------------------------------------------

/** SGD: v = momentum*v - lr*g; w += v (nesterov: w += momentum*v - lr*g); no momentum: w -= lr*g. */
export function sgdStep(w: Float64Array, g: ArrayLike<number>, velocity: Float64Array | null, o: { learningRate?: number; momentum?: number; nesterov?: boolean } = {}): void {
  const lr = o.learningRate ?? 0.01;
  const mom = o.momentum ?? 0;
  for (let i = 0; i < w.length; i++) {
    if (mom === 0) {
      w[i] -= lr * g[i];
      continue;
    }
    velocity![i] = mom * velocity![i] - lr * g[i];
    w[i] += o.nesterov ? mom * velocity![i] - lr * g[i] : velocity![i];
  }
}

/**
 * Adam (Keras 3): lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t); m += (g - m)(1 - beta1);
 * v += (g^2 - v)(1 - beta2); w -= lr_t * m / (sqrt(v) + eps). AdamW first decays w -= w*wd*lr.
 */
export function adamStep(w: Float64Array, g: ArrayLike<number>, m: Float64Array, v: Float64Array, step: number,
  o: { learningRate?: number; beta1?: number; beta2?: number; epsilon?: number; weightDecay?: number } = {}): void {
  const lr = o.learningRate ?? 0.001;
  const b1 = o.beta1 ?? 0.9;
  const b2 = o.beta2 ?? 0.999;
  const eps = o.epsilon ?? 1e-7;
  const wd = o.weightDecay ?? 0;
  const lrT = (lr * sqrt(1 - b2 ** step)) / (1 - b1 ** step);
  for (let i = 0; i < w.length; i++) {
    if (wd > 0) w[i] -= w[i] * wd * lr;
    m[i] += (g[i] - m[i]) * (1 - b1);
    v[i] += (g[i] * g[i] - v[i]) * (1 - b2);
    w[i] -= (lrT * m[i]) / (sqrt(v[i]) + eps);
  }
}

/**
 * RMSprop (Keras 3): ms = rho*ms + (1-rho)*g^2; centered: mg = rho*mg + (1-rho)*g and
 * denom = ms - mg^2 + eps, else ms + eps; inc = lr*g/sqrt(denom); with momentum:
 * mom = momentum*mom + inc, w -= mom; else w -= inc.
 */
export function rmspropStep(w: Float64Array, g: ArrayLike<number>, ms: Float64Array, mom: Float64Array | null, mg: Float64Array | null,
  o: { learningRate?: number; rho?: number; momentum?: number; epsilon?: number; centered?: boolean } = {}): void {
  const lr = o.learningRate ?? 0.001;
  const rho = o.rho ?? 0.9;
  const momentum = o.momentum ?? 0;
  const eps = o.epsilon ?? 1e-7;
  for (let i = 0; i < w.length; i++) {
    ms[i] = rho * ms[i] + (1 - rho) * g[i] * g[i];
    let denom = ms[i] + eps;
    if (o.centered) {
      mg![i] = rho * mg![i] + (1 - rho) * g[i];
      denom -= mg![i] * mg![i];
    }
    const inc = (lr * g[i]) / sqrt(denom);
    if (momentum > 0) {
      mom![i] = momentum * mom![i] + inc;
      w[i] -= mom![i];
    } else {
      w[i] -= inc;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Image augmentation
// ---------------------------------------------------------------------------------------------

/**
 * Augmentation (ck.data.augment, augmentImages) written from Keras's RandomFlip /
 * RandomTranslation / RandomZoom / RandomBrightness semantics: images [n, h, w, c] -> augmented
 * copies, drawing five numbers per image from `rand` in a fixed order, bilinear sampling with
 * 'reflect' fill, float64 arithmetic stored as float32.
 */
export function augmentReference(src: Float32Array, shape: number[], o: { flip: boolean; crop: number; zoom: number; brightness: number }, rand: () => number): Float32Array {
  const [n, h, w, c] = shape;
  const reflect = (v: number, size: number) => {
    if (size === 1) return 0;
    const period = 2 * (size - 1);
    let m = Math.abs(v) % period;
    if (m > size - 1) m = period - m;
    return m;
  };
  const out = new Float32Array(src.length);
  const size = h * w * c;
  const cx = (w - 1) / 2;
  const cy = (h - 1) / 2;
  for (let i = 0; i < n; i++) {
    // Drawn in a fixed order for every image, whatever is enabled, so that one option's
    // numbers do not depend on the others.
    const flip = rand() < 0.5 && o.flip;
    const scale = 1 + o.zoom * (2 * rand() - 1);
    const dx = o.crop * w * (2 * rand() - 1);
    const dy = o.crop * h * (2 * rand() - 1);
    const delta = o.brightness * (2 * rand() - 1);
    const base = i * size;
    const identity = scale === 1 && dx === 0 && dy === 0;
    for (let y = 0; y < h; y++) {
      const sy = identity ? y : (y - cy - dy) / scale + cy;
      const y0 = Math.floor(sy);
      const fy = sy - y0;
      const ya = reflect(y0, h);
      const yb = reflect(y0 + 1, h);
      for (let x = 0; x < w; x++) {
        const xo = flip ? w - 1 - x : x;
        const sx = identity ? xo : (xo - cx - dx) / scale + cx;
        const x0 = Math.floor(sx);
        const fx = sx - x0;
        const xa = reflect(x0, w);
        const xb = reflect(x0 + 1, w);
        const dst = base + (y * w + x) * c;
        for (let ch = 0; ch < c; ch++) {
          const p00 = src[base + (ya * w + xa) * c + ch];
          const p01 = src[base + (ya * w + xb) * c + ch];
          const p10 = src[base + (yb * w + xa) * c + ch];
          const p11 = src[base + (yb * w + xb) * c + ch];
          let v = (p00 * (1 - fx) + p01 * fx) * (1 - fy) + (p10 * (1 - fx) + p11 * fx) * fy;
          if (delta !== 0) v = Math.min(1, Math.max(0, v + delta));
          out[dst + ch] = v;
        }
      }
    }
  }
  return out;
}
