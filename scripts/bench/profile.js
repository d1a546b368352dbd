#!/usr/bin/env node
// Runs one benchmark workload in a loop for a while, for a profiler to watch:
//   perf record -g -o /tmp/w2.data node scripts/bench/profile.js w2-train 10
//   perf report -i /tmp/w2.data --no-children --sort symbol
// Workloads: w1-train, w2-train (trainOnBatch, SGD), w1-infer-1, w1-infer-100 (predictOnBatch).
'use strict';
const ck = require('../../dist');
const { w1, w2, random } = require('./workloads');

async function main() {
  const [what = 'w2-train', seconds = '10'] = process.argv.slice(2);
  const [name, mode, size] = what.split('-');
  const make = { w1, w2 }[name];
  if (!make || !['train', 'infer'].includes(mode)) throw new Error(`unknown workload ${what} (w1-train, w2-train, w1-infer-1, w1-infer-100)`);
  const batch = mode === 'train' ? (name === 'w1' ? 100 : 64) : Number(size || 1);
  const shape = name === 'w1' ? [28, 28, 1] : [32, 32, 3];
  const model = make();
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
