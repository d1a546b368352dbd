// One rank of npm run bench:distributed (scripts/bench/distributed.js starts it under mpirun).
//   allreduce FLOATS...     seconds per ck.distributed allreduce of each size (into a new tensor,
//                           left to the GC or disposed, and in place), as allreduce.c times MPI's
//   fit w1|w2 BATCH N       training images/s of W1 or W2 through model.fit with `distributed`
//                           (BATCH per rank; the global batch is BATCH x ranks); 'local' as a 5th
//                           argument trains without `distributed` (the 1-rank overhead's baseline)
// Rank 0 prints one JSON line.
'use strict';
const ck = require('../../dist');
const { w1, w2, random, median } = require('./workloads');

// Each size three ways: into a new tensor left to the garbage collector, into a new tensor
// disposed at once (its buffer goes back to the addon's pool for the next call), and in place.
async function allreduce(comm, sizes) {
  const seconds = [], disposedSeconds = [], inPlaceSeconds = [];
  const ways = [
    [seconds, (x) => comm.allreduce(x)],
    [disposedSeconds, async (x) => (await comm.allreduce(x)).dispose()],
    [inPlaceSeconds, (x) => comm.allreduce(x, { inPlace: true })],
  ];
  for (const n of sizes) {
    const x = ck.tensor(Float32Array.from({ length: n }, (_, j) => j), [n]);
    const reps = n >= 1 << 22 ? 10 : n >= 1 << 18 ? 50 : 500;
    for (const [out, call] of ways) {
      for (let w = 0; w < 3; w++) await call(x);
      await comm.barrier();
      const t0 = process.hrtime.bigint();
      for (let r = 0; r < reps; r++) await call(x);
      out.push(Number(process.hrtime.bigint() - t0) / 1e9 / reps);
    }
  }
  return { sizes, seconds, disposedSeconds, inPlaceSeconds };
}

async function fit(comm, workload, batch, n, local) {
  const [make, shape] = workload === 'w1' ? [w1, [28, 28, 1]] : [w2, [32, 32, 3]];
  const model = make();
  model.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.01 }), loss: 'sparseCategoricalCrossentropy' });
  const global = local ? n : n * comm.size;
  const x = random([global, ...shape], 1);
  const y = ck.tensor(Float32Array.from({ length: global }, (_, i) => i % 10), [global]);
  const times = [];
  let t0 = 0n;
  await model.fit(x, y, {
    epochs: 4, batchSize: local ? batch : batch * comm.size, verbose: 0, seed: 1,
    ...(local ? {} : { distributed: comm }),
    callbacks: { onEpochBegin: () => { t0 = process.hrtime.bigint(); }, onEpochEnd: () => { times.push(Number(process.hrtime.bigint() - t0) / 1e9); } },
  });
  return { images_per_s: global / median(times.slice(1)), ranks: local ? 1 : comm.size };
}

(async () => {
  const [mode, ...rest] = process.argv.slice(2);
  ck.setThreads(1);
  const comm = await ck.distributed.init({ timeoutMs: 600000 });
  const out = mode === 'allreduce' ? await allreduce(comm, rest.map(Number))
    : await fit(comm, rest[0], Number(rest[1]), Number(rest[2]), rest[3] === 'local');
  if (comm.rank === 0) console.log(JSON.stringify(out));
  process.exit(0);
})().catch((e) => {
  console.error(`bench:distributed rank: ${e.stack || e}`);
  process.exit(1);
});
