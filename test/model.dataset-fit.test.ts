// model.fitDataset / evaluateDataset against model.fit / evaluate on the same batches: the
// epoch loss and metrics are the example-weighted means of the batches' (Keras and tfjs), so a
// short last batch counts for its examples, not as a whole batch.
//
// Bit for bit: fit and fitDataset both keep the epoch's running sums natively and divide once.
// evaluateDataset gets each batch's mean and multiplies it back by the batch size: with batch
// sizes that are powers of two that round trip is exact; other batch sizes can differ in the last
// bit of a log (not of a weight), checked to a few ulps.
import { describe, expect, test } from '@jest/globals';
import * as ck from '../lib';
import type { Logs } from '../lib/callbacks';
import { bitwiseEqual, tinyData, tinyModel, weightsOf } from '../test-support/helpers';

function tiny(n: number, seed: number) {
  const { x, labels } = tinyData(n, seed);
  return { x, y: ck.toCategorical(labels, 3) };
}

/** A dataset of one { xs, ys } element per example, in order (batch it like fit does). */
function examples(x: ck.Tensor, y: ck.Tensor): ck.Dataset<{ xs: ck.Tensor; ys: ck.Tensor }> {
  const n = x.shape[0];
  const xd = x.dataSync();
  const yd = y.dataSync();
  const xr = xd.length / n;
  const yr = yd.length / n;
  const items = Array.from({ length: n }, (_, i) => ({
    xs: ck.tensor(xd.slice(i * xr, (i + 1) * xr), x.shape.slice(1)),
    ys: ck.tensor(yd.slice(i * yr, (i + 1) * yr), y.shape.slice(1)),
  }));
  return ck.data.array(items);
}

/** Two models with the same initial weights, compiled alike. */
function twins(seed: number): [ck.Sequential, ck.Sequential] {
  const make = () => {
    ck.setSeed(seed);
    const m = tinyModel();
    m.compile({ optimizer: ck.optimizers.adam({ learningRate: 0.01 }), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
    return m;
  };
  const a = make();
  const b = make();
  expect(bitwiseEqual(weightsOf(a), weightsOf(b))).toBe(true);
  return [a, b];
}

type BatchLog = { loss: number; accuracy: number };
const batchRecorder = (out: BatchLog[]) => ({ onBatchEnd: (_b: number, logs?: Logs) => { out.push({ loss: logs!.loss, accuracy: logs!.accuracy }); } });

/** Largest relative difference between two equal-length lists. */
function maxRel(a: number[], b: number[]): number {
  expect(a).toHaveLength(b.length);
  return Math.max(...a.map((v, i) => Math.abs(v - b[i]) / Math.max(Math.abs(v), Math.abs(b[i]), 1e-300)));
}

describe('fitDataset equals fit on the same batches', () => {
  test('batches 8, 8, 4 (a short last one), Adam, 3 epochs, validation batches 8, 4: history, batch logs and weights bit for bit', async () => {
    const train = tiny(20, 3);
    const val = tiny(12, 4);
    const [a, b] = twins(11);
    const fitBatches: BatchLog[] = [];
    const dsBatches: BatchLog[] = [];
    const h1 = await a.fit(train.x, train.y, {
      epochs: 3, batchSize: 8, shuffle: false, seed: 5, verbose: 0, validationData: [val.x, val.y], callbacks: batchRecorder(fitBatches),
    });
    const h2 = await b.fitDataset(examples(train.x, train.y).batch(8), {
      epochs: 3, verbose: 0, validationData: examples(val.x, val.y).batch(8), callbacks: batchRecorder(dsBatches),
    });
    expect(h1.epoch).toEqual([0, 1, 2]);
    expect(Object.keys(h1.history).sort()).toEqual(['accuracy', 'loss', 'val_accuracy', 'val_loss']);
    // toEqual compares numbers with Object.is: equal means the same double.
    expect(h2.epoch).toEqual(h1.epoch);
    expect(h2.history).toEqual(h1.history);
    expect(fitBatches).toHaveLength(9);
    expect(dsBatches).toEqual(fitBatches);
    expect(bitwiseEqual(weightsOf(b), weightsOf(a))).toBe(true);

    // The short batch matters: the epoch loss is not the plain mean of the three batch means.
    // Batch 2's mean is recovered from the running means fit logs (8 m0, 8 m1, 4 m2 over 20).
    const [r0, r1, r2] = fitBatches.slice(0, 3).map((l) => l.loss);
    const m0 = r0;
    const m1 = 2 * r1 - r0;
    const m2 = (20 * r2 - 16 * r1) / 4;
    expect(h1.history.loss[0]).toBe(r2);
    expect(Math.abs((m0 + m1 + m2) / 3 - r2)).toBeGreaterThan(1e-6);
  });

  test('batch 5 over 13 examples (5, 5, 3): the same weights bit for bit, logs within a few ulps', async () => {
    const train = tiny(13, 6);
    const [a, b] = twins(12);
    const fitBatches: BatchLog[] = [];
    const dsBatches: BatchLog[] = [];
    const h1 = await a.fit(train.x, train.y, { epochs: 2, batchSize: 5, shuffle: false, verbose: 0, callbacks: batchRecorder(fitBatches) });
    const h2 = await b.fitDataset(examples(train.x, train.y).batch(5), { epochs: 2, verbose: 0, callbacks: batchRecorder(dsBatches) });
    expect(bitwiseEqual(weightsOf(b), weightsOf(a))).toBe(true);
    for (const k of ['loss', 'accuracy']) expect(maxRel(h2.history[k], h1.history[k])).toBeLessThan(1e-15);
    expect(maxRel(dsBatches.map((l) => l.loss), fitBatches.map((l) => l.loss))).toBeLessThan(1e-15);
    expect(maxRel(dsBatches.map((l) => l.accuracy), fitBatches.map((l) => l.accuracy))).toBeLessThan(1e-15);
  });

  test('validationData as [x, y] tensors: val_loss and val_accuracy are evaluate on them', async () => {
    const train = tiny(16, 7);
    const val = tiny(12, 8);
    const [a] = twins(13);
    const seen: number[][] = [];
    const h = await a.fitDataset(examples(train.x, train.y).batch(8), {
      epochs: 2, verbose: 0, validationData: [val.x, val.y],
      callbacks: { onEpochEnd: async () => { seen.push(await a.evaluate(val.x, val.y, { batchSize: 100 })); } },
    });
    expect(h.history.val_loss).toEqual(seen.map((s) => s[0]));
    expect(h.history.val_accuracy).toEqual(seen.map((s) => s[1]));
  });
});

describe('evaluateDataset equals evaluate on the same batches', () => {
  test('batches 8, 8, 4 on a trained model: loss and accuracy bit for bit; `batches` takes the first ones', async () => {
    const train = tiny(30, 9);
    const data = tiny(20, 10);
    const [model] = twins(14);
    await model.fit(train.x, train.y, { epochs: 2, batchSize: 10, verbose: 0, seed: 1 });
    const want = await model.evaluate(data.x, data.y, { batchSize: 8 });
    const got = await model.evaluateDataset(examples(data.x, data.y).batch(8));
    expect(want).toHaveLength(2);
    expect(got).toEqual(want);

    // Each batch's own mean, to show the short batch is weighted by its 4 examples.
    const means = [];
    for (const [start, n] of [[0, 8], [8, 8], [16, 4]]) {
      const xs = ck.tensor(data.x.dataSync().slice(start * 64, (start + n) * 64), [n, 8, 8, 1]);
      const ys = ck.tensor(data.y.dataSync().slice(start * 3, (start + n) * 3), [n, 3]);
      means.push((await model.evaluate(xs, ys, { batchSize: n }))[0]);
    }
    expect(got[0]).toBeCloseTo((8 * means[0] + 8 * means[1] + 4 * means[2]) / 20, 12);
    expect(Math.abs((means[0] + means[1] + means[2]) / 3 - got[0])).toBeGreaterThan(1e-6);

    const first16 = await model.evaluate(
      ck.tensor(data.x.dataSync().slice(0, 16 * 64), [16, 8, 8, 1]), ck.tensor(data.y.dataSync().slice(0, 16 * 3), [16, 3]), { batchSize: 8 });
    expect(await model.evaluateDataset(examples(data.x, data.y).batch(8), { batches: 2 })).toEqual(first16);
  });

  test('batch 3 over 10 examples (3, 3, 3, 1): within a few ulps of evaluate', async () => {
    const data = tiny(10, 15);
    const [model] = twins(16);
    const want = await model.evaluate(data.x, data.y, { batchSize: 3 });
    const got = await model.evaluateDataset(examples(data.x, data.y).batch(3));
    expect(maxRel(got, want)).toBeLessThan(1e-15);
  });
});
