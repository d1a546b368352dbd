#!/usr/bin/env node
// The seeds' MNIST recipe in convkit (W1, SGD lr 0.01, batch 100, 10 epochs) with the random draws
// taken apart (BENCHMARKS.md, "Noise or a systematic difference?"): the initial weights from
// ck.setSeed(seed) or from DRAWS/init.bin, and the batch order from fit's own shuffle (fit seed
// `--fit-seed`, default the seed) or from DRAWS/order.bin (torch_draws.py writes both as
// torch_recipe.py draws them). A file order is fed as torch_recipe.py visits it: each epoch's
// examples gathered in that order and fit for one epoch unshuffled. Prints each epoch's training
// loss and the test accuracy, as mnist-recipe.js does (recipe-seeds.js reads either).
//   node scripts/bench/recipe-split.js --seed N [--init convkit|torch] [--order convkit|torch]
//     [--fit-seed M] [--draws DIR]
'use strict';
const fs = require('fs');
const path = require('path');
const ck = require('../../dist');
const { w1 } = require('./workloads');

const arg = (argv, name, fallback) => (argv.indexOf(name) >= 0 ? argv[argv.indexOf(name) + 1] : fallback);
const EPOCHS = 10;

async function main() {
  const argv = process.argv.slice(2);
  const seed = Number(arg(argv, '--seed', 1));
  const init = arg(argv, '--init', 'convkit');
  const orderFrom = arg(argv, '--order', 'convkit');
  const fitSeed = Number(arg(argv, '--fit-seed', seed));
  const draws = arg(argv, '--draws', `/tmp/torch-draws-${seed}`);
  ck.setSeed(seed);
  const model = w1();
  model.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.01 }), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  if (init === 'torch') {
    const values = new Float32Array(fs.readFileSync(path.join(draws, 'init.bin')).buffer.slice(0));
    let at = 0;
    model.setWeights(model.getWeights().map((w) => ck.tensor(values.subarray(at, (at += w.size)), [...w.shape])));
    if (at !== values.length) throw new Error(`${draws}/init.bin holds ${values.length} values, W1 has ${at}`);
  }
  const { train, test } = await ck.datasets.mnist();
  const yTrain = ck.toCategorical(train.labels, 10);
  const start = Date.now();
  const report = (epoch, logs) => console.log(`epoch ${epoch + 1}: loss ${logs.loss.toFixed(4)} accuracy ${logs.accuracy.toFixed(4)} at ${((Date.now() - start) / 1000).toFixed(1)} s`);
  if (orderFrom === 'torch') {
    const order = new Int32Array(fs.readFileSync(path.join(draws, 'order.bin')).buffer.slice(0));
    const [n, h, w] = train.images.shape;
    const px = h * w;
    const x = train.images.dataSync();
    const y = yTrain.dataSync();
    for (let e = 0; e < EPOCHS; e++) {
      const xe = new Float32Array(n * px);
      const ye = new Float32Array(n * 10);
      for (let i = 0; i < n; i++) {
        const j = order[e * n + i];
        xe.set(x.subarray(j * px, (j + 1) * px), i * px);
        ye.set(y.subarray(j * 10, (j + 1) * 10), i * 10);
      }
      const xt = ck.tensor(xe, [n, h, w, 1]);
      const yt = ck.tensor(ye, [n, 10]);
      await model.fit(xt, yt, { epochs: 1, batchSize: 100, verbose: 0, shuffle: false, callbacks: [{ onEpochEnd: async (_, logs) => report(e, logs) }] });
      xt.dispose();
      yt.dispose();
    }
  } else {
    await model.fit(train.images, yTrain, { epochs: EPOCHS, batchSize: 100, verbose: 0, seed: fitSeed, callbacks: [{ onEpochEnd: async (epoch, logs) => report(epoch, logs) }] });
  }
  const [loss, acc] = await model.evaluate(test.images, ck.toCategorical(test.labels, 10), { batchSize: 1000 });
  console.log(`test loss ${loss.toFixed(4)}, test accuracy ${(acc * 100).toFixed(2)}% (seed ${seed}, init ${init}, order ${orderFrom === 'torch' ? 'torch' : `convkit fit seed ${fitSeed}`})`);
}

main().catch((e) => { console.error(e.stack); process.exit(1); });
