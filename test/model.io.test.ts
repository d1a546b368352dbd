// save('file://dir') / ck.loadModel in the TensorFlow.js layers format (model.json +
// weights.bin): convkit round trips, resuming training from saved optimizer state, and
// TensorFlow.js itself (@tensorflow/tfjs, pure-JS CPU backend) as the independent reference in
// both directions.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as path from 'path';
import * as ck from '../lib';
import { bitwiseEqual, lcg, maxAbsDiff, mnistModel, randomArray, summaryLines, tinyData, tinyModel, tmpDir, weightsOf } from '../test-support/helpers';
import { readArtifacts, saveTfjs, tfjsReady } from '../test-support/tfjs-io';

let root: string;

beforeAll(async () => {
  root = tmpDir('io');
  await tfjsReady();
});

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

/** Every weight replaced by deterministic random values (variances positive), so no layer is an identity. */
function randomizeConvkit(model: ck.LayersModel, seed: number): void {
  const next = lcg(seed);
  model.layers.forEach((layer, li) => {
    const current = layer.getWeights();
    if (!current.length) return;
    const names = layer.weightSpecs(model.built!.layerShapes[li].input).map((s) => s.name);
    layer.setWeights(current.map((w, k) => {
      const values = Float32Array.from({ length: w.size }, () => (names[k] === 'moving_variance' ? 0.5 + next() : next() - 0.5));
      return ck.tensor(values, [...w.shape]);
    }));
  });
}

function randomizeTfjs(model: tf.Sequential, seed: number): void {
  const next = lcg(seed);
  for (const layer of model.layers) {
    const ws = layer.weights;
    if (!ws.length) continue;
    layer.setWeights(ws.map((w) => tf.tensor(
      Float32Array.from({ length: w.shape.reduce((a, b) => a! * b!, 1)! }, () => (w.name.includes('moving_variance') ? 0.5 + next() : next() - 0.5)),
      w.shape as number[])));
  }
}

/** Largest difference relative to max(1, |reference|). */
function maxRelDiff(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  expect(got.length).toBe(ref.length);
  let d = 0;
  for (let i = 0; i < got.length; i++) d = Math.max(d, Math.abs(got[i] - ref[i]) / Math.max(1, Math.abs(ref[i])));
  return d;
}

// ---- the two architectures, in convkit and in tfjs ----

/** Uses batchNormalization, 'same' average and max pooling, dropout, global average pooling, tanh, a linear head. */
function variantConvkit(): ck.Sequential {
  return ck.sequential([
    ck.layers.input({ shape: [16, 16, 3] }),
    ck.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu' }),
    ck.layers.batchNormalization(),
    ck.layers.averagePooling2d({ poolSize: 3, strides: 2, padding: 'same' }),
    ck.layers.conv2d({ filters: 16, kernelSize: 3, activation: 'relu' }),
    ck.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }),
    ck.layers.dropout({ rate: 0.3 }),
    ck.layers.globalAveragePooling2d(),
    ck.layers.dense({ units: 12, activation: 'tanh' }),
    ck.layers.dense({ units: 10 }),
  ]);
}

function variantTfjs(): tf.Sequential {
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [16, 16, 3], filters: 8, kernelSize: 3, padding: 'same', activation: 'relu' }),
      tf.layers.batchNormalization(),
      tf.layers.averagePooling2d({ poolSize: 3, strides: 2, padding: 'same' }),
      tf.layers.conv2d({ filters: 16, kernelSize: 3, activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }),
      tf.layers.dropout({ rate: 0.3 }),
      tf.layers.globalAveragePooling2d({}),
      tf.layers.dense({ units: 12, activation: 'tanh' }),
      tf.layers.dense({ units: 10 }),
    ],
  });
}

function mnistTfjs(): tf.Sequential {
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 32, kernelSize: 5, activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 64, kernelSize: 5, activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 10, activation: 'softmax' }),
    ],
  });
}

const architectures = [
  { name: "the seeds' MNIST model", convkit: () => mnistModel(), tfjs: mnistTfjs, input: [28, 28, 1] },
  { name: 'the batchNorm/avgPool/globalAvgPool/dropout variant', convkit: variantConvkit, tfjs: variantTfjs, input: [16, 16, 3] },
];

// ---- convkit <-> convkit ----

describe('save -> loadModel', () => {
  test('identical weights, predictions (exact), summary and training config', async () => {
    ck.setSeed(21);
    const model = variantConvkit();
    randomizeConvkit(model, 1);
    model.compile({ optimizer: ck.optimizers.rmsprop({ learningRate: 0.002 }), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
    const dir = path.join(root, 'roundtrip');
    const result = await model.save(`file://${dir}`);
    expect(fs.readdirSync(dir).sort()).toEqual(['model.json', 'weights.bin']);
    expect(result.modelArtifactsInfo.weightDataBytes).toBe(fs.statSync(path.join(dir, 'weights.bin')).size);
    expect(result.modelArtifactsInfo.weightDataBytes).toBe(model.countParams() * 4);

    const loaded = await ck.loadModel(`file://${dir}`);
    expect(loaded.name).toBe(model.name);
    expect(loaded.layers.map((l) => l.name)).toEqual(model.layers.map((l) => l.name));
    expect(summaryLines(loaded)).toEqual(summaryLines(model));
    expect(bitwiseEqual(weightsOf(loaded), weightsOf(model))).toBe(true);
    const x = ck.tensor(randomArray(5 * 16 * 16 * 3, 2), [5, 16, 16, 3]);
    expect(Array.from(loaded.predict(x).dataSync())).toEqual(Array.from(model.predict(x).dataSync()));
    // the training config comes back compiled
    expect(loaded.learningRate).toBeCloseTo(0.002, 10);
    expect(loaded.compiled!.optimizer.kind).toBe('rmsprop');
    expect(loaded.compiled!.loss.name).toBe('categoricalCrossentropy');
    expect(loaded.compiled!.accuracyName).toBe('accuracy');
  });

  test('an uncompiled model round trips; saving over a model replaces it; metadata is kept', async () => {
    ck.setSeed(22);
    const dir = path.join(root, 'nested', 'deeper', 'model');
    const first = mnistModel();
    await first.save(`file://${dir}`);
    const second = mnistModel();
    await second.save(`file://${dir}`, { metadata: { classNames: ['a', 'b'] } });
    const loaded = await ck.loadModel(`file://${dir}`);
    expect(bitwiseEqual(weightsOf(loaded), weightsOf(second))).toBe(true);
    expect(bitwiseEqual(weightsOf(loaded), weightsOf(first))).toBe(false);
    expect(loaded.compiled).toBeUndefined();
    expect(loaded.userDefinedMetadata).toEqual({ classNames: ['a', 'b'] });
    // no temporary files are left behind
    expect(fs.readdirSync(dir).sort()).toEqual(['model.json', 'weights.bin']);
  });

  test('includeOptimizer: save -> load -> continue training equals uninterrupted training', async () => {
    const { x, labels } = tinyData(120, 3);
    const y = ck.toCategorical(labels, 3);
    const fresh = () => {
      ck.setSeed(23);
      const model = tinyModel();
      model.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
      return model;
    };
    // uninterrupted: 2 + 2 epochs in one model
    const reference = fresh();
    await reference.fit(x, y, { epochs: 2, batchSize: 20, verbose: 0, seed: 1 });
    await reference.fit(x, y, { epochs: 2, batchSize: 20, verbose: 0, seed: 2 });

    // interrupted: 2 epochs, save with the Adam moments, load, 2 more epochs
    const first = fresh();
    await first.fit(x, y, { epochs: 2, batchSize: 20, verbose: 0, seed: 1 });
    const dir = path.join(root, 'resume');
    await first.save(`file://${dir}`, { includeOptimizer: true });
    const resumed = await ck.loadModel(`file://${dir}`);
    expect(resumed.compiled!.optimizer.kind).toBe('adam');
    await resumed.fit(x, y, { epochs: 2, batchSize: 20, verbose: 0, seed: 2 });
    const want = weightsOf(reference);
    const got = weightsOf(resumed);
    expect(Math.max(...got.map((w, i) => maxAbsDiff(w, want[i])))).toBeLessThanOrEqual(1e-6);

    // without the optimizer state, Adam restarts and training goes elsewhere: the state matters
    const dir2 = path.join(root, 'resume-no-optimizer');
    await first.save(`file://${dir2}`);
    const restarted = await ck.loadModel(`file://${dir2}`);
    await restarted.fit(x, y, { epochs: 2, batchSize: 20, verbose: 0, seed: 2 });
    const other = weightsOf(restarted);
    expect(Math.max(...other.map((w, i) => maxAbsDiff(w, want[i])))).toBeGreaterThan(1e-4);
  });
});

// ---- TensorFlow.js as the reference ----

describe('TensorFlow.js loads what convkit saves: same predictions within 1e-5', () => {
  for (const [i, arch] of architectures.entries()) {
    test(arch.name, async () => {
      ck.setSeed(30 + i);
      const model = arch.convkit();
      randomizeConvkit(model, 40 + i);
      const dir = path.join(root, `to-tfjs-${i}`);
      await model.save(`file://${dir}`);
      const tfModel = await tf.loadLayersModel({ load: async () => readArtifacts(dir) });
      expect(tfModel.countParams()).toBe(model.countParams());
      // the weights tfjs holds are the ones convkit wrote
      let compared = 0;
      for (const tfLayer of tfModel.layers) {
        const theirs = tfLayer.getWeights();
        if (!theirs.length) continue;
        const ours = model.getLayer(tfLayer.name).getWeights();
        expect(theirs.map((t) => t.shape)).toEqual(ours.map((t) => [...t.shape]));
        theirs.forEach((t, k) => expect(Array.from(t.dataSync())).toEqual(Array.from(ours[k].dataSync())));
        compared += theirs.length;
      }
      expect(compared).toBe(model.getWeights().length);

      const n = 4;
      const values = randomArray(n * arch.input.reduce((a, b) => a * b, 1), 50 + i);
      const got = model.predict(ck.tensor(values, [n, ...arch.input])).dataSync();
      const ref = (tfModel.predict(tf.tensor(values, [n, ...arch.input])) as tf.Tensor).dataSync();
      expect(got.length).toBe(n * 10);
      expect(maxRelDiff(got, ref)).toBeLessThan(1e-5);
      // not a trivial agreement: the outputs vary from image to image
      expect(maxAbsDiff(got.subarray(0, 10), got.subarray(10, 20))).toBeGreaterThan(1e-3);
    });
  }
});

describe('convkit loads what TensorFlow.js saves: same predictions within 1e-5', () => {
  for (const [i, arch] of architectures.entries()) {
    test(arch.name, async () => {
      const tfModel = arch.tfjs();
      randomizeTfjs(tfModel, 60 + i);
      const dir = path.join(root, `from-tfjs-${i}`);
      await saveTfjs(tfModel, dir);
      const model = await ck.loadModel(`file://${dir}`);
      expect(model.countParams()).toBe(tfModel.countParams());
      expect(model.outputShape).toEqual([null, 10]);

      const n = 4;
      const values = randomArray(n * arch.input.reduce((a, b) => a * b, 1), 70 + i);
      const ref = (tfModel.predict(tf.tensor(values, [n, ...arch.input])) as tf.Tensor).dataSync();
      const got = model.predict(ck.tensor(values, [n, ...arch.input])).dataSync();
      expect(maxRelDiff(got, ref)).toBeLessThan(1e-5);
      expect(maxAbsDiff(got.subarray(0, 10), got.subarray(10, 20))).toBeGreaterThan(1e-3);
      // and back: convkit saves it again, tfjs still agrees
      const again = path.join(root, `from-tfjs-${i}-again`);
      await model.save(`file://${again}`);
      const tfAgain = await tf.loadLayersModel({ load: async () => readArtifacts(again) });
      const ref2 = (tfAgain.predict(tf.tensor(values, [n, ...arch.input])) as tf.Tensor).dataSync();
      expect(maxAbsDiff(ref2, ref)).toBe(0);
    });
  }
});
