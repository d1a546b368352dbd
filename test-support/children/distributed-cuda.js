// One rank of a job for test/distributed.cuda.test.ts (started by mpirun, with the CUDA addon:
// a GPU's, or the emulator's through CONVKIT_ADDON): data-parallel fits of models compiled onto
// CUDA, whose gradients (and with syncBatchNorm the batch norms' statistics) go through host
// memory, and a fitDataset of its shards, then, on rank 0, the same fits in one process on CUDA;
// writes every epoch's weights into DIR/rank<r>.json (argv[2]).
// usage: node distributed-cuda.js DIR
'use strict';
const fs = require('fs');
const ck = require('../../dist');

const dir = process.argv[2];

// 25 examples of 6x6 images in 3 classes, the same on every rank: a stripe whose orientation is
// the class, plus noise from a fixed LCG. Batches of 8, the last of one row, which leaves rank 0
// a step without rows (Adam's bias correction must still reach its GPU).
function stripeArrays(n, side = 6) {
  let state = 12345;
  const noise = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32) - 0.5;
  const x = new Float32Array(n * side * side);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    y[i] = c;
    for (let p = 0; p < side * side; p++) {
      const [r, q] = [Math.floor(p / side), p % side];
      const on = c === 0 ? r === 2 : c === 1 ? q === 2 : r === q;
      x[i * side * side + p] = (on ? 1 : 0) + 0.3 * noise();
    }
  }
  return { x, y };
}

function stripes(n) {
  const { x, y } = stripeArrays(n);
  return { x: ck.tensor(x, [n, 6, 6, 1]), y: ck.tensor(y, [n]) };
}

// Batches of the rows [lo, hi) of each global batch of `global` rows starting at 0, global, ...:
// rank r's shard for fitDataset (lo = 4r, hi = lo + 4 of 8), or one process's global batches.
function batches(n, global, lo, hi) {
  const { x, y } = stripeArrays(n);
  const out = [];
  for (let start = 0; start < n; start += global) {
    const a = Math.min(n, start + lo), b = Math.min(n, start + hi);
    if (b > a) out.push({ xs: ck.tensor(x.slice(a * 36, b * 36), [b - a, 6, 6, 1]), ys: ck.tensor(y.slice(a, b), [b - a]) });
  }
  return ck.data.array(out);
}

// Rank 1 starts from other weights, which rank 0's replace.
function cnn(initSeed, batchNorm, dropout = true) {
  ck.setSeed(initSeed);
  const model = ck.sequential([
    // No bias before a batch norm: its gradient is zero but for rounding, which Adam would
    // magnify into steps that differ from one process's.
    ck.layers.conv2d({ inputShape: [6, 6, 1], filters: 4, kernelSize: 3, padding: 'same', activation: batchNorm ? 'linear' : 'relu', useBias: !batchNorm }),
    ...(batchNorm ? [ck.layers.batchNormalization(), ck.layers.activation({ activation: 'relu' })] : []),
    ck.layers.maxPooling2d({ poolSize: 2 }),
    ck.layers.flatten(),
    ck.layers.dense({ units: 8, activation: 'relu', useBias: !batchNorm }),
    // each rank draws the masks of its rows' places in the global batch, as one process does
    ...(dropout ? [ck.layers.dropout({ rate: 0.25 })] : []),
    ...(batchNorm ? [ck.layers.batchNormalization()] : []),
    ck.layers.dense({ units: 3, activation: 'softmax' }),
  ]);
  model.compile({ optimizer: ck.optimizers.adam({ learningRate: 0.02 }), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'], device: 'cuda' });
  return model;
}

const weightsOf = (model) => model.getWeights().map((w) => Array.from(w.dataSync()));

async function train(initSeed, batchNorm, options) {
  const { x, y } = stripes(25);
  const model = cnn(initSeed, batchNorm);
  const epochs = [];
  const history = await model.fit(x, y, { batchSize: 8, epochs: 2, seed: 7, verbose: 0, ...options, callbacks: [{
    onEpochEnd: async () => { epochs.push(weightsOf(model)); },
  }] });
  return { epochs, loss: history.history.loss, iterations: await model.net.iterations() };
}

// fitDataset's ranks draw independent dropout masks: a model without dropout equals one process.
async function trainDataset(initSeed, dataset, options) {
  const model = cnn(initSeed, true, false);
  const epochs = [];
  const history = await model.fitDataset(dataset, { epochs: 2, verbose: 0, ...options, callbacks: [{
    onEpochEnd: async () => { epochs.push(weightsOf(model)); },
  }] });
  return { epochs, loss: history.history.loss, iterations: await model.net.iterations() };
}

(async () => {
  const comm = await ck.distributed.init({ timeoutMs: 120000 });
  const initSeed = comm.rank === 0 ? 1 : 2;
  const report = {
    rank: comm.rank,
    plain: await train(initSeed, false, { distributed: comm }),
    synced: await train(initSeed, true, { distributed: comm, syncBatchNorm: true }),
    unsynced: await train(initSeed, true, { distributed: comm }),
    // 4 rows of each global batch of 8 per rank: rank 1's shard ends a step before rank 0's
    dataset: await trainDataset(initSeed, batches(25, 8, 4 * comm.rank, 4 * comm.rank + 4), { distributed: comm, syncBatchNorm: true }),
  };
  if (comm.rank === 0) {
    report.plainAlone = await train(1, false, {});
    report.syncedAlone = await train(1, true, {});
    report.datasetAlone = await trainDataset(1, batches(25, 8, 0, 8), {});
  }
  fs.writeFileSync(`${dir}/rank${comm.rank}.json`, JSON.stringify(report));
})().catch((e) => {
  console.error(e.stack || e);
  process.exit(1);
});
