// Tensors: creation (zero-copy Float32Array wrapping, nested arrays, other typed arrays), data()
// and dataSync(), dispose, reshape, native memory accounting, and the event loop during a kernel.
import { describe, expect, test } from '@jest/globals';
import * as ck from '../lib';
import * as ref from '../test-support/reference';

/**
 * Measures the change in ck.memory() across `fn`. A finalizer of some unrelated, garbage-collected
 * tensor can free memory at any moment, so a measurement disturbed that way is repeated.
 */
function memoryDelta<T>(fn: () => T, expected: { bytes: number; allocations: number }): { result: T; bytes: number; allocations: number } {
  let last = { result: undefined as unknown as T, bytes: NaN, allocations: NaN };
  for (let attempt = 0; attempt < 5; attempt++) {
    const before = ck.memory();
    const result = fn();
    const after = ck.memory();
    last = { result, bytes: after.hostBytes - before.hostBytes, allocations: after.hostAllocations - before.hostAllocations };
    if (last.bytes === expected.bytes && last.allocations === expected.allocations) return last;
  }
  return last;
}

describe('creation', () => {
  test('a Float32Array is wrapped without a copy', async () => {
    const data = new Float32Array([1, 2, 3, 4, 5, 6]);
    const x = ck.tensor(data, [2, 3]);
    expect(x.dataSync()).toBe(data);
    expect(await x.data()).toBe(data);
    // Without a shape it is a vector.
    const v = ck.tensor(data);
    expect(v.shape).toEqual([6]);
    expect(v.dataSync()).toBe(data);
  });

  test('wrapping a Float32Array allocates no native memory', () => {
    const data = new Float32Array(1000);
    const d = memoryDelta(() => ck.tensor(data, [10, 100]), { bytes: 0, allocations: 0 });
    expect(d.bytes).toBe(0);
    expect(d.allocations).toBe(0);
    expect(d.result.dataSync()).toBe(data);
  });

  test('nested arrays give their shape and values', () => {
    const x = ck.tensor([[1, 2, 3], [4, 5, 6]]);
    expect(x.shape).toEqual([2, 3]);
    expect(x.rank).toBe(2);
    expect(x.size).toBe(6);
    expect(Array.from(x.dataSync())).toEqual([1, 2, 3, 4, 5, 6]);
    const y = ck.tensor([[[1], [2]], [[3], [4]], [[5], [6]]]);
    expect(y.shape).toEqual([3, 2, 1]);
    expect(Array.from(y.dataSync())).toEqual([1, 2, 3, 4, 5, 6]);
    expect(ck.tensor([1, 2, 3, 4], [2, 2]).shape).toEqual([2, 2]);
    expect(ck.tensor([[1, 2], [3, 4]], [4]).shape).toEqual([4]);
  });

  test('number arrays and other typed arrays are copied to float32', () => {
    const src = [0.1, -2, 3.5];
    const a = ck.tensor(src);
    src[0] = 99;
    expect(Array.from(a.dataSync())).toEqual([Math.fround(0.1), -2, 3.5]);
    const i32 = new Int32Array([7, -8, 9]);
    const b = ck.tensor(i32);
    i32[0] = 0;
    expect(Array.from(b.dataSync())).toEqual([7, -8, 9]);
    expect(Array.from(ck.tensor(new Float64Array([1e-3, 2])).dataSync())).toEqual([Math.fround(1e-3), 2]);
    expect(Array.from(ck.tensor(new Uint8Array([255, 0])).dataSync())).toEqual([255, 0]);
  });

  test('zeros, ones and fill', () => {
    expect(Array.from(ck.zeros([2, 3]).dataSync())).toEqual([0, 0, 0, 0, 0, 0]);
    expect(Array.from(ck.ones([4]).dataSync())).toEqual([1, 1, 1, 1]);
    const f = ck.fill([3, 1, 2], -2.5);
    expect(f.shape).toEqual([3, 1, 2]);
    expect(Array.from(f.dataSync())).toEqual(new Array(6).fill(-2.5));
    const s = ck.fill([], 7);
    expect(s.shape).toEqual([]);
    expect(s.size).toBe(1);
    expect(Array.from(s.dataSync())).toEqual([7]);
    const empty = ck.zeros([0, 3]);
    expect(empty.size).toBe(0);
    expect(empty.dataSync().length).toBe(0);
  });

  test('shape is frozen; device, to(cpu) and toString', () => {
    const x = ck.zeros([2, 3]);
    expect(Object.isFrozen(x.shape)).toBe(true);
    expect(x.device).toBe('cpu');
    expect(x.to('cpu')).toBe(x);
    expect(x.toString()).toBe('Tensor(shape=[2,3], device=cpu)');
  });
});

describe('reading values', () => {
  test('data() is asynchronous and resolves with the op result', async () => {
    const rng = new ref.Rng(1);
    const xs: [number, number, number, number] = [2, 9, 9, 4];
    const ws: [number, number, number, number] = [3, 3, 4, 5];
    const x = rng.array(ref.prod(xs));
    const w = rng.array(ref.prod(ws));
    const y = ck.ops.conv2d(ck.tensor(x, xs), ck.tensor(w, ws), { padding: 'same' });
    const p = y.data();
    expect(typeof p.then).toBe('function');
    let resolved = false;
    void p.then(() => (resolved = true));
    expect(resolved).toBe(false); // never synchronously
    const values = await p;
    expect(resolved).toBe(true);
    ref.expectClose(Float32Array.from(values), ref.conv2d(x, w, { xShape: xs, wShape: ws, padding: 'same' }), { rtol: 1e-4, atol: 1e-5, name: 'data()' });
    // dataSync returns the same values (the same view).
    expect(Array.from(y.dataSync())).toEqual(Array.from(values));
  });

  test('array() gives nested arrays', async () => {
    const x = ck.tensor([[1, 2, 3], [4, 5, 6]]);
    expect(await x.array()).toEqual([[1, 2, 3], [4, 5, 6]]);
    expect(await ck.fill([], 3).array()).toBe(3);
  });

  test('ops read their inputs in order: an in-place update is visible to a later read', async () => {
    const w = ck.tensor(new Float32Array([1, 2, 3]));
    ck.ops.sgdUpdate(w, ck.tensor([1, 1, 1]), { learningRate: 0.5 });
    const y = ck.ops.relu(w);
    expect(Array.from(await y.data())).toEqual([0.5, 1.5, 2.5]);
  });
});

describe('dispose and reshape', () => {
  test('dispose is idempotent and marks the tensor', () => {
    const x = ck.ones([3]);
    expect(x.isDisposed).toBe(false);
    x.dispose();
    expect(x.isDisposed).toBe(true);
    expect(() => x.dispose()).not.toThrow();
    expect(x.isDisposed).toBe(true);
  });

  test('a data view stays valid after dispose', () => {
    const x = ck.fill([4], 2);
    const view = x.dataSync();
    x.dispose();
    expect(Array.from(view)).toEqual([2, 2, 2, 2]);
  });

  test('reshape with -1 infers the size and keeps the values', () => {
    const x = ck.tensor([[1, 2, 3], [4, 5, 6]]);
    const y = x.reshape([3, -1]);
    expect(y.shape).toEqual([3, 2]);
    expect(Array.from(y.dataSync())).toEqual([1, 2, 3, 4, 5, 6]);
    expect(x.reshape([-1]).shape).toEqual([6]);
    expect(x.reshape([1, -1, 1]).shape).toEqual([1, 6, 1]);
    expect(x.shape).toEqual([2, 3]);
  });
});

describe('native memory accounting', () => {
  test('a new native tensor adds exactly its bytes, and dispose (with no data view) removes them', () => {
    const n = 12345;
    const made = memoryDelta(() => ck.zeros([5, n]), { bytes: 5 * n * 4, allocations: 1 });
    expect(made.bytes).toBe(5 * n * 4);
    expect(made.allocations).toBe(1);
    const x = made.result;
    const freed = memoryDelta(() => x.dispose(), { bytes: -5 * n * 4, allocations: -1 });
    expect(freed.bytes).toBe(-5 * n * 4);
    expect(freed.allocations).toBe(-1);
  });

  test("an op's output is counted too", () => {
    const a = ck.ones([7, 9]);
    const made = memoryDelta(() => ck.ops.relu(a), { bytes: 7 * 9 * 4, allocations: 1 });
    expect(made.bytes).toBe(7 * 9 * 4);
    made.result.dataSync(); // let it finish before the next measurement
    const peak = ck.memory().hostPeakBytes;
    expect(peak).toBeGreaterThanOrEqual(ck.memory().hostBytes);
  });
});

describe('the event loop', () => {
  test('keeps ticking while a large convolution runs', async () => {
    const rng = new ref.Rng(2);
    const xs = [8, 64, 64, 32];
    const ws = [3, 3, 32, 64];
    const x = ck.tensor(rng.array(ref.prod(xs)), xs);
    const w = ck.tensor(rng.array(ref.prod(ws)), ws);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const t0 = process.hrtime.bigint();
    try {
      // Two chained convolutions (tens of milliseconds on a fast CPU); the second waits for the first.
      const y = ck.ops.conv2d(x, w, { padding: 'same' });
      const z = ck.ops.conv2d(y, ck.fill([3, 3, 64, 64], 0.01), { padding: 'same' });
      const [values, zv] = await Promise.all([y.data(), z.data()]);
      expect(zv.length).toBe(8 * 64 * 64 * 64);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      expect(values.length).toBe(8 * 64 * 64 * 64);
      // Spot-check one output against the reference (the full reference would be slow in JS).
      const xv = x.dataSync();
      const wv = w.dataSync();
      const [n, p, q, k] = [3, 10, 0, 5];
      let s = 0;
      for (let r = 0; r < 3; r++) {
        for (let c2 = 0; c2 < 3; c2++) {
          const ih = p - 1 + r;
          const iw = q - 1 + c2;
          if (iw < 0 || iw >= 64) continue;
          for (let c = 0; c < 32; c++) s += xv[((n * 64 + ih) * 64 + iw) * 32 + c] * wv[((r * 3 + c2) * 32 + c) * 64 + k];
        }
      }
      expect(values[((n * 64 + p) * 64 + q) * 64 + k]).toBeCloseTo(s, 3);
      // The 1 ms timer must have fired while kernels ran. On a CPU fast enough to finish the two
      // in 20 ms or less, longer chains follow (2, 4, ... convolutions) until the awaited kernel
      // time passes 20 ms, so the check below always applies.
      const average = ck.fill([3, 3, 64, 64], 1 / 576);
      let waited = ms;
      for (let chain = 2; waited <= 20 && chain <= 64; chain *= 2) {
        let t = z;
        for (let i = 0; i < chain; i++) {
          const next = ck.ops.conv2d(t, average, { padding: 'same' });
          if (t !== z) t.dispose();  // its consumer is queued and holds it
          t = next;
        }
        const t1 = process.hrtime.bigint();
        await t.data();
        waited += Number(process.hrtime.bigint() - t1) / 1e6;
      }
      expect(waited).toBeGreaterThan(20);
      expect(ticks).toBeGreaterThan(0);
    } finally {
      clearInterval(timer);
    }
  });
});
