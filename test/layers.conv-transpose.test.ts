// The Conv2DTranspose and Cropping2D layers inside models: predictions and SGD training against
// TensorFlow.js (which has both layers, without outputPadding or dilation), the executor's
// gradients with outputPadding and dilation against finite differences of the loss, Keras's
// output shapes, model files moving both ways between convkit and tfjs, typed errors for bad
// configurations, and (with CUDA or its emulator) training on CUDA as on the CPU.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as ck from '../lib';
import type { Conv2DTransposeArgs } from '../lib/layers';
import { maxAbsDiff, randomArray, tmpDir, weightsOf } from '../test-support/helpers';
import * as ref from '../test-support/reference';
import { readArtifacts, saveTfjs, tfjsReady } from '../test-support/tfjs-io';

beforeAll(tfjsReady);

/** A small decoder: the same layers (and names) in convkit or tfjs. */
function decoderLayers(lib: typeof ck | typeof tf) {
  const l = lib.layers as typeof ck.layers;
  return [
    l.conv2d({ filters: 3, kernelSize: 3, padding: 'same', name: 'enc' }),
    l.conv2dTranspose({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', name: 'up1' }),
    l.cropping2D({ cropping: [[1, 0], [0, 2]], name: 'crop' }),
    l.conv2dTranspose({ filters: 2, kernelSize: [2, 3], strides: [2, 1], padding: 'valid', activation: 'tanh', name: 'up2' }),
    l.cropping2D({ cropping: 1, name: 'crop2' }),
    l.flatten({ name: 'flat' }),
    l.dense({ units: 3, activation: 'softmax', name: 'head' }),
  ];
}
const INPUT = [5, 4, 2];

function models() {
  ck.setSeed(7);
  const model = ck.sequential([ck.layers.input({ shape: INPUT }), ...decoderLayers(ck)]);
  const theirs = tf.sequential({ layers: [tf.layers.inputLayer({ inputShape: INPUT }), ...(decoderLayers(tf) as unknown as tf.layers.Layer[])] });
  theirs.setWeights(model.getWeights().map((w) => tf.tensor(w.dataSync(), [...w.shape])));
  return { model, theirs };
}

describe('Conv2DTranspose and Cropping2D in a model, against TensorFlow.js', () => {
  test('output shapes, weight shapes and predictions match tfjs', () => {
    const { model, theirs } = models();
    expect(model.getLayer('up1').outputShape).toEqual([null, 10, 8, 4]);
    expect(model.getLayer('crop').outputShape).toEqual([null, 9, 6, 4]);
    expect(model.getLayer('up2').outputShape).toEqual([null, 18, 8, 2]);
    expect(model.getLayer('crop2').outputShape).toEqual([null, 16, 6, 2]);
    theirs.layers.filter((layer) => layer.getClassName() !== 'InputLayer').forEach((layer) => expect(model.getLayer(layer.name).outputShape).toEqual(layer.outputShape));
    expect(model.getLayer('up1').getWeights().map((w) => w.shape)).toEqual([[3, 3, 4, 3], [4]]);
    const x = randomArray(6 * 40, 3, -1, 1);
    const ours = model.predict(ck.tensor(x, [6, ...INPUT])) as ck.Tensor;
    const want = (theirs.predict(tf.tensor(x, [6, ...INPUT])) as tf.Tensor).dataSync();
    ref.expectClose(ours.dataSync(), want, { rtol: 1e-4, atol: 1e-6, name: 'predict' });
  });

  test('SGD training gives the weights tfjs gives (its gradients by autodiff)', async () => {
    const { model, theirs } = models();
    model.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.2 }), loss: 'categoricalCrossentropy' });
    theirs.compile({ optimizer: tf.train.sgd(0.2), loss: 'categoricalCrossentropy' });
    const n = 24;
    const x = randomArray(n * 40, 5, -1, 1);
    const y = new Float32Array(n * 3).map((_, i) => (i % 3 === Math.floor(i / 3) % 3 ? 1 : 0));
    const before = weightsOf(model);
    await model.fit(ck.tensor(x, [n, ...INPUT]), ck.tensor(y, [n, 3]), { epochs: 2, batchSize: 8, shuffle: false, verbose: 0 });
    await theirs.fit(tf.tensor(x, [n, ...INPUT]), tf.tensor(y, [n, 3]), { epochs: 2, batchSize: 8, shuffle: false, verbose: 0 });
    const after = weightsOf(model);
    const want = theirs.getWeights().map((w) => w.dataSync() as Float32Array);
    after.forEach((w, k) => {
      expect(maxAbsDiff(w, before[k])).toBeGreaterThan(1e-3);  // every weight trained
      expect(maxAbsDiff(w, want[k])).toBeLessThan(2e-5);
    });
    const [loss] = await model.evaluate(ck.tensor(x, [n, ...INPUT]), ck.tensor(y, [n, 3]), { batchSize: 8, verbose: 0 });
    const theirLoss = (theirs.evaluate(tf.tensor(x, [n, ...INPUT]), tf.tensor(y, [n, 3]), { batchSize: 8 }) as tf.Scalar).dataSync()[0];
    expect(Math.abs(loss - theirLoss)).toBeLessThan(1e-5);
  });

  test('a convkit model file loads in tfjs, and a tfjs one in convkit, with the same predictions', async () => {
    const { model } = models();
    const dir = tmpDir('convt-tfjs');
    try {
      await model.save(`file://${dir}/ours`);
      const json = fs.readFileSync(`${dir}/ours/model.json`, 'utf8');
      expect(json).toContain('"class_name":"Conv2DTranspose"');
      expect(json).toContain('"class_name":"Cropping2D"');
      const inTfjs = await tf.loadLayersModel({ load: async () => readArtifacts(`${dir}/ours`) });
      const x = randomArray(3 * 40, 9, -1, 1);
      const ours = (model.predict(ck.tensor(x, [3, ...INPUT])) as ck.Tensor).dataSync();
      ref.expectClose((inTfjs.predict(tf.tensor(x, [3, ...INPUT])) as tf.Tensor).dataSync(), ours, { rtol: 1e-4, atol: 1e-6, name: 'tfjs load' });
      await saveTfjs(inTfjs, `${dir}/theirs`);
      const back = await ck.loadModel(`file://${dir}/theirs`);
      expect(back.getLayer('up2').getConfig()).toMatchObject({ filters: 2, kernelSize: [2, 3], strides: [2, 1], padding: 'valid' });
      expect((back.predict(ck.tensor(x, [3, ...INPUT])) as ck.Tensor).dataSync()).toEqual(ours);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Conv2DTranspose with outputPadding and dilation (which tfjs lacks)', () => {
  test("output shapes are Keras's", () => {
    const shape = (args: Conv2DTransposeArgs, input: number[]) => {
      const layer = ck.layers.conv2dTranspose(args);
      ck.sequential([ck.layers.input({ shape: input }), layer]);
      return layer.outputShape;
    };
    expect(shape({ filters: 2, kernelSize: 3, strides: 2, padding: 'same', outputPadding: 0 }, [4, 5, 1])).toEqual([null, 7, 9, 2]);
    expect(shape({ filters: 2, kernelSize: 3, strides: 2, padding: 'same', outputPadding: 1 }, [4, 5, 1])).toEqual([null, 8, 10, 2]);
    expect(shape({ filters: 2, kernelSize: 3, strides: 2, padding: 'valid', outputPadding: [1, 0] }, [4, 5, 1])).toEqual([null, 10, 11, 2]);
    expect(shape({ filters: 2, kernelSize: 1, strides: 3, padding: 'valid' }, [4, 5, 1])).toEqual([null, 12, 15, 2]);
    expect(shape({ filters: 2, kernelSize: 3, dilationRate: 2, padding: 'valid' }, [4, 5, 1])).toEqual([null, 8, 9, 2]);
    expect(shape({ filters: 2, kernelSize: 3, dilationRate: 2, padding: 'same', outputPadding: 0 }, [4, 5, 1])).toEqual([null, 4, 5, 2]);
  });

  test('the trained gradients are the finite differences of the loss', async () => {
    const input = [3, 4, 2];
    const build = () => {
      ck.setSeed(3);
      const m = ck.sequential([
        ck.layers.input({ shape: input }),
        ck.layers.conv2dTranspose({ filters: 3, kernelSize: [3, 2], strides: [2, 3], padding: 'same', outputPadding: [1, 2], name: 't1' }),
        ck.layers.cropping2D({ cropping: [[0, 1], [2, 1]] }),
        ck.layers.conv2dTranspose({ filters: 2, kernelSize: 2, dilationRate: [2, 1], padding: 'valid', name: 'out' }),
      ]);
      m.compile({ optimizer: ck.optimizers.sgd({ learningRate: 1 }), loss: 'meanSquaredError' });
      return m;
    };
    const model = build();
    expect(model.getLayer('out').outputShape).toEqual([null, 7, 9, 2]);
    const n = 2;
    const x = ck.tensor(randomArray(n * 24, 21, -1, 1), [n, ...input]);
    const y = ck.tensor(randomArray(n * 126, 22, -1, 1), [n, 7, 9, 2]);
    const w0 = weightsOf(model);
    await model.fit(x, y, { epochs: 1, batchSize: n, shuffle: false, verbose: 0 });
    const grads = weightsOf(model).map((w, k) => w.map((v, i) => w0[k][i] - v));  // lr 1: w1 = w0 - g
    const probe = build();
    const shapes = model.getWeights().map((w) => [...w.shape]);
    const target = y.dataSync();
    // Keras's mean squared error, in float64 from the predictions.
    const lossAt = (weights: Float32Array[]) => {
      probe.setWeights(weights.map((w, k) => ck.tensor(w, shapes[k])));
      const p = (probe.predict(x) as ck.Tensor).dataSync();
      let s = 0;
      for (let i = 0; i < p.length; i++) s += (p[i] - target[i]) ** 2;
      return s / p.length;
    };
    w0.forEach((w, k) => {
      const picks = [0, 1, Math.floor(w.length / 2), w.length - 1];
      const fd = ref.finiteDiff((ws) => lossAt(ws), w0, k, { indices: picks, eps: 1e-2 });
      ref.expectClose(ref.gather(grads[k], picks), fd.grad, { rtol: 2e-2, atol: 2e-4, name: `weight ${k}` });
    });
  });
});

describe('bad configurations are typed errors naming the layer', () => {
  const build = (layer: () => ck.Layer, input = [4, 4, 3]) => () => ck.sequential([ck.layers.input({ shape: input }), layer()]).build();
  test('Conv2DTranspose', () => {
    expect(() => ck.layers.conv2dTranspose({ filters: 2, kernelSize: 3, strides: 2, outputPadding: 2, name: 'ct' }))
      .toThrow(new ck.ValueError('ct: outputPadding must be >= 0 and smaller than the strides [2,2], got 2'));
    expect(() => ck.layers.conv2dTranspose({ filters: 2, kernelSize: 3, outputPadding: [0, -1], name: 'ct' })).toThrow(ck.ValueError);
    expect(() => ck.layers.conv2dTranspose({ filters: 0, kernelSize: 3 })).toThrow(ck.ValueError);
    expect(() => ck.layers.conv2dTranspose({ filters: 2, kernelSize: 3, output_padding: 1 } as never)).toThrow(/unknown option 'output_padding' \(did you mean 'outputPadding'\?\)/);
    expect(build(() => ck.layers.conv2dTranspose({ filters: 2, kernelSize: 2, strides: 2, padding: 'same', outputPadding: 0, name: 'ct' })))
      .toThrow(/ct: a 6x6 output of the 2x2 kernel .* does not convolve back to the input \(None, 4, 4, 3\)/);
    expect(build(() => ck.layers.conv2dTranspose({ filters: 2, kernelSize: 3, name: 'ct' }), [4, 3])).toThrow(ck.ShapeError);
  });

  test('Cropping2D', () => {
    expect(() => ck.layers.cropping2D({ cropping: -1 as never, name: 'cr' })).toThrow(ck.ValueError);
    expect(() => ck.layers.cropping2D({ cropping: [[1, 2, 3]] as never, name: 'cr' })).toThrow(/cr: cropping must be/);
    expect(build(() => ck.layers.cropping2D({ cropping: [[2, 2], [0, 0]], name: 'cr' })))
      .toThrow(new ck.ShapeError('cr: cropping [[2,2],[0,0]] leaves nothing of the input (None, 4, 4, 3)'));
  });
});

const cuda = ck.cudaStatus();
const onCuda = cuda.available ? describe : describe.skip;
onCuda(`on CUDA${cuda.available ? '' : ` (skipped: ${cuda.reason})`}`, () => {
  afterAll(() => ck.setSeed(1));
  test('training, evaluation and prediction match the CPU', async () => {
    const { model: cpu } = models();
    const { model: gpu } = models();
    cpu.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.1 }), loss: 'categoricalCrossentropy', device: 'cpu' });
    gpu.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.1 }), loss: 'categoricalCrossentropy', device: 'cuda' });
    const n = 16;
    const x = ck.tensor(randomArray(n * 40, 5, -1, 1), [n, ...INPUT]);
    const y = ck.tensor(new Float32Array(n * 3).map((_, i) => (i % 3 === 0 ? 1 : 0)), [n, 3]);
    const hc = await cpu.fit(x, y, { epochs: 2, batchSize: 8, shuffle: false, verbose: 0 });
    const hg = await gpu.fit(x, y, { epochs: 2, batchSize: 8, shuffle: false, verbose: 0 });
    ref.expectClose(hg.history.loss as number[], hc.history.loss as number[], { rtol: 1e-4, atol: 1e-6, name: 'loss' });
    weightsOf(cpu).forEach((w, k) => ref.expectClose(weightsOf(gpu)[k], w, { rtol: 1e-4, atol: 1e-5, name: `weight ${k}` }));
    ref.expectClose((gpu.predict(x) as ck.Tensor).dataSync(), (cpu.predict(x) as ck.Tensor).dataSync(), { rtol: 1e-4, atol: 1e-6, name: 'predict' });
    ref.expectClose(await gpu.evaluate(x, y, { verbose: 0 }), await cpu.evaluate(x, y, { verbose: 0 }), { rtol: 1e-4, atol: 1e-6, name: 'evaluate' });
  });
});
