// summary(), parameter counts, shapes and weights of Sequential models, checked against the
// figures Keras prints for the same models (model.summary() in TensorFlow 2.x / Keras).
import { describe, expect, jest, test } from '@jest/globals';
import * as ck from '../lib';
import { bitwiseEqual, mnistModel, randomArray, summaryLines, weightsOf } from '../test-support/helpers';

/** The summary row of the layer whose output shape is `shape` (the row starts with the name). */
function row(lines: string[], shape: string): string {
  const found = lines.filter((l) => l.includes(shape));
  expect(found).toHaveLength(1);
  return found[0];
}

describe('summary of the seeds\' MNIST model (Keras: 62,346 params)', () => {
  const model = mnistModel();
  const lines = summaryLines(model);

  test('table layout as Keras prints it', () => {
    expect(lines[0]).toBe(`Model: "${model.name}"`);
    expect(lines[1]).toBe('_'.repeat(65));
    expect(lines[2]).toMatch(/^ Layer \(type\)\s+Output Shape\s+Param #$/);
    expect(lines[3]).toBe('='.repeat(65));
    expect(lines.at(-1)).toBe('_'.repeat(65));
    // the input layer only declares the shape: Keras lists no row for it in a Sequential
    expect(lines.some((l) => l.includes('InputLayer'))).toBe(false);
  });

  test('per-layer output shapes and parameter counts', () => {
    // Keras: conv 5*5*1*32+32 = 832; conv 5*5*32*64+64 = 51264; dense 1024*10+10 = 10250
    expect(row(lines, '(None, 24, 24, 32)')).toMatch(/^ conv2d(_\d+)? \(Conv2D\)\s+\(None, 24, 24, 32\)\s+832$/);
    expect(row(lines, '(None, 12, 12, 32)')).toMatch(/^ max_pooling2d(_\d+)? \(MaxPooling2D\s+\(None, 12, 12, 32\)\s+0$/);
    expect(row(lines, '(None, 8, 8, 64)')).toMatch(/^ conv2d_\d+ \(Conv2D\)\s+\(None, 8, 8, 64\)\s+51264$/);
    expect(row(lines, '(None, 4, 4, 64)')).toMatch(/\(None, 4, 4, 64\)\s+0$/);
    expect(row(lines, '(None, 1024)')).toMatch(/^ flatten(_\d+)? \(Flatten\)\s+\(None, 1024\)\s+0$/);
    expect(row(lines, '(None, 10)')).toMatch(/^ dense(_\d+)? \(Dense\)\s+\(None, 10\)\s+10250$/);
  });

  test('totals', () => {
    expect(lines).toContain('Total params: 62,346');
    expect(lines).toContain('Trainable params: 62,346');
    expect(lines).toContain('Non-trainable params: 0');
  });

  test('countParams, outputShape, layers', () => {
    expect(model.countParams()).toBe(62346);
    expect(model.outputShape).toEqual([null, 10]);
    expect(model.layers.map((l) => l.className)).toEqual(
      ['InputLayer', 'Conv2D', 'MaxPooling2D', 'Conv2D', 'MaxPooling2D', 'Flatten', 'Dense']);
  });

  test('summary prints through console.log by default', () => {
    const spy = jest.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      model.summary();
      expect(spy.mock.calls.map((c) => c[0])).toEqual(lines);
    } finally {
      spy.mockRestore();
    }
  });
});

describe('summary of the cats-and-dogs model (300x300x3, Keras: 438,842 params)', () => {
  const model = ck.sequential([
    ck.layers.input({ shape: [300, 300, 3] }),
    ck.layers.conv2d({ filters: 10, kernelSize: 5, activation: 'relu' }),
    ck.layers.maxPooling2d({ poolSize: 2 }),
    ck.layers.flatten(),
    ck.layers.dense({ units: 2, activation: 'softmax' }),
  ]);
  const lines = summaryLines(model);

  test('shapes and counts', () => {
    // conv 5*5*3*10+10 = 760; 148*148*10 = 219040; dense 219040*2+2 = 438082
    expect(row(lines, '(None, 296, 296, 10)')).toMatch(/\(Conv2D\)\s+\(None, 296, 296, 10\)\s+760$/);
    expect(row(lines, '(None, 148, 148, 10)')).toMatch(/\(None, 148, 148, 10\)\s+0$/);
    expect(row(lines, '(None, 219040)')).toMatch(/\(Flatten\)\s+\(None, 219040\)\s+0$/);
    expect(row(lines, '(None, 2)')).toMatch(/\(Dense\)\s+\(None, 2\)\s+438082$/);
    expect(lines).toContain('Total params: 438,842');
    expect(lines).toContain('Trainable params: 438,842');
    expect(model.countParams()).toBe(438842);
    expect(model.outputShape).toEqual([null, 2]);
  });
});

describe('trainable and non-trainable parameters (Keras rules)', () => {
  // input 8x8x3 -> conv 4 3x3 (112 params) -> BN (16: gamma, beta trainable; moving mean and
  // variance non-trainable) -> flatten 144 -> dense 2 (290)
  const make = (convTrainable = true) => ck.sequential([
    ck.layers.input({ shape: [8, 8, 3] }),
    ck.layers.conv2d({ filters: 4, kernelSize: 3, trainable: convTrainable }),
    ck.layers.batchNormalization(),
    ck.layers.flatten(),
    ck.layers.dense({ units: 2 }),
  ]);

  test('batchNormalization: moving mean/variance are non-trainable', () => {
    const model = make();
    const lines = summaryLines(model);
    expect(lines.filter((l) => l.includes('(None, 6, 6, 4)'))).toEqual([
      expect.stringMatching(/\(Conv2D\)\s+\(None, 6, 6, 4\)\s+112$/),
      expect.stringMatching(/^ batch_normalization(_\d+)? \(BatchN\s+\(None, 6, 6, 4\)\s+16$/),
    ]);
    expect(lines).toContain('Total params: 418');
    expect(lines).toContain('Trainable params: 410');
    expect(lines).toContain('Non-trainable params: 8');
    expect(model.countParams()).toBe(418);
    const bn = model.layers[2];
    expect(bn.getWeights().map((w) => w.shape)).toEqual([[4], [4], [4], [4]]);
    // Keras's initial values: gamma 1, beta 0, moving mean 0, moving variance 1
    expect(bn.getWeights().map((w) => Array.from(w.dataSync()))).toEqual([[1, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]]);
  });

  test('a layer created with trainable: false counts as non-trainable', () => {
    const lines = summaryLines(make(false));
    expect(lines).toContain('Total params: 418');
    expect(lines).toContain('Trainable params: 298');
    expect(lines).toContain('Non-trainable params: 120');
  });

  test('freezing layers after building (layer.trainable = false), then unfreezing', () => {
    const model = make();
    model.build();
    model.layers[1].trainable = false;
    model.layers[2].trainable = false;
    let lines = summaryLines(model);
    expect(lines).toContain('Trainable params: 290');
    expect(lines).toContain('Non-trainable params: 128');
    model.layers[1].trainable = true;
    model.layers[2].trainable = true;
    lines = summaryLines(model);
    expect(lines).toContain('Trainable params: 410');
    expect(lines).toContain('Non-trainable params: 8');
  });
});

describe('getWeights / setWeights', () => {
  test('shapes in Keras order: HWIO conv kernels, [in, out] dense kernels', () => {
    const model = mnistModel();
    expect(model.getWeights().map((w) => w.shape)).toEqual([[5, 5, 1, 32], [32], [5, 5, 32, 64], [64], [1024, 10], [10]]);
    expect(model.layers[1].getWeights().map((w) => w.shape)).toEqual([[5, 5, 1, 32], [32]]);
    expect(model.layers[2].getWeights()).toEqual([]);
  });

  test('initial weights: glorotUniform kernels within Keras\'s limit, zero biases, seeded', () => {
    ck.setSeed(7);
    const a = mnistModel();
    const w = weightsOf(a);
    // limit sqrt(6 / (fanIn + fanOut)) with fanIn = 5*5*1, fanOut = 5*5*32
    const limit = Math.sqrt(6 / (25 + 800));
    expect(Math.max(...w[0].map(Math.abs))).toBeLessThanOrEqual(limit);
    expect(Math.max(...w[0].map(Math.abs))).toBeGreaterThan(0.9 * limit);
    expect(w[1].every((v) => v === 0)).toBe(true);
    ck.setSeed(7);
    expect(bitwiseEqual(weightsOf(mnistModel()), w)).toBe(true);
    ck.setSeed(8);
    expect(bitwiseEqual(weightsOf(mnistModel()), w)).toBe(false);
  });

  test('setWeights round trip: copying weights copies the function', () => {
    ck.setSeed(1);
    const a = mnistModel();
    ck.setSeed(2);
    const b = mnistModel();
    const x = ck.tensor(randomArray(3 * 784, 11), [3, 28, 28, 1]);
    const pa = a.predict(x).dataSync().slice();
    expect(Array.from(b.predict(x).dataSync())).not.toEqual(Array.from(pa));
    b.setWeights(a.getWeights());
    expect(bitwiseEqual(weightsOf(b), weightsOf(a))).toBe(true);
    expect(Array.from(b.predict(x).dataSync())).toEqual(Array.from(pa));
    // getWeights returns copies: changing b does not change a
    const values = randomArray(10, 3, -1, 1);
    b.layers[6].setWeights([b.layers[6].getWeights()[0], ck.tensor(values, [10])]);
    expect(Array.from(b.layers[6].getWeights()[1].dataSync())).toEqual(Array.from(values));
    expect(a.layers[6].getWeights()[1].dataSync().every((v) => v === 0)).toBe(true);
  });

  test('setWeights rejects wrong counts and shapes, naming the layer', () => {
    const model = mnistModel();
    expect(() => model.setWeights(model.getWeights().slice(1))).toThrow(ck.ValueError);
    const conv = model.layers[1];
    expect(() => conv.setWeights([ck.zeros([5, 5, 32, 1]), ck.zeros([32])])).toThrow(ck.ShapeError);
    expect(() => conv.setWeights([ck.zeros([5, 5, 32, 1]), ck.zeros([32])])).toThrow(/conv2d.*\[5,5,1,32\].*\[5,5,32,1\]/);
  });

  test('model.add after building keeps the weights the model had', () => {
    const model = ck.sequential([ck.layers.input({ shape: [4] }), ck.layers.dense({ units: 3 })]);
    const before = weightsOf(model);
    model.add(ck.layers.dense({ units: 2 }));
    const after = weightsOf(model);
    expect(bitwiseEqual(after.slice(0, 2), before)).toBe(true);
    expect(model.outputShape).toEqual([null, 2]);
    expect(model.countParams()).toBe(4 * 3 + 3 + 3 * 2 + 2);
  });
});
