// ck.ops.add / concatenate / concatenateGrad against plain-JS references on every ISA path,
// including the functional API's shapes (rank 2 and 4, vector tails, many parts), and typed
// errors for mismatched shapes.
import { describe, expect, test } from '@jest/globals';
import * as ck from '../lib';
import * as ref from '../test-support/reference';
import * as lref from '../test-support/reference-layers';
import { describeIsas, t, useIsa, vals } from '../test-support/isa';

const concatCases: { name: string; lead: number[]; widths: number[] }[] = [
  { name: 'two dense outputs [5,3] + [5,4]', lead: [5], widths: [3, 4] },
  { name: 'feature maps [2,3,3,16] + [2,3,3,17] + [2,3,3,1]', lead: [2, 3, 3], widths: [16, 17, 1] },
  { name: 'one part is a copy', lead: [4, 2], widths: [9] },
  { name: 'many parts, 1x1 images', lead: [3, 1, 1], widths: [1, 2, 3, 4, 5, 6, 7, 8] },
  { name: 'rank 1', lead: [], widths: [5, 2] },
];

describeIsas('merges on the %s kernels', (isa) => {
  useIsa(isa);

  test.each([[1], [7], [2, 3, 5, 17], [64, 33]])('add of shape %p', (...shape) => {
    const rng = new ref.Rng(ref.prod(shape));
    const a = rng.array(ref.prod(shape));
    const b = rng.array(ref.prod(shape));
    const y = ck.ops.add(t(a, shape), t(b, shape));
    expect(y.shape).toEqual(shape);
    expect(Array.from(vals(y))).toEqual(Array.from(a, (v, i) => Math.fround(v + b[i])));
  });

  test.each(concatCases)('concatenate and its gradient: $name', ({ lead, widths }) => {
    const rng = new ref.Rng(widths.length * 13 + lead.length);
    const rows = ref.prod(lead);
    const parts = widths.map((w) => rng.array(rows * w));
    const total = widths.reduce((a, b) => a + b, 0);
    const y = ck.ops.concatenate(parts.map((p, i) => t(p, [...lead, widths[i]])));
    expect(y.shape).toEqual([...lead, total]);
    expect(Array.from(vals(y))).toEqual(Array.from(lref.concatLast(parts, widths, rows)));
    const dy = rng.array(rows * total);
    const inputs = parts.map((p, i) => t(p, [...lead, widths[i]]));
    const dxs = ck.ops.concatenateGrad(t(dy, [...lead, total]), inputs, { axis: -1 });
    const want = lref.splitLast(dy, widths, rows);
    expect(dxs.map((d) => d.shape)).toEqual(widths.map((w) => [...lead, w]));
    dxs.forEach((d, i) => expect(Array.from(vals(d))).toEqual(Array.from(want[i])));
  });
});

describe('merge errors name the op and the shapes', () => {
  test('add needs equal shapes', () => {
    expect(() => ck.ops.add(ck.zeros([2, 3]), ck.zeros([3, 2]))).toThrow(/add: a \[2,3\] and b \[3,2\] must have the same shape/);
  });
  test('concatenate needs matching leading dimensions, the last axis and a non-empty array', () => {
    expect(() => ck.ops.concatenate([ck.zeros([2, 3, 4]), ck.zeros([2, 4, 4])])).toThrow(/concatenate: tensor 1 has shape \[2,4,4\]; every tensor must match \[2,3,4\]/);
    expect(() => ck.ops.concatenate([ck.zeros([2, 3]), ck.zeros([2, 3, 1])])).toThrow(ck.ShapeError);
    expect(() => ck.ops.concatenate([ck.zeros([2, 3]), ck.zeros([2, 3])], { axis: 0 })).toThrow(/only the last axis/);
    expect(() => ck.ops.concatenate([])).toThrow(ck.ValueError);
    expect(() => ck.ops.concatenate('x' as unknown as ck.Tensor[])).toThrow(ck.DTypeError);
    expect(() => ck.ops.concatenate([ck.zeros([2]), 'x' as unknown as ck.Tensor])).toThrow(/tensors\[1\] must be a Tensor/);
  });
  test('concatenateGrad needs dy of the concatenated shape', () => {
    expect(() => ck.ops.concatenateGrad(ck.zeros([2, 6]), [ck.zeros([2, 3]), ck.zeros([2, 4])])).toThrow(/concatenateGrad: dy must have the output shape \[2,7\], got \[2,6\]/);
  });
});
