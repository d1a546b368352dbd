// Concurrency: two models training at once end as they would one after the other; ops from
// several worker_threads at once give the main thread's results bit for bit, and terminating
// workers mid-work neither crashes the process nor leaks; an AbortSignal stops fit after whole
// steps; a model used by two callers at once either refuses (a second training call: BusyError)
// or serialises on its stream (predict, evaluate, save beside fit see the weights between two
// steps, never a torn mix, and leave fit's own figures alone).
// The references are replays: the same batches through trainOnBatch, one step at a time.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import * as fs from 'fs';
import * as path from 'path';
import * as ck from '../lib';
import { ensureBuilt, jsonLines } from '../test-support/cli-fixtures';
import { bitwiseEqual, mnistModel, tmpDir, weightsOf } from '../test-support/helpers';
import { CHILDREN, LONG, runToEnd, seeded } from '../test-support/reliability';

jest.setTimeout(LONG ? 3600000 : 120000);

let root: string;
let x: ck.Tensor;
let y: ck.Tensor;
const N = 400;
const BATCH = 40;
const STEPS = N / BATCH;

beforeAll(async () => {
  ensureBuilt();
  root = tmpDir('concurrency');
  const { train } = await ck.datasets.mnist({ trainLimit: N, testLimit: 1 });
  x = train.images;
  y = ck.toCategorical(train.labels, 10);
});

afterAll(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

/** The seeds' CNN with Adam, initialised from `seed`. */
function fresh(seed: number): ck.Sequential {
  ck.setSeed(seed);
  const model = mnistModel();
  model.compile({ optimizer: ck.optimizers.adam({ learningRate: 1e-3 }), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  return model;
}

/** Rows [start, start + count) of t, copied. */
function rows(t: ck.Tensor, start: number, count: number): ck.Tensor {
  const row = t.size / t.shape[0];
  return ck.tensor(t.dataSync().slice(start * row, (start + count) * row), [count, ...t.shape.slice(1)]);
}

const batches = Array.from({ length: STEPS }, (_, b) => ({ x: () => rows(x, b * BATCH, BATCH), y: () => rows(y, b * BATCH, BATCH) }));

/**
 * What a model looks like after each step of fit(x, y, { batchSize: BATCH, shuffle: false }),
 * replayed with trainOnBatch: its weights, a prediction, an evaluation, and its save with the
 * optimizer state (the weights.bin bytes), for steps 0..steps.
 */
async function replay(seed: number, steps: number, probe: ck.Tensor, dir: string) {
  const model = fresh(seed);
  const xs = batches.map((b) => b.x());
  const ys = batches.map((b) => b.y());
  const states: { weights: Float32Array[]; predicted: Float32Array; evaluated: number[]; saved: Buffer }[] = [];
  for (let s = 0; s <= steps; s++) {
    if (s > 0) await model.trainOnBatch(xs[(s - 1) % STEPS], ys[(s - 1) % STEPS]);
    await model.save(`file://${dir}`, { includeOptimizer: true });
    states.push({
      weights: weightsOf(model),
      predicted: (await model.predict(probe).data()).slice(),
      evaluated: await model.evaluate(probe, rows(y, 0, probe.shape[0]), { batchSize: 10 }),
      saved: fs.readFileSync(path.join(dir, 'weights.bin')),
    });
  }
  return states;
}

const bytesEqual = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

describe('several trainings at once', () => {
  test('two models training at once end with the weights and losses they reach one after the other', async () => {
    const run = (seed: number) => {
      const model = fresh(seed);
      return { model, fit: () => model.fit(x, y, { epochs: 2, batchSize: BATCH, verbose: 0, seed, validationSplit: 0.1 }) };
    };
    const a1 = run(1);
    const ha1 = await a1.fit();
    const b1 = run(2);
    const hb1 = await b1.fit();
    const a2 = run(1);
    const b2 = run(2);
    const [ha2, hb2] = await Promise.all([a2.fit(), b2.fit()]);
    expect(bitwiseEqual(weightsOf(a2.model), weightsOf(a1.model))).toBe(true);
    expect(bitwiseEqual(weightsOf(b2.model), weightsOf(b1.model))).toBe(true);
    expect(ha2.history).toEqual(ha1.history);
    expect(hb2.history).toEqual(hb1.history);
    expect(bitwiseEqual(weightsOf(a1.model), weightsOf(b1.model))).toBe(false);
  });

  test(`ops and fits from worker_threads at once equal the main thread's, bit for bit; terminating workers mid-work is safe`, async () => {
    const workers = LONG ? 8 : 4;
    const terminations = LONG ? 200 : 12;
    const { stdout } = await runToEnd(path.join(CHILDREN, 'workers.js'), [String(workers), LONG ? '20' : '3', String(terminations)], { nodeOptions: ['--expose-gc'] });
    const [report] = jsonLines(stdout);
    expect(report.arrays).toBeGreaterThan(30);
    expect(report.sameAsMain).toEqual(Array(workers).fill(true));
    expect(report.terminated).toBe(terminations);
    // what the terminated workers had made is freed with them; the process computes as before
    expect(report.heldBytes).toBeLessThanOrEqual(0);
    expect(report.heldAllocations).toBeLessThanOrEqual(0);
    expect(report.sameAfterTerminations).toBe(true);
  });
});

describe('AbortSignal', () => {
  test('aborted at random moments, fit stops after whole steps: the weights are those of exactly the steps it took', async () => {
    const epochs = 8;
    const rnd = seeded(5);
    const probe = rows(x, 0, 20);
    const states = await replay(3, epochs * STEPS, probe, path.join(root, 'abort-replay'));
    const fit = (model: ck.Sequential, signal?: AbortSignal, onStep?: () => void) =>
      model.fit(x, y, { epochs, batchSize: BATCH, shuffle: false, verbose: 0, signal, callbacks: { onBatchEnd: () => onStep?.() } });
    // how long the whole fit takes here, so that the aborts land inside it
    const whole = fresh(3);
    const t0 = Date.now();
    await fit(whole);
    const ms = Date.now() - t0;
    expect(bitwiseEqual(weightsOf(whole), states[epochs * STEPS].weights)).toBe(true);
    const taken: number[] = [];
    const wanted = LONG ? 20 : 3;
    // Trials until enough aborts landed inside a fit (on a busy machine a timer can fire late).
    for (let trial = 0; trial < (LONG ? 30 : 12) && taken.length < wanted; trial++) {
      const model = fresh(3);
      const controller = new AbortController();
      let steps = 0;
      setTimeout(() => controller.abort(), 2 + rnd() * 0.8 * ms);
      await fit(model, controller.signal, () => { steps++; });
      if (!controller.signal.aborted) continue;  // a slow timer on a busy machine
      if (steps === epochs * STEPS) {
        // the abort came after the last step, while fit was finishing: nothing was left to stop
        expect(bitwiseEqual(weightsOf(model), states[steps].weights)).toBe(true);
        continue;
      }
      expect(bitwiseEqual(weightsOf(model), states[steps].weights)).toBe(true);
      taken.push(steps);
      // and it trains on afterwards
      const h = await model.fit(x, y, { epochs: 1, batchSize: BATCH, verbose: 0 });
      expect(Number.isFinite(h.history.loss[0])).toBe(true);
    }
    expect(taken.length).toBeGreaterThanOrEqual(LONG ? 20 : 2);  // (LONG: 20 of 30 trials)
    expect(new Set(taken).size).toBeGreaterThan(1);
  });
});

describe('one model, two callers', () => {
  test('a second training call while fit runs is a BusyError; the first fit is unaffected', async () => {
    const solo = fresh(4);
    await solo.fit(x, y, { epochs: 2, batchSize: BATCH, verbose: 0, seed: 9 });
    const model = fresh(4);
    expect(model.isTraining).toBe(false);
    const first = model.fit(x, y, { epochs: 2, batchSize: BATCH, verbose: 0, seed: 9 });
    expect(model.isTraining).toBe(true);
    await expect(model.fit(x, y, { epochs: 1, verbose: 0 })).rejects.toThrow(ck.BusyError);
    await expect(model.fit(x, y, { epochs: 1, verbose: 0 })).rejects.toThrow(/sequential(_\d+)?\.fit: the model is training \(fit is running\)/);
    await expect(model.trainOnBatch(rows(x, 0, 4), rows(y, 0, 4))).rejects.toThrow(ck.BusyError);
    const ds = ck.data.array([{ xs: rows(x, 0, BATCH), ys: rows(y, 0, BATCH) }]);
    await expect(model.fitDataset(ds, { epochs: 1, verbose: 0 })).rejects.toThrow(ck.BusyError);
    expect(() => model.compile({ optimizer: 'sgd', loss: 'categoricalCrossentropy' })).toThrow(ck.BusyError);
    await first;
    expect(model.isTraining).toBe(false);
    expect(bitwiseEqual(weightsOf(model), weightsOf(solo))).toBe(true);
    // free again once it is done
    await model.trainOnBatch(rows(x, 0, 4), rows(y, 0, 4));
  });

  test('predict, evaluate and save beside fit see the weights between two steps, never a mix; fit\'s figures are its own', async () => {
    const probe = rows(x, 0, 20);
    const epochs = 2;
    const states = await replay(6, epochs * STEPS, probe, path.join(root, 'beside-replay'));
    const plain = fresh(6);
    const plainHistory = await plain.fit(x, y, { epochs, batchSize: BATCH, shuffle: false, verbose: 0 });

    const model = fresh(6);
    const seen = { predicted: [] as number[], evaluated: [] as number[], saved: [] as number[] };
    const dir = path.join(root, 'beside');
    const pending: Promise<void>[] = [];
    let tick = 0;
    const timer = setInterval(() => {
      const kind = tick++ % 3;
      if (kind === 0) {
        pending.push(model.predict(probe).data().then((p) => {
          seen.predicted.push(states.findIndex((s) => bytesEqual(s.predicted, p)));
        }));
      } else if (kind === 1) {
        pending.push(model.evaluate(probe, rows(y, 0, 20), { batchSize: 10 }).then((e) => {
          seen.evaluated.push(states.findIndex((s) => s.evaluated.every((v, i) => v === e[i])));
        }));
      } else {
        const at = path.join(dir, String(tick));
        pending.push(model.save(`file://${at}`, { includeOptimizer: true }).then(async () => {
          const saved = fs.readFileSync(path.join(at, 'weights.bin'));
          const step = states.findIndex((s) => s.saved.equals(saved));
          seen.saved.push(step);
          const loaded = await ck.loadModel(`file://${at}`);
          expect((loaded.userDefinedMetadata as { convkitOptimizer: { iterations: number } }).convkitOptimizer.iterations).toBe(step);
        }));
      }
    }, 3);
    let history: ck.History;
    try {
      history = await model.fit(x, y, { epochs, batchSize: BATCH, shuffle: false, verbose: 0 });
    } finally {
      clearInterval(timer);
    }
    await Promise.all(pending);
    // every read matched one step's state exactly (index -1 would be a torn or unknown state)
    for (const list of Object.values(seen)) {
      expect(list.length).toBeGreaterThan(2);
      expect(list.every((s) => s >= 0)).toBe(true);
    }
    // and they overlapped the training: reads from the middle of it
    const all = [...seen.predicted, ...seen.evaluated, ...seen.saved];
    expect(all.some((s) => s > 0 && s < epochs * STEPS)).toBe(true);
    // fit's loss and accuracy are those of a fit with nobody beside it, and so are its weights
    expect(history.history).toEqual(plainHistory.history);
    expect(bitwiseEqual(weightsOf(model), weightsOf(plain))).toBe(true);
    expect(bitwiseEqual(weightsOf(model), states[epochs * STEPS].weights)).toBe(true);
  });
});
