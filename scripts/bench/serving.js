// S1, serving under concurrency, for `npm run bench`: a server calls predictOnBatch once per
// request. `clients` callers each loop "predictOnBatch of one image, await its data" for a fixed
// time (a closed loop); the figures are requests/s, the median and 99th-percentile latency, and
// the event loop's worst delay meanwhile. Each load runs with dynamic batching (the default) and
// without it (model.dynamicBatching = false: every call on its own, as before dynamic batching).
'use strict';
const { monitorEventLoopDelay } = require('perf_hooks');
const { random, median } = require('./workloads');

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

/** One closed-loop run: { rps, p50_ms, p99_ms, lag_ms, mean_batch }. */
async function closedLoop(model, images, clients, seconds) {
  const latencies = [];
  const lag = monitorEventLoopDelay({ resolution: 1 });
  const counts0 = model.net.inferenceCounts();
  let stop = false;
  const client = async (k) => {
    for (let i = k; !stop; i += clients) {
      const t0 = process.hrtime.bigint();
      await model.predictOnBatch(images[i % images.length]).data();
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  };
  lag.enable();
  const t0 = process.hrtime.bigint();
  const timer = setTimeout(() => { stop = true; }, seconds * 1000);
  await Promise.all(Array.from({ length: clients }, (_, k) => client(k)));
  clearTimeout(timer);
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  lag.disable();
  const counts = model.net.inferenceCounts();
  latencies.sort((a, b) => a - b);
  return {
    rps: latencies.length / elapsed,
    p50_ms: median(latencies),
    p99_ms: percentile(latencies, 99),
    lag_ms: lag.max / 1e6,
    mean_batch: (counts.calls - counts0.calls) / Math.max(1, counts.tasks - counts0.tasks),
  };
}

/**
 * S1 on `model` (inputs of `shape`): for each client count, a run without and with dynamic
 * batching, after a short warm-up of each.
 */
async function servingRates(model, shape, { clients = [1, 8, 64], seconds = 3, warm = 0.5 } = {}) {
  const images = Array.from({ length: 16 }, (_, i) => random([1, ...shape], 10 + i));
  const out = {};
  for (const c of clients) {
    for (const batching of [false, true]) {
      model.dynamicBatching = batching ? { maxBatchSize: 32 } : false;
      await closedLoop(model, images, c, warm);
      out[`${c}_${batching ? 'batched' : 'alone'}`] = await closedLoop(model, images, c, seconds);
    }
  }
  model.dynamicBatching = { maxBatchSize: 32 };
  return out;
}

module.exports = { servingRates };
