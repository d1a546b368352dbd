// One rank of a job for test/distributed-buckets.test.ts (started by mpirun): a data-parallel fit
// whose gradients are summed in buckets of bucketCapMb (argv[4]), writing what it saw into
// DIR/rank<r>.json (argv[5]).
// usage: node distributed-buckets.js fit N CAP DIR          (N examples, 2 epochs; every epoch's weights)
//        node distributed-buckets.js fault callback|memory CAP DIR   (the last rank fails mid-fit)
'use strict';
const fs = require('fs');
const ck = require('../../dist');

const [scenario, arg, cap, dir] = process.argv.slice(2);
const bucketCapMb = cap === 'Infinity' ? Infinity : Number(cap);

// N examples of side x side images in 3 classes, the same on every rank: a stripe whose
// orientation is the class, plus noise from a fixed LCG.
function stripes(n, side = 8) {
  let state = 12345;
  const noise = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32) - 0.5;
  const pixels = side * side;
  const x = new Float32Array(n * pixels);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    y[i] = c;
    for (let p = 0; p < pixels; p++) {
      const [r, q] = [Math.floor(p / side), p % side];
      const on = c === 0 ? r === 3 : c === 1 ? q === 3 : r === q;
      x[i * pixels + p] = (on ? 1 : 0) + 0.3 * noise();
    }
  }
  return { x: ck.tensor(x, [n, side, side, 1]), y: ck.tensor(y, [n]) };
}

// Four layers with weights of 40 to 438 floats, so that small caps give several buckets.
function cnn(initSeed, side = 8, filters = 4) {
  ck.setSeed(initSeed);
  const model = ck.sequential([
    ck.layers.conv2d({ inputShape: [side, side, 1], filters, kernelSize: 3, activation: 'relu', padding: 'same' }),
    ck.layers.conv2d({ filters: 6, kernelSize: 3, activation: 'relu' }),
    ck.layers.maxPooling2d({ poolSize: 2 }),
    ck.layers.flatten(),
    ck.layers.dense({ units: 8, activation: 'relu' }),
    ck.layers.dense({ units: 3, activation: 'softmax' }),
  ]);
  model.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.1, momentum: 0.9 }), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  return model;
}

const weightsOf = (model) => model.getWeights().map((w) => Array.from(w.dataSync()));
const write = (comm, o) => fs.writeFileSync(`${dir}/rank${comm.rank}.json`, JSON.stringify({ rank: comm.rank, ...o }));

const scenarios = {
  // Rank 1.. start from other weights, which rank 0's replace.
  async fit() {
    const comm = await ck.distributed.init({ timeoutMs: 60000, bucketCapMb });
    const { x, y } = stripes(Number(arg));
    const model = cnn(comm.rank === 0 ? 1 : 2);
    const epochs = [];
    await model.fit(x, y, { batchSize: 8, epochs: 2, seed: 7, verbose: 0, distributed: comm, callbacks: [{
      onEpochEnd: async (epoch, logs) => { epochs.push({ logs, weights: weightsOf(model) }); },
    }] });
    write(comm, { epochs, iterations: await model.net.iterations() });
  },
  // As test-support/children/distributed.js's fault scenario, with buckets: 'callback': the last
  // rank's onBatchBegin throws before batch 2 (steps 0-2 were queued and apply; the others stop
  // at step 3's opening status exchange, skipping its buckets); 'memory': its first step runs out
  // of memory in the forward pass (it then hands over every bucket at the step's end, as the
  // others did during backward, and says so in the closing exchange). timeoutMs is 10 minutes: a
  // rank left waiting would outlast the test's limit on the job.
  async fault() {
    const comm = await ck.distributed.init({ timeoutMs: 600000, bucketCapMb });
    const failing = comm.rank === comm.size - 1;
    const memory = arg === 'memory';
    const batchSize = memory ? 1024 : 8;
    const { x, y } = memory ? stripes(batchSize, 64) : stripes(40);
    const make = () => cnn(1, memory ? 64 : 8, memory ? 16 : 4);
    const model = make();
    const start = weightsOf(model);
    const callbacks = [{
      onBatchBegin: async (batch) => { if (failing && arg === 'callback' && batch === 2) throw new Error(`bad batch on rank ${comm.rank}`); },
    }];
    let limited = false;
    if (failing && memory) {
      // 32 MiB above what the process has mapped now: the step's buffers (several of 256 MiB) do not fit
      const mapped = Number(/VmSize:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
      require('child_process').execFileSync('prlimit', [`--pid=${process.pid}`, `--as=${mapped + 32 * 2 ** 20}:unlimited`]);
      limited = true;
    }
    let error;
    try {
      await model.fit(x, y, { batchSize, epochs: 1, shuffle: false, seed: 7, verbose: 0, distributed: comm, callbacks });
    } catch (e) {
      error = { name: e.name, isDistributedError: e instanceof ck.DistributedError, message: e.message };
    }
    if (limited) require('child_process').execFileSync('prlimit', [`--pid=${process.pid}`, '--as=unlimited:unlimited']);
    const after = weightsOf(model);
    const iterations = await model.net.iterations();
    let applied = start;
    if (iterations > 0) {
      // the same steps again, on the same communicator, from the same start
      const first = stripes(iterations * batchSize);
      const again = make();
      await again.fit(first.x, first.y, { batchSize, epochs: 1, shuffle: false, seed: 7, verbose: 0, distributed: comm });
      applied = weightsOf(again);
    }
    write(comm, { error, iterations, sameAsApplied: JSON.stringify(after) === JSON.stringify(applied), moved: JSON.stringify(after) !== JSON.stringify(start) });
  },
};

scenarios[scenario]().catch((e) => {
  console.error(e.stack || e);
  process.exit(1);
});
