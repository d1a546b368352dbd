// One rank of a job for test/distributed.test.ts (started by mpirun, or alone): runs a scenario
// and prints what it saw as one JSON line per rank.
// usage: node distributed.js collectives|throw|timeout|timeoutCaught|nolib
//        node distributed.js fit|reference N DIR [whole|batchnorm|dropout]   (a data-parallel fit of N
//          examples, or one process's; whole: one batch of all N per epoch and no seed;
//          batchnorm / dropout: the CNN with a batch norm / a dropout; ordered: no shuffling. Each rank writes its report to
//          DIR/rank<r>.json, as the launcher may interleave long lines of ranks)
//        node distributed.js fingerprint|refuse|stop|stall
//        node distributed.js fault callback|epochEnd|memory DIR   (a rank fails mid-fit)
//        node distributed.js dataset N DIR [throw]   (fitDataset: each rank reads its own shard;
//          throw: the last rank's dataset throws before its third batch)
'use strict';
const fs = require('fs');
const ck = require('../../dist');

const report = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const scenario = process.argv[2];


// The last rank lives on (10 minutes) without joining any collective; true on that rank.
async function lastRankStaysAway(comm) {
  if (comm.rank !== comm.size - 1) return false;
  await new Promise((resolve) => setTimeout(resolve, 600000));
  return true;
}
// N examples of side x side (8) images in 3 classes, the same on every rank: a stripe whose
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

// The CNN the fit scenarios train: conv, pool, dense, a batch norm when argv[5] is 'batchnorm'
// and a dropout when it is 'dropout'. `initSeed` sets its initial weights.
function smallCnn(initSeed, filters = 4, side = 8) {
  ck.setSeed(initSeed);
  const norm = process.argv[5] === 'batchnorm' ? [ck.layers.batchNormalization()] : [];
  const dropout = process.argv[5] === 'dropout' ? [ck.layers.dropout({ rate: 0.4 })] : [];
  const model = ck.sequential([
    ck.layers.conv2d({ inputShape: [side, side, 1], filters, kernelSize: 3, activation: 'relu' }),
    ...norm,
    ck.layers.maxPooling2d({ poolSize: 2 }),
    ck.layers.flatten(),
    ...dropout,
    ck.layers.dense({ units: 3, activation: 'softmax' }),
  ]);
  model.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.1, momentum: 0.9 }), loss: 'sparseCategoricalCrossentropy',
    metrics: ['accuracy', ck.metrics.sparseTopKCategoricalAccuracy({ k: 2, name: 'top2' })] });
  return model;
}

const weightsOf = (model) => model.getWeights().map((w) => Array.from(w.dataSync()));
const FIT = { batchSize: 8, epochs: 2, seed: 7 };
// argv[5] 'whole': every epoch one batch of all the examples, in an order drawn from no seed
// (which one process's result does not depend on, but the ranks' shares must come from one).
const fitArgs = (n) => (process.argv[5] === 'whole' ? { batchSize: n, seed: undefined }
  : process.argv[5] === 'ordered' ? { shuffle: false } : {});

// fit's weights and logs after every epoch and its step count, into DIR/rank<rank>.json; with a
// batch norm also the weights after each epoch's last step, before the epoch's end reduces them.
async function fitAndReport(model, x, y, args, rank) {
  const epochs = [];
  let lastStep;
  await model.fit(x, y, { ...FIT, ...args, callbacks: [{
    onBatchEnd: async () => { if (process.argv[5] === 'batchnorm') lastStep = weightsOf(model); },
    onEpochEnd: async (epoch, logs) => { epochs.push({ logs, weights: weightsOf(model), lastStep }); },
  }] });
  const result = { rank, epochs, iterations: await model.net.iterations() };
  fs.writeFileSync(`${process.argv[4]}/rank${rank}.json`, JSON.stringify(result));
}

const scenarios = {
  // A data-parallel fit of N examples (argv[3]) on 2 ranks: rank 1 starts from other weights and
  // with a step already taken (other optimizer state), which rank 0's must replace.
  async fit() {
    const comm = await ck.distributed.init({ timeoutMs: 20000 });
    const n = Number(process.argv[3]);
    const { x, y } = stripes(n);
    const model = smallCnn(comm.rank === 0 ? 1 : 2);
    if (comm.rank > 0) await model.trainOnBatch(x, y);
    await fitAndReport(model, x, y, { distributed: comm, verbose: 2, ...fitArgs(n) }, comm.rank);
  },
  // The same fit of one process on the global batches, from rank 0's weights.
  async reference() {
    const n = Number(process.argv[3]);
    const { x, y } = stripes(n);
    await fitAndReport(smallCnn(1), x, y, { verbose: 0, ...fitArgs(n) }, 0);
  },
  // The last rank's callback stops training in the middle of the first of 3 epochs: every rank
  // ends that epoch (its steps need every rank) and stops after it.
  async stop() {
    const comm = await ck.distributed.init({ timeoutMs: 20000 });
    const { x, y } = stripes(40);
    const model = smallCnn(1);
    const onBatchEnd = async (batch) => {
      if (comm.rank === comm.size - 1 && batch === 1) model.stopTraining = true;
    };
    const history = await model.fit(x, y, { ...FIT, epochs: 3, verbose: 0, distributed: comm, callbacks: [{ onBatchEnd }] });
    report({ rank: comm.rank, epochs: history.epoch, iterations: await model.net.iterations() });
  },
  // The last rank's JS stalls (10 minutes) after its second step, so its later steps never join
  // the others' gradient allreduce: their fit fails after timeoutMs, ending the job.
  async stall() {
    const comm = await ck.distributed.init({ timeoutMs: 5000 });
    const { x, y } = stripes(40);
    const model = smallCnn(1);
    const onBatchEnd = async (batch) => {
      if (comm.rank === comm.size - 1 && batch === 1) await new Promise((resolve) => setTimeout(resolve, 600000));
    };
    await model.fit(x, y, { ...FIT, verbose: 0, distributed: comm, callbacks: [{ onBatchEnd }] });
  },
  // Ranks that call fit differently: every rank throws the same DistributedError, and the job
  // goes on (the third fit agrees and trains).
  async fingerprint() {
    const comm = await ck.distributed.init({ timeoutMs: 20000 });
    const last = comm.rank === comm.size - 1;
    const caught = async (model, n, args) => {
      const { x, y } = stripes(n);
      try {
        await model.fit(x, y, { ...FIT, verbose: 0, distributed: comm, ...args });
        return 'trained';
      } catch (e) {
        return { name: e.name, isDistributedError: e instanceof ck.DistributedError, message: e.message };
      }
    };
    const model = smallCnn(1);
    const batch = await caught(model, last ? 39 : 40, { batchSize: last ? 6 : 8 });
    const layout = await caught(smallCnn(1, last ? 5 : 4), 40, {});
    const seed = await caught(model, 40, { seed: last ? undefined : 7 });
    const agreed = await caught(model, 40, {});
    report({ rank: comm.rank, batch, layout, seed, agreed });
  },
  // The last rank's fit, then fitDataset, rejects its own arguments (epochs 0) while the others'
  // are fine: every rank throws at the fingerprint exchange, the others a DistributedError with
  // its message, long before timeoutMs (10 minutes, beyond the test's limit on the job); then
  // they all train together.
  async refuse() {
    const comm = await ck.distributed.init({ timeoutMs: 600000 });
    const last = comm.rank === comm.size - 1;
    const { x, y } = stripes(40);
    const caught = async (run) => {
      try {
        await run();
        return 'trained';
      } catch (e) {
        return { name: e.name, isDistributedError: e instanceof ck.DistributedError, message: e.message };
      }
    };
    const model = smallCnn(1);
    const fit = await caught(() => model.fit(x, y, { ...FIT, verbose: 0, distributed: comm, epochs: last ? 0 : 2 }));
    const ds = ck.data.array([{ xs: x, ys: y }]);
    const fitDataset = await caught(() => model.fitDataset(ds, { verbose: 0, distributed: comm, epochs: last ? 0 : 1 }));
    const agreed = await caught(() => model.fit(x, y, { ...FIT, verbose: 0, distributed: comm }));
    report({ rank: comm.rank, fit, fitDataset, agreed });
  },
  // fitDataset on the ranks: of each global batch of 8 of N examples (argv[3]), rank r's dataset
  // gives rows 8b + (8 / size) r onwards, 8 / size of them (a last partial batch leaves the later
  // ranks without rows, their datasets ended). Rank 1 starts from other weights and state.
  async dataset() {
    const comm = await ck.distributed.init({ timeoutMs: 600000 });
    const n = Number(process.argv[3]);
    const { x, y } = stripes(n);
    const [xv, yv] = [x.dataSync(), y.dataSync()];
    const per = 8 / comm.size;
    const batches = [];
    for (let start = comm.rank * per; start < n; start += 8) {
      const end = Math.min(n, start + per);
      batches.push({ xs: ck.tensor(xv.slice(start * 64, end * 64), [end - start, 8, 8, 1]), ys: ck.tensor(yv.slice(start, end), [end - start]) });
    }
    const failing = process.argv[5] === 'throw' && comm.rank === comm.size - 1;
    const dataset = ck.data.generator(function* () {
      for (const [b, batch] of batches.entries()) {
        if (failing && b === 2) throw new ck.FormatError(`a corrupt image in rank ${comm.rank}'s shard`);
        yield batch;
      }
    });
    const model = smallCnn(comm.rank === 0 ? 1 : 2);
    if (comm.rank > 0) await model.trainOnBatch(x, y);
    const epochs = [];
    let error;
    try {
      await model.fitDataset(dataset, { epochs: 2, verbose: 2, distributed: comm, callbacks: [{
        onEpochEnd: async (epoch, logs) => { epochs.push({ logs, weights: weightsOf(model) }); },
      }] });
    } catch (e) {
      error = { name: e.name, isDistributedError: e instanceof ck.DistributedError, message: e.message };
    }
    const result = { rank: comm.rank, epochs, error, iterations: await model.net.iterations(), weights: weightsOf(model) };
    fs.writeFileSync(`${process.argv[4]}/rank${comm.rank}.json`, JSON.stringify(result));
  },

  // A rank fails in the middle of a fit of 40 examples in 5 global batches of 8, shuffle off
  // (argv[3]): 'callback': the last rank's onBatchBegin throws before batch 2; 'epochEnd': its
  // onBatchEnd throws after the epoch's last batch (the others are then at the epoch's end);
  // 'memory': its first step runs out of memory (64x64 images and a global batch of 1024 under an
  // address-space limit it sets itself). Every rank reports the error its fit threw, its weights
  // and step count after it, and then, on the same communicator, the weights of a fit from the
  // same start over exactly the steps that were applied (none: the start's). timeoutMs is 10
  // minutes: a rank left waiting for the others would outlast the test's limit on the job.
  async fault() {
    const comm = await ck.distributed.init({ timeoutMs: 600000 });
    const how = process.argv[3];
    const failing = comm.rank === comm.size - 1;
    const memory = how === 'memory';
    const batchSize = memory ? 1024 : 8;
    const { x, y } = memory ? stripes(batchSize, 64) : stripes(40);
    const make = () => smallCnn(1, memory ? 16 : 4, memory ? 64 : 8);
    const model = make();
    const start = weightsOf(model);
    const callbacks = [{
      onBatchBegin: async (batch) => { if (failing && how === 'callback' && batch === 2) throw new Error(`bad batch on rank ${comm.rank}`); },
      onBatchEnd: async (batch) => { if (failing && how === 'epochEnd' && batch === 4) throw new ck.ValueError(`rank ${comm.rank} rejects the epoch`); },
    }];
    let limited = false;
    if (failing && memory) {
      // 32 MiB above what the process has mapped now: the step's buffers (several of 126 MiB) do not fit
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
      // the first rows of the same examples (the noise is drawn row by row)
      const first = memory ? stripes(iterations * batchSize, 64) : stripes(iterations * batchSize);
      const again = make();
      await again.fit(first.x, first.y, { batchSize, epochs: 1, shuffle: false, seed: 7, verbose: 0, distributed: comm });
      applied = weightsOf(again);
    }
    fs.writeFileSync(`${process.argv[4]}/rank${comm.rank}.json`, JSON.stringify({ rank: comm.rank, error, iterations, sameAsApplied: JSON.stringify(after) === JSON.stringify(applied), moved: JSON.stringify(after) !== JSON.stringify(start) }));
  },

  // allreduce and broadcast of values every rank can predict, then a barrier
  async collectives() {
    const comm = await ck.distributed.init({ timeoutMs: 60000 });
    const r = comm.rank;
    const small = ck.tensor([1 * (r + 1), -2 * (r + 1), 0.5 * (r + 1)], [3]);
    const n = 100003;  // more than one segment of MPI's pipelined algorithms
    const big = ck.tensor(Float32Array.from({ length: n }, (_, i) => (i % 7) + r * 1000), [n]);
    const sum = await comm.allreduce(small);
    const bigSum = await comm.allreduce(big);
    // a tensor whose op is still running when the allreduce is called: 9 * 16 ones summed per output
    const queued = ck.ops.conv2d(ck.fill([8, 64, 64, 16], 1), ck.fill([3, 3, 16, 16], 1), { padding: 'valid' });
    const queuedSum = await comm.allreduce(queued);
    const mine = ck.tensor(Float32Array.from({ length: n }, (_, i) => (i % 5) * (r + 1)), [n]);
    const inPlace = await comm.allreduce(mine, { inPlace: true });
    // new tensors whose buffers come from the pool of disposed ones: each sum lands in its own
    // buffer, never in one a live tensor still holds
    const pooled = [];
    for (let k = 1; k <= 3; k++) {
      const got = await comm.allreduce(ck.tensor(Float32Array.from({ length: n }, (_, i) => (i % 3) + k * (r + 1)), [n]));
      if (k === 2) pooled[0].dispose();  // its buffer serves the third call
      pooled.push(got);
    }
    const pooledWrong = [1, 2].map((k) => pooled[k].dataSync()
      .filter((v, i) => v !== (i % 3) * comm.size + (k + 1) * (comm.size * (comm.size + 1)) / 2).length);
    const own = ck.tensor([r + 7, r + 8, r + 9, r + 10], [2, 2]);
    const fromLast = await comm.broadcast(own, comm.size - 1);
    const fromFirst = await comm.broadcast(own);
    await comm.barrier();
    report({
      rank: r, size: comm.size, localRank: comm.localRank,
      sum: Array.from(sum.dataSync()), sumShape: sum.shape,
      // elements of the large sum that differ from sum over ranks q of (i % 7) + 1000 q
      bigSumWrong: bigSum.dataSync().filter((v, i) => v !== (i % 7) * comm.size + 500 * comm.size * (comm.size - 1)).length,
      bigSumLength: bigSum.dataSync().length,
      queuedSumWrong: queuedSum.dataSync().filter((v) => v !== 144 * comm.size).length,
      queuedSumLength: queuedSum.dataSync().length,
      // in place: x itself holds sum over ranks q of (i % 5)(q + 1) and is what comes back
      pooledWrong,
      inPlaceSame: inPlace === mine,
      inPlaceWrong: mine.dataSync().filter((v, i) => v !== (i % 5) * (comm.size * (comm.size + 1)) / 2).length,
      smallAfter: Array.from(small.dataSync()),
      fromLast: Array.from(fromLast.dataSync()), fromLastShape: fromLast.shape,
      fromFirst: Array.from(fromFirst.dataSync()),
      ownAfter: Array.from(own.dataSync()),
      mpiLoaded: fs.readFileSync('/proc/self/maps', 'utf8').includes('libmpi.so'),
    });
  },
  // the last rank throws while the others wait in an allreduce it never joins
  async throw() {
    const comm = await ck.distributed.init({ timeoutMs: 600000 });
    if (comm.rank === comm.size - 1) throw new Error(`rank ${comm.rank} failed on purpose`);
    await comm.allreduce(ck.tensor([1], [1]));
  },
  // the last rank stays alive but never joins the allreduce: the others' timeout ends the job
  // (5 s also bounds init, which a loaded CI machine must still finish in time)
  async timeout() {
    const comm = await ck.distributed.init({ timeoutMs: 5000 });
    if (await lastRankStaysAway(comm)) return;
    await comm.allreduce(ck.tensor([1], [1]));
  },
  // as timeout, but the waiting rank catches the errors and carries on to a clean exit
  async timeoutCaught() {
    const comm = await ck.distributed.init({ timeoutMs: 5000 });
    if (await lastRankStaysAway(comm)) return;
    // the barrier is queued behind the allreduce that never finishes
    const [first, second] = await Promise.all([comm.allreduce(ck.tensor([1], [1])), comm.barrier()]
      .map((p) => p.catch((e) => e)));
    const third = await comm.barrier().catch((e) => e);
    const text = (e) => `${e.name}: ${e.message}`;
    report({ rank: comm.rank, first: text(first), second: text(second), third: text(third) });
  },
  // the launcher is there but the library is not (CONVKIT_MPI_LIBRARY names a missing file)
  async nolib() {
    try {
      await ck.distributed.init();
      report({ ok: true });
    } catch (e) {
      report({ ok: false, name: e.name, isDeviceError: e instanceof ck.DeviceError, message: e.message });
    }
  },
};

scenarios[scenario]();
