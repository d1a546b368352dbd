// Conv1D and the 1D pooling layers inside models, against TensorFlow.js (which has them all):
// output shapes, weight shapes, predictions and SGD training with shared weights, model files
// moving both ways; 'causal' padding (which tfjs lacks) against plain loops; typed errors for bad
// configurations.
import { beforeAll, describe, expect, test } from '@jest/globals';
import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as ck from '../lib';
import { maxAbsDiff, randomArray, tmpDir, weightsOf } from '../test-support/helpers';
import * as ref from '../test-support/reference';
import { readArtifacts, saveTfjs, tfjsReady } from '../test-support/tfjs-io';

beforeAll(tfjsReady);

const STEPS = 17, CHANNELS = 3, CLASSES = 4;
const INPUT = [STEPS, CHANNELS];

/** A small sequence classifier: the same layers (and names) in convkit or tfjs. */
function sequenceLayers(lib: typeof ck | typeof tf, head: 'avg' | 'max', training: boolean) {
  const l = lib.layers as typeof ck.layers;
  return [
    l.conv1d({ filters: 5, kernelSize: 3, dilationRate: training ? 1 : 2, activation: 'tanh', name: 'dilated' }),
    l.conv1d({ filters: 6, kernelSize: [4], strides: 2, padding: 'same', activation: 'relu', name: 'strided' }),
    l.maxPooling1d({ poolSize: 2, name: 'max' }),
    l.conv1d({ filters: 4, kernelSize: 2, padding: 'valid', useBias: false, name: 'valid' }),
    l.averagePooling1d({ poolSize: 2, strides: 1, padding: training ? 'valid' : 'same', name: 'avg' }),
    head === 'avg' ? l.globalAveragePooling1d({ name: 'pool' }) : l.globalMaxPooling1d({ name: 'pool' }),
    l.dense({ units: CLASSES, activation: 'softmax', name: 'head' }),
  ];
}

// Training compares models without what tfjs cannot train: it has no gradient for dilated
// convolutions, and its average-pooling gradient with 'same' padding divides by the whole window
// at the edges, where its forward pass divides by the values inside (convkit's gradient is
// checked against finite differences in test/ops.table.test.ts).
function models(head: 'avg' | 'max', training = false) {
  ck.setSeed(11);
  const model = ck.sequential([ck.layers.input({ shape: INPUT }), ...sequenceLayers(ck, head, training)]);
  const theirs = tf.sequential({ layers: [tf.layers.inputLayer({ inputShape: INPUT }), ...(sequenceLayers(tf, head, training) as unknown as tf.layers.Layer[])] });
  theirs.setWeights(model.getWeights().map((w) => tf.tensor(w.dataSync(), [...w.shape])));
  return { model, theirs };
}

describe.each(['avg', 'max'] as const)('1D layers in a model (global %s pooling), against TensorFlow.js', (head) => {
  test('output shapes, weight shapes and predictions match tfjs', () => {
    const { model, theirs } = models(head);
    theirs.layers.filter((layer) => layer.getClassName() !== 'InputLayer').forEach((layer) => {
      expect(model.getLayer(layer.name).outputShape).toEqual(layer.outputShape);
    });
    expect(model.getLayer('dilated').outputShape).toEqual([null, STEPS - 4, 5]);
    expect(model.getWeights().map((w) => w.shape)).toEqual(theirs.getWeights().map((w) => w.shape));
    expect(model.getLayer('strided').getWeights().map((w) => w.shape)).toEqual([[4, 5, 6], [6]]);
    expect(model.countParams()).toBe(theirs.countParams());
    const x = randomArray(6 * STEPS * CHANNELS, 3, -1, 1);
    const ours = (model.predict(ck.tensor(x, [6, ...INPUT])) as ck.Tensor).dataSync();
    const want = (theirs.predict(tf.tensor(x, [6, ...INPUT])) as tf.Tensor).dataSync();
    ref.expectClose(ours, want, { rtol: 1e-4, atol: 1e-6, name: 'predict' });
  });

  test('SGD training gives the weights tfjs gives (its gradients by autodiff)', async () => {
    const { model, theirs } = models(head, true);
    model.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.3 }), loss: 'categoricalCrossentropy' });
    theirs.compile({ optimizer: tf.train.sgd(0.3), loss: 'categoricalCrossentropy' });
    const n = 24;
    const x = randomArray(n * STEPS * CHANNELS, 5, -1, 1);
    const y = new Float32Array(n * CLASSES).map((_, i) => (i % CLASSES === Math.floor(i / CLASSES) % CLASSES ? 1 : 0));
    const before = weightsOf(model);
    await model.fit(ck.tensor(x, [n, ...INPUT]), ck.tensor(y, [n, CLASSES]), { epochs: 2, batchSize: 8, shuffle: false, verbose: 0 });
    await theirs.fit(tf.tensor(x, [n, ...INPUT]), tf.tensor(y, [n, CLASSES]), { epochs: 2, batchSize: 8, shuffle: false, verbose: 0 });
    const want = theirs.getWeights().map((w) => w.dataSync() as Float32Array);
    weightsOf(model).forEach((w, k) => {
      expect(maxAbsDiff(w, before[k])).toBeGreaterThan(1e-4);  // every weight trained
      expect(maxAbsDiff(w, want[k])).toBeLessThan(2e-5);
    });
  });
});

describe('1D layer files', () => {
  test('a convkit model file loads in tfjs, and a tfjs one in convkit, with the same predictions', async () => {
    const { model } = models('avg');
    const dir = tmpDir('conv1d-tfjs');
    try {
      await model.save(`file://${dir}/ours`);
      const json = fs.readFileSync(`${dir}/ours/model.json`, 'utf8');
      for (const name of ['Conv1D', 'MaxPooling1D', 'AveragePooling1D', 'GlobalAveragePooling1D']) expect(json).toContain(`"class_name":"${name}"`);
      const inTfjs = await tf.loadLayersModel({ load: async () => readArtifacts(`${dir}/ours`) });
      const x = randomArray(3 * STEPS * CHANNELS, 9, -1, 1);
      const ours = (model.predict(ck.tensor(x, [3, ...INPUT])) as ck.Tensor).dataSync();
      ref.expectClose((inTfjs.predict(tf.tensor(x, [3, ...INPUT])) as tf.Tensor).dataSync(), ours, { rtol: 1e-4, atol: 1e-6, name: 'tfjs load' });
      await saveTfjs(inTfjs, `${dir}/theirs`);
      const back = await ck.loadModel(`file://${dir}/theirs`);
      expect(back.getLayer('dilated').getConfig()).toMatchObject({ filters: 5, kernelSize: [3], padding: 'valid', dilationRate: [2] });
      expect(back.getLayer('avg').getConfig()).toMatchObject({ poolSize: [2], strides: [1], padding: 'same' });
      expect((back.predict(ck.tensor(x, [3, ...INPUT])) as ck.Tensor).dataSync()).toEqual(ours);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('keepdims and setWeights in Keras\'s shapes', () => {
    const conv = ck.layers.conv1d({ filters: 2, kernelSize: 3, useBias: false });
    const model = ck.sequential([ck.layers.input({ shape: [5, 2] }), conv, ck.layers.globalMaxPooling1d({ keepdims: true })]);
    expect(model.layers.at(-1)!.outputShape).toEqual([null, 1, 2]);
    // kernel[k, c, f] = 1 at tap 0 only: output t, filter f is x[t, f] of the valid window's first step.
    const kernel = new Float32Array(12);
    kernel[0 * 4 + 0 * 2 + 0] = 1;
    kernel[0 * 4 + 1 * 2 + 1] = 1;
    conv.setWeights([ck.tensor(kernel, [3, 2, 2])]);
    expect(Array.from(conv.getWeights()[0].dataSync())).toEqual(Array.from(kernel));
    const x = Float32Array.from({ length: 10 }, (_, i) => (i * 7) % 10);
    // outputs t = 0..2 take x[t]; the max over t of x[t, c] for c = 0, 1.
    const want = [0, 1].map((c) => Math.max(...[0, 1, 2].map((t) => x[t * 2 + c])));
    expect(Array.from((model.predict(ck.tensor(x, [1, 5, 2])) as ck.Tensor).dataSync())).toEqual(want);
  });

  test("'causal' padding: output t of a dilated kernel sees inputs t, t - d, t - 2d, ... (plain loops)", () => {
    const [K, D, C, F, L] = [3, 2, 2, 3, 9];
    const conv = ck.layers.conv1d({ filters: F, kernelSize: K, dilationRate: D, padding: 'causal' });
    const model = ck.sequential([ck.layers.input({ shape: [L, C] }), conv]);
    expect(conv.outputShape).toEqual([null, L, F]);
    const [kernel, bias] = conv.getWeights().map((w) => w.dataSync());
    const x = randomArray(2 * L * C, 4, -1, 1);
    const got = (model.predict(ck.tensor(x, [2, L, C])) as ck.Tensor).dataSync();
    for (let n = 0; n < 2; n++) {
      for (let t = 0; t < L; t++) {
        for (let f = 0; f < F; f++) {
          let sum = bias[f];
          for (let k = 0; k < K; k++) {
            const s = t - (K - 1 - k) * D;  // tap K-1 reads x[t]
            if (s < 0) continue;
            for (let c = 0; c < C; c++) sum += x[(n * L + s) * C + c] * kernel[(k * C + c) * F + f];
          }
          expect(Math.abs(got[(n * L + t) * F + f] - sum)).toBeLessThan(1e-5);
        }
      }
    }
  });

  const bad: Array<[string, () => unknown, RegExp]> = [
    ['padding full', () => ck.layers.conv1d({ filters: 1, kernelSize: 2, padding: 'full' as never }), /padding must be 'valid', 'same' or 'causal', got "full"/],
    ['a kernel size pair', () => ck.layers.conv1d({ filters: 1, kernelSize: [2, 2] as never }), /kernelSize must be an integer or \[integer\]/],
    ['strides and dilation together', () => ck.layers.conv1d({ filters: 1, kernelSize: 2, strides: 2, dilationRate: 2 }), /strides > 1 with dilationRate > 1 is not supported/],
    ['pool padding causal', () => ck.layers.maxPooling1d({ padding: 'causal' as never }), /padding must be 'valid' or 'same', got "causal"/],
  ];
  test.each(bad)('%s is a ValueError', (_label, call, message) => {
    expect(call).toThrow(ck.ValueError);
    expect(call).toThrow(message);
  });

  test('an image input is a ShapeError naming the layer and the expected rank', () => {
    const apply = () => ck.layers.conv1d({ filters: 1, kernelSize: 2, name: 'c1' }).apply(ck.input({ shape: [4, 4, 1] }));
    expect(apply).toThrow(ck.ShapeError);
    expect(apply).toThrow(/c1.*sequences \(None, steps, channels\)/);
  });
});
