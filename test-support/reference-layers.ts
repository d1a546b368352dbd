// Plain-JS references of the functional-model layers' ops (depthwise and grouped convolution,
// zero padding, up-sampling, Lp pooling, concatenation), written from their definitions (Keras /
// TensorFlow semantics) with straightforward loops and float64 accumulation. Nothing here imports
// convkit: the tests compare the native kernels against it.
import { axisGeometry, Padding, poolGeometry, PoolSpec, prod } from './reference';

const { abs, floor, min, pow, sign, sqrt } = Math;

type Shape4 = [number, number, number, number];
const pairOf = (v: number | [number, number] | undefined, def: number): [number, number] =>
  v === undefined ? [def, def] : typeof v === 'number' ? [v, v] : v;

// ---------------------------------------------------------------------------------------------
// Depthwise convolution: x [N,H,W,C], filter [R,S,C,M] -> [N,P,Q,C*M], channel c*M + m
// ---------------------------------------------------------------------------------------------

export interface DepthwiseSpec {
  xShape: Shape4;
  wShape: Shape4; // R,S,C,M
  strides?: number | [number, number];
  dilation?: number | [number, number];
  padding?: Padding;
}

export function depthwiseGeometry(spec: DepthwiseSpec) {
  const [N, H, W, C] = spec.xShape;
  const [R, S, C2, M] = spec.wShape;
  if (C2 !== C) throw new Error(`reference depthwise: channels ${C} vs ${C2}`);
  const [sh, sw] = pairOf(spec.strides, 1);
  const [dh, dw] = pairOf(spec.dilation, 1);
  const gh = axisGeometry(H, R, sh, dh, spec.padding ?? 'valid');
  const gw = axisGeometry(W, S, sw, dw, spec.padding ?? 'valid');
  const P = gh.out, Q = gw.out;
  return { N, H, W, C, R, S, M, P, Q, sh, sw, dh, dw, padH: gh.padBefore, padW: gw.padBefore, yShape: [N, P, Q, C * M] as Shape4 };
}

/** Calls fn(xIndex, wIndex (for m = 0), yIndex (for m = 0)) for every tap inside the image. */
function forEachDepthwiseTap(spec: DepthwiseSpec, fn: (xi: number, wi: number, yi: number) => void): void {
  const g = depthwiseGeometry(spec);
  const K = g.C * g.M;
  for (let n = 0; n < g.N; n++)
    for (let p = 0; p < g.P; p++)
      for (let q = 0; q < g.Q; q++)
        for (let r = 0; r < g.R; r++) {
          const ih = p * g.sh - g.padH + r * g.dh;
          if (ih < 0 || ih >= g.H) continue;
          for (let s = 0; s < g.S; s++) {
            const iw = q * g.sw - g.padW + s * g.dw;
            if (iw < 0 || iw >= g.W) continue;
            for (let c = 0; c < g.C; c++) {
              fn(((n * g.H + ih) * g.W + iw) * g.C + c, ((r * g.S + s) * g.C + c) * g.M, ((n * g.P + p) * g.Q + q) * K + c * g.M);
            }
          }
        }
}

export function depthwiseConv2d(x: ArrayLike<number>, w: ArrayLike<number>, spec: DepthwiseSpec, bias?: ArrayLike<number>, relu = false): Float32Array {
  const g = depthwiseGeometry(spec);
  const acc = new Float64Array(prod(g.yShape));
  forEachDepthwiseTap(spec, (xi, wi, yi) => {
    for (let m = 0; m < g.M; m++) acc[yi + m] += x[xi] * w[wi + m];
  });
  const K = g.C * g.M;
  return Float32Array.from(acc, (v, i) => {
    const z = v + (bias ? bias[i % K] : 0);
    return relu ? (z > 0 ? z : 0) : z;
  });
}

export function depthwiseConv2dGrad(dy: ArrayLike<number>, x: ArrayLike<number>, w: ArrayLike<number>, spec: DepthwiseSpec): { dx: Float32Array; dw: Float32Array; db: Float32Array } {
  const g = depthwiseGeometry(spec);
  const K = g.C * g.M;
  const dx = new Float64Array(prod(spec.xShape));
  const dwAcc = new Float64Array(prod(spec.wShape));
  const db = new Float64Array(K);
  for (let i = 0; i < dy.length; i++) db[i % K] += dy[i];
  forEachDepthwiseTap(spec, (xi, wi, yi) => {
    for (let m = 0; m < g.M; m++) {
      dx[xi] += dy[yi + m] * w[wi + m];
      dwAcc[wi + m] += x[xi] * dy[yi + m];
    }
  });
  return { dx: Float32Array.from(dx), dw: Float32Array.from(dwAcc), db: Float32Array.from(db) };
}

// ---------------------------------------------------------------------------------------------
// Grouped convolution: filter [R,S,C/G,K]; group g: inputs [g*C/G, ...), outputs [g*K/G, ...)
// ---------------------------------------------------------------------------------------------

export interface GroupedSpec {
  xShape: Shape4;
  wShape: Shape4; // R,S,C/G,K
  groups: number;
  strides?: number | [number, number];
  dilation?: number | [number, number];
  padding?: Padding;
}

function forEachGroupedTap(spec: GroupedSpec, fn: (xi: number, wi: number, yi: number) => void) {
  const [N, H, W, C] = spec.xShape;
  const [R, S, Cg, K] = spec.wShape;
  const Kg = K / spec.groups;
  const [sh, sw] = pairOf(spec.strides, 1);
  const [dh, dw] = pairOf(spec.dilation, 1);
  const gh = axisGeometry(H, R, sh, dh, spec.padding ?? 'valid');
  const gw = axisGeometry(W, S, sw, dw, spec.padding ?? 'valid');
  const P = gh.out, Q = gw.out;
  for (let n = 0; n < N; n++)
    for (let p = 0; p < P; p++)
      for (let q = 0; q < Q; q++)
        for (let k = 0; k < K; k++) {
          const g = floor(k / Kg);
          for (let r = 0; r < R; r++) {
            const ih = p * sh - gh.padBefore + r * dh;
            if (ih < 0 || ih >= H) continue;
            for (let s = 0; s < S; s++) {
              const iw = q * sw - gw.padBefore + s * dw;
              if (iw < 0 || iw >= W) continue;
              for (let c = 0; c < Cg; c++) {
                fn(((n * H + ih) * W + iw) * C + g * Cg + c, ((r * S + s) * Cg + c) * K + k, ((n * P + p) * Q + q) * K + k);
              }
            }
          }
        }
  return { yShape: [N, P, Q, K] as Shape4 };
}

export function groupedConv2d(x: ArrayLike<number>, w: ArrayLike<number>, spec: GroupedSpec, bias?: ArrayLike<number>): Float32Array {
  const [N, H, W] = spec.xShape;
  const [R, S, , K] = spec.wShape;
  const [sh, sw] = pairOf(spec.strides, 1);
  const [dh, dw] = pairOf(spec.dilation, 1);
  const P = axisGeometry(H, R, sh, dh, spec.padding ?? 'valid').out, Q = axisGeometry(W, S, sw, dw, spec.padding ?? 'valid').out;
  const acc = new Float64Array(N * P * Q * K);
  forEachGroupedTap(spec, (xi, wi, yi) => { acc[yi] += x[xi] * w[wi]; });
  return Float32Array.from(acc, (v, i) => v + (bias ? bias[i % K] : 0));
}

export function groupedConv2dGrad(dy: ArrayLike<number>, x: ArrayLike<number>, w: ArrayLike<number>, spec: GroupedSpec): { dx: Float32Array; dw: Float32Array; db: Float32Array } {
  const K = spec.wShape[3];
  const dx = new Float64Array(prod(spec.xShape));
  const dwAcc = new Float64Array(prod(spec.wShape));
  const db = new Float64Array(K);
  for (let i = 0; i < dy.length; i++) db[i % K] += dy[i];
  forEachGroupedTap(spec, (xi, wi, yi) => {
    dx[xi] += dy[yi] * w[wi];
    dwAcc[wi] += x[xi] * dy[yi];
  });
  return { dx: Float32Array.from(dx), dw: Float32Array.from(dwAcc), db: Float32Array.from(db) };
}

// ---------------------------------------------------------------------------------------------
// Zero padding and up-sampling
// ---------------------------------------------------------------------------------------------

/** [top, bottom, left, right] zero rows/columns around each image. */
export function zeroPadding2d(x: ArrayLike<number>, xShape: Shape4, pad: [number, number, number, number]): Float32Array {
  const [N, H, W, C] = xShape;
  const [t, b, l, r] = pad;
  const P = H + t + b, Q = W + l + r;
  const y = new Float32Array(N * P * Q * C);
  for (let n = 0; n < N; n++)
    for (let h = 0; h < H; h++)
      for (let w = 0; w < W; w++)
        for (let c = 0; c < C; c++) y[((n * P + h + t) * Q + w + l) * C + c] = x[((n * H + h) * W + w) * C + c];
  return y;
}

export function zeroPadding2dGrad(dy: ArrayLike<number>, xShape: Shape4, pad: [number, number, number, number]): Float32Array {
  const [N, H, W, C] = xShape;
  const [t, b, l, r] = pad;
  const P = H + t + b, Q = W + l + r;
  const dx = new Float32Array(prod(xShape));
  for (let n = 0; n < N; n++)
    for (let h = 0; h < H; h++)
      for (let w = 0; w < W; w++)
        for (let c = 0; c < C; c++) dx[((n * H + h) * W + w) * C + c] = dy[((n * P + h + t) * Q + w + l) * C + c];
  return dx;
}

/** The two source indices and the weight on the second, as TensorFlow's bilinear resize. */
function bilinearSource(i: number, scale: number, inSize: number, halfPixel: boolean): [number, number, number] {
  const src = halfPixel ? (i + 0.5) / scale - 0.5 : i / scale;
  const lo = floor(src);
  return [lo < 0 ? 0 : lo, min(Math.ceil(src), inSize - 1), src - lo];
}

export interface UpSpec {
  xShape: Shape4;
  size: [number, number];
  interpolation: 'nearest' | 'bilinear';
  halfPixelCenters?: boolean;
}

/** Calls fn(yIndex, [xIndex, weight][]) for every output element. */
function forEachUpSample(spec: UpSpec, fn: (yi: number, taps: [number, number][]) => void): void {
  const [N, H, W, C] = spec.xShape;
  const [sh, sw] = spec.size;
  const P = H * sh, Q = W * sw;
  const half = spec.halfPixelCenters ?? true;
  for (let n = 0; n < N; n++)
    for (let i = 0; i < P; i++)
      for (let j = 0; j < Q; j++)
        for (let c = 0; c < C; c++) {
          const at = (h: number, w: number): number => ((n * H + h) * W + w) * C + c;
          const yi = ((n * P + i) * Q + j) * C + c;
          if (spec.interpolation === 'nearest') {
            fn(yi, [[at(floor(i / sh), floor(j / sw)), 1]]);
            continue;
          }
          const [r0, r1, fr] = bilinearSource(i, sh, H, half);
          const [c0, c1, fc] = bilinearSource(j, sw, W, half);
          fn(yi, [[at(r0, c0), (1 - fr) * (1 - fc)], [at(r0, c1), (1 - fr) * fc], [at(r1, c0), fr * (1 - fc)], [at(r1, c1), fr * fc]]);
        }
}

export function upSampling2d(x: ArrayLike<number>, spec: UpSpec): Float32Array {
  const [N, H, W, C] = spec.xShape;
  const y = new Float32Array(N * H * spec.size[0] * W * spec.size[1] * C);
  forEachUpSample(spec, (yi, taps) => {
    let s = 0;
    for (const [xi, wt] of taps) s += x[xi] * wt;
    y[yi] = s;
  });
  return y;
}

export function upSampling2dGrad(dy: ArrayLike<number>, spec: UpSpec): Float32Array {
  const dx = new Float64Array(prod(spec.xShape));
  forEachUpSample(spec, (yi, taps) => {
    for (const [xi, wt] of taps) dx[xi] += dy[yi] * wt;
  });
  return Float32Array.from(dx);
}

// ---------------------------------------------------------------------------------------------
// Lp pooling: (mean over the window's real cells of |x|^p)^(1/p)
// ---------------------------------------------------------------------------------------------

function forEachPoolWindow(spec: PoolSpec, fn: (yi: number, cells: number[]) => void): void {
  const g = poolGeometry(spec);
  for (let n = 0; n < g.N; n++)
    for (let p = 0; p < g.P; p++)
      for (let q = 0; q < g.Q; q++)
        for (let c = 0; c < g.C; c++) {
          const cells: number[] = [];
          for (let ih = 0; ih < g.R; ih++) {
            const h = p * g.sh - g.padH + ih;
            if (h < 0 || h >= g.H) continue;
            for (let iw = 0; iw < g.S; iw++) {
              const w = q * g.sw - g.padW + iw;
              if (w >= 0 && w < g.W) cells.push(((n * g.H + h) * g.W + w) * g.C + c);
            }
          }
          fn(((n * g.P + p) * g.Q + q) * g.C + c, cells);
        }
}

export function lpPool2d(x: ArrayLike<number>, spec: PoolSpec, p = 2): Float32Array {
  const y = new Float32Array(prod(poolGeometry(spec).yShape));
  forEachPoolWindow(spec, (yi, cells) => {
    let s = 0;
    for (const i of cells) s += pow(abs(x[i]), p);
    y[yi] = p === 2 ? sqrt(s / cells.length) : pow(s / cells.length, 1 / p);
  });
  return y;
}

/** d y / d x_i = |x_i|^(p-1) sign(x_i) / (cells * y^(p-1)); 0 where y == 0. */
export function lpPool2dGrad(dy: ArrayLike<number>, x: ArrayLike<number>, spec: PoolSpec, p = 2): Float32Array {
  const y = lpPool2d(x, spec, p);
  const dx = new Float64Array(prod(spec.xShape));
  forEachPoolWindow(spec, (yi, cells) => {
    if (y[yi] === 0) return;
    const g = dy[yi] / (cells.length * pow(y[yi], p - 1));
    for (const i of cells) dx[i] += g * sign(x[i]) * pow(abs(x[i]), p - 1);
  });
  return Float32Array.from(dx);
}

// ---------------------------------------------------------------------------------------------
// Concatenation along the last axis
// ---------------------------------------------------------------------------------------------

export function concatLast(parts: ArrayLike<number>[], widths: number[], rows: number): Float32Array {
  const total = widths.reduce((a, b) => a + b, 0);
  const y = new Float32Array(rows * total);
  for (let r = 0; r < rows; r++) {
    let off = 0;
    parts.forEach((part, i) => {
      for (let j = 0; j < widths[i]; j++) y[r * total + off + j] = part[r * widths[i] + j];
      off += widths[i];
    });
  }
  return y;
}

export function splitLast(y: ArrayLike<number>, widths: number[], rows: number): Float32Array[] {
  const total = widths.reduce((a, b) => a + b, 0);
  let off = 0;
  return widths.map((w) => {
    const out = new Float32Array(rows * w);
    for (let r = 0; r < rows; r++) for (let j = 0; j < w; j++) out[r * w + j] = y[r * total + off + j];
    off += w;
    return out;
  });
}
