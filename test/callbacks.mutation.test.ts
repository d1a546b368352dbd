// Callback behaviour the other suites leave open (found by mutation testing, docs/testing.md):
// what modelCheckpoint hands to save (the checkpoint record, the optimizer state by default), that
// it skips an epoch cut short, its argument check, that earlyStopping frees the weight copies it
// no longer needs, the scheduler's error, and terminateOnNaN on logs without a loss. Driven
// through the hooks as fit calls them, on a stand-in model that records what it is asked to do.
import { describe, expect, test } from '@jest/globals';
import * as ck from '../lib';
import { Callback, EarlyStopping, LearningRateScheduler, Logs, ModelCheckpoint, TrainingModel } from '../lib/callbacks';

interface SaveCall { url: string; options?: Parameters<TrainingModel['save']>[1] }

class RecordingModel implements TrainingModel {
  stopTraining = false;
  learningRate = 0.1;
  w = 0;
  saves: SaveCall[] = [];
  /** Every copy getWeights has handed out, in order. */
  copies: ck.Tensor[] = [];
  getWeights() {
    const t = ck.tensor(Float32Array.of(this.w), [1]);
    this.copies.push(t);
    return [t];
  }
  setWeights(ws: ck.Tensor[]) { this.w = ws[0].dataSync()[0]; }
  async save(url: string, options?: SaveCall['options']) { this.saves.push({ url, options }); }
}

/** One epoch as fit runs it: onEpochBegin, `batches` batches, onEpochEnd with `logs`. */
async function epoch(cb: Callback, e: number, batches: number, logs: Logs) {
  await cb.onEpochBegin(e);
  for (let b = 0; b < batches; b++) {
    await cb.onBatchBegin(b);
    await cb.onBatchEnd(b, { loss: 1 });
  }
  await cb.onEpochEnd(e, logs);
}

function checkpointOn(model: RecordingModel, args: Partial<ConstructorParameters<typeof ModelCheckpoint>[0]>, params: Record<string, unknown>) {
  const cb = ck.callbacks.modelCheckpoint({ filepath: '/ck/ep-{epoch}', ...args });
  cb.setModel(model);
  cb.params = params;
  return cb;
}

describe('modelCheckpoint: what it saves', () => {
  test('fit\'s settings go into the checkpoint record: epoch (1-based), epochs, batchSize, steps, seed and a copy of the logs', async () => {
    const model = new RecordingModel();
    const cb = checkpointOn(model, {}, { epochs: 5, steps: 2, batchSize: 8, samples: 16, seed: 7 });
    const logs: Logs = { loss: 0.5, acc: 0.75 };
    await epoch(cb, 2, 2, logs);
    logs.loss = 99;
    expect(model.saves).toHaveLength(1);
    expect(model.saves[0].url).toBe('file:///ck/ep-3');
    expect(model.saves[0].options!.checkpoint).toStrictEqual({ epoch: 3, epochs: 5, batchSize: 8, steps: 2, seed: 7, logs: { loss: 0.5, acc: 0.75 } });
  });

  test('settings fit does not know are left out of the record (fitDataset: no batch size or seed, steps 0 for a dataset of unknown size)', async () => {
    const model = new RecordingModel();
    const cb = checkpointOn(model, {}, { epochs: 2, steps: 0, samples: null });
    await epoch(cb, 0, 3, { loss: 1 });
    expect(model.saves[0].options!.checkpoint).toStrictEqual({ epoch: 1, epochs: 2, logs: { loss: 1 } });
  });

  test('without fit\'s epoch count, the record says the epochs done so far', async () => {
    const model = new RecordingModel();
    const cb = checkpointOn(model, {}, {});
    await epoch(cb, 3, 1, {});
    expect(model.saves[0].options!.checkpoint).toStrictEqual({ epoch: 4, epochs: 4, logs: {} });
  });

  test('the optimizer state is saved unless includeOptimizer is false (a checkpoint exists to resume from)', async () => {
    const byDefault = new RecordingModel();
    await epoch(checkpointOn(byDefault, {}, { epochs: 1 }), 0, 1, {});
    expect(byDefault.saves[0].options!.includeOptimizer).toBe(true);
    const without = new RecordingModel();
    await epoch(checkpointOn(without, { includeOptimizer: false }, { epochs: 1 }), 0, 1, {});
    expect(without.saves[0].options!.includeOptimizer).toBe(false);
  });

  test('metadata: an object is saved as given; a function is called with the epoch and its logs', async () => {
    const fixed = new RecordingModel();
    const meta = { dataset: 'mnist' };
    await epoch(checkpointOn(fixed, { metadata: meta }, { epochs: 1 }), 0, 1, {});
    expect(fixed.saves[0].options!.metadata).toBe(meta);
    const calls: [number, Logs][] = [];
    const fn = new RecordingModel();
    await epoch(checkpointOn(fn, { metadata: (e, logs) => { calls.push([e, logs]); return { at: e }; } }, { epochs: 2 }), 1, 1, { loss: 2 });
    expect(calls).toEqual([[1, { loss: 2 }]]);
    expect(fn.saves[0].options!.metadata).toEqual({ at: 1 });
  });

  test('an epoch cut short (fewer batches than steps) is not saved; the count starts over each epoch', async () => {
    const model = new RecordingModel();
    const cb = checkpointOn(model, {}, { epochs: 4, steps: 3 });
    await cb.onTrainBegin();
    await epoch(cb, 0, 3, { loss: 1 });   // whole: saved
    await epoch(cb, 1, 1, { loss: 1 });   // cut short after 1 of 3: not saved (4 batches in all by now)
    await epoch(cb, 2, 3, { loss: 1 });   // whole: saved
    await epoch(cb, 3, 2, { loss: 1 });   // cut short: not saved
    expect(model.saves.map((s) => s.url)).toEqual(['file:///ck/ep-1', 'file:///ck/ep-3']);
  });

  test('without a step count every epoch is whole', async () => {
    const model = new RecordingModel();
    const cb = checkpointOn(model, {}, { epochs: 2 });
    await epoch(cb, 0, 0, {});
    await epoch(cb, 1, 5, {});
    expect(model.saves).toHaveLength(2);
  });

  test('a filepath that is missing or not a string is a ValueError', () => {
    for (const args of [undefined, {}, { filepath: 5 }, null]) {
      expect(() => ck.callbacks.modelCheckpoint(args as never)).toThrow(ck.ValueError);
      expect(() => new ModelCheckpoint(args as never)).toThrow('modelCheckpoint: filepath is required');
    }
  });
});

describe('earlyStopping', () => {
  test('stoppedEpoch is -1 until it stops training, and again when a fit ends without stopping', async () => {
    const cb = new EarlyStopping({ patience: 5 });
    expect(cb.stoppedEpoch).toBe(-1);
    expect(cb.monitor).toBe('val_loss');
    const model = new RecordingModel();
    cb.setModel(model);
    await cb.onTrainBegin();
    for (const [e, v] of [1, 0.9, 0.8].entries()) await cb.onEpochEnd(e, { val_loss: v });
    expect(cb.stoppedEpoch).toBe(-1);
    expect(model.stopTraining).toBe(false);
  });

  test('restoreBestWeights frees each copy of the weights once a better epoch replaces it', async () => {
    const model = new RecordingModel();
    const cb = ck.callbacks.earlyStopping({ restoreBestWeights: true, patience: 1 });
    cb.setModel(model);
    await cb.onTrainBegin();
    model.w = 10; await cb.onEpochEnd(0, { val_loss: 1 });
    model.w = 11; await cb.onEpochEnd(1, { val_loss: 0.5 });
    expect(model.copies).toHaveLength(2);
    expect(model.copies[0].isDisposed).toBe(true);    // epoch 0's, superseded
    expect(model.copies[1].isDisposed).toBe(false);   // the best so far, still needed
    model.w = 12; await cb.onEpochEnd(2, { val_loss: 0.7 });
    expect(model.stopTraining).toBe(true);
    expect(model.w).toBe(11);
  });
});

test('learningRateScheduler: the error names what the schedule returned and for which epoch', async () => {
  const cb = new LearningRateScheduler(() => -0.5);
  cb.setModel(new RecordingModel());
  await expect(cb.onEpochBegin(3)).rejects.toThrow('learningRateScheduler: the schedule returned -0.5 for epoch 3');
  const nan = ck.callbacks.learningRateScheduler(() => NaN);
  nan.setModel(new RecordingModel());
  await expect(nan.onEpochBegin(0)).rejects.toThrow('learningRateScheduler: the schedule returned NaN for epoch 0');
});

test('terminateOnNaN stops on a NaN or infinite batch loss only, not on logs without a loss', async () => {
  const stopsOn = async (logs?: Logs) => {
    const model = new RecordingModel();
    const cb = ck.callbacks.terminateOnNaN();
    cb.setModel(model);
    await cb.onBatchEnd(0, logs);
    return model.stopTraining;
  };
  expect(await stopsOn(undefined)).toBe(false);
  expect(await stopsOn({})).toBe(false);
  expect(await stopsOn({ acc: NaN })).toBe(false);
  expect(await stopsOn({ loss: 0.3 })).toBe(false);
  expect(await stopsOn({ loss: NaN })).toBe(true);
  expect(await stopsOn({ loss: -Infinity })).toBe(true);
});
