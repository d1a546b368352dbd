// The Keras losses and metrics on CUDA (a GPU, or the addon built on convkit's CUDA emulator,
// which scripts/cuda-emu.js runs this file with): the same model trained from the same weights on
// the CPU and on CUDA, with each new loss option and every native metric, gives the same logged
// values and weights (the CPU side is checked against float64 references in losses.keras.test.ts
// and metrics.keras.test.ts). Without CUDA, compile({ device: 'cuda' }) is a DeviceError and
// 'auto' trains with the metrics on the CPU.
import { describe, expect, test } from '@jest/globals';
import * as ck from '../lib';
import { randomArray } from '../test-support/helpers';

const cuda = ck.cudaStatus();
const onCuda = cuda.available ? describe : describe.skip;
const withoutCuda = cuda.available ? describe.skip : describe;

const IN = 6;
const K = 5;
const N = 50;
const x0 = randomArray(N * IN, 91, -1, 1);
const kernel0 = randomArray(IN * K, 92, -1, 1);
const bias0 = randomArray(K, 93, -0.2, 0.2);
const ids = Array.from({ length: N }, (_, r) => (r * 3 + (r % 4)) % K);
const oneHot = ids.flatMap((c) => Array.from({ length: K }, (_, j) => (j === c ? 1 : 0)));
const soft = Array.from(randomArray(N * K, 94, 0, 1));

function build(softmax: boolean, compile: Omit<ck.CompileArgs, 'device'>, device: 'cpu' | 'cuda' | 'auto'): ck.LayersModel {
  const dense = ck.layers.dense({ units: K, name: 'dense' });
  const layers: ck.Layer[] = [ck.layers.input({ shape: [IN] }), dense];
  if (softmax) layers.push(ck.layers.softmax());
  const m = ck.sequential(layers);
  dense.setWeights([ck.tensor(kernel0, [IN, K]), ck.tensor(bias0, [K])]);
  m.compile({ ...compile, device });
  return m;
}

const metrics = () => ['accuracy', 'top_k_categorical_accuracy', ck.metrics.topKCategoricalAccuracy({ k: 2, name: 'top2' }), 'precision', 'recall',
  'auc', ck.metrics.auc({ curve: 'PR', name: 'pr_auc' })];

const cases = [
  { label: 'categorical fromLogits, labelSmoothing 0.1, with the metrics', softmax: false, y: () => ck.tensor(oneHot, [N, K]),
    compile: { optimizer: ck.optimizers.sgd({ learningRate: 0.2 }), loss: ck.losses.categoricalCrossentropy({ fromLogits: true, labelSmoothing: 0.1 }), metrics: metrics() } },
  { label: 'sparse on a softmax, labelSmoothing 0.2, sparse top-k', softmax: true, y: () => ck.tensor(ids, [N]),
    compile: { optimizer: ck.optimizers.sgd({ learningRate: 0.2 }), loss: ck.losses.sparseCategoricalCrossentropy({ labelSmoothing: 0.2 }),
      metrics: ['sparse_top_k_categorical_accuracy', ck.metrics.sparseTopKCategoricalAccuracy({ k: 1, name: 'top1' })] } },
  { label: 'huber (delta 0.7), precision and AUC', softmax: false, y: () => ck.tensor(soft, [N, K]),
    compile: { optimizer: ck.optimizers.sgd({ learningRate: 0.2 }), loss: ck.losses.huber({ delta: 0.7 }), metrics: ['precision', 'auc'] } },
  { label: 'KL divergence on a softmax', softmax: true, y: () => ck.tensor(soft, [N, K]),
    compile: { optimizer: ck.optimizers.sgd({ learningRate: 0.2 }), loss: 'kld' } },
];

onCuda(`Keras losses and metrics on CUDA (against the CPU)${cuda.available ? '' : ` (skipped: ${cuda.reason})`}`, () => {
  test.each(cases)('$label', async (c) => {
    const cpu = build(c.softmax, c.compile, 'cpu');
    const gpu = build(c.softmax, c.compile, 'cuda');
    expect(gpu.device).toBe('cuda');
    const x = ck.tensor(x0, [N, IN]);
    // Batches of 16: a partial last batch; the second epoch replays captured step graphs.
    const hc = (await cpu.fit(x, c.y(), { epochs: 3, batchSize: 16, shuffle: false, verbose: 0, validationData: [x, c.y()] })).history;
    const hg = (await gpu.fit(x, c.y(), { epochs: 3, batchSize: 16, shuffle: false, verbose: 0, validationData: [x, c.y()] })).history;
    expect(Object.keys(hg).sort()).toEqual(Object.keys(hc).sort());
    for (const [name, values] of Object.entries(hc)) {
      values.forEach((v, e) => {
        if (!(Math.abs(hg[name][e] - v) <= 1e-4 + 1e-4 * Math.abs(v))) throw new Error(`${name} epoch ${e}: cuda ${hg[name][e]} vs cpu ${v}`);
      });
    }
    const [wc, wg] = [cpu, gpu].map((m) => m.getLayer('dense').getWeights()[0].to('cpu').dataSync());
    wc.forEach((v, i) => expect(Math.abs(wg[i] - v)).toBeLessThan(1e-4));
  });
});

withoutCuda(`Keras metrics without CUDA${cuda.available ? ' (skipped: CUDA is available here)' : ''}`, () => {
  test("device 'cuda' is a DeviceError; 'auto' trains on the CPU with the metrics", async () => {
    expect(() => build(false, { optimizer: 'sgd', loss: ck.losses.categoricalCrossentropy({ fromLogits: true }), metrics: metrics() }, 'cuda')).toThrow(ck.DeviceError);
    const m = build(false, { optimizer: 'sgd', loss: ck.losses.categoricalCrossentropy({ fromLogits: true }), metrics: metrics() }, 'auto');
    expect(m.device).toBe('cpu');
    const h = await m.fit(ck.tensor(x0, [N, IN]), ck.tensor(oneHot, [N, K]), { epochs: 1, verbose: 0 });
    expect(Object.keys(h.history)).toEqual(['loss', 'accuracy', 'top_k_categorical_accuracy', 'top2', 'precision', 'recall', 'auc', 'pr_auc']);
  });
});

// The step's parts that a one-output model without penalties never reaches: a model of two
// outputs (the loss is their sum), L1/L2 penalties on the weights (in the loss and the
// gradients), each of Keras's three clippings and sample weights, trained from the same weights
// on both devices.
const H = 4;
const hidden0 = randomArray(IN * H, 95, -1, 1);
const headA0 = randomArray(H * K, 96, -1, 1);
const headB0 = randomArray(H * K, 97, -1, 1);
const idsB = ids.map((c, r) => (c + 1 + (r % 2)) % K);
const oneHotB = idsB.flatMap((c) => Array.from({ length: K }, (_, j) => (j === c ? 1 : 0)));
const rowWeights = Array.from({ length: N }, (_, r) => 0.5 + (r % 3) * 0.25);

function twoHeaded(optimizer: ck.Optimizer, device: 'cpu' | 'cuda'): ck.LayersModel {
  const inp = ck.input({ shape: [IN] });
  const hidden = ck.layers.dense({ units: H, activation: 'tanh', name: 'hidden',
    kernelRegularizer: ck.regularizers.l1l2({ l1: 0.01, l2: 0.02 }), biasRegularizer: ck.regularizers.l2({ l2: 0.05 }) });
  const a = ck.layers.dense({ units: K, name: 'a', kernelRegularizer: ck.regularizers.l2({ l2: 0.03 }) });
  const b = ck.layers.dense({ units: K, name: 'b' });
  const z = hidden.apply(inp) as ck.SymbolicTensor;
  const m = ck.model({ inputs: inp, outputs: [a.apply(z) as ck.SymbolicTensor, b.apply(z) as ck.SymbolicTensor] });
  hidden.setWeights([ck.tensor(hidden0, [IN, H]), ck.tensor(bias0.slice(0, H), [H])]);
  a.setWeights([ck.tensor(headA0, [H, K]), ck.tensor(bias0, [K])]);
  b.setWeights([ck.tensor(headB0, [H, K]), ck.tensor(bias0.map((v) => -v), [K])]);
  m.compile({ optimizer, loss: ck.losses.categoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy', ck.metrics.topKCategoricalAccuracy({ k: 2, name: 'top2' })], device });
  return m;
}

const stepCases = [
  { label: 'SGD, clipnorm 0.05', optimizer: () => ck.optimizers.sgd({ learningRate: 0.3, clipnorm: 0.05 }), weighted: false },
  { label: 'Adam, clipvalue 0.01, sample weights', optimizer: () => ck.optimizers.adam({ learningRate: 0.05, clipvalue: 0.01 }), weighted: true },
  { label: 'SGD with momentum, globalClipnorm 0.1', optimizer: () => ck.optimizers.sgd({ learningRate: 0.3, momentum: 0.5, globalClipnorm: 0.1 }), weighted: false },
];

onCuda(`two outputs, weight penalties, clipping and sample weights on CUDA (against the CPU)${cuda.available ? '' : ` (skipped: ${cuda.reason})`}`, () => {
  test.each(stepCases)('$label', async (c) => {
    const [cpu, gpu] = (['cpu', 'cuda'] as const).map((d) => twoHeaded(c.optimizer(), d));
    const x = ck.tensor(x0, [N, IN]);
    const ys = () => [ck.tensor(oneHot, [N, K]), ck.tensor(oneHotB, [N, K])];
    const fit = (m: ck.LayersModel) => m.fit(x, ys(), { epochs: 3, batchSize: 16, shuffle: false, verbose: 0, validationData: [x, ys()],
      ...(c.weighted ? { sampleWeight: rowWeights } : {}) });
    const [hc, hg] = [(await fit(cpu)).history, (await fit(gpu)).history];
    expect(Object.keys(hg).sort()).toEqual(Object.keys(hc).sort());
    expect(Object.keys(hc)).toEqual(expect.arrayContaining(['loss', 'a_loss', 'b_loss', 'val_loss', 'a_accuracy', 'b_top2']));
    for (const [name, values] of Object.entries(hc)) {
      values.forEach((v, e) => {
        if (!(Math.abs(hg[name][e] - v) <= 1e-4 + 1e-4 * Math.abs(v))) throw new Error(`${name} epoch ${e}: cuda ${hg[name][e]} vs cpu ${v}`);
      });
    }
    for (const name of ['hidden', 'a', 'b']) {
      const [wc, wg] = [cpu, gpu].map((m) => m.getLayer(name).getWeights().map((w) => Array.from(w.to('cpu').dataSync())));
      wc.forEach((w, i) => w.forEach((v, j) => expect(Math.abs(wg[i][j] - v)).toBeLessThan(1e-4)));
    }
  });
});
