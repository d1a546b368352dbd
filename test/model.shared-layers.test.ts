// Shared layers: one layer applied more than once in a functional graph (a Siamese tower, a
// layer applied to its own output) reads and trains one set of weights. Checked against
// TensorFlow.js building the same graph (layer order, counts, predictions, SGD steps, model
// files both ways) and against finite differences of a float64 plain-loop forward pass.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as path from 'path';
import * as ck from '../lib';
import { lcg, randomArray, summaryLines, tmpDir } from '../test-support/helpers';
import { readArtifacts, saveTfjs, tfjsReady } from '../test-support/tfjs-io';

let root: string;

beforeAll(async () => {
  root = tmpDir('shared-layers');
  await tfjsReady();
});

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

type Lib = typeof ck | typeof tf;
type ModelOf<L> = L extends typeof ck ? ck.Functional : tf.LayersModel;

// Two images through one tower (a shared conv2d, each branch its own batch norm, a shared
// pooling and a shared tanh embedding), the embeddings joined into a softmax.
function siamese<L extends Lib>(lib: L): ModelOf<L> {
  const l = lib.layers as typeof ck.layers & typeof tf.layers;
  const left = lib.input({ shape: [7, 7, 2], name: 'left' }) as never;
  const right = lib.input({ shape: [7, 7, 2], name: 'right' }) as never;
  const conv = l.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', name: 'tower_conv' });
  const gap = l.globalAveragePooling2d({ name: 'gap' });
  const embed = l.dense({ units: 5, activation: 'tanh', name: 'embed' });
  const tower = (x: never, bn: string) => embed.apply(gap.apply(l.batchNormalization({ name: bn }).apply(conv.apply(x))));
  const joined = l.concatenate({ name: 'joined' }).apply([tower(left, 'bn_left'), tower(right, 'bn_right')] as never);
  const out = l.dense({ units: 3, activation: 'softmax', name: 'probs' }).apply(joined);
  return (lib.model as (a: unknown) => unknown)({ inputs: [left, right], outputs: out, name: 'siamese' }) as ModelOf<L>;
}

// One dense layer applied to its own output (twice in a chain), then a linear head.
function chain<L extends Lib>(lib: L): ModelOf<L> {
  const l = lib.layers as typeof ck.layers & typeof tf.layers;
  const x = lib.input({ shape: [4], name: 'x' }) as never;
  const step = l.dense({ units: 4, activation: 'tanh', name: 'step' });
  const out = l.dense({ units: 2, name: 'head' }).apply(step.apply(step.apply(x)));
  return (lib.model as (a: unknown) => unknown)({ inputs: x, outputs: out, name: 'chain' }) as ModelOf<L>;
}

/** Random weights in convkit, copied into the tfjs model layer by layer (matched by name). */
function shareWeights(model: ck.LayersModel, reference: tf.LayersModel, seed: number): void {
  const next = lcg(seed);
  model.layers.forEach((layer) => {
    const current = layer.getWeights();
    if (!current.length) return;
    const values = current.map((w, k) => {
      const isVariance = k === 3 && layer.className === 'BatchNormalization';
      return ck.tensor(Float32Array.from({ length: w.size }, () => (isVariance ? 0.5 + next() : next() - 0.5)), [...w.shape]);
    });
    layer.setWeights(values);
    reference.getLayer(layer.name).setWeights(values.map((v) => tf.tensor(v.dataSync(), [...v.shape])));
  });
}

function maxRelDiff(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  expect(got.length).toBe(ref.length);
  let d = 0;
  for (let i = 0; i < got.length; i++) d = Math.max(d, Math.abs(got[i] - ref[i]) / Math.max(1, Math.abs(ref[i])));
  return d;
}

const pair = (n: number, seed: number) => [randomArray(n * 98, seed, -1, 1), randomArray(n * 98, seed + 1, -1, 1)];

describe('graphs with shared layers agree with TensorFlow.js', () => {
  test('layer order, one weight set per layer (counts, summary, getWeights), predictions', () => {
    for (const build of [siamese, chain]) {
      const mine = build(ck);
      const ref = build(tf);
      expect(mine.layers.map((layer) => layer.name)).toEqual(ref.layers.map((layer) => layer.name));
      expect(mine.countParams()).toBe(ref.countParams());
      expect(mine.getWeights().map((w) => w.shape)).toEqual(ref.layers.flatMap((l) => l.getWeights().map((w) => w.shape)));
    }
    const mine = siamese(ck);
    // tower_conv: 3*3*2*4 + 4 = 76, embed: 4*5 + 5 = 25, each once
    expect(mine.getLayer('tower_conv').countParams()).toBe(76);
    expect(mine.countParams()).toBe(76 + 2 * 16 + 25 + 10 * 3 + 3);
    const lines = summaryLines(mine).join('\n');
    expect(lines).toMatch(/tower_conv \(Conv2D\)\s+\(None, 5, 5, 4\)\s+76\s+\['left\[0\]\[0\]', 'right\[0\]\[0\]'\]/);
    expect(lines).toMatch(/embed \(Dense\)\s+\(None, 5\)\s+25\s+\['gap\[0\]\[0\]', 'gap\[1\]\[0\]'\]/);
    expect(lines).toMatch(/Total params: 166/);

    const ref = siamese(tf);
    shareWeights(mine, ref, 3);
    const [a, b] = pair(6, 4);
    const conv = mine.getLayer('tower_conv').getWeights().map((w) => Array.from(w.dataSync()));
    const got = mine.predict([ck.tensor(a, [6, 7, 7, 2]), ck.tensor(b, [6, 7, 7, 2])]);
    const want = ref.predict([tf.tensor(a, [6, 7, 7, 2]), tf.tensor(b, [6, 7, 7, 2])]) as tf.Tensor;
    // predict runs each branch's batch norm folded into its own copy of the shared conv's weights
    expect(maxRelDiff(got.dataSync(), want.dataSync())).toBeLessThan(1e-5);
    expect(mine.getLayer('tower_conv').getWeights().map((w) => Array.from(w.dataSync()))).toEqual(conv);
    const convOut = mine.layerOutput([ck.tensor(a, [6, 7, 7, 2]), ck.tensor(b, [6, 7, 7, 2])], mine.getLayer('tower_conv'));
    expect(convOut.shape).toEqual([6, 5, 5, 4]);

    const chainMine = chain(ck);
    const chainRef = chain(tf);
    shareWeights(chainMine, chainRef, 5);
    const x = randomArray(5 * 4, 6, -2, 2);
    expect(maxRelDiff(chainMine.predict(ck.tensor(x, [5, 4])).dataSync(), (chainRef.predict(tf.tensor(x, [5, 4])) as tf.Tensor).dataSync()))
      .toBeLessThan(1e-5);
  });

  test('SGD steps: the shared weights take the sum of their applications\' gradients, updated once', async () => {
    const n = 8;
    const [a, b] = pair(n, 7);
    const y = new Float32Array(n * 3);
    for (let i = 0; i < n; i++) y[i * 3 + (i % 3)] = 1;
    const mine = siamese(ck);
    const ref = siamese(tf);
    shareWeights(mine, ref, 8);
    mine.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.2 }), loss: 'categoricalCrossentropy' });
    ref.compile({ optimizer: tf.train.sgd(0.2), loss: 'categoricalCrossentropy' });
    const xs = [ck.tensor(a, [n, 7, 7, 2]), ck.tensor(b, [n, 7, 7, 2])];
    const h = await mine.fit(xs, ck.tensor(y, [n, 3]), { epochs: 3, batchSize: n, shuffle: false, verbose: 0 });
    const hr = await ref.fit([tf.tensor(a, [n, 7, 7, 2]), tf.tensor(b, [n, 7, 7, 2])], tf.tensor(y, [n, 3]),
      { epochs: 3, batchSize: n, shuffle: false, verbose: 0 });
    expect(maxRelDiff(h.history.loss, hr.history.loss as number[])).toBeLessThan(1e-4);
    mine.layers.forEach((layer) => {
      const r = ref.getLayer(layer.name).getWeights();
      layer.getWeights().forEach((t, k) => expect(maxRelDiff(t.dataSync(), r[k].dataSync())).toBeLessThan(2e-4));
    });
    // after training, predict (folded per branch) still agrees
    const want = (ref.predict([tf.tensor(a, [n, 7, 7, 2]), tf.tensor(b, [n, 7, 7, 2])]) as tf.Tensor).dataSync();
    expect(maxRelDiff(mine.predict(xs).dataSync(), want)).toBeLessThan(2e-4);
  });

  test('a frozen shared layer stays put in every application; the rest trains', async () => {
    ck.setSeed(9);
    const mine = siamese(ck);
    mine.getLayer('tower_conv').trainable = false;
    mine.compile({ optimizer: 'sgd', loss: 'categoricalCrossentropy' });
    const frozen = mine.getLayer('tower_conv').getWeights().map((w) => Array.from(w.dataSync()));
    const embed = Array.from(mine.getLayer('embed').getWeights()[0].dataSync());
    const [a, b] = pair(4, 10);
    await mine.fit([ck.tensor(a, [4, 7, 7, 2]), ck.tensor(b, [4, 7, 7, 2])], ck.toCategorical(ck.tensor([0, 1, 2, 0], [4]), 3),
      { epochs: 2, verbose: 0 });
    expect(mine.getLayer('tower_conv').getWeights().map((w) => Array.from(w.dataSync()))).toEqual(frozen);
    expect(Array.from(mine.getLayer('embed').getWeights()[0].dataSync())).not.toEqual(embed);
  });
});

// A random graph over 4-wide values: dense layers (tanh) applied to earlier values, each new
// or one applied before, and adds of two values; the output adds the last two values. The
// same recipe builds the graph in either library.
type Step = { op: 'dense'; layer: number; from: number } | { op: 'add'; from: number; other: number };
function recipe(seed: number): Step[] {
  const next = lcg(seed);
  const pick = (n: number) => Math.floor(next() * n);
  const steps: Step[] = [];
  let layers = 0;
  for (let s = 0; s < 9; s++) {
    const values = s + 1;
    if (s > 1 && next() < 0.25) {
      // two different values (tfjs's executor mishandles adding a shared layer's output to itself)
      const from = pick(values);
      steps.push({ op: 'add', from, other: (from + 1 + pick(values - 1)) % values });
    } else {
      steps.push({ op: 'dense', layer: layers > 0 && next() < 0.5 ? pick(layers) : layers++, from: pick(values) });
    }
  }
  return steps;
}

function randomGraph<L extends Lib>(lib: L, steps: Step[], tag: number): ModelOf<L> {
  const l = lib.layers as typeof ck.layers & typeof tf.layers;
  const values = [lib.input({ shape: [4], name: `in_${tag}` }) as never];
  const denses: { apply(x: never): unknown }[] = [];
  steps.forEach((step, s) => {
    if (step.op === 'add') {
      values.push(l.add({ name: `add_${tag}_${s}` }).apply([values[step.from], values[step.other]] as never) as never);
      return;
    }
    if (step.layer === denses.length) denses.push(l.dense({ units: 4, activation: 'tanh', name: `d_${tag}_${step.layer}` }) as never);
    values.push(denses[step.layer].apply(values[step.from]) as never);
  });
  const out = l.add({ name: `out_${tag}` }).apply([values[values.length - 1], values[values.length - 2]] as never);
  return (lib.model as (a: unknown) => unknown)({ inputs: values[0], outputs: out }) as ModelOf<L>;
}

test('random graphs of shared dense layers: Keras\'s layer order and the same predictions as TensorFlow.js', () => {
  let shared = 0;
  for (let g = 0; g < 25; g++) {
    const steps = recipe(100 + g);
    const mine = randomGraph(ck, steps, g);
    const ref = randomGraph(tf, steps, g);
    expect(mine.layers.map((layer) => layer.name)).toEqual(ref.layers.map((layer) => layer.name));
    expect(mine.countParams()).toBe(ref.countParams());
    shareWeights(mine, ref, g);
    const x = randomArray(3 * 4, 200 + g, -1, 1);
    expect(maxRelDiff(mine.predict(ck.tensor(x, [3, 4])).dataSync(), (ref.predict(tf.tensor(x, [3, 4])) as tf.Tensor).dataSync()))
      .toBeLessThan(1e-5);
    shared += mine.layers.filter((layer) => layer.inboundNodes.length > 1).length;
  }
  expect(shared).toBeGreaterThan(10);
});

// The chain model's mean squared error in float64 plain loops: step (tanh dense) twice, head.
function chainLoss(w: Float64Array[], x: Float32Array, y: Float32Array, n: number): number {
  const [k, bias, hk, hb] = w;
  let sum = 0;
  for (let r = 0; r < n; r++) {
    let v = Array.from(x.subarray(r * 4, r * 4 + 4), Number);
    for (let t = 0; t < 2; t++) {
      v = [0, 1, 2, 3].map((o) => Math.tanh(bias[o] + v.reduce((s, vi, i) => s + vi * k[i * 4 + o], 0)));
    }
    for (let o = 0; o < 2; o++) {
      const out = hb[o] + v.reduce((s, vi, i) => s + vi * hk[i * 2 + o], 0);
      sum += (out - y[r * 2 + o]) ** 2;
    }
  }
  return sum / (n * 2);
}

test('the shared kernel\'s gradient (from one SGD step) equals finite differences of a float64 plain loop', async () => {
  ck.setSeed(11);
  const n = 5;
  const x = randomArray(n * 4, 12, -1.5, 1.5);
  const y = randomArray(n * 2, 13, -1, 1);
  const model = chain(ck);
  const before = model.getWeights().map((t) => Float64Array.from(t.dataSync()));
  const lr = 0.5;
  model.compile({ optimizer: ck.optimizers.sgd({ learningRate: lr }), loss: 'meanSquaredError' });
  await model.trainOnBatch(ck.tensor(x, [n, 4]), ck.tensor(y, [n, 2]));
  const after = model.getWeights().map((t) => t.dataSync());
  const eps = 1e-6;
  for (const p of [0, 1]) {  // the shared step's kernel and bias
    for (let i = 0; i < before[p].length; i++) {
      const plus = before.map((w) => w.slice());
      const minus = before.map((w) => w.slice());
      plus[p][i] += eps;
      minus[p][i] -= eps;
      const numeric = (chainLoss(plus, x, y, n) - chainLoss(minus, x, y, n)) / (2 * eps);
      const taken = (before[p][i] - after[p][i]) / lr;
      expect(Math.abs(taken - numeric)).toBeLessThan(2e-5 + 1e-3 * Math.abs(numeric));
    }
  }
});

describe('model files with shared layers (Keras\'s inbound nodes)', () => {
  test('convkit -> convkit, convkit -> tfjs and tfjs -> convkit give the same predictions', async () => {
    const mine = siamese(ck);
    const ref = siamese(tf);
    shareWeights(mine, ref, 14);
    const [a, b] = pair(3, 15);
    const xs = [ck.tensor(a, [3, 7, 7, 2]), ck.tensor(b, [3, 7, 7, 2])];
    const want = mine.predict(xs).dataSync();
    const dir = path.join(root, 'mine');
    await mine.save(`file://${dir}`);
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
    const layers = json.modelTopology.config.layers as { name: string; inbound_nodes: unknown[][] }[];
    const byName = new Map(layers.map((l) => [l.name, l.inbound_nodes]));
    expect(byName.get('tower_conv')).toEqual([[['left', 0, 0, {}]], [['right', 0, 0, {}]]]);
    expect(byName.get('bn_right')).toEqual([[['tower_conv', 1, 0, {}]]]);
    expect(byName.get('embed')).toEqual([[['gap', 0, 0, {}]], [['gap', 1, 0, {}]]]);
    expect(byName.get('joined')).toEqual([[['embed', 0, 0, {}], ['embed', 1, 0, {}]]]);
    expect(json.weightsManifest[0].weights.filter((w: { name: string }) => w.name.startsWith('tower_conv'))).toHaveLength(2);

    const loaded = await ck.loadModel(`file://${dir}`);
    expect(loaded.countParams()).toBe(mine.countParams());
    expect(Array.from(loaded.predict(xs).dataSync())).toEqual(Array.from(want));
    const intoTf = await tf.loadLayersModel(tf.io.fromMemory(readArtifacts(dir)));
    const fromTf = (intoTf.predict([tf.tensor(a, [3, 7, 7, 2]), tf.tensor(b, [3, 7, 7, 2])]) as tf.Tensor).dataSync();
    expect(maxRelDiff(want, fromTf)).toBeLessThan(1e-5);

    const refDir = path.join(root, 'theirs');
    await saveTfjs(ref, refDir);
    const intoCk = await ck.loadModel(`file://${refDir}`);
    expect(intoCk.layers.map((l) => l.name)).toEqual(ref.layers.map((l) => l.name));
    expect(maxRelDiff(intoCk.predict(xs).dataSync(), fromTf)).toBeLessThan(1e-5);

    const chainRef = chain(tf);
    chainRef.setWeights(chainRef.getWeights().map((w, k) => tf.tensor(randomArray(w.size, 16 + k, -1, 1), w.shape)));
    const chainDir = path.join(root, 'chain');
    await saveTfjs(chainRef, chainDir);
    const chainCk = await ck.loadModel(`file://${chainDir}`);
    const x = randomArray(4 * 4, 20, -1, 1);
    expect(maxRelDiff(chainCk.predict(ck.tensor(x, [4, 4])).dataSync(), (chainRef.predict(tf.tensor(x, [4, 4])) as tf.Tensor).dataSync()))
      .toBeLessThan(1e-5);
  });

  test('a layer applied in another model too: a file numbers only this model\'s applications', async () => {
    ck.setSeed(21);
    const a = ck.input({ shape: [3] });
    const shared = ck.layers.dense({ units: 3, name: 'reused' });
    ck.model({ inputs: a, outputs: shared.apply(a) });
    const b = ck.input({ shape: [3], name: 'b_in' });
    const second = ck.model({ inputs: b, outputs: ck.layers.dense({ units: 2, name: 'head' }).apply(shared.apply(b)) });
    expect(shared.inboundNodes).toHaveLength(2);
    const dir = path.join(root, 'second');
    await second.save(`file://${dir}`);
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
    const layers = json.modelTopology.config.layers as { name: string; inbound_nodes: unknown[][] }[];
    expect(layers.map((l) => [l.name, l.inbound_nodes])).toEqual([['b_in', []], ['reused', [[['b_in', 0, 0, {}]]]], ['head', [[['reused', 0, 0, {}]]]]]);
    const x = ck.tensor(randomArray(4 * 3, 22), [4, 3]);
    const loaded = await ck.loadModel(`file://${dir}`);
    expect(Array.from(loaded.predict(x).dataSync())).toEqual(Array.from(second.predict(x).dataSync()));
  });

  test('a node reference past a layer\'s nodes is a FormatError naming it', async () => {
    const mine = chain(ck);
    const dir = path.join(root, 'bad');
    await mine.save(`file://${dir}`);
    const file = path.join(dir, 'model.json');
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    json.modelTopology.config.output_layers = [['step', 2, 0]];
    fs.writeFileSync(file, JSON.stringify(json));
    await expect(ck.loadModel(`file://${dir}`)).rejects.toThrow(/refers to node 2 of layer step, which has 2/);
  });
});

test('errors: an input that needs other weights, a shared layer\'s output and its ONNX export name the layer', async () => {
  const a = ck.input({ shape: [4] });
  const b = ck.input({ shape: [6] });
  const dense = ck.layers.dense({ units: 3, name: 'shared_dense' });
  const first = dense.apply(a);
  expect(() => dense.apply(b)).toThrow(ck.ShapeError);
  expect(() => dense.apply(b)).toThrow(/shared_dense\.apply: .*kernel \[4,3\].* needs kernel \[6,3\]/);
  const second = dense.apply(ck.input({ shape: [4] }));
  expect(dense.getOutputAt(0)).toBe(first);
  expect(dense.getOutputAt(1)).toBe(second);
  expect(() => dense.output).toThrow(/applied 2 times .*getOutputAt/);
  expect(() => dense.getOutputAt(2)).toThrow(ck.ValueError);
  const model = ck.model({ inputs: [a, second.sourceLayer.inboundNodes[1].inputs[0]], outputs: ck.layers.add().apply([first, second]) });
  await expect(model.save(`onnx://${path.join(root, 'shared.onnx')}`)).rejects.toThrow(/shared_dense is applied more than once .*ONNX export does not support shared layers/);
});

const cuda = ck.cudaStatus();
const onCuda = cuda.available ? describe : describe.skip;
onCuda(`on CUDA (against the CPU)${cuda.available ? '' : ` (skipped: ${cuda.reason})`}`, () => {
  test('SGD steps (captured and replayed as CUDA graphs) and predictions of a Siamese model match the CPU', async () => {
    const n = 6;
    const [a, b] = pair(n, 30);
    const y = ck.toCategorical(ck.tensor(Float32Array.from({ length: n }, (_, i) => i % 3), [n]), 3);
    const cpu = siamese(ck);
    const gpu = siamese(ck);
    gpu.setWeights(cpu.getWeights());
    const compile = { optimizer: ck.optimizers.sgd({ learningRate: 0.2 }), loss: 'categoricalCrossentropy' as const };
    cpu.compile({ ...compile, device: 'cpu' });
    gpu.compile({ ...compile, device: 'cuda' });
    const xs = [ck.tensor(a, [n, 7, 7, 2]), ck.tensor(b, [n, 7, 7, 2])];
    const hc = await cpu.fit(xs, y, { epochs: 3, batchSize: n, shuffle: false, verbose: 0 });
    const hg = await gpu.fit(xs, y, { epochs: 3, batchSize: n, shuffle: false, verbose: 0 });
    expect(maxRelDiff(hg.history.loss, hc.history.loss)).toBeLessThan(1e-5);
    const wc = cpu.getWeights().map((w) => w.dataSync());
    gpu.getWeights().forEach((w, k) => expect(maxRelDiff(w.dataSync(), wc[k])).toBeLessThan(1e-5));
    expect(maxRelDiff(gpu.predict(xs).dataSync(), cpu.predict(xs).dataSync())).toBeLessThan(1e-5);
  });
});
