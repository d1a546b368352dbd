#!/usr/bin/env node
// A short end-to-end run for the sanitizer builds (scripts/sanitize.sh train): the seeds' MNIST
// model trained, evaluated, saved, loaded and used to predict, plus the ops it is made of with
// their gradients, and tensors released while their kernels are queued. Run it with the ASan
// addon preloaded as scripts/sanitize.sh shows; it also runs on an ordinary build. Exits 1 when
// training does not learn; a sanitizer report aborts it.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const ck = require(path.join(__dirname, '..', 'dist'));
const { w1 } = require('./bench/workloads');  // the seeds' MNIST model

async function main() {
  const t0 = Date.now();
  ck.setSeed(1);
  const { train, test } = await ck.datasets.mnist({ trainLimit: 2000, testLimit: 500 });
  const model = w1();
  model.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.05, momentum: 0.9 }), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  const y = ck.toCategorical(train.labels, 10);
  const h = await model.fit(train.images, y, { epochs: 2, batchSize: 100, validationSplit: 0.1, verbose: 0, seed: 1 });
  const [evalLoss, evalAcc] = await model.evaluate(test.images, ck.toCategorical(test.labels, 10));
  console.log(`fit: loss ${h.history.loss.map((v) => v.toFixed(3)).join(' -> ')}, test loss ${evalLoss.toFixed(3)}, accuracy ${evalAcc.toFixed(3)}`);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-sanitize-'));
  await model.save(`file://${dir}`, { includeOptimizer: true });
  const loaded = await ck.loadModel(`file://${dir}`);
  const x1 = test.images.reshape([500, 28, 28, 1]);
  const [a, b] = await Promise.all([model.predict(x1, { batchSize: 1 }).data(), loaded.predict(x1, { batchSize: 100 }).data()]);
  let maxDiff = 0;
  for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
  await loaded.fit(train.images, y, { epochs: 1, batchSize: 50, verbose: 0 });
  fs.rmSync(dir, { recursive: true, force: true });

  // The ops on their own, forward and backward, inputs released while the kernels are queued.
  const xs = ck.tensor(Float32Array.from({ length: 4 * 12 * 12 * 3 }, (_, i) => Math.sin(i)), [4, 12, 12, 3]);
  const w = ck.tensor(Float32Array.from({ length: 3 * 3 * 3 * 8 }, (_, i) => Math.cos(i) / 8), [3, 3, 3, 8]);
  const conv = ck.ops.conv2d(xs, w, { padding: 'same', strides: 2 });
  const pooled = ck.ops.maxPool2d(ck.ops.relu(conv), { poolSize: 2 });
  const flat = pooled.reshape([4, -1]);
  const k = ck.ones([flat.shape[1], 5]);
  const logits = ck.ops.dense(flat, k);
  const { grad } = ck.ops.softmaxCrossEntropy(logits, ck.toCategorical([0, 1, 2, 3], 5));
  const g = ck.ops.denseGrad(grad, flat, k);
  const cg = ck.ops.conv2dGrad(ck.ones(conv.shape), xs, w, { padding: 'same', strides: 2 });
  xs.dispose();
  w.dispose();
  await Promise.all([g.dx.data(), g.dw.data(), cg.dx.data(), cg.dw.data(), cg.db.data()]);

  console.log(`predict: saved and loaded models agree within ${maxDiff.toExponential(1)}; ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const learned = h.history.loss[1] < h.history.loss[0] && evalAcc > 0.8;
  if (!learned || maxDiff > 1e-5) {
    console.error('sanitize-train: the model did not learn, or the loaded model predicts differently');
    process.exit(1);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
