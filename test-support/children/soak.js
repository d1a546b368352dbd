// Soaks convkit: OPS op calls (convolution, pooling, dense, activations, softmax, their
// gradients, dropout, batch norm, losses) on fresh tensors, half disposed and half left to the
// garbage collector, with JS garbage between them; then EPOCHS epochs of fit. Samples RSS and
// ck.memory() after full garbage collections and prints them as one JSON line.
// usage: node --expose-gc soak.js OPS EPOCHS
'use strict';
const ck = require('../../dist');

const [ops, epochs] = process.argv.slice(2).map(Number);
const tick = () => new Promise((r) => setImmediate(r));

/** Memory after the collector has run and the finalizers it queued have too (a few times over). */
async function sample(at) {
  for (let i = 0; i < 10; i++) {
    global.gc();
    await tick();
  }
  const m = ck.memory();
  return { at, rss: process.memoryUsage().rss, hostBytes: m.hostBytes, hostAllocations: m.hostAllocations };
}

let seed = 1;
function random(n) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    a[i] = seed / 4294967296 - 0.5;
  }
  return a;
}

/** One of the op families, by index; returns the tensors it made (the caller keeps or drops them). */
function step(i) {
  const x = ck.tensor(random(2 * 12 * 12 * 8), [2, 12, 12, 8]);
  const k = ck.tensor(random(3 * 3 * 8 * 16), [3, 3, 8, 16]);
  const b = ck.fill([16], 0.1);
  switch (i % 8) {
    case 0: {
      const y = ck.ops.conv2d(x, k, { padding: 'same', bias: b, activation: 'relu' });
      const g = ck.ops.conv2dGrad(ck.ops.relu(y), x, k, { padding: 'same' });
      return [y, g.dx, g.dw, g.db];
    }
    case 1: {
      const p = ck.ops.maxPool2d(x, { poolSize: 2 });
      return [p, ck.ops.maxPool2dGrad(p, x, { poolSize: 2 }), ck.ops.avgPool2d(x, { poolSize: 3, strides: 2, padding: 'same' })];
    }
    case 2: {
      const flat = x.reshape([2, 1152]);
      const w = ck.tensor(random(1152 * 10), [1152, 10]);
      const y = ck.ops.dense(flat, w);
      const g = ck.ops.denseGrad(y, flat, w);
      return [flat, y, g.dx, g.dw, g.db];
    }
    case 3: {
      const s = ck.ops.softmax(x.reshape([288, 8]));
      return [s, ck.ops.softmaxGrad(s, s), ck.ops.sigmoid(x), ck.ops.tanh(x)];
    }
    case 4: {
      const d = ck.ops.dropout(x, { rate: 0.3, seed: i });
      return [d.y, d.mask, ck.ops.dropoutGrad(d.y, d.mask)];
    }
    case 5: {
      const bn = ck.ops.batchNormTrain(x);
      const g = ck.ops.batchNormGrad(bn.y, x, { mean: bn.mean, invstd: bn.invstd });
      return [bn.y, bn.mean, bn.invstd, g.dx, g.dgamma, g.dbeta];
    }
    case 6: {
      const logits = ck.tensor(random(32 * 10), [32, 10]);
      const l = ck.ops.softmaxCrossEntropy(logits, ck.toCategorical(Array.from({ length: 32 }, (_, j) => j % 10), 10));
      const m = ck.ops.meanSquaredError(logits, ck.fill([32, 10], 0));
      return [l.loss, l.grad, m.loss, m.grad];
    }
    default: {
      const g = ck.ops.globalAvgPool(x);
      return [g, ck.ops.globalAvgPoolGrad(g, x), ck.ops.globalMaxPool(x), ck.ops.leakyRelu(x, { alpha: 0.1 })];
    }
  }
}

(async () => {
  const out = { opCalls: 0, ops: [], fit: [] };
  let junk = [];
  const every = Math.max(1, Math.floor(ops / 10));
  for (let i = 0; i < ops; i++) {
    const made = step(i);
    out.opCalls += made.length;
    // half disposed now, half left to the garbage collector's finalizers
    if (i % 2 === 0) made.forEach((t) => t.dispose());
    else if (i % 16 === 1) await made[0].data();
    // JS garbage to keep the collector busy
    junk.push(new Float64Array(512));
    if (junk.length > 64) junk = [];
    if ((i + 1) % every === 0) {
      await ck.ops.relu(ck.fill([1], 0)).data();  // the ops queued so far have run
      out.ops.push(await sample(i + 1));
    }
  }

  ck.setSeed(1);
  const model = ck.sequential([
    ck.layers.input({ shape: [12, 12, 1] }),
    ck.layers.conv2d({ filters: 8, kernelSize: 3, activation: 'relu' }),
    ck.layers.maxPooling2d({ poolSize: 2 }),
    ck.layers.flatten(),
    ck.layers.dropout({ rate: 0.2 }),
    ck.layers.dense({ units: 4, activation: 'softmax' }),
  ]);
  model.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  const n = 512;
  const x = ck.tensor(random(n * 144), [n, 12, 12, 1]);
  const y = ck.toCategorical(Array.from({ length: n }, (_, j) => j % 4), 4);
  await model.fit(x, y, {
    epochs, batchSize: 16, validationSplit: 0.25, verbose: 0, callbacks: {
      onBatchEnd: () => { junk.push(new Float64Array(512)); if (junk.length > 64) junk = []; },
      onEpochEnd: async (e) => {
        // a prediction and an evaluation each epoch, dropped for the collector
        model.predict(x, { batchSize: 64 });
        await model.evaluate(x, y, { batchSize: 64 });
        out.fit.push(await sample(e + 1));
      },
    },
  });
  process.stdout.write(`${JSON.stringify(out)}\n`);
})().catch((e) => {
  process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
