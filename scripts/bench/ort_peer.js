#!/usr/bin/env node
// onnxruntime-node (CPU) inference, for `npm run bench`, measured the way scripts/bench/run.js
// measures convkit. W1 (default): images/s at batch 1/100/1000 and batch-1 latency (same inputs,
// median of 3 passes; latency: median of 250 runs after 50 warm-up ones). --workload w5 (W5,
// torchvision's mobilenet_v2 on 224x224x3 exported to ONNX): images/s at batch 32 (median of 3
// runs of 10 batches after 2 warm-up ones) and batch-1 latency (median of 50 runs after 10);
// --quick and --smoke shrink the runs as run.js's do. Prints one JSON line.
//   node scripts/bench/ort_peer.js MODEL.onnx THREADS [--workload w1|w5] [--quick|--smoke]
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

// W5's runs per size, as run.js's SIZES.w5 give convkit: batch-32 calls per timed run, timed
// runs, warm-up calls; batch-1 warm-up and timed runs.
const W5_SIZES = {
  smoke: { batches: 2, reps: 1, warm: 1, latency: [1, 3] },
  quick: { batches: 2, reps: 3, warm: 1, latency: [3, 10] },
  full: { batches: 10, reps: 3, warm: 2, latency: [10, 50] },
};

/** W5: images/s at batch 32 and batch-1 latency of mobilenet_v2 [n, 3, 224, 224]. */
async function w5(ort, session, mode) {
  const s = W5_SIZES[mode];
  const feed = (batch, seed) => ({ x: new ort.Tensor('float32', random([batch, 224, 224, 3], seed).dataSync(), [batch, 3, 224, 224]) });
  const batch = feed(32, 4);
  for (let i = 0; i < s.warm; i++) await session.run(batch);
  const rates = [];
  for (let r = 0; r < s.reps; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < s.batches; i++) await session.run(batch);
    rates.push((32 * s.batches) / (Number(process.hrtime.bigint() - t0) / 1e9));
  }
  const one = feed(1, 3);
  const [warm, timed] = s.latency;
  const lat = [];
  for (let i = 0; i < warm + timed; i++) {
    const t0 = process.hrtime.bigint();
    await session.run(one);
    lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return { w5_infer_32: median(rates), w5_latency_ms: median(lat.slice(warm)) };
}

(async () => {
  const [modelPath, threadArg, ...rest] = process.argv.slice(2);
  const quick = rest.includes('--quick');
  const smoke = rest.includes('--smoke');
  const workload = rest.includes('--workload') ? rest[rest.indexOf('--workload') + 1] : 'w1';
  const ort = loadOrt();
  if (!ort) {
    console.log(JSON.stringify({ missing: 'onnxruntime-node not installed (ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node, in this project or in a folder named by PEERS_NODE)' }));
    return;
  }
  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: Number(threadArg), interOpNumThreads: 1, graphOptimizationLevel: 'all', executionProviders: ['cpu'],
  });
  if (workload === 'w5') {
    console.log(JSON.stringify({ ort: ort.env.versions.node, threads: Number(threadArg), ...(await w5(ort, session, smoke ? 'smoke' : quick ? 'quick' : 'full')) }));
    return;
  }
  const feed = (batch, seed) => ({ x: new ort.Tensor('float32', random([batch, 28, 28, 1], seed).dataSync(), [batch, 1, 28, 28]) });
  const out = { ort: ort.env.versions.node, threads: Number(threadArg), w1_infer: {} };
  for (const batch of [1, 100, 1000]) {
    const n = smoke ? 2 * batch : batch === 1 ? 1000 : quick ? 3000 : 10000;
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
  const [warm, timed] = smoke ? [5, 20] : [50, 250];
  for (let i = 0; i < warm + timed; i++) {
    const t0 = process.hrtime.bigint();
    await session.run(one);
    lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  out.w1_latency_ms = median(lat.slice(warm));
  console.log(JSON.stringify(out));
})().catch((e) => {
  console.log(JSON.stringify({ missing: `onnxruntime-node run failed: ${e.message}` }));
});
