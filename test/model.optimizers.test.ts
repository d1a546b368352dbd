// Every optimizer setting a user passes reaches training: several steps of fit and trainOnBatch on a
// linear model with MSE, whose gradients are written out in float64 here, against Keras's update
// formulas in float64 (test-support/reference.ts); the option checks of ck.optimizers; and each
// optimizer's full configuration and state through save -> load -> resume.
import { describe, expect, test } from '@jest/globals';
import * as path from 'path';
import * as ck from '../lib';
import { optimizerFromConfig } from '../lib/optimizers';
import { bitwiseEqual, randomArray, tmpDir, weightsOf } from '../test-support/helpers';
import * as ref from '../test-support/reference';

const IN = 5;
const OUT = 3;
const N = 24;
const BATCH = 8;

type Opts = Record<string, number | boolean>;
interface Case { label: string; kind: 'sgd' | 'adam' | 'adamw' | 'rmsprop'; opts: Opts }

// Non-default values chosen so that each one, dropped or replaced by its default, moves the weights
// well past the tolerance (epsilon 0.05 is comparable with the gradients' magnitude).
const cases: Case[] = [
  { label: 'SGD momentum 0.7', kind: 'sgd', opts: { learningRate: 0.05, momentum: 0.7 } },
  { label: 'SGD Nesterov momentum 0.6', kind: 'sgd', opts: { learningRate: 0.05, momentum: 0.6, nesterov: true } },
  { label: 'Adam beta1 0.7, beta2 0.9, epsilon 0.05', kind: 'adam', opts: { learningRate: 0.02, beta1: 0.7, beta2: 0.9, epsilon: 0.05 } },
  { label: 'AdamW beta1 0.6, beta2 0.95, epsilon 0.05, weightDecay 0.3', kind: 'adamw', opts: { learningRate: 0.02, beta1: 0.6, beta2: 0.95, epsilon: 0.05, weightDecay: 0.3 } },
  { label: 'RMSprop rho 0.7, epsilon 0.01', kind: 'rmsprop', opts: { learningRate: 0.01, rho: 0.7, epsilon: 0.01 } },
  { label: 'RMSprop centered, momentum 0.5, rho 0.8', kind: 'rmsprop', opts: { learningRate: 0.01, rho: 0.8, momentum: 0.5, centered: true, epsilon: 0.01 } },
];

const makeOptimizer = (c: Case): ck.Optimizer => (ck.optimizers[c.kind] as (o: Opts) => ck.Optimizer)(c.opts);

const x0 = randomArray(N * IN, 1, -1, 1);
const y0 = randomArray(N * OUT, 2, -1, 1);
const kernel0 = randomArray(IN * OUT, 3, -0.5, 0.5);
const bias0 = randomArray(OUT, 4, -0.1, 0.1);

function linearModel(c: Case): ck.LayersModel {
  const model = ck.sequential([ck.layers.input({ shape: [IN] }), ck.layers.dense({ units: OUT })]);
  model.setWeights([ck.tensor(kernel0, [IN, OUT]), ck.tensor(bias0, [OUT])]);
  model.compile({ optimizer: makeOptimizer(c), loss: 'meanSquaredError' });
  return model;
}

/** Float64 training of y = x W + b under MSE (mean over every output), batch by batch in order. */
function referenceTraining(c: Case, epochs: number): Float64Array[] {
  const w = Float64Array.from([...kernel0, ...bias0]);
  const slots = [0, 1, 2].map(() => new Float64Array(w.length));
  let step = 0;
  for (let e = 0; e < epochs; e++) {
    for (let start = 0; start < N; start += BATCH) {
      const rows = Math.min(BATCH, N - start);
      const g = new Float64Array(w.length);
      for (let r = start; r < start + rows; r++) {
        for (let o = 0; o < OUT; o++) {
          let yHat = w[IN * OUT + o];
          for (let i = 0; i < IN; i++) yHat += x0[r * IN + i] * w[i * OUT + o];
          const dy = (2 * (yHat - y0[r * OUT + o])) / (rows * OUT);
          for (let i = 0; i < IN; i++) g[i * OUT + o] += x0[r * IN + i] * dy;
          g[IN * OUT + o] += dy;
        }
      }
      step++;
      if (c.kind === 'sgd') ref.sgdStep(w, g, slots[0], c.opts);
      else if (c.kind === 'rmsprop') ref.rmspropStep(w, g, slots[0], slots[1], slots[2], c.opts);
      else ref.adamStep(w, g, slots[0], slots[1], step, { weightDecay: c.kind === 'adamw' ? 0.004 : 0, ...c.opts });
    }
  }
  return [w.slice(0, IN * OUT), w.slice(IN * OUT)];
}

const tol = { rtol: 1e-4, atol: 1e-6 };

describe('optimizer settings reach training: float64 reference, 3 epochs of 3 steps', () => {
  const x = ck.tensor(x0, [N, IN]);
  const y = ck.tensor(y0, [N, OUT]);

  test.each(cases)('fit: $label', async (c) => {
    const model = linearModel(c);
    await model.fit(x, y, { epochs: 3, batchSize: BATCH, shuffle: false, verbose: 0 });
    const [kernel, bias] = referenceTraining(c, 3);
    const got = weightsOf(model);
    ref.expectClose(got[0], kernel, { ...tol, name: `${c.label} kernel` });
    ref.expectClose(got[1], bias, { ...tol, name: `${c.label} bias` });
    // the reference moved far from where it started: the comparison can see a wrong setting
    expect(ref.maxAbs(kernel.map((v, i) => v - kernel0[i]))).toBeGreaterThan(0.02);
  });

  test.each(cases)('trainOnBatch: $label', async (c) => {
    const model = linearModel(c);
    for (let e = 0; e < 2; e++) {
      for (let start = 0; start < N; start += BATCH) {
        const xb = ck.tensor(x0.slice(start * IN, (start + BATCH) * IN), [BATCH, IN]);
        const yb = ck.tensor(y0.slice(start * OUT, (start + BATCH) * OUT), [BATCH, OUT]);
        await model.trainOnBatch(xb, yb);
      }
    }
    const [kernel, bias] = referenceTraining(c, 2);
    const got = weightsOf(model);
    ref.expectClose(got[0], kernel, { ...tol, name: `${c.label} kernel` });
    ref.expectClose(got[1], bias, { ...tol, name: `${c.label} bias` });
  });
});

describe('ck.optimizers: option checks', () => {
  test('defaults are Keras\'s', () => {
    expect(ck.optimizers.sgd().getConfig()).toEqual({ learningRate: 0.01, momentum: 0, nesterov: false });
    expect(ck.optimizers.adam().getConfig()).toEqual({ learningRate: 0.001, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 });
    expect(ck.optimizers.adamw().getConfig()).toEqual({ learningRate: 0.001, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, weightDecay: 0.004 });
    expect(ck.optimizers.rmsprop().getConfig()).toEqual({ learningRate: 0.001, rho: 0.9, momentum: 0, epsilon: 1e-7, centered: false });
  });

  test.each(cases)('getConfig returns every setting given: $label', (c) => {
    expect(makeOptimizer(c).getConfig()).toEqual(expect.objectContaining(c.opts));
  });

  const bad: Array<[string, () => unknown, RegExp]> = [
    ['a misspelled key', () => ck.optimizers.adam({ beta_2: 0.9 } as never), /optimizers\.adam: unknown option 'beta_2'/],
    ['a negative learning rate', () => ck.optimizers.sgd({ learningRate: -1 }), /optimizers\.sgd: learningRate must be a number in \[0, 1000000\], got -1/],
    ['beta1 = 1 (bias correction divides by zero)', () => ck.optimizers.adam({ beta1: 1 }), /optimizers\.adam: beta1 must be a number in \[0, 1\), got 1/],
    ['beta2 = 1', () => ck.optimizers.adamw({ beta2: 1 }), /optimizers\.adamw: beta2 must be a number in \[0, 1\)/],
    ['a momentum above 1', () => ck.optimizers.rmsprop({ momentum: 1.5 }), /optimizers\.rmsprop: momentum must be a number in \[0, 1\]/],
    ['a NaN epsilon', () => ck.optimizers.adam({ epsilon: NaN }), /optimizers\.adam: epsilon must be a number/],
    ['a string rho', () => ck.optimizers.rmsprop({ rho: '0.9' as never }), /optimizers\.rmsprop: rho must be a number/],
    ['a non-boolean nesterov', () => ck.optimizers.sgd({ nesterov: 'yes' as never }), /optimizers\.sgd: nesterov must be a boolean, got/],
    ['a non-boolean centered', () => ck.optimizers.rmsprop({ centered: 1 as never }), /optimizers\.rmsprop: centered must be a boolean/],
    ['options that are not an object', () => ck.optimizers.adam(0.01 as never), /optimizers\.adam: options must be an object/],
    ['an unknown optimizer name', () => linearModel(cases[0]).compile({ optimizer: 'adadelta', loss: 'meanSquaredError' }), /unknown optimizer 'adadelta'/],
  ];
  test.each(bad)('%s is a ValueError naming the optimizer and the option', (_label, call, message) => {
    expect(call).toThrow(ck.ValueError);
    expect(call).toThrow(message);
  });

  test('names are case-insensitive and give the defaults', () => {
    const model = linearModel(cases[0]);
    model.compile({ optimizer: 'AdamW', loss: 'meanSquaredError' });
    expect(model.compiled!.optimizer.getConfig()).toEqual(ck.optimizers.adamw().getConfig());
  });
});

describe('save -> load -> resume keeps every optimizer setting and its state', () => {
  const root = tmpDir('convkit-optimizers-');
  const x = ck.tensor(x0, [N, IN]);
  const y = ck.tensor(y0, [N, OUT]);

  test.each(cases)('$label', async (c) => {
    const reference = linearModel(c);
    await reference.fit(x, y, { epochs: 4, batchSize: BATCH, shuffle: false, verbose: 0 });

    const first = linearModel(c);
    await first.fit(x, y, { epochs: 2, batchSize: BATCH, shuffle: false, verbose: 0 });
    const dir = path.join(root, c.label.replace(/[^a-z0-9]+/gi, '-'));
    await first.save(`file://${dir}`, { includeOptimizer: true });
    const resumed = await ck.loadModel(`file://${dir}`);
    expect(resumed.compiled!.optimizer.kind).toBe(c.kind);
    expect(resumed.compiled!.optimizer.getConfig()).toEqual(makeOptimizer(c).getConfig());
    await resumed.fit(x, y, { epochs: 2, batchSize: BATCH, shuffle: false, verbose: 0 });
    expect(bitwiseEqual(weightsOf(resumed), weightsOf(reference))).toBe(true);
  });
});

describe('optimizers from Keras and tfjs training configs', () => {
  test('Keras snake_case names are read', () => {
    const opt = optimizerFromConfig('AdamW', { name: 'adamw', learning_rate: 0.003, beta_1: 0.8, beta_2: 0.95, epsilon: 1e-6, weight_decay: 0.01, clipnorm: null });
    expect(opt.getConfig()).toEqual({ learningRate: 0.003, beta1: 0.8, beta2: 0.95, epsilon: 1e-6, weightDecay: 0.01 });
  });

  test('tfjs\'s RMSProp calls rho "decay", its Momentum optimizer is SGD with momentum', () => {
    expect(optimizerFromConfig('RMSProp', { learningRate: 0.01, decay: 0.8, momentum: 0.1, epsilon: 1e-6, centered: true }).getConfig())
      .toEqual({ learningRate: 0.01, rho: 0.8, momentum: 0.1, epsilon: 1e-6, centered: true });
    expect(optimizerFromConfig('Momentum', { learningRate: 0.1, momentum: 0.9, useNesterov: true }).getConfig())
      .toEqual({ learningRate: 0.1, momentum: 0.9, nesterov: true });
  });

  test('an optimizer convkit does not have is a ValueError naming it', () => {
    expect(() => optimizerFromConfig('Adadelta', {})).toThrow(/optimizer 'Adadelta' is not one convkit has/);
  });
});
