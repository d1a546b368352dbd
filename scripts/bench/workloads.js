// docs/design.md's "Benchmark workloads", shared by the bench scripts: W1 (the seeds' MNIST CNN)
// and W2 (a CIFAR-shaped CNN), deterministic inputs, the median of a list of timings, and the
// training and inference rates measured through the public API on either device.
'use strict';
const ck = require('../../dist');

/** W1: the seeds' CNN on 28x28x1 (62,346 parameters). */
function w1() {
  return ck.sequential([
    ck.layers.input({ shape: [28, 28, 1] }),
    ck.layers.conv2d({ filters: 32, kernelSize: 5, activation: 'relu' }),
    ck.layers.maxPooling2d({ poolSize: 2 }),
    ck.layers.conv2d({ filters: 64, kernelSize: 5, activation: 'relu' }),
    ck.layers.maxPooling2d({ poolSize: 2 }),
    ck.layers.flatten(),
    ck.layers.dense({ units: 10, activation: 'softmax' }),
  ]);
}

/** W2: two blocks of two 3x3 'same' convolutions on 32x32x3. */
function w2() {
  const conv = (filters) => ck.layers.conv2d({ filters, kernelSize: 3, padding: 'same', activation: 'relu' });
  return ck.sequential([
    ck.layers.input({ shape: [32, 32, 3] }), conv(32), conv(32), ck.layers.maxPooling2d({ poolSize: 2 }),
    conv(64), conv(64), ck.layers.maxPooling2d({ poolSize: 2 }), ck.layers.flatten(),
    ck.layers.dense({ units: 10, activation: 'softmax' }),
  ]);
}

/** A tensor of `shape` filled from a seeded LCG in [0, 1). */
function random(shape, seed) {
  let s = seed >>> 0;
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
  return ck.tensor(data, shape);
}

const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Training images/s through model.fit (SGD lr 0.01, sparse labels) on `device`, the data held on
 * `dataOn` ('cuda': already on the GPU, as a PyTorch loop's tensors): the median epoch after a
 * warm-up epoch (which plans the buffers and, on CUDA, captures the step graphs).
 */
async function trainRate(make, shape, batch, n, { device = 'cpu', epochs = 4, dataOn = 'cpu' } = {}) {
  const model = make();
  model.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.01 }), loss: 'sparseCategoricalCrossentropy', device });
  const x = random([n, ...shape], 1).to(dataOn);
  const y = ck.tensor(Float32Array.from({ length: n }, (_, i) => i % 10), [n]).to(dataOn);
  const times = [];
  let t0 = 0n;
  await model.fit(x, y, {
    epochs, batchSize: batch, verbose: 0, seed: 1,
    callbacks: { onEpochBegin: () => { t0 = process.hrtime.bigint(); }, onEpochEnd: () => { times.push(Number(process.hrtime.bigint() - t0) / 1e9); } },
  });
  return n / median(times.slice(1));
}

/**
 * W1 inference images/s at `batch` over n images held on `dataOn`, the predictions read back to
 * the host: the median of 3 runs after a warm-up.
 */
async function inferRate(model, batch, n, { dataOn = 'cpu' } = {}) {
  const x = random([n, 28, 28, 1], 2).to(dataOn);
  await model.predict(x, { batchSize: batch }).data();  // warm-up (plans the buffers)
  const rates = [];
  for (let r = 0; r < 3; r++) {
    const t0 = process.hrtime.bigint();
    await model.predict(x, { batchSize: batch }).data();
    rates.push(n / (Number(process.hrtime.bigint() - t0) / 1e9));
  }
  return median(rates);
}

/** Median ms of a batch-1 predictOnBatch read back to the host, after `warm` untimed runs. */
async function latencyMs(model, { warm = 50, timed = 250 } = {}) {
  const x = random([1, 28, 28, 1], 3);
  const lat = [];
  for (let i = 0; i < warm + timed; i++) {
    const t0 = process.hrtime.bigint();
    await model.predictOnBatch(x).data();
    lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return median(lat.slice(warm));
}

module.exports = { w1, w2, random, median, trainRate, inferRate, latencyMs };
