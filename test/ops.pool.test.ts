// ck.ops max/avg/global pooling and their gradients against the plain-JS reference, on every ISA
// path this CPU supports, plus finite-difference checks of the gradients.
import { describe, expect, test } from '@jest/globals';
import * as ck from '../lib';
import * as ref from '../test-support/reference';
import { describeIsas, describeIsaThreads, t, useIsa, useThreads, vals } from '../test-support/isa';

type Shape4 = [number, number, number, number];
interface PoolCase {
  name: string;
  x: Shape4;
  poolSize?: number | [number, number];
  strides?: number | [number, number];
  padding?: 'valid' | 'same';
}

const fixedCases: PoolCase[] = [
  { name: 'defaults (2x2, stride = poolSize, valid)', x: [2, 6, 6, 3] },
  { name: '2x2 stride 2 valid, odd size drops the last row/col', x: [2, 7, 5, 3], poolSize: 2, strides: 2 },
  { name: '2x2 stride 2 same on 7x7 (the seed)', x: [1, 7, 7, 1], poolSize: 2, strides: 2, padding: 'same' },
  { name: '3x3 stride 2 same, overlapping windows', x: [2, 7, 9, 5], poolSize: 3, strides: 2, padding: 'same' },
  { name: '3x3 stride 1 same, C=17', x: [1, 5, 5, 17], poolSize: 3, strides: 1, padding: 'same' },
  { name: 'non-square [2,3] window, strides [1,2], same', x: [2, 6, 7, 4], poolSize: [2, 3], strides: [1, 2], padding: 'same' },
  { name: 'non-square [3,1] window, stride 1, valid', x: [1, 5, 4, 2], poolSize: [3, 1], strides: 1 },
  { name: '1x1 window is the identity', x: [1, 3, 3, 3], poolSize: 1, strides: 1 },
  { name: '1x1 image, 2x2 same', x: [2, 1, 1, 3], poolSize: 2, padding: 'same' },
  { name: 'window larger than the image, same', x: [1, 3, 2, 2], poolSize: 4, strides: 1, padding: 'same' },
  { name: 'stride larger than the window, valid', x: [1, 8, 8, 2], poolSize: 2, strides: 3 },
  { name: 'vector width C=32', x: [2, 8, 8, 32], poolSize: 2 },
  { name: 'odd C=33, 3x3 stride 2 same', x: [1, 9, 9, 33], poolSize: 3, strides: 2, padding: 'same' },
  { name: 'batch 3, C=1, 24x24 -> 12x12 (MNIST)', x: [3, 24, 24, 1], poolSize: 2 },
  { name: 'many channels C=100, 3x3 stride 1 same', x: [1, 5, 6, 100], poolSize: 3, strides: 1, padding: 'same' },
  { name: 'a 60000x60000 window, same: every window is the whole image', x: [2, 3, 3, 2], poolSize: 60000, strides: 1, padding: 'same' },
  { name: 'the largest stride (65536), same', x: [1, 4, 5, 3], poolSize: 2, strides: 65536, padding: 'same' },
];

function randomCases(seed: number, count: number): PoolCase[] {
  const rng = new ref.Rng(seed);
  const out: PoolCase[] = [];
  while (out.length < count) {
    const c: PoolCase = {
      name: '',
      x: [rng.int(1, 3), rng.int(1, 10), rng.int(1, 10), rng.pick([1, 2, 3, 7, 8, 16, 19])],
      poolSize: [rng.int(1, 4), rng.int(1, 4)],
      strides: [rng.int(1, 3), rng.int(1, 3)],
      padding: rng.pick(['valid', 'same'] as const),
    };
    const g = ref.poolGeometry({ xShape: c.x, poolSize: c.poolSize, strides: c.strides, padding: c.padding });
    if (g.P < 1 || g.Q < 1) continue;
    c.name = `random #${out.length}: x [${c.x}] pool [${c.poolSize}] strides [${c.strides}] ${c.padding}`;
    out.push(c);
  }
  return out;
}

const cases = [...fixedCases, ...randomCases(777, 12)];
const specOf = (c: PoolCase): ref.PoolSpec => ({ xShape: c.x, poolSize: c.poolSize, strides: c.strides, padding: c.padding });
const optsOf = (c: PoolCase): ck.ops.Pool2dOptions => ({ poolSize: c.poolSize, strides: c.strides, padding: c.padding });
const seedOf = (c: PoolCase): number => c.x.reduce((a, b) => a * 31 + b, 11) + JSON.stringify(c).length;
const tol = { rtol: 1e-5, atol: 1e-6 };

function poolCaseTests(): void {
  test.each(cases)('maxPool2d forward and gradient: $name', (c) => {
    const rng = new ref.Rng(seedOf(c));
    const spec = specOf(c);
    const g = ref.poolGeometry(spec);
    const x = rng.distinct(ref.prod(c.x), 0.01); // no ties: the gradient's target is unambiguous
    const y = ck.ops.maxPool2d(t(x, c.x), optsOf(c));
    expect(y.shape).toEqual(g.yShape);
    // A max is one of the inputs: exact.
    ref.expectClose(vals(y), ref.maxPool2d(x, spec), { rtol: 0, atol: 0, name: `maxPool2d ${c.name}`, shape: g.yShape });
    const dy = rng.array(ref.prod(g.yShape));
    const dx = ck.ops.maxPool2dGrad(t(dy, g.yShape), t(x, c.x), optsOf(c));
    expect(dx.shape).toEqual(c.x);
    ref.expectClose(vals(dx), ref.maxPool2dGrad(dy, x, spec), { ...tol, name: `maxPool2dGrad ${c.name}`, shape: c.x });
  });

  test.each(cases)('avgPool2d forward and gradient: $name', (c) => {
    const rng = new ref.Rng(seedOf(c) + 1);
    const spec = specOf(c);
    const g = ref.poolGeometry(spec);
    const x = rng.array(ref.prod(c.x));
    const y = ck.ops.avgPool2d(t(x, c.x), optsOf(c));
    expect(y.shape).toEqual(g.yShape);
    ref.expectClose(vals(y), ref.avgPool2d(x, spec), { ...tol, name: `avgPool2d ${c.name}`, shape: g.yShape });
    const dy = rng.array(ref.prod(g.yShape));
    const dx = ck.ops.avgPool2dGrad(t(dy, g.yShape), t(x, c.x), optsOf(c));
    expect(dx.shape).toEqual(c.x);
    ref.expectClose(vals(dx), ref.avgPool2dGrad(dy, spec), { ...tol, name: `avgPool2dGrad ${c.name}`, shape: c.x });
  });
}

// The kernels split work by thread count.
describeIsaThreads('pooling on the %s kernels with %i thread(s)', (isa, threads) => {
  useIsa(isa);
  useThreads(threads);
  poolCaseTests();
});

describeIsas('pooling on the %s kernels', (isa) => {
  useIsa(isa);
  poolCaseTests();

  test('max pooling pads with -inf: all-negative input under same padding never yields 0', () => {
    const xs: Shape4 = [2, 5, 5, 3];
    const rng = new ref.Rng(5);
    const x = Float32Array.from(rng.distinct(ref.prod(xs), 0.01), (v) => v - 10); // all in about [-10.4, -9.6]
    const spec: ref.PoolSpec = { xShape: xs, poolSize: 3, strides: 2, padding: 'same' };
    const y = vals(ck.ops.maxPool2d(t(x, xs), { poolSize: 3, strides: 2, padding: 'same' }));
    expect(y.every((v) => v < -9)).toBe(true);
    ref.expectClose(y, ref.maxPool2d(x, spec), { rtol: 0, atol: 0, name: 'maxPool2d negative' });
  });

  test('average pooling divides by the real cells only: a constant image stays constant under same padding', () => {
    const xs: Shape4 = [1, 5, 4, 3];
    const y = vals(ck.ops.avgPool2d(ck.fill(xs, 2.5), { poolSize: 3, strides: 2, padding: 'same' }));
    expect(y.length).toBe(1 * 3 * 2 * 3);
    ref.expectClose(y, new Float32Array(y.length).fill(2.5), { rtol: 1e-6, atol: 0, name: 'avgPool2d of a constant' });
  });

  test('avg pool of a 2x2 block averages the four cells', () => {
    const x = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]; // 4x4, C=1
    const y = vals(ck.ops.avgPool2d(t(x, [1, 4, 4, 1]), { poolSize: 2 }));
    expect(Array.from(y)).toEqual([3.5, 5.5, 11.5, 13.5]);
  });

  const globalShapes: Shape4[] = [[1, 1, 1, 1], [2, 3, 5, 7], [3, 4, 4, 17], [1, 9, 9, 33], [2, 12, 12, 32], [5, 40, 40, 3]];

  test.each(globalShapes)('globalAvgPool / globalMaxPool and gradients on [%i,%i,%i,%i]', (N, H, W, C) => {
    const xs: Shape4 = [N, H, W, C];
    const rng = new ref.Rng(N * 1000 + H * 100 + W * 10 + C);
    const x = rng.distinct(ref.prod(xs), 0.01);
    const HW = H * W;
    const dy = rng.array(N * C);

    const ya = ck.ops.globalAvgPool(t(x, xs));
    expect(ya.shape).toEqual([N, C]);
    ref.expectClose(vals(ya), ref.globalAvgPool(x, N, HW, C), { ...tol, name: 'globalAvgPool', shape: [N, C] });
    const dxa = ck.ops.globalAvgPoolGrad(t(dy, [N, C]), t(x, xs));
    expect(dxa.shape).toEqual(xs);
    ref.expectClose(vals(dxa), ref.globalAvgPoolGrad(dy, N, HW, C), { ...tol, name: 'globalAvgPoolGrad', shape: xs });

    const ym = ck.ops.globalMaxPool(t(x, xs));
    expect(ym.shape).toEqual([N, C]);
    ref.expectClose(vals(ym), ref.globalMaxPool(x, N, HW, C), { rtol: 0, atol: 0, name: 'globalMaxPool', shape: [N, C] });
    const dxm = ck.ops.globalMaxPoolGrad(t(dy, [N, C]), t(x, xs));
    expect(dxm.shape).toEqual(xs);
    ref.expectClose(vals(dxm), ref.globalMaxPoolGrad(dy, x, N, HW, C), { ...tol, name: 'globalMaxPoolGrad', shape: xs });
  });

  describe('finite differences', () => {
    const fdCases: PoolCase[] = [
      { name: '3x3 stride 2 same (overlapping, padded)', x: [2, 5, 6, 3], poolSize: 3, strides: 2, padding: 'same' },
      { name: '[2,3] strides [1,2] valid, C=1', x: [1, 4, 7, 1], poolSize: [2, 3], strides: [1, 2] },
    ];

    test.each(fdCases)('maxPool2dGrad agrees with central differences: $name', (c) => {
      const rng = new ref.Rng(99);
      const g = ref.poolGeometry(specOf(c));
      // Values 0.1 apart and a step of 0.02: no window's argmax changes under the perturbation.
      const x = rng.distinct(ref.prod(c.x), 0.1);
      const r = rng.array(ref.prod(g.yShape));
      const loss = ([xi]: Float32Array[]): number => ref.dot(ck.ops.maxPool2d(t(xi, c.x), optsOf(c)).dataSync(), r);
      const an = vals(ck.ops.maxPool2dGrad(t(r, g.yShape), t(x, c.x), optsOf(c)));
      const fd = ref.finiteDiff(loss, [x], 0, { eps: 0.02 });
      ref.expectClose(ref.gather(an, fd.indices), fd.grad, { rtol: 1e-3, atol: 1e-4, name: 'maxPool2dGrad vs finite differences', shape: c.x });
    });

    test.each(fdCases)('avgPool2dGrad agrees with central differences: $name', (c) => {
      const rng = new ref.Rng(98);
      const g = ref.poolGeometry(specOf(c));
      const x = rng.array(ref.prod(c.x));
      const r = rng.array(ref.prod(g.yShape));
      const loss = ([xi]: Float32Array[]): number => ref.dot(ck.ops.avgPool2d(t(xi, c.x), optsOf(c)).dataSync(), r);
      const an = vals(ck.ops.avgPool2dGrad(t(r, g.yShape), t(x, c.x), optsOf(c)));
      const fd = ref.finiteDiff(loss, [x], 0, { eps: 0.25 });
      ref.expectClose(ref.gather(an, fd.indices), fd.grad, { rtol: 1e-3, atol: 1e-4, name: 'avgPool2dGrad vs finite differences', shape: c.x });
    });

    test('global pool gradients agree with central differences', () => {
      const xs: Shape4 = [2, 3, 4, 5];
      const rng = new ref.Rng(97);
      const x = rng.distinct(ref.prod(xs), 0.1);
      const r = rng.array(2 * 5);
      for (const [fwd, grad, name] of [
        [ck.ops.globalAvgPool, ck.ops.globalAvgPoolGrad, 'globalAvgPoolGrad'],
        [ck.ops.globalMaxPool, ck.ops.globalMaxPoolGrad, 'globalMaxPoolGrad'],
      ] as const) {
        const loss = ([xi]: Float32Array[]): number => ref.dot(fwd(t(xi, xs)).dataSync(), r);
        const an = vals(grad(t(r, [2, 5]), t(x, xs)));
        const fd = ref.finiteDiff(loss, [x], 0, { eps: 0.02 });
        ref.expectClose(ref.gather(an, fd.indices), fd.grad, { rtol: 1e-3, atol: 1e-4, name: `${name} vs finite differences`, shape: xs });
      }
    });
  });
});
