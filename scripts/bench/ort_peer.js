#!/usr/bin/env node
// onnxruntime-node (CPU) inference of W1, for `npm run bench`: images/s at batch 1/100/1000 and
// batch-1 latency, measured the way scripts/bench/run.js measures convkit (same inputs, median
// of 3 passes; latency: median of 250 runs after 50 warm-up ones). Prints one JSON line.
//   node scripts/bench/ort_peer.js W1.onnx THREADS [--quick]
// onnxruntime-node is resolved from $PEERS_NODE (a folder where it was installed with
// ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node), else from this project.
'use strict';
const path = require('path');
const { createRequire } = require('module');
const { random, median } = require('./workloads');

function loadOrt() {
  const from = process.env.PEERS_NODE ? [path.join(process.env.PEERS_NODE, 'package.json')] : [];
  for (const base of [...from, __filename]) {
    try {
      return createRequire(base)('onnxruntime-node');
    } catch {
      // try the next place
    }
  }
  return null;
}

(async () => {
  const [modelPath, threadArg, ...rest] = process.argv.slice(2);
  const quick = rest.includes('--quick');
  const ort = loadOrt();
  if (!ort) {
    console.log(JSON.stringify({ missing: 'onnxruntime-node not installed (ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node, in this project or in a folder named by PEERS_NODE)' }));
    return;
  }
  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: Number(threadArg), interOpNumThreads: 1, graphOptimizationLevel: 'all', executionProviders: ['cpu'],
  });
  const feed = (batch, seed) => ({ x: new ort.Tensor('float32', random([batch, 28, 28, 1], seed).dataSync(), [batch, 1, 28, 28]) });
  const out = { ort: ort.env.versions.node, threads: Number(threadArg), w1_infer: {} };
  for (const batch of [1, 100, 1000]) {
    const n = batch === 1 ? 1000 : quick ? 3000 : 10000;
    const feeds = feed(batch, 2);
    for (let i = 0; i < Math.min(10, n / batch); i++) await session.run(feeds);
    const rates = [];
    for (let r = 0; r < 3; r++) {
      const t0 = process.hrtime.bigint();
      for (let done = 0; done < n; done += batch) await session.run(feeds);
      rates.push(n / (Number(process.hrtime.bigint() - t0) / 1e9));
    }
    out.w1_infer[batch] = median(rates);
  }
  const one = feed(1, 3);
  const lat = [];
  for (let i = 0; i < 300; i++) {
    const t0 = process.hrtime.bigint();
    await session.run(one);
    lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  out.w1_latency_ms = median(lat.slice(50));
  console.log(JSON.stringify(out));
})().catch((e) => {
  console.log(JSON.stringify({ missing: `onnxruntime-node run failed: ${e.message}` }));
});
