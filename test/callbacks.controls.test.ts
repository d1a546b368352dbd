// Per-step learning-rate schedules (values against Keras's formulas worked by hand; fit and
// trainOnBatch against float64 SGD with the scheduled rate per step; save -> load -> resume),
// ReduceLROnPlateau driven by a scripted loss sequence (Keras's rules worked by hand) and in fit,
// and CSVLogger's file checked line by line.
import { describe, expect, test } from '@jest/globals';
import * as fs from 'fs';
import * as path from 'path';
import * as ck from '../lib';
import { optimizerFromConfig } from '../lib/optimizers';
import { bitwiseEqual, randomArray, tmpDir, weightsOf } from '../test-support/helpers';
import * as ref from '../test-support/reference';

const { exponentialDecay, piecewiseConstantDecay, cosineDecay } = ck.optimizers.schedules;

describe('schedules: Keras\'s values', () => {
  test('exponentialDecay, smooth and staircase', () => {
    const s = exponentialDecay({ initialLearningRate: 0.1, decaySteps: 10, decayRate: 0.5 });
    expect(s.rate(0)).toBe(0.1);
    expect(s.rate(5)).toBeCloseTo(0.1 * Math.SQRT1_2, 15);
    expect(s.rate(20)).toBeCloseTo(0.025, 15);
    const stairs = exponentialDecay({ initialLearningRate: 0.1, decaySteps: 10, decayRate: 0.5, staircase: true });
    expect([9, 10, 15, 20].map((t) => stairs.rate(t))).toEqual([0.1, 0.05, 0.05, 0.025]);
  });

  test('piecewiseConstantDecay: a boundary step still takes the value before it', () => {
    const s = piecewiseConstantDecay({ boundaries: [3, 6], values: [1, 0.5, 0.1] });
    expect([0, 3, 4, 6, 7, 100].map((t) => s.rate(t))).toEqual([1, 1, 0.5, 0.5, 0.1, 0.1]);
  });

  test('cosineDecay with linear warmup, then decay to alpha', () => {
    const s = cosineDecay({ initialLearningRate: 0, warmupTarget: 0.1, warmupSteps: 4, decaySteps: 8, alpha: 0.1 });
    expect(s.rate(0)).toBe(0);
    expect(s.rate(2)).toBeCloseTo(0.05, 15);
    expect(s.rate(4)).toBeCloseTo(0.1, 15);
    expect(s.rate(8)).toBeCloseTo(0.055, 15);   // half way: 0.1 * (0.9 * 0.5 + 0.1)
    expect(s.rate(12)).toBeCloseTo(0.01, 15);   // the end: 0.1 * alpha
    expect(s.rate(40)).toBeCloseTo(0.01, 15);
    const plain = cosineDecay({ initialLearningRate: 0.2, decaySteps: 10 });
    expect(plain.rate(5)).toBeCloseTo(0.1, 15);
    expect(plain.rate(10)).toBeCloseTo(0, 15);
  });

  const bad: Array<[string, () => unknown, RegExp]> = [
    ['decaySteps 0', () => exponentialDecay({ initialLearningRate: 0.1, decaySteps: 0, decayRate: 0.5 }), /schedules\.exponentialDecay: decaySteps must be a number > 0, got 0/],
    ['values one short', () => piecewiseConstantDecay({ boundaries: [3, 6], values: [1, 0.5] }), /values needs one more element than boundaries, got 2 values for 2 boundaries/],
    ['boundaries out of order', () => piecewiseConstantDecay({ boundaries: [6, 3], values: [1, 0.5, 0.1] }), /boundaries must increase/],
    ['alpha above 1', () => cosineDecay({ initialLearningRate: 0.1, decaySteps: 5, alpha: 2 }), /schedules\.cosineDecay: alpha must be a number in \[0, 1\], got 2/],
    ['a misspelled option', () => cosineDecay({ initialLearningRate: 0.1, decaySteps: 5, warmup_steps: 2 } as never), /unknown option 'warmup_steps'/],
  ];
  test.each(bad)('%s is a ValueError', (_label, call, message) => {
    expect(call).toThrow(ck.ValueError);
    expect(call).toThrow(message);
  });
});

const IN = 4;
const OUT = 2;
const N = 12;
const BATCH = 4;
const x0 = randomArray(N * IN, 41, -1, 1);
const y0 = randomArray(N * OUT, 42, -1, 1);
const kernel0 = randomArray(IN * OUT, 43, -0.5, 0.5);
const bias0 = randomArray(OUT, 44, -0.1, 0.1);
const x = ck.tensor(x0, [N, IN]);
const y = ck.tensor(y0, [N, OUT]);

function linearModel(optimizer: ck.Optimizer): ck.LayersModel {
  const model = ck.sequential([ck.layers.input({ shape: [IN] }), ck.layers.dense({ units: OUT })]);
  model.setWeights([ck.tensor(kernel0, [IN, OUT]), ck.tensor(bias0, [OUT])]);
  model.compile({ optimizer, loss: 'meanSquaredError', device: 'cpu' });
  return model;
}

/** Float64 SGD under MSE, batch by batch in order, with the rate rateAt(step) for each step. */
function referenceSgd(steps: number, rateAt: (step: number) => number): Float64Array {
  const w = Float64Array.from([...kernel0, ...bias0]);
  for (let step = 0; step < steps; step++) {
    const start = (step * BATCH) % N;
    const g = new Float64Array(w.length);
    for (let r = start; r < start + BATCH; r++) {
      for (let o = 0; o < OUT; o++) {
        let yHat = w[IN * OUT + o];
        for (let i = 0; i < IN; i++) yHat += x0[r * IN + i] * w[i * OUT + o];
        const dy = (2 * (yHat - y0[r * OUT + o])) / (BATCH * OUT);
        for (let i = 0; i < IN; i++) g[i * OUT + o] += x0[r * IN + i] * dy;
        g[IN * OUT + o] += dy;
      }
    }
    const lr = rateAt(step);
    for (let i = 0; i < w.length; i++) w[i] -= lr * g[i];
  }
  return w;
}

describe('schedules drive every step', () => {
  // Rates far apart, so that a step taken at its neighbour's rate lands well off.
  const piecewise = () => piecewiseConstantDecay({ boundaries: [1, 4, 6], values: [0.3, 0.05, 0.2, 0.01] });

  test('fit (steps queued ahead) then trainOnBatch continue the optimizer\'s step count', async () => {
    const schedule = piecewise();
    const model = linearModel(ck.optimizers.sgd({ learningRate: schedule }));
    await model.fit(x, y, { epochs: 2, batchSize: BATCH, shuffle: false, verbose: 0 });  // steps 0..5
    expect(model.learningRate).toBe(schedule.rate(5));
    await model.trainOnBatch(ck.tensor(x0.slice(0, BATCH * IN), [BATCH, IN]), ck.tensor(y0.slice(0, BATCH * OUT), [BATCH, OUT]));  // step 6
    const want = referenceSgd(7, (t) => schedule.rate(t));
    const got = weightsOf(model);
    ref.expectClose([...got[0], ...got[1]], want, { rtol: 1e-5, atol: 1e-6, name: 'weights' });
    const constant = referenceSgd(7, () => 0.3);
    expect(ref.maxAbs(want.map((v, i) => v - constant[i]))).toBeGreaterThan(1e-2);
  });

  test('exponential and cosine schedules in fit', async () => {
    for (const schedule of [
      exponentialDecay({ initialLearningRate: 0.3, decaySteps: 2, decayRate: 0.2 }),
      cosineDecay({ initialLearningRate: 0.01, warmupTarget: 0.3, warmupSteps: 3, decaySteps: 5 }),
    ]) {
      const model = linearModel(ck.optimizers.sgd({ learningRate: schedule }));
      await model.fit(x, y, { epochs: 3, batchSize: BATCH, shuffle: false, verbose: 0 });
      const got = weightsOf(model);
      ref.expectClose([...got[0], ...got[1]], referenceSgd(9, (t) => schedule.rate(t)), { rtol: 1e-5, atol: 1e-6, name: schedule.className });
    }
  });

  test('a scheduled rate cannot be set by hand (learningRateScheduler, reduceLROnPlateau)', () => {
    const model = linearModel(ck.optimizers.adam({ learningRate: piecewise() }));
    expect(() => { model.learningRate = 0.1; }).toThrow(/learning rate follows a PiecewiseConstantDecay schedule/);
  });

  test('save -> load -> resume keeps the schedule and the step count', async () => {
    const reference = linearModel(ck.optimizers.sgd({ learningRate: piecewise(), momentum: 0.5 }));
    await reference.fit(x, y, { epochs: 3, batchSize: BATCH, shuffle: false, verbose: 0 });
    const first = linearModel(ck.optimizers.sgd({ learningRate: piecewise(), momentum: 0.5 }));
    await first.fit(x, y, { epochs: 1, batchSize: BATCH, shuffle: false, verbose: 0 });
    const dir = path.join(tmpDir('schedules'), 'model');
    await first.save(`file://${dir}`, { includeOptimizer: true });
    const resumed = await ck.loadModel(`file://${dir}`);
    expect(resumed.compiled!.optimizer.getConfig().learningRate).toEqual({ className: 'PiecewiseConstantDecay', config: { boundaries: [1, 4, 6], values: [0.3, 0.05, 0.2, 0.01] } });
    await resumed.fit(x, y, { epochs: 2, batchSize: BATCH, shuffle: false, verbose: 0 });
    expect(bitwiseEqual(weightsOf(resumed), weightsOf(reference))).toBe(true);
  });

  test('Keras\'s saved schedule config is read', () => {
    const opt = optimizerFromConfig('Adam', {
      learning_rate: { module: 'keras.optimizers.schedules', class_name: 'CosineDecay', registered_name: null,
        config: { initial_learning_rate: 0.1, decay_steps: 100, alpha: 0.0, name: 'CosineDecay', warmup_target: null, warmup_steps: 0 } },
    });
    expect(opt.schedule!.rate(50)).toBeCloseTo(0.05, 15);
    expect(() => optimizerFromConfig('SGD', { learning_rate: { class_name: 'InverseTimeDecay', config: {} } }))
      .toThrow(/learning-rate schedule 'InverseTimeDecay' is not one convkit has/);
  });
});

/** A stand-in for the model: reduceLROnPlateau reads and sets only learningRate. */
function scripted(cb: ck.Callback, lr: number) {
  const model = { learningRate: lr, stopTraining: false, getWeights: () => [], setWeights: () => undefined, save: async () => undefined };
  cb.setModel(model);
  return model;
}

describe('reduceLROnPlateau', () => {
  test('a scripted val_loss sequence: patience, minDelta, cooldown and minLr as Keras applies them', async () => {
    const cb = ck.callbacks.reduceLROnPlateau({ factor: 0.5, patience: 2, minDelta: 0.01, cooldown: 1, minLr: 0.2 });
    const model = scripted(cb, 1);
    await cb.onTrainBegin();
    const losses = [1.0, 0.9, 0.9, 0.9, 0.9, 0.8999, 0.5, 0.5, 0.5, 0.5, 0.5];
    const rates: number[] = [];
    for (const [epoch, loss] of losses.entries()) {
      await cb.onEpochEnd(epoch, { loss: 0, val_loss: loss });
      rates.push(model.learningRate);
    }
    // e2 waits 1, e3 waits 2: cut, cooldown 1; e4: the cooldown ends, waits 1; e5: 0.8999 is not
    // 0.01 better than 0.9, waits 2: cut; e6 improves; e7, e8: cut to max(0.125, minLr);
    // e9, e10: at minLr, nothing more.
    expect(rates).toEqual([1, 1, 1, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2, 0.2, 0.2]);
  });

  test('an accuracy is watched for a rise; a missing monitor changes nothing', async () => {
    const cb = ck.callbacks.reduceLROnPlateau({ monitor: 'val_accuracy', patience: 1, factor: 0.1 });
    const model = scripted(cb, 1);
    await cb.onTrainBegin();
    for (const [epoch, acc] of [0.5, 0.6, 0.6].entries()) await cb.onEpochEnd(epoch, { val_accuracy: acc });
    expect(model.learningRate).toBeCloseTo(0.1, 15);
    await cb.onEpochEnd(3, { loss: 1 });
    expect(model.learningRate).toBeCloseTo(0.1, 15);
  });

  test('in fit: each cut reaches the next step (as the same rates set per epoch do)', async () => {
    const cb = ck.callbacks.reduceLROnPlateau({ monitor: 'loss', patience: 1, factor: 0.5, minDelta: 1e9 });  // never improves after the first
    const model = linearModel(ck.optimizers.sgd({ learningRate: 0.2 }));
    await model.fit(x, y, { epochs: 4, batchSize: BATCH, shuffle: false, verbose: 0, callbacks: [cb] });
    expect(model.learningRate).toBeCloseTo(0.2 * 0.5 ** 3, 15);
    const perEpoch = [0.2, 0.2, 0.1, 0.05];
    const want = referenceSgd(12, (t) => perEpoch[Math.floor(t / 3)]);
    const got = weightsOf(model);
    ref.expectClose([...got[0], ...got[1]], want, { rtol: 1e-5, atol: 1e-6, name: 'weights' });
  });

  const bad: Array<[string, () => unknown, RegExp]> = [
    ['factor 1', () => ck.callbacks.reduceLROnPlateau({ factor: 1 }), /reduceLROnPlateau: factor must be a number in \[0, 1\)/],
    ['a fractional patience', () => ck.callbacks.reduceLROnPlateau({ patience: 1.5 }), /reduceLROnPlateau: patience must be an integer >= 0, got 1\.5/],
    ['a bad mode', () => ck.callbacks.reduceLROnPlateau({ mode: 'up' as never }), /mode must be 'auto', 'min' or 'max'/],
  ];
  test.each(bad)('%s is a ValueError', (_label, call, message) => {
    expect(call).toThrow(ck.ValueError);
    expect(call).toThrow(message);
  });
});

describe('csvLogger', () => {
  const dir = tmpDir('csv');

  test('Keras\'s format: sorted columns, CRLF, Python float text; NA val_ columns without validation', async () => {
    const file = path.join(dir, 'scripted.csv');
    const cb = ck.callbacks.csvLogger(file);
    await cb.onTrainBegin();
    await cb.onEpochEnd(0, { loss: 1, accuracy: 1e-5 });
    await cb.onEpochEnd(1, { loss: 0.25, accuracy: 0.1234567 });
    await cb.onEpochEnd(2, { loss: 2.5e16, accuracy: NaN });
    await cb.onTrainEnd();
    expect(fs.readFileSync(file, 'utf8')).toBe([
      'epoch,accuracy,loss,val_accuracy,val_loss',
      '0,1e-05,1.0,NA,NA',
      '1,0.1234567,0.25,NA,NA',
      '2,nan,2.5e+16,NA,NA',
      '',
    ].join('\r\n'));
  });

  test('fit with validation: one row per epoch equal to History; append keeps the header', async () => {
    const file = path.join(dir, 'fit.csv');
    const model = linearModel(ck.optimizers.sgd({ learningRate: 0.05 }));
    const history = await model.fit(x, y, { epochs: 3, batchSize: BATCH, validationSplit: 0.25, verbose: 0, callbacks: [ck.callbacks.csvLogger(file)] });
    await model.fit(x, y, { epochs: 2, batchSize: BATCH, validationSplit: 0.25, verbose: 0, callbacks: [ck.callbacks.csvLogger(file, { append: true })] });
    const lines = fs.readFileSync(file, 'utf8').split('\r\n');
    expect(lines[0]).toBe('epoch,loss,val_loss');
    expect(lines.length).toBe(1 + 3 + 2 + 1);
    expect(lines[6]).toBe('');
    for (let e = 0; e < 3; e++) {
      const [epoch, loss, valLoss] = lines[1 + e].split(',');
      expect(epoch).toBe(String(e));
      expect(Number(loss)).toBe(history.history.loss[e]);
      expect(Number(valLoss)).toBe(history.history.val_loss[e]);
    }
    expect(lines[4].startsWith('0,')).toBe(true);
  });

  test('separator; bad arguments', async () => {
    const file = path.join(dir, 'semicolon.csv');
    const cb = ck.callbacks.csvLogger(file, { separator: ';' });
    await cb.onTrainBegin();
    await cb.onEpochEnd(0, { loss: 0.5, val_loss: 0.75 });
    await cb.onTrainEnd();
    expect(fs.readFileSync(file, 'utf8')).toBe('epoch;loss;val_loss\r\n0;0.5;0.75\r\n');
    expect(() => ck.callbacks.csvLogger('')).toThrow(/csvLogger: filename must be a non-empty string/);
    expect(() => ck.callbacks.csvLogger(file, { separator: ';;' })).toThrow(/csvLogger: separator must be one character/);
    await expect(ck.callbacks.csvLogger(path.join(dir, 'missing', 'x.csv')).onTrainBegin()).rejects.toThrow(ck.IOError);
  });
});
