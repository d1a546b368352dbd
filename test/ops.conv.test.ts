// ck.ops.conv2d / conv2dGrad / dense / denseGrad against the plain-JS reference, on every ISA
// path this CPU supports, plus finite-difference checks of the gradients.
import { describe, expect, test } from '@jest/globals';
import * as ck from '../lib';
import * as ref from '../test-support/reference';
import { describeIsas, describeIsaThreads, t, useIsa, useThreads, vals } from '../test-support/isa';

type Shape4 = [number, number, number, number];
interface ConvCase {
  name: string;
  x: Shape4;
  w: Shape4;
  strides?: number | [number, number];
  dilation?: number | [number, number];
  padding?: 'valid' | 'same';
}

const fixedCases: ConvCase[] = [
  { name: '1x1 image, 1x1 kernel, C=1 K=1', x: [1, 1, 1, 1], w: [1, 1, 1, 1] },
  { name: '1x1 image, 3x3 kernel, same', x: [2, 1, 1, 3], w: [3, 3, 3, 5], padding: 'same' },
  { name: '1x1 image, 2x2 kernel, same, stride 2', x: [1, 1, 1, 2], w: [2, 2, 2, 3], padding: 'same', strides: 2 },
  { name: 'odd sizes, non-square kernel and strides, same', x: [2, 7, 5, 3], w: [3, 2, 3, 5], strides: [2, 1], padding: 'same' },
  { name: 'C=1, dilation [2,1], strides [1,3], valid', x: [3, 9, 8, 1], w: [2, 3, 1, 4], strides: [1, 3], dilation: [2, 1] },
  { name: 'dilation 2, stride 2, same', x: [1, 6, 11, 5], w: [3, 3, 5, 7], strides: 2, dilation: 2, padding: 'same' },
  { name: '1x1 conv, stride 3, same', x: [2, 7, 8, 4], w: [1, 1, 4, 6], strides: 3, padding: 'same' },
  { name: '1x1 conv, stride 3, valid', x: [2, 7, 8, 4], w: [1, 1, 4, 6], strides: 3 },
  { name: 'kernel as large as the image, valid', x: [2, 5, 4, 3], w: [5, 4, 3, 2] },
  { name: 'even 4x4 kernel, stride 3, same (asymmetric pad)', x: [1, 7, 7, 2], w: [4, 4, 2, 3], strides: 3, padding: 'same' },
  { name: 'kernel larger than the image, same', x: [1, 2, 3, 3], w: [5, 5, 3, 2], padding: 'same' },
  { name: 'odd channels C=17 K=19', x: [2, 6, 6, 17], w: [3, 3, 17, 19], padding: 'same' },
  { name: 'vector-width channels C=16 K=32', x: [2, 8, 8, 16], w: [3, 3, 16, 32], padding: 'same' },
  { name: '1x1 conv C=33 K=24 (GEMM path)', x: [2, 5, 7, 33], w: [1, 1, 33, 24] },
  { name: 'larger: 14x14x32 -> 64, same', x: [2, 14, 14, 32], w: [3, 3, 32, 64], padding: 'same' },
  { name: '5x5 kernel, C=1 K=32 (MNIST first layer)', x: [2, 12, 12, 1], w: [5, 5, 1, 32] },
  { name: 'stride larger than kernel, valid', x: [1, 9, 10, 3], w: [2, 1, 3, 3], strides: [4, 3] },
  { name: 'many channels C=70 K=130', x: [1, 5, 5, 70], w: [3, 3, 70, 130], padding: 'same' },
  { name: 'long rows W=100, 1x5 kernel', x: [2, 3, 100, 3], w: [1, 5, 3, 4], padding: 'same' },
  { name: 'tall column H=60, W=1', x: [1, 60, 1, 2], w: [7, 1, 2, 3], strides: [3, 1] },
  { name: 'the largest dilation (65536), same: only in-image taps count', x: [1, 3, 3, 2], w: [2, 2, 2, 3], dilation: 65536, padding: 'same' },
  { name: 'the largest stride (65536), same', x: [2, 3, 4, 2], w: [3, 3, 2, 2], strides: 65536, padding: 'same' },
];

function randomCases(seed: number, count: number): ConvCase[] {
  const rng = new ref.Rng(seed);
  const out: ConvCase[] = [];
  while (out.length < count) {
    const c: ConvCase = {
      name: '',
      x: [rng.int(1, 3), rng.int(1, 9), rng.int(1, 9), rng.pick([1, 2, 3, 5, 8, 16, 17])],
      w: [rng.int(1, 4), rng.int(1, 4), 0, rng.pick([1, 3, 4, 7, 16, 19])],
      strides: [rng.int(1, 3), rng.int(1, 3)],
      dilation: rng.next() < 0.3 ? [rng.int(1, 2), rng.int(1, 3)] : 1,
      padding: rng.pick(['valid', 'same'] as const),
    };
    c.w[2] = c.x[3];
    const g = ref.convGeometry({ xShape: c.x, wShape: c.w, strides: c.strides, dilation: c.dilation, padding: c.padding });
    if (g.P < 1 || g.Q < 1) continue;
    c.name = `random #${out.length}: x [${c.x}] w [${c.w}] strides [${c.strides}] dilation [${c.dilation}] ${c.padding}`;
    out.push(c);
  }
  return out;
}

const cases = [...fixedCases, ...randomCases(20240611, 16)];

const specOf = (c: ConvCase): ref.ConvSpec => ({ xShape: c.x, wShape: c.w, strides: c.strides, dilation: c.dilation, padding: c.padding });
const optsOf = (c: ConvCase): ck.ops.Conv2dOptions => ({ strides: c.strides, dilation: c.dilation, padding: c.padding });

/** Tolerances for a sum of `terms` products of values in [-1, 1]. */
const sumTol = (terms: number) => ({ rtol: 1e-4, atol: 2e-6 * Math.max(1, Math.sqrt(terms)) + 1e-6 });

interface DenseCase {
  name: string;
  xShape: number[];
  units: number;
}
const denseCases: DenseCase[] = [
  { name: '1x1 -> 1', xShape: [1, 1], units: 1 },
  { name: 'odd sizes 3x17 -> 5', xShape: [3, 17], units: 5 },
  { name: 'odd sizes 7x33 -> 19', xShape: [7, 33], units: 19 },
  { name: 'batch 1, 1024 -> 10 (the seeds\' head)', xShape: [1, 1024], units: 10 },
  { name: 'rank 3 input [2,3,9] -> 4', xShape: [2, 3, 9], units: 4 },
  { name: 'GEMM tiles 64x100 -> 70', xShape: [64, 100], units: 70 },
  { name: 'tall 130x9 -> 129', xShape: [130, 9], units: 129 },
  { name: 'vector widths 32x64 -> 48', xShape: [32, 64], units: 48 },
  { name: 'long reduction 2x1000 -> 1', xShape: [2, 1000], units: 1 },
  { name: 'wide output 1x3 -> 1000', xShape: [1, 3], units: 1000 },
];

/** Forward and gradient of every case against the reference (registered inside a describe). */
function convCaseTests(): void {
  test.each(cases)('forward matches the reference: $name', (c) => {
    const rng = new ref.Rng(1000 + c.x.reduce((a, b) => a * 31 + b, 7));
    const x = rng.array(ref.prod(c.x));
    const w = rng.array(ref.prod(c.w));
    const b = rng.array(c.w[3]);
    const spec = specOf(c);
    const g = ref.convGeometry(spec);
    const tol = sumTol(c.w[0] * c.w[1] * c.w[2]);

    const y = ck.ops.conv2d(t(x, c.x), t(w, c.w), optsOf(c));
    expect(y.shape).toEqual(g.yShape);
    ref.expectClose(vals(y), ref.conv2d(x, w, spec), { ...tol, name: `conv2d ${c.name}`, shape: g.yShape });

    const yb = ck.ops.conv2d(t(x, c.x), t(w, c.w), { ...optsOf(c), bias: t(b, [c.w[3]]) });
    ref.expectClose(vals(yb), ref.conv2d(x, w, spec, b), { ...tol, name: `conv2d+bias ${c.name}`, shape: g.yShape });

    const yr = ck.ops.conv2d(t(x, c.x), t(w, c.w), { ...optsOf(c), bias: t(b, [c.w[3]]), activation: 'relu' });
    ref.expectClose(vals(yr), ref.conv2d(x, w, spec, b, true), { ...tol, name: `conv2d+bias+relu ${c.name}`, shape: g.yShape });
  });

  test.each(cases)('gradients match the reference: $name', (c) => {
    const rng = new ref.Rng(2000 + c.x.reduce((a, b) => a * 17 + b, 3));
    const spec = specOf(c);
    const g = ref.convGeometry(spec);
    const x = rng.array(ref.prod(c.x));
    const w = rng.array(ref.prod(c.w));
    const dy = rng.array(ref.prod(g.yShape));
    const want = ref.conv2dGrad(dy, x, w, spec);
    const got = ck.ops.conv2dGrad(t(dy, g.yShape), t(x, c.x), t(w, c.w), optsOf(c));
    expect(got.dx.shape).toEqual(c.x);
    expect(got.dw.shape).toEqual(c.w);
    expect(got.db.shape).toEqual([c.w[3]]);
    ref.expectClose(vals(got.dx), want.dx, { ...sumTol(c.w[0] * c.w[1] * c.w[3]), name: `dx ${c.name}`, shape: c.x });
    ref.expectClose(vals(got.dw), want.dw, { ...sumTol(g.N * g.P * g.Q), name: `dw ${c.name}`, shape: c.w });
    ref.expectClose(vals(got.db), want.db, { ...sumTol(g.N * g.P * g.Q), name: `db ${c.name}`, shape: [c.w[3]] });
  });
}

/** Dense forward and gradient of every case against the reference. */
function denseCaseTests(): void {
  test.each(denseCases)('dense forward (plain, bias, bias+relu) matches the reference: $name', (c) => {
    const rng = new ref.Rng(500 + c.xShape.reduce((a, b) => a * 13 + b, 1) + c.units);
    const K = c.xShape[c.xShape.length - 1];
    const M = ref.prod(c.xShape) / K;
    const N = c.units;
    const x = rng.array(M * K);
    const w = rng.array(K * N);
    const b = rng.array(N);
    const yShape = [...c.xShape.slice(0, -1), N];
    const tol = sumTol(K);
    const y = ck.ops.dense(t(x, c.xShape), t(w, [K, N]));
    expect(y.shape).toEqual(yShape);
    ref.expectClose(vals(y), ref.dense(x, w, M, K, N), { ...tol, name: `dense ${c.name}`, shape: yShape });
    const yb = ck.ops.dense(t(x, c.xShape), t(w, [K, N]), { bias: t(b, [N]) });
    ref.expectClose(vals(yb), ref.dense(x, w, M, K, N, b), { ...tol, name: `dense+bias ${c.name}`, shape: yShape });
    const yr = ck.ops.dense(t(x, c.xShape), t(w, [K, N]), { bias: t(b, [N]), activation: 'relu' });
    ref.expectClose(vals(yr), ref.dense(x, w, M, K, N, b, true), { ...tol, name: `dense+bias+relu ${c.name}`, shape: yShape });
  });

  test.each(denseCases)('dense gradients match the reference: $name', (c) => {
    const rng = new ref.Rng(900 + c.xShape.reduce((a, b) => a * 7 + b, 5) + c.units);
    const K = c.xShape[c.xShape.length - 1];
    const M = ref.prod(c.xShape) / K;
    const N = c.units;
    const x = rng.array(M * K);
    const w = rng.array(K * N);
    const dy = rng.array(M * N);
    const yShape = [...c.xShape.slice(0, -1), N];
    const want = ref.denseGrad(dy, x, w, M, K, N);
    const got = ck.ops.denseGrad(t(dy, yShape), t(x, c.xShape), t(w, [K, N]));
    expect(got.dx.shape).toEqual(c.xShape);
    expect(got.dw.shape).toEqual([K, N]);
    expect(got.db.shape).toEqual([N]);
    ref.expectClose(vals(got.dx), want.dx, { ...sumTol(N), name: `dx ${c.name}`, shape: c.xShape });
    ref.expectClose(vals(got.dw), want.dw, { ...sumTol(M), name: `dw ${c.name}`, shape: [K, N] });
    ref.expectClose(vals(got.db), want.db, { ...sumTol(M), name: `db ${c.name}`, shape: [N] });
  });
}

describeIsas('conv2d on the %s kernels', (isa) => {
  useIsa(isa);
  convCaseTests();

  test('results are bitwise reproducible for a fixed thread count', () => {
    const rng = new ref.Rng(55);
    const xs: Shape4 = [3, 9, 7, 5];
    const ws: Shape4 = [3, 3, 5, 6];
    const x = t(rng.array(ref.prod(xs)), xs);
    const w = t(rng.array(ref.prod(ws)), ws);
    const dy = t(rng.array(3 * 5 * 4 * 6), [3, 5, 4, 6]);
    const run = () => {
      const g = ck.ops.conv2dGrad(dy, x, w, { strides: 2, padding: 'same' });
      return [ck.ops.conv2d(x, w, { strides: 2, padding: 'same' }), g.dx, g.dw, g.db].map((r) => Array.from(vals(r)));
    };
    expect(run()).toEqual(run());
  });

  test('`dilations` (the tfjs name) is accepted like `dilation`', () => {
    const rng = new ref.Rng(77);
    const xs: Shape4 = [1, 7, 6, 2];
    const ws: Shape4 = [2, 2, 2, 3];
    const x = rng.array(ref.prod(xs));
    const w = rng.array(ref.prod(ws));
    const spec: ref.ConvSpec = { xShape: xs, wShape: ws, dilation: [3, 2], padding: 'same' };
    const y = ck.ops.conv2d(t(x, xs), t(w, ws), { dilations: [3, 2], padding: 'same' });
    ref.expectClose(vals(y), ref.conv2d(x, w, spec), { ...sumTol(8), name: 'conv2d dilations' });
  });

  test('zero padding: a constant image through a ones kernel counts the real cells under the window', () => {
    // Each 'same' output equals the number of in-image taps: 4 in the corners, 6 on the edges, 9 inside.
    const xs: Shape4 = [1, 4, 5, 1];
    const y = vals(ck.ops.conv2d(ck.ones(xs), ck.ones([3, 3, 1, 1]), { padding: 'same' }));
    expect(Array.from(y)).toEqual([4, 6, 6, 6, 4, 6, 9, 9, 9, 6, 6, 9, 9, 9, 6, 4, 6, 6, 6, 4]);
  });

  describe('finite differences', () => {
    const fdCases: ConvCase[] = [
      { name: 'same, strides [2,1], non-square kernel', x: [2, 4, 5, 3], w: [3, 2, 3, 2], strides: [2, 1], padding: 'same' },
      { name: 'valid, dilation 2, C=1', x: [1, 6, 5, 1], w: [2, 2, 1, 3], dilation: 2 },
    ];
    test.each(fdCases)('conv2dGrad dx, dw, db agree with central differences: $name', (c) => {
      const rng = new ref.Rng(31337);
      const spec = specOf(c);
      const g = ref.convGeometry(spec);
      const x = rng.array(ref.prod(c.x));
      const w = rng.array(ref.prod(c.w));
      const b = rng.array(c.w[3]);
      const r = rng.array(ref.prod(g.yShape)); // loss = sum(conv(x, w) * r)
      const loss = ([xi, wi, bi]: Float32Array[]): number =>
        ref.dot(ck.ops.conv2d(t(xi, c.x), t(wi, c.w), { ...optsOf(c), bias: t(bi, [c.w[3]]) }).dataSync(), r);
      const an = ck.ops.conv2dGrad(t(r, g.yShape), t(x, c.x), t(w, c.w), optsOf(c));
      // The loss is linear in each input, so a large step has no truncation error.
      const tol = { rtol: 1e-3, atol: 1e-3 };
      for (const [which, analytic, name] of [[0, an.dx, 'dx'], [1, an.dw, 'dw'], [2, an.db, 'db']] as const) {
        const fd = ref.finiteDiff(loss, [x, w, b], which, { eps: 0.25 });
        ref.expectClose(ref.gather(vals(analytic), fd.indices), fd.grad, { ...tol, name: `${name} vs finite differences` });
      }
    });

    test('denseGrad dx, dw, db agree with central differences', () => {
      const rng = new ref.Rng(4242);
      const [M, K, N] = [3, 7, 5];
      const x = rng.array(M * K);
      const w = rng.array(K * N);
      const b = rng.array(N);
      const r = rng.array(M * N);
      const loss = ([xi, wi, bi]: Float32Array[]): number =>
        ref.dot(ck.ops.dense(t(xi, [M, K]), t(wi, [K, N]), { bias: t(bi, [N]) }).dataSync(), r);
      const an = ck.ops.denseGrad(t(r, [M, N]), t(x, [M, K]), t(w, [K, N]));
      for (const [which, analytic, name] of [[0, an.dx, 'dx'], [1, an.dw, 'dw'], [2, an.db, 'db']] as const) {
        const fd = ref.finiteDiff(loss, [x, w, b], which, { eps: 0.25 });
        ref.expectClose(ref.gather(vals(analytic), fd.indices), fd.grad, { rtol: 1e-3, atol: 1e-3, name: `dense ${name} vs finite differences` });
      }
    });
  });
});

describeIsas('dense on the %s kernels', (isa) => {
  useIsa(isa);
  denseCaseTests();
});

// The kernels split work (and choose between GEMM and direct paths) by thread count.
describeIsaThreads('conv2d and dense on the %s kernels with %i thread(s)', (isa, threads) => {
  useIsa(isa);
  useThreads(threads);
  convCaseTests();
  denseCaseTests();
});
