// Keras 3's gradient accumulation (gradientAccumulationSteps: N): N batches with accumulation
// train exactly as one batch of their N * b rows without it (the mean of equal batches' mean
// gradients is the mean gradient of their rows), for plain SGD, SGD with momentum and Adam
// (whose bias correction must count updates, not batches), with clipnorm applied to the
// accumulated gradient; the loss is still logged for every batch, the step count is Keras's
// (every batch; a per-step schedule gets it), a batch that does not complete an accumulation
// leaves the weights alone, and the accumulator is saved with the optimizer state. On CUDA too
// (a GPU, or the addon built on the CUDA emulator).
import { describe, expect, test } from '@jest/globals';
import * as ck from '../lib';
import { maxAbsDiff, randomArray, tmpDir, weightsOf } from '../test-support/helpers';

const IN = 4;
const H = 6;
const K = 3;
const B = 4;       // rows per accumulated batch
const STEPS = 3;   // gradientAccumulationSteps
const N = 2 * STEPS * B;  // two updates per epoch
const x0 = randomArray(N * IN, 51, -1, 1);
const ids = Array.from({ length: N }, (_, r) => (r * 5 + (r % 3)) % K);
const y0 = ids.flatMap((c) => Array.from({ length: K }, (_, j) => (j === c ? 1 : 0)));
const init = [randomArray(IN * H, 52, -0.8, 0.8), randomArray(H, 53, -0.1, 0.1), randomArray(H * K, 54, -0.8, 0.8), randomArray(K, 55, -0.1, 0.1)];

const cuda = ck.cudaStatus();
const devices: ('cpu' | 'cuda')[] = cuda.available ? ['cpu', 'cuda'] : ['cpu'];

type Opts = Parameters<typeof ck.optimizers.sgd>[0] & Parameters<typeof ck.optimizers.adam>[0];

function build(kind: 'sgd' | 'adam', opts: Opts, device: 'cpu' | 'cuda'): ck.LayersModel {
  const m = ck.sequential([
    ck.layers.input({ shape: [IN] }),
    ck.layers.dense({ units: H, activation: 'tanh' }),
    ck.layers.dense({ units: K }),
    ck.layers.softmax(),
  ]);
  m.setWeights([ck.tensor(init[0], [IN, H]), ck.tensor(init[1], [H]), ck.tensor(init[2], [H, K]), ck.tensor(init[3], [K])]);
  m.compile({ optimizer: ck.optimizers[kind](opts), loss: 'categoricalCrossentropy', device });
  return m;
}

const data = () => [ck.tensor(x0, [N, IN]), ck.tensor(y0, [N, K])] as const;

function close(a: Float32Array[], b: Float32Array[], tol: number) {
  a.forEach((w, i) => expect(maxAbsDiff(w, b[i])).toBeLessThanOrEqual(tol));
}

const cases: { label: string; kind: 'sgd' | 'adam'; opts: Opts }[] = [
  { label: 'SGD', kind: 'sgd', opts: { learningRate: 0.5 } },
  { label: 'SGD with momentum and clipnorm', kind: 'sgd', opts: { learningRate: 0.5, momentum: 0.9, clipnorm: 0.05 } },
  { label: 'Adam', kind: 'adam', opts: { learningRate: 0.05 } },
  { label: 'Adam with globalClipnorm', kind: 'adam', opts: { learningRate: 0.05, globalClipnorm: 0.02 } },
];

describe('gradientAccumulationSteps (Keras 3 BaseOptimizer)', () => {
  for (const device of devices) {
    test.each(cases)(`$label: ${STEPS} accumulated batches train as one batch of their rows (${device})`, async ({ kind, opts }) => {
      const [x, y] = data();
      const acc = build(kind, { ...opts, gradientAccumulationSteps: STEPS }, device);
      const whole = build(kind, opts, device);
      const batchLosses: number[] = [];
      const ha = await acc.fit(x, y, { epochs: 2, batchSize: B, shuffle: false, verbose: 0, callbacks: { onBatchEnd: async (_b, logs) => { batchLosses.push(logs!.loss); } } });
      const hw = await whole.fit(x, y, { epochs: 2, batchSize: STEPS * B, shuffle: false, verbose: 0 });
      close(weightsOf(acc), weightsOf(whole), 2e-5);
      // The weights moved: the comparison is not of two untrained models.
      expect(maxAbsDiff(weightsOf(acc)[2], init[2])).toBeGreaterThan(0.01);
      // Every batch logs its loss; the running mean over an epoch's equal batches, taken with the
      // weights each had, is the unaccumulated run's.
      expect(batchLosses).toHaveLength(2 * N / B);
      ha.history.loss.forEach((v, e) => expect(v).toBeCloseTo(hw.history.loss[e], 5));
      // Keras counts every batch (optimizer._iterations; optimizer.iterations is that // N).
      expect(await acc.net.iterations()).toBe(2 * N / B);
      expect(await whole.net.iterations()).toBe(2 * N / (STEPS * B));
    });
  }

  test('clipping applies to the accumulated mean, not to each batch', async () => {
    const [x, y] = data();
    const clipped = build('sgd', { learningRate: 0.5, clipnorm: 0.05, gradientAccumulationSteps: STEPS }, 'cpu');
    const free = build('sgd', { learningRate: 0.5, gradientAccumulationSteps: STEPS }, 'cpu');
    await clipped.fit(x, y, { epochs: 1, batchSize: B, shuffle: false, verbose: 0 });
    await free.fit(x, y, { epochs: 1, batchSize: B, shuffle: false, verbose: 0 });
    expect(maxAbsDiff(weightsOf(clipped)[0], weightsOf(free)[0])).toBeGreaterThan(1e-3);  // the clip bites
  });

  test('a batch that does not complete an accumulation leaves the weights; the accumulator is optimizer state', async () => {
    const m = build('adam', { learningRate: 0.05, gradientAccumulationSteps: STEPS }, 'cpu');
    const rows = (from: number) => [ck.tensor(x0.slice(from * IN, (from + B) * IN), [B, IN]), ck.tensor(y0.slice(from * K, (from + B) * K), [B, K])] as const;
    for (let b = 0; b < STEPS - 1; b++) await m.trainOnBatch(...rows(b * B));
    close(weightsOf(m), init, 0);
    await m.trainOnBatch(...rows((STEPS - 1) * B));
    const once = weightsOf(m);
    expect(maxAbsDiff(once[0], init[0])).toBeGreaterThan(1e-3);
    await m.trainOnBatch(...rows(STEPS * B));
    close(weightsOf(m), once, 0);
    // Adam's m and v, then the accumulated gradients (one batch's, now), saved and restored.
    const state = m.net.getOptimizerState();
    expect(state).toHaveLength(3);
    const dir = tmpDir('ck-accum-');
    await m.save(`file://${dir}`, { includeOptimizer: true });
    const loaded = await ck.loadModel(`file://${dir}`);
    const restored = loaded.net.getOptimizerState();
    expect(await loaded.net.iterations()).toBe(STEPS + 1);
    expect(new ck.Tensor(restored[2]).dataSync()).toEqual(new ck.Tensor(state[2]).dataSync());
    // Both finish the accumulation alike.
    for (const model of [m, loaded]) for (let b = STEPS + 1; b < 2 * STEPS; b++) await model.trainOnBatch(...rows(b * B));
    close(weightsOf(loaded), weightsOf(m), 0);
  });

  test('a per-step schedule gets every batch\'s count, as Keras\'s _iterations: the update takes the rate of its last batch', async () => {
    const [x, y] = data();
    const schedule = () => ck.optimizers.schedules.piecewiseConstantDecay({ boundaries: [0, 1, 2, 3], values: [0.5, 0.4, 0.3, 0.2, 0.1] });
    const acc = build('sgd', { learningRate: schedule(), gradientAccumulationSteps: 2 }, 'cpu');
    await acc.fit(x, y, { epochs: 1, batchSize: N / 4, shuffle: false, verbose: 0 });
    // By hand: two plain SGD steps on the halves, at rates schedule(1) = 0.4 and schedule(3) = 0.2.
    const ref = build('sgd', { learningRate: 0.4 }, 'cpu');
    const half = (i: number) => [ck.tensor(x0.slice(i * (N / 2) * IN, (i + 1) * (N / 2) * IN), [N / 2, IN]), ck.tensor(y0.slice(i * (N / 2) * K, (i + 1) * (N / 2) * K), [N / 2, K])] as const;
    await ref.trainOnBatch(...half(0));
    ref.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.2 }), loss: 'categoricalCrossentropy' });
    await ref.trainOnBatch(...half(1));
    close(weightsOf(acc), weightsOf(ref), 2e-6);
  });

  test('bad settings are ValueErrors naming the optimizer; the setting saves and loads', async () => {
    expect(() => ck.optimizers.adam({ gradientAccumulationSteps: 1 })).toThrow(/optimizers\.adam: gradientAccumulationSteps must be an integer >= 2, got 1/);
    expect(() => ck.optimizers.sgd({ gradientAccumulationSteps: 2.5 })).toThrow(ck.ValueError);
    const m = build('sgd', { gradientAccumulationSteps: 4 }, 'cpu');
    const dir = tmpDir('ck-accum-config-');
    await m.save(`file://${dir}`);
    expect((await ck.loadModel(`file://${dir}`)).compiled!.optimizer.getConfig().gradientAccumulationSteps).toBe(4);
  });
});
