// Transfer learning: frozen layers (layer.trainable = false) keep their weights bit for bit while
// the others train as TensorFlow.js trains them; a frozen base under a new head trains exactly as
// that head alone on the base's features; a trained model's base reused under a new head; Adam's
// moments across freezing and unfreezing, and a lowered learning rate, checked against the Keras
// update rule; and on real MNIST, a base pretrained on digits 0-4 beats training from scratch on
// digits 5-9 from 100 labelled images.
import { beforeAll, describe, expect, test } from '@jest/globals';
import * as tf from '@tensorflow/tfjs';
import * as ck from '../lib';
import { bitwiseEqual, lcg, maxAbsDiff, randomArray, weightsOf } from '../test-support/helpers';
import { tfjsReady } from '../test-support/tfjs-io';

beforeAll(async () => {
  await tfjsReady();
});

/** n images h x w x 1 in `classes` learnable classes (a bright band whose row depends on the class), one-hot. */
function bands(n: number, classes: number, seed: number, h = 10, w = 10): { x: ck.Tensor; y: ck.Tensor; xs: Float32Array; ys: Float32Array } {
  const next = lcg(seed);
  const xs = new Float32Array(n * h * w);
  const ys = new Float32Array(n * classes);
  for (let i = 0; i < n; i++) {
    const c = i % classes;
    ys[i * classes + c] = 1;
    const band = Math.floor((c * h) / classes);
    for (let r = 0; r < h; r++) for (let q = 0; q < w; q++) xs[(i * h + r) * w + q] = (Math.abs(r - band) <= 1 ? 0.8 : 0.1) + 0.3 * next();
  }
  return { x: ck.tensor(xs, [n, h, w, 1]), y: ck.tensor(ys, [n, classes]), xs, ys };
}

/** The base the tests freeze and reuse: conv c1, conv c2, max-pool, flatten (54 features for 10x10). */
function baseLayers(lib: typeof ck | typeof tf = ck): ck.Layer[] {
  const l = lib.layers as typeof ck.layers;
  return [
    l.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', name: 'c1' }),
    l.conv2d({ filters: 6, kernelSize: 3, activation: 'relu', name: 'c2' }),
    l.maxPooling2d({ poolSize: 2, name: 'pool' }),
    l.flatten({ name: 'flat' }),
  ];
}

function cnn(classes: number): ck.Sequential {
  return ck.sequential([ck.layers.input({ shape: [10, 10, 1] }), ...baseLayers(), ck.layers.dense({ units: classes, activation: 'softmax', name: 'head' })]);
}

const layerWeights = (model: ck.LayersModel, name: string) => model.getLayer(name).getWeights().map((w) => w.dataSync().slice());

describe('layer.trainable = false on a compiled model', () => {
  test.each([[['c1']], [['c2']], [['c1', 'c2']], [['head']]])('frozen %j: bit-identical through fit; the rest train as in TensorFlow.js (SGD)', async (frozen) => {
    ck.setSeed(11);
    const model = cnn(3);
    model.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.1 }), loss: 'categoricalCrossentropy' });
    // tfjs reads `trainable` when it compiles; convkit applies it at once to the compiled model.
    const ref = tf.sequential({ layers: [tf.layers.inputLayer({ inputShape: [10, 10, 1] }), ...(baseLayers(tf) as unknown as tf.layers.Layer[]), tf.layers.dense({ units: 3, activation: 'softmax', name: 'head' })] });
    ref.setWeights(model.getWeights().map((w) => tf.tensor(w.dataSync(), [...w.shape])));
    for (const name of frozen) ref.getLayer(name).trainable = false;
    ref.compile({ optimizer: tf.train.sgd(0.1), loss: 'categoricalCrossentropy' });
    for (const name of frozen) model.getLayer(name).trainable = false;

    const before = Object.fromEntries(['c1', 'c2', 'head'].map((n) => [n, layerWeights(model, n)]));
    const data = bands(48, 3, 2);
    await model.fit(data.x, data.y, { epochs: 2, batchSize: 8, shuffle: false, verbose: 0 });
    await ref.fit(tf.tensor(data.xs, [48, 10, 10, 1]), tf.tensor(data.ys, [48, 3]), { epochs: 2, batchSize: 8, shuffle: false, verbose: 0 });

    for (const name of ['c1', 'c2', 'head']) {
      const after = layerWeights(model, name);
      if (frozen.includes(name)) expect(bitwiseEqual(after, before[name])).toBe(true);
      else expect(Math.max(...after.map((w, k) => maxAbsDiff(w, before[name][k])))).toBeGreaterThan(1e-3);
      const theirs = ref.getLayer(name).getWeights().map((w) => w.dataSync() as Float32Array);
      after.forEach((w, k) => expect(maxAbsDiff(w, theirs[k])).toBeLessThan(2e-4));
    }
  });

  test('a frozen base under a new head trains exactly as the head alone on the base\'s features (Adam)', async () => {
    ck.setSeed(12);
    const model = cnn(3);
    model.getLayer('c1').trainable = false;  // before compiling, and after:
    model.compile({ optimizer: ck.optimizers.adam({ learningRate: 0.01 }), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
    model.getLayer('c2').trainable = false;
    const data = bands(40, 3, 3);
    const features = model.layerOutput(data.x, model.getLayer('flat'));
    expect(features.shape).toEqual([40, 54]);

    const head = ck.sequential([ck.layers.input({ shape: [54] }), ck.layers.dense({ units: 3, activation: 'softmax' })]);
    head.compile({ optimizer: ck.optimizers.adam({ learningRate: 0.01 }), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
    head.layers[1].setWeights(model.getLayer('head').getWeights());
    const base = [layerWeights(model, 'c1'), layerWeights(model, 'c2')];

    const args = { epochs: 3, batchSize: 8, seed: 4, verbose: 0 as const };
    const h1 = await model.fit(data.x, data.y, args);
    const h2 = await head.fit(features, data.y, args);
    expect(bitwiseEqual(layerWeights(model, 'c1'), base[0])).toBe(true);
    expect(bitwiseEqual(layerWeights(model, 'c2'), base[1])).toBe(true);
    const ours = layerWeights(model, 'head');
    const alone = weightsOf(head);
    ours.forEach((w, k) => expect(maxAbsDiff(w, alone[k])).toBeLessThan(1e-6));
    h1.history.loss.forEach((l, e) => expect(Math.abs(l - h2.history.loss[e])).toBeLessThan(1e-5));
    expect(h1.history.loss[2]).toBeLessThan(h1.history.loss[0]);
  });

  test('summary counts frozen weights as non-trainable', () => {
    const model = cnn(3);
    model.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy' });
    for (const name of ['c1', 'c2']) model.getLayer(name).trainable = false;
    const lines: string[] = [];
    model.summary(undefined, undefined, (l) => lines.push(l));
    // c1 3*3*1*4+4 = 40, c2 3*3*4*6+6 = 222, head 54*3+3 = 165
    expect(lines).toContain('Trainable params: 165');
    expect(lines).toContain('Non-trainable params: 262');
  });
});

describe('reusing a trained model\'s layers as the base of a new model', () => {
  test('the base keeps the trained weights and features; a new head trains on a new task; the trained model is untouched', async () => {
    ck.setSeed(13);
    const trained = cnn(3);
    trained.compile({ optimizer: ck.optimizers.adam({ learningRate: 0.01 }), loss: 'categoricalCrossentropy' });
    const task1 = bands(60, 3, 5);
    await trained.fit(task1.x, task1.y, { epochs: 4, batchSize: 10, seed: 1, verbose: 0 });
    const trainedWeights = weightsOf(trained);

    // A model's weights live in its own executor: the new model gets fresh layers of the same
    // configuration (here from the same builder) and the trained weights copied into them.
    const input = ck.input({ shape: [10, 10, 1] });
    const base = baseLayers();
    const features = base.reduce((t, layer) => layer.apply(t), input);
    const output = ck.layers.dense({ units: 2, activation: 'softmax', name: 'new_head' }).apply(features);
    const reused = ck.model({ inputs: input, outputs: output });
    // trained.layers[0] is its input layer; the base is the layers before the head.
    trained.layers.slice(1, -1).forEach((layer, i) => {
      expect(base[i].name).toBe(layer.name);
      base[i].setWeights(layer.getWeights());
      base[i].trainable = false;
    });
    reused.compile({ optimizer: ck.optimizers.adam({ learningRate: 0.01 }), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });

    const task2 = bands(60, 2, 6);
    const ours = reused.layerOutput(task2.x, reused.getLayer('flat')).dataSync();
    const theirs = trained.layerOutput(task2.x, trained.getLayer('flat')).dataSync();
    expect(Buffer.from(ours.buffer).equals(Buffer.from(theirs.buffer))).toBe(true);

    const [loss0] = await reused.evaluate(task2.x, task2.y);
    await reused.fit(task2.x, task2.y, { epochs: 6, batchSize: 10, seed: 2, verbose: 0 });
    const [loss1, acc1] = await reused.evaluate(task2.x, task2.y);
    expect(loss1).toBeLessThan(0.5 * loss0);
    expect(acc1).toBeGreaterThan(0.9);
    for (const name of ['c1', 'c2']) expect(bitwiseEqual(layerWeights(reused, name), layerWeights(trained, name))).toBe(true);
    expect(bitwiseEqual(weightsOf(trained), trainedWeights)).toBe(true);
  });
});

describe('Adam across freezing and unfreezing, and a lower learning rate for fine-tuning', () => {
  const BETA1 = 0.9;
  const BETA2 = 0.999;
  const EPS = 1e-7;

  /** Keras's Adam step (as native/core/cpu/optimizer_ref.cpp): new weights and moments. */
  function adamStep(w: Float32Array, m: Float32Array, v: Float32Array, g: Float32Array, lr: number, step: number) {
    const alpha = (lr * Math.sqrt(1 - BETA2 ** step)) / (1 - BETA1 ** step);
    const w2 = new Float32Array(w.length);
    const m2 = new Float32Array(w.length);
    const v2 = new Float32Array(w.length);
    for (let i = 0; i < w.length; i++) {
      m2[i] = m[i] + (g[i] - m[i]) * (1 - BETA1);
      v2[i] = v[i] + (g[i] * g[i] - v[i]) * (1 - BETA2);
      w2[i] = w[i] - (alpha * m2[i]) / (Math.sqrt(v2[i]) + EPS);
    }
    return { w: w2, m: m2, v: v2 };
  }

  const flat = (arrays: Float32Array[]) => {
    const out = new Float32Array(arrays.reduce((n, a) => n + a.length, 0));
    let o = 0;
    for (const a of arrays) out.set(a, o), (o += a.length);
    return out;
  };
  const state = (model: ck.LayersModel) => model.net.getOptimizerState().map((h) => new ck.Tensor(h).dataSync().slice());

  test('frozen weights keep their moments; unfrozen, they continue from them with the global step and the new learning rate', async () => {
    ck.setSeed(14);
    const model = cnn(3);
    model.compile({ optimizer: ck.optimizers.adam({ learningRate: 0.01 }), loss: 'categoricalCrossentropy' });
    const batches = [0, 1, 2, 3, 4, 5].map((i) => bands(12, 3, 20 + i));
    for (const b of batches.slice(0, 3)) await model.trainOnBatch(b.x, b.y);
    // The optimizer's slots are flat over the trainable weights in getWeights() order:
    // c1 kernel, bias, c2 kernel, bias, head kernel, bias.
    const sizes = weightsOf(model).map((w) => w.length);
    const c1End = sizes[0] + sizes[1];
    const [m1, v1] = state(model);
    expect(m1.length).toBe(sizes.reduce((a, b) => a + b));
    const c1Before = layerWeights(model, 'c1');

    // Frozen for two steps: c1's weights and moments stay exactly as they were; the others move.
    model.getLayer('c1').trainable = false;
    for (const b of batches.slice(3, 5)) await model.trainOnBatch(b.x, b.y);
    const [m2, v2] = state(model);
    expect(bitwiseEqual(layerWeights(model, 'c1'), c1Before)).toBe(true);
    expect(bitwiseEqual([m2.subarray(0, c1End), v2.subarray(0, c1End)], [m1.subarray(0, c1End), v1.subarray(0, c1End)])).toBe(true);
    expect(maxAbsDiff(m2.subarray(c1End), m1.subarray(c1End))).toBeGreaterThan(1e-4);
    expect(await model.net.iterations()).toBe(5);

    // Unfrozen, at a tenth of the learning rate (fine-tuning): one step, against the Keras rule
    // with the moments as they stand and step 6. The step's gradient comes from a copy of the
    // model taking one plain SGD step (learning rate 1) from the same weights on the same batch.
    model.getLayer('c1').trainable = true;
    model.learningRate = 0.001;
    expect(model.learningRate).toBe(0.001);
    const w = flat(weightsOf(model));
    const probe = cnn(3);
    probe.compile({ optimizer: ck.optimizers.sgd({ learningRate: 1 }), loss: 'categoricalCrossentropy' });
    probe.setWeights(model.getWeights());
    const last = batches[5];
    await probe.trainOnBatch(last.x, last.y);
    const stepped = flat(weightsOf(probe));
    const g = w.map((x, i) => x - stepped[i]);
    await model.trainOnBatch(last.x, last.y);
    const got = flat(weightsOf(model));
    const [m3, v3] = state(model);

    const want = adamStep(w, m2, v2, g, 0.001, 6);
    expect(maxAbsDiff(got, want.w)).toBeLessThan(2e-6);
    expect(maxAbsDiff(m3, want.m)).toBeLessThan(1e-6);
    expect(maxAbsDiff(v3, want.v)).toBeLessThan(1e-7);
    // What other rules would have done is far off: moments reset on unfreezing, a step count
    // that skips the frozen steps, or the learning rate left at 0.01.
    const reset = adamStep(w, m2.map((x, i) => (i < c1End ? 0 : x)), v2.map((x, i) => (i < c1End ? 0 : x)), g, 0.001, 6);
    expect(maxAbsDiff(got.subarray(0, c1End), reset.w.subarray(0, c1End))).toBeGreaterThan(2e-5);
    const ownStep = adamStep(w, m2, v2, g, 0.001, 4);
    expect(maxAbsDiff(got.subarray(0, c1End), ownStep.w.subarray(0, c1End))).toBeGreaterThan(2e-5);
    const oldRate = adamStep(w, m2, v2, g, 0.01, 6);
    expect(maxAbsDiff(got, oldRate.w)).toBeGreaterThan(2e-4);
  });

  test('freezing and unfreezing between two fits changes nothing: bit-identical to one uninterrupted fit', async () => {
    const data = bands(36, 3, 30);
    const run = async (toggle: boolean) => {
      ck.setSeed(15);
      const model = cnn(3);
      model.compile({ optimizer: ck.optimizers.adam({ learningRate: 0.01 }), loss: 'categoricalCrossentropy' });
      await model.fit(data.x, data.y, { epochs: 2, batchSize: 6, seed: 3, verbose: 0 });
      if (toggle) {
        for (const name of ['c1', 'c2', 'head']) model.getLayer(name).trainable = false;
        for (const name of ['c1', 'c2', 'head']) model.getLayer(name).trainable = true;
      }
      await model.fit(data.x, data.y, { epochs: 4, initialEpoch: 2, batchSize: 6, seed: 3, verbose: 0 });
      return { weights: weightsOf(model), state: state(model) };
    };
    const a = await run(false);
    const b = await run(true);
    expect(bitwiseEqual(a.weights, b.weights)).toBe(true);
    expect(bitwiseEqual(a.state, b.state)).toBe(true);
  });

  test('learningRate = 0 stops every update; the lowered rate takes effect at the next step', async () => {
    ck.setSeed(16);
    const model = cnn(3);
    model.compile({ optimizer: ck.optimizers.adam({ learningRate: 0.01 }), loss: 'categoricalCrossentropy' });
    const data = bands(24, 3, 40);
    await model.fit(data.x, data.y, { epochs: 1, batchSize: 6, verbose: 0 });
    const w = weightsOf(model);
    model.learningRate = 0;
    await model.fit(data.x, data.y, { epochs: 2, batchSize: 6, verbose: 0 });
    expect(bitwiseEqual(weightsOf(model), w)).toBe(true);
    expect(() => { model.learningRate = -1; }).toThrow(ck.ValueError);
  });
});

describe('on real MNIST: a base pretrained on digits 0-4 beats training from scratch on digits 5-9', () => {
  // The CI-sized version of examples/transfer-mnist.js: the seeds' CNN pretrained on all 30,596
  // training images of digits 0-4 (2 epochs), then two draws of 100 labelled images of 5-9; each
  // model trains 60 epochs (about 200 steps of 32) with Adam 1e-3 from the same initial head and
  // is measured on all 4,861 test images of 5-9. (At this size transfer wins by 1.7-4.6 points
  // per draw across ISAs and thread counts; at 500 labelled images by about 0.7: see README.)
  const seedsBase = () => [
    ck.layers.conv2d({ filters: 32, kernelSize: 5, activation: 'relu' }),
    ck.layers.maxPooling2d({ poolSize: 2 }),
    ck.layers.conv2d({ filters: 64, kernelSize: 5, activation: 'relu' }),
    ck.layers.maxPooling2d({ poolSize: 2 }),
    ck.layers.flatten(),
  ];
  const seedsCnn = (base: ck.Layer[]) => {
    const model = ck.sequential([ck.layers.input({ shape: [28, 28, 1] }), ...base, ck.layers.dense({ units: 5, activation: 'softmax' })]);
    model.compile({ optimizer: ck.optimizers.adam({ learningRate: 1e-3 }), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
    return model;
  };
  const select = (images: Float32Array, labels: Float32Array, rows: number[], shift: number) => {
    const x = new Float32Array(rows.length * 784);
    const y = new Float32Array(rows.length);
    rows.forEach((r, i) => {
      x.set(images.subarray(r * 784, (r + 1) * 784), i * 784);
      y[i] = labels[r] - shift;
    });
    return { x: ck.tensor(x, [rows.length, 28, 28, 1]), y: ck.toCategorical(y, 5) };
  };
  const rowsWhere = (labels: Float32Array, keep: (d: number) => boolean) => [...labels.keys()].filter((i) => keep(labels[i]));
  const weightsOfLayers = (layers: ck.Layer[]) => layers.flatMap((l) => l.getWeights().map((w) => w.dataSync().slice()));

  test('a new head on the frozen base beats scratch by more than 1 point; fine-tuning it at a tenth of the rate keeps the lead', async () => {
    const { train, test: testSplit } = await ck.datasets.mnist();
    const images = train.images.dataSync();
    const labels = train.labels.dataSync();
    const low = select(images, labels, rowsWhere(labels, (d) => d <= 4), 0);
    const testLabels = testSplit.labels.dataSync();
    const highTest = select(testSplit.images.dataSync(), testLabels, rowsWhere(testLabels, (d) => d >= 5), 5);
    const accuracy = async (model: ck.LayersModel) => (await model.evaluate(highTest.x, highTest.y, { batchSize: 500 }))[1];

    ck.setSeed(1);
    const pretrained = seedsCnn(seedsBase());
    await pretrained.fit(low.x, low.y, { epochs: 2, batchSize: 100, seed: 1, verbose: 0 });
    const pretrainedBase = weightsOfLayers(pretrained.layers.slice(1, -1));

    const gaps: number[] = [];
    const report: string[] = [];
    for (const draw of [1, 2]) {
      const highRows = rowsWhere(labels, (d) => d >= 5);
      const next = lcg(draw);
      for (let i = highRows.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [highRows[i], highRows[j]] = [highRows[j], highRows[i]];
      }
      const labelled = select(images, labels, highRows.slice(0, 100).sort((a, b) => a - b), 5);
      const args = { epochs: 60, batchSize: 32, seed: draw, verbose: 0 as const };

      ck.setSeed(10 + draw);
      const scratch = seedsCnn(seedsBase());
      await scratch.fit(labelled.x, labelled.y, args);
      const scratchAcc = await accuracy(scratch);

      ck.setSeed(10 + draw);  // the same initial head as scratch's
      const base = seedsBase();
      const transfer = seedsCnn(base);
      base.forEach((layer, i) => {
        layer.setWeights(pretrained.layers[i + 1].getWeights());
        layer.trainable = false;
      });
      await transfer.fit(labelled.x, labelled.y, args);
      const transferAcc = await accuracy(transfer);
      expect(bitwiseEqual(weightsOfLayers(base), pretrainedBase)).toBe(true);
      expect(transferAcc).toBeGreaterThan(scratchAcc);
      gaps.push(transferAcc - scratchAcc);
      report.push(`draw ${draw}: scratch ${(100 * scratchAcc).toFixed(2)}%, transfer ${(100 * transferAcc).toFixed(2)}%`);

      if (draw === 1) {
        // Fine-tune: every layer trainable, at a tenth of the rate, 10 more epochs.
        for (const layer of base) layer.trainable = true;
        transfer.learningRate = 1e-4;
        const h = await transfer.fit(labelled.x, labelled.y, { ...args, epochs: 70, initialEpoch: 60 });
        const fineAcc = await accuracy(transfer);
        expect(maxAbsDiff(weightsOfLayers(base)[0], pretrainedBase[0])).toBeGreaterThan(1e-5);
        expect(h.history.loss.at(-1)!).toBeLessThanOrEqual(h.history.loss[0] * 1.05);
        expect(fineAcc - scratchAcc).toBeGreaterThan(0.01);
        report.push(`fine-tuned ${(100 * fineAcc).toFixed(2)}%`);
      }
    }
    process.stdout.write(`MNIST 5-9 from 100 labelled images, ${highTest.y.shape[0]} test images: ${report.join('; ')}\n`);
    expect((gaps[0] + gaps[1]) / 2).toBeGreaterThan(0.01);
  });
});
