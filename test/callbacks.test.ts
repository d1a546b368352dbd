// Callbacks against Keras's rules, driven by scripted metric sequences through their hooks (the
// expected stop epoch and saved epochs are worked out by hand in the comments), plus one real
// fit per callback to show it is wired in.
//
// Keras (tf.keras 2) semantics kept: EarlyStopping improves when current < best - minDelta (min)
// or current > best + minDelta (max), strictly; each epoch without improvement adds one to
// `wait`; training stops when wait >= patience, never at epoch 0; restoreBestWeights puts back
// the best epoch's weights when it stops (the first epoch's when none improved) and does nothing
// when training ends without stopping (Keras 3 restores then too). Not supported: `baseline`,
// `startFromEpoch`. ModelCheckpoint saveBestOnly saves when the monitor strictly beats the best
// so far (no minDelta, as in Keras). Schedules are per epoch (0-based), applied at epoch begin.
import { afterAll, describe, expect, test } from '@jest/globals';
import * as fs from 'fs';
import * as path from 'path';
import * as ck from '../lib';
import { Callback, EarlyStopping, LearningRateScheduler, Logs, ModelCheckpoint, TrainingModel } from '../lib/callbacks';
import { bitwiseEqual, tinyData, tinyModel, tmpDir, weightsOf } from '../test-support/helpers';

/** A stand-in model: its one weight is a tag of the epoch that produced it (10 + epoch). */
class FakeModel implements TrainingModel {
  stopTraining = false;
  learningRate = 0.1;
  w = 0;
  saved: { url: string; checkpoint?: Record<string, unknown> }[] = [];
  getWeights() { return [ck.tensor(Float32Array.of(this.w), [1])]; }
  setWeights(ws: ck.Tensor[]) { this.w = ws[0].dataSync()[0]; }
  async save(url: string, options?: { checkpoint?: Record<string, unknown> }) { this.saved.push({ url, checkpoint: options?.checkpoint }); }
}

const tag = (epoch: number) => 10 + epoch;

/**
 * Runs a callback as fit does over `series` (the monitor's value per epoch; undefined leaves it
 * out of the logs): epochs until the series ends or the model's stopTraining is set.
 */
async function drive(cb: Callback, monitor: string, series: (number | undefined)[], model = new FakeModel()) {
  cb.setModel(model);
  cb.params = { epochs: series.length };
  model.stopTraining = false;
  await cb.onTrainBegin();
  let epochs = 0;
  for (let e = 0; e < series.length && !model.stopTraining; e++) {
    await cb.onEpochBegin(e);
    model.w = tag(e);
    const logs: Logs = series[e] === undefined ? {} : { [monitor]: series[e]! };
    await cb.onEpochEnd(e, logs);
    epochs++;
  }
  await cb.onTrainEnd();
  return { epochs, model };
}

const es = (args: ConstructorParameters<typeof EarlyStopping>[0]) => ck.callbacks.earlyStopping(args);

describe('earlyStopping, scripted', () => {
  test('min (val_loss, the default), patience 2: stops at the second epoch in a row without improvement', async () => {
    // e0 1.0 best; e1 0.8 best; e2 0.9 wait 1; e3 0.85 wait 2 >= 2: stop at epoch 3
    const cb = es({ patience: 2 });
    const { epochs } = await drive(cb, 'val_loss', [1.0, 0.8, 0.9, 0.85, 0.7, 0.75, 0.76, 0.77, 0.78]);
    expect(epochs).toBe(4);
    expect(cb.stoppedEpoch).toBe(3);
  });

  test('patience 0 stops at the first epoch without improvement; an improvement resets the count', async () => {
    // patience 0: e0 3, e1 2, e2 1 improve; e3 1 is no improvement: stop at 3
    const p0 = es({ monitor: 'loss', patience: 0 });
    expect((await drive(p0, 'loss', [3, 2, 1, 1, 0])).epochs).toBe(4);
    expect(p0.stoppedEpoch).toBe(3);
    // patience 3: e1 wait 1, e2 wait 2, e3 improves (wait 0), e4 1, e5 2, e6 3: stop at 6
    const p3 = es({ monitor: 'loss', patience: 3 });
    expect((await drive(p3, 'loss', [5, 6, 7, 4, 4.5, 4.2, 4.1, 1])).epochs).toBe(7);
    expect(p3.stoppedEpoch).toBe(6);
  });

  test('max (accuracy names pick max under auto), patience 3', async () => {
    // e0 0.5 best; e1 0.6 best; e2 0.55 wait 1; e3 0.58 wait 2; e4 0.59 wait 3: stop at 4
    const series = [0.5, 0.6, 0.55, 0.58, 0.59, 0.7, 0.8];
    for (const monitor of ['val_accuracy', 'accuracy', 'val_acc']) {
      const cb = es({ monitor, patience: 3 });
      expect((await drive(cb, monitor, series)).epochs).toBe(5);
      expect(cb.stoppedEpoch).toBe(4);
    }
    const explicit = es({ monitor: 'val_score', mode: 'max', patience: 3 });
    await drive(explicit, 'val_score', series);
    expect(explicit.stoppedEpoch).toBe(4);
    // the same series read as min: e0 0.5 best; e1 0.6 wait 1; e2 0.55 wait 2; e3 0.58 wait 3:
    // stop at 3
    const asMin = es({ monitor: 'val_accuracy', mode: 'min', patience: 3 });
    await drive(asMin, 'val_accuracy', series);
    expect(asMin.stoppedEpoch).toBe(3);
  });

  test('max: a rising series never stops; a falling one stops after patience', async () => {
    const up = es({ monitor: 'val_accuracy', patience: 1 });
    expect((await drive(up, 'val_accuracy', [0.1, 0.2, 0.3, 0.4])).epochs).toBe(4);
    expect(up.stoppedEpoch).toBe(-1);
    // e0 0.4 best; e1 0.3 wait 1: stop at 1
    const down = es({ monitor: 'val_accuracy', patience: 1 });
    expect((await drive(down, 'val_accuracy', [0.4, 0.3, 0.2, 0.1])).epochs).toBe(2);
  });

  test('minDelta, min: only drops larger than minDelta below the best count, and the best moves only then', async () => {
    // minDelta 0.1, patience 2: e0 1.0 best; e1 0.95 (not < 0.9) wait 1; e2 0.89 < 0.9 best 0.89;
    // e3 0.85 (not < 0.79) wait 1; e4 0.80 wait 2: stop at 4, best epoch 2
    const cb = es({ monitor: 'val_loss', minDelta: 0.1, patience: 2, restoreBestWeights: true });
    const { epochs, model } = await drive(cb, 'val_loss', [1.0, 0.95, 0.89, 0.85, 0.8, 0.78]);
    expect(epochs).toBe(5);
    expect(cb.stoppedEpoch).toBe(4);
    expect(model.w).toBe(tag(2));
    // a negative minDelta counts as its absolute value (Keras)
    const neg = es({ monitor: 'val_loss', minDelta: -0.1, patience: 2 });
    await drive(neg, 'val_loss', [1.0, 0.95, 0.89, 0.85, 0.8, 0.78]);
    expect(neg.stoppedEpoch).toBe(4);
  });

  test('minDelta, max: only rises larger than minDelta above the best count', async () => {
    // minDelta 0.1, patience 2: e0 0.5 best; e1 0.55 wait 1; e2 0.65 > 0.6 best 0.65; e3 0.7
    // (not > 0.75) wait 1; e4 0.74 wait 2: stop at 4
    const cb = es({ monitor: 'val_accuracy', minDelta: 0.1, patience: 2, restoreBestWeights: true });
    const { epochs, model } = await drive(cb, 'val_accuracy', [0.5, 0.55, 0.65, 0.7, 0.74, 0.8]);
    expect(epochs).toBe(5);
    expect(model.w).toBe(tag(2));
  });

  test('minDelta boundary: a change of exactly minDelta is no improvement (strict, as Keras)', async () => {
    // binary-exact values: 0.75 < 1 - 0.25 is false, so e1 does not improve: stop at 1
    const min = es({ monitor: 'loss', minDelta: 0.25, patience: 1 });
    expect((await drive(min, 'loss', [1, 0.75, 0.5, 0.25])).epochs).toBe(2);
    const max = es({ monitor: 'accuracy', minDelta: 0.25, patience: 1 });
    expect((await drive(max, 'accuracy', [0.25, 0.5, 0.75, 1])).epochs).toBe(2);
    // just over the boundary improves every epoch
    const over = es({ monitor: 'loss', minDelta: 0.25, patience: 1 });
    expect((await drive(over, 'loss', [1, 0.7, 0.4, 0.1])).epochs).toBe(4);
  });

  test('restoreBestWeights: the best epoch\'s weights come back when it stops (min and max); without it the last stay', async () => {
    // min: e0 3; e1 1 best; e2 wait 1; e3 wait 2; e4 wait 3: stop at 4, weights of epoch 1
    const min = es({ monitor: 'val_loss', patience: 3, restoreBestWeights: true });
    const a = await drive(min, 'val_loss', [3, 1, 2, 2.5, 4, 0]);
    expect([a.epochs, a.model.w]).toEqual([5, tag(1)]);
    // max: e0 0.2; e1 0.9 best; e2 wait 1; e3 wait 2: stop at 3, weights of epoch 1
    const max = es({ monitor: 'val_accuracy', patience: 2, restoreBestWeights: true });
    const b = await drive(max, 'val_accuracy', [0.2, 0.9, 0.5, 0.6, 1]);
    expect([b.epochs, b.model.w]).toEqual([4, tag(1)]);
    const kept = es({ monitor: 'val_accuracy', patience: 2 });
    const c = await drive(kept, 'val_accuracy', [0.2, 0.9, 0.5, 0.6, 1]);
    expect([c.epochs, c.model.w]).toEqual([4, tag(3)]);
    // no stop, no restore (tf.keras 2; Keras 3 would restore epoch 1 here)
    const noStop = es({ monitor: 'val_loss', patience: 3, restoreBestWeights: true });
    const d = await drive(noStop, 'val_loss', [3, 1, 2, 2.5]);
    expect([d.epochs, d.model.w, noStop.stoppedEpoch]).toEqual([4, tag(3), -1]);
  });

  test('a monitor that never improves (NaN): no stop at epoch 0, then the first epoch\'s weights come back (Keras)', async () => {
    // e0 NaN: wait 1, but never a stop at epoch 0; e1 NaN: wait 2 >= 1: stop at 1, restore epoch 0
    const cb = es({ monitor: 'val_loss', patience: 1, restoreBestWeights: true });
    const { epochs, model } = await drive(cb, 'val_loss', [NaN, NaN, NaN]);
    expect([epochs, cb.stoppedEpoch, model.w]).toEqual([2, 1, tag(0)]);
    // a finite epoch after a NaN first one improves, and training goes on
    const later = es({ monitor: 'val_loss', patience: 0 });
    expect((await drive(later, 'val_loss', [NaN, 2, 1, 0.5])).epochs).toBe(4);
  });

  test('epochs without the monitor in their logs are skipped; an instance can be reused', async () => {
    const cb = es({ monitor: 'val_loss', patience: 1 });
    expect((await drive(cb, 'val_loss', [undefined, undefined, undefined])).epochs).toBe(3);
    expect(cb.stoppedEpoch).toBe(-1);
    // e0 1, e1 2 wait 1: stop at 1
    await drive(cb, 'val_loss', [1, 2, 3]);
    expect(cb.stoppedEpoch).toBe(1);
    // a second run starts afresh: best, wait and stoppedEpoch are reset
    expect((await drive(cb, 'val_loss', [5, 4, 3])).epochs).toBe(3);
    expect(cb.stoppedEpoch).toBe(-1);
  });
});

describe('modelCheckpoint saveBestOnly, scripted: which epochs write a file', () => {
  const savedEpochs = (m: FakeModel) => m.saved.map((s) => Number(/ep-(\d+)$/.exec(s.url)![1]));

  test('min (val_loss, the default): each strictly better epoch, 1-based as Keras names them', async () => {
    // best 1.0 (epoch 1), 0.8 (2), 0.9 no, 0.7 (4), 0.7 ties: no, 0.75 no
    const { model } = await drive(ck.callbacks.modelCheckpoint({ filepath: '/ck/ep-{epoch}', saveBestOnly: true }), 'val_loss', [1.0, 0.8, 0.9, 0.7, 0.7, 0.75]);
    expect(savedEpochs(model)).toEqual([1, 2, 4]);
    expect(model.saved[0].url).toBe('file:///ck/ep-1');
    expect(model.saved[2].checkpoint).toMatchObject({ epoch: 4, epochs: 6, logs: { val_loss: 0.7 } });
  });

  test('max (val_accuracy under auto, or mode max)', async () => {
    // best 0.5 (1), 0.5 ties: no, 0.6 (3), 0.55 no, 0.9 (5)
    const series = [0.5, 0.5, 0.6, 0.55, 0.9];
    const auto = await drive(ck.callbacks.modelCheckpoint({ filepath: '/ck/ep-{epoch}', monitor: 'val_accuracy', saveBestOnly: true }), 'val_accuracy', series);
    expect(savedEpochs(auto.model)).toEqual([1, 3, 5]);
    const explicit = await drive(ck.callbacks.modelCheckpoint({ filepath: '/ck/ep-{epoch}', monitor: 'val_score', mode: 'max', saveBestOnly: true }), 'val_score', series);
    expect(savedEpochs(explicit.model)).toEqual([1, 3, 5]);
    // mode min on the same series: 0.5 (1) only
    const asMin = await drive(ck.callbacks.modelCheckpoint({ filepath: '/ck/ep-{epoch}', monitor: 'val_accuracy', mode: 'min', saveBestOnly: true }), 'val_accuracy', series);
    expect(savedEpochs(asMin.model)).toEqual([1]);
  });

  test('without saveBestOnly every epoch saves; with it, a missing or NaN monitor never does', async () => {
    const all = await drive(ck.callbacks.modelCheckpoint({ filepath: '/ck/ep-{epoch}' }), 'val_loss', [1, 2, 3]);
    expect(savedEpochs(all.model)).toEqual([1, 2, 3]);
    const missing = await drive(ck.callbacks.modelCheckpoint({ filepath: '/ck/ep-{epoch}', saveBestOnly: true }), 'loss', [1, 0.5]);
    expect(missing.model.saved).toEqual([]);
    const nan = await drive(ck.callbacks.modelCheckpoint({ filepath: '/ck/ep-{epoch}', saveBestOnly: true }), 'val_loss', [NaN, 2, NaN, 1]);
    expect(savedEpochs(nan.model)).toEqual([2, 4]);
  });

  test('the best carries over between fits with one instance (as Keras)', async () => {
    const cb = ck.callbacks.modelCheckpoint({ filepath: '/ck/ep-{epoch}', saveBestOnly: true });
    const model = new FakeModel();
    await drive(cb, 'val_loss', [1, 0.5], model);
    await drive(cb, 'val_loss', [0.7, 0.4], model);
    expect(savedEpochs(model)).toEqual([1, 2, 2]);
  });
});

describe('learning-rate schedules at their boundaries', () => {
  test('step: initial * factor^floor(epoch / every), the drop at epoch `every` (0-based)', () => {
    const s = ck.schedules.step({ initial: 0.1, factor: 0.5, every: 3 });
    expect([0, 1, 2, 3, 4, 5, 6, 7].map(s)).toEqual([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025]);
    const tenth = ck.schedules.step({ initial: 1, factor: 0.1, every: 2 });
    expect(tenth(1)).toBe(1);
    expect(tenth(2)).toBeCloseTo(0.1, 16);
    expect(tenth(4)).toBeCloseTo(0.01, 16);
  });

  test('exponential: initial * rate^(epoch / decayEpochs), continuous (Keras ExponentialDecay, staircase false)', () => {
    const s = ck.schedules.exponential({ initial: 0.1, rate: 0.5, decayEpochs: 2 });
    expect(s(0)).toBe(0.1);
    expect(s(1)).toBeCloseTo(0.1 / Math.SQRT2, 16);
    expect(s(2)).toBe(0.05);
    expect(s(3)).toBeCloseTo(0.05 / Math.SQRT2, 16);
    expect(s(4)).toBe(0.025);
    expect([0, 1, 2, 3].map(ck.schedules.exponential({ initial: 0.1, rate: 0.5 }))).toEqual([0.1, 0.05, 0.025, 0.0125]);
  });

  test('cosine: from initial down to minimum at `epochs`, then held (Keras CosineDecay with alpha = minimum / initial)', () => {
    const s = ck.schedules.cosine({ initial: 0.1, epochs: 4, minimum: 0.02 });
    expect(s(0)).toBeCloseTo(0.1, 16);
    // 0.02 + 0.04 (1 + cos(pi / 4))
    expect(s(1)).toBeCloseTo(0.02 + 0.04 * (1 + Math.SQRT1_2), 16);
    expect(s(2)).toBeCloseTo(0.06, 16);
    expect(s(3)).toBeCloseTo(0.02 + 0.04 * (1 - Math.SQRT1_2), 16);
    expect([4, 5, 9].map(s)).toEqual([0.02, 0.02, 0.02]);
    expect(ck.schedules.cosine({ initial: 1, epochs: 2 })(2)).toBe(0);
  });

  test('learningRateScheduler: schedule(epoch, current rate) at each epoch begin; bad rates are ValueErrors', async () => {
    const model = new FakeModel();
    const calls: [number, number][] = [];
    const cb = ck.callbacks.learningRateScheduler((epoch, lr) => {
      calls.push([epoch, lr]);
      return epoch === 2 ? lr / 2 : lr;
    });
    const rates: number[] = [];
    cb.setModel(model);
    for (let e = 0; e < 5; e++) {
      await cb.onEpochBegin(e);
      rates.push(model.learningRate);
    }
    expect(rates).toEqual([0.1, 0.1, 0.05, 0.05, 0.05]);
    expect(calls).toEqual([[0, 0.1], [1, 0.1], [2, 0.1], [3, 0.05], [4, 0.05]]);
    for (const bad of [NaN, -0.1, Infinity, '0.1']) {
      const b = new LearningRateScheduler(() => bad as number);
      b.setModel(new FakeModel());
      await expect(b.onEpochBegin(3)).rejects.toThrow(ck.ValueError);
    }
  });
});

describe('wired into a real fit', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

  function data(n: number, seed: number) {
    const { x, labels } = tinyData(n, seed);
    return { x, y: ck.toCategorical(labels, 3) };
  }

  function compiled(seed: number, optimizer: ck.Optimizer | string = 'adam') {
    ck.setSeed(seed);
    const model = tinyModel();
    model.compile({ optimizer, loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
    return model;
  }

  /** Sets logs[key] to script[epoch] for the callbacks after it (fit passes one logs object along). */
  const inject = (key: string, script: number[], perEpoch?: Float32Array[][], model?: ck.Sequential) => ({
    onEpochEnd: (epoch: number, logs?: Logs) => {
      logs![key] = script[epoch];
      if (perEpoch && model) perEpoch.push(weightsOf(model));
    },
  });

  test('earlyStopping, minDelta: the real loss never drops by 100, so fit stops at epoch `patience`', async () => {
    const { x, y } = data(40, 1);
    const model = compiled(1);
    const cb = es({ monitor: 'loss', minDelta: 100, patience: 2 });
    const h = await model.fit(x, y, { epochs: 10, batchSize: 20, verbose: 0, seed: 1, callbacks: [cb] });
    expect(h.history.loss).toHaveLength(3);
    expect(cb.stoppedEpoch).toBe(2);
    // the loss did fall: without minDelta it would have counted as improvement
    expect(h.history.loss[2]).toBeLessThan(h.history.loss[0]);
  });

  test('earlyStopping, max with restoreBestWeights: the weights are the best epoch\'s, bit for bit', async () => {
    const { x, y } = data(40, 2);
    const model = compiled(2);
    const perEpoch: Float32Array[][] = [];
    // e0 0.6; e1 0.8 best; e2 0.7 wait 1; e3 0.75 wait 2: stop at 3, restore epoch 1
    const cb = es({ monitor: 'val_auc', mode: 'max', patience: 2, restoreBestWeights: true });
    const h = await model.fit(x, y, {
      epochs: 10, batchSize: 20, verbose: 0, seed: 2, callbacks: [inject('val_auc', [0.6, 0.8, 0.7, 0.75, 0.9], perEpoch, model), cb],
    });
    expect(h.history.loss).toHaveLength(4);
    expect(cb.stoppedEpoch).toBe(3);
    expect(bitwiseEqual(perEpoch[1], perEpoch[3])).toBe(false);
    expect(bitwiseEqual(weightsOf(model), perEpoch[1])).toBe(true);
  });

  test('earlyStopping in fitDataset', async () => {
    const { x, y } = data(40, 3);
    const model = compiled(3);
    const ds = ck.data.array([{ xs: x, ys: y }]);
    const cb = es({ monitor: 'loss', minDelta: 100, patience: 1 });
    const h = await model.fitDataset(ds, { epochs: 10, verbose: 0, callbacks: [cb] });
    expect(h.history.loss).toHaveLength(2);
    expect(cb.stoppedEpoch).toBe(1);
  });

  test('modelCheckpoint saveBestOnly: only the improving epochs are on disk, each with that epoch\'s weights', async () => {
    const { x, y } = data(40, 4);
    const model = compiled(4);
    const dir = tmpDir('ckpt-best');
    dirs.push(dir);
    const perEpoch: Float32Array[][] = [];
    // val_score (min under auto): 0.5 saves (1), 0.7 no, 0.4 saves (3), 0.4 ties: no, 0.6 no
    await model.fit(x, y, {
      epochs: 5, batchSize: 20, verbose: 0, seed: 4, callbacks: [
        inject('val_score', [0.5, 0.7, 0.4, 0.4, 0.6], perEpoch, model),
        ck.callbacks.modelCheckpoint({ filepath: path.join(dir, 'epoch-{epoch}'), monitor: 'val_score', saveBestOnly: true }),
      ],
    });
    expect(fs.readdirSync(dir).sort()).toEqual(['epoch-1', 'epoch-3']);
    for (const [name, epoch] of [['epoch-1', 0], ['epoch-3', 2]] as const) {
      const loaded = await ck.loadModel(`file://${path.join(dir, name)}`);
      expect(bitwiseEqual(weightsOf(loaded), perEpoch[epoch])).toBe(true);
    }
  });

  test('learningRateScheduler with schedules.step: the rate changes at the boundary epoch, and the native update uses it', async () => {
    const { x, y } = data(40, 5);
    const model = compiled(5, ck.optimizers.sgd({ learningRate: 1 }));
    const rates: number[] = [];
    const perEpoch: Float32Array[][] = [];
    const start = weightsOf(model);
    // factor 0: 0.1 for epochs 0 and 1, then 0 (0.1 * 0^1) from epoch 2 on
    await model.fit(x, y, {
      epochs: 4, batchSize: 20, verbose: 0, seed: 5, callbacks: [
        ck.callbacks.learningRateScheduler(ck.schedules.step({ initial: 0.1, factor: 0, every: 2 })),
        { onBatchEnd: () => { rates.push(model.learningRate); }, onEpochEnd: () => { perEpoch.push(weightsOf(model)); } },
      ],
    });
    expect(rates).toEqual([0.1, 0.1, 0.1, 0.1, 0, 0, 0, 0]);
    expect(bitwiseEqual(perEpoch[0], start)).toBe(false);
    expect(bitwiseEqual(perEpoch[1], perEpoch[0])).toBe(false);
    expect(bitwiseEqual(perEpoch[2], perEpoch[1])).toBe(true);
    expect(bitwiseEqual(perEpoch[3], perEpoch[1])).toBe(true);
  });
});
