// ck.ops.depthwiseConv2d / depthwiseConv2dGrad and conv2d's `groups` against plain-JS references
// on every ISA path and thread count, TensorFlow.js's depthwiseConv2d, finite differences, and
// typed errors for bad shapes and options.
import { beforeAll, describe, expect, test } from '@jest/globals';
import * as tf from '@tensorflow/tfjs';
import * as ck from '../lib';
import * as ref from '../test-support/reference';
import * as lref from '../test-support/reference-layers';
import { describeIsaThreads, t, useIsa, useThreads, vals } from '../test-support/isa';

type Shape4 = [number, number, number, number];
interface DwCase {
  name: string;
  x: Shape4;
  w: Shape4; // [kH, kW, C, M]
  strides?: number | [number, number];
  dilation?: number | [number, number];
  padding?: 'valid' | 'same';
}

const fixedCases: DwCase[] = [
  { name: '1x1 image, 3x3 same, M=1', x: [2, 1, 1, 3], w: [3, 3, 3, 1], padding: 'same' },
  { name: 'odd sizes 7x5, 3x3 same, M=2', x: [2, 7, 5, 3], w: [3, 3, 3, 2], padding: 'same' },
  { name: 'stride 2 same (MobileNet downsampling), C=17', x: [2, 9, 8, 17], w: [3, 3, 17, 1], strides: 2, padding: 'same' },
  { name: 'stride 2 valid, M=2', x: [1, 10, 11, 8], w: [3, 3, 8, 2], strides: 2 },
  { name: 'dilation 2 same, C=33', x: [1, 11, 10, 33], w: [3, 3, 33, 1], dilation: 2, padding: 'same' },
  { name: 'dilation [2,1] valid, M=3', x: [2, 9, 7, 5], w: [2, 3, 5, 3], dilation: [2, 1] },
  { name: 'non-square 1x5 kernel, strides [1,3], same', x: [1, 4, 13, 16], w: [1, 5, 16, 2], strides: [1, 3], padding: 'same' },
  { name: 'MobileNet-like 14x14x64, 3x3 same', x: [2, 14, 14, 64], w: [3, 3, 64, 1], padding: 'same' },
  { name: 'kernel larger than the image, same', x: [1, 3, 2, 4], w: [5, 5, 4, 1], padding: 'same' },
  { name: '1x1 kernel, C=1, M=4 (a per-channel scale)', x: [3, 4, 4, 1], w: [1, 1, 1, 4] },
];

function randomCases(seed: number, count: number): DwCase[] {
  const rng = new ref.Rng(seed);
  const out: DwCase[] = [];
  while (out.length < count) {
    const C = rng.pick([1, 2, 3, 8, 16, 19, 32]);
    const c: DwCase = {
      name: '',
      x: [rng.int(1, 3), rng.int(1, 10), rng.int(1, 10), C],
      w: [rng.int(1, 4), rng.int(1, 4), C, rng.pick([1, 1, 2, 3])],
      strides: [rng.int(1, 2), rng.int(1, 2)],
      dilation: rng.next() < 0.3 ? [rng.int(1, 2), rng.int(1, 2)] : 1,
      padding: rng.pick(['valid', 'same'] as const),
    };
    const g = lref.depthwiseGeometry(specOf(c));
    if (g.P < 1 || g.Q < 1) continue;
    c.name = `random #${out.length}: x [${c.x}] w [${c.w}] strides [${c.strides}] dilation [${c.dilation}] ${c.padding}`;
    out.push(c);
  }
  return out;
}

function specOf(c: DwCase): lref.DepthwiseSpec {
  return { xShape: c.x, wShape: c.w, strides: c.strides, dilation: c.dilation, padding: c.padding };
}
const optsOf = (c: DwCase): ck.ops.Conv2dOptions => ({ strides: c.strides, dilation: c.dilation, padding: c.padding });
const cases = [...fixedCases, ...randomCases(1010, 10)];
const sumTol = (terms: number) => ({ rtol: 1e-4, atol: 2e-6 * Math.max(1, Math.sqrt(terms)) + 1e-6 });

interface GroupCase {
  name: string;
  x: Shape4;
  w: Shape4; // [kH, kW, C/groups, K]
  groups: number;
  strides?: number;
  padding?: 'valid' | 'same';
}
const groupCases: GroupCase[] = [
  { name: '2 groups, odd sizes, same', x: [2, 7, 5, 4], w: [3, 3, 2, 6], groups: 2, padding: 'same' },
  { name: '4 groups, stride 2 valid', x: [1, 9, 8, 12], w: [3, 3, 3, 8], groups: 4, strides: 2 },
  { name: 'one channel per group (depthwise route), K = 2C', x: [2, 6, 6, 5], w: [3, 3, 1, 10], groups: 5, padding: 'same' },
  { name: 'grouped 1x1 (ShuffleNet-style), 1x1 image', x: [3, 1, 1, 16], w: [1, 1, 4, 8], groups: 4 },
  { name: 'groups 1 is plain conv2d', x: [1, 5, 5, 3], w: [3, 3, 3, 4], groups: 1, padding: 'same' },
];

function caseTests(): void {
  test.each(cases)('depthwiseConv2d forward (bias, relu) and gradients: $name', (c) => {
    const rng = new ref.Rng(c.x.reduce((a, b) => a * 31 + b, 5) + c.w[3]);
    const spec = specOf(c);
    const g = lref.depthwiseGeometry(spec);
    const K = c.x[3] * c.w[3];
    const x = rng.array(ref.prod(c.x));
    const w = rng.array(ref.prod(c.w));
    const b = rng.array(K);
    const tol = sumTol(c.w[0] * c.w[1]);
    const y = ck.ops.depthwiseConv2d(t(x, c.x), t(w, c.w), optsOf(c));
    expect(y.shape).toEqual(g.yShape);
    ref.expectClose(vals(y), lref.depthwiseConv2d(x, w, spec), { ...tol, name: `depthwiseConv2d ${c.name}`, shape: g.yShape });
    const yr = ck.ops.depthwiseConv2d(t(x, c.x), t(w, c.w), { ...optsOf(c), bias: t(b, [K]), activation: 'relu' });
    ref.expectClose(vals(yr), lref.depthwiseConv2d(x, w, spec, b, true), { ...tol, name: `+bias+relu ${c.name}`, shape: g.yShape });

    const dy = rng.array(ref.prod(g.yShape));
    const want = lref.depthwiseConv2dGrad(dy, x, w, spec);
    const got = ck.ops.depthwiseConv2dGrad(t(dy, g.yShape), t(x, c.x), t(w, c.w), optsOf(c));
    expect([got.dx.shape, got.dw.shape, got.db.shape]).toEqual([c.x, c.w, [K]]);
    ref.expectClose(vals(got.dx), want.dx, { ...sumTol(c.w[0] * c.w[1] * c.w[3]), name: `dx ${c.name}`, shape: c.x });
    ref.expectClose(vals(got.dw), want.dw, { ...sumTol(g.N * g.P * g.Q), name: `dw ${c.name}`, shape: c.w });
    ref.expectClose(vals(got.db), want.db, { ...sumTol(g.N * g.P * g.Q), name: `db ${c.name}`, shape: [K] });
  });

  test.each(groupCases)('conv2d with groups, forward and gradients: $name', (c) => {
    const rng = new ref.Rng(77 + c.groups);
    const spec: lref.GroupedSpec = { xShape: c.x, wShape: c.w, groups: c.groups, strides: c.strides, padding: c.padding };
    const opts = { strides: c.strides, padding: c.padding, groups: c.groups };
    const x = rng.array(ref.prod(c.x));
    const w = rng.array(ref.prod(c.w));
    const b = rng.array(c.w[3]);
    const y = ck.ops.conv2d(t(x, c.x), t(w, c.w), { ...opts, bias: t(b, [c.w[3]]) });
    const want = lref.groupedConv2d(x, w, spec, b);
    expect(ref.prod(y.shape)).toBe(want.length);
    ref.expectClose(vals(y), want, { ...sumTol(c.w[0] * c.w[1] * c.w[2]), name: `grouped conv2d ${c.name}`, shape: y.shape });
    const dy = rng.array(want.length);
    const wg = lref.groupedConv2dGrad(dy, x, w, spec);
    const got = ck.ops.conv2dGrad(t(dy, y.shape), t(x, c.x), t(w, c.w), opts);
    ref.expectClose(vals(got.dx), wg.dx, { ...sumTol(c.w[0] * c.w[1] * c.w[3]), name: `grouped dx ${c.name}`, shape: c.x });
    ref.expectClose(vals(got.dw), wg.dw, { ...sumTol(want.length / c.w[3]), name: `grouped dw ${c.name}`, shape: c.w });
    ref.expectClose(vals(got.db), wg.db, { ...sumTol(want.length / c.w[3]), name: `grouped db ${c.name}` });
  });
}

describeIsaThreads('depthwise and grouped convolution on the %s kernels with %i thread(s)', (isa, threads) => {
  useIsa(isa);
  useThreads(threads);
  caseTests();
});

describe('depthwiseConv2d agrees with TensorFlow.js', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
    await tf.ready();
  });
  test.each(fixedCases.filter((c) => c.dilation === undefined || c.strides === undefined))('$name', (c) => {
    // tfjs takes dilations or strides > 1, not both at once.
    const rng = new ref.Rng(4040 + c.w[3]);
    const x = rng.array(ref.prod(c.x));
    const w = rng.array(ref.prod(c.w));
    const want = tf.tidy(() => tf.depthwiseConv2d(tf.tensor4d(x, c.x), tf.tensor4d(w, c.w), c.strides ?? 1,
      c.padding ?? 'valid', 'NHWC', c.dilation ?? 1).dataSync());
    const got = vals(ck.ops.depthwiseConv2d(t(x, c.x), t(w, c.w), optsOf(c)));
    ref.expectClose(got, want, { ...sumTol(c.w[0] * c.w[1]), name: `vs tf.depthwiseConv2d ${c.name}` });
  });
});

describe('finite differences', () => {
  test('depthwiseConv2dGrad dx, dw, db agree with central differences (M=2, stride 2, same)', () => {
    const c: DwCase = { name: '', x: [2, 5, 6, 3], w: [3, 3, 3, 2], strides: 2, padding: 'same' };
    const rng = new ref.Rng(606);
    const g = lref.depthwiseGeometry(specOf(c));
    const K = 6;
    const x = rng.array(ref.prod(c.x));
    const w = rng.array(ref.prod(c.w));
    const b = rng.array(K);
    const r = rng.array(ref.prod(g.yShape));
    const loss = ([xi, wi, bi]: Float32Array[]): number =>
      ref.dot(ck.ops.depthwiseConv2d(t(xi, c.x), t(wi, c.w), { ...optsOf(c), bias: t(bi, [K]) }).dataSync(), r);
    const an = ck.ops.depthwiseConv2dGrad(t(r, g.yShape), t(x, c.x), t(w, c.w), optsOf(c));
    for (const [which, analytic, name] of [[0, an.dx, 'dx'], [1, an.dw, 'dw'], [2, an.db, 'db']] as const) {
      const fd = ref.finiteDiff(loss, [x, w, b], which, { eps: 0.25 }); // linear in each input
      ref.expectClose(ref.gather(vals(analytic), fd.indices), fd.grad, { rtol: 1e-3, atol: 1e-3, name: `${name} vs finite differences` });
    }
  });

  test('grouped conv2dGrad dx and dw agree with central differences', () => {
    const xs: Shape4 = [1, 5, 5, 6];
    const ws: Shape4 = [3, 3, 2, 6];
    const rng = new ref.Rng(707);
    const x = rng.array(ref.prod(xs));
    const w = rng.array(ref.prod(ws));
    const opts = { padding: 'same' as const, groups: 3 };
    const r = rng.array(1 * 5 * 5 * 6);
    const loss = ([xi, wi]: Float32Array[]): number => ref.dot(ck.ops.conv2d(t(xi, xs), t(wi, ws), opts).dataSync(), r);
    const an = ck.ops.conv2dGrad(t(r, [1, 5, 5, 6]), t(x, xs), t(w, ws), opts);
    for (const [which, analytic, name] of [[0, an.dx, 'dx'], [1, an.dw, 'dw']] as const) {
      const fd = ref.finiteDiff(loss, [x, w], which, { eps: 0.25 });
      ref.expectClose(ref.gather(vals(analytic), fd.indices), fd.grad, { rtol: 1e-3, atol: 1e-3, name: `grouped ${name} vs finite differences` });
    }
  });
});

describe('errors name the op and the shapes', () => {
  const x = () => ck.zeros([2, 6, 6, 4]);
  test('depthwise filter in-channels must match the input', () => {
    expect(() => ck.ops.depthwiseConv2d(x(), ck.zeros([3, 3, 3, 1]))).toThrow(ck.ShapeError);
    expect(() => ck.ops.depthwiseConv2d(x(), ck.zeros([3, 3, 3, 1]))).toThrow(/depthwiseConv2d: .*\[2,6,6,4\].*\[3,3,3,1\]/);
  });
  test('depthwise filter and input must have rank 4', () => {
    expect(() => ck.ops.depthwiseConv2d(x(), ck.zeros([3, 3, 4]))).toThrow(/depthwiseConv2d: filter must have rank 4.*\[3,3,4\]/);
    expect(() => ck.ops.depthwiseConv2d(ck.zeros([6, 6, 4]), ck.zeros([3, 3, 4, 1]))).toThrow(ck.ShapeError);
  });
  test('a valid window larger than the image', () => {
    expect(() => ck.ops.depthwiseConv2d(x(), ck.zeros([7, 7, 4, 1]))).toThrow(/does not fit the 6x6 input/);
  });
  test('bias of the wrong length, dy of the wrong shape', () => {
    expect(() => ck.ops.depthwiseConv2d(x(), ck.zeros([3, 3, 4, 2]), { bias: ck.zeros([4]) })).toThrow(/bias must have shape \[8\], got \[4\]/);
    expect(() => ck.ops.depthwiseConv2dGrad(ck.zeros([2, 4, 4, 4]), x(), ck.zeros([3, 3, 4, 2]))).toThrow(/depthwiseConv2dGrad: dy must have the output shape \[2,4,4,8\], got \[2,4,4,4\]/);
  });
  test('unsupported activation, bad strides', () => {
    expect(() => ck.ops.depthwiseConv2d(x(), ck.zeros([3, 3, 4, 1]), { activation: 'tanh' as 'relu' })).toThrow(ck.ValueError);
    expect(() => ck.ops.depthwiseConv2d(x(), ck.zeros([3, 3, 4, 1]), { strides: 0 })).toThrow(ck.ValueError);
  });
  test('groups must divide the channels and match the filter', () => {
    expect(() => ck.ops.conv2d(x(), ck.zeros([3, 3, 2, 6]), { groups: 3 })).toThrow(/conv2d: groups 3 must divide the input channels and the filters/);
    expect(() => ck.ops.conv2d(x(), ck.zeros([3, 3, 4, 6]), { groups: 2 })).toThrow(/conv2d: filter in-channels must be input channels \/ groups = 2, got 4/);
    expect(() => ck.ops.conv2d(x(), ck.zeros([3, 3, 2, 6]), { groups: 1.5 })).toThrow(ck.ValueError);
    expect(() => ck.ops.conv2dGrad(ck.zeros([2, 4, 4, 6]), x(), ck.zeros([3, 3, 2, 5]), { groups: 2 })).toThrow(ck.ShapeError);
  });
});
