#!/usr/bin/env node
// Runs one benchmark workload in a loop for a while, for a profiler to watch:
//   perf record -g -o /tmp/w2.data node scripts/bench/profile.js w2-train 10
//   perf report -i /tmp/w2.data --no-children --sort symbol
// Workloads: <w>-train (trainOnBatch, SGD, the bench's batch) and <w>-infer-<batch>
// (predictOnBatch) for w1..w5, e.g. w3-train, w5-infer-1.
'use strict';
const ck = require('../../dist');
const { w1, w2, w3, w4, w5, random } = require('./workloads');

// Each workload's input shape and training batch, as scripts/bench/run.js times them.
const WORKLOADS = {
  w1: { make: w1, shape: [28, 28, 1], trainBatch: 100 },
  w2: { make: w2, shape: [32, 32, 3], trainBatch: 64 },
  w3: { make: w3, shape: [32, 32, 3], trainBatch: 128 },
  w4: { make: w4, shape: [96, 96, 3], trainBatch: 32 },
  w5: { make: w5, shape: [224, 224, 3], trainBatch: 32 },
};

async function main() {
  const [what = 'w2-train', seconds = '10'] = process.argv.slice(2);
  const [name, mode, size] = what.split('-');
  const workload = WORKLOADS[name];
  if (!workload || !['train', 'infer'].includes(mode)) throw new Error(`unknown workload ${what} (w1..w5 with -train or -infer-<batch>)`);
  const batch = mode === 'train' ? workload.trainBatch : Number(size || 1);
  const { shape } = workload;
  const model = workload.make();
  model.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.01 }), loss: 'sparseCategoricalCrossentropy' });
  const x = random([batch, ...shape], 1);
  const y = ck.tensor(Float32Array.from({ length: batch }, (_, i) => i % 10), [batch]);
  const end = Date.now() + Number(seconds) * 1000;
  let steps = 0;
  while (Date.now() < end) {
    if (mode === 'train') await model.trainOnBatch(x, y);
    else await model.predictOnBatch(x).data();
    steps++;
  }
  console.log(`${what}: ${steps} steps, ${((steps * batch) / Number(seconds)).toFixed(0)} img/s`);
}

main().catch((e) => { console.error(e.message); process.exit(1); });
