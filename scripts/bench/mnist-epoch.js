#!/usr/bin/env node
// One real MNIST epoch of the seeds' recipe through model.fit (W1, SGD lr 0.01, batch 100,
// shuffled, accuracy metric), run by `npm run bench` in its own process so that the peak RSS it
// reports is this epoch's alone. Prints one JSON line.
'use strict';
const ck = require('../../dist');
const { w1 } = require('./workloads');

(async () => {
  ck.setSeed(1);
  const { train } = await ck.datasets.mnist();
  const model = w1();
  model.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.01 }), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  let t0 = 0;
  let seconds = 0;
  const history = await model.fit(train.images, ck.toCategorical(train.labels, 10), {
    epochs: 1, batchSize: 100, verbose: 0, seed: 1,
    callbacks: { onEpochBegin: () => { t0 = process.hrtime.bigint(); }, onEpochEnd: () => { seconds = Number(process.hrtime.bigint() - t0) / 1e9; } },
  });
  console.log(JSON.stringify({
    epoch_s: seconds, loss: history.history.loss[0], accuracy: history.history.accuracy[0],
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
  }));
})().catch((e) => {
  console.error(`mnist-epoch: ${e.message}`);
  process.exit(1);
});
