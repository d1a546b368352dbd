// Models on CUDA: compile({ device: 'cuda' }) trains, evaluates and predicts through the network
// executor's CUDA path. With CUDA (a GPU, or the addon built on convkit's CUDA emulator, which
// scripts/cuda-emu.js runs this file with): each model is trained from the same weights on the
// CPU and on CUDA and the losses, weights and predictions are compared; the event loop keeps
// ticking during a GPU fit; step graphs replay exactly what direct steps compute.
// Without CUDA (this machine's plain build, CI): compile({ device: 'cuda' }) throws a DeviceError
// giving the reason, and 'auto' runs on the CPU.
import { describe, expect, test } from '@jest/globals';
import * as ck from '../lib';
import { bitwiseEqual, maxAbsDiff, mnistModel, randomArray, tinyData, tinyModel, weightsOf } from '../test-support/helpers';

const cuda = ck.cudaStatus();
// Fixed initial weights: a ReLU or max-pool route that flips between the devices' summation
// orders moves a run by more than rounding, and which flips depends on the weights.
ck.setSeed(20261123);

type Build = () => ck.LayersModel;
type Compile = Omit<ck.CompileArgs, 'device'>;

/** Trains a copy of the model on each device from the same initial weights. */
async function trainOnBoth(build: Build, compile: Compile, x: ck.Tensor, y: ck.Tensor, fit: ck.FitArgs) {
  const cpu = build();
  const gpu = build();
  const initial = cpu.getWeights();
  cpu.compile({ ...compile, device: 'cpu' });
  gpu.compile({ ...compile, device: 'cuda' });
  gpu.setWeights(initial);
  const hc = await cpu.fit(x, y, { verbose: 0, ...fit });
  const hg = await gpu.fit(x, y, { verbose: 0, ...fit });
  return { cpu, gpu, hc: hc.history, hg: hg.history };
}

function expectClose(name: string, got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol = 0): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const tol = atol + rtol * Math.abs(want[i]);
    if (!(Math.abs(got[i] - want[i]) <= tol)) {
      throw new Error(`${name}[${i}]: cuda ${got[i]} vs cpu ${want[i]} (tolerance ${tol})`);
    }
  }
}

function oneHot(labels: Float32Array, classes: number): ck.Tensor {
  const out = new Float32Array(labels.length * classes);
  labels.forEach((c, i) => { out[i * classes + c] = 1; });
  return ck.tensor(out, [labels.length, classes]);
}

// Registered either way: the block that cannot run here is skipped, and its title says why.
const onCuda = cuda.available ? describe : describe.skip;
const withoutCuda = cuda.available ? describe.skip : describe;
onCuda(`models on CUDA (against the same model on the CPU)${cuda.available ? '' : ` (skipped: ${cuda.reason})`}`, () => {
  test('the seeds\' MNIST model, SGD, dropout, validation: losses, weights and predictions match the CPU', async () => {
    const n = 96;
    const x = ck.tensor(randomArray(n * 784, 11), [n, 28, 28, 1]);
    const labels = new Float32Array(n).map((_, i) => (i * 7) % 10);
    const y = oneHot(labels, 10);
    const { cpu, gpu, hc, hg } = await trainOnBoth(() => mnistModel({ dropout: 0.3 }),
      { optimizer: ck.optimizers.sgd({ learningRate: 0.01, momentum: 0.9 }), loss: 'categoricalCrossentropy', metrics: ['accuracy'] },
      x, y, { epochs: 2, batchSize: 32, seed: 3, validationSplit: 0.25 });
    expect(gpu.device).toBe('cuda');
    expect(cpu.device).toBe('cpu');
    for (const key of ['loss', 'val_loss', 'accuracy', 'val_accuracy']) {
      expectClose(key, hg[key], hc[key], 1e-5, 1e-4);
    }
    const wc = weightsOf(cpu), wg = weightsOf(gpu);
    wc.forEach((w, k) => expectClose(`weight ${k}`, wg[k], w, 1e-4, 1e-3));
    expectClose('predict', await gpu.predict(x, { batchSize: 40 }).data(), await cpu.predict(x, { batchSize: 40 }).data(), 1e-4);
    const ec = (await cpu.evaluate(x, y, { batchSize: 50 })) as number[];
    const eg = (await gpu.evaluate(x, y, { batchSize: 50 })) as number[];
    expectClose('evaluate', eg, ec, 1e-5, 1e-4);
  });

  test('batch normalization and Adam, sparse labels: the training losses match the CPU', async () => {
    const { x, labels } = tinyData(60, 4);
    const build = () => ck.sequential([
      ck.layers.input({ shape: [8, 8, 1] }),
      ck.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same', activation: 'relu' }),
      ck.layers.batchNormalization(),
      ck.layers.averagePooling2d({ poolSize: 2 }),
      ck.layers.conv2d({ filters: 5, kernelSize: 3, activation: 'elu', useBias: false }),
      ck.layers.globalMaxPooling2d(),
      ck.layers.dense({ units: 3, activation: 'softmax' }),
    ]);
    const { hc, hg, cpu, gpu } = await trainOnBoth(build, { optimizer: 'adam', loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] },
      x, ck.tensor(labels, [60]), { epochs: 3, batchSize: 16, seed: 9 });
    expectClose('loss', hg.loss, hc.loss, 1e-5, 1e-4);
    expectClose('accuracy', hg.accuracy, hc.accuracy, 0);
    // Adam turns near-zero gradients into full steps, so weights are compared through outputs.
    expectClose('predict', await gpu.predict(x).data(), await cpu.predict(x).data(), 2e-3);
  });

  test('binary cross-entropy and mean squared error, RMSprop, a functional model with a skip connection (add)', async () => {
    const n = 40;
    const x = ck.tensor(randomArray(n * 12, 21, -1, 1), [n, 12]);
    const yb = ck.tensor(randomArray(n * 2, 22).map((v) => (v > 0.5 ? 1 : 0)), [n, 2]);
    const build = () => {
      const input = ck.input({ shape: [12] });
      const h = ck.layers.dense({ units: 16, activation: 'tanh' }).apply(input) as ck.SymbolicTensor;
      const skip = ck.layers.dense({ units: 16 }).apply(input) as ck.SymbolicTensor;
      const merged = ck.layers.add().apply([h, skip]) as ck.SymbolicTensor;
      const out = ck.layers.dense({ units: 2, activation: 'sigmoid' }).apply(merged) as ck.SymbolicTensor;
      return ck.model({ inputs: input, outputs: out });
    };
    const bin = await trainOnBoth(build, { optimizer: 'rmsprop', loss: 'binaryCrossentropy', metrics: ['accuracy'] }, x, yb,
      { epochs: 3, batchSize: 8, seed: 1 });
    expectClose('binary loss', bin.hg.loss, bin.hc.loss, 1e-5, 1e-4);
    expectClose('binary accuracy', bin.hg.accuracy, bin.hc.accuracy, 1e-9);
    const mse = await trainOnBoth(build, { optimizer: 'sgd', loss: 'meanSquaredError' }, x, yb, { epochs: 2, batchSize: 10, seed: 2 });
    expectClose('mse loss', mse.hg.loss, mse.hc.loss, 1e-6, 1e-4);
    weightsOf(mse.cpu).forEach((w, k) => expectClose(`mse weight ${k}`, weightsOf(mse.gpu)[k], w, 1e-5, 1e-4));
  });

  test('a frozen batch normalization (transfer learning): losses and weights match the CPU', async () => {
    const { x, labels } = tinyData(36, 6);
    const build = () => {
      const m = ck.sequential([
        ck.layers.input({ shape: [8, 8, 1] }),
        ck.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu' }),
        ck.layers.batchNormalization({ name: 'frozen_bn' }),
        ck.layers.flatten(),
        ck.layers.dense({ units: 3, activation: 'softmax' }),
      ]);
      m.getLayer('frozen_bn').trainable = false;
      return m;
    };
    const { cpu, gpu, hc, hg } = await trainOnBoth(build, { optimizer: 'sgd', loss: 'sparseCategoricalCrossentropy' },
      x, ck.tensor(labels, [36]), { epochs: 2, batchSize: 12, seed: 4 });
    expectClose('loss', hg.loss, hc.loss, 1e-6, 1e-4);
    weightsOf(cpu).forEach((w, k) => expectClose(`weight ${k}`, weightsOf(gpu)[k], w, 1e-6, 1e-4));
  });

  test('steps replayed from CUDA graphs compute what direct steps compute (dropout, Adam, a schedule, a partial batch)', async () => {
    const { x, labels } = tinyData(50, 8);
    const y = ck.tensor(labels, [50]);
    const build = () => ck.sequential([
      ck.layers.input({ shape: [8, 8, 1] }),
      ck.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu' }),
      ck.layers.batchNormalization(),
      ck.layers.maxPooling2d({ poolSize: 2 }),
      ck.layers.flatten(),
      ck.layers.dropout({ rate: 0.4 }),
      ck.layers.dense({ units: 3, activation: 'softmax' }),
    ]);
    const initial = build().getWeights();
    // Adam reads its step size from the device each step; SGD's rate is part of the graph, so
    // the schedule's change must make new graphs.
    const run = async (graphs: boolean, optimizer: () => ck.Optimizer) => {
      ck.setCudaGraphs(graphs);
      try {
        const model = build();
        model.compile({ optimizer: optimizer(), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'], device: 'cuda' });
        model.setWeights(initial);
        const schedule = ck.callbacks.learningRateScheduler((epoch, lr) => (epoch === 2 ? lr / 4 : lr));
        const h = await model.fit(x, y, { epochs: 4, batchSize: 16, seed: 6, validationSplit: 0.2, callbacks: [schedule], verbose: 0 });
        return { history: h.history, weights: weightsOf(model), captures: model.net.cudaGraphCaptures() };
      } finally {
        ck.setCudaGraphs(true);
      }
    };
    for (const optimizer of [() => ck.optimizers.adam(), () => ck.optimizers.sgd({ learningRate: 0.1, momentum: 0.9 })]) {
      const direct = await run(false, optimizer);
      const replayed = await run(true, optimizer);
      expect(direct.captures).toBe(0);
      // Training batches of 16 and 8, evaluation batches, then again after the schedule's change.
      expect(replayed.captures).toBeGreaterThanOrEqual(3);
      expect(replayed.history).toEqual(direct.history);
      replayed.weights.forEach((w, k) => expect(maxAbsDiff(w, direct.weights[k])).toBe(0));
    }
  });

  test('two models train at once on one GPU (each on its own stream), as each trains alone', async () => {
    const { x, labels } = tinyData(48, 12);
    const y = ck.tensor(labels, [48]);
    const initial = [tinyModel({ dropout: 0.2 }).getWeights(), tinyModel().getWeights()];
    const fitOne = async (k: number) => {
      const model = k === 0 ? tinyModel({ dropout: 0.2 }) : tinyModel();
      model.compile({ optimizer: k === 0 ? 'adam' : 'sgd', loss: 'sparseCategoricalCrossentropy', device: 'cuda' });
      model.setWeights(initial[k]);
      const h = await model.fit(x, y, { epochs: 3, batchSize: 8, seed: 10 + k, verbose: 0 });
      return { loss: h.history.loss, weights: weightsOf(model) };
    };
    const alone = [await fitOne(0), await fitOne(1)];
    const together = await Promise.all([fitOne(0), fitOne(1)]);
    together.forEach((r, k) => {
      expect(r.loss).toEqual(alone[k].loss);
      r.weights.forEach((w, j) => expect(maxAbsDiff(w, alone[k].weights[j])).toBe(0));
    });
  });

  test('the event loop keeps ticking while a model trains on CUDA', async () => {
    const { x, labels } = tinyData(240, 2);
    const model = tinyModel();
    model.compile({ optimizer: 'sgd', loss: 'sparseCategoricalCrossentropy', device: 'cuda' });
    let ticks = 0;
    const timer = setInterval(() => { ticks++; }, 1);
    const t0 = Date.now();
    await model.fit(x, ck.tensor(labels, [240]), { epochs: 2, batchSize: 8, verbose: 0 });
    const ms = Date.now() - t0;
    clearInterval(timer);
    // A 1 ms timer fires on most milliseconds of the fit when nothing blocks the JS thread.
    expect(ticks).toBeGreaterThan(Math.min(20, ms / 4));
  });

  test('inputs and targets already on CUDA: fit, evaluate and predict give bitwise what host tensors give', async () => {
    const { x, labels } = tinyData(60, 5);
    const y = ck.tensor(labels, [labels.length]);
    const initial = tinyModel().getWeights();
    const run = async (xOnCuda: boolean, yOnCuda: boolean) => {
      const m = tinyModel();
      m.setWeights(initial);
      // A user metric gets the targets on the predictions' device, as ops on both need.
      const meanLabel = async (yTrue: ck.Tensor, yPred: ck.Tensor) => {
        if (yTrue.device !== yPred.device) throw new Error(`metric: targets on ${yTrue.device}, predictions on ${yPred.device}`);
        return (await yTrue.data()).reduce((a, v) => a + v, 0) / yTrue.size;
      };
      m.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy', meanLabel], device: 'cuda' });
      const xx = xOnCuda ? x.to('cuda') : x, yy = yOnCuda ? y.to('cuda') : y;
      const h = await m.fit(xx, yy, { epochs: 2, batchSize: 16, verbose: 0, seed: 6, validationSplit: 0.2 });
      const predicted = await m.predict(xx, { batchSize: 25 }).data();
      const evaluated = (await m.evaluate(xx, yy, { batchSize: 20 })) as number[];
      return { history: h.history, weights: weightsOf(m), predicted, evaluated };
    };
    const host = await run(false, false);
    for (const [xOnCuda, yOnCuda] of [[true, true], [true, false], [false, true]]) {
      const got = await run(xOnCuda, yOnCuda);
      expect(bitwiseEqual(got.weights, host.weights)).toBe(true);
      expect(got.history).toEqual(host.history);
      expect(bitwiseEqual([got.predicted], [host.predicted])).toBe(true);
      expect(got.evaluated).toEqual(host.evaluated);
    }
    // A model on the CPU refuses them, naming both devices.
    const cpu = tinyModel();
    cpu.compile({ optimizer: 'sgd', loss: 'sparseCategoricalCrossentropy', device: 'cpu' });
    await expect(cpu.fit(x.to('cuda'), y, { epochs: 1, verbose: 0 })).rejects.toThrow(ck.DeviceError);
    await expect(cpu.fit(x, y.to('cuda'), { epochs: 1, verbose: 0 })).rejects.toThrow(/target 0 is a cuda tensor but the model is on the cpu/);
    expect(() => cpu.predict(x.to('cuda'))).toThrow(/input 0 is a cuda tensor but the model is on the cpu/);
  });

  test('a GPU fit queues steps ahead: an abort in onBatchEnd stops it after those, each reported in order', async () => {
    const { x, labels } = tinyData(300, 8);
    const y = ck.tensor(labels, [labels.length]);
    const model = tinyModel();
    model.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy', device: 'cuda' });
    const controller = new AbortController();
    const batches: number[] = [];
    const h = await model.fit(x, y, {
      epochs: 5, batchSize: 10, verbose: 0, signal: controller.signal,
      callbacks: { onBatchEnd: (b) => { batches.push(b); if (b === 2) controller.abort(); } },
    });
    // 8 steps are queued behind the awaited one on CUDA (1 on the CPU): the 8 behind batch 2 run
    // and report, in order, and no more are queued.
    expect(batches).toEqual(Array.from({ length: 3 + 8 }, (_, i) => i));
    expect(h.history.loss).toHaveLength(1);
  });

  test('moving a trained model between devices keeps its weights; it keeps training where it is', async () => {
    const { x, labels } = tinyData(30, 5);
    const y = ck.tensor(labels, [30]);
    const model = tinyModel();
    model.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy', device: 'cuda' });
    await model.fit(x, y, { epochs: 1, batchSize: 10, verbose: 0 });
    const onGpu = weightsOf(model);
    model.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy', device: 'cpu' });
    expect(model.device).toBe('cpu');
    weightsOf(model).forEach((w, k) => expect(maxAbsDiff(w, onGpu[k])).toBe(0));
    model.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy', device: 'cuda' });
    weightsOf(model).forEach((w, k) => expect(maxAbsDiff(w, onGpu[k])).toBe(0));
    const h = await model.fit(x, y, { epochs: 2, batchSize: 10, verbose: 0 });
    expect(h.history.loss.every(Number.isFinite)).toBe(true);
  });

  test('depthwise and grouped convolutions, zero padding, up-sampling (both modes), Lp pooling: as on the CPU', async () => {
    const { x, labels } = tinyData(30, 13);
    const build = () => ck.sequential([
      ck.layers.input({ shape: [8, 8, 1] }),
      ck.layers.zeroPadding2d({ padding: [[1, 0], [2, 1]] }),
      ck.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu' }),
      ck.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same' }),
      ck.layers.conv2d({ filters: 6, kernelSize: 3, groups: 2, strides: 2, activation: 'relu' }),
      ck.layers.upSampling2d({ size: [2, 2], interpolation: 'bilinear' }),
      ck.layers.lpPooling2d({ poolSize: 2, p: 3 }),
      ck.layers.upSampling2d({ size: [2, 1] }),
      ck.layers.flatten(),
      ck.layers.dense({ units: 3, activation: 'softmax' }),
    ]);
    const { cpu, gpu, hc, hg } = await trainOnBoth(build, { optimizer: 'sgd', loss: 'sparseCategoricalCrossentropy' },
      x, ck.tensor(labels, [30]), { epochs: 2, batchSize: 10, seed: 5 });
    expect(gpu.device).toBe('cuda');
    expectClose('loss', hg.loss, hc.loss, 1e-6, 1e-4);
    weightsOf(cpu).forEach((w, k) => expectClose(`weight ${k}`, weightsOf(gpu)[k], w, 1e-5, 1e-4));
  });

  test('bilinear up-sampling with half-pixel centres (forward and backward): trains as on the CPU', async () => {
    const { x, labels } = tinyData(30, 17);
    const build = () => ck.sequential([
      ck.layers.input({ shape: [8, 8, 1] }),
      ck.layers.conv2d({ filters: 3, kernelSize: 3, strides: 2, activation: 'relu' }),
      ck.layers.upSampling2d({ size: [3, 2], interpolation: 'bilinear', halfPixelCenters: true }),
      ck.layers.conv2d({ filters: 2, kernelSize: 3 }),
      ck.layers.flatten(),
      ck.layers.dense({ units: 3, activation: 'softmax' }),
    ]);
    const { cpu, gpu, hc, hg } = await trainOnBoth(build, { optimizer: 'sgd', loss: 'sparseCategoricalCrossentropy' },
      x, ck.tensor(labels, [30]), { epochs: 2, batchSize: 10, seed: 5 });
    expect(gpu.device).toBe('cuda');
    expectClose('loss', hg.loss, hc.loss, 1e-6, 1e-4);
    weightsOf(cpu).forEach((w, k) => expectClose(`weight ${k}`, weightsOf(gpu)[k], w, 1e-5, 1e-4));
  });

  test('concatenated branches (a value read twice): trains as on the CPU; \'auto\' picks CUDA', async () => {
    const n = 24;
    const x = ck.tensor(randomArray(n * 6, 31, -1, 1), [n, 6]);
    const y = ck.tensor(randomArray(n * 2, 32), [n, 2]);
    const build = () => {
      const input = ck.input({ shape: [6] });
      const a = ck.layers.dense({ units: 3, activation: 'tanh' }).apply(input) as ck.SymbolicTensor;
      const b = ck.layers.dense({ units: 2 }).apply(input) as ck.SymbolicTensor;
      const joined = ck.layers.concatenate().apply([a, b, a]) as ck.SymbolicTensor;
      return ck.model({ inputs: input, outputs: ck.layers.dense({ units: 2 }).apply(joined) as ck.SymbolicTensor });
    };
    const { cpu, gpu, hc, hg } = await trainOnBoth(build, { optimizer: 'sgd', loss: 'meanSquaredError' }, x, y,
      { epochs: 3, batchSize: 8, seed: 3 });
    expectClose('loss', hg.loss, hc.loss, 1e-6, 1e-4);
    weightsOf(cpu).forEach((w, k) => expectClose(`weight ${k}`, weightsOf(gpu)[k], w, 1e-6, 1e-4));
    const auto = build();
    auto.compile({ optimizer: 'sgd', loss: 'meanSquaredError', device: 'auto' });
    expect(auto.device).toBe('cuda');
  });

  test('a squeeze-and-excitation block (a gate broadcast over space, both orders): trains and predicts as on the CPU', async () => {
    const n = 12;
    const x = ck.tensor(randomArray(n * 5 * 5 * 3, 33, -1, 1), [n, 5, 5, 3]);
    const y = oneHot(Float32Array.from({ length: n }, (_, i) => i % 3), 3);
    const build = () => {
      const input = ck.input({ shape: [5, 5, 3] });
      const image = ck.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(input) as ck.SymbolicTensor;
      const squeezed = ck.layers.globalAveragePooling2d({}).apply(image) as ck.SymbolicTensor;
      const gate = ck.layers.dense({ units: 6, activation: 'sigmoid' }).apply(squeezed) as ck.SymbolicTensor;
      const gate4 = ck.layers.reshape({ targetShape: [1, 1, 6] }).apply(gate) as ck.SymbolicTensor;
      const once = ck.layers.multiply().apply([image, gate]) as ck.SymbolicTensor;
      const twice = ck.layers.multiply().apply([gate4, once]) as ck.SymbolicTensor;
      const pooled = ck.layers.globalAveragePooling2d({}).apply(twice) as ck.SymbolicTensor;
      return ck.model({ inputs: input, outputs: ck.layers.dense({ units: 3, activation: 'softmax' }).apply(pooled) as ck.SymbolicTensor });
    };
    const { cpu, gpu, hc, hg } = await trainOnBoth(build, { optimizer: 'sgd', loss: 'categoricalCrossentropy' }, x, y,
      { epochs: 3, batchSize: 6, seed: 4 });
    expectClose('loss', hg.loss, hc.loss, 1e-6, 1e-4);
    weightsOf(cpu).forEach((w, k) => expectClose(`weight ${k}`, weightsOf(gpu)[k], w, 1e-6, 1e-4));
    expectClose('predictions', gpu.predict(x).dataSync(), cpu.predict(x).dataSync(), 1e-6, 1e-4);
  });
});

withoutCuda(`models without CUDA${cuda.available ? ` (skipped: CUDA is available here, on ${cuda.devices.map((d) => d.name).join(', ')})` : ''}`, () => {
  test('compile({ device: \'cuda\' }) throws a DeviceError with the reason; \'auto\' and the default run on the CPU', () => {
    const model = tinyModel();
    let error: unknown = null;
    try {
      model.compile({ optimizer: 'sgd', loss: 'categoricalCrossentropy', device: 'cuda' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ck.DeviceError);
    expect((error as Error).message).toContain(cuda.reason!);
    model.compile({ optimizer: 'sgd', loss: 'categoricalCrossentropy', device: 'auto' });
    expect(model.device).toBe('cpu');
    model.compile({ optimizer: 'sgd', loss: 'categoricalCrossentropy' });
    expect(model.device).toBe('cpu');
  });
});
