// ck.data's Dataset at the edges the other suites leave open (found by mutation testing,
// docs/testing.md): argument checks, sizes through every transform, how far each transform reads
// ahead of its consumer (map's concurrency, prefetch, take), early exits reaching the source, the
// shuffle buffer's bounds, and batch's stacking and shape check. Expectations are tf.data's.
import { describe, expect, test } from '@jest/globals';
import * as ck from '../lib';
import { Dataset } from '../lib/data';

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const tick = () => new Promise((r) => setImmediate(r));

/** A source that counts the elements pulled from it and whether it was closed. */
function counted(n: number) {
  const stats = { pulled: 0, closed: 0, passes: 0 };
  const ds = ck.data.generator(function* () {
    stats.passes++;
    try {
      for (let i = 0; i < n; i++) {
        stats.pulled++;
        yield i;
      }
    } finally {
      stats.closed++;
    }
  }, n);
  return { ds, stats };
}

describe('sources', () => {
  test('array and generator: sizes, and a fresh pass each time', async () => {
    const a = ck.data.array([5, 6, 7]);
    expect(a.size).toBe(3);
    expect(await a.toArray()).toEqual([5, 6, 7]);
    expect(await a.toArray()).toEqual([5, 6, 7]);
    expect(ck.data.generator(function* () { yield 1; }).size).toBeNull();
    expect(Dataset.generator(function* () { yield 1; }).size).toBeNull();
    expect(ck.data.generator(function* () { yield 1; }, 1).size).toBe(1);
    expect(new Dataset(() => [1][Symbol.iterator]()).size).toBeNull();
    const { ds, stats } = counted(3);
    expect(await ds.toArray()).toEqual([0, 1, 2]);
    expect(await ds.toArray()).toEqual([0, 1, 2]);
    expect(stats.passes).toBe(2);
  });

  test('leaving a pass early closes the source (its finally runs); a source without return() is fine', async () => {
    const { ds, stats } = counted(10);
    for await (const v of ds) if (v === 2) break;
    expect(stats).toEqual({ pulled: 3, closed: 1, passes: 1 });
    const plain = new Dataset(() => ({ next: () => ({ done: false, value: 1 }) }));
    const it = plain[Symbol.asyncIterator]();
    expect(await it.next()).toEqual({ done: false, value: 1 });
    expect(await it.return!(7)).toEqual({ done: true, value: 7 });
  });

  test('forEachAsync awaits each call in order', async () => {
    const seen: number[] = [];
    await ck.data.array([3, 1, 2]).forEachAsync(async (v) => {
      await new Promise((r) => setTimeout(r, v));
      seen.push(v);
    });
    expect(seen).toEqual([3, 1, 2]);
  });
});

describe('map', () => {
  test('concurrency must be a positive integer', () => {
    for (const c of [0, -1, 1.5, NaN]) {
      expect(() => ck.data.array([1]).map((v) => v, { concurrency: c })).toThrow(new ck.ValueError(`Dataset.map: concurrency must be a positive integer, got ${c}`));
    }
  });

  test('keeps the size; one call at a time by default', async () => {
    let running = 0;
    let most = 0;
    const d = ck.data.array(range(6)).map(async (v) => {
      most = Math.max(most, ++running);
      await tick();
      running--;
      return v * 10;
    });
    expect(d.size).toBe(6);
    expect(await d.toArray()).toEqual(range(6).map((v) => v * 10));
    expect(most).toBe(1);
  });

  test('with concurrency n, n calls run at once and the results keep the input order', async () => {
    let running = 0;
    let most = 0;
    const d = ck.data.array(range(9)).map(async (v) => {
      most = Math.max(most, ++running);
      await new Promise((r) => setTimeout(r, (9 - v) * 3));
      running--;
      return v;
    }, { concurrency: 3 });
    expect(await d.toArray()).toEqual(range(9));
    expect(most).toBe(3);
    expect(d.size).toBe(9);
  });

  test('with concurrency, a failing call rejects the pass with its error', async () => {
    const d = ck.data.array(range(5)).map(async (v) => {
      if (v === 3) throw new Error('bad element 3');
      return v;
    }, { concurrency: 2 });
    await expect(d.toArray()).rejects.toThrow('bad element 3');
  });
});

describe('filter, take, skip, repeat', () => {
  test('filter: an async predicate; the size is unknown', async () => {
    const d = ck.data.array(range(6)).filter(async (v) => v % 2 === 1);
    expect(await d.toArray()).toEqual([1, 3, 5]);
    expect(d.size).toBeNull();
  });

  test('take(n) reads n elements and no more, then closes the source', async () => {
    const { ds, stats } = counted(10);
    const t = ds.take(3);
    expect(t.size).toBe(3);
    expect(await t.toArray()).toEqual([0, 1, 2]);
    expect(stats.pulled).toBe(3);
    expect(stats.closed).toBe(1);
    expect(ds.take(20).size).toBe(10);
    expect(await ds.take(20).toArray()).toEqual(range(10));
    expect(ck.data.generator(function* () { yield 1; }).take(5).size).toBeNull();
  });

  test('take(0) or a negative count reads nothing', async () => {
    for (const n of [0, -2]) {
      const { ds, stats } = counted(4);
      expect(await ds.take(n).toArray()).toEqual([]);
      expect(ds.take(n).size).toBe(0);
      expect(stats.passes).toBe(0);
    }
  });

  test('skip: sizes and elements, beyond the end too', async () => {
    const d = ck.data.array(range(5));
    expect(await d.skip(2).toArray()).toEqual([2, 3, 4]);
    expect(d.skip(2).size).toBe(3);
    expect(await d.skip(0).toArray()).toEqual(range(5));
    expect(await d.skip(9).toArray()).toEqual([]);
    expect(d.skip(9).size).toBe(0);
    expect(ck.data.generator(function* () { yield 1; }).skip(1).size).toBeNull();
  });

  test('repeat: count passes of the source, or forever; sizes', async () => {
    const { ds, stats } = counted(2);
    expect(await ds.repeat(3).toArray()).toEqual([0, 1, 0, 1, 0, 1]);
    expect(stats.passes).toBe(3);
    expect(ds.repeat(3).size).toBe(6);
    expect(await ds.repeat(0).toArray()).toEqual([]);
    expect(ds.repeat().size).toBeNull();
    expect(await ds.repeat().take(5).toArray()).toEqual([0, 1, 0, 1, 0]);
    expect(ck.data.generator(function* () { yield 1; }).repeat(2).size).toBeNull();
  });
});

describe('shuffle', () => {
  test('bufferSize must be a positive integer', () => {
    for (const b of [0, -3, 2.5]) {
      expect(() => ck.data.array([1]).shuffle(b)).toThrow(new ck.ValueError(`Dataset.shuffle: bufferSize must be a positive integer, got ${b}`));
    }
  });

  test('a buffer of 1 keeps the order; the size is kept', async () => {
    const d = ck.data.array(range(20)).shuffle(1, 3);
    expect(await d.toArray()).toEqual(range(20));
    expect(d.size).toBe(20);
  });

  test('the k-th element out is one of the first k + bufferSize in, and each comes out once', async () => {
    for (const seed of [1, 2, 3, 4]) {
      const out = await ck.data.array(range(40)).shuffle(5, seed).toArray();
      expect([...out].sort((a, b) => a - b)).toEqual(range(40));
      out.forEach((v, k) => expect(v).toBeLessThan(k + 5));
      expect(out).not.toEqual(range(40));
    }
  });

  test('without a seed, two datasets draw different orders', async () => {
    const a = await ck.data.array(range(30)).shuffle(30).toArray();
    const b = await ck.data.array(range(30)).shuffle(30).toArray();
    expect(a).not.toEqual(b);
  });
});

describe('prefetch', () => {
  test('count must be a positive integer', () => {
    for (const c of [0, -1, 0.5]) {
      expect(() => ck.data.array([1]).prefetch(c)).toThrow(new ck.ValueError(`Dataset.prefetch: count must be a positive integer, got ${c}`));
    }
  });

  test('keeps `count` elements requested ahead of the consumer, and the size', async () => {
    const { ds, stats } = counted(10);
    const p = ds.prefetch(3);
    expect(p.size).toBe(10);
    const it = p[Symbol.asyncIterator]();
    expect((await it.next()).value).toBe(0);
    await tick();
    expect(stats.pulled).toBe(4);   // the one consumed and 3 ahead
    expect((await it.next()).value).toBe(1);
    await tick();
    expect(stats.pulled).toBe(5);
    expect(await it.return!()).toEqual({ done: true, value: undefined });
    expect(stats.closed).toBe(1);
  });

  test('reads to the end without asking past it, and passes on a failure', async () => {
    const { ds, stats } = counted(4);
    expect(await ds.prefetch(2).toArray()).toEqual(range(4));
    expect(stats.pulled).toBe(4);
    const failing = ck.data.generator(function* () {
      yield 1;
      throw new Error('source failed');
    }).prefetch(2);
    await expect(failing.toArray()).rejects.toThrow('source failed');
  });

  /** A plain iterator over 0..n-1 (failing at `failAt` if given) that counts the calls made after it has ended, failed or been closed. */
  function watched(n: number, failAt = -1) {
    const stats = { callsAfterEnd: 0 };
    let ended = false;
    const ds = new Dataset(() => {
      let i = 0;
      ended = false;
      return {
        next: () => {
          if (ended) stats.callsAfterEnd++;
          if (i === failAt) {
            ended = true;
            throw new Error('source failed');
          }
          if (i >= n) {
            ended = true;
            return { done: true as const, value: undefined };
          }
          return { done: false, value: i++ };
        },
        return: () => {
          ended = true;
          return { done: true as const, value: undefined };
        },
      };
    });
    return { ds, stats };
  }

  test('once it has seen the source end or fail, it asks the source for nothing more', async () => {
    // up to `count` requests go out at once, so the end comes after the first `count` elements
    for (const count of [1, 2, 4]) {
      const ended = watched(6);
      expect(await ended.ds.prefetch(count).toArray()).toEqual(range(6));
      expect(ended.stats.callsAfterEnd).toBe(0);
      const failed = watched(6, 4);
      await expect(failed.ds.prefetch(count).toArray()).rejects.toThrow('source failed');
      await tick();
      expect(failed.stats.callsAfterEnd).toBe(0);
    }
  });

  test('once closed with return(), the source is not asked for more', async () => {
    const { ds, stats } = watched(10);
    const it = ds.prefetch(2)[Symbol.asyncIterator]();
    expect((await it.next()).value).toBe(0);
    await it.return!();
    await it.next();
    await tick();
    expect(stats.callsAfterEnd).toBe(0);
  });

  test('return() on a source without one', async () => {
    const plain = new Dataset(() => ({ next: () => ({ done: false, value: 1 }) })).prefetch(1);
    const it = plain[Symbol.asyncIterator]();
    await it.next();
    expect(await it.return!(5)).toEqual({ done: true, value: 5 });
  });
});

describe('batch', () => {
  test('batchSize must be a positive integer', () => {
    for (const b of [0, -1, 1.5]) {
      expect(() => ck.data.array([1]).batch(b)).toThrow(new ck.ValueError(`Dataset.batch: batchSize must be a positive integer, got ${b}`));
    }
  });

  test('batch(1): one element a batch, with its batch axis', async () => {
    const batches = await ck.data.array([Float32Array.of(1, 2), Float32Array.of(3, 4)]).batch(1).toArray();
    expect(batches.map((t) => t.shape)).toEqual([[1, 2], [1, 2]]);
    expect(batches.map((t) => Array.from(t.dataSync()))).toEqual([[1, 2], [3, 4]]);
  });

  test('sizes: the last partial batch counts unless dropped; unknown stays unknown', async () => {
    const d = ck.data.array(range(7));
    expect(d.batch(3).size).toBe(3);
    expect(d.batch(3, { dropRemainder: true }).size).toBe(2);
    expect(d.batch(7, { dropRemainder: true }).size).toBe(1);
    expect((await d.batch(3, { dropRemainder: true }).toArray()).map((t) => Array.from(t.dataSync()))).toEqual([[0, 1, 2], [3, 4, 5]]);
    expect((await d.batch(3).toArray()).map((t) => Array.from(t.dataSync()))).toEqual([[0, 1, 2], [3, 4, 5], [6]]);
    expect(ck.data.generator(function* () { yield 1; }).batch(2).size).toBeNull();
  });

  test('tensors stack along a new first axis, typed arrays as rows', async () => {
    const [t] = await ck.data.array([ck.tensor([1, 2, 3, 4, 5, 6], [2, 3]), ck.tensor([7, 8, 9, 10, 11, 12], [2, 3])]).batch(2).toArray();
    expect(t.shape).toEqual([2, 2, 3]);
    expect(Array.from(t.dataSync())).toEqual(range(12).map((v) => v + 1));
    const [r] = await ck.data.array([Float32Array.of(1, 2), Float32Array.of(3, 4), Float32Array.of(5, 6)]).batch(3).toArray();
    expect(r.shape).toEqual([3, 2]);
    expect(Array.from(r.dataSync())).toEqual([1, 2, 3, 4, 5, 6]);
  });

  test('elements of different sizes are a ValueError naming the field', async () => {
    await expect(ck.data.array([Float32Array.of(1, 2), Float32Array.of(3)]).batch(2).toArray())
      .rejects.toThrow(new ck.ValueError('Dataset.batch: the elements differ in shape ([2] then 1 values)'));
    await expect(ck.data.array([{ xs: ck.tensor([1, 2], [2]) }, { xs: ck.tensor([1, 2, 3], [3]) }]).batch(2).toArray())
      .rejects.toThrow(new ck.ValueError("Dataset.batch: field 'xs' of the elements differ in shape ([2] then 3 values)"));
    await expect(ck.data.array([ck.tensor([1, 2, 3, 4, 5, 6], [2, 3]), ck.tensor([1, 2, 3, 4], [4])]).batch(2).toArray())
      .rejects.toThrow(new ck.ValueError('Dataset.batch: the elements differ in shape ([2,3] then 4 values)'));
  });

  test('object fields: leaves are stacked, other values gathered into arrays; arrays and strings are gathered as they are', async () => {
    const [b] = await ck.data.array([{ n: 1, tag: 'a' }, { n: 2, tag: 'b' }]).batch(2).toArray();
    expect(b.n.shape).toEqual([2]);
    expect(Array.from(b.n.dataSync())).toEqual([1, 2]);
    expect(b.tag).toEqual(['a', 'b']);
    expect(Object.keys(b)).toEqual(['n', 'tag']);
    const pairs = await ck.data.array([[1, 2], [3, 4]]).batch(2).toArray();
    expect(pairs).toEqual([[[1, 2], [3, 4]]]);
    const words = await ck.data.array(['x', 'y', 'z']).batch(2).toArray();
    expect(words).toEqual([['x', 'y'], ['z']]);
  });
});
