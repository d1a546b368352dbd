#!/usr/bin/env node
// The seeds' MNIST recipe through the public API: the tutorial's CNN, real MNIST (60,000 train,
// 10,000 test), batch 100, SGD lr 0.01 for 10 epochs (or `--adam`: Adam lr 1e-3 for 3), one
// seed. Prints each epoch's training loss, accuracy and elapsed seconds, then the test accuracy.
// `--device cuda` trains on the GPU (the accuracy check of GPU training against the CPU's);
// `--precision tf32|bf16` sets ck.setPrecision for it (the accuracy check of each precision
// against fp32: issue #7 asks for test accuracy within 0.3 points).
//   node scripts/bench/mnist-recipe.js [--seed N] [--adam] [--device cpu|cuda] [--precision fp32|tf32|bf16]
'use strict';
const ck = require('../../dist');
const { w1 } = require('./workloads');

async function main() {
  const argv = process.argv.slice(2);
  const seedAt = argv.indexOf('--seed');
  const seed = seedAt >= 0 ? Number(argv[seedAt + 1]) : 1;
  const adam = argv.includes('--adam');
  const deviceAt = argv.indexOf('--device');
  const device = deviceAt >= 0 ? argv[deviceAt + 1] : 'cpu';
  const precisionAt = argv.indexOf('--precision');
  const precision = precisionAt >= 0 ? argv[precisionAt + 1] : 'fp32';
  ck.setPrecision(precision);
  ck.setSeed(seed);
  const model = w1();
  model.compile({
    optimizer: adam ? ck.optimizers.adam({ learningRate: 1e-3 }) : ck.optimizers.sgd({ learningRate: 0.01 }),
    loss: 'categoricalCrossentropy', metrics: ['accuracy'], device,
  });
  const { train, test } = await ck.datasets.mnist();
  const start = Date.now();
  await model.fit(train.images, ck.toCategorical(train.labels, 10), {
    epochs: adam ? 3 : 10, batchSize: 100, verbose: 0, seed,
    callbacks: [{ onEpochEnd: async (epoch, logs) => console.log(`epoch ${epoch + 1}: loss ${logs.loss.toFixed(4)} accuracy ${logs.accuracy.toFixed(4)} at ${((Date.now() - start) / 1000).toFixed(1)} s`) }],
  });
  const [loss, acc] = await model.evaluate(test.images, ck.toCategorical(test.labels, 10), { batchSize: 1000 });
  console.log(`test loss ${loss.toFixed(4)}, test accuracy ${(acc * 100).toFixed(2)}% (seed ${seed}, ${adam ? 'Adam, 3' : 'SGD, 10'} epochs, ${model.device}, ${precision})`);
}

main().catch((e) => { console.error(e.message); process.exit(1); });
