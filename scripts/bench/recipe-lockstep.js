#!/usr/bin/env node
// The convkit half of the lock-step check of the seeds' MNIST recipe (BENCHMARKS.md, "Noise or a
// systematic difference?"): trains W1 with SGD lr 0.01, batch 100 for `--epochs` epochs through
// the public API and writes to DIR what PyTorch needs to repeat the run step for step
// (recipe_lockstep.py): the initial weights as ck.setSeed gives them, the batch order fit visits
// (fit's seeded Fisher-Yates permutation per epoch, rebuilt here from dist/rng as fit draws it),
// every step's training loss, the final weights and convkit's test accuracy of them.
// `--eval FILE` instead loads weights written by recipe_lockstep.py and prints convkit's test
// accuracy of them.
//   node scripts/bench/recipe-lockstep.js --seed N [--epochs E] [--out DIR]
//   node scripts/bench/recipe-lockstep.js --eval DIR/torch-final.bin
'use strict';
const fs = require('fs');
const path = require('path');
const ck = require('../../dist');
const { Rng } = require('../../dist/rng');
const { w1 } = require('./workloads');

const arg = (argv, name, fallback) => (argv.indexOf(name) >= 0 ? argv[argv.indexOf(name) + 1] : fallback);

/** The weights as one float32 buffer, in getWeights order (Keras's: kernel HWIO / [in,out], bias). */
const flatWeights = (model) => Buffer.concat(model.getWeights().map((w) => Buffer.from(w.dataSync().buffer.slice(0))));

async function testAccuracy(model, test) {
  const [, acc] = await model.evaluate(test.images, ck.toCategorical(test.labels, 10), { batchSize: 1000 });
  return acc;
}

function compiled() {
  const model = w1();
  model.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.01 }), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  return model;
}

async function evaluateFile(file) {
  const model = compiled();
  const values = new Float32Array(fs.readFileSync(file).buffer.slice(0));
  let at = 0;
  model.setWeights(model.getWeights().map((w) => {
    const t = ck.tensor(values.subarray(at, at + w.size), [...w.shape]);
    at += w.size;
    return t;
  }));
  if (at !== values.length) throw new Error(`${file}: ${values.length} values, W1 has ${at}`);
  const { test } = await ck.datasets.mnist();
  console.log(`convkit's test accuracy of ${file}: ${((await testAccuracy(model, test)) * 100).toFixed(2)}%`);
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv.includes('--eval')) return evaluateFile(arg(argv, '--eval'));
  const seed = Number(arg(argv, '--seed', 1));
  const epochs = Number(arg(argv, '--epochs', 1));
  const out = arg(argv, '--out', `lockstep-${seed}`);
  fs.mkdirSync(out, { recursive: true });
  ck.setSeed(seed);
  const model = compiled();
  fs.writeFileSync(path.join(out, 'init.bin'), flatWeights(model));
  const { train, test } = await ck.datasets.mnist();
  const n = train.images.shape[0];
  // fit's draws: one uint32 for the per-step seeds, then one permutation per epoch.
  const rng = new Rng(seed);
  rng.nextUint32();
  const orders = [];
  for (let e = 0; e < epochs; e++) orders.push(rng.permutation(n));
  fs.writeFileSync(path.join(out, 'order.bin'), Buffer.concat(orders.map((o) => Buffer.from(o.buffer))));
  // The per-step loss from the epoch's running mean (every batch holds 100 examples).
  const losses = [];
  let previous = 0;
  await model.fit(train.images, ck.toCategorical(train.labels, 10), {
    epochs, batchSize: 100, verbose: 0, seed,
    callbacks: [{
      onEpochBegin: async () => { previous = 0; },
      onBatchEnd: async (b, logs) => { losses.push(logs.loss * (b + 1) - previous); previous = logs.loss * (b + 1); },
    }],
  });
  fs.writeFileSync(path.join(out, 'final.bin'), flatWeights(model));
  const acc = await testAccuracy(model, test);
  fs.writeFileSync(path.join(out, 'convkit.json'), JSON.stringify({ seed, epochs, losses, testAccuracy: acc }) + '\n');
  console.log(`seed ${seed}, ${epochs} epoch(s): ${losses.length} steps, last-step loss ${losses.at(-1).toFixed(4)}, test accuracy ${(acc * 100).toFixed(2)}% -> ${out}`);
}

main().catch((e) => { console.error(e.stack); process.exit(1); });
