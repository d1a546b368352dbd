// ck.ops.zeroPadding2d / upSampling2d and their gradients against plain-JS references on every
// ISA path, against TensorFlow.js (tf.image.resizeBilinear with half-pixel centres as Keras's
// UpSampling2D samples, tf.layers.upSampling2d and tf.layers.zeroPadding2d), finite differences,
// and typed errors.
import { beforeAll, describe, expect, test } from '@jest/globals';
import * as tf from '@tensorflow/tfjs';
import * as ck from '../lib';
import * as ref from '../test-support/reference';
import * as lref from '../test-support/reference-layers';
import { describeIsas, t, useIsa, useThreads, vals } from '../test-support/isa';

type Shape4 = [number, number, number, number];

interface PadCase {
  name: string;
  x: Shape4;
  padding?: ck.ops.ZeroPadding;
  want: [number, number, number, number];
}
const padCases: PadCase[] = [
  { name: 'default (1 all round)', x: [2, 3, 4, 3], want: [1, 1, 1, 1] },
  { name: '[rows, cols]', x: [1, 5, 2, 17], padding: [2, 3], want: [2, 2, 3, 3] },
  { name: '[[top, bottom], [left, right]]', x: [2, 4, 4, 8], padding: [[0, 2], [3, 1]], want: [0, 2, 3, 1] },
  { name: '0 is the identity', x: [1, 3, 3, 2], padding: 0, want: [0, 0, 0, 0] },
  { name: '1x1 image', x: [3, 1, 1, 33], padding: [[1, 0], [0, 2]], want: [1, 0, 0, 2] },
];

interface UpCase {
  name: string;
  x: Shape4;
  size?: number | [number, number];
  interpolation?: 'nearest' | 'bilinear';
  halfPixelCenters?: boolean;
}
const upCases: UpCase[] = [];
for (const interpolation of ['nearest', 'bilinear'] as const) {
  for (const halfPixelCenters of [true, false]) {
    if (interpolation === 'nearest' && !halfPixelCenters) continue;
    const tag = `${interpolation}${interpolation === 'bilinear' ? (halfPixelCenters ? ' (half-pixel)' : ' (legacy)') : ''}`;
    upCases.push(
      { name: `${tag}, default size 2`, x: [2, 3, 4, 3], interpolation, halfPixelCenters },
      { name: `${tag}, size [3,1], C=17`, x: [1, 5, 3, 17], size: [3, 1], interpolation, halfPixelCenters },
      { name: `${tag}, size [1,4], 1x1 image`, x: [2, 1, 1, 5], size: [1, 4], interpolation, halfPixelCenters },
      { name: `${tag}, size 5, C=33`, x: [1, 2, 3, 33], size: 5, interpolation, halfPixelCenters },
    );
  }
}
const upSpec = (c: UpCase): lref.UpSpec => {
  const [sh, sw] = c.size === undefined ? [2, 2] : typeof c.size === 'number' ? [c.size, c.size] : c.size;
  return { xShape: c.x, size: [sh, sw], interpolation: c.interpolation ?? 'nearest', halfPixelCenters: c.halfPixelCenters };
};
const upOpts = (c: UpCase): ck.ops.UpSampling2dOptions => ({ size: c.size, interpolation: c.interpolation, halfPixelCenters: c.halfPixelCenters });
const upShape = (c: UpCase): Shape4 => {
  const s = upSpec(c);
  return [c.x[0], c.x[1] * s.size[0], c.x[2] * s.size[1], c.x[3]];
};
const tol = { rtol: 1e-5, atol: 1e-6 };

describeIsas('zero padding and up-sampling on the %s kernels', (isa) => {
  useIsa(isa);
  for (const threads of [1, 3]) {
    describe(`${threads} thread(s)`, () => {
      useThreads(threads);
      test.each(padCases)('zeroPadding2d and its gradient: $name', (c) => {
        const rng = new ref.Rng(ref.prod(c.x));
        const x = rng.array(ref.prod(c.x));
        const y = ck.ops.zeroPadding2d(t(x, c.x), { padding: c.padding });
        const [top, bottom, left, right] = c.want;
        const ys: Shape4 = [c.x[0], c.x[1] + top + bottom, c.x[2] + left + right, c.x[3]];
        expect(y.shape).toEqual(ys);
        expect(Array.from(vals(y))).toEqual(Array.from(lref.zeroPadding2d(x, c.x, c.want))); // copies: exact
        const dy = rng.array(ref.prod(ys));
        const dx = ck.ops.zeroPadding2dGrad(t(dy, ys), t(x, c.x), { padding: c.padding });
        expect(Array.from(vals(dx))).toEqual(Array.from(lref.zeroPadding2dGrad(dy, c.x, c.want)));
      });

      test.each(upCases)('upSampling2d and its gradient: $name', (c) => {
        const rng = new ref.Rng(ref.prod(c.x) + 3);
        const x = rng.array(ref.prod(c.x));
        const ys = upShape(c);
        const y = ck.ops.upSampling2d(t(x, c.x), upOpts(c));
        expect(y.shape).toEqual(ys);
        ref.expectClose(vals(y), lref.upSampling2d(x, upSpec(c)), { ...tol, name: `upSampling2d ${c.name}`, shape: ys });
        const dy = rng.array(ref.prod(ys));
        const dx = ck.ops.upSampling2dGrad(t(dy, ys), t(x, c.x), upOpts(c));
        const s = upSpec(c);
        const terms = s.size[0] * s.size[1];
        ref.expectClose(vals(dx), lref.upSampling2dGrad(dy, s), { rtol: 1e-5, atol: 1e-6 * terms, name: `upSampling2dGrad ${c.name}`, shape: c.x });
      });
    });
  }
});

describe('agreement with TensorFlow.js', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
    await tf.ready();
  });

  test.each(upCases.filter((c) => c.interpolation === 'bilinear' && c.halfPixelCenters))(
    'bilinear (default) matches tf.image.resizeBilinear with half-pixel centres, as Keras samples: $name', (c) => {
      const rng = new ref.Rng(90);
      const x = rng.array(ref.prod(c.x));
      const ys = upShape(c);
      const want = tf.tidy(() => tf.image.resizeBilinear(tf.tensor4d(x, c.x), [ys[1], ys[2]], false, true).dataSync());
      ref.expectClose(vals(ck.ops.upSampling2d(t(x, c.x), upOpts(c))), want, { ...tol, name: c.name });
    });

  test.each(upCases.filter((c) => c.interpolation === 'nearest' || !c.halfPixelCenters))(
    'matches tf.layers.upSampling2d (nearest; bilinear with halfPixelCenters false): $name', (c) => {
      const rng = new ref.Rng(91);
      const x = rng.array(ref.prod(c.x));
      const s = upSpec(c);
      const layer = tf.layers.upSampling2d({ size: s.size, interpolation: s.interpolation });
      const want = tf.tidy(() => (layer.apply(tf.tensor4d(x, c.x)) as tf.Tensor).dataSync());
      ref.expectClose(vals(ck.ops.upSampling2d(t(x, c.x), upOpts(c))), want, { ...tol, name: c.name });
    });

  test.each(padCases)('zeroPadding2d matches tf.layers.zeroPadding2d: $name', (c) => {
    const x = new ref.Rng(92).array(ref.prod(c.x));
    const [top, bottom, left, right] = c.want;
    const layer = tf.layers.zeroPadding2d({ padding: [[top, bottom], [left, right]] });
    const want = tf.tidy(() => (layer.apply(tf.tensor4d(x, c.x)) as tf.Tensor).dataSync());
    expect(Array.from(vals(ck.ops.zeroPadding2d(t(x, c.x), { padding: c.padding })))).toEqual(Array.from(want));
  });
});

describe('finite differences', () => {
  test.each([
    { name: 'bilinear size [3,2]', x: [1, 3, 4, 2] as Shape4, size: [3, 2] as [number, number], interpolation: 'bilinear' as const },
    { name: 'nearest size 2', x: [2, 2, 3, 3] as Shape4, size: 2, interpolation: 'nearest' as const },
  ])('upSampling2dGrad agrees with central differences: $name', (c) => {
    const rng = new ref.Rng(93);
    const x = rng.array(ref.prod(c.x));
    const ys = upShape(c);
    const r = rng.array(ref.prod(ys));
    const loss = ([xi]: Float32Array[]): number => ref.dot(ck.ops.upSampling2d(t(xi, c.x), upOpts(c)).dataSync(), r);
    const fd = ref.finiteDiff(loss, [x], 0, { eps: 0.25 }); // linear: no truncation error
    const an = vals(ck.ops.upSampling2dGrad(t(r, ys), t(x, c.x), upOpts(c)));
    ref.expectClose(ref.gather(an, fd.indices), fd.grad, { rtol: 1e-3, atol: 1e-3, name: `${c.name} vs finite differences` });
  });

  test('zeroPadding2dGrad agrees with central differences', () => {
    const xs: Shape4 = [1, 3, 2, 2];
    const rng = new ref.Rng(94);
    const x = rng.array(ref.prod(xs));
    const r = rng.array(1 * 6 * 6 * 2);
    const opts = { padding: [[1, 2], [3, 1]] as [[number, number], [number, number]] };
    const loss = ([xi]: Float32Array[]): number => ref.dot(ck.ops.zeroPadding2d(t(xi, xs), opts).dataSync(), r);
    const fd = ref.finiteDiff(loss, [x], 0, { eps: 0.25 });
    const an = vals(ck.ops.zeroPadding2dGrad(t(r, [1, 6, 6, 2]), t(x, xs), opts));
    ref.expectClose(ref.gather(an, fd.indices), fd.grad, { rtol: 1e-3, atol: 1e-3, name: 'zeroPadding2dGrad vs finite differences' });
  });
});

describe('errors name the op and the shapes', () => {
  test('input of the wrong rank', () => {
    expect(() => ck.ops.zeroPadding2d(ck.zeros([3, 4, 2]))).toThrow(/zeroPadding2d: input must have rank 4 .*\[3,4,2\]/);
    expect(() => ck.ops.upSampling2d(ck.zeros([3, 4]))).toThrow(ck.ShapeError);
  });
  test('dy of the wrong shape', () => {
    expect(() => ck.ops.zeroPadding2dGrad(ck.zeros([1, 4, 4, 2]), ck.zeros([1, 3, 3, 2]))).toThrow(/zeroPadding2dGrad: dy must have the output shape \[1,5,5,2\], got \[1,4,4,2\]/);
    expect(() => ck.ops.upSampling2dGrad(ck.zeros([1, 6, 5, 2]), ck.zeros([1, 3, 3, 2]))).toThrow(/upSampling2dGrad: dy must have the output shape \[1,6,6,2\]/);
  });
  test('bad options', () => {
    expect(() => ck.ops.zeroPadding2d(ck.zeros([1, 3, 3, 1]), { padding: -1 })).toThrow(ck.ValueError);
    expect(() => ck.ops.zeroPadding2d(ck.zeros([1, 3, 3, 1]), { padding: [1, 2, 3] as unknown as [number, number] })).toThrow(ck.ValueError);
    expect(() => ck.ops.upSampling2d(ck.zeros([1, 3, 3, 1]), { size: 0 })).toThrow(ck.ValueError);
    expect(() => ck.ops.upSampling2d(ck.zeros([1, 3, 3, 1]), { interpolation: 'bicubic' as 'nearest' })).toThrow(/interpolation must be 'nearest' or 'bilinear'/);
  });
  test('outputs too large are refused before anything is allocated', () => {
    expect(() => ck.ops.upSampling2d(ck.zeros([1, 300, 300, 1]), { size: 60000 })).toThrow(ck.ShapeError);
    expect(() => ck.ops.zeroPadding2d(ck.zeros([1, 3, 3, 1]), { padding: 16777215 })).toThrow(ck.ShapeError);
  });
});
