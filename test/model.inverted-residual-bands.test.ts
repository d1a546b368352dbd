// Folded inference runs inverted-residual blocks (expand 1x1 -> depthwise -> project 1x1, batch
// norms folded, residual add) band by band of output rows, split over the threads. Predictions
// must match a float64 chain of the unfolded layers for every block form MobileNetV2 has (with and
// without the expansion, stride 1 and 2, 'same' padding or a zero padding before a 'valid'
// depthwise, with and without the residual add), at every batch size, with bands small enough
// that a thread's rows take several of them.
import { describe, expect, test } from '@jest/globals';
import * as ck from '../lib';
import { randomArray } from '../test-support/helpers';
import * as ref from '../test-support/reference';
import * as refLayers from '../test-support/reference-layers';

const l = ck.layers;
const SIZE = 61; // odd: bands and thread halves end on uneven rows
const C0 = 24;

interface BlockSpec {
  name: string;
  expand: number; // expansion factor (1: none)
  cout: number;
  stride: 1 | 2;
  zeroPad?: boolean; // stride 2 as Keras's MobileNetV2: ZeroPadding2D then a 'valid' depthwise
  residual?: boolean;
}

// 144 expanded channels at 61 columns: ~70 KB per band row, so a band holds a few rows.
const BLOCKS: BlockSpec[] = [
  { name: 'a', expand: 6, cout: C0, stride: 1, residual: true },
  { name: 'b', expand: 6, cout: 32, stride: 2, zeroPad: true },
  { name: 'c', expand: 1, cout: 32, stride: 1 },
  { name: 'd', expand: 4, cout: 16, stride: 2 },
  { name: 'e', expand: 6, cout: 16, stride: 1, residual: true },
];

/** norm false: an imported graph's form, batch norms folded by its exporter into biases. */
function build(norm = true): ck.LayersModel {
  const input = ck.input({ shape: [SIZE, SIZE, C0] });
  let x: ck.SymbolicTensor = input;
  let cin = C0;
  for (const b of BLOCKS) {
    let h = x;
    if (b.expand > 1) {
      h = l.conv2d({ filters: cin * b.expand, kernelSize: 1, useBias: !norm, name: `${b.name}_expand` }).apply(h) as ck.SymbolicTensor;
      if (norm) h = l.batchNormalization({ name: `${b.name}_expand_bn` }).apply(h) as ck.SymbolicTensor;
      h = l.reLU({ maxValue: 6, name: `${b.name}_expand_relu` }).apply(h) as ck.SymbolicTensor;
    }
    if (b.zeroPad) h = l.zeroPadding2d({ padding: [[0, 1], [0, 1]], name: `${b.name}_pad` }).apply(h) as ck.SymbolicTensor;
    h = l.depthwiseConv2d({ kernelSize: 3, strides: b.stride, padding: b.zeroPad ? 'valid' : 'same', useBias: !norm, name: `${b.name}_depthwise` }).apply(h) as ck.SymbolicTensor;
    if (norm) h = l.batchNormalization({ name: `${b.name}_depthwise_bn` }).apply(h) as ck.SymbolicTensor;
    h = l.reLU({ maxValue: 6, name: `${b.name}_depthwise_relu` }).apply(h) as ck.SymbolicTensor;
    h = l.conv2d({ filters: b.cout, kernelSize: 1, useBias: !norm, name: `${b.name}_project` }).apply(h) as ck.SymbolicTensor;
    if (norm) h = l.batchNormalization({ name: `${b.name}_project_bn` }).apply(h) as ck.SymbolicTensor;
    x = b.residual ? (l.add({ name: `${b.name}_add` }).apply([x, h] as never) as ck.SymbolicTensor) : h;
    cin = b.cout;
  }
  return ck.model({ inputs: input, outputs: x });
}

/** Random kernels; batch norms with moving variances in [0.5, 2] and means, betas of either sign. */
function randomize(model: ck.LayersModel, seed: number): void {
  let s = seed;
  for (const layer of model.layers) {
    const ws = layer.getWeights();
    if (!ws.length) continue;
    const bn = layer.name.endsWith('_bn');
    layer.setWeights(ws.map((w, i) => {
      const [lo, hi] = bn ? [[0.5, 1.5], [-0.5, 0.5], [-0.5, 0.5], [0.5, 2]][i] : [-0.4, 0.4];
      return ck.tensor(randomArray(w.size, s++, lo, hi), [...w.shape]);
    }));
  }
}

/** The model in float64-accumulated plain loops, layer by layer, and the values inside its blocks by layer name. */
function reference(model: ck.LayersModel, x: Float32Array, N: number): { output: Float32Array; inside: Map<string, Float32Array> } {
  const inside = new Map<string, Float32Array>();
  const weights = (name: string) => model.layers.find((k) => k.name === name)!.getWeights().map((t) => t.dataSync());
  let shape: [number, number, number, number] = [N, SIZE, SIZE, C0];
  let v: Float32Array = x;
  const norm = model.layers.some((k) => k.name.endsWith('_bn'));
  const bias = (name: string) => (norm ? undefined : weights(name)[1]);
  const bn = (name: string, relu6: boolean) => {
    if (!norm) {
      if (relu6) v = Float32Array.from(v, (a) => Math.min(Math.max(a, 0), 6));
      return;
    }
    const [gamma, beta, mean, variance] = weights(name);
    const y = ref.batchNormInfer(v, v.length / shape[3], shape[3], mean, variance, { gamma, beta });
    v = relu6 ? Float32Array.from(y, (a) => Math.min(Math.max(a, 0), 6)) : y;
  };
  for (const b of BLOCKS) {
    const input = v;
    const inShape = shape;
    const keep = (layer: string) => inside.set(layer, v);
    if (b.expand > 1) {
      const ce = shape[3] * b.expand;
      v = ref.conv2d(v, weights(`${b.name}_expand`)[0], { xShape: shape, wShape: [1, 1, shape[3], ce] }, bias(`${b.name}_expand`));
      shape = [N, shape[1], shape[2], ce];
      bn(`${b.name}_expand_bn`, true);
      keep(`${b.name}_expand_relu`);
    }
    if (b.zeroPad) {
      v = refLayers.zeroPadding2d(v, shape, [0, 1, 0, 1]);
      shape = [N, shape[1] + 1, shape[2] + 1, shape[3]];
    }
    const spec = { xShape: shape, wShape: [3, 3, shape[3], 1] as [number, number, number, number], strides: b.stride, padding: (b.zeroPad ? 'valid' : 'same') as 'valid' | 'same' };
    v = refLayers.depthwiseConv2d(v, weights(`${b.name}_depthwise`)[0], spec, bias(`${b.name}_depthwise`));
    const { P, Q } = refLayers.depthwiseGeometry(spec);
    shape = [N, P, Q, shape[3]];
    bn(`${b.name}_depthwise_bn`, true);
    keep(`${b.name}_depthwise_relu`);
    v = ref.conv2d(v, weights(`${b.name}_project`)[0], { xShape: shape, wShape: [1, 1, shape[3], b.cout] }, bias(`${b.name}_project`));
    shape = [N, P, Q, b.cout];
    bn(`${b.name}_project_bn`, false);
    keep(`${b.name}_project${norm ? '_bn' : ''}`);
    if (b.residual) {
      expect(shape).toEqual(inShape);
      v = Float32Array.from(v, (a, i) => a + input[i]);
    }
  }
  return { output: v, inside };
}

const tol = { rtol: 1e-4, atol: 1e-5 };

describe('inverted-residual blocks run by bands of rows in folded inference', () => {
  const model = build();
  randomize(model, 1);
  const N = 3;
  const x = randomArray(N * SIZE * SIZE * C0, 5, -1, 1);
  const { output: want, inside } = reference(model, x, N);

  test('predict at batch sizes 1, 2 and 3 matches the float64 chain of the unfolded layers', async () => {
    for (const batchSize of [1, 2, 3]) {
      const got = await model.predict(ck.tensor(x, [N, SIZE, SIZE, C0]), { batchSize }).data();
      ref.expectClose(got, want, { ...tol, name: `predict batchSize ${batchSize}` });
    }
    const row = SIZE * SIZE * C0;
    const one = await model.predictOnBatch(ck.tensor(x.slice(row, 2 * row), [1, SIZE, SIZE, C0])).data();
    ref.expectClose(one, want.slice(want.length / N, 2 * want.length / N), { ...tol, name: 'predictOnBatch, the second row' });
  });

  test('values inside a block, asked for, are the unfolded layers\' values', async () => {
    for (const name of ['a_expand_relu', 'b_depthwise_relu', 'e_project_bn']) {
      const layer = model.layers.find((k) => k.name === name)!;
      const got = await model.layerOutput(ck.tensor(x, [N, SIZE, SIZE, C0]), layer).data();
      ref.expectClose(got, inside.get(name)!, { ...tol, name });
    }
  });

  test('evaluate runs the blocks by bands too and matches the reference loss', async () => {
    model.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
    const y = randomArray(want.length, 9, -1, 1);
    const [got] = await model.evaluate(ck.tensor(x, [N, SIZE, SIZE, C0]), ck.tensor(y, [N, ...model.outputShape.slice(1) as number[]]), { batchSize: 2 });
    let mse = 0;
    for (let i = 0; i < y.length; i++) mse += (want[i] - y[i]) ** 2;
    expect(Math.abs(got - mse / y.length)).toBeLessThan(1e-4 * Math.max(1, mse / y.length));
  });
});

describe('the same blocks without batch norms (an imported graph: biases, ReLU6 layers)', () => {
  const model = build(false);
  randomize(model, 2);
  const N = 2;
  const x = randomArray(N * SIZE * SIZE * C0, 6, -1, 1);
  const { output: want, inside } = reference(model, x, N);

  test('predict at batch sizes 1 and 2 matches the float64 chain, the ReLU6 layers in the convolutions\' epilogues', async () => {
    for (const batchSize of [1, 2]) {
      const got = await model.predict(ck.tensor(x, [N, SIZE, SIZE, C0]), { batchSize }).data();
      ref.expectClose(got, want, { ...tol, name: `predict batchSize ${batchSize}` });
    }
  });

  test('values inside a block, asked for, are the layers\' values', async () => {
    for (const name of ['a_expand_relu', 'b_depthwise_relu', 'e_project']) {
      const layer = model.layers.find((k) => k.name === name)!;
      const got = await model.layerOutput(ck.tensor(x, [N, SIZE, SIZE, C0]), layer).data();
      ref.expectClose(got, inside.get(name)!, { ...tol, name });
    }
  });
});
