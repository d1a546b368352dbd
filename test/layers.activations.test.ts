// The newer activations (gelu, gelu_new, swish, hardSwish, hardSigmoid, softplus, selu, mish) on
// Dense, Conv2D, DepthwiseConv2D and Activation layers: training steps against TensorFlow.js (the
// executor's gradients from each activation's input against tfjs's autodiff), a model that
// trains, and configs written with Keras's names and read in tfjs's and Keras's spellings.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as path from 'path';
import * as ck from '../lib';
import { bitwiseEqual, randomArray, tmpDir, weightsOf } from '../test-support/helpers';
import { saveTfjs, tfjsReady } from '../test-support/tfjs-io';

let root: string;

beforeAll(async () => {
  root = tmpDir('acts');
  await tfjsReady();
  await tf.setBackend('cpu');
});

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

// The activations tfjs has with convkit's definitions (its hardSigmoid is Keras 2's, and it has no hardSwish).
function sharedCk(): ck.Sequential {
  return ck.sequential([
    ck.layers.input({ shape: [6, 6, 2] }),
    ck.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'gelu' }),
    ck.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', activation: 'mish' }),
    ck.layers.flatten(),
    ck.layers.dense({ units: 8, activation: 'swish' }),
    ck.layers.activation({ activation: 'selu' }),
    ck.layers.dense({ units: 6, activation: 'softplus' }),
    ck.layers.activation({ activation: 'gelu_new' }),
    ck.layers.dense({ units: 3, activation: 'softmax' }),
  ]);
}

function sharedTf(): tf.Sequential {
  const m = tf.sequential();
  m.add(tf.layers.conv2d({ inputShape: [6, 6, 2], filters: 4, kernelSize: 3, activation: 'gelu' }));
  m.add(tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', activation: 'mish' }));
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: 8, activation: 'swish' }));
  m.add(tf.layers.activation({ activation: 'selu' }));
  m.add(tf.layers.dense({ units: 6, activation: 'softplus' }));
  m.add(tf.layers.activation({ activation: 'gelu_new' }));
  m.add(tf.layers.dense({ units: 3, activation: 'softmax' }));
  return m;
}

/** n examples whose class is the one of three interleaved pixel sets with the largest sum (learnable). */
function batch(seed: number, n: number): { x: Float32Array; y: Float32Array } {
  const x = randomArray(n * 72, seed, -2, 2);
  const y = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) {
    const sums = [0, 0, 0];
    for (let j = 0; j < 72; j++) sums[j % 3] += x[i * 72 + j];
    y[i * 3 + sums.indexOf(Math.max(...sums))] = 1;
  }
  return { x, y };
}

describe('against TensorFlow.js', () => {
  test('SGD steps through every shared activation give tfjs\'s losses and weights', async () => {
    ck.setSeed(5);
    const a = sharedCk();
    a.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.2 }), loss: 'categoricalCrossentropy' });
    const b = sharedTf();
    b.compile({ optimizer: tf.train.sgd(0.2), loss: 'categoricalCrossentropy' });
    b.setWeights(a.getWeights().map((w) => tf.tensor(w.dataSync(), [...w.shape])));
    for (let step = 0; step < 4; step++) {
      const { x, y } = batch(step + 1, 8);
      const [ckLoss] = await a.trainOnBatch(ck.tensor(x, [8, 6, 6, 2]), ck.tensor(y, [8, 3]));
      const tfLoss = (await b.trainOnBatch(tf.tensor(x, [8, 6, 6, 2]), tf.tensor(y, [8, 3]))) as number;
      expect(Math.abs(ckLoss - tfLoss)).toBeLessThan(1e-4 * Math.max(1, Math.abs(tfLoss)));
    }
    const tfWeights = b.getWeights().map((w) => w.dataSync() as Float32Array);
    const ckWeights = weightsOf(a);
    let worst = 0;
    ckWeights.forEach((w, i) => w.forEach((v, j) => { worst = Math.max(worst, Math.abs(v - tfWeights[i][j])); }));
    expect(worst).toBeLessThan(2e-5);
  });

  test('a model saved by tfjs loads with its activations and predicts as tfjs does', async () => {
    const b = sharedTf();
    const dir = path.join(root, 'from-tfjs');
    await saveTfjs(b, dir);
    const topology = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8')).modelTopology;
    expect(topology.config.layers.map((l: { config: { activation?: string } }) => l.config.activation).filter(Boolean))
      .toEqual(['gelu', 'mish', 'swish', 'selu', 'softplus', 'gelu_new', 'softmax']);
    const a = await ck.loadModel(`file://${dir}`);
    const x = randomArray(4 * 72, 9, -2, 2);
    const want = (b.predict(tf.tensor(x, [4, 6, 6, 2])) as tf.Tensor).dataSync();
    const got = a.predict(ck.tensor(x, [4, 6, 6, 2])).dataSync();
    got.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThan(1e-5));
  });
});

// Every newer activation, the hard ones included, on each layer that takes one.
function everyActivation(): ck.Sequential {
  return ck.sequential([
    ck.layers.input({ shape: [6, 6, 2] }),
    ck.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'hardSwish' }),
    ck.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', activation: 'hardSigmoid' }),
    ck.layers.activation({ activation: 'mish' }),
    ck.layers.flatten(),
    ck.layers.dense({ units: 12, activation: 'selu' }),
    ck.layers.dense({ units: 12, activation: 'gelu' }),
    ck.layers.activation({ activation: 'swish' }),
    ck.layers.dense({ units: 8, activation: 'softplus' }),
    ck.layers.activation({ activation: 'gelu_new' }),
    ck.layers.dense({ units: 3, activation: 'softmax' }),
  ]);
}

describe('in convkit models', () => {
  test('a model using every one of them trains: the loss falls', async () => {
    ck.setSeed(8);
    const model = everyActivation();
    model.compile({ optimizer: ck.optimizers.adam({ learningRate: 0.01 }), loss: 'categoricalCrossentropy' });
    const { x, y } = batch(3, 96);
    const { history } = await model.fit(ck.tensor(x, [96, 6, 6, 2]), ck.tensor(y, [96, 3]), { epochs: 15, batchSize: 16, verbose: 0, seed: 1 });
    const loss = history.loss as number[];
    expect(loss.every(Number.isFinite)).toBe(true);
    expect(loss[loss.length - 1]).toBeLessThan(0.8 * loss[0]);
  });

  test('save -> loadModel keeps them, written with Keras\'s names', async () => {
    ck.setSeed(9);
    const model = everyActivation();
    const dir = path.join(root, 'roundtrip');
    await model.save(`file://${dir}`);
    const layers = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8')).modelTopology.config.layers;
    expect(layers.map((l: { config: { activation?: string } }) => l.config.activation).filter(Boolean))
      .toEqual(['hard_silu', 'hard_sigmoid', 'mish', 'selu', 'gelu', 'swish', 'softplus', 'gelu_new', 'softmax']);
    const loaded = await ck.loadModel(`file://${dir}`);
    expect(loaded.layers.map((l) => (l as { activation?: string }).activation))
      .toEqual(model.layers.map((l) => (l as { activation?: string }).activation));
    expect(bitwiseEqual(weightsOf(loaded), weightsOf(model))).toBe(true);
    const x = ck.tensor(randomArray(3 * 72, 4, -2, 2), [3, 6, 6, 2]);
    expect(Array.from(loaded.predict(x).dataSync())).toEqual(Array.from(model.predict(x).dataSync()));
  });

  test('a Keras config reads Keras\'s spellings: silu, swish, hard_silu, hard_swish, hard_sigmoid, gelu', () => {
    const dense = (name: string, activation: string) => ({ class_name: 'Dense', config: { name, units: 2, activation, use_bias: true } });
    const topology = {
      class_name: 'Sequential',
      config: {
        name: 'keras',
        layers: [
          { class_name: 'InputLayer', config: { name: 'in', batch_input_shape: [null, 3] } },
          dense('a', 'silu'), dense('b', 'swish'), dense('c', 'hard_silu'), dense('d', 'hard_swish'),
          dense('e', 'hard_sigmoid'), dense('f', 'gelu'),
          { class_name: 'Activation', config: { name: 'g', activation: 'mish' } },
        ],
      },
    };
    const model = ck.modelFromJSON(topology);
    expect(model.layers.map((l) => (l as { activation?: string }).activation).slice(-7))
      .toEqual(['swish', 'swish', 'hardSwish', 'hardSwish', 'hardSigmoid', 'gelu', 'mish']);
  });

  test('an unknown activation is a ValueError naming the layer and the known names', () => {
    expect(() => ck.layers.dense({ units: 2, activation: 'gelu_approx' as never, name: 'd' })).toThrow(ck.ValueError);
    expect(() => ck.layers.dense({ units: 2, activation: 'gelu_approx' as never, name: 'd' }))
      .toThrow(/d: unknown activation "gelu_approx" \(known: .*gelu, gelu_new, swish, hardSwish, hardSigmoid, softplus, selu, mish/);
  });
});

const cuda = ck.cudaStatus();
const onCuda = cuda.available ? describe : describe.skip;
// scripts/cuda-emu.js runs this file on the CUDA emulator's addon too.
onCuda(`on CUDA (against the same model on the CPU)${cuda.available ? '' : ` (skipped: ${cuda.reason})`}`, () => {
  test('training through every one of them gives the CPU\'s losses and weights', async () => {
    ck.setSeed(10);
    const cpu = everyActivation();
    const gpu = everyActivation();
    const initial = cpu.getWeights();
    cpu.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.1 }), loss: 'categoricalCrossentropy', device: 'cpu' });
    gpu.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.1 }), loss: 'categoricalCrossentropy', device: 'cuda' });
    gpu.setWeights(initial);
    const { x, y } = batch(5, 48);
    const xs = ck.tensor(x, [48, 6, 6, 2]);
    const ys = ck.tensor(y, [48, 3]);
    const hc = (await cpu.fit(xs, ys, { epochs: 2, batchSize: 16, verbose: 0, seed: 2 })).history.loss as number[];
    const hg = (await gpu.fit(xs, ys, { epochs: 2, batchSize: 16, verbose: 0, seed: 2 })).history.loss as number[];
    // The devices differ by summation order, ~1e-8 in these losses; a kernel 1% off moves them ~1e-5.
    expect(gpu.device).toBe('cuda');
    hg.forEach((v, i) => expect(Math.abs(v - hc[i])).toBeLessThan(2e-6 * Math.max(1, Math.abs(hc[i]))));
    const wc = weightsOf(cpu);
    weightsOf(gpu).forEach((w, k) => w.forEach((v, j) => expect(Math.abs(v - wc[k][j])).toBeLessThan(1e-5 + 1e-4 * Math.abs(wc[k][j]))));
  });
});
