// One rank of a job for test/distributed-ordered.test.ts (started by mpirun): a data-parallel fit
// whose communicator sums in rank order (ck.distributed.init's orderedSum), then, on rank 0, the
// same fit in one process with gradientSlices equal to the number of ranks, and without it;
// writes every epoch's weights into DIR/rank<r>.json (argv[3]).
// usage: node distributed-ordered.js fit DIR
//        node distributed-ordered.js disagree DIR   (rank 0 sums in rank order, the others not)
'use strict';
const fs = require('fs');
const ck = require('../../dist');

const [scenario, dir] = process.argv.slice(2);

// 41 examples of 8x8 images in 3 classes, the same on every rank: a stripe whose orientation is
// the class, plus noise from a fixed LCG. Batches of 7 split unevenly over 2 and 4 ranks.
function stripes(n, side = 8) {
  let state = 12345;
  const noise = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32) - 0.5;
  const x = new Float32Array(n * side * side);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    y[i] = c;
    for (let p = 0; p < side * side; p++) {
      const [r, q] = [Math.floor(p / side), p % side];
      const on = c === 0 ? r === 3 : c === 1 ? q === 3 : r === q;
      x[i * side * side + p] = (on ? 1 : 0) + 0.3 * noise();
    }
  }
  return { x: ck.tensor(x, [n, side, side, 1]), y: ck.tensor(y, [n]) };
}

// Convolutions, pooling, dropout and dense layers: every kind of gradient the executor sums
// over a batch's rows (no batch norm: its moving statistics are kept otherwise on ranks).
function cnn() {
  ck.setSeed(3);
  const model = ck.sequential([
    ck.layers.conv2d({ inputShape: [8, 8, 1], filters: 4, kernelSize: 3, activation: 'relu', padding: 'same' }),
    ck.layers.conv2d({ filters: 6, kernelSize: 3, activation: 'relu' }),
    ck.layers.maxPooling2d({ poolSize: 2 }),
    ck.layers.flatten(),
    ck.layers.dense({ units: 16, activation: 'relu' }),
    ck.layers.dropout({ rate: 0.25 }),
    ck.layers.dense({ units: 3, activation: 'softmax' }),
  ]);
  model.compile({ optimizer: ck.optimizers.adam({ learningRate: 0.01 }), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  return model;
}

const weightsOf = (model) => model.getWeights().map((w) => Array.from(w.dataSync()));

async function train(options) {
  const { x, y } = stripes(41);
  const model = cnn();
  const epochs = [];
  await model.fit(x, y, { batchSize: 7, epochs: 2, seed: 7, verbose: 0, ...options, callbacks: [{
    onEpochEnd: async () => { epochs.push(weightsOf(model)); },
  }] });
  return epochs;
}

const scenarios = {
  async fit() {
    // A bucket per layer: each bucket's floats are gathered and added in rank order.
    const comm = await ck.distributed.init({ timeoutMs: 60000, bucketCapMb: 1e-6, orderedSum: true });
    const report = { ranks: await train({ distributed: comm }) };
    if (comm.rank === 0) {
      report.slices = await train({ gradientSlices: comm.size });
      report.plain = await train({});
    }
    return { comm, report };
  },
  async disagree() {
    const rank = Number(process.env.OMPI_COMM_WORLD_RANK);
    const comm = await ck.distributed.init({ timeoutMs: 60000, orderedSum: rank === 0 });
    try {
      await train({ distributed: comm });
      return { comm, report: {} };
    } catch (e) {
      return { comm, report: { error: { name: e.name, message: e.message } } };
    }
  },
};

scenarios[scenario]().then(({ comm, report }) => {
  fs.writeFileSync(`${dir}/rank${comm.rank}.json`, JSON.stringify({ rank: comm.rank, ...report }));
}).catch((e) => {
  console.error(e.stack || e);
  process.exit(1);
});
