// Inference folds batch norms into the convolution or dense layer before them (and a ReLU after
// them into its epilogue). Predictions and evaluation of such models must match a float64 chain of
// the unfolded layers, stay right after every way weights change (setWeights, fit, a batch norm's
// statistics alone), and never leak into getWeights or saved files.
import { describe, expect, test } from '@jest/globals';
import * as path from 'path';
import * as ck from '../lib';
import { randomArray, tmpDir, weightsOf } from '../test-support/helpers';
import * as ref from '../test-support/reference';
import * as refLayers from '../test-support/reference-layers';

const l = ck.layers;
const H = 6;
const W = 5;

/**
 * conv (no bias) -> BN -> ReLU (folds with the epilogue); grouped conv (bias) -> BN -> ReLU6
 * (folds with a ReLU6 epilogue); depthwise -> BN, read by an add beside its input (folds alone);
 * conv with a fused ReLU -> BN (must not fold); global pool -> dense -> BN -> softmax.
 */
function build(): ck.LayersModel {
  const input = ck.input({ shape: [H, W, 3] });
  const c1 = l.conv2d({ filters: 4, kernelSize: 3, padding: 'same', useBias: false, name: 'c1' }).apply(input);
  const r1 = l.reLU({ name: 'r1' }).apply(l.batchNormalization({ name: 'bn1' }).apply(c1));
  const c2 = l.conv2d({ filters: 4, kernelSize: 3, padding: 'same', groups: 2, name: 'c2' }).apply(r1);
  const r2 = l.reLU({ maxValue: 6, name: 'r2' }).apply(l.batchNormalization({ name: 'bn2' }).apply(c2));
  const d3 = l.depthwiseConv2d({ kernelSize: 3, padding: 'same', name: 'd3' }).apply(r2);
  const sum = l.add({ name: 'sum' }).apply([l.batchNormalization({ name: 'bn3' }).apply(d3), r2] as never);
  const c4 = l.conv2d({ filters: 6, kernelSize: 1, activation: 'relu', name: 'c4' }).apply(sum);
  const bn4 = l.batchNormalization({ name: 'bn4' }).apply(c4);
  const pooled = l.globalAveragePooling2d({ name: 'gap' }).apply(bn4);
  const dense = l.dense({ units: 5, name: 'fc' }).apply(pooled);
  const out = l.activation({ activation: 'softmax', name: 'probs' }).apply(l.batchNormalization({ name: 'bn5' }).apply(dense));
  return ck.model({ inputs: input, outputs: out });
}

/** Each weight's "layer/name" (Keras's order: kernel, bias; gamma, beta, moving_mean, moving_variance). */
function weightNames(model: ck.LayersModel): string[] {
  return model.layers.flatMap((layer) => {
    const n = layer.getWeights().length;
    const names = layer.name.startsWith('bn') ? ['gamma', 'beta', 'moving_mean', 'moving_variance']
      : [/^d\d/.test(layer.name) ? 'depthwise_kernel' : 'kernel', 'bias'];
    return names.slice(0, n).map((w) => `${layer.name}/${w}`);
  });
}

/** Random weights everywhere, moving variances in [0.5, 2], moving means and betas of either sign. */
function randomize(model: ck.LayersModel, seed: number): void {
  let s = seed;
  const names = weightNames(model);
  model.setWeights(model.getWeights().map((w, i) => {
    const n = w.size;
    if (/moving_variance/.test(names[i])) return ck.tensor(randomArray(n, s++, 0.5, 2), [...w.shape]);
    if (/gamma/.test(names[i])) return ck.tensor(randomArray(n, s++, 0.5, 1.5), [...w.shape]);
    return ck.tensor(randomArray(n, s++, -0.5, 0.5), [...w.shape]);
  }));
}

/** The model's function in float64-accumulated plain loops, layer by layer, unfolded. */
function reference(model: ck.LayersModel, x: Float32Array, N: number): Float32Array {
  const values = model.getWeights();
  const w = new Map(weightNames(model).map((name, i) => [name, values[i].dataSync()]));
  const get = (layer: string, name: string) => {
    const v = w.get(`${layer}/${name}`);
    if (!v) throw new Error(`no weight ${layer}/${name}`);
    return v;
  };
  const bn = (v: ArrayLike<number>, layer: string, C: number) => ref.batchNormInfer(v, v.length / C, C,
    get(layer, 'moving_mean'), get(layer, 'moving_variance'), { gamma: get(layer, 'gamma'), beta: get(layer, 'beta') });
  const relu = (v: ArrayLike<number>, max = Infinity) => Float32Array.from(v, (a) => Math.min(Math.max(a, 0), max));
  const spec = (C: number, K: number, k: number): ref.ConvSpec => ({ xShape: [N, H, W, C], wShape: [k, k, C, K], padding: 'same' });
  const r1 = relu(bn(ref.conv2d(x, get('c1', 'kernel'), spec(3, 4, 3)), 'bn1', 4));
  const c2 = refLayers.groupedConv2d(r1, get('c2', 'kernel'), { xShape: [N, H, W, 4], wShape: [3, 3, 2, 4], groups: 2, padding: 'same' }, get('c2', 'bias'));
  const r2 = relu(bn(c2, 'bn2', 4), 6);
  const d3 = refLayers.depthwiseConv2d(r2, get('d3', 'depthwise_kernel'), { xShape: [N, H, W, 4], wShape: [3, 3, 4, 1], padding: 'same' }, get('d3', 'bias'));
  const sum = Float32Array.from(bn(d3, 'bn3', 4), (v, i) => v + r2[i]);
  const c4 = ref.conv2d(sum, get('c4', 'kernel'), spec(4, 6, 1), get('c4', 'bias'), true);
  const pooled = ref.globalAvgPool(bn(c4, 'bn4', 6), N, H * W, 6);
  const dense = ref.dense(pooled, get('fc', 'kernel'), N, 6, 5, get('fc', 'bias'));
  return ref.softmax(bn(dense, 'bn5', 5), N, 5);
}

const tol = { rtol: 1e-4, atol: 2e-6 };

/**
 * Zero paddings read by convolutions: MobileNet's ((0,1),(0,1)) before a stride-2 'valid'
 * depthwise (folds, with its BN and ReLU6), 2 on every side before a 'valid' 3x3 (folds: the
 * windows still reach the image), 3 before a 3x3 (must not fold: a window would see only zeros)
 * and 1 before a 'same' conv (padding on padding: folds).
 */
function buildPadded(): ck.LayersModel {
  const input = ck.input({ shape: [H, W, 3] });
  const p1 = l.zeroPadding2d({ padding: [[0, 1], [0, 1]], name: 'p1' }).apply(input);
  const d1 = l.depthwiseConv2d({ kernelSize: 3, strides: 2, useBias: false, name: 'd1' }).apply(p1);
  const r1 = l.reLU({ maxValue: 6, name: 'r1' }).apply(l.batchNormalization({ name: 'bn1' }).apply(d1));
  const p2 = l.zeroPadding2d({ padding: 2, name: 'p2' }).apply(r1);
  const c2 = l.conv2d({ filters: 4, kernelSize: 3, name: 'c2' }).apply(p2);
  const p3 = l.zeroPadding2d({ padding: 3, name: 'p3' }).apply(c2);
  const c3 = l.conv2d({ filters: 2, kernelSize: 3, name: 'c3' }).apply(p3);
  const p4 = l.zeroPadding2d({ padding: 1, name: 'p4' }).apply(c3);
  const c4 = l.conv2d({ filters: 3, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c4' }).apply(p4);
  return ck.model({ inputs: input, outputs: c4 });
}

function referencePadded(model: ck.LayersModel, x: Float32Array, N: number): Float32Array {
  const values = model.getWeights();
  const w = new Map(weightNames(model).map((name, i) => [name, values[i].dataSync()]));
  const get = (name: string) => w.get(name)!;
  const pad = (v: ArrayLike<number>, shape: [number, number, number, number], p: [number, number, number, number]) => refLayers.zeroPadding2d(v, shape, p);
  const x1 = pad(x, [N, H, W, 3], [0, 1, 0, 1]);
  const d1 = refLayers.depthwiseConv2d(x1, get('d1/depthwise_kernel'), { xShape: [N, H + 1, W + 1, 3], wShape: [3, 3, 3, 1], strides: 2 });
  const [H1, W1] = [Math.floor((H + 1 - 3) / 2) + 1, Math.floor((W + 1 - 3) / 2) + 1];
  const r1 = Float32Array.from(ref.batchNormInfer(d1, d1.length / 3, 3, get('bn1/moving_mean'), get('bn1/moving_variance'),
    { gamma: get('bn1/gamma'), beta: get('bn1/beta') }), (a) => Math.min(Math.max(a, 0), 6));
  const c2 = ref.conv2d(pad(r1, [N, H1, W1, 3], [2, 2, 2, 2]), get('c2/kernel'), { xShape: [N, H1 + 4, W1 + 4, 3], wShape: [3, 3, 3, 4] }, get('c2/bias'));
  const [H2, W2] = [H1 + 2, W1 + 2];
  const c3 = ref.conv2d(pad(c2, [N, H2, W2, 4], [3, 3, 3, 3]), get('c3/kernel'), { xShape: [N, H2 + 6, W2 + 6, 4], wShape: [3, 3, 4, 2] }, get('c3/bias'));
  const [H3, W3] = [H2 + 4, W2 + 4];
  return ref.conv2d(pad(c3, [N, H3, W3, 2], [1, 1, 1, 1]), get('c4/kernel'), { xShape: [N, H3 + 2, W3 + 2, 2], wShape: [3, 3, 2, 3], padding: 'same' }, get('c4/bias'), true);
}

/**
 * MobileNetV3's and EfficientNet's activations folded into the epilogues: conv -> BN -> swish,
 * depthwise -> BN -> hard swish, 1x1 projection -> BN (an inverted-residual block, run by bands
 * when folded), conv (bias, no BN) -> sigmoid, then pool and dense -> sigmoid.
 */
function buildSmooth(): ck.LayersModel {
  const input = ck.input({ shape: [H, W, 3] });
  const c1 = l.conv2d({ filters: 8, kernelSize: 1, useBias: false, name: 'c1' }).apply(input);
  const a1 = l.activation({ activation: 'swish', name: 'a1' }).apply(l.batchNormalization({ name: 'bn1' }).apply(c1));
  const d2 = l.depthwiseConv2d({ kernelSize: 3, padding: 'same', useBias: false, name: 'd2' }).apply(a1);
  const a2 = l.activation({ activation: 'hardSwish', name: 'a2' }).apply(l.batchNormalization({ name: 'bn2' }).apply(d2));
  const c3 = l.conv2d({ filters: 4, kernelSize: 1, useBias: false, name: 'c3' }).apply(a2);
  const bn3 = l.batchNormalization({ name: 'bn3' }).apply(c3);
  const c4 = l.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'c4' }).apply(bn3);
  const a4 = l.activation({ activation: 'sigmoid', name: 'a4' }).apply(c4);
  const dense = l.dense({ units: 3, name: 'fc' }).apply(l.globalAveragePooling2d({ name: 'gap' }).apply(a4));
  return ck.model({ inputs: input, outputs: l.activation({ activation: 'sigmoid', name: 'out' }).apply(dense) });
}

function referenceSmooth(model: ck.LayersModel, x: Float32Array, N: number): Float32Array {
  const values = model.getWeights();
  const w = new Map(weightNames(model).map((name, i) => [name, values[i].dataSync()]));
  const get = (name: string) => w.get(name)!;
  const bn = (v: ArrayLike<number>, layer: string, C: number) => ref.batchNormInfer(v, v.length / C, C,
    get(`${layer}/moving_mean`), get(`${layer}/moving_variance`), { gamma: get(`${layer}/gamma`), beta: get(`${layer}/beta`) });
  const sigmoid = (a: number) => 1 / (1 + Math.exp(-a));
  const swish = (v: ArrayLike<number>) => Float32Array.from(v, (a) => a * sigmoid(a));
  const hardSwish = (v: ArrayLike<number>) => Float32Array.from(v, (a) => (a * Math.min(Math.max(a + 3, 0), 6)) / 6);
  const a1 = swish(bn(ref.conv2d(x, get('c1/kernel'), { xShape: [N, H, W, 3], wShape: [1, 1, 3, 8] }), 'bn1', 8));
  const d2 = refLayers.depthwiseConv2d(a1, get('d2/depthwise_kernel'), { xShape: [N, H, W, 8], wShape: [3, 3, 8, 1], padding: 'same' });
  const a2 = hardSwish(bn(d2, 'bn2', 8));
  const bn3 = bn(ref.conv2d(a2, get('c3/kernel'), { xShape: [N, H, W, 8], wShape: [1, 1, 8, 4] }), 'bn3', 4);
  const c4 = ref.conv2d(bn3, get('c4/kernel'), { xShape: [N, H, W, 4], wShape: [3, 3, 4, 4], padding: 'same' }, get('c4/bias'));
  const pooled = ref.globalAvgPool(Float32Array.from(c4, sigmoid), N, H * W, 4);
  return Float32Array.from(ref.dense(pooled, get('fc/kernel'), N, 4, 3, get('fc/bias')), sigmoid);
}

describe('batch norms folded into the layer before them for inference', () => {
  test('predict at batch 1, 3 and 40 (rows split over threads) matches the unfolded float64 chain', async () => {
    const model = build();
    randomize(model, 1);
    const N = 40;
    const x = randomArray(N * H * W * 3, 99, -1, 1);
    const want = reference(model, x, N);
    for (const batchSize of [1, 3, 40]) {
      const got = await model.predict(ck.tensor(x, [N, H, W, 3]), { batchSize }).data();
      ref.expectClose(got, want, { ...tol, name: `predict batchSize ${batchSize}` });
    }
    const one = await model.predictOnBatch(ck.tensor(x.slice(0, H * W * 3), [1, H, W, 3])).data();
    ref.expectClose(one, want.slice(0, 5), { ...tol, name: 'predictOnBatch' });
  });

  test('zero paddings folded into the convolution after them: predict matches the padded float64 chain', async () => {
    const model = buildPadded();
    randomize(model, 8);
    const N = 5;
    const x = randomArray(N * H * W * 3, 13, -1, 1);
    const want = referencePadded(model, x, N);
    for (const batchSize of [1, 5]) {
      ref.expectClose(await model.predict(ck.tensor(x, [N, H, W, 3]), { batchSize }).data(), want, { ...tol, name: `padded, batchSize ${batchSize}` });
    }
    // a padding asked for is written (that call runs unfolded)
    const p1 = await model.layerOutput(ck.tensor(x, [N, H, W, 3]), model.layers.find((k) => k.name === 'p1')!).data();
    ref.expectClose(p1, refLayers.zeroPadding2d(x, [N, H, W, 3], [0, 1, 0, 1]), { rtol: 0, atol: 0, name: 'p1 output' });
  });

  test('swish, hard swish and sigmoid folded into the epilogues: predict matches the unfolded float64 chain', async () => {
    const model = buildSmooth();
    randomize(model, 21);
    const N = 6;
    const x = randomArray(N * H * W * 3, 23, -1, 1);
    const want = referenceSmooth(model, x, N);
    for (const batchSize of [1, 6]) {
      ref.expectClose(await model.predict(ck.tensor(x, [N, H, W, 3]), { batchSize }).data(), want, { ...tol, name: `smooth, batchSize ${batchSize}` });
    }
    // a folded activation's output asked for is written (that call runs unfolded)
    const a2 = model.layers.find((k) => k.name === 'a2')!;
    const unfolded = await model.layerOutput(ck.tensor(x, [N, H, W, 3]), a2).data();
    expect(unfolded.length).toBe(N * H * W * 8);
  });

  test('intermediate outputs (a folded layer, a batch norm) are the unfolded values', async () => {
    const model = build();
    randomize(model, 2);
    const N = 4;
    const x = randomArray(N * H * W * 3, 7, -1, 1);
    const kernel = model.layers.find((k) => k.name === 'c1')!.getWeights()[0].dataSync();
    const c1 = await model.layerOutput(ck.tensor(x, [N, H, W, 3]), model.layers.find((k) => k.name === 'c1')!).data();
    ref.expectClose(c1, ref.conv2d(x, kernel, { xShape: [N, H, W, 3], wShape: [3, 3, 3, 4], padding: 'same' }), { ...tol, name: 'c1 output' });
  });

  test('evaluate runs folded and matches the reference loss', async () => {
    const model = build();
    randomize(model, 3);
    model.compile({ optimizer: 'sgd', loss: 'categoricalCrossentropy' });
    const N = 12;
    const x = randomArray(N * H * W * 3, 5, -1, 1);
    const labels = Array.from({ length: N }, (_, i) => i % 5);
    const p = reference(model, x, N);
    let loss = 0;
    labels.forEach((c, i) => (loss -= Math.log(Math.min(Math.max(p[i * 5 + c], 1e-7), 1 - 1e-7))));
    const [got] = await model.evaluate(ck.tensor(x, [N, H, W, 3]), ck.toCategorical(Float32Array.from(labels), 5), { batchSize: 5 });
    expect(Math.abs(got - loss / N)).toBeLessThan(1e-4 * Math.max(1, loss / N));
  });

  test('the folded weights follow every change: setWeights of one statistic, fit, setWeights of all', async () => {
    const model = build();
    randomize(model, 4);
    const N = 6;
    const x = ck.tensor(randomArray(N * H * W * 3, 11, -1, 1), [N, H, W, 3]);
    const xs = x.dataSync();
    const check = async (what: string) => {
      ref.expectClose(await model.predict(x).data(), reference(model, xs, N), { ...tol, name: what });
    };
    await check('before');
    // one batch norm's moving mean alone
    const i = weightNames(model).indexOf('bn1/moving_mean');
    const weights = model.getWeights();
    weights[i] = ck.tensor(randomArray(4, 21, -2, 2), [4]);
    model.setWeights(weights);
    await check('after setWeights of bn1/moving_mean');
    // training moves the kernels and the batch norms' running statistics
    model.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.1 }), loss: 'categoricalCrossentropy' });
    await model.fit(x, ck.toCategorical(Float32Array.from([0, 1, 2, 3, 4, 0]), 5), { epochs: 2, batchSize: 3, verbose: 0 });
    await check('after fit');
    randomize(model, 5);
    await check('after setWeights of everything');
  });

  test("a wide convolution's GEMM weights, packed once per version and per ISA, follow setWeights and ck.setIsa", async () => {
    // 3x3x80 -> 20: a reduction past every ISA's direct kernel, so inference packs its weights.
    const C = 80, K = 20, N = 3;
    const input = ck.input({ shape: [H, W, C] });
    const conv = l.conv2d({ filters: K, kernelSize: 3, padding: 'same', useBias: false, name: 'wide' });
    const bn = l.batchNormalization({ name: 'bnw' });
    const model = ck.model({ inputs: input, outputs: l.reLU({ name: 'rw' }).apply(bn.apply(conv.apply(input))) as never });
    const x = randomArray(N * H * W * C, 31, -1, 1);
    const want = () => {
      const [w] = conv.getWeights().map((t) => t.dataSync());
      const [gamma, beta, mean, variance] = bn.getWeights().map((t) => t.dataSync());
      const y = ref.conv2d(x, w, { xShape: [N, H, W, C], wShape: [3, 3, C, K], padding: 'same' });
      return ref.batchNormInfer(y, N * H * W, K, mean, variance, { gamma, beta }).map((v) => Math.max(v, 0));
    };
    const before = ck.devices()[0];
    const isas = [...new Set([before.type === 'cpu' ? before.isa : 'scalar', 'scalar', 'avx2'])];
    try {
      for (let round = 0; round < 2; round++) {
        randomize(model, 40 + round);
        const expected = want();
        for (const isa of isas) {
          try { ck.setIsa(isa as ck.Isa); } catch { continue; }  // (a CPU without it)
          for (const batchSize of [1, N]) {
            const got = await model.predict(ck.tensor(x, [N, H, W, C]), { batchSize }).data();
            ref.expectClose(got, expected, { ...tol, name: `round ${round}, ${isa}, batchSize ${batchSize}` });
          }
        }
      }
    } finally {
      if (before.type === 'cpu') ck.setIsa(before.isa as ck.Isa);
    }
  });

  test('folding never reaches getWeights or saved files', async () => {
    const model = build();
    randomize(model, 6);
    const before = weightsOf(model);
    await model.predict(ck.tensor(randomArray(2 * H * W * 3, 3, -1, 1), [2, H, W, 3])).data();
    expect(weightsOf(model)).toEqual(before);
    const dir = path.join(tmpDir('convkit-folds-'), 'm');
    await model.save(`file://${dir}`);
    expect(weightsOf(await ck.loadModel(`file://${dir}`))).toEqual(before);
  });
});
