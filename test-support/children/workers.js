// Runs convkit from several worker_threads at once. Each worker computes work(seed): a chain of
// ops (convolution and its gradients, pooling, dense and its gradients, softmax, batch norm,
// dropout) and a small fit, and posts the results; then the main thread computes work(seed)
// itself for every seed, one after another, and compares bit for bit. Then it terminates workers
// in the middle of their work, and checks that the process carries on and holds no memory of
// theirs. Prints one JSON line.
// usage: node --expose-gc workers.js WORKERS ROUNDS TERMINATIONS
'use strict';
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');
const ck = require('../../dist');

function random(n, seed) {
  let s = seed >>> 0;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 4294967296 - 0.5;
  }
  return a;
}

async function work(seed, rounds) {
  const out = [];
  for (let r = 0; r < rounds; r++) {
    const s = seed * 1000 + r;
    const x = ck.tensor(random(2 * 14 * 14 * 3, s), [2, 14, 14, 3]);
    const k = ck.tensor(random(3 * 3 * 3 * 8, s + 1), [3, 3, 3, 8]);
    const b = ck.tensor(random(8, s + 2), [8]);
    const y = ck.ops.conv2d(x, k, { padding: 'same', bias: b, activation: 'relu' });
    const g = ck.ops.conv2dGrad(y, x, k, { padding: 'same' });
    const p = ck.ops.maxPool2d(y, { poolSize: 2 });
    const flat = p.reshape([2, 7 * 7 * 8]);
    const w = ck.tensor(random(7 * 7 * 8 * 5, s + 3), [7 * 7 * 8, 5]);
    const d = ck.ops.dense(flat, w);
    const dg = ck.ops.denseGrad(d, flat, w);
    const sm = ck.ops.softmax(d);
    const bn = ck.ops.batchNormTrain(y);
    const dr = ck.ops.dropout(y, { rate: 0.4, seed: s });
    for (const t of [y, g.dx, g.dw, g.db, p, d, dg.dx, dg.dw, sm, bn.y, dr.y]) out.push(await t.data());
  }
  ck.setSeed(seed);
  const model = ck.sequential([
    ck.layers.input({ shape: [10, 10, 1] }),
    ck.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu' }),
    ck.layers.flatten(),
    ck.layers.dropout({ rate: 0.25 }),
    ck.layers.dense({ units: 3, activation: 'softmax' }),
  ]);
  model.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy' });
  const xs = ck.tensor(random(60 * 100, seed + 7), [60, 10, 10, 1]);
  const ys = ck.toCategorical(Array.from({ length: 60 }, (_, i) => i % 3), 3);
  await model.fit(xs, ys, { epochs: 2, batchSize: 8, verbose: 0, seed });
  for (const t of model.getWeights()) out.push(await t.data());
  return out;
}

/**
 * Native memory once the collector and the finalizers it queued have run (needs --expose-gc), and
 * once it has stopped changing: a terminated worker's environment releases its tensors as it is
 * torn down, which can finish after terminate() resolves. A leak stays, so it still shows.
 */
async function settled() {
  let last = null;
  for (let stable = 0, i = 0; stable < 5 && i < 200; i++) {
    global.gc();
    await new Promise((r) => setTimeout(r, 10));
    const now = ck.memory();
    stable = last && now.hostBytes === last.hostBytes && now.hostAllocations === last.hostAllocations ? stable + 1 : 0;
    last = now;
  }
  return last;
}

const same = (a, b) => a.length === b.length && a.every((x, i) => Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(b[i].buffer, b[i].byteOffset, b[i].byteLength)));

if (!isMainThread) {
  if (workerData.endless) {
    parentPort.postMessage('started');
    (async () => { for (let i = 0; ; i++) await work(workerData.seed + i, 1); })();
  } else {
    work(workerData.seed, workerData.rounds).then((r) => parentPort.postMessage(r.map((a) => a.slice())));
  }
} else {
  (async () => {
    const [workers, rounds, terminations] = process.argv.slice(2).map(Number);
    const results = await Promise.all(Array.from({ length: workers }, (_, i) => new Promise((resolve, reject) => {
      const w = new Worker(__filename, { workerData: { seed: i + 1, rounds } });
      w.once('message', resolve);
      w.once('error', reject);
    })));
    const report = { workers, rounds, arrays: results[0].length, sameAsMain: [] };
    for (let i = 0; i < workers; i++) report.sameAsMain.push(same(results[i], await work(i + 1, rounds)));
    // terminated mid-work, with ops and training steps queued
    const before = await settled();
    let s = 1;
    for (let i = 0; i < terminations; i++) {
      const w = new Worker(__filename, { workerData: { seed: 100 + i, endless: true } });
      await new Promise((r) => w.once('message', r));
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      await new Promise((r) => setTimeout(r, 2 + (s % 40)));
      await w.terminate();
    }
    report.terminated = terminations;
    const after = await settled();
    report.heldBytes = after.hostBytes - before.hostBytes;
    report.heldAllocations = after.hostAllocations - before.hostAllocations;
    report.sameAfterTerminations = same(results[0], await work(1, rounds));
    process.stdout.write(`${JSON.stringify(report)}\n`);
  })().catch((e) => {
    process.stderr.write(`${e.stack}\n`);
    process.exit(1);
  });
}
