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

describe('nothing crashes the process', () => {
  const opNames = Object.keys(ck.ops).filter((k) => typeof (ck.ops as Record<string, unknown>)[k] === 'function' && k !== 'pair');

  test('every ck.ops function called with no arguments throws a ConvkitError', () => {
    expect(opNames.length).toBeGreaterThan(30);
    for (const name of opNames) {
      const fn = (ck.ops as Record<string, (...a: unknown[]) => unknown>)[name];
      let thrown: unknown;
      try {
        fn();
      } catch (e) {
        thrown = e;
      }
      if (!(thrown instanceof ck.ConvkitError)) {
        throw new Error(`ck.ops.${name}() threw ${thrown === undefined ? 'nothing' : `${(thrown as Error)?.constructor?.name}: ${(thrown as Error)?.message}`}`);
      }
    }
  });

  test('every ck.ops function called with garbage arguments throws a ConvkitError', () => {
    const garbage: unknown[][] = [
      [null, null, null],
      ['x', 'y', 'z'],
      [{}, {}, {}],
      [ck.ones([2, 2]), 'y', 5],
      [ck.ones([2, 2]), ck.ones([2, 2]), 'opts'],
      [ck.ones([2, 2]), ck.ones([3]), ck.ones([4])],
      [ck.ones([1, 2, 2, 1]), { poolSize: NaN, strides: -1, padding: 7, rate: 2, step: -1 }],
    ];
    const ok: string[] = [];
    let typed = 0;
    for (const name of opNames) {
      const fn = (ck.ops as Record<string, (...a: unknown[]) => unknown>)[name];
      for (const args of garbage) {
        try {
          fn(...args);
          ok.push(`${name}(${args.map((a) => (a instanceof ck.Tensor ? a.toString() : JSON.stringify(a))).join(', ')})`);
        } catch (e) {
          if (!(e instanceof ck.ConvkitError)) {
            throw new Error(`ck.ops.${name}(garbage) threw a non-convkit ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
          }
          typed++;
        }
      }
    }
    // A few calls are legitimately valid (relu of a [2,2] tensor; extra arguments are ignored as in
    // tfjs); all the others threw a typed error rather than a TypeError or a crash.
    expect(typed + ok.length).toBe(opNames.length * garbage.length);
    expect(ok.length).toBeLessThan(typed / 5);
  });

  test('the native addon itself rejects missing and wrong arguments without aborting (child process)', () => {
    // Calls the binding directly, bypassing lib/ops's checks, in a separate process so that an
    // abort would show up as a signal/exit code instead of killing the test runner.
    const root = path.join(__dirname, '..');
    const script = `
      const native = require('node-gyp-build')(${JSON.stringify(root)});
      class ConvkitError extends Error {}
      const classes = {};
      for (const n of ['ShapeError','DTypeError','DeviceError','FormatError','ValueError']) classes[n] = class extends ConvkitError {};
      native.setErrorClasses({ ConvkitError, ...classes });
      const t = (shape) => native.fill(shape, 1);
      const skip = new Set(['TensorHandle', 'Net', 'setErrorClasses', 'info', 'memory', 'synchronize']);
      const argSets = [
        [],
        Array(12).fill(undefined),
        Array(12).fill(null),
        Array(12).fill('s'),
        Array(12).fill({}),
        Array(12).fill(-1),
        Array(12).fill(NaN),
        Array(12).fill(1e300),
        () => Array(12).fill(t([2, 2])),
        () => [t([1, 4, 4, 1]), t([2, 2, 1, 1]), null, 1, 1, 'valid', 1, 1, 'bogus', 1, 1, 1],
        () => [t([1, 4, 4, 1]), t([2, 2, 1, 1]), null, 0, 2**31, 'same', -5, 1, 'relu', true],
        () => [t([1, 4, 4, 1]), 2, 2, 2, 2, 'valid', 2, 2],
        () => [t([2, 3]), 'sigmoid', NaN],
        () => [t([2, 3]), t([2, 3]), 'nope', 0],
        () => [new Float32Array(4), [2, 2, -1]],
        () => [new Float32Array(4), 'shape'],
        () => [new Int32Array(4), [4]],
      ];
      let calls = 0, typed = 0, untyped = [];
      for (const name of Object.keys(native)) {
        if (skip.has(name) || typeof native[name] !== 'function') continue;
        for (const a of argSets) {
          const args = typeof a === 'function' ? a() : a;
          calls++;
          try { native[name](...args); }
          catch (e) { if (e instanceof ConvkitError) typed++; else untyped.push(name + ': ' + (e && e.constructor && e.constructor.name) + ' ' + (e && e.message)); }
        }
      }
      // A raw handle that wraps nothing, and the network constructor with garbage.
      const h = new native.TensorHandle();
      for (const m of ['shape', 'dataSync']) { calls++; try { h[m](); } catch (e) { if (e instanceof ConvkitError) typed++; else untyped.push('handle.' + m + ': ' + e.message); } }
      for (const a of [[], [null, null], ['x', [{}]], [[28, 28, 1], [{ type: 'bogus' }]], [[-1], []]]) {
        calls++;
        try { new native.Net(...a); } catch (e) { if (e instanceof ConvkitError) typed++; else untyped.push('Net: ' + e.message); }
      }
      native.synchronize();
      process.stdout.write(JSON.stringify({ calls, typed, untyped }));
    `;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60000 });
    expect({ status: r.status, signal: r.signal, stderr: r.stderr.slice(0, 2000) }).toEqual({ status: 0, signal: null, stderr: '' });
    const out = JSON.parse(r.stdout) as { calls: number; typed: number; untyped: string[] };
    expect(out.calls).toBeGreaterThan(300);
    expect(out.typed).toBeGreaterThan(out.calls * 0.8);
    expect(out.untyped).toEqual([]);
  });
});
