// One rank of a job for test/distributed-syncbn.test.ts (started by mpirun): data-parallel fits
// of a model with batch norms, with and without syncBatchNorm, and one process's fit on the same
// global batches, writing what each gave into DIR/rank<r>.json.
// usage: node distributed-syncbn.js fit N DIR       (N examples, batch 8; fit and fitDataset)
//        node distributed-syncbn.js fault DIR       (the last rank's first step runs out of memory)
'use strict';
const fs = require('fs');
const ck = require('../../dist');

const scenario = process.argv[2];
const dir = process.argv[process.argv.length - 1];

// N examples of 6x6x2 images in 3 classes, the same on every rank, from a fixed LCG; channel 1
// is offset so that the batch norms' statistics differ from rank to rank.
function data(n, side = 6) {
  let state = 987;
  const noise = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32) - 0.5;
  const x = new Float32Array(n * side * side * 2);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    y[i] = c;
    for (let p = 0; p < side * side; p++) {
      x[(i * side * side + p) * 2] = (p % 3 === c ? 1 : 0) + noise();
      x[(i * side * side + p) * 2 + 1] = 3 + (i % 5) + 2 * noise();
    }
  }
  return { x, y, side };
}

// A batch norm after a convolution (its ReLU fused into it) and one after a dense layer.
function model(side = 6) {
  ck.setSeed(5);
  const m = ck.sequential([
    ck.layers.conv2d({ inputShape: [side, side, 2], filters: 4, kernelSize: 3, useBias: false }),
    ck.layers.batchNormalization({ momentum: 0.8 }),
    ck.layers.activation({ activation: 'relu' }),
    ck.layers.flatten(),
    ck.layers.dense({ units: 6 }),
    ck.layers.batchNormalization({ momentum: 0.7, scale: false }),
    ck.layers.dense({ units: 3, activation: 'softmax' }),
  ]);
  m.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.05, momentum: 0.9 }), loss: 'sparseCategoricalCrossentropy' });
  return m;
}

const weightsOf = (m) => m.getWeights().map((w) => Array.from(w.dataSync()));
const write = (comm, o) => fs.writeFileSync(`${dir}/rank${comm.rank}.json`, JSON.stringify({ rank: comm.rank, ...o }));

// This rank's shard of the examples, in batches of `batch` rows: rank r takes the batches
// r, r + size, ... of the examples' global batches of batch * size rows, so that step b of
// fitDataset trains global batch b.
function shard(d, comm, batch) {
  const px = d.side * d.side * 2;
  const xs = [], ys = [];
  const global = batch * comm.size;
  for (let start = 0; start < d.y.length; start += global) {
    const lo = Math.min(d.y.length, start + comm.rank * batch), hi = Math.min(d.y.length, lo + batch);
    if (hi > lo) {
      xs.push(ck.tensor(d.x.slice(lo * px, hi * px), [hi - lo, d.side, d.side, 2]));
      ys.push(ck.tensor(d.y.slice(lo, hi), [hi - lo]));
    }
  }
  return ck.data.array(xs.map((x, i) => ({ xs: x, ys: ys[i] })));
}

const scenarios = {
  async fit() {
    const n = Number(process.argv[3]);
    const comm = await ck.distributed.init({ timeoutMs: 60000, bucketCapMb: 1e-6 });
    const d = data(n);
    const x = ck.tensor(d.x, [n, d.side, d.side, 2]), y = ck.tensor(d.y, [n]);
    const opts = { batchSize: 8, epochs: 2, shuffle: false, verbose: 0 };
    const synced = model();
    const history = await synced.fit(x, y, { ...opts, distributed: comm, syncBatchNorm: true });
    const unsynced = model();
    await unsynced.fit(x, y, { ...opts, distributed: comm });
    // fitDataset: each rank 2 rows of each global batch of 2 * size rows
    const dataset = model();
    await dataset.fitDataset(shard(d, comm, 2), { epochs: 2, verbose: 0, distributed: comm, syncBatchNorm: true });
    const datasetAlone = model();
    const all = ck.data.array(Array.from({ length: Math.ceil(n / (2 * comm.size)) }, (_, b) => {
      const lo = b * 2 * comm.size, hi = Math.min(n, lo + 2 * comm.size), px = d.side * d.side * 2;
      return { xs: ck.tensor(d.x.slice(lo * px, hi * px), [hi - lo, d.side, d.side, 2]), ys: ck.tensor(d.y.slice(lo, hi), [hi - lo]) };
    }));
    await datasetAlone.fitDataset(all, { epochs: 2, verbose: 0 });
    const alone = model();
    const aloneHistory = await alone.fit(x, y, opts);
    write(comm, {
      synced: weightsOf(synced), unsynced: weightsOf(unsynced), alone: weightsOf(alone),
      dataset: weightsOf(dataset), datasetAlone: weightsOf(datasetAlone),
      loss: history.history.loss, aloneLoss: aloneHistory.history.loss,
      iterations: await synced.net.iterations(),
    });
  },
  // The last rank's first step runs out of memory (its address space capped 32 MiB above what it
  // has mapped, below the step's buffers) before its batch norms' first sum: it makes every sum
  // of the step with zeros at the step's end, then its buckets, as the others made them, and
  // says so in the closing exchange. timeoutMs is 10 minutes: a rank left waiting would outlast
  // the test's limit on the job.
  async fault() {
    const comm = await ck.distributed.init({ timeoutMs: 600000, bucketCapMb: 1e-6 });
    const n = 1024, side = 64;
    const d = data(n, side);
    const m = model(side);
    const failing = comm.rank === comm.size - 1;
    if (failing) {
      const mapped = Number(/VmSize:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
      require('child_process').execFileSync('prlimit', [`--pid=${process.pid}`, `--as=${mapped + 32 * 2 ** 20}:unlimited`]);
    }
    let error;
    try {
      await m.fit(ck.tensor(d.x, [n, side, side, 2]), ck.tensor(d.y, [n]),
        { batchSize: n, epochs: 1, shuffle: false, verbose: 0, distributed: comm, syncBatchNorm: true });
    } catch (e) {
      error = { name: e.name, isDistributedError: e instanceof ck.DistributedError, message: e.message };
    }
    if (failing) require('child_process').execFileSync('prlimit', [`--pid=${process.pid}`, '--as=unlimited:unlimited']);
    write(comm, { error, iterations: await m.net.iterations() });
  },
};

scenarios[scenario]().catch((e) => {
  console.error(e.stack || e);
  process.exit(1);
});
