// Bad input gives typed errors (ShapeError, ValueError, DTypeError, FormatError) that name the
// model or layer and the shapes involved; hostile model files are refused, never a crash.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as fs from 'fs';
import * as path from 'path';
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
    expect(() => mnistModel().compile({ optimizer: 'adagrad', loss: 'mse' })).toThrow(ck.ValueError);
    expect(() => mnistModel().compile({ optimizer: 'adagrad', loss: 'mse' })).toThrow(/unknown optimizer 'adagrad'/);
    expect(() => mnistModel().compile({ optimizer: 'adam', loss: 'mse', metrics: ['f1'] })).toThrow(/unknown metric "f1"/);
    const e = (() => { try { ck.layers.conv2d({ filters: 3, kernelSize: 3, activation: 'swish' as never, name: 'my_conv' }); } catch (err) { return err as Error; } return null; })();
    expect(e).toBeInstanceOf(ck.ValueError);
    expect(e!.message).toMatch(/^my_conv: unknown activation "swish"/);
    expect(() => ck.layers.dense({ units: 3, activation: 'gelu' as never })).toThrow(ck.ValueError);
  });

  test('layer options: ValueError naming the layer', () => {
    expect(() => ck.layers.conv2d({ filters: 0, kernelSize: 3, name: 'c0' })).toThrow(/^c0: filters must be a positive integer/);
    expect(() => ck.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'full' as never, name: 'c1' })).toThrow(/^c1: padding/);
    expect(() => ck.layers.dropout({ rate: 1.5, name: 'd0' })).toThrow(/^d0: rate/);
  });

  test('options that are not an object: a typed error from every layer factory (the fuzzer found dense(null) throwing a TypeError)', () => {
    for (const [name, factory] of Object.entries(ck.layers)) {
      for (const bad of [null, 5, 'x', []]) {
        let thrown: unknown = null;
        try {
          (factory as (a: unknown) => unknown)(bad);
        } catch (e) {
          thrown = e;
        }
        // input() needs a shape, the others reject the options themselves
        if (thrown !== null) expect({ name, bad, typed: thrown instanceof ck.ConvkitError }).toEqual({ name, bad, typed: true });
      }
    }
    expect(() => ck.layers.dense(null as never)).toThrow(ck.ValueError);
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
