// Training steps against TensorFlow.js: the same model, initial weights and batches in both, so
// any difference in the loss or its gradients shows in the weights. Plain SGD (with and without
// momentum) isolates the gradients: tfjs's Adam adds epsilon to the bias-corrected sqrt(v), Keras
// (and convkit) to sqrt(v) itself, which moves weights with tiny gradients apart by design; the
// Keras Adam formula is checked in native/tests/test_optimizer.cpp.
import { beforeAll, describe, expect, test } from '@jest/globals';
import * as tf from '@tensorflow/tfjs';
import * as ck from '../lib';

function seedsModelCk(): ck.Sequential {
  return ck.sequential([
    ck.layers.input({ shape: [12, 12, 1] }),
    ck.layers.conv2d({ filters: 6, kernelSize: 5, activation: 'relu' }),
    ck.layers.maxPooling2d({ poolSize: 2 }),
    ck.layers.conv2d({ filters: 8, kernelSize: 3, activation: 'relu' }),
    ck.layers.flatten(),
    ck.layers.dense({ units: 10, activation: 'softmax' }),
  ]);
}

function seedsModelTf(): tf.Sequential {
  const m = tf.sequential();
  m.add(tf.layers.conv2d({ inputShape: [12, 12, 1], filters: 6, kernelSize: 5, activation: 'relu' }));
  m.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  m.add(tf.layers.conv2d({ filters: 8, kernelSize: 3, activation: 'relu' }));
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: 10, activation: 'softmax' }));
  return m;
}

function batch(seed: number, n: number): { x: Float32Array; y: Float32Array } {
  let s = seed;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
  const x = Float32Array.from({ length: n * 144 }, rand);
  const y = new Float32Array(n * 10);
  for (let i = 0; i < n; i++) y[i * 10 + Math.floor(rand() * 10)] = 1;
  return { x, y };
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe.each([
  ['sgd', () => ck.optimizers.sgd({ learningRate: 0.1 }), () => tf.train.sgd(0.1)],
  ['sgd with momentum', () => ck.optimizers.sgd({ learningRate: 0.05, momentum: 0.9 }), () => tf.train.momentum(0.05, 0.9)],
])('%s steps match TensorFlow.js', (_name, ckOpt, tfOpt) => {
  test('losses and weights after 5 steps agree', async () => {
    ck.setSeed(3);
    const a = seedsModelCk();
    a.compile({ optimizer: ckOpt(), loss: 'categoricalCrossentropy' });
    const b = seedsModelTf();
    b.compile({ optimizer: tfOpt(), loss: 'categoricalCrossentropy' });
    b.setWeights(a.getWeights().map((w) => tf.tensor(w.dataSync(), [...w.shape])));
    for (let step = 0; step < 5; step++) {
      const { x, y } = batch(step + 1, 16);
      const [ckLoss] = await a.trainOnBatch(ck.tensor(x, [16, 12, 12, 1]), ck.tensor(y, [16, 10]));
      const tfLoss = (await b.trainOnBatch(tf.tensor(x, [16, 12, 12, 1]), tf.tensor(y, [16, 10]))) as number;
      expect(Math.abs(ckLoss - tfLoss)).toBeLessThan(1e-4 * Math.max(1, Math.abs(tfLoss)));
    }
    const ours = a.getWeights().map((w) => w.dataSync());
    const theirs = b.getWeights().map((w) => w.dataSync() as Float32Array);
    expect(ours.length).toBe(theirs.length);
    ours.forEach((w, i) => {
      let worst = 0;
      for (let k = 0; k < w.length; k++) worst = Math.max(worst, Math.abs(w[k] - theirs[i][k]));
      expect(worst).toBeLessThan(2e-4);
    });
  });
});
