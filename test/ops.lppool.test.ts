// ck.ops.lpPool2d / lpPool2dGrad against the plain-JS reference on every ISA path and thread
// count (norms 2, 1 and 3), the square root of avgPool2d(x^2) at p = 2, finite differences, the
// zero-window gradient, and typed errors.
import { describe, expect, test } from '@jest/globals';
import * as ck from '../lib';
import * as ref from '../test-support/reference';
import * as lref from '../test-support/reference-layers';
import { describeIsaThreads, t, useIsa, useThreads, vals } from '../test-support/isa';

type Shape4 = [number, number, number, number];
interface LpCase {
  name: string;
  x: Shape4;
  poolSize?: number | [number, number];
  strides?: number | [number, number];
  padding?: 'valid' | 'same';
}

const cases: LpCase[] = [
  { name: 'defaults (2x2, stride = poolSize, valid)', x: [2, 6, 6, 3] },
  { name: '3x3 stride 2 same: edge windows average their real cells', x: [2, 7, 9, 5], poolSize: 3, strides: 2, padding: 'same' },
  { name: 'non-square [2,3], strides [1,2], same, C=17', x: [1, 6, 7, 17], poolSize: [2, 3], strides: [1, 2], padding: 'same' },
  { name: '1x1 image, 2x2 same', x: [3, 1, 1, 4], poolSize: 2, padding: 'same' },
  { name: 'C=33, 3x3 stride 1 valid', x: [1, 5, 6, 33], poolSize: 3, strides: 1 },
  { name: 'window larger than the image, same', x: [1, 3, 2, 16], poolSize: 5, strides: 1, padding: 'same' },
];
const specOf = (c: LpCase): ref.PoolSpec => ({ xShape: c.x, poolSize: c.poolSize, strides: c.strides, padding: c.padding });
const optsOf = (c: LpCase, p?: number): ck.ops.LpPool2dOptions => ({ poolSize: c.poolSize, strides: c.strides, padding: c.padding, p });

describeIsaThreads('lpPool2d on the %s kernels with %i thread(s)', (isa, threads) => {
  useIsa(isa);
  useThreads(threads);
  for (const p of [2, 1, 3]) {
    test.each(cases)(`p = ${p}, forward and gradient: $name`, (c) => {
      const rng = new ref.Rng(ref.prod(c.x) + p);
      const x = rng.array(ref.prod(c.x));
      for (let i = 0; i < x.length; i += 7) x[i] = 0; // exact zeros: sign(0) = 0
      const g = ref.poolGeometry(specOf(c));
      const y = ck.ops.lpPool2d(t(x, c.x), optsOf(c, p));
      expect(y.shape).toEqual(g.yShape);
      ref.expectClose(vals(y), lref.lpPool2d(x, specOf(c), p), { rtol: 1e-5, atol: 1e-6, name: `lpPool2d p=${p} ${c.name}`, shape: g.yShape });
      const dy = rng.array(ref.prod(g.yShape));
      const dx = ck.ops.lpPool2dGrad(t(dy, g.yShape), t(x, c.x), optsOf(c, p));
      expect(dx.shape).toEqual(c.x);
      ref.expectClose(vals(dx), lref.lpPool2dGrad(dy, x, specOf(c), p), { rtol: 1e-4, atol: 1e-5, name: `lpPool2dGrad p=${p} ${c.name}`, shape: c.x });
    });
  }
});

describe('lpPool2d', () => {
  test.each(cases)('p = 2 (the default) is sqrt(avgPool2d(x^2)): $name', (c) => {
    const x = new ref.Rng(5).array(ref.prod(c.x));
    const sq = Float32Array.from(x, (v) => v * v);
    const avg = vals(ck.ops.avgPool2d(t(sq, c.x), optsOf(c)));
    ref.expectClose(vals(ck.ops.lpPool2d(t(x, c.x), optsOf(c))), avg.map(Math.sqrt), { rtol: 1e-5, atol: 1e-6, name: c.name });
  });

  test('a window of zeros has output 0 and gradient 0, never NaN', () => {
    const x = new Float32Array(2 * 4 * 4 * 3);
    x[0] = 1; // only the first window of image 0, channel 0 is non-zero
    const y = vals(ck.ops.lpPool2d(t(x, [2, 4, 4, 3]), { poolSize: 2 }));
    const dx = vals(ck.ops.lpPool2dGrad(ck.ones([2, 2, 2, 3]), t(x, [2, 4, 4, 3]), { poolSize: 2 }));
    expect(y[0]).toBeCloseTo(0.5, 6); // sqrt(1/4)
    expect(Array.from(y.slice(1)).every((v) => v === 0)).toBe(true);
    expect(dx[0]).toBeCloseTo(0.5, 6); // x / (cells * y) = 1 / (4 * 0.5)
    expect(Array.from(dx.slice(1)).every((v) => v === 0)).toBe(true);
  });

  test.each([2, 1, 3])('lpPool2dGrad agrees with central differences (p = %d)', (p) => {
    const c: LpCase = { name: '', x: [2, 5, 6, 3], poolSize: 3, strides: 2, padding: 'same' };
    const rng = new ref.Rng(77);
    const x = rng.arrayAwayFromZero(ref.prod(c.x), 0.2); // |x| has a kink at 0
    const g = ref.poolGeometry(specOf(c));
    const r = rng.array(ref.prod(g.yShape));
    const loss = ([xi]: Float32Array[]): number => ref.dot(ck.ops.lpPool2d(t(xi, c.x), optsOf(c, p)).dataSync(), r);
    const fd = ref.finiteDiff(loss, [x], 0, { eps: 1e-2 });
    const an = vals(ck.ops.lpPool2dGrad(t(r, g.yShape), t(x, c.x), optsOf(c, p)));
    ref.expectClose(ref.gather(an, fd.indices), fd.grad, { rtol: 2e-2, atol: 2e-3, name: `lpPool2dGrad p=${p} vs finite differences` });
  });

  test('errors name the op and the shapes', () => {
    expect(() => ck.ops.lpPool2d(ck.zeros([4, 4, 1]))).toThrow(/lpPool2d: input must have rank 4/);
    expect(() => ck.ops.lpPool2d(ck.zeros([1, 4, 4, 1]), { p: 0.5 })).toThrow(ck.ValueError);
    expect(() => ck.ops.lpPool2d(ck.zeros([1, 4, 4, 1]), { poolSize: 5 })).toThrow(/does not fit the 4x4 input/);
    expect(() => ck.ops.lpPool2dGrad(ck.zeros([1, 3, 2, 1]), ck.zeros([1, 4, 4, 1]))).toThrow(/lpPool2dGrad: dy must have the output shape \[1,2,2,1\], got \[1,3,2,1\]/);
  });
});

describe("Lp pooling's p: one rule for the op, the layer and the executor", () => {
  const x = ck.tensor(Array.from({ length: 16 }, (_, i) => i / 8 - 1), [1, 4, 4, 1]);

  test.each([0.5, 1e6 + 1, Infinity, NaN])('p = %p: ValueError from the op and from the layer', (p) => {
    expect(() => ck.ops.lpPool2d(x, { p })).toThrow(ck.ValueError);
    expect(() => ck.layers.lpPooling2d({ p })).toThrow(ck.ValueError);
    if (Number.isFinite(p)) expect(() => ck.layers.lpPooling2d({ p })).toThrow(/p must be a number in \[1, 1000000\]/);
  });

  test.each([1, 2, 1e6])('p = %p: the op and a model with the layer agree', async (p) => {
    const model = ck.sequential([ck.layers.input({ shape: [4, 4, 1] }), ck.layers.lpPooling2d({ p, poolSize: 2 })]);
    const fromModel = await (model.predictOnBatch(x) as ck.Tensor).data();
    const fromOp = await ck.ops.lpPool2d(x, { p, poolSize: [2, 2] }).data();
    expect(Array.from(fromModel)).toEqual(Array.from(fromOp));
  });
});
