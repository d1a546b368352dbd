// ck.optimizers, getOptimizer and optimizerFromConfig at the edges the other suites leave open
// (found by mutation testing, docs/testing.md): the closed ends of the option ranges, the error
// that lists the known options, what compile accepts as an optimizer object, and the saved
// configs' legacy names, nulls and non-object configs. Expectations are Keras's and tfjs's.
import { describe, expect, test } from '@jest/globals';
import * as ck from '../lib';
import { getOptimizer, optimizerFromConfig } from '../lib/optimizers';

describe('option ranges include their closed ends', () => {
  test('an upper end written "]" is accepted as given', () => {
    expect(ck.optimizers.sgd({ learningRate: 1e6, momentum: 1 }).getConfig()).toEqual({ learningRate: 1e6, momentum: 1, nesterov: false });
    expect(ck.optimizers.rmsprop({ rho: 1, momentum: 1, epsilon: 1 }).getConfig())
      .toEqual({ learningRate: 0.001, rho: 1, momentum: 1, epsilon: 1, centered: false });
    expect(ck.optimizers.adamw({ weightDecay: 1e6, epsilon: 1 }).getConfig())
      .toEqual({ learningRate: 0.001, beta1: 0.9, beta2: 0.999, epsilon: 1, weightDecay: 1e6 });
  });

  test('the lower end 0 is accepted; just past either end is not', () => {
    expect(ck.optimizers.adam({ learningRate: 0, beta1: 0, beta2: 0, epsilon: 0 }).getConfig())
      .toEqual({ learningRate: 0, beta1: 0, beta2: 0, epsilon: 0 });
    expect(() => ck.optimizers.sgd({ momentum: 1.0000001 })).toThrow(/optimizers\.sgd: momentum must be a number in \[0, 1\], got 1\.0000001/);
    expect(() => ck.optimizers.sgd({ learningRate: 1e6 + 1 })).toThrow(ck.ValueError);
    expect(() => ck.optimizers.adam({ epsilon: -1e-12 })).toThrow(/optimizers\.adam: epsilon must be a number in \[0, 1\]/);
  });
});

test('an unknown option is named along with every option that optimizer takes', () => {
  expect(() => ck.optimizers.rmsprop({ decay: 0.9 } as never))
    .toThrow("optimizers.rmsprop: unknown option 'decay' (known: learningRate, rho, momentum, epsilon, centered, clipnorm, clipvalue, globalClipnorm, weightDecay, gradientAccumulationSteps)");
  expect(() => ck.optimizers.sgd({ lr: 0.1 } as never)).toThrow("(known: learningRate, momentum, nesterov, clipnorm, clipvalue, globalClipnorm, weightDecay, gradientAccumulationSteps)");
});

describe('getOptimizer: a name or an optimizer object, nothing else', () => {
  test('an object with kind and getConfig is used as it is', () => {
    const opt = ck.optimizers.sgd({ momentum: 0.5 });
    expect(getOptimizer(opt)).toBe(opt);
  });

  const notOptimizers: Array<[string, unknown]> = [
    ['undefined', undefined],
    ['null', null],
    ['a number', 0.01],
    ['an empty object', {}],
    ['getConfig without kind', { getConfig: () => ({ learningRate: 0.1 }) }],
    ['kind without getConfig', { kind: 'adam' }],
    ['kind with a getConfig that is not a function', { kind: 'adam', getConfig: { learningRate: 0.1 } }],
    ['a function carrying kind and getConfig', Object.assign(() => 0, { kind: 'sgd', getConfig: () => ({}) })],
  ];
  test.each(notOptimizers)('%s is a ValueError saying what is expected', (_label, v) => {
    expect(() => getOptimizer(v)).toThrow(ck.ValueError);
    expect(() => getOptimizer(v)).toThrow(/^compile: optimizer must be a name or a ck\.optimizers\.\* object, got /);
  });

  test('compile refuses such an object before training could call into it', () => {
    const model = ck.sequential([ck.layers.input({ shape: [2] }), ck.layers.dense({ units: 1 })]);
    expect(() => model.compile({ optimizer: { kind: 'adam' } as never, loss: 'meanSquaredError' }))
      .toThrow(/optimizer must be a name or a ck\.optimizers\.\* object, got/);
    expect(model.compiled).toBeFalsy();
  });
});

describe('optimizerFromConfig: what saved configs hold', () => {
  test('Keras 2\'s legacy "lr" and tfjs\'s "use_nesterov" are read', () => {
    expect(optimizerFromConfig('SGD', { lr: 0.05, momentum: 0.9, use_nesterov: true }).getConfig())
      .toEqual({ learningRate: 0.05, momentum: 0.9, nesterov: true });
  });

  test('"decay" is rho only in tfjs\'s RMSProp: in Keras 2\'s RMSprop it is learning-rate decay, passed over', () => {
    expect(optimizerFromConfig('RMSprop', { learning_rate: 0.01, rho: 0.8, decay: 0.01 }).getConfig())
      .toEqual({ learningRate: 0.01, rho: 0.8, momentum: 0, epsilon: 1e-7, centered: false });
    expect(optimizerFromConfig('RMSProp', { learningRate: 0.01, decay: 0.7 }).getConfig().rho).toBe(0.7);
  });

  test('a null setting (Keras 3 writes weight_decay: null and the like) falls back to the default', () => {
    expect(optimizerFromConfig('AdamW', { learning_rate: null, weight_decay: null, beta_1: 0.8 }).getConfig())
      .toEqual({ learningRate: 0.001, beta1: 0.8, beta2: 0.999, epsilon: 1e-7, weightDecay: 0.004 });
    expect(optimizerFromConfig('SGD', { nesterov: null }).getConfig()).toEqual({ learningRate: 0.01, momentum: 0, nesterov: false });
  });

  test('no config, or a null one, gives the defaults', () => {
    expect(optimizerFromConfig('Adam', null).getConfig()).toEqual(ck.optimizers.adam().getConfig());
    expect(optimizerFromConfig('adam', undefined).getConfig()).toEqual(ck.optimizers.adam().getConfig());
  });

  test('a setting out of range in a saved config is the factory\'s ValueError', () => {
    expect(() => optimizerFromConfig('Adam', { beta_1: 1 })).toThrow(/optimizers\.adam: beta1 must be a number in \[0, 1\), got 1/);
  });
});
