import { describe, expect, test } from '@jest/globals';
import * as ck from '../lib';

// Sparse class ids outside [0, classes) are rejected (as Keras does) when the loss runs, since
// the ids are only read on the stream; the rejection names the op, the row and the range.
describe('softmaxCrossEntropy with sparse labels', () => {
  const logits = ck.tensor([[1, 2, 3], [0, 0, 1]]);
  test.each([[3], [-1], [1.5], [1e9]])('rejects the class id %p', async (bad) => {
    const r = ck.ops.softmaxCrossEntropy(logits, ck.tensor([0, bad]), { sparse: true });
    await expect(r.loss.data()).rejects.toThrow(/softmaxCrossEntropy: label .* at row 1 is not a class id in \[0, 3\)/);
    await expect(r.grad.data()).rejects.toBeInstanceOf(ck.ConvkitError);
  });

  test('accepts valid ids and matches the log-softmax', async () => {
    const r = ck.ops.softmaxCrossEntropy(logits, ck.tensor([2, 0]), { sparse: true });
    const loss = await r.loss.data();
    const lse = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3));
    expect(loss[0]).toBeCloseTo(lse - 3, 5);
    expect(loss[1]).toBeCloseTo(Math.log(2 + Math.E) - 0, 5);
  });
});
