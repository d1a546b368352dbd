// Trains a small batch-normalised network (conv -> BN -> ReLU, depthwise -> BN -> ReLU6, a frozen
// BN -> ReLU, a BN read by an add beside its ReLU) for two epochs with a fixed seed and prints
// its history and final weights (as base64 float32) as one JSON line. test/model.training-fusions
// runs it with and without CONVKIT_TRAINING_FUSIONS=0 and expects bitwise the same.
// usage: node fusion-train.js [optimizer]
'use strict';
const ck = require('../../dist');

const l = ck.layers;
ck.setSeed(3);
const input = ck.input({ shape: [10, 9, 3] });
const c1 = l.conv2d({ filters: 8, kernelSize: 3, padding: 'same', useBias: false }).apply(input);
const r1 = l.reLU().apply(l.batchNormalization().apply(c1));
const d2 = l.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'same', useBias: false }).apply(r1);
const r2 = l.reLU({ maxValue: 6 }).apply(l.batchNormalization({ momentum: 0.9 }).apply(d2));
const frozen = l.batchNormalization({ name: 'frozen_bn' });
const r3 = l.activation({ activation: 'relu' }).apply(frozen.apply(r2));
const bn4 = l.batchNormalization().apply(l.conv2d({ filters: 8, kernelSize: 1 }).apply(r3));
const sum = l.add().apply([l.reLU().apply(bn4), bn4]);
const out = l.dense({ units: 4, activation: 'softmax' }).apply(l.globalAveragePooling2d().apply(sum));
const model = ck.model({ inputs: input, outputs: out });
frozen.trainable = false;
model.compile({ optimizer: process.argv[2] || 'sgd', loss: 'categoricalCrossentropy', metrics: ['accuracy'] });

const n = 48;
const x = new Float32Array(n * 10 * 9 * 3);
let s = 12345;
for (let i = 0; i < x.length; i++) x[i] = ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 4 - 1;
const labels = Float32Array.from({ length: n }, (_, i) => (i * 7) % 4);
(async () => {
  const history = await model.fit(ck.tensor(x, [n, 10, 9, 3]), ck.toCategorical(labels, 4), { epochs: 2, batchSize: 16, seed: 5, verbose: 0 });
  const weights = model.getWeights().map((w) => Buffer.from(w.dataSync().buffer.slice(0)).toString('base64'));
  process.stdout.write(`${JSON.stringify({ history: history.history, weights })}\n`);
})().catch((e) => {
  process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
