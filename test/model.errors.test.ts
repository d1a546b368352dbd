// Bad input gives typed errors (ShapeError, ValueError, DTypeError, FormatError) that name the
// model or layer and the shapes involved; hostile model files are refused, never a crash.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import * as ck from '../lib';
import { mnistModel, tmpDir } from '../test-support/helpers';

function compiled(loss = 'categoricalCrossentropy'): ck.Sequential {
  const model = mnistModel();
  model.compile({ optimizer: 'adam', loss, metrics: ['accuracy'] });
  return model;
}

/** Runs f (sync or async) and returns what it threw. */
async function thrown(f: () => unknown): Promise<Error> {
  try {
    await f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error, none was thrown');
}

describe('training and inference inputs', () => {
  const x = ck.zeros([10, 28, 28, 1]);

  test('x and y of different lengths: ShapeError naming the model and both counts', async () => {
    const model = compiled();
    const e = await thrown(() => model.fit(x, ck.zeros([9, 10])));
    expect(e).toBeInstanceOf(ck.ShapeError);
    expect(e).toBeInstanceOf(ck.ConvkitError);
    expect(e.name).toBe('ShapeError');
    expect(e.message).toContain(`${model.name}.fit`);
    expect(e.message).toMatch(/10 examples.*9/);
    await expect(model.evaluate(x, ck.zeros([11, 10]))).rejects.toThrow(ck.ShapeError);
    await expect(model.trainOnBatch(x, ck.zeros([3, 10]))).rejects.toThrow(ck.ShapeError);
  });

  test('an input shape the model does not take: ShapeError with (None, 28, 28, 1) and the actual shape', async () => {
    const model = compiled();
    for (const [op, run] of [
      ['fit', () => model.fit(ck.zeros([10, 28, 28, 3]), ck.zeros([10, 10]))],
      ['predict', () => model.predict(ck.zeros([10, 28, 28, 3]))],
      ['evaluate', () => model.evaluate(ck.zeros([10, 28, 28, 3]), ck.zeros([10, 10]))],
      ['predictOnBatch', () => model.predictOnBatch(ck.zeros([10, 28, 28, 3]))],
    ] as [string, () => unknown][]) {
      const e = await thrown(run);
      expect(e).toBeInstanceOf(ck.ShapeError);
      expect(e.message).toContain(`${model.name}.${op}`);
      expect(e.message).toContain('(None, 28, 28, 1)');
      expect(e.message).toContain('[10,28,28,3]');
    }
    const flat = await thrown(() => model.predict(ck.zeros([4, 784])));
    expect(flat).toBeInstanceOf(ck.ShapeError);
    expect(flat.message).toMatch(/\(None, 28, 28, 1\).*\[4,784\]/);
  });

  test('targets that do not match the output: ShapeError naming (None, 10)', async () => {
    const model = compiled();
    const e = await thrown(() => model.fit(x, ck.zeros([10, 5])));
    expect(e).toBeInstanceOf(ck.ShapeError);
    expect(e.message).toContain('(None, 10)');
    expect(e.message).toContain('[10,5]');
  });

  test('labels outside the class range: ValueError naming the label', async () => {
    const sparse = compiled('sparseCategoricalCrossentropy');
    for (const bad of [10, -1, 1.5]) {
      const labels = new Float32Array(10).fill(3);
      labels[4] = bad;
      const e = await thrown(() => sparse.fit(x, ck.tensor(labels, [10])));
      expect(e).toBeInstanceOf(ck.ValueError);
      expect(e.message).toContain(`label ${bad} at index 4`);
      expect(e.message).toContain('[0, 9]');
    }
    const oneHot = compiled();
    const y = new Float32Array(100);
    y[0] = 2;
    await expect(oneHot.fit(x, ck.tensor(y, [10, 10]))).rejects.toThrow(ck.ValueError);
    expect(() => ck.toCategorical([0, 3], 3)).toThrow(ck.ValueError);
    expect(() => ck.toCategorical([0, 3], 3)).toThrow(/label 3 at index 1.*\[0, 2\]/);
  });

  test('non-tensors: DTypeError naming the argument', async () => {
    const model = compiled();
    const e = await thrown(() => model.fit([1, 2] as unknown as ck.Tensor, ck.zeros([10, 10])));
    expect(e).toBeInstanceOf(ck.DTypeError);
    expect(e.message).toMatch(/fit: x must be a Tensor/);
  });

  test('fit before compile: ValueError', async () => {
    const model = mnistModel();
    const e = await thrown(() => model.fit(x, ck.zeros([10, 10])));
    expect(e).toBeInstanceOf(ck.ValueError);
    expect(e.message).toContain(`${model.name}.fit`);
    expect(e.message).toMatch(/compile/);
    await expect(model.evaluate(x, ck.zeros([10, 10]))).rejects.toThrow(ck.ValueError);
    await expect(model.trainOnBatch(x, ck.zeros([10, 10]))).rejects.toThrow(ck.ValueError);
  });

  test('bad fit options: ValueError', async () => {
    const model = compiled();
    const y = ck.zeros([10, 10]);
    await expect(model.fit(x, y, { epochs: 0 })).rejects.toThrow(/epochs/);
    await expect(model.fit(x, y, { batchSize: 2.5 })).rejects.toThrow(ck.ValueError);
    await expect(model.fit(x, y, { validationSplit: 1 })).rejects.toThrow(/validationSplit/);
    await expect(model.fit(x, y, { signal: {} as AbortSignal })).rejects.toThrow(ck.ValueError);
  });
});

describe('unknown names', () => {
  test('loss, optimizer, metric, activation: ValueError with the name', () => {
    expect(() => mnistModel().compile({ optimizer: 'adam', loss: 'hinge' })).toThrow(ck.ValueError);
    expect(() => mnistModel().compile({ optimizer: 'adam', loss: 'hinge' })).toThrow(/unknown loss "hinge"/);
    expect(() => mnistModel().compile({ optimizer: 'adadelta', loss: 'mse' })).toThrow(ck.ValueError);
    expect(() => mnistModel().compile({ optimizer: 'adadelta', loss: 'mse' })).toThrow(/unknown optimizer 'adadelta'/);
    expect(() => mnistModel().compile({ optimizer: 'adam', loss: 'mse', metrics: ['f1'] })).toThrow(/unknown metric "f1"/);
    const e = (() => { try { ck.layers.conv2d({ filters: 3, kernelSize: 3, activation: 'softsign' as never, name: 'my_conv' }); } catch (err) { return err as Error; } return null; })();
    expect(e).toBeInstanceOf(ck.ValueError);
    expect(e!.message).toMatch(/^my_conv: unknown activation "softsign"/);
    expect(() => ck.layers.dense({ units: 3, activation: 'exponential' as never })).toThrow(ck.ValueError);
  });

  test('layer options: ValueError naming the layer', () => {
    expect(() => ck.layers.conv2d({ filters: 0, kernelSize: 3, name: 'c0' })).toThrow(/^c0: filters must be a positive integer/);
    expect(() => ck.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'full' as never, name: 'c1' })).toThrow(/^c1: padding/);
    expect(() => ck.layers.dropout({ rate: 1.5, name: 'd0' })).toThrow(/^d0: rate/);
  });

  test('options that are not an object: a ValueError from every layer factory, naming the layer (the fuzzer found dense(null) throwing a TypeError)', () => {
    for (const [name, factory] of Object.entries(ck.layers)) {
      for (const bad of [null, 5, 'x', [], true]) {
        const e = caught(() => (factory as (a: unknown) => unknown)(bad));
        expect({ name, bad, type: e?.name, message: e?.message }).toEqual({
          name, bad, type: 'ValueError', message: `${FACTORIES[name].prefix}: layer options must be an object, got ${JSON.stringify(bad)}`,
        });
      }
    }
  });
});

/** What each ck.layers factory needs, and a misspelling, a wrong type and an out-of-range value of one of its options. */
const FACTORIES: Record<string, {
  prefix: string; className: string; valid: Record<string, unknown>;
  misspelt: [string, string]; wrongType: [string, unknown, string]; outOfRange: [string, unknown, RegExp];
}> = {
  input: { prefix: 'input', className: 'InputLayer', valid: { shape: [4, 4, 3] }, misspelt: ['shap', 'shape'], wrongType: ['sparse', 'no', 'false or null'], outOfRange: ['shape', [0, 4], /shape must be a non-empty array of positive integers, got \[0,4\]/] },
  inputLayer: { prefix: 'input', className: 'InputLayer', valid: { inputShape: [4] }, misspelt: ['input_shape', 'inputShape'], wrongType: ['ragged', 'no', 'false or null'], outOfRange: ['batchSize', 0, /batchSize must be a positive integer, got 0/] },
  conv2d: { prefix: 'conv2d', className: 'Conv2D', valid: { filters: 2, kernelSize: 3 }, misspelt: ['kernel_size', 'kernelSize'], wrongType: ['useBias', 'yes', 'a boolean'], outOfRange: ['kernelSize', [3, 0], /kernelSize must be a positive integer or a pair of them, got \[3,0\]/] },
  dense: { prefix: 'dense', className: 'Dense', valid: { units: 3 }, misspelt: ['unit', 'units'], wrongType: ['units', '3', 'an integer'], outOfRange: ['units', -1, /units must be a positive integer, got -1/] },
  flatten: { prefix: 'flatten', className: 'Flatten', valid: {}, misspelt: ['trainabel', 'trainable'], wrongType: ['trainable', 1, 'a boolean'], outOfRange: ['dataFormat', 'channelsFirst', /only dataFormat 'channelsLast' \(NHWC\) is supported, got "channelsFirst"/] },
  dropout: { prefix: 'dropout', className: 'Dropout', valid: { rate: 0.5 }, misspelt: ['rates', 'rate'], wrongType: ['rate', '0.5', 'a finite number'], outOfRange: ['rate', 1.5, /rate must be a number in \[0, 1\), got 1.5/] },
  activation: { prefix: 'activation', className: 'Activation', valid: { activation: 'relu' }, misspelt: ['activaton', 'activation'], wrongType: ['activation', 3, 'a string'], outOfRange: ['activation', 'softsign', /unknown activation "softsign"/] },
  reLU: { prefix: 're_lu', className: 'ReLU', valid: {}, misspelt: ['max_value', 'maxValue'], wrongType: ['maxValue', '6', 'a finite number or null'], outOfRange: ['maxValue', -1, /maxValue must be a positive number or null, got -1/] },
  reshape: { prefix: 'reshape', className: 'Reshape', valid: { targetShape: [4] }, misspelt: ['targetshape', 'targetShape'], wrongType: ['targetShape', 4, 'an array of integers'], outOfRange: ['targetShape', [0, 4], /targetShape must be positive integers \(at most one -1\), got \[0,4\]/] },
  depthwiseConv2d: { prefix: 'depthwise_conv2d', className: 'DepthwiseConv2D', valid: { kernelSize: 3 }, misspelt: ['depthMultiplyer', 'depthMultiplier'], wrongType: ['depthMultiplier', 1.5, 'an integer'], outOfRange: ['depthMultiplier', 0, /depthMultiplier must be a positive integer, got 0/] },
  separableConv2d: { prefix: 'separable_conv2d', className: 'SeparableConv2D', valid: { filters: 2, kernelSize: 3 }, misspelt: ['filter', 'filters'], wrongType: ['pointwiseInitializer', 5, 'an initializer name or { className, config } or null'], outOfRange: ['filters', 0, /filters must be a positive integer, got 0/] },
  zeroPadding2d: { prefix: 'zero_padding2d', className: 'ZeroPadding2D', valid: {}, misspelt: ['paddings', 'padding'], wrongType: ['padding', '1', 'an integer, [height, width] or [[top, bottom], [left, right]] of integers'], outOfRange: ['padding', -1, /padding must be an integer, \[h, w\] or \[\[top, bottom\], \[left, right\]\] of integers >= 0, got -1/] },
  upSampling2d: { prefix: 'up_sampling2d', className: 'UpSampling2D', valid: {}, misspelt: ['interpolaton', 'interpolation'], wrongType: ['size', '2', 'an integer or a pair of integers'], outOfRange: ['interpolation', 'bicubic', /interpolation must be 'nearest' or 'bilinear', got "bicubic"/] },
  lpPooling2d: { prefix: 'lp_pooling2d', className: 'LpPooling2D', valid: {}, misspelt: ['P', 'p'], wrongType: ['p', '2', 'a finite number'], outOfRange: ['p', 0.5, /p must be a number in \[1, 1000000\], got 0.5/] },
  add: { prefix: 'add', className: 'Add', valid: {}, misspelt: ['nmae', 'name'], wrongType: ['inputDType', 'int32', "'float32' or null"], outOfRange: ['batchSize', -2, /batchSize must be a positive integer, got -2/] },
  multiply: { prefix: 'multiply', className: 'Multiply', valid: {}, misspelt: ['Trainable', 'trainable'], wrongType: ['dtype', 'float16', "'float32' or null"], outOfRange: ['inputShape', [2, 0], /inputShape must be a non-empty array of positive integers, got \[2,0\]/] },
  average: { prefix: 'average', className: 'Average', valid: {}, misspelt: ['input_shape', 'inputShape'], wrongType: ['batchSize', 1.5, 'an integer or null'], outOfRange: ['batchSize', 0, /batchSize must be a positive integer, got 0/] },
  concatenate: { prefix: 'concatenate', className: 'Concatenate', valid: {}, misspelt: ['axes', 'axis'], wrongType: ['axis', '-1', 'an integer'], outOfRange: ['axis', 1, /only axis -1 \(the last axis, channels\) is supported, got 1/] },
  leakyReLU: { prefix: 'leaky_re_lu', className: 'LeakyReLU', valid: {}, misspelt: ['alhpa', 'alpha'], wrongType: ['alpha', null, 'a finite number'], outOfRange: ['alpha', -0.1, /alpha must be a number >= 0, got -0.1/] },
  softmax: { prefix: 'softmax', className: 'Softmax', valid: {}, misspelt: ['axsi', 'axis'], wrongType: ['axis', [1], 'an integer'], outOfRange: ['axis', 0, /only axis -1 \(the last axis\) is supported, got 0/] },
  maxPooling2d: { prefix: 'max_pooling2d', className: 'MaxPooling2D', valid: {}, misspelt: ['poolsize', 'poolSize'], wrongType: ['padding', 1, 'a string'], outOfRange: ['padding', 'full', /padding must be 'valid' or 'same', got "full"/] },
  averagePooling2d: { prefix: 'average_pooling2d', className: 'AveragePooling2D', valid: {}, misspelt: ['stride', 'strides'], wrongType: ['strides', '2', 'an integer or a pair of integers or null'], outOfRange: ['poolSize', 0, /poolSize must be a positive integer or a pair of them, got 0/] },
  globalAveragePooling2d: { prefix: 'global_average_pooling2d', className: 'GlobalAveragePooling2D', valid: {}, misspelt: ['keepDim', 'keepDims'], wrongType: ['keepDims', 1, 'a boolean'], outOfRange: ['dataFormat', 'channels_first', /only dataFormat 'channelsLast' \(NHWC\) is supported/] },
  globalMaxPooling2d: { prefix: 'global_max_pooling2d', className: 'GlobalMaxPooling2D', valid: {}, misspelt: ['data_format', 'dataFormat'], wrongType: ['keepdims', 'true', 'a boolean'], outOfRange: ['dataFormat', 'NCHW', /only dataFormat 'channelsLast' \(NHWC\) is supported, got "NCHW"/] },
  batchNormalization: { prefix: 'batch_normalization', className: 'BatchNormalization', valid: {}, misspelt: ['epsilion', 'epsilon'], wrongType: ['center', 'yes', 'a boolean'], outOfRange: ['momentum', 1.5, /momentum must be a number in \[0, 1\], got 1.5/] },
  layerNormalization: { prefix: 'layer_normalization', className: 'LayerNormalization', valid: {}, misspelt: ['epsilom', 'epsilon'], wrongType: ['scale', 1, 'a boolean'], outOfRange: ['epsilon', -1, /epsilon must be a number > 0, got -1/] },
  groupNormalization: { prefix: 'group_normalization', className: 'GroupNormalization', valid: { groups: 4 }, misspelt: ['group', 'groups'], wrongType: ['groups', '4', 'an integer'], outOfRange: ['groups', 0, /groups must be a positive integer, got 0/] },
  conv2dTranspose: { prefix: 'conv2d_transpose', className: 'Conv2DTranspose', valid: { filters: 2, kernelSize: 3 }, misspelt: ['output_padding', 'outputPadding'], wrongType: ['outputPadding', '1', 'an integer or a pair of integers or null'], outOfRange: ['outputPadding', 1, /outputPadding must be >= 0 and smaller than the strides \[1,1\], got 1/] },
  cropping2D: { prefix: 'cropping2d', className: 'Cropping2D', valid: { cropping: 1 }, misspelt: ['croping', 'cropping'], wrongType: ['cropping', '1', 'an integer, [height, width] or [[top, bottom], [left, right]] of integers'], outOfRange: ['cropping', -1, /cropping must be an integer, \[h, w\] or \[\[top, bottom\], \[left, right\]\] of integers >= 0, got -1/] },
  conv1d: { prefix: 'conv1d', className: 'Conv1D', valid: { filters: 2, kernelSize: 3 }, misspelt: ['kernel_size', 'kernelSize'], wrongType: ['kernelSize', '3', 'an integer or [integer]'], outOfRange: ['kernelSize', 0, /kernelSize must be an integer >= 1 or \[integer\], got 0/] },
  maxPooling1d: { prefix: 'max_pooling1d', className: 'MaxPooling1D', valid: {}, misspelt: ['poolsize', 'poolSize'], wrongType: ['padding', 1, 'a string'], outOfRange: ['padding', 'causal', /padding must be 'valid' or 'same', got "causal"/] },
  averagePooling1d: { prefix: 'average_pooling1d', className: 'AveragePooling1D', valid: {}, misspelt: ['stride', 'strides'], wrongType: ['strides', '2', 'an integer or [integer] or null'], outOfRange: ['poolSize', 0, /poolSize must be an integer >= 1 or \[integer\], got 0/] },
  globalAveragePooling1d: { prefix: 'global_average_pooling1d', className: 'GlobalAveragePooling1D', valid: {}, misspelt: ['keepDim', 'keepDims'], wrongType: ['keepDims', 1, 'a boolean'], outOfRange: ['dataFormat', 'channels_first', /only dataFormat 'channelsLast' \(NHWC\) is supported/] },
  globalMaxPooling1d: { prefix: 'global_max_pooling1d', className: 'GlobalMaxPooling1D', valid: {}, misspelt: ['data_format', 'dataFormat'], wrongType: ['keepdims', 'true', 'a boolean'], outOfRange: ['dataFormat', 'NCHW', /only dataFormat 'channelsLast' \(NHWC\) is supported, got "NCHW"/] },
  rescaling: { prefix: 'rescaling', className: 'Rescaling', valid: { scale: 0.5 }, misspelt: ['ofset', 'offset'], wrongType: ['offset', '1', 'a finite number'], outOfRange: ['batchSize', 0, /batchSize must be a positive integer, got 0/] },
  normalization: { prefix: 'normalization', className: 'Normalization', valid: {}, misspelt: ['varaince', 'variance'], wrongType: ['mean', '1', 'a finite number or a non-empty array of them or null'], outOfRange: ['variance', -2, /variance must be >= 0, got -2/] },
  randomFlip: { prefix: 'random_flip', className: 'RandomFlip', valid: {}, misspelt: ['mod', 'mode'], wrongType: ['seed', '1', 'an integer or null'], outOfRange: ['mode', 'diagonal', /mode must be "horizontal" or "vertical" or "horizontal_and_vertical", got "diagonal"/] },
  randomRotation: { prefix: 'random_rotation', className: 'RandomRotation', valid: { factor: 0.1 }, misspelt: ['fill_mode', 'fillMode'], wrongType: ['fillValue', '0', 'a finite number'], outOfRange: ['factor', 1.5, /factor must be a number or a list of two numbers in \[-1, 1\], got 1.5/] },
  randomZoom: { prefix: 'random_zoom', className: 'RandomZoom', valid: { heightFactor: 0.2 }, misspelt: ['heigthFactor', 'heightFactor'], wrongType: ['widthFactor', 'x', 'a finite number or a non-empty array of them or null'], outOfRange: ['heightFactor', -1, /heightFactor must be a number or a list of two numbers in \(-1, 1\], got -1/] },
  randomTranslation: { prefix: 'random_translation', className: 'RandomTranslation', valid: { heightFactor: 0.1, widthFactor: 0.2 }, misspelt: ['widthfactor', 'widthFactor'], wrongType: ['interpolation', 1, '"bilinear" or "nearest"'], outOfRange: ['widthFactor', [0, 2], /widthFactor must be a number or a list of two numbers in \[-1, 1\], got \[0,2\]/] },
  randomContrast: { prefix: 'random_contrast', className: 'RandomContrast', valid: { factor: 0.2 }, misspelt: ['value_range', 'valueRange'], wrongType: ['factor', '0.2', 'a finite number or a non-empty array of them'], outOfRange: ['factor', -0.5, /factor must be a number or a list of two numbers in \[0, 1\], got -0.5/] },
  randomBrightness: { prefix: 'random_brightness', className: 'RandomBrightness', valid: { factor: 0.2 }, misspelt: ['factors', 'factor'], wrongType: ['seed', 1.5, 'an integer or null'], outOfRange: ['valueRange', [1, 1], /valueRange must be \[low, high\], two different finite numbers, got \[1,1\]/] },
};

/** What f threw (synchronously), or null. */
function caught(f: () => unknown): Error | null {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  return null;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('garbage layer options: a ValueError from every layer factory, naming the layer, the option, what it takes and what it got', () => {
  const factories = Object.entries(ck.layers) as [string, (a: unknown) => ck.Layer][];

  test('the table covers every factory, and each accepts its valid options', () => {
    expect(Object.keys(FACTORIES).sort()).toEqual(Object.keys(ck.layers).sort());
    for (const [name, factory] of factories) {
      const layer = factory({ ...FACTORIES[name].valid, name: `ok_${name}` });
      expect([name, layer.className, layer.name]).toEqual([name, FACTORIES[name].className, `ok_${name}`]);
    }
  });

  test('an unknown (misspelt) option: never a silent default', () => {
    for (const [name, factory] of factories) {
      const { valid, misspelt: [key, meant], className } = FACTORIES[name];
      for (const layerName of [`bad_${name}`, undefined]) {
        const e = caught(() => factory({ ...valid, [key]: key === 'P' ? 2 : valid[meant] ?? 1, ...(layerName ? { name: layerName } : {}) }));
        const prefix = layerName ?? `${FACTORIES[name].prefix}(_\\d+)?`;
        expect({ name, type: e?.name }).toEqual({ name, type: 'ValueError' });
        expect({ name, message: e?.message }).toEqual({
          name, message: expect.stringMatching(new RegExp(`^${prefix}: unknown option '${escape(key)}' \\(did you mean '${meant}'\\?\\); ${className} takes .*\\b${meant}\\b`)),
        });
      }
    }
  });

  test('an option of the wrong type', () => {
    for (const [name, factory] of factories) {
      const { valid, wrongType: [key, value, expected] } = FACTORIES[name];
      const e = caught(() => factory({ ...valid, [key]: value, name: `bad_${name}` }));
      expect({ name, type: e?.name, message: e?.message }).toEqual({
        name, type: 'ValueError', message: `bad_${name}: ${key} must be ${expected}, got ${JSON.stringify(value)}`,
      });
      // a common option, the same for every layer
      expect(caught(() => factory({ ...valid, trainable: 'no', name: `bad_${name}` }))?.message).toBe(`bad_${name}: trainable must be a boolean, got "no"`);
      // an input shape that is not one is a ShapeError
      for (const [key, shape, expected] of [
        ['inputShape', [2, 'x'], 'a non-empty array of positive integers'],
        ['batchInputShape', 7, '[batch, ...dims]: positive integers (the batch may be null)'],
      ] as const) {
        const s = caught(() => factory({ ...valid, [key]: shape, name: `bad_${name}` }));
        expect({ name, type: s?.name, message: s?.message }).toEqual({
          name, type: 'ShapeError', message: `bad_${name}: ${key} must be ${expected}, got ${JSON.stringify(shape)}`,
        });
      }
    }
  });

  test('an option out of range', () => {
    for (const [name, factory] of factories) {
      const { valid, outOfRange: [key, value, message] } = FACTORIES[name];
      const e = caught(() => factory({ ...valid, [key]: value, name: `bad_${name}` }));
      expect({ name, key, typed: e instanceof ck.ConvkitError }).toEqual({ name, key, typed: true });
      expect({ name, message: e?.message }).toEqual({ name, message: expect.stringMatching(new RegExp(`^bad_${name}: ${message.source}`)) });
    }
  });

  test('options Keras and tfjs write stay accepted: common ones, nulls for what convkit does not support, and each layer\'s own config', () => {
    const common = { trainable: false, dtype: 'float32', batchSize: null, inputDType: 'float32', weights: null };
    for (const [name, factory] of factories) {
      const layer = factory({ ...FACTORIES[name].valid, ...common, name: `common_${name}` });
      // its own config (as model.json stores it, and as loadModel rebuilds it) makes the same layer
      const again = factory(layer.getConfig());
      expect([name, again.getConfig()]).toEqual([name, layer.getConfig()]);
    }
    const nulls = { kernelRegularizer: null, biasRegularizer: null, activityRegularizer: null, kernelConstraint: null, biasConstraint: null };
    expect(ck.layers.dense({ units: 2, ...nulls, activation: null, kernelInitializer: { className: 'HeNormal', config: { seed: null } } }).units).toBe(2);
    expect(ck.layers.conv2d({ filters: 2, kernelSize: 3, ...nulls, batchInputShape: [null, 8, 8, 3], dataFormat: 'channels_last', groups: 1 }).filters).toBe(2);
    expect(ck.layers.dense({ units: 2, inputDim: 5 }).batchInputShape).toEqual([null, 5]);
    expect(ck.layers.depthwiseConv2d({ kernelSize: 3, depthwiseRegularizer: null, depthwiseConstraint: null, groups: 1 }).depthMultiplier).toBe(1);
    expect(ck.layers.maxPooling2d({ poolSize: 2, strides: null }).strides).toEqual([2, 2]);
    expect(ck.layers.dropout({ rate: 0.1, noiseShape: null, seed: 3 }).rate).toBe(0.1);
    expect(ck.layers.batchNormalization({ synchronized: false, betaRegularizer: null, gammaConstraint: null }).epsilon).toBe(1e-3);
    expect(ck.layers.leakyReLU({ negativeSlope: 0.2 }).alpha).toBe(0.2);  // Keras 3's name for alpha
    // tfjs's softmax axis is 1 by default: the last axis of vectors, and only of vectors
    ck.sequential([ck.layers.input({ shape: [5] }), ck.layers.softmax({ axis: 1 })]).build();
    expect(() => ck.sequential([ck.layers.input({ shape: [2, 5] }), ck.layers.softmax({ axis: 1, name: 'sm1' })]).build())
      .toThrow(/^sm1: only the last axis \(-1, or 2 for input \(None, 2, 5\)\) is supported, got axis 1/);
    expect(ck.layers.input({ shape: [3], dtype: { className: 'DTypePolicy', config: { name: 'float32' } } as never, sparse: false }).batchInputShape).toEqual([null, 3]);
    // what convkit cannot honour is refused, not ignored
    expect(() => ck.layers.dense({ units: 2, activityRegularizer: { className: 'L2', config: { l2: 0.01 } } as never, name: 'l2' }))
      .toThrow(/^l2: activityRegularizer is not supported by convkit \(leave it out, or null\), got \{"className":"L2"/);
    expect(() => ck.layers.dense({ units: 2, weights: [ck.zeros([2, 2])] as never, name: 'w0' })).toThrow(/^w0: weights is not supported/);
  });

  test('tfjs layers\' configs (getConfig) make convkit layers', () => {
    const tfLayers = tf.layers as unknown as Record<string, (a: unknown) => { getConfig(): Record<string, unknown> }>;
    for (const [name, factory] of factories) {
      // not tfjs layers (GroupNormalization, Normalization and the random augmentations are Keras's only)
      if (name === 'lpPooling2d' || name === 'input' || name === 'groupNormalization' || name === 'normalization' || name.startsWith('random')) continue;
      const config = tfLayers[name]({ ...FACTORIES[name].valid, name: `tfjs_${name}` }).getConfig();
      const e = caught(() => factory(config));
      expect({ name, error: e?.message }).toEqual({ name, error: undefined });
    }
  });
});

describe('shapes that do not fit a layer: ShapeError naming the layer and the shape', () => {
  test('a kernel larger than its input', () => {
    const model = ck.sequential([ck.layers.input({ shape: [4, 4, 1] }), ck.layers.conv2d({ filters: 2, kernelSize: 5, name: 'big_conv' })]);
    expect(() => model.build()).toThrow(ck.ShapeError);
    expect(() => model.summary(undefined, undefined, () => undefined)).toThrow(/big_conv: the 5x5 kernel does not fit the input \(None, 4, 4, 1\)/);
  });

  test('a conv layer after flatten', () => {
    const model = ck.sequential([ck.layers.input({ shape: [4, 4, 1] }), ck.layers.flatten(), ck.layers.conv2d({ filters: 2, kernelSize: 1, name: 'late_conv' })]);
    expect(() => model.build()).toThrow(ck.ShapeError);
    expect(() => model.build()).toThrow(/late_conv: .*\(None, 16\)/);
  });

  test('a pool larger than its input', () => {
    const model = ck.sequential([ck.layers.input({ shape: [1, 1, 3] }), ck.layers.maxPooling2d({ poolSize: 2, name: 'pool' })]);
    expect(() => model.build()).toThrow(/pool: the 2x2 pool does not fit the input \(None, 1, 1, 3\)/);
  });

  test('no input shape', () => {
    expect(() => ck.sequential([ck.layers.dense({ units: 2 })]).build()).toThrow(/inputShape/);
  });
});

describe('model files', () => {
  let root: string;
  let good: string;
  let json: Record<string, any>;
  let weights: Buffer;

  beforeAll(async () => {
    root = tmpDir('errors');
    good = path.join(root, 'good');
    const model = mnistModel();
    model.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy' });
    await model.save(`file://${good}`);
    json = JSON.parse(fs.readFileSync(path.join(good, 'model.json'), 'utf8'));
    weights = fs.readFileSync(path.join(good, 'weights.bin'));
  });

  afterAll(() => {
    fs.rmSync(root, { recursive: true, force: true });
  });

  let n = 0;
  /** Writes a model folder (model.json as given, weights.bin as given or the good one). */
  function folder(modelJson: unknown, bin: Buffer | null = weights): string {
    const dir = path.join(root, `case-${n++}`);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'model.json'), typeof modelJson === 'string' ? modelJson : JSON.stringify(modelJson));
    if (bin) fs.writeFileSync(path.join(dir, 'weights.bin'), bin);
    return `file://${dir}`;
  }

  const edit = (f: (j: any) => void) => {
    const copy = JSON.parse(JSON.stringify(json));
    f(copy);
    return copy;
  };

  async function formatError(url: string, message?: RegExp): Promise<void> {
    const e = await thrown(() => ck.loadModel(url));
    expect(e).toBeInstanceOf(ck.FormatError);
    if (message) expect(e.message).toMatch(message);
  }

  test('the unedited files load', async () => {
    const model = await ck.loadModel(folder(json));
    expect(model.countParams()).toBe(62346);
  });

  test('weights.bin of the wrong size', async () => {
    await formatError(folder(json, weights.subarray(0, weights.length - 4)), /hold 249380 bytes but the manifest declares 249384/);
    await formatError(folder(json, Buffer.concat([weights, Buffer.alloc(8)])), /249392 bytes/);
    await formatError(folder(json, Buffer.alloc(0)));
    await formatError(folder(json, null), /weights\.bin is missing/);
  });

  test('model.json shapes that do not match the topology', async () => {
    // same size, other layout: the loader must not reinterpret the bytes
    await formatError(folder(edit((j) => { j.weightsManifest[0].weights[0].shape = [5, 5, 32, 1]; })),
      /conv2d(_\d+)?\/kernel has shape \[5,5,32,1\] but conv2d(_\d+)? needs kernel \[5,5,1,32\]/);
    // a topology edited to need other weights
    await formatError(folder(edit((j) => { j.modelTopology.config.layers[1].config.filters = 16; })), /\[5,5,1,16\]/);
    // a manifest with one weight fewer
    await formatError(folder(edit((j) => { j.weightsManifest[0].weights.pop(); }), weights.subarray(0, weights.length - 40)));
    // a bigger shape than the file holds
    await formatError(folder(edit((j) => { j.weightsManifest[0].weights[4].shape = [1024, 11]; })), /manifest declares/);
  });

  test('hostile model.json: FormatError, never a crash', async () => {
    const cases: [string, unknown, RegExp?][] = [
      ['not JSON', '{"modelTopology": ', /not valid JSON/],
      ['empty', '', /not valid JSON/],
      ['a JSON array', '[1, 2]', /not a JSON object/],
      ['null', 'null'],
      ['missing modelTopology', edit((j) => { delete j.modelTopology; }), /no modelTopology/],
      ['weights path ../x', edit((j) => { j.weightsManifest[0].paths = ['../x']; }), /weights path "\.\.\/x"/],
      ['absolute weights path', edit((j) => { j.weightsManifest[0].paths = ['/etc/passwd']; })],
      ['negative shape', edit((j) => { j.weightsManifest[0].weights[0].shape = [-5, 5, 1, 32]; }), /invalid shape \[-5,5,1,32\]/],
      ['fractional shape', edit((j) => { j.weightsManifest[0].weights[0].shape = [2.5]; })],
      ['absurd shape', edit((j) => { j.weightsManifest[0].weights[0].shape = [1e9, 1e9, 1e9]; })],
      ['shape not an array', edit((j) => { j.weightsManifest[0].weights[0].shape = 'big'; })],
      ['int32 weights', edit((j) => { j.weightsManifest[0].weights[0].dtype = 'int32'; })],
      ['weightsManifest not an array', edit((j) => { j.weightsManifest = {}; })],
      ['not Sequential', edit((j) => { j.modelTopology.class_name = 'Model'; })],
      ['unknown layer class', edit((j) => { j.modelTopology.config.layers[1].class_name = 'Evil'; }), /unknown layer class 'Evil'/],
      ['no layers', edit((j) => { j.modelTopology.config.layers = []; })],
      ['negative kernel size', edit((j) => { j.modelTopology.config.layers[1].config.kernel_size = [-1, 5]; })],
      ['absurd filters', edit((j) => { j.modelTopology.config.layers[1].config.filters = 1e12; })],
      ['absurd input', edit((j) => { j.modelTopology.config.layers[0].config.batch_input_shape = [null, 1e6, 1e6, 1e3]; })],
      ['unknown activation', edit((j) => { j.modelTopology.config.layers[1].config.activation = 'evil'; })],
      ['deep nesting', edit((j) => {
        const deep: Record<string, unknown> = {};
        let cur = deep;
        for (let i = 0; i < 1000; i++) { cur.a = {}; cur = cur.a as Record<string, unknown>; }
        j.modelTopology.config.layers[1].config.extra = deep;
      }), /too deep/],
    ];
    for (const [label, content, message] of cases) {
      const e = await thrown(() => ck.loadModel(folder(content)));
      expect([label, e.name]).toEqual([label, 'FormatError']);
      expect(e).toBeInstanceOf(ck.FormatError);
      if (message) expect(e.message).toMatch(message);
    }
  });

  test('a folder with no model.json; a URL that is not file://', async () => {
    await formatError(`file://${path.join(root, 'nothing-here')}`, /does not exist/);
    await expect(ck.loadModel('http://example.com/model.json')).rejects.toThrow(ck.ValueError);
  });
});

describe('layer specs the executor receives', () => {
  // lib/ lowers each layer to native specs; the executor reads each spec's attributes by name
  // from its kind's list (native/core/layer_kinds.inc), so a misspelled or foreign key is refused.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { native } = require('../lib/native') as { native: { Net: new (...args: unknown[]) => unknown } };
  const conv = { kind: 'conv2d', name: 'c', filters: 2, kernelH: 3, kernelW: 3, inputs: [0] };
  const build = (spec: Record<string, unknown>) => new native.Net([[8, 8, 1]], [spec], [1]);

  test('a spec with only its kind\'s attributes builds', () => {
    expect(() => build({ ...conv, strideH: 2, strideW: 2, padding: 'same', activation: 'relu' })).not.toThrow();
    expect(() => build({ kind: 'upSampling2d', name: 'u', sizeH: 2, sizeW: 3, inputs: [0] })).not.toThrow();
  });

  test.each([
    [{ ...conv, strideh: 2 }, 'strideh', 'a conv2d layer'],
    [{ ...conv, units: 4 }, 'units', 'a conv2d layer'],
    [{ kind: 'upSampling2d', name: 'u', kernelH: 2, inputs: [0] }, 'kernelH', 'sizeH sizeW interpolation'],
    [{ kind: 'flatten', name: 'f', rate: 0.5, inputs: [0] }, 'rate', 'it takes: none'],
  ])('%j: ValueError naming the layer and the key', (spec, key, detail) => {
    let error: unknown = null;
    try {
      build(spec);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ck.ValueError);
    expect((error as Error).message).toContain(`${(spec as { name: string }).name}: `);
    expect((error as Error).message).toContain(`'${key}'`);
    expect((error as Error).message).toContain(detail);
  });
});
