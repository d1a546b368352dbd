// Bad input gives typed errors (ShapeError / DTypeError / ValueError / DeviceError, all
// ConvkitError) whose messages name the op and the shapes; nothing reachable from JS crashes.
import { describe, expect, test } from '@jest/globals';
import { spawnSync } from 'child_process';
import * as path from 'path';
import * as ck from '../lib';

type ErrorClass = typeof ck.ShapeError;

/** Runs fn, expecting an error of class `cls` (and ConvkitError) whose message has every fragment. */
function expectError(fn: () => unknown, cls: ErrorClass, ...fragments: string[]): Error {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  if (thrown === undefined) throw new Error(`expected ${cls.name} (${fragments.join(', ')}), but nothing was thrown`);
  if (!(thrown instanceof cls)) {
    throw new Error(`expected ${cls.name}, got ${(thrown as Error)?.constructor?.name}: ${(thrown as Error)?.message ?? String(thrown)}`);
  }
  expect(thrown).toBeInstanceOf(ck.ConvkitError);
  expect(thrown).toBeInstanceOf(Error);
  const err = thrown as Error;
  expect(err.name).toBe(cls.name);
  for (const f of fragments) expect(err.message).toContain(f);
  return err;
}

async function expectRejection(p: () => Promise<unknown>, cls: ErrorClass, ...fragments: string[]): Promise<void> {
  let thrown: unknown;
  try {
    await p();
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(cls);
  expect(thrown).toBeInstanceOf(ck.ConvkitError);
  for (const f of fragments) expect((thrown as Error).message).toContain(f);
}

const x4 = (shape = [1, 5, 5, 3]): ck.Tensor => ck.ones(shape);

describe('error classes', () => {
  test('form a hierarchy under ConvkitError with their own names', () => {
    for (const cls of [ck.ShapeError, ck.DTypeError, ck.ValueError, ck.DeviceError, ck.FormatError]) {
      const e = new cls('msg');
      expect(e).toBeInstanceOf(ck.ConvkitError);
      expect(e).toBeInstanceOf(Error);
      expect(e.name).toBe(cls.name);
      expect(e.message).toBe('msg');
    }
    expect(new ck.ShapeError('x')).not.toBeInstanceOf(ck.ValueError);
  });
});

describe('conv2d', () => {
  test('wrong input rank names the op and the shape', () => {
    expectError(() => ck.ops.conv2d(ck.ones([5, 5, 3]), ck.ones([3, 3, 3, 2])), ck.ShapeError, 'conv2d', 'rank 4', '[5,5,3]');
  });
  test('wrong filter rank names the op and the shape', () => {
    expectError(() => ck.ops.conv2d(x4(), ck.ones([3, 3, 3])), ck.ShapeError, 'conv2d', 'filter', '[3,3,3]');
  });
  test('mismatched channels name both shapes', () => {
    expectError(() => ck.ops.conv2d(x4(), ck.ones([3, 3, 4, 2])), ck.ShapeError, 'conv2d', '[1,5,5,3]', '[3,3,4,2]');
  });
  test('a filter larger than a valid-padded input names both shapes', () => {
    expectError(() => ck.ops.conv2d(ck.ones([1, 2, 2, 1]), ck.ones([3, 3, 1, 1])), ck.ShapeError, 'conv2d', '[1,2,2,1]', '[3,3,1,1]');
    expectError(() => ck.ops.conv2d(ck.ones([1, 5, 5, 1]), ck.ones([3, 3, 1, 1]), { dilation: 3 }), ck.ShapeError, 'conv2d', 'dilation');
    // a dilated window wider than 2^30 pixels would overflow the kernels' 32-bit tap offsets
    expectError(() => ck.ops.conv2d(ck.ones([1, 1, 3, 1]), ck.ones([1, 40001, 1, 1]), { dilations: [1, 65536], padding: 'same' }),
      ck.ValueError, 'conv2d', '40001-tap window dilated by 65536');
  });
  test('zero-sized dimensions are rejected', () => {
    expectError(() => ck.ops.conv2d(ck.zeros([0, 5, 5, 3]), ck.ones([3, 3, 3, 2])), ck.ShapeError, 'conv2d', '[0,5,5,3]');
    expectError(() => ck.ops.conv2d(x4(), ck.zeros([3, 3, 3, 0])), ck.ShapeError, 'conv2d', '[3,3,3,0]');
    expectError(() => ck.ops.conv2d(ck.zeros([1, 5, 0, 3]), ck.ones([1, 1, 3, 2]), { padding: 'same' }), ck.ShapeError, 'conv2d', '[1,5,0,3]');
  });
  test('a bias of the wrong shape names it', () => {
    expectError(() => ck.ops.conv2d(x4(), ck.ones([3, 3, 3, 2]), { bias: ck.ones([3]) }), ck.ShapeError, 'conv2d', 'bias', '[3]');
    expectError(() => ck.ops.conv2d(x4(), ck.ones([3, 3, 3, 2]), { bias: ck.ones([1, 2]) }), ck.ShapeError, 'conv2d', 'bias', '[1,2]');
  });
  test.each([0, -1, 1.5, NaN, Infinity, '2', [1], [1, 2, 3], [1, 0], null, {}])('strides %p is a ValueError', (s) => {
    expectError(() => ck.ops.conv2d(x4(), ck.ones([3, 3, 3, 2]), { strides: s as never }), ck.ValueError, 'conv2d', 'strides');
  });
  test.each([0, -2, 2.5, NaN, [2, NaN]])('dilation %p is a ValueError', (d) => {
    expectError(() => ck.ops.conv2d(x4(), ck.ones([3, 3, 3, 2]), { dilation: d as never }), ck.ValueError, 'conv2d', 'dilation');
  });
  test.each(['SAME', 'full', '', 1, null])('padding %p is a ValueError', (p) => {
    expectError(() => ck.ops.conv2d(x4(), ck.ones([3, 3, 3, 2]), { padding: p as never }), ck.ValueError, 'conv2d', 'padding');
  });
  test('an activation other than linear/relu, or options that are not an object, are ValueErrors', () => {
    expectError(() => ck.ops.conv2d(x4(), ck.ones([3, 3, 3, 2]), { activation: 'sigmoid' as never }), ck.ValueError, 'conv2d', 'activation');
    expectError(() => ck.ops.conv2d(x4(), ck.ones([3, 3, 3, 2]), 5 as never), ck.ValueError, 'conv2d', 'options');
    expectError(() => ck.ops.conv2d(x4(), ck.ones([3, 3, 3, 2]), [] as never), ck.ValueError, 'conv2d', 'options');
  });
  test.each([
    ['a string', 'abc'],
    ['an object', {}],
    ['null', null],
    ['undefined', undefined],
    ['a Float32Array', new Float32Array(75)],
    ['a number array', [1, 2, 3]],
  ])('x as %s is a DTypeError naming the op and the argument', (_label, bad) => {
    expectError(() => ck.ops.conv2d(bad as never, ck.ones([3, 3, 3, 2])), ck.DTypeError, 'conv2d', 'x');
    expectError(() => ck.ops.conv2d(x4(), bad as never), ck.DTypeError, 'conv2d', 'filter');
  });
  test('conv2dGrad: dy of the wrong shape names the expected output shape', () => {
    expectError(() => ck.ops.conv2dGrad(ck.ones([1, 5, 5, 2]), x4(), ck.ones([3, 3, 3, 2])), ck.ShapeError, 'conv2dGrad', '[1,3,3,2]', '[1,5,5,2]');
  });
});

describe('dense', () => {
  test('mismatched features name both shapes', () => {
    expectError(() => ck.ops.dense(ck.ones([2, 5]), ck.ones([4, 3])), ck.ShapeError, 'dense', '[2,5]', '[4,3]');
  });
  test('wrong ranks', () => {
    expectError(() => ck.ops.dense(ck.ones([5]), ck.ones([5, 3])), ck.ShapeError, 'dense', '[5]');
    expectError(() => ck.ops.dense(ck.ones([2, 5]), ck.ones([5, 3, 1])), ck.ShapeError, 'dense', '[5,3,1]');
  });
  test('bias and dy shapes', () => {
    expectError(() => ck.ops.dense(ck.ones([2, 5]), ck.ones([5, 3]), { bias: ck.ones([5]) }), ck.ShapeError, 'dense', 'bias', '[5]');
    expectError(() => ck.ops.denseGrad(ck.ones([2, 4]), ck.ones([2, 5]), ck.ones([5, 3])), ck.ShapeError, 'denseGrad', '[2,3]', '[2,4]');
  });
  test('zero-sized and non-tensor inputs', () => {
    expectError(() => ck.ops.dense(ck.zeros([0, 5]), ck.ones([5, 3])), ck.ShapeError, 'dense', '[0,5]');
    expectError(() => ck.ops.dense(ck.ones([2, 5]), 'kernel' as never), ck.DTypeError, 'dense', 'kernel');
  });
});

describe('pooling', () => {
  test('wrong rank and a pool that does not fit', () => {
    expectError(() => ck.ops.maxPool2d(ck.ones([5, 5, 3])), ck.ShapeError, 'maxPool2d', '[5,5,3]');
    expectError(() => ck.ops.avgPool2d(ck.ones([1, 1, 1, 1]), { poolSize: 2 }), ck.ShapeError, 'avgPool2d', '[1,1,1,1]');
    expectError(() => ck.ops.maxPool2d(ck.zeros([1, 0, 4, 1])), ck.ShapeError, 'maxPool2d', '[1,0,4,1]');
  });
  test.each([0, -1, 2.5, NaN, 'two', [2], [2, 0]])('poolSize %p is a ValueError', (p) => {
    expectError(() => ck.ops.maxPool2d(x4(), { poolSize: p as never }), ck.ValueError, 'maxPool2d', 'poolSize');
    expectError(() => ck.ops.avgPool2d(x4(), { poolSize: p as never }), ck.ValueError, 'avgPool2d', 'poolSize');
  });
  test.each([0, -3, NaN, 1.25])('strides %p is a ValueError', (s) => {
    expectError(() => ck.ops.maxPool2d(x4(), { strides: s as never }), ck.ValueError, 'maxPool2d', 'strides');
  });
  test('unknown padding', () => {
    expectError(() => ck.ops.avgPool2d(x4(), { padding: 'VALID' as never }), ck.ValueError, 'avgPool2d', 'padding');
  });
  test('gradients check dy against the output shape', () => {
    expectError(() => ck.ops.maxPool2dGrad(ck.ones([1, 3, 3, 3]), x4(), { poolSize: 2 }), ck.ShapeError, 'maxPool2dGrad', '[1,2,2,3]', '[1,3,3,3]');
    expectError(() => ck.ops.avgPool2dGrad(ck.ones([1, 2, 2, 2]), x4(), { poolSize: 2 }), ck.ShapeError, 'avgPool2dGrad', '[1,2,2,3]', '[1,2,2,2]');
    expectError(() => ck.ops.globalAvgPoolGrad(ck.ones([1, 4]), x4()), ck.ShapeError, 'globalAvgPoolGrad', '[1,3]', '[1,4]');
    expectError(() => ck.ops.globalMaxPoolGrad(ck.ones([3]), x4()), ck.ShapeError, 'globalMaxPoolGrad', '[1,3]', '[3]');
  });
  test('global pooling needs rank 4', () => {
    expectError(() => ck.ops.globalAvgPool(ck.ones([2, 3])), ck.ShapeError, 'globalAvgPool', '[2,3]');
    expectError(() => ck.ops.globalMaxPool(ck.ones([2, 3, 4])), ck.ShapeError, 'globalMaxPool', '[2,3,4]');
  });
});

describe('activations, softmax, dropout, batch norm', () => {
  test('gradients need dy and y of the same shape (both named)', () => {
    expectError(() => ck.ops.reluGrad(ck.ones([2, 3]), ck.ones([3, 2])), ck.ShapeError, 'reluGrad', '[2,3]', '[3,2]');
    expectError(() => ck.ops.sigmoidGrad(ck.ones([4]), ck.ones([5])), ck.ShapeError, 'sigmoidGrad', '[4]', '[5]');
    expectError(() => ck.ops.softmaxGrad(ck.ones([2, 3]), ck.ones([2, 4])), ck.ShapeError, 'softmaxGrad', '[2,3]', '[2,4]');
    expectError(() => ck.ops.mul(ck.ones([2]), ck.ones([3])), ck.ShapeError, 'mul', '[2]', '[3]');
  });
  test('bad alphas', () => {
    expectError(() => ck.ops.leakyRelu(ck.ones([3]), { alpha: -0.1 }), ck.ValueError, 'leakyRelu', 'alpha');
    expectError(() => ck.ops.leakyRelu(ck.ones([3]), { alpha: NaN }), ck.ValueError, 'leakyRelu', 'alpha');
    expectError(() => ck.ops.elu(ck.ones([3]), { alpha: Infinity }), ck.ValueError, 'elu', 'alpha');
    expectError(() => ck.ops.eluGrad(ck.ones([3]), ck.ones([3]), { alpha: 'one' as never }), ck.ValueError, 'eluGrad', 'alpha');
  });
  test('softmax of a scalar or of an empty axis', () => {
    expectError(() => ck.ops.softmax(ck.fill([], 1)), ck.ShapeError, 'softmax');
    expectError(() => ck.ops.softmax(ck.zeros([3, 0])), ck.ShapeError, 'softmax', '[3,0]');
  });
  test('dropout rate and seed', () => {
    expectError(() => ck.ops.dropout(ck.ones([4]), { rate: 1 }), ck.ValueError, 'dropout', 'rate');
    expectError(() => ck.ops.dropout(ck.ones([4]), { rate: -0.1 }), ck.ValueError, 'dropout', 'rate');
    expectError(() => ck.ops.dropout(ck.ones([4]), { rate: NaN }), ck.ValueError, 'dropout', 'rate');
    expectError(() => ck.ops.dropout(ck.ones([4]), {} as never), ck.ValueError, 'dropout', 'rate');
    expectError(() => ck.ops.dropout(ck.ones([4]), { rate: 0.5, seed: -1 }), ck.ValueError, 'dropout', 'seed');
    expectError(() => ck.ops.dropout(ck.ones([4]), { rate: 0.5, seed: 1.5 }), ck.ValueError, 'dropout', 'seed');
  });
  test('batch norm parameter shapes, epsilon and momentum', () => {
    const x = ck.ones([4, 3]);
    expectError(() => ck.ops.batchNormTrain(x, { gamma: ck.ones([4]) }), ck.ShapeError, 'batchNorm', '[3]', '[4]');
    expectError(() => ck.ops.batchNorm(x, { mean: ck.ones([3]), variance: ck.ones([2]) }), ck.ShapeError, 'batchNorm', '[2]');
    expectError(() => ck.ops.batchNormTrain(x, { epsilon: 0 }), ck.ValueError, 'batchNorm', 'epsilon');
    expectError(() => ck.ops.batchNormTrain(x, { epsilon: -1 }), ck.ValueError, 'batchNorm', 'epsilon');
    expectError(() => ck.ops.batchNormTrain(x, { momentum: 1.5 }), ck.ValueError, 'batchNorm', 'momentum');
    expectError(() => ck.ops.batchNormGrad(ck.ones([4, 2]), x, { mean: ck.ones([3]), invstd: ck.ones([3]) }), ck.ShapeError, 'batchNormGrad', '[4,2]', '[4,3]');
    expectError(() => ck.ops.batchNorm(x, {} as never), ck.DTypeError, 'batchNorm', 'mean');
  });
});

describe('losses and optimizers', () => {
  test('labels and targets must match the input (both shapes named)', () => {
    expectError(() => ck.ops.softmaxCrossEntropy(ck.ones([4, 10]), ck.ones([4, 9])), ck.ShapeError, 'softmaxCrossEntropy', '[4,10]', '[4,9]');
    expectError(() => ck.ops.softmaxCrossEntropy(ck.ones([4, 10]), ck.ones([4, 10]), { sparse: true }), ck.ShapeError, 'softmaxCrossEntropy', '[4]', '[4,10]');
    expectError(() => ck.ops.binaryCrossEntropy(ck.ones([4, 1]), ck.ones([4])), ck.ShapeError, 'binaryCrossEntropy', '[4,1]', '[4]');
    expectError(() => ck.ops.meanSquaredError(ck.ones([2, 3]), ck.ones([3, 2])), ck.ShapeError, 'meanSquaredError', '[2,3]', '[3,2]');
  });
  test('option types', () => {
    expectError(() => ck.ops.softmaxCrossEntropy(ck.ones([4, 10]), ck.ones([4, 10]), { sparse: 'yes' as never }), ck.ValueError, 'softmaxCrossEntropy', 'sparse');
    expectError(() => ck.ops.binaryCrossEntropy(ck.ones([4, 1]), ck.ones([4, 1]), { fromLogits: 1 as never }), ck.ValueError, 'binaryCrossEntropy', 'fromLogits');
  });
  test('optimizer states and hyper-parameters', () => {
    const w = ck.ones([5]);
    expectError(() => ck.ops.sgdUpdate(w, ck.ones([4])), ck.ShapeError, 'sgdUpdate', '[4]', '[5]');
    expectError(() => ck.ops.sgdUpdate(w, ck.ones([5]), { momentum: 0.9 }), ck.ValueError, 'sgdUpdate', 'velocity');
    expectError(() => ck.ops.sgdUpdate(w, ck.ones([5]), { learningRate: -1 }), ck.ValueError, 'sgdUpdate', 'learningRate');
    expectError(() => ck.ops.sgdUpdate(w, ck.ones([5]), { learningRate: NaN }), ck.ValueError, 'sgdUpdate', 'learningRate');
    expectError(() => ck.ops.sgdUpdate(w, ck.ones([5]), { momentum: 0.9, velocity: ck.zeros([6]) }), ck.ShapeError, 'sgdUpdate', 'velocity', '[6]');
    const m = ck.zeros([5]);
    const v = ck.zeros([5]);
    expectError(() => ck.ops.adamUpdate(w, ck.ones([5]), { m, v, step: 0 }), ck.ValueError, 'adamUpdate', 'step');
    expectError(() => ck.ops.adamUpdate(w, ck.ones([5]), { m, v, step: 1.5 }), ck.ValueError, 'adamUpdate', 'step');
    expectError(() => ck.ops.adamUpdate(w, ck.ones([5]), { m, v, step: 1, beta1: 1.5 }), ck.ValueError, 'adamUpdate', 'beta1');
    expectError(() => ck.ops.adamUpdate(w, ck.ones([5]), { m: ck.zeros([4]), v, step: 1 }), ck.ShapeError, 'adamUpdate', '[4]', '[5]');
    expectError(() => ck.ops.adamUpdate(w, ck.ones([5]), undefined as never), ck.ValueError, 'adamUpdate', 'step');
    expectError(() => ck.ops.rmspropUpdate(w, ck.ones([5]), { ms: ck.zeros([5]), centered: true }), ck.ValueError, 'rmspropUpdate', 'centered');
    expectError(() => ck.ops.rmspropUpdate(w, ck.ones([5]), { ms: ck.zeros([5]), momentum: 0.5 }), ck.ValueError, 'rmspropUpdate', 'momentum');
    expectError(() => ck.ops.rmspropUpdate(w, ck.ones([5]), { ms: ck.zeros([5]), rho: -0.1 }), ck.ValueError, 'rmspropUpdate', 'rho');
    // None of the failed calls touched the weights.
    expect(Array.from(w.dataSync())).toEqual([1, 1, 1, 1, 1]);
  });
});

describe('tensor creation', () => {
  test.each([
    ['a string', 'abc'],
    ['an object', { a: 1 }],
    ['null', null],
    ['undefined', undefined],
    ['a number', 5],
    ['a boolean', true],
    ['a BigInt64Array', new BigInt64Array(2)],
  ])('values as %s are a DTypeError naming tensor', (_label, bad) => {
    expectError(() => ck.tensor(bad as never), ck.DTypeError, 'tensor');
  });
  test('non-numbers inside nested arrays are DTypeErrors', () => {
    expectError(() => ck.tensor([1, 'a', 3] as never), ck.DTypeError, 'tensor');
    expectError(() => ck.tensor([[1, 2], [null, 4]] as never), ck.DTypeError, 'tensor');
  });
  test('ragged nested arrays are ShapeErrors', () => {
    expectError(() => ck.tensor([[1, 2], [3]]), ck.ShapeError, 'tensor', 'ragged');
    expectError(() => ck.tensor([[1, 2], 3] as never), ck.ShapeError, 'tensor', 'ragged');
    expectError(() => ck.tensor([[[1], [2]], [[3], [4, 5]]]), ck.ShapeError, 'tensor', 'ragged');
  });
  test('shape and data length must agree (both named)', () => {
    expectError(() => ck.tensor(new Float32Array(5), [2, 3]), ck.ShapeError, 'tensor', '[2,3]', '6', '5');
    expectError(() => ck.tensor([1, 2, 3, 4], [3]), ck.ShapeError, 'tensor', '[3]');
    expectError(() => ck.tensor(new Float32Array(4), [2, -1, 3]), ck.ShapeError, 'tensor');
    expectError(() => ck.tensor(new Float32Array(4), [2, 2.5]), ck.ShapeError, 'tensor');
    expectError(() => ck.tensor(new Float32Array(4), 'big' as never), ck.ShapeError, 'tensor');
  });
  test('negative and non-integer sizes are rejected by zeros/ones/fill', () => {
    expectError(() => ck.zeros([2, -3]), ck.ShapeError, 'fill');
    expectError(() => ck.ones([1.5, 2]), ck.ShapeError, 'fill');
    expectError(() => ck.zeros([NaN]), ck.ShapeError, 'fill');
    expectError(() => ck.fill([2], NaN), ck.ValueError, 'fill');
  });
  test('a -1 size is rejected by zeros/ones/fill (with no data there is nothing to infer it from)', () => {
    expectError(() => ck.zeros([-1, 2]), ck.ShapeError, 'fill');
    expectError(() => ck.ones([3, -1]), ck.ShapeError, 'fill');
  });
  test('huge shapes are rejected before anything is allocated', () => {
    const small = ck.ones([4]);
    const before = ck.memory();
    const t0 = Date.now();
    expectError(() => ck.zeros([1e6, 1e6, 1e6, 1]), ck.ShapeError, 'fill', '[1000000,1000000,1000000,1]');
    expectError(() => ck.ones([65536, 32768]), ck.ShapeError, 'fill');
    expectError(() => ck.tensor(new Float32Array(4), [1e6, 1e6, 1e6, 1]), ck.ShapeError, 'tensor');
    expectError(() => ck.zeros([2, 2, 2, 2, 2, 2, 2, 2, 2]), ck.ShapeError, 'fill', '8 dimensions');
    expectError(() => ck.zeros([2 ** 53, 1]), ck.ShapeError, 'fill');
    expectError(() => small.reshape([1e6, 1e6, 1e6, 1]), ck.ShapeError, 'reshape');
    expect(Date.now() - t0).toBeLessThan(1000);
    const after = ck.memory();
    expect(after.hostPeakBytes).toBe(before.hostPeakBytes);
    expect(after.hostBytes).toBe(before.hostBytes);
  });
  test('reshape to a different size or with two -1 names the shapes', () => {
    expectError(() => ck.ones([2, 3]).reshape([4, 2]), ck.ShapeError, 'reshape', '[2,3]', '[4,2]');
    expectError(() => ck.ones([2, 3]).reshape([-1, -1]), ck.ShapeError, 'reshape');
    expectError(() => ck.ones([2, 3]).reshape([-1, 4]), ck.ShapeError, 'reshape', '[-1,4]');
  });
  test('devices', () => {
    expectError(() => ck.ones([2]).to('cuda'), ck.DeviceError, 'cuda');
    expectError(() => ck.ones([2]).to('tpu' as never), ck.ValueError, 'tpu');
    expectError(() => ck.setIsa('sse2' as never), ck.ValueError, 'setIsa', 'sse2');
    expectError(() => ck.setThreads(-1), ck.ValueError, 'setThreads');
    expectError(() => ck.setThreads(1.5), ck.ValueError, 'setThreads');
  });
});

describe('disposed tensors', () => {
  test('using a disposed tensor in an op is a ValueError naming the op', () => {
    const x = x4();
    x.dispose();
    expect(x.isDisposed).toBe(true);
    expectError(() => ck.ops.conv2d(x, ck.ones([3, 3, 3, 2])), ck.ValueError, 'conv2d', 'disposed');
    expectError(() => ck.ops.relu(x), ck.ValueError, 'relu', 'disposed');
    expectError(() => ck.ops.maxPool2d(x), ck.ValueError, 'maxPool2d', 'disposed');
    const w = ck.ones([3, 3, 3, 2]);
    w.dispose();
    expectError(() => ck.ops.conv2dGrad(ck.ones([1, 3, 3, 2]), x4(), w), ck.ValueError, 'conv2dGrad', 'disposed');
    const v = ck.zeros([5]);
    v.dispose();
    expectError(() => ck.ops.sgdUpdate(ck.ones([5]), ck.ones([5]), { momentum: 0.9, velocity: v }), ck.ValueError, 'sgdUpdate', 'disposed');
  });
  test('reading or reshaping a disposed tensor is a ValueError', async () => {
    const x = ck.ones([2, 2]);
    x.dispose();
    x.dispose(); // idempotent
    expectError(() => x.dataSync(), ck.ValueError, 'dataSync', 'disposed');
    expectError(() => x.reshape([4]), ck.ValueError, 'reshape', 'disposed');
    await expectRejection(async () => x.data(), ck.ValueError, 'data', 'disposed');
  });
});

// ---- every op against garbage: exact expectations, no allowance ----
//
// Each op's signature is written out below, independently of lib/ops.ts: a valid call, the names
// its errors give its tensor arguments, the shapes each must refuse, and each option with the
// values it must refuse. The calls are generated from the valid one with exactly one defect
// each, so every generated call is invalid and its error is known: its class (DTypeError for a
// non-tensor where a tensor goes, ValueError for a disposed tensor or a bad option, ShapeError
// for a bad shape) and that its message names the op and the culprit. The valid call itself, and
// the variants this table calls valid (null for an optional tensor option, a key set to
// undefined, an extra argument after the last parameter, which JS ignores as tfjs does), must
// succeed.

type Call = unknown[];
/** A value made afresh for each call (a tensor: each call gets its own). */
class Lazy {
  constructor(readonly make: () => unknown) {}
}
const lazy = (make: () => unknown): Lazy => new Lazy(make);
/** A bad option value with the error it must give (by default: a ValueError naming the option). */
class Bad {
  readonly fragments: string[];
  constructor(readonly value: unknown, readonly cls: ErrorClass, fragments: string[]) {
    this.fragments = fragments;
  }
}
/** A shape an argument must refuse: a ShapeError naming the op and the shape, or these fragments. */
type BadShape = number[] | { shape: number[]; fragments: string[] };
interface TensorParam {
  name: string;
  shape: number[];
  badShapes?: BadShape[];
}
interface ListParam {
  name: string;
  list: number[][];
  /** Replacements of the list's last shape that the op must refuse. */
  badShapes?: BadShape[];
}
interface OpSpec {
  params: (TensorParam | ListParam)[];
  /** The options of the valid call; absent: the op takes no options object. */
  opts?: Record<string, unknown>;
  /** Option name -> values it must refuse (a ValueError naming the option unless given as Bad). */
  bad?: Record<string, unknown[] | undefined>;
  /** Whole options objects (merged into the valid ones) the op must refuse. */
  badOpts?: [Record<string, unknown>, ErrorClass, ...string[]][];
  /** Options objects (merged into the valid ones) that are valid too. */
  goodOpts?: Record<string, unknown>[];
  /** What a call without options gives where the defaults do not make it valid (null: valid). */
  noOpts?: [ErrorClass, ...string[]];
  /** The name its messages use where it is not the op's (a native check shared by two ops). */
  named?: string;
}

const isList = (p: TensorParam | ListParam): p is ListParam => 'list' in p;
const shape = (...s: number[]) => s;
const IMG = [1, 4, 4, 2];
const T = (name: string, s: number[], badShapes?: BadShape[]): TensorParam => ({ name, shape: s, badShapes });
const tensorOpt = (s: number[]): Lazy => lazy(() => ck.ones(s));
const bad = (v: unknown, cls: ErrorClass, ...f: string[]): Bad => new Bad(v, cls, f);

const PAIR_BAD = [0, -1, 1.5, NaN, Infinity, '2', [1], [1, 2, 3], [1, 0], [2, NaN], null, {}, true];
const PADDING_BAD = ['SAME', 'full', '', 1, null, true];
const ACTIVATION_BAD = ['sigmoid', 'RELU', '', 1, null];
const BOOL_BAD = ['yes', 1, 0, null, {}];
const NUMBER_BAD = [NaN, Infinity, -Infinity, '1', null, true, [1]];
const GROUPS_BAD = [0, -1, 1.5, NaN, '2', null];
/** Non-tensors where a tensor goes (a DTypeError naming it). */
const NOT_TENSORS: unknown[] = ['x', 5, true, {}, [1, 2], new Float32Array(3), { shape: [2] }, () => 0];
const TENSOR_OPTION_BAD = (name: string): Bad[] => NOT_TENSORS.map((v) => bad(v, ck.DTypeError, name));
const REQUIRED_TENSOR_OPTION_BAD = (name: string): Bad[] =>
  [...TENSOR_OPTION_BAD(name), bad(undefined, ck.DTypeError, name), bad(null, ck.DTypeError, name)];
const SHAPE_BAD = (name: string, ...shapes: number[][]): Bad[] =>
  shapes.map((s) => bad(tensorOpt(s), ck.ShapeError, name, `[${s}]`));

const convOpts = { strides: 1, padding: 'same', dilation: 1, activation: 'relu', groups: 1 };
const convBad = {
  strides: PAIR_BAD, dilation: PAIR_BAD,
  dilations: PAIR_BAD.map((v) => bad(v, ck.ValueError, 'dilation')),
  padding: PADDING_BAD, activation: ACTIVATION_BAD, groups: GROUPS_BAD,
};
const convGradOpts = { strides: 1, padding: 'valid', dilation: 1, groups: 1 };
const poolOpts = { poolSize: 2, strides: 2, padding: 'valid' };
const poolBad = { poolSize: PAIR_BAD, strides: PAIR_BAD, padding: PADDING_BAD };
const ZERO_PADDING_BAD = [-1, 1.5, NaN, 'same', [1], [1, 2, 3], [[1, 2], [3]], [[1, 2], 3], [[1, -1], [0, 0]], 2 ** 24, null, {}];
/** outputPadding: an integer >= 0 or a pair of them, smaller than the stride (1 here), or null. */
const OUTPUT_PADDING_BAD = [-1, 1.5, NaN, Infinity, '1', [1], [1, 2, 3], [0, -1], {}, true, 1];
const upBad = { size: PAIR_BAD, interpolation: ['cubic', 'Nearest', 1, null], halfPixelCenters: BOOL_BAD };
const transformBad = { interpolation: ['cubic', 'Bilinear', 1, null], fillMode: ['mirror', 'Reflect', 1, null], fillValue: NUMBER_BAD };
const rangeBad = { valueRange: [[1, 0], [1, 1], [0], [0, 1, 2], 'x', null, [NaN, 1], [0, Infinity], 5] };
const elementwise = (a: string, b: string): OpSpec => ({ params: [T(a, [2, 3], [[3, 2], [6], [2, 3, 1]]), T(b, [2, 3], [[2, 4]])] });
const grad = (dy: number[], dyBad: BadShape[], x = IMG): TensorParam[] => [T('dy', dy, dyBad), T('x', x, [[4, 4, 2]])];

const SPECS: Record<string, OpSpec> = {
  globalAvgPool: { params: [T('x', IMG, [[2, 3], [1, 4, 4], [1, 4, 4, 2, 1], [0, 4, 4, 2], [1, 0, 4, 2]])] },
  globalAvgPoolGrad: { params: grad([1, 2], [[1, 3], [2], [2, 2]]) },
  globalMaxPool: { params: [T('x', IMG, [[2, 3], [1, 4, 4], [1, 4, 4, 2, 1], [0, 4, 4, 2], [1, 4, 0, 2]])] },
  globalMaxPoolGrad: { params: grad([1, 2], [[1, 3], [2], [2, 2]]) },
  relu: { params: [T('x', [2, 3])] },
  reluGrad: elementwise('dy', 'y'),
  sigmoid: { params: [T('x', [2, 3])] },
  sigmoidGrad: elementwise('dy', 'y'),
  tanh: { params: [T('x', [2, 3])] },
  tanhGrad: elementwise('dy', 'y'),
  softmax: { params: [T('x', [2, 3], [{ shape: [], fragments: ['scalar'] }, [3, 0]])] },
  softmaxGrad: elementwise('dy', 'y'),
  dropoutGrad: elementwise('dy', 'mask'),
  mul: elementwise('a', 'b'),
  mulGrad: { params: [T('dy', [2, 3], [[2, 4], [3, 2]]), T('a', [2, 3], [[3, 2], [6], [2, 3, 1]]), T('b', [2, 3], [[2, 4]])] },
  add: elementwise('a', 'b'),
  conv2d: {
    params: [T('x', IMG, [[4, 4, 2], [1, 4, 4, 3], [0, 4, 4, 2], [1, 0, 4, 2]]), T('filter', [3, 3, 2, 3], [[3, 3, 2], [3, 3, 3, 3], [3, 3, 2, 0]])],
    opts: { ...convOpts, bias: tensorOpt([3]) },
    bad: { ...convBad, bias: [...TENSOR_OPTION_BAD('bias'), ...SHAPE_BAD('bias', [2], [1, 3])] },
    badOpts: [
      [{ dilation: 1, dilations: 1 }, ck.ValueError, 'dilation', 'dilations'],
      [{ padding: 'valid', dilation: 2 }, ck.ShapeError, 'dilation'],
      [{ groups: 2 }, ck.ShapeError, 'groups'],
    ],
    goodOpts: [{ bias: null }, { dilation: undefined, dilations: [1, 1] }, { activation: 'linear', padding: 'valid' }],
  },
  conv2dGrad: {
    params: [T('dy', [1, 2, 2, 3], [[1, 4, 4, 3], [1, 2, 2, 2], [2, 3]]), T('x', IMG, [[4, 4, 2], [1, 4, 4, 3]]), T('filter', [3, 3, 2, 3], [[3, 3, 2], [3, 3, 3, 3]])],
    opts: convGradOpts,
    bad: { strides: PAIR_BAD, dilation: PAIR_BAD, dilations: convBad.dilations, padding: PADDING_BAD, groups: GROUPS_BAD },
    // The gradient of conv2d without its bias and activation: it takes neither.
    badOpts: [[{ activation: 'relu' }, ck.ValueError, "'activation'"], [{ bias: ck.ones([3]) }, ck.ValueError, "'bias'"]],
  },
  depthwiseConv2d: {
    params: [T('x', IMG, [[4, 4, 2], [0, 4, 4, 2]]), T('filter', [3, 3, 2, 2], [[3, 3, 2], [3, 3, 3, 2], [3, 3, 2, 0]])],
    opts: { strides: 1, padding: 'same', dilation: 1, activation: 'relu', bias: tensorOpt([4]) },
    bad: { ...convBad, groups: undefined, bias: [...TENSOR_OPTION_BAD('bias'), ...SHAPE_BAD('bias', [2])] },
    goodOpts: [{ bias: null }],
  },
  depthwiseConv2dGrad: {
    params: [T('dy', [1, 2, 2, 4], [[1, 2, 2, 2], [1, 4, 4, 4]]), T('x', IMG, [[4, 4, 2], [1, 4, 4, 3]]), T('filter', [3, 3, 2, 2], [[3, 3, 2]])],
    opts: { strides: 1, padding: 'valid', dilation: 1 },
    bad: { strides: PAIR_BAD, dilation: PAIR_BAD, dilations: convBad.dilations, padding: PADDING_BAD },
    badOpts: [[{ activation: 'linear' }, ck.ValueError, "'activation'"]],
  },
  dense: {
    params: [T('x', [2, 5], [[5], [2, 4], [0, 5]]), T('kernel', [5, 3], [[5, 3, 1], [4, 3], [5]])],
    opts: { bias: tensorOpt([3]), activation: 'relu' },
    bad: { bias: [...TENSOR_OPTION_BAD('bias'), ...SHAPE_BAD('bias', [5], [1, 3])], activation: ACTIVATION_BAD },
    goodOpts: [{ bias: null }],
  },
  denseGrad: { params: [T('dy', [2, 3], [[2, 4], [3, 3]]), T('x', [2, 5], [[5], [2, 4]]), T('kernel', [5, 3], [[4, 3], [5, 3, 1]])] },
  maxPool2d: { params: [T('x', IMG, [[4, 4, 2], [1, 1, 1, 2], [1, 0, 4, 2]])], opts: poolOpts, bad: poolBad },
  maxPool2dGrad: { params: grad([1, 2, 2, 2], [[1, 4, 4, 2], [1, 2, 2, 3], [2, 2, 2]]), opts: poolOpts, bad: poolBad },
  avgPool2d: { params: [T('x', IMG, [[4, 4, 2], [1, 1, 1, 2], [1, 0, 4, 2]])], opts: poolOpts, bad: poolBad },
  avgPool2dGrad: { params: grad([1, 2, 2, 2], [[1, 4, 4, 2], [1, 2, 2, 3]]), opts: poolOpts, bad: poolBad },
  lpPool2d: {
    params: [T('x', IMG, [[4, 4, 2], [1, 1, 1, 2], [1, 0, 4, 2]])],
    opts: { ...poolOpts, p: 3 },
    bad: { ...poolBad, p: [0.5, 0, -1, 1e7, ...NUMBER_BAD] },
  },
  lpPool2dGrad: {
    params: grad([1, 2, 2, 2], [[1, 4, 4, 2], [1, 2, 2, 3]]),
    opts: { ...poolOpts, p: 3 },
    bad: { ...poolBad, p: [0.5, 0, -1, 1e7, ...NUMBER_BAD] },
  },
  zeroPadding2d: { params: [T('x', IMG, [[4, 4, 2], [2, 3]])], opts: { padding: [[1, 0], [2, 1]] }, bad: { padding: ZERO_PADDING_BAD }, goodOpts: [{ padding: 0 }, { padding: [1, 2] }] },
  zeroPadding2dGrad: {
    params: grad([1, 5, 7, 2], [[1, 6, 6, 2], [1, 5, 7, 3]]), opts: { padding: [[1, 0], [2, 1]] }, bad: { padding: ZERO_PADDING_BAD },
    noOpts: [ck.ShapeError, 'output shape [1,6,6,2]'],  // the default padding of 1 all round
  },
  upSampling2d: {
    params: [T('x', IMG, [[4, 4, 2], [1, 0, 4, 2]])],
    opts: { size: [2, 3], interpolation: 'bilinear', halfPixelCenters: false }, bad: upBad,
    goodOpts: [{ interpolation: 'nearest' }],
  },
  upSampling2dGrad: {
    params: grad([1, 8, 12, 2], [[1, 8, 8, 2], [1, 8, 12, 3]]),
    opts: { size: [2, 3], interpolation: 'bilinear', halfPixelCenters: false }, bad: upBad,
    noOpts: [ck.ShapeError, 'output shape [1,8,8,2]'],  // the default size of 2
  },
  leakyRelu: { params: [T('x', [2, 3])], opts: { alpha: 0.1 }, bad: { alpha: [-0.1, ...NUMBER_BAD] } },
  leakyReluGrad: { ...elementwise('dy', 'y'), opts: { alpha: 0.1 }, bad: { alpha: [-0.1, ...NUMBER_BAD] } },
  elu: { params: [T('x', [2, 3])], opts: { alpha: 0.5 }, bad: { alpha: NUMBER_BAD } },
  eluGrad: { ...elementwise('dy', 'y'), opts: { alpha: 0.5 }, bad: { alpha: NUMBER_BAD } },
  gelu: { params: [T('x', [2, 3])], opts: { approximate: true }, bad: { approximate: BOOL_BAD } },
  geluGrad: { ...elementwise('dy', 'x'), opts: { approximate: true }, bad: { approximate: BOOL_BAD } },
  swish: { params: [T('x', [2, 3])] },
  swishGrad: elementwise('dy', 'x'),
  hardSwish: { params: [T('x', [2, 3])] },
  hardSwishGrad: elementwise('dy', 'x'),
  hardSigmoid: { params: [T('x', [2, 3])] },
  hardSigmoidGrad: elementwise('dy', 'x'),
  softplus: { params: [T('x', [2, 3])] },
  softplusGrad: elementwise('dy', 'x'),
  selu: { params: [T('x', [2, 3])] },
  seluGrad: elementwise('dy', 'x'),
  mish: { params: [T('x', [2, 3])] },
  mishGrad: elementwise('dy', 'x'),
  dropout: {
    params: [T('x', [2, 3])],
    opts: { rate: 0.5, seed: 7 },
    bad: { rate: [undefined, 1, -0.1, 2, ...NUMBER_BAD], seed: [-1, 1.5, 2 ** 53, NaN, '1', null] },
    noOpts: [ck.ValueError, 'rate'],
  },
  concatenate: {
    params: [{ name: 'tensors', list: [[2, 3], [2, 4]], badShapes: [[3, 4], [2], [2, 4, 1]] }],
    opts: { axis: -1 },
    bad: { axis: [0, -2, 2, 1.5, 'x', null] },
    goodOpts: [{ axis: 1 }],
  },
  concatenateGrad: {
    params: [T('dy', [2, 7], [[2, 6], [3, 7]]), { name: 'tensors', list: [[2, 3], [2, 4]], badShapes: [[3, 4]] }],
    opts: { axis: -1 },
    bad: { axis: [0, -2, 2, 1.5, 'x', null] },
  },
  batchNorm: {
    // x's channels against the per-channel parameters: the message names the channel count
    params: [T('x', [4, 3], [{ shape: [4, 2], fragments: ['per-channel', '[2]', '[3]'] }, { shape: [], fragments: ['scalar'] }])],
    noOpts: [ck.DTypeError, 'mean'],
    opts: { mean: tensorOpt([3]), variance: tensorOpt([3]), gamma: tensorOpt([3]), beta: tensorOpt([3]), epsilon: 1e-3 },
    bad: {
      mean: [...REQUIRED_TENSOR_OPTION_BAD('mean'), ...SHAPE_BAD('batchNorm', [2])],
      variance: [...REQUIRED_TENSOR_OPTION_BAD('variance'), ...SHAPE_BAD('batchNorm', [2])],
      gamma: [...TENSOR_OPTION_BAD('gamma'), ...SHAPE_BAD('batchNorm', [4])],
      beta: [...TENSOR_OPTION_BAD('beta'), ...SHAPE_BAD('batchNorm', [4])],
      epsilon: [-1, 0, ...NUMBER_BAD],
    },
    goodOpts: [{ gamma: null, beta: null }],
  },
  batchNormTrain: {
    params: [T('x', [4, 3], [[0, 3]])],
    opts: { gamma: tensorOpt([3]), beta: tensorOpt([3]), movingMean: tensorOpt([3]), movingVariance: tensorOpt([3]), epsilon: 1e-3, momentum: 0.9 },
    bad: {
      gamma: [...TENSOR_OPTION_BAD('gamma'), ...SHAPE_BAD('batchNorm', [4])],
      beta: [...TENSOR_OPTION_BAD('beta'), ...SHAPE_BAD('batchNorm', [4])],
      movingMean: [...TENSOR_OPTION_BAD('movingMean'), ...SHAPE_BAD('batchNorm', [2])],
      movingVariance: [...TENSOR_OPTION_BAD('movingVariance'), ...SHAPE_BAD('batchNorm', [2])],
      epsilon: [-1, 0, ...NUMBER_BAD],
      momentum: [-0.1, 1.5, ...NUMBER_BAD],
    },
    goodOpts: [{ gamma: null, movingMean: null, movingVariance: null }],
    named: 'batchNorm',
  },
  batchNormGrad: {
    params: [T('dy', [4, 3], [[4, 2]]), T('x', [4, 3], [{ shape: [4, 2], fragments: ['per-channel', '[2]', '[3]'] }])],
    noOpts: [ck.DTypeError, 'mean'],
    opts: { mean: tensorOpt([3]), invstd: tensorOpt([3]), gamma: tensorOpt([3]) },
    bad: {
      mean: [...REQUIRED_TENSOR_OPTION_BAD('mean'), ...SHAPE_BAD('batchNormGrad', [2])],
      invstd: [...REQUIRED_TENSOR_OPTION_BAD('invstd'), ...SHAPE_BAD('batchNormGrad', [2])],
      gamma: [...TENSOR_OPTION_BAD('gamma'), ...SHAPE_BAD('batchNormGrad', [4])],
    },
    goodOpts: [{ gamma: null }],
  },
  softmaxCrossEntropy: {
    params: [T('logits', [4, 10], [[10], [4, 10, 1]]), T('labels', [4, 10], [[4, 9], [3, 10]])],
    opts: { sparse: false },
    bad: { sparse: BOOL_BAD },
    badOpts: [[{ sparse: true }, ck.ShapeError, '[4]', '[4,10]']],
  },
  binaryCrossEntropy: {
    params: [T('input', [4, 1]), T('target', [4, 1], [[4], [1, 4]])],
    opts: { fromLogits: true },
    bad: { fromLogits: BOOL_BAD },
  },
  meanSquaredError: { params: [T('prediction', [2, 3]), T('target', [2, 3], [[3, 2], [6]])] },
  sgdUpdate: {
    params: [T('weights', [5]), T('gradient', [5], [[4], [5, 1]])],
    opts: { learningRate: 0.1, momentum: 0.9, nesterov: true, velocity: tensorOpt([5]) },
    bad: {
      learningRate: [-1, ...NUMBER_BAD], momentum: [-0.1, 1.5, ...NUMBER_BAD], nesterov: BOOL_BAD,
      velocity: [...TENSOR_OPTION_BAD('velocity'), ...SHAPE_BAD('velocity', [6])],
    },
    // momentum needs a velocity to keep
    badOpts: [[{ velocity: undefined }, ck.ValueError, 'velocity'], [{ velocity: null }, ck.ValueError, 'velocity']],
    goodOpts: [{ momentum: 0, velocity: undefined }],
  },
  adamUpdate: {
    params: [T('weights', [5]), T('gradient', [5], [[4]])],
    noOpts: [ck.ValueError, 'step'],
    opts: { m: tensorOpt([5]), v: tensorOpt([5]), step: 3, learningRate: 0.01, beta1: 0.8, beta2: 0.99, epsilon: 1e-6, weightDecay: 0.01 },
    bad: {
      m: [...REQUIRED_TENSOR_OPTION_BAD('m'), ...SHAPE_BAD('adamUpdate', [4])],
      v: [...REQUIRED_TENSOR_OPTION_BAD('v'), ...SHAPE_BAD('adamUpdate', [4])],
      step: [undefined, 0, -1, 1.5, ...NUMBER_BAD],
      learningRate: [-1, ...NUMBER_BAD], beta1: [-0.1, 1, 1.5, ...NUMBER_BAD], beta2: [-0.1, 1, 1.5, ...NUMBER_BAD],
      epsilon: [-1, ...NUMBER_BAD], weightDecay: [-1, ...NUMBER_BAD],
    },
  },
  rmspropUpdate: {
    params: [T('weights', [5]), T('gradient', [5], [[4]])],
    noOpts: [ck.DTypeError, 'ms'],
    opts: { ms: tensorOpt([5]), momentumBuffer: tensorOpt([5]), mg: tensorOpt([5]), learningRate: 0.01, rho: 0.8, momentum: 0.5, epsilon: 1e-6, centered: true },
    bad: {
      ms: [...REQUIRED_TENSOR_OPTION_BAD('ms'), ...SHAPE_BAD('rmspropUpdate', [4])],
      momentumBuffer: [...TENSOR_OPTION_BAD('momentumBuffer'), ...SHAPE_BAD('rmspropUpdate', [4])],
      mg: [...TENSOR_OPTION_BAD('mg'), ...SHAPE_BAD('rmspropUpdate', [4])],
      learningRate: [-1, ...NUMBER_BAD], rho: [-0.1, 1.5, ...NUMBER_BAD], momentum: [-0.1, 1.5, ...NUMBER_BAD],
      epsilon: [-1, ...NUMBER_BAD], centered: BOOL_BAD,
    },
    // centered needs mg, momentum needs a momentumBuffer
    badOpts: [[{ mg: undefined }, ck.ValueError, 'centered'], [{ momentumBuffer: null }, ck.ValueError, 'momentum']],
    goodOpts: [{ centered: false, mg: undefined }, { momentum: 0, momentumBuffer: null }],
  },
  conv2dTranspose: {
    params: [T('x', IMG, [[4, 4, 2], [1, 4, 4, 3], [0, 4, 4, 2], [1, 0, 4, 2]]), T('filter', [3, 3, 3, 2], [[3, 3, 3], [3, 3, 3, 3], [3, 3, 0, 2]])],
    opts: { strides: 1, padding: 'same', dilation: 1, activation: 'relu', outputPadding: null, bias: tensorOpt([3]) },
    bad: {
      ...convBad, groups: undefined, outputPadding: OUTPUT_PADDING_BAD,
      bias: [...TENSOR_OPTION_BAD('bias'), ...SHAPE_BAD('bias', [2], [1, 3])],
    },
    badOpts: [
      [{ dilation: 1, dilations: 1 }, ck.ValueError, 'dilation', 'dilations'],
      [{ strides: 2, outputPadding: [0, 2] }, ck.ValueError, 'outputPadding along the width (2) must be smaller than the stride (2)'],
    ],
    goodOpts: [{ bias: null }, { strides: 2, outputPadding: [1, 0] }, { padding: 'valid', activation: 'linear', dilation: 2 }],
  },
  conv2dTransposeGrad: {
    params: [T('dy', [1, 4, 4, 3], [[1, 2, 2, 3], [1, 4, 4, 2], [2, 3]]), T('x', IMG, [[4, 4, 2], [1, 4, 4, 3]]), T('filter', [3, 3, 3, 2], [[3, 3, 3], [3, 3, 3, 3]])],
    opts: { strides: 1, padding: 'same', dilation: 1, outputPadding: null },
    noOpts: [ck.ShapeError, 'dy must have the output shape [1,6,6,3], got [1,4,4,3]'],
    bad: { strides: PAIR_BAD, dilation: PAIR_BAD, dilations: convBad.dilations, padding: PADDING_BAD, outputPadding: OUTPUT_PADDING_BAD },
    // The gradient of conv2dTranspose without its bias and activation: it takes neither.
    badOpts: [[{ activation: 'relu' }, ck.ValueError, "'activation'"], [{ bias: ck.ones([3]) }, ck.ValueError, "'bias'"]],
  },
  imageTransform: {
    params: [T('images', IMG, [[4, 4, 2], [1, 4, 4, 2, 1]]), T('transforms', [1, 8], [[1, 6], [2, 8], [8]])],
    opts: { interpolation: 'nearest', fillMode: 'reflect', fillValue: 0.5 }, bad: transformBad,
    goodOpts: [{ fillMode: 'wrap' }, { fillMode: 'constant' }, { fillMode: 'nearest', interpolation: 'bilinear' }],
  },
  imageTransformGrad: {
    params: [T('dy', IMG, [[4, 4, 2]]), T('transforms', [1, 8], [[1, 6], [2, 8]])],
    opts: { interpolation: 'bilinear', fillMode: 'constant', fillValue: 0 }, bad: transformBad,
  },
  imageContrast: { params: [T('images', IMG, [[4, 4, 2]]), T('factors', [1], [[2], [1, 1]])], opts: { valueRange: [0, 1] }, bad: rangeBad },
  imageContrastGrad: {
    params: [T('dy', IMG, [[1, 4, 4, 3]]), T('images', IMG, [[4, 4, 2]]), T('factors', [1], [[2]])], opts: { valueRange: [0, 1] }, bad: rangeBad,
  },
  imageBrightness: { params: [T('images', IMG, [[4, 4, 2]]), T('deltas', [1], [[2], [1, 1]])], opts: { valueRange: [-1, 1] }, bad: rangeBad },
  imageBrightnessGrad: {
    params: [T('dy', IMG, [[1, 4, 4, 3]]), T('images', IMG, [[4, 4, 2]]), T('deltas', [1], [[2]])], opts: { valueRange: [-1, 1] }, bad: rangeBad,
  },
};

/** Every option name of every op: an op given one it does not take must refuse it. */
const ALL_OPTIONS = [...new Set(Object.values(SPECS).flatMap((s) => Object.keys({ ...s.opts, ...s.bad })))];

interface Generated {
  label: string;
  args: () => Call;
  /** null: the call is valid and must succeed. */
  want: null | { cls: ErrorClass; fragments: string[] };
}

const show = (v: unknown): string => {
  if (v instanceof ck.Tensor) return v.isDisposed ? 'a disposed Tensor' : `Tensor[${v.shape}]`;
  if (typeof v === 'function') return 'a function';
  if (v instanceof Float32Array) return `Float32Array(${v.length})`;
  if (v instanceof Lazy) return show(v.make());
  if (typeof v === 'number' || v === undefined) return String(v);
  return JSON.stringify(v) ?? String(v);
};
const disposed = (s: number[]): ck.Tensor => {
  const t = ck.ones(s);
  t.dispose();
  return t;
};
const badShape = (b: BadShape) => (Array.isArray(b) ? { s: b, fragments: [`[${b}]`] } : { s: b.shape, fragments: b.fragments });
const resolve = (v: unknown): unknown => (v instanceof Lazy ? v.make() : v);

/** The valid call of `op` and every single-defect call made from it, each with its expectation. */
function generate(op: string): Generated[] {
  const spec = SPECS[op];
  const valid = (): Call => spec.params.map((p) => (isList(p) ? p.list.map((s) => ck.ones(s)) : ck.ones(p.shape)));
  const optsOf = (extra: Record<string, unknown> = {}) =>
    Object.fromEntries(Object.entries({ ...spec.opts, ...extra }).map(([k, v]) => [k, resolve(v)]));
  const withOpts = (args: Call, extra?: Record<string, unknown>): Call => (spec.opts ? [...args, optsOf(extra)] : args);
  const fails = (cls: ErrorClass, ...fragments: string[]) => ({ cls, fragments: [spec.named ?? op, ...fragments] });
  const out: Generated[] = [];
  const add = (label: string, args: () => Call, want: Generated['want']) => out.push({ label: `${op}: ${label}`, args, want });

  add('the valid call', () => withOpts(valid()), null);
  // JS ignores arguments past the last parameter (as tfjs does): a trailing extra is no defect.
  add('an extra argument after the last', () => [...withOpts(valid()), { alpha: 1 }], null);
  if (spec.opts) add('no options (every default)', () => valid(), spec.noOpts ? fails(...spec.noOpts) : null);

  spec.params.forEach((p, i) => {
    const replace = (v: () => unknown) => () => {
      const args = valid();
      args[i] = v();
      return withOpts(args);
    };
    if (isList(p)) {
      for (const v of [...NOT_TENSORS.filter((x) => !Array.isArray(x)), null, undefined]) add(`${p.name} = ${show(v)}`, replace(() => v), fails(ck.DTypeError, p.name));
      add(`${p.name} = a Tensor, not a list`, replace(() => ck.ones(p.list[0])), fails(ck.DTypeError, p.name));
      add(`${p.name} = []`, replace(() => []), fails(ck.ValueError, 'at least one'));
      const last = p.list.length - 1;
      const inList = (v: () => unknown) => replace(() => p.list.map((s, j) => (j === last ? v() : ck.ones(s))));
      for (const v of [...NOT_TENSORS, null, undefined]) add(`${p.name}[${last}] = ${show(v)}`, inList(() => v), fails(ck.DTypeError, `${p.name}[${last}]`));
      add(`${p.name}[${last}] disposed`, inList(() => disposed(p.list[last])), fails(ck.ValueError, `${p.name}[${last}]`, 'disposed'));
      for (const b of p.badShapes ?? []) {
        const { s, fragments } = badShape(b);
        add(`${p.name}[${last}] of shape [${s}]`, inList(() => ck.ones(s)), fails(ck.ShapeError, ...fragments));
      }
      return;
    }
    for (const v of [...NOT_TENSORS, null, undefined]) add(`${p.name} = ${show(v)}`, replace(() => v), fails(ck.DTypeError, p.name));
    add(`${p.name} disposed`, replace(() => disposed(p.shape)), fails(ck.ValueError, p.name, 'disposed'));
    for (const b of p.badShapes ?? []) {
      const { s, fragments } = badShape(b);
      add(`${p.name} of shape [${s}]`, replace(() => ck.fill(s, 1)), fails(ck.ShapeError, ...fragments));
    }
  });

  if (!spec.opts) return out;
  // The options object itself.
  const notOptions: unknown[] = [5, 'opts', true, null, [], [1, 2], ck.ones([2]), new Float32Array(2), new Map(), new Date(0), () => ({}), new (class Options {})()];
  for (const v of notOptions) add(`options = ${show(v)}`, () => [...valid(), v], fails(ck.ValueError, 'options'));
  add('an unknown option', () => [...valid(), optsOf({ bogus: 1 })], fails(ck.ValueError, "'bogus'"));
  add('an unknown option set to undefined (absent)', () => [...valid(), optsOf({ bogus: undefined })], null);
  const takes = new Set([...Object.keys(spec.opts), ...Object.keys(spec.bad ?? {}).filter((k) => spec.bad![k] !== undefined)]);
  for (const key of ALL_OPTIONS.filter((k) => !takes.has(k))) {
    add(`another op's option ${key}`, () => [...valid(), optsOf({ [key]: 1 })], fails(ck.ValueError, `'${key}'`));
  }
  // Each option's bad values.
  for (const [key, values] of Object.entries(spec.bad ?? {})) {
    for (const entry of values ?? []) {
      const b = entry instanceof Bad ? entry : new Bad(entry, ck.ValueError, [key]);
      add(`${key} = ${show(b.value)}`, () => [...valid(), optsOf({ [key]: b.value })], fails(b.cls, ...b.fragments));
    }
  }
  for (const [key, v] of Object.entries(spec.opts).filter(([, v]) => v instanceof Lazy)) {
    const s = [...(resolve(v) as ck.Tensor).shape];
    add(`${key} disposed`, () => [...valid(), optsOf({ [key]: lazy(() => disposed(s)) })], fails(ck.ValueError, key, 'disposed'));
  }
  for (const [extra, cls, ...fragments] of spec.badOpts ?? []) {
    add(`options ${show(extra)}`, () => [...valid(), optsOf(extra)], fails(cls, ...fragments));
  }
  for (const extra of spec.goodOpts ?? []) add(`options ${show(extra)} (valid)`, () => [...valid(), optsOf(extra)], null);
  return out;
}

/** '' when the call went as expected, else what happened instead. */
function check(op: string, g: Generated): string {
  const fn = (ck.ops as unknown as Record<string, (...a: unknown[]) => unknown>)[op];
  let thrown: unknown;
  try {
    fn(...g.args());
  } catch (e) {
    thrown = e;
  }
  const got = thrown === undefined ? 'success' : `${(thrown as Error)?.constructor?.name}: ${(thrown as Error)?.message}`;
  if (g.want === null) return thrown === undefined ? '' : `${g.label}: valid, but threw ${got}`;
  const { cls, fragments } = g.want;
  const ok = thrown instanceof cls && thrown instanceof ck.ConvkitError && fragments.every((f) => (thrown as Error).message.includes(f));
  return ok ? '' : `${g.label}: expected ${cls.name} naming ${fragments.map((f) => JSON.stringify(f)).join(', ')}, got ${got}`;
}

describe('nothing crashes the process', () => {
  const opNames = Object.keys(ck.ops).filter((k) => typeof (ck.ops as Record<string, unknown>)[k] === 'function' && k !== 'pair');

  test('the table below describes exactly the ck.ops functions', () => {
    expect(Object.keys(SPECS).sort()).toEqual([...opNames].sort());
  });

  test('every ck.ops function called with no arguments throws a ConvkitError naming it', () => {
    expect(opNames.length).toBeGreaterThan(30);
    const wrong: string[] = [];
    for (const name of opNames) {
      let thrown: unknown;
      try {
        (ck.ops as unknown as Record<string, () => unknown>)[name]();
      } catch (e) {
        thrown = e;
      }
      const named = SPECS[name]?.named ?? name;
      if (!(thrown instanceof ck.ConvkitError) || !thrown.message.includes(named)) {
        wrong.push(`ck.ops.${name}() threw ${thrown === undefined ? 'nothing' : `${(thrown as Error)?.constructor?.name}: ${(thrown as Error)?.message}`}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  test.each(Object.keys(SPECS))('%s: the valid call succeeds, and each call with one defect throws the typed error naming the op and the defect', (op) => {
    const calls = generate(op);
    expect(calls.filter((g) => g.want !== null).length).toBeGreaterThan(10);
    expect(calls.map((g) => check(op, g)).filter((m) => m !== '')).toEqual([]);
  });

  test('the native addon itself rejects missing and wrong arguments without aborting (child process)', () => {
    // Calls the binding directly, bypassing lib/ops's checks, in a separate process so that an
    // abort would show up as a signal/exit code instead of killing the test runner. Every call
    // throws a ConvkitError except the ones listed in `valid`, which are well-formed calls.
    const root = path.join(__dirname, '..');
    const script = `
      const native = require('node-gyp-build')(${JSON.stringify(root)});
      class ConvkitError extends Error {}
      const classes = {};
      for (const n of ['ShapeError','DTypeError','DeviceError','FormatError','ValueError']) classes[n] = class extends ConvkitError {};
      native.setErrorClasses({ ConvkitError, ...classes });
      const t = (shape) => native.fill(shape, 1);
      // Constructors, and the functions that take no arguments (JS ignores extra ones).
      const skip = new Set(['TensorHandle', 'Net', 'setErrorClasses', 'info', 'memory', 'synchronize', 'getPrecision', 'cudaStatus', 'emptyCache', 'jpegLibrary']);
      const argSets = {
        none: [],
        undefined: Array(12).fill(undefined),
        null: Array(12).fill(null),
        strings: Array(12).fill('s'),
        objects: Array(12).fill({}),
        minusOne: Array(12).fill(-1),
        NaN: Array(12).fill(NaN),
        huge: Array(12).fill(1e300),
        tensors: () => Array(12).fill(t([2, 2])),
        badActivation: () => [t([1, 4, 4, 1]), t([2, 2, 1, 1]), null, { strides: [1, 1], padding: 'valid', dilation: [1, 1], activation: 'bogus', groups: 1 }],
        badStrides: () => [t([1, 4, 4, 1]), t([2, 2, 1, 1]), null, { strides: [0, 2**31], padding: 'same', dilation: [-5, 1], activation: 'relu', groups: true }],
        pool: () => [t([1, 4, 4, 1]), { poolSize: [2, 2], strides: [2, 2], padding: 'valid' }],
        lpPool: () => [t([1, 4, 4, 1]), { poolSize: [2, 2], strides: [2, 2], padding: 'valid', p: 2 }],
        zeroPad: () => [t([1, 4, 4, 1]), { top: 2, bottom: 2, left: 2, right: 2 }],
        unknownOption: () => [t([1, 4, 4, 1]), { poolSize: [2, 2], strides: [2, 2], padding: 'valid', bogus: 1 }],
        missingOption: () => [t([1, 4, 4, 1]), { poolSize: [2, 2], padding: 'valid' }],
        positional: () => [t([1, 4, 4, 1]), 2, 2, 2, 2, 'valid', 2, 2],
        sigmoidNaN: () => [t([2, 3]), { activation: 'sigmoid', alpha: NaN }],
        twoTensors: () => [t([2, 3]), t([2, 3]), 'nope', 0],
        negativeShape: () => [new Float32Array(4), [2, 2, -1]],
        stringShape: () => [new Float32Array(4), 'shape'],
        int32: () => [new Int32Array(4), [4]],
      };
      let calls = 0;
      const ok = [], untyped = [];
      for (const name of Object.keys(native).sort()) {
        if (skip.has(name) || typeof native[name] !== 'function') continue;
        for (const [set, a] of Object.entries(argSets)) {
          const args = typeof a === 'function' ? a() : a;
          calls++;
          try { native[name](...args); ok.push(name + ' ' + set); }
          catch (e) { if (!(e instanceof ConvkitError)) untyped.push(name + ' ' + set + ': ' + (e && e.constructor && e.constructor.name) + ' ' + (e && e.message)); }
        }
      }
      // A raw handle that wraps nothing, and the network constructor with garbage.
      const h = new native.TensorHandle();
      for (const m of ['shape', 'dataSync']) { calls++; try { h[m](); ok.push('handle.' + m); } catch (e) { if (!(e instanceof ConvkitError)) untyped.push('handle.' + m + ': ' + e.message); } }
      for (const a of [[], [null, null], ['x', [{}]], [[28, 28, 1], [{ type: 'bogus' }]], [[-1], []]]) {
        calls++;
        try { new native.Net(...a); ok.push('Net ' + JSON.stringify(a)); } catch (e) { if (!(e instanceof ConvkitError)) untyped.push('Net: ' + e.message); }
      }
      native.synchronize();
      process.stdout.write(JSON.stringify({ calls, ok, untyped }));
    `;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60000 });
    expect({ status: r.status, signal: r.signal, stderr: r.stderr.slice(0, 2000) }).toEqual({ status: 0, signal: null, stderr: '' });
    const out = JSON.parse(r.stdout) as { calls: number; ok: string[]; untyped: string[] };
    expect(out.calls).toBeGreaterThan(600);
    expect(out.untyped).toEqual([]);
    // The well-formed calls among the sets: pooling [1,4,4,1] by 2x2 (stride 2, valid; Lp: p = 2;
    // zero padding by 2 on each side) with exactly their options, the global pools and softmax of
    // any rank-4 or rank-2 tensor, and the elementwise ops of two equal [2,2] or [2,3] tensors
    // (extra arguments ignored; mulGrad of three), and the distributed lifecycle calls given a number for their
    // timeout. An options object with a key the op does not take, without one
    // it needs, or positional numbers in its place, is refused.
    const anyFirstTensor = ['badActivation', 'badStrides', 'pool', 'lpPool', 'zeroPad', 'unknownOption', 'missingOption', 'positional'];
    expect(out.ok.sort()).toEqual([
      'add tensors', 'add twoTensors',
      'avgPool2d pool',
      ...anyFirstTensor.map((set) => `globalAvgPool ${set}`),
      ...anyFirstTensor.map((set) => `globalMaxPool ${set}`),
      'lpPool2d lpPool',
      'maxPool2d pool',
      'meanSquaredError tensors', 'meanSquaredError twoTensors',
      // distributed init and finalize outside a launcher, with a 1e300 ms timeout (no deadline)
      'mpiFinalize huge', 'mpiInit huge',
      'mul tensors', 'mul twoTensors', 'mulGrad tensors',
      ...anyFirstTensor.map((set) => `softmax ${set}`), 'softmax sigmoidNaN', 'softmax tensors', 'softmax twoTensors',
      'softmaxGrad tensors', 'softmaxGrad twoTensors',
      'zeroPadding2d zeroPad',
    ].sort());
  });
});
