// Memory: a soak of many thousand op calls and epochs of fit under garbage-collector pressure
// keeps RSS and native memory flat; ck.memory() counts exactly the tensors alive; tensors,
// models and ops' temporaries are freed by dispose() or by the collector; disposing a tensor that
// a queued op still reads (or whose values are still on their way) is safe.
// CONVKIT_LONG=1 (npm run test:long) soaks 100 times longer.
import { beforeAll, describe, expect, jest, test } from '@jest/globals';
import * as path from 'path';
import * as v8 from 'v8';
import * as vm from 'vm';
import * as ck from '../lib';
import { ensureBuilt, jsonLines } from '../test-support/cli-fixtures';
import { randomArray, tinyData, tinyModel, weightsOf } from '../test-support/helpers';
import * as ref from '../test-support/reference';
import { CHILDREN, LONG, runToEnd } from '../test-support/reliability';

jest.setTimeout(LONG ? 3600000 : 120000);

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const tick = () => new Promise((r) => setImmediate(r));

/**
 * Runs the collector and then the finalizers it queued, until `done()` (at most `rounds` times):
 * an object let go by a settled promise chain may become garbage only a few collections later.
 */
async function collectUntil(done: () => boolean, rounds = 12): Promise<void> {
  for (let i = 0; i < rounds && !done(); i++) {
    gc();
    await tick();
  }
}

/** Native memory once two collections in a row leave it unchanged: what a test measures from. */
async function baseline(): Promise<ck.MemoryInfo> {
  const seen: number[] = [];
  await collectUntil(() => {
    seen.push(ck.memory().hostBytes);
    return seen.length >= 3 && seen.at(-1) === seen.at(-2) && seen.at(-2) === seen.at(-3);
  });
  return ck.memory();
}

/**
 * Collects until native memory is back to `m0` (or below it: garbage of earlier tests may go
 * too); returns how much more is held than at `m0` (0 or less when nothing leaked).
 */
async function held(m0: ck.MemoryInfo): Promise<{ bytes: number; allocations: number }> {
  const delta = () => ({ bytes: ck.memory().hostBytes - m0.hostBytes, allocations: ck.memory().hostAllocations - m0.hostAllocations });
  await collectUntil(() => delta().bytes <= 0 && delta().allocations <= 0);
  return delta();
}

/** Waits for the ops queued so far on the default stream, keeping no result alive. */
const drained = () => ck.ops.relu(ck.fill([1], 0)).data().then(() => undefined);

/** Nothing held beyond the baseline. */
function expectNothingHeld(d: { bytes: number; allocations: number }): void {
  expect(d.bytes).toBeLessThanOrEqual(0);
  expect(d.allocations).toBeLessThanOrEqual(0);
}

const bytesOf = (ts: ck.Tensor[]) => ts.reduce((n, t) => n + t.size * 4, 0);

beforeAll(() => {
  ensureBuilt();
});

describe('soak under garbage-collector pressure (a child process, young generation of 1 MiB)', () => {
  const OPS = LONG ? 1200000 : 12000;
  const EPOCHS = LONG ? 1000 : 20;
  // RSS moves with V8's old space under this GC pressure and with the allocator: 3-18 MiB over
  // the op calls in six runs (with and without the threads' scratch caches) and once 27 MiB
  // (a full jest run right after a build), so the bound is 32 MiB; a leak of one op result per
  // iteration would be ~100 MB here, and of one prediction per epoch ~8 KB a sample. Native
  // memory is checked exactly above.
  const RSS_BOUND = 32 * 2 ** 20;

  test(`${OPS} iterations of 8 op families (~${Math.round(OPS * 4.1 / 1000)}k op calls) and ${EPOCHS} epochs of fit: RSS within ${RSS_BOUND / 2 ** 20} MiB, native memory flat`, async () => {
    const { stdout } = await runToEnd(path.join(CHILDREN, 'soak.js'), [String(OPS), String(EPOCHS)],
      { nodeOptions: ['--expose-gc', '--max-semi-space-size=1'] });
    const [{ opCalls, ops, fit }] = jsonLines(stdout) as { opCalls: number; ops: Sample[]; fit: Sample[] }[];
    type Sample = { at: number; rss: number; hostBytes: number; hostAllocations: number };
    expect(opCalls).toBeGreaterThan(OPS * 4);
    expect(ops).toHaveLength(10);
    expect(fit).toHaveLength(EPOCHS);
    // every op result was freed (disposed or collected): at most the last iteration's are alive
    for (const s of ops) {
      expect(s.hostBytes).toBeLessThan(64 * 1024);
      expect(s.hostAllocations).toBeLessThanOrEqual(8);
    }
    // fit: the model, its planned buffers (the first epoch plans them for training and for the
    // evaluation at its end) and the data; from then on not a byte more, epoch after epoch
    for (const s of fit.slice(1)) {
      expect(s.hostBytes).toBe(fit[1].hostBytes);
      expect(s.hostAllocations).toBe(fit[1].hostAllocations);
    }
    // RSS stays within the bound of where each phase settled: the op calls after their first
    // tenth (warm-up), the fit after its first epoch (which sets up the model's buffers, its
    // inference plans and the threads' scratch)
    const opsRss = ops.map((s) => s.rss), fitRss = fit.map((s) => s.rss);
    const opsSpread = Math.max(...opsRss.slice(1)) - opsRss[0];
    const fitSpread = Math.max(...fitRss.slice(1)) - fitRss[0];
    const mib = (b: number) => (b / 2 ** 20).toFixed(1);
    process.stdout.write(`soak: ${opCalls} op calls + ${EPOCHS} epochs; RSS ${mib(opsRss[0])} MiB after warm-up, ops max ${mib(Math.max(...opsRss))} MiB; fit ${mib(fitRss[0])} MiB after epoch 1, max ${mib(Math.max(...fitRss))} MiB, end ${mib(fitRss.at(-1)!)} MiB; native ${fit[1].hostBytes} bytes in ${fit[1].hostAllocations} allocations from epoch 2 on\n`);
    expect(opsSpread).toBeLessThan(RSS_BOUND);
    expect(fitSpread).toBeLessThan(RSS_BOUND);
  });
});

describe('ck.memory() is exact', () => {
  test('bytes and allocations of the tensors alive: fill, ops, gradients, copies; a wrapped Float32Array costs nothing', async () => {
    const m0 = await baseline();
    const delta = () => {
      const m = ck.memory();
      return { bytes: m.hostBytes - m0.hostBytes, allocations: m.hostAllocations - m0.hostAllocations };
    };
    const x = ck.fill([2, 9, 9, 3], 0.5);
    const w = ck.tensor(randomArray(3 * 3 * 3 * 5, 1, -1, 1), [3, 3, 3, 5]);  // wraps: no native memory
    expect(delta()).toEqual({ bytes: 2 * 9 * 9 * 3 * 4, allocations: 1 });

    const alive: ck.Tensor[] = [x];
    const y = ck.ops.conv2d(x, w, { padding: 'valid' });
    alive.push(y);
    const g = ck.ops.conv2dGrad(y, x, w, { padding: 'valid' });
    alive.push(g.dx, g.dw, g.db);
    const p = ck.ops.maxPool2d(y, { poolSize: 2 });
    const d = ck.ops.dropout(p, { rate: 0.5, seed: 3 });
    const r = p.reshape([2, -1]);
    const s = ck.ops.softmax(r);
    alive.push(p, d.y, d.mask, r, s);
    await s.data();
    await g.db.data();
    // the kernels' temporaries are gone; what is left is exactly the tensors alive
    expect(delta()).toEqual({ bytes: bytesOf(alive), allocations: alive.length });
    expect(ck.memory().hostPeakBytes).toBeGreaterThanOrEqual(ck.memory().hostBytes);

    for (const t of alive) t.dispose();
    x.dispose();  // twice: a no-op
    // the two views data() gave keep their tensors' memory until they are collected
    expect(delta()).toEqual({ bytes: bytesOf([s, g.db]), allocations: 2 });
    expectNothingHeld(await held(m0));
  });

  test('tensors and models dropped without dispose() are freed by the garbage collector', async () => {
    const m0 = await baseline();
    const made = (() => {
      for (let i = 0; i < 200; i++) ck.ops.relu(ck.fill([10000], -1));
      return ck.memory().hostBytes - m0.hostBytes;
    })();
    // 16 MB were made; the collector may have taken some already, not the last ones
    expect(made).toBeGreaterThanOrEqual(2 * 40000);
    await drained();
    expectNothingHeld(await held(m0));

    // a trained model: weights, optimizer state, planned buffers, all released with it
    await (async () => {
      ck.setSeed(1);
      const { x, labels } = tinyData(60, 1);
      const model = tinyModel({ dropout: 0.2 });
      model.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
      await model.fit(x, ck.toCategorical(labels, 3), { epochs: 2, batchSize: 16, verbose: 0 });
      await model.predict(x).data();
      expect(ck.memory().hostBytes).toBeGreaterThan(m0.hostBytes);
    })();
    expectNothingHeld(await held(m0));
  });
});

describe('disposing a tensor that an op still reads', () => {
  /** A convolution that keeps the default stream busy for a while, so what is queued behind it waits. */
  function busy(): ck.Tensor {
    return ck.ops.conv2d(ck.fill([8, 96, 96, 32], 0.01), ck.fill([3, 3, 32, 64], 0.01), { padding: 'same' });
  }

  test('inputs disposed and their Float32Arrays dropped while the op is queued: the op reads the right values', async () => {
    const spec: ref.ConvSpec = { xShape: [2, 11, 10, 3], wShape: [3, 3, 3, 4], strides: [2, 1], padding: 'same' };
    const xs = randomArray(2 * 11 * 10 * 3, 5, -1, 1);
    const ws = randomArray(3 * 3 * 3 * 4, 6, -1, 1);
    const want = ref.conv2d(xs, ws, spec, undefined, true);
    const before = busy();
    let x: ck.Tensor | null = ck.tensor(Float32Array.from(xs), [2, 11, 10, 3]);
    let w: ck.Tensor | null = ck.tensor(Float32Array.from(ws), [3, 3, 3, 4]);
    const y = ck.ops.conv2d(x, w, { strides: [2, 1], padding: 'same' });
    const z = ck.ops.relu(y);
    x.dispose();
    w.dispose();
    y.dispose();  // z still reads it
    x = null;
    w = null;
    // the wrapped arrays are unreachable from JS now; only the queued ops keep them
    gc();
    await tick();
    gc();
    before.dispose();
    ref.expectClose(await z.data(), want);
    expect(() => y.data()).toThrow(ck.ValueError);
  });

  test('an output disposed before its values arrive: data() rejects with a ValueError, nothing leaks', async () => {
    const m0 = await baseline();
    const y = busy();
    const pending = y.data();
    y.dispose();
    await expect(pending).rejects.toThrow(/data: the tensor has been disposed/);
    expect(() => y.dataSync()).toThrow(ck.ValueError);
    expect(() => ck.ops.relu(y)).toThrow(/disposed/);
    await drained();
    expectNothingHeld(await held(m0));
  });

  test('a view from dataSync() outlives dispose(): the memory stays valid until the view is collected', async () => {
    const t = ck.ops.relu(ck.tensor([-1, 2, -3, 4], [4]));
    const view = t.dataSync();
    t.dispose();
    gc();
    await tick();
    gc();
    expect(Array.from(view)).toEqual([0, 2, 0, 4]);
  });

  test('the training data disposed during fit: fit rejects with a ValueError; the step in flight finishes; the model trains on', async () => {
    ck.setSeed(2);
    const { x, labels } = tinyData(120, 2);
    const y = ck.toCategorical(labels, 3);
    const model = tinyModel();
    model.compile({ optimizer: 'sgd', loss: 'categoricalCrossentropy' });
    const own = ck.tensor(x.dataSync().slice(), [...x.shape]);
    const fit = model.fit(own, y, { epochs: 3, batchSize: 10, verbose: 0, callbacks: { onBatchEnd: (b) => { if (b === 1) own.dispose(); } } });
    await expect(fit).rejects.toThrow(ck.ValueError);
    await expect(fit).rejects.toThrow(/disposed/);
    const w = weightsOf(model);
    expect(w.every((a) => a.every(Number.isFinite))).toBe(true);
    const h = await model.fit(x, y, { epochs: 1, batchSize: 10, verbose: 0 });
    expect(Number.isFinite(h.history.loss[0])).toBe(true);
  });
});
