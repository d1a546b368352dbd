// Dropout's noiseShape (Keras's noise_shape): the mask is drawn once per index of the axes that
// are not 1 and broadcast over the others: [null, 1, 1, C] drops whole channels of an example,
// [null, 1, 1, 1] whole examples (EfficientNet's drop connect). The training mask is read back
// through the gradient of a bias that feeds the dropout directly, and its structure, its values
// (0 or 1 / (1 - rate)) and the loss are checked against plain loops over that mask.
import { describe, expect, test } from '@jest/globals';
import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as path from 'path';
import * as ck from '../lib';
import { tmpDir } from '../test-support/helpers';
import { readArtifacts, tfjsReady } from '../test-support/tfjs-io';

const [H, W, C] = [3, 2, 4];
const F = H * W * C;

// A constant input 1 -> dense (its output h = kernel + bias, one value per feature) -> [H, W, C]
// -> dropout -> flattened output, trained towards 0 with the mean squared error: the bias's
// gradient is 2 h_j / (N F) * sum over rows n of mask[n, j]^2.
function probe(rate: number, noiseShape: (number | null)[] | null): ck.Sequential {
  return ck.sequential([
    ck.layers.dense({ units: F, inputShape: [1], name: 'h' }),
    ck.layers.reshape({ targetShape: [H, W, C] }),
    ck.layers.dropout({ rate, noiseShape, name: 'drop' }),
    ck.layers.flatten(),
  ]);
}

/**
 * One SGD step on n rows: per feature j, how many rows kept it (sum of mask^2 / scale^2, which
 * must be a whole number), and the loss the step reported next to the plain-loop loss of that mask.
 */
async function step(model: ck.Sequential, n: number, rate: number): Promise<{ kept: number[]; loss: number; want: number }> {
  const [kernel, bias] = model.getWeights().map((w) => Float64Array.from(w.dataSync()));
  const h = Array.from(kernel, (k, j) => k + bias[j]);
  const [loss] = await model.trainOnBatch(ck.ones([n, 1]), ck.zeros([n, F]));
  const after = Float64Array.from(model.getWeights()[1].dataSync());
  const scale2 = 1 / (1 - rate) ** 2;
  const kept = h.map((hj, j) => (bias[j] - after[j]) * n * F / (2 * hj) / scale2);
  for (const k of kept) expect(Math.abs(k - Math.round(k))).toBeLessThan(1e-3);
  const rounded = kept.map(Math.round);
  // the loss of y = x * mask, summed in plain loops: each kept row adds (scale * h_j)^2
  let want = 0;
  rounded.forEach((k, j) => { want += k * scale2 * h[j] ** 2; });
  return { kept: rounded, loss, want: want / (n * F) };
}

function compileProbe(model: ck.Sequential): void {
  ck.setSeed(7);
  model.compile({ optimizer: ck.optimizers.sgd({ learningRate: 1 }), loss: 'meanSquaredError' });
  // h_j in [0.5, 1.5): no feature's gradient vanishes for a kept value
  model.setWeights([ck.zeros([1, F]), ck.tensor(Float32Array.from({ length: F }, (_, j) => 0.5 + j / F), [F])]);
}

const channelOf = (j: number) => j % C;
const pixelOf = (j: number) => Math.floor(j / C);

describe('the mask is broadcast over the axes where noiseShape is 1', () => {
  test.each([
    ['whole channels', [null, 1, 1, C], (j: number) => channelOf(j)],
    ['whole examples', [null, 1, 1, 1], () => 0],
    ['whole pixels', [null, H, W, 1], (j: number) => pixelOf(j)],
    ['rows of a channel (Keras\'s size or null alike)', [null, 1, W, null], (j: number) => pixelOf(j) % W * C + channelOf(j)],
    ['no broadcast', null, (j: number) => j],
  ])('%s: one draw per group, kept values scaled by 1 / (1 - rate), the loss that of the mask', async (_, noise, groupOf) => {
    const rate = 0.5;
    const model = probe(rate, noise as (number | null)[] | null);
    compileProbe(model);
    let dropped = 0;
    let values = 0;
    for (let s = 0; s < 6; s++) {
      const { kept, loss, want } = await step(model, 1, rate);
      expect(Math.abs(loss - want)).toBeLessThan(1e-5 * Math.max(1, want));
      // one example: each feature kept (1) or dropped (0), the same across a group
      const byGroup = new Map<number, number>();
      kept.forEach((k, j) => {
        expect(k === 0 || k === 1).toBe(true);
        const g = groupOf(j);
        if (byGroup.has(g)) expect(k).toBe(byGroup.get(g));
        byGroup.set(g, k);
      });
      dropped += [...byGroup.values()].filter((k) => k === 0).length;
      values += byGroup.size;
    }
    // drawn, not fixed: over the steps some groups were dropped and some kept
    expect(dropped).toBeGreaterThan(0);
    expect(dropped).toBeLessThan(values);
  });

  test('each example draws its own mask: whole examples dropped independently in a batch', async () => {
    const rate = 0.5;
    const n = 8;
    const model = probe(rate, [null, 1, 1, 1]);
    compileProbe(model);
    const counts: number[] = [];
    for (let s = 0; s < 4; s++) {
      const { kept, loss, want } = await step(model, n, rate);
      expect(Math.abs(loss - want)).toBeLessThan(1e-5 * Math.max(1, want));
      expect(new Set(kept).size).toBe(1);  // every feature kept by the same rows
      counts.push(kept[0]);
    }
    expect(counts.some((k) => k > 0 && k < n)).toBe(true);
  });

  test('inference passes the values through; a batch axis of 1 shares one mask over the batch', async () => {
    const model = probe(0.5, [null, 1, 1, C]);
    compileProbe(model);
    const got = model.predict(ck.ones([2, 1])).dataSync();
    expect(Array.from(got)).toEqual(Array.from({ length: 2 * F }, (_, i) => Math.fround(0.5 + (i % F) / F)));
    const shared = probe(0.5, [1, 1, 1, C]);
    compileProbe(shared);
    for (let s = 0; s < 3; s++) {
      const { kept } = await step(shared, 5, 0.5);
      // all five rows keep or drop a channel together
      kept.forEach((k, j) => {
        expect(k === 0 || k === 5).toBe(true);
        expect(k).toBe(kept[channelOf(j)]);
      });
    }
  });
});

test('a data-parallel share draws the masks of its rows\' places in the global batch (gradientSlices against one batch)', async () => {
  const n = 6;
  for (const noise of [[null, 1, 1, C], [null, 1, 1, 1], [1, 1, 1, C], null]) {
    const weights: Float32Array[] = [];
    for (const slices of [1, 3]) {
      const model = probe(0.5, noise);
      compileProbe(model);
      await model.fit(ck.ones([n, 1]), ck.zeros([n, F]), { epochs: 2, batchSize: n, shuffle: false, verbose: 0, seed: 11, gradientSlices: slices });
      weights.push(model.getWeights()[1].dataSync());
    }
    // the same masks: the same weights but for the order the slices' gradients are summed in
    weights[1].forEach((w, j) => expect(Math.abs(w - weights[0][j])).toBeLessThan(1e-6));
  }
});

test('noiseShape is saved as Keras\'s noise_shape and loads in convkit and TensorFlow.js', async () => {
  await tfjsReady();
  const root = tmpDir('dropout-noise');
  try {
    const model = probe(0.25, [null, 1, 1, C]);
    await model.save(`file://${root}`);
    const json = JSON.parse(fs.readFileSync(path.join(root, 'model.json'), 'utf8'));
    const drop = json.modelTopology.config.layers.find((l: { config: { name: string } }) => l.config.name === 'drop');
    expect(drop.config.noise_shape).toEqual([null, 1, 1, C]);
    const loaded = await ck.loadModel(`file://${root}`);
    expect((loaded.getLayer('drop') as unknown as { noiseShape: unknown }).noiseShape).toEqual([null, 1, 1, C]);
    const intoTf = await tf.loadLayersModel(tf.io.fromMemory(readArtifacts(root)));
    expect((intoTf.getLayer('drop').getConfig() as { noiseShape: unknown }).noiseShape).toEqual([null, 1, 1, C]);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('a noiseShape that does not fit the input is an error naming the layer', () => {
  expect(() => probe(0.5, [null, 1, C]).build()).toThrow(ck.ShapeError);
  expect(() => probe(0.5, [null, 1, 1, C]).build()).not.toThrow();
  expect(() => probe(0.5, [null, 2, 1, C]).build()).toThrow(/drop: noiseShape \[null, 2, 1, 4\] has 2 at axis 1/);
  // two separate runs of broadcast axes
  expect(() => probe(0.5, [null, 1, W, 1]).build()).toThrow(/drop: noiseShape may broadcast the mask over one run of adjacent axes/);
  expect(() => ck.layers.dropout({ rate: 0.5, noiseShape: [null, 0] as never })).toThrow(ck.ValueError);
});

const cuda = ck.cudaStatus();
const onCuda = cuda.available ? describe : describe.skip;
onCuda(`on CUDA (against the CPU)${cuda.available ? '' : ` (skipped: ${cuda.reason})`}`, () => {
  test('the CUDA step draws the CPU\'s masks, broadcast alike', async () => {
    for (const noise of [[null, 1, 1, C], [null, 1, 1, 1]]) {
      const kept: number[][][] = [];
      for (const device of ['cpu', 'cuda'] as const) {
        const model = probe(0.5, noise);
        compileProbe(model);
        model.compile({ optimizer: ck.optimizers.sgd({ learningRate: 1 }), loss: 'meanSquaredError', device });
        const steps: number[][] = [];
        for (let s = 0; s < 3; s++) {
          const { kept: k, loss, want } = await step(model, 4, 0.5);
          expect(Math.abs(loss - want)).toBeLessThan(1e-5 * Math.max(1, want));
          steps.push(k);
        }
        kept.push(steps);
      }
      expect(kept[1]).toEqual(kept[0]);
    }
  });
});
