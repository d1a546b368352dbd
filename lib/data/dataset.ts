// A streaming Dataset as in tf.data: an async iterable that can be iterated again (once per
// epoch), with map, filter, shuffle (a seeded buffer, reshuffled each pass), batch, prefetch,
// cache, take, skip and repeat. Batching stacks tensors (and typed arrays) into one tensor per field,
// so `{ xs, ys }` elements become `{ xs: [b, ...], ys: [b, ...] }` batches for model.fitDataset.
import { ValueError } from '../errors';
import { Rng } from '../rng';
import { Tensor, tensor } from '../tensor';

type Source<T> = () => AsyncIterator<T> | Iterator<T>;

/** A tensor-of-values element: a tensor, a typed array, or a number. */
type Leaf = Tensor | Float32Array | number;

export class Dataset<T> implements AsyncIterable<T> {
  /** @param make a fresh iterator for each pass. @param size the element count, when known. */
  constructor(private readonly make: Source<T>, readonly size: number | null = null) {}

  /** A dataset over an array (or any iterable that can be iterated again). */
  static fromArray<T>(items: readonly T[]): Dataset<T> {
    return new Dataset(() => items[Symbol.iterator](), items.length);
  }

  /** A dataset from a generator function, called once per pass (like tf.data.generator). */
  static generator<T>(fn: () => AsyncIterator<T> | Iterator<T> | AsyncGenerator<T> | Generator<T>, size: number | null = null): Dataset<T> {
    return new Dataset(fn, size);
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    const it = this.make();
    return {
      next: async () => it.next(),
      return: async (v?: unknown) => (it.return ? it.return(v as never) : { done: true, value: v as never }),
    };
  }

  /**
   * Applies fn to each element. With `concurrency` > 1, that many calls run at once (in order:
   * the results come out as the elements went in), e.g. to decode images on several threads.
   */
  map<U>(fn: (item: T) => U | Promise<U>, opts: { concurrency?: number } = {}): Dataset<U> {
    const self = this;
    const concurrency = opts.concurrency ?? 1;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new ValueError(`Dataset.map: concurrency must be a positive integer, got ${concurrency}`);
    return new Dataset(async function* () {
      if (concurrency === 1) {
        for await (const item of self) yield await fn(item);
        return;
      }
      const window: Promise<U>[] = [];
      for await (const item of self) {
        const p = Promise.resolve().then(() => fn(item));
        p.catch(() => undefined);
        window.push(p);
        if (window.length >= concurrency) yield await window.shift()!;
      }
      while (window.length) yield await window.shift()!;
    }, this.size);
  }

  filter(fn: (item: T) => boolean | Promise<boolean>): Dataset<T> {
    const self = this;
    return new Dataset(async function* () {
      for await (const item of self) if (await fn(item)) yield item;
    });
  }

  /**
   * Shuffles through a buffer of `bufferSize` elements (a buffer as large as the dataset gives a
   * uniform shuffle). Each pass draws a new order; the sequence of orders follows `seed`.
   */
  shuffle(bufferSize: number, seed?: number): Dataset<T> {
    if (!Number.isInteger(bufferSize) || bufferSize < 1) throw new ValueError(`Dataset.shuffle: bufferSize must be a positive integer, got ${bufferSize}`);
    const self = this;
    const seeds = new Rng(seed);
    return new Dataset(async function* () {
      const rng = new Rng(seeds.nextUint32());
      const buffer: T[] = [];
      for await (const item of self) {
        if (buffer.length < bufferSize) {
          buffer.push(item);
          continue;
        }
        const k = rng.int(buffer.length);
        const out = buffer[k];
        buffer[k] = item;
        yield out;
      }
      while (buffer.length) {
        const k = rng.int(buffer.length);
        const out = buffer[k];
        buffer[k] = buffer[buffer.length - 1];
        buffer.pop();
        yield out;
      }
    }, this.size);
  }

  /** Groups `batchSize` elements; tensors, typed arrays and numbers (also as object fields) are stacked. */
  batch(batchSize: number, opts: { dropRemainder?: boolean } = {}): Dataset<Batched<T>> {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new ValueError(`Dataset.batch: batchSize must be a positive integer, got ${batchSize}`);
    const self = this;
    const size = this.size === null ? null : opts.dropRemainder ? Math.floor(this.size / batchSize) : Math.ceil(this.size / batchSize);
    return new Dataset(async function* () {
      let group: T[] = [];
      for await (const item of self) {
        group.push(item);
        if (group.length === batchSize) {
          yield stack(group) as Batched<T>;
          group = [];
        }
      }
      if (group.length && !opts.dropRemainder) yield stack(group) as Batched<T>;
    }, size);
  }

  /** Keeps up to `count` elements in flight ahead of the consumer (their async work overlaps). */
  prefetch(count: number): Dataset<T> {
    if (!Number.isInteger(count) || count < 1) throw new ValueError(`Dataset.prefetch: count must be a positive integer, got ${count}`);
    const self = this;
    return new Dataset(() => {
      const it = self[Symbol.asyncIterator]();
      const queue: Promise<IteratorResult<T>>[] = [];
      let done = false;
      const fill = () => {
        while (!done && queue.length < count) {
          const p = it.next();
          p.then((r) => { if (r.done) done = true; }, () => { done = true; });
          queue.push(p);
        }
      };
      return {
        next: async () => {
          fill();
          const r = await queue.shift()!;
          if (!r.done) fill();
          return r;
        },
        return: async (v?: unknown) => {
          done = true;
          return it.return ? it.return(v) : { done: true, value: v as T };
        },
      };
    }, this.size);
  }

  /**
   * Keeps the elements of the first complete pass in memory and replays them on later passes (as
   * tf.data's cache()), so later epochs skip the work before it: put it after decoding
   * (imageFolderDataset(...).train.cache().shuffle(n).batch(b)) and each image is decoded once.
   * A pass that stops early keeps nothing; the next pass fills the cache again. The cached
   * elements are shared by every pass: do not dispose them.
   */
  cache(): Dataset<T> {
    const self = this;
    let cached: T[] | null = null;
    return new Dataset(async function* () {
      if (cached) {
        yield* cached;
        return;
      }
      const filling: T[] = [];
      for await (const item of self) {
        filling.push(item);
        yield item;
      }
      cached = filling;
    }, this.size);
  }

  take(count: number): Dataset<T> {
    const self = this;
    return new Dataset(async function* () {
      if (count <= 0) return;
      let n = 0;
      for await (const item of self) {
        yield item;
        if (++n >= count) return;
      }
    }, this.size === null ? null : Math.min(this.size, Math.max(0, count)));
  }

  skip(count: number): Dataset<T> {
    const self = this;
    return new Dataset(async function* () {
      let n = 0;
      for await (const item of self) if (n++ >= count) yield item;
    }, this.size === null ? null : Math.max(0, this.size - count));
  }

  /** The dataset `count` times over (forever without a count). */
  repeat(count?: number): Dataset<T> {
    const self = this;
    return new Dataset(async function* () {
      for (let i = 0; count === undefined || i < count; i++) yield* self;
    }, count === undefined || this.size === null ? null : this.size * count);
  }

  async forEachAsync(fn: (item: T) => unknown): Promise<void> {
    for await (const item of this) await fn(item);
  }

  async toArray(): Promise<T[]> {
    const out: T[] = [];
    for await (const item of this) out.push(item);
    return out;
  }
}

export type Batched<T> = T extends Leaf ? Tensor
  : T extends readonly unknown[] ? T[]
  : T extends object ? { [K in keyof T]: T[K] extends Leaf ? Tensor : T[K][] }
  : T[];

function isLeaf(v: unknown): v is Leaf {
  return v instanceof Tensor || v instanceof Float32Array || typeof v === 'number';
}

function stackLeaves(items: Leaf[], where: string): Tensor {
  if (typeof items[0] === 'number') return tensor(Float32Array.from(items as number[]), [items.length]);
  const shape = items[0] instanceof Tensor ? [...items[0].shape] : [(items[0] as Float32Array).length];
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(items.length * size);
  items.forEach((it, i) => {
    const v = it instanceof Tensor ? it.dataSync() : (it as Float32Array);
    if (v.length !== size) throw new ValueError(`Dataset.batch: ${where} elements differ in shape ([${shape.join(',')}] then ${v.length} values)`);
    out.set(v, i * size);
  });
  return tensor(out, [items.length, ...shape]);
}

function stack(items: unknown[]): unknown {
  const first = items[0];
  if (isLeaf(first)) return stackLeaves(items as Leaf[], 'the');
  if (first && typeof first === 'object' && !Array.isArray(first)) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(first)) {
      const values = items.map((it) => (it as Record<string, unknown>)[key]);
      out[key] = isLeaf(values[0]) ? stackLeaves(values as Leaf[], `field '${key}' of the`) : values;
    }
    return out;
  }
  return items;
}
