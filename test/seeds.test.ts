// The seed tutorials' worked examples (convolution of the 'X' image, ReLU, max pooling, the edge
// filter, the 4x4 max-pooling example, output-size arithmetic), through ck.ops on every ISA path.
import { describe, expect, test } from '@jest/globals';
import * as ck from '../lib';
import * as ref from '../test-support/reference';
import { describeIsas, t, useIsa, vals } from '../test-support/isa';

// The 9x9 'X' of +1 on -1 and the 3x3 feature with +1 on its main diagonal, -1 elsewhere.
const X_IMAGE = [
  [-1, -1, -1, -1, -1, -1, -1, -1, -1],
  [-1, 1, -1, -1, -1, -1, -1, 1, -1],
  [-1, -1, 1, -1, -1, -1, 1, -1, -1],
  [-1, -1, -1, 1, -1, 1, -1, -1, -1],
  [-1, -1, -1, -1, 1, -1, -1, -1, -1],
  [-1, -1, -1, 1, -1, 1, -1, -1, -1],
  [-1, -1, 1, -1, -1, -1, 1, -1, -1],
  [-1, 1, -1, -1, -1, -1, -1, 1, -1],
  [-1, -1, -1, -1, -1, -1, -1, -1, -1],
];
const DIAGONAL = [
  [1, -1, -1],
  [-1, 1, -1],
  [-1, -1, 1],
];
// The tutorial's filtered image: the values to two decimals, cut off (7/9 = 0.777... reads 0.77).
const SEED_MAP = [
  [0.77, -0.11, 0.11, 0.33, 0.55, -0.11, 0.33],
  [-0.11, 1.0, -0.11, 0.33, -0.11, 0.11, -0.11],
  [0.11, -0.11, 1.0, -0.33, 0.11, -0.11, 0.55],
  [0.33, 0.33, -0.33, 0.55, -0.33, 0.33, 0.33],
  [0.55, -0.11, 0.11, -0.33, 1.0, -0.11, 0.11],
  [-0.11, 0.11, -0.11, 0.33, -0.11, 1.0, -0.11],
  [0.33, -0.11, 0.55, 0.33, 0.11, -0.11, 0.77],
];
// Its 2x2 stride-2 max pooling (after ReLU), 7x7 -> 4x4.
const SEED_POOLED = [
  [1.0, 0.33, 0.55, 0.33],
  [0.33, 1.0, 0.33, 0.55],
  [0.55, 0.33, 1.0, 0.11],
  [0.33, 0.55, 0.11, 0.77],
];

const flat = (m: number[][]): number[] => m.flat();
const twoDecimals = (v: number): number => Math.trunc(v * 100) / 100;
const rows = (a: ArrayLike<number>, w: number): number[][] =>
  Array.from({ length: a.length / w }, (_, r) => Array.from(a).slice(r * w, r * w + w));

describeIsas('seed examples on the %s kernels', (isa) => {
  useIsa(isa);

  /** conv(X, diagonal) / 9 as a [1,7,7,1] tensor. */
  const featureMap = (): ck.Tensor => {
    const y = ck.ops.conv2d(t(flat(X_IMAGE), [1, 9, 9, 1]), t(flat(DIAGONAL), [3, 3, 1, 1]));
    const v = Float32Array.from(vals(y), (s) => s / 9);
    return t(v, y.shape);
  };

  test("the 'X' convolved with the diagonal feature, divided by its 9 pixels, is the tutorial's 7x7 map", () => {
    const m = featureMap();
    expect(m.shape).toEqual([1, 7, 7, 1]);
    const v = vals(m);
    // Before the division: sums of nine products of +-1, odd integers, exact in float32.
    const sums = vals(ck.ops.conv2d(t(flat(X_IMAGE), [1, 9, 9, 1]), t(flat(DIAGONAL), [3, 3, 1, 1])));
    expect(sums.every((s) => Number.isInteger(s) && Math.abs(s % 2) === 1)).toBe(true);
    expect(Array.from(sums.slice(0, 7))).toEqual([7, -1, 1, 3, 5, -1, 3]);
    // First row: 0.77 -0.11 0.11 0.33 0.55 -0.11 0.33.
    expect(Array.from(v.slice(0, 7), twoDecimals)).toEqual([0.77, -0.11, 0.11, 0.33, 0.55, -0.11, 0.33]);
    expect(rows(Array.from(v, twoDecimals), 7)).toEqual(SEED_MAP);
    // And the reference agrees.
    const want = ref.conv2d(flat(X_IMAGE), flat(DIAGONAL), { xShape: [1, 9, 9, 1], wShape: [3, 3, 1, 1] }).map((s) => s / 9);
    ref.expectClose(v, want, { rtol: 1e-6, atol: 1e-7, name: 'X feature map', shape: [7, 7] });
  });

  test('ReLU zeroes the negatives of the map and keeps the rest', () => {
    const m = featureMap();
    const before = vals(m);
    const r = vals(ck.ops.relu(m));
    for (let i = 0; i < before.length; i++) expect(r[i]).toBe(before[i] > 0 ? before[i] : 0);
    expect(Array.from(r.slice(0, 7), twoDecimals)).toEqual([0.77, 0, 0.11, 0.33, 0.55, 0, 0.33]);
    expect(r.filter((x) => x < 0).length).toBe(0);
    expect(r.filter((x) => x === 0).length).toBe(before.filter((x) => x <= 0).length);
  });

  test("2x2 max pooling with stride 2 and 'same' padding turns the 7x7 map into the tutorial's 4x4", () => {
    const relu = ck.ops.relu(featureMap());
    const p = ck.ops.maxPool2d(relu, { poolSize: 2, strides: 2, padding: 'same' });
    expect(p.shape).toEqual([1, 4, 4, 1]);
    const v = vals(p);
    ref.expectClose(v, ref.maxPool2d(vals(relu), { xShape: [1, 7, 7, 1], poolSize: 2, strides: 2, padding: 'same' }), { rtol: 0, atol: 0, name: 'pooled X' });
    expect(rows(Array.from(v, twoDecimals), 4)).toEqual(SEED_POOLED);
    // 'valid' would drop the last row and column instead: 3x3.
    expect(ck.ops.maxPool2d(relu, { poolSize: 2, strides: 2 }).shape).toEqual([1, 3, 3, 1]);
  });

  test('the edge-detection kernel on the 3x3 patch gives 175', () => {
    const patch = [150, 45, 25, 250, 200, 80, 215, 250, 235];
    const kernel = [0, -1, 0, -1, 4, -1, 0, -1, 0];
    const y = ck.ops.conv2d(t(patch, [1, 3, 3, 1]), t(kernel, [3, 3, 1, 1]));
    expect(y.shape).toEqual([1, 1, 1, 1]);
    expect(vals(y)[0]).toBe(175);
  });

  test('2x2 stride-2 max pooling of the 4x4 example gives [[792,856],[913,851]]', () => {
    const x = [429, 505, 686, 856, 261, 792, 412, 640, 633, 653, 851, 751, 608, 913, 713, 657];
    const y = ck.ops.maxPool2d(t(x, [1, 4, 4, 1]), { poolSize: 2, strides: 2 });
    expect(y.shape).toEqual([1, 2, 2, 1]);
    expect(Array.from(vals(y))).toEqual([792, 856, 913, 851]);
  });

  test('ten 3x3x3 filters on a 32x32x3 image with no padding give 30x30x10, as ((W-F+2P)/S)+1 says', () => {
    const [W, F, P, S] = [32, 3, 0, 1];
    const side = (W - F + 2 * P) / S + 1;
    expect(side).toBe(30);
    const rng = new ref.Rng(32);
    const x = t(rng.array(32 * 32 * 3), [1, 32, 32, 3]);
    const y = ck.ops.conv2d(x, t(rng.array(3 * 3 * 3 * 10), [3, 3, 3, 10]), { strides: S, padding: 'valid' });
    expect(y.shape).toEqual([1, side, side, 10]);
    // The tutorial's other example: ten 5x5x3 filters with valid padding give 28x28x10.
    expect(ck.ops.conv2d(x, ck.zeros([5, 5, 3, 10])).shape).toEqual([1, 28, 28, 10]);
  });

  test("'same' zero padding keeps the 6x6 image 6x6 and its middle 4x4 equals the 'valid' result", () => {
    const image = [
      18, 54, 51, 239, 244, 188, 55, 121, 75, 78, 95, 88, 35, 24, 204, 113, 109, 221,
      3, 154, 104, 235, 25, 130, 15, 253, 225, 159, 78, 233, 68, 85, 180, 214, 245, 0,
    ];
    const w = [1, 0, 1, 0, 1, 0, 1, 0, 1];
    const same = vals(ck.ops.conv2d(t(image, [1, 6, 6, 1]), t(w, [3, 3, 1, 1]), { padding: 'same' }));
    const valid = vals(ck.ops.conv2d(t(image, [1, 6, 6, 1]), t(w, [3, 3, 1, 1])));
    expect(same.length).toBe(36);
    expect(valid.length).toBe(16);
    const middle = rows(same, 6).slice(1, 5).map((r) => r.slice(1, 5));
    expect(middle).toEqual(rows(valid, 4));
    // The zero border: the top-left output sees only 18, 121 (centre and diagonal neighbour).
    expect(same[0]).toBe(18 + 121);
    ref.expectClose(same, ref.conv2d(image, w, { xShape: [1, 6, 6, 1], wShape: [3, 3, 1, 1], padding: 'same' }), { rtol: 0, atol: 0, name: 'same conv' });
  });

  test("the MNIST model's shapes: 28x28x1 -> 24x24x32 -> 12x12x32 -> 8x8x64 -> 4x4x64 -> 1024 -> 10", () => {
    const rng = new ref.Rng(28);
    const x = t(rng.array(28 * 28), [1, 28, 28, 1]);
    const w1 = t(rng.array(5 * 5 * 1 * 32, -0.2, 0.2), [5, 5, 1, 32]);
    const w2 = t(rng.array(5 * 5 * 32 * 64, -0.05, 0.05), [5, 5, 32, 64]);
    const c1 = ck.ops.conv2d(x, w1, { bias: ck.zeros([32]), activation: 'relu' });
    expect(c1.shape).toEqual([1, 24, 24, 32]);
    const p1 = ck.ops.maxPool2d(c1, { poolSize: 2 });
    expect(p1.shape).toEqual([1, 12, 12, 32]);
    const c2 = ck.ops.conv2d(p1, w2, { bias: ck.zeros([64]), activation: 'relu' });
    expect(c2.shape).toEqual([1, 8, 8, 64]);
    const p2 = ck.ops.maxPool2d(c2, { poolSize: 2 });
    expect(p2.shape).toEqual([1, 4, 4, 64]);
    const f = p2.reshape([1, -1]);
    expect(f.shape).toEqual([1, 1024]);
    const probs = ck.ops.softmax(ck.ops.dense(f, t(rng.array(1024 * 10, -0.05, 0.05), [1024, 10]), { bias: ck.zeros([10]) }));
    expect(probs.shape).toEqual([1, 10]);
    expect(vals(probs).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    // The tutorial's parameter counts: 32*(25+1) = 832, ((5*5*32)+1)*64 = 51264, 1024*10+10 = 10250.
    expect(w1.size + 32).toBe(832);
    expect(w2.size + 64).toBe(51264);
    expect(1024 * 10 + 10).toBe(10250);
  });
});
