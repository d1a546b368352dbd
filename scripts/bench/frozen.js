#!/usr/bin/env node
// What freezing saves: training steps of W1 (the seeds' MNIST CNN, batch 100) and W2
// (CIFAR-shaped, batch 64) with every layer trainable, with the convolutional base frozen (only
// the dense head trains: the executor skips backward through the base entirely) and with only
// the first conv frozen (its filter gradient goes, and so does the gradient the next layers
// would pass down to it), beside a forward pass alone. One model
// per workload, its layers toggled between rounds that alternate the settings, so drift on a
// shared machine hits them alike; each figure is the median round.
//   npm run build:ts && node scripts/bench/frozen.js [--rounds 15] [--steps 10] [--json]
'use strict';
const os = require('os');
const ck = require('../../dist');
const { w1, w2, random, median } = require('./workloads');

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? Number(args[i + 1]) : def;
};
const ROUNDS = opt('rounds', 15);
const STEPS = opt('steps', 10);
const asJson = args.includes('--json');

async function measure(name, make, shape, batch) {
  ck.setSeed(1);
  const model = make();
  model.compile({ optimizer: ck.optimizers.sgd({ learningRate: 1e-3 }), loss: 'categoricalCrossentropy' });
  const x = random([batch, ...shape], 2);
  const labels = random([batch], 3).dataSync().map((v) => Math.floor(v * 10));
  const y = ck.toCategorical(labels, 10);
  const convs = model.layers.filter((l) => l.className === 'Conv2D');
  const settings = {
    trainable: () => convs.forEach((l) => { l.trainable = true; }),
    firstConvFrozen: () => convs.forEach((l, i) => { l.trainable = i > 0; }),
    baseFrozen: () => convs.forEach((l) => { l.trainable = false; }),
  };
  const times = { trainable: [], firstConvFrozen: [], baseFrozen: [], forward: [] };
  const steps = async () => {
    const t0 = performance.now();
    for (let s = 0; s < STEPS; s++) await model.trainOnBatch(x, y);
    return (performance.now() - t0) / STEPS;
  };
  for (const set of Object.values(settings)) set(), await steps();  // warm-up: plans, pages, caches
  for (let r = 0; r < ROUNDS; r++) {
    for (const [key, set] of Object.entries(settings)) {
      set();
      times[key].push(await steps());
    }
    const t0 = performance.now();
    for (let s = 0; s < STEPS; s++) await model.predictOnBatch(x).data();
    times.forward.push((performance.now() - t0) / STEPS);
  }
  const ms = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
  return { workload: name, batch, ms, speedupBaseFrozen: ms.trainable / ms.baseFrozen, speedupFirstConvFrozen: ms.trainable / ms.firstConvFrozen };
}

async function main() {
  const info = ck.devices()[0];
  const load = os.loadavg().map((v) => v.toFixed(2)).join(' ');
  const results = [
    await measure("W1 (the seeds' MNIST CNN)", w1, [28, 28, 1], 100),
    await measure('W2 (CIFAR-shaped 32x32x3)', w2, [32, 32, 3], 64),
  ];
  if (asJson) {
    console.log(JSON.stringify({ version: ck.version, isa: info.isa, threads: info.threads, loadBefore: load, loadAfter: os.loadavg(), rounds: ROUNDS, steps: STEPS, results }));
    return;
  }
  console.log(`convkit ${ck.version} on ${info.isa}, ${info.threads} threads; load average before ${load}, after ${os.loadavg().map((v) => v.toFixed(2)).join(' ')}`);
  console.log(`trainOnBatch ms/step, median of ${ROUNDS} rounds of ${STEPS} steps (SGD)`);
  console.log('workload                      batch  trainable  first conv frozen  base frozen  forward only   base frozen speed-up');
  for (const r of results) {
    const f = (v) => v.toFixed(2).padStart(9);
    console.log(`${r.workload.padEnd(28)} ${String(r.batch).padStart(6)}  ${f(r.ms.trainable)}  ${f(r.ms.firstConvFrozen).padStart(17)}  ${f(r.ms.baseFrozen).padStart(11)}  ${f(r.ms.forward).padStart(12)}   x${r.speedupBaseFrozen.toFixed(2)} (first conv: x${r.speedupFirstConvFrozen.toFixed(2)})`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
