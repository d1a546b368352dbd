#!/usr/bin/env node
// npm run bench:gpu: docs/design.md's "Benchmark workloads" on the GPU through the public API (compile with
// device 'cuda'): W1 training (SGD, batch 100), inference at batch 1/100/1000 and batch-1
// latency, W2 training at batch 64 and 512, in each precision (ck.setPrecision fp32, tf32,
// bf16), side by side with PyTorch eager on the same GPU in the same precision (cuDNN;
// scripts/bench/torch_peer.py --device cuda --precision P: TF32 off, TF32 on, bf16 autocast) in
// the same run, with the ratios. Without CUDA it says why and exits 0.
//   npm run bench:gpu [-- --json] [-- --smoke] [-- --precision fp32,tf32,bf16]
// --smoke: small batches and few of them (and PyTorch with --quick), to check the plumbing, e.g.
// on the CUDA emulator; its figures are not benchmarks.
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');
const ck = require('../../dist');
const { w1, w2, trainRate, inferRate, latencyMs } = require('./workloads');

const args = process.argv.slice(2);
const asJson = args.includes('--json');
const smoke = args.includes('--smoke');
const precisionArg = args.indexOf('--precision');
const PRECISIONS = precisionArg >= 0 ? String(args[precisionArg + 1]).split(',') : ['fp32', 'tf32', 'bf16'];
for (const p of PRECISIONS) {
  if (!['fp32', 'tf32', 'bf16'].includes(p)) {
    console.error(`bench:gpu: --precision takes fp32, tf32 and/or bf16 (comma-separated), got '${p}'`);
    process.exit(2);
  }
}
const log = (...m) => { if (!asJson) console.log(...m); };

// Full runs: images per timed epoch chosen so that each lasts a few hundred ms on an H100 (a
// whole number of batches, so no second graph is captured for a short last batch);
// torch_peer.py --device cuda times the same number of images per repetition.
const TRAIN = smoke
  ? { w1: { batch: 16, n: 64 }, w2: { batch: 16, n: 32 }, w2_512: { batch: 32, n: 64 }, epochs: 2 }
  : { w1: { batch: 100, n: 30000 }, w2: { batch: 64, n: 12800 }, w2_512: { batch: 512, n: 25600 }, epochs: 4 };
const INFER_BATCHES = smoke ? [1, 8, 32] : [1, 100, 1000];
const inferImages = (batch) => (smoke ? 2 * batch : batch === 1 ? 2000 : 20000);
const LATENCY_RUNS = smoke ? { warm: 2, timed: 5 } : { warm: 50, timed: 300 };

/** PyTorch's figures on the same GPU in `precision`, or { missing: why }. */
function torchPeer(precision) {
  const python = process.env.PYTHON || 'python3';
  const r = spawnSync(python, [path.join(__dirname, 'torch_peer.py'), '--device', 'cuda', '--precision', precision,
    ...(smoke ? ['--quick'] : [])], { encoding: 'utf8' });
  try {
    const out = JSON.parse(r.stdout.trim().split('\n').pop());
    return out.error ? { missing: out.error } : out;
  } catch {
    const why = (r.stderr || '').trim().split('\n').pop() || r.error?.message || `exit status ${r.status}`;
    return { missing: `PyTorch (${python} torch_peer.py) failed: ${why}` };
  }
}

/** How this run was started, for the JSON line (BENCHMARKS.md keeps the command with each figure). */
function commandLine() {
  const env = ['CONVKIT_ADDON', 'PYTHON'].filter((k) => process.env[k]).map((k) => `${k}=${process.env[k]}`);
  const run = process.env.npm_lifecycle_event === 'bench:gpu'
    ? `npm run bench:gpu${args.length ? ` -- ${args.join(' ')}` : ''}`
    : ['node', path.relative(process.cwd(), __filename), ...args].join(' ');
  return [...env, run].join(' ');
}

async function main() {
  const status = ck.cudaStatus();
  if (!status.available) {
    log(`bench:gpu: CUDA is unavailable here (${status.reason}); nothing measured`);
    if (asJson) console.log(JSON.stringify({ command: commandLine(), cuda: false, reason: status.reason }));
    return;
  }
  const gpu = status.devices[0].name;
  const emulated = /emulator/i.test(gpu);
  log(`convkit ${require('../../package.json').version} on ${gpu}`);
  if (emulated) log('This is the CUDA emulator on the host: its figures say nothing about GPU speed.');
  if (smoke) log('--smoke: small batches, few of them; a plumbing check, not a benchmark.');

  log('xN: convkit / PyTorch for images/s, PyTorch / convkit for latency (above 1: convkit is faster)');
  const results = {};
  for (const precision of PRECISIONS) results[precision] = await measure(precision);
  if (smoke) log('\n--smoke: PyTorch ran the full batch sizes, so only the matching rows compare; all its figures are in the JSON line');

  console.log(JSON.stringify({
    command: commandLine(), gpu, emulated, smoke,
    batches: { w1_train: TRAIN.w1.batch, w2_train: TRAIN.w2.batch, w2_train_512: TRAIN.w2_512.batch, w1_infer: INFER_BATCHES },
    precisions: results,
  }));
}

/** Every workload in `precision`, convkit then PyTorch, printed as one table. */
async function measure(precision) {
  ck.setPrecision(precision);
  // The images and labels live on the GPU, as PyTorch's do in torch_peer.py.
  const cuda = { device: 'cuda', epochs: TRAIN.epochs, dataOn: 'cuda' };
  const ours = {
    w1_train: await trainRate(w1, [28, 28, 1], TRAIN.w1.batch, TRAIN.w1.n, cuda),
    w2_train: await trainRate(w2, [32, 32, 3], TRAIN.w2.batch, TRAIN.w2.n, cuda),
    w2_train_512: await trainRate(w2, [32, 32, 3], TRAIN.w2_512.batch, TRAIN.w2_512.n, cuda),
    w1_infer: {},
  };
  const model = w1();
  model.compile({ optimizer: 'sgd', loss: 'sparseCategoricalCrossentropy', device: 'cuda' });
  for (const b of INFER_BATCHES) ours.w1_infer[b] = await inferRate(model, b, inferImages(b), { dataOn: 'cuda' });
  ours.w1_latency_ms = await latencyMs(model, LATENCY_RUNS);
  ck.setPrecision('fp32');

  const torch = torchPeer(precision);
  // PyTorch always runs the full batch sizes (100, 64, 512; inference 1/100/1000): a row
  // compares only where convkit ran the same batch.
  const peerAt = (value, batch, peerBatch) => (batch === peerBatch && typeof value === 'number' ? value : null);
  const rows = [
    [`W1 training (batch ${TRAIN.w1.batch})`, ours.w1_train, peerAt(torch.w1_train, TRAIN.w1.batch, 100)],
    [`W2 training (batch ${TRAIN.w2.batch})`, ours.w2_train, peerAt(torch.w2_train, TRAIN.w2.batch, 64)],
    [`W2 training (batch ${TRAIN.w2_512.batch})`, ours.w2_train_512, peerAt(torch.w2_train_512, TRAIN.w2_512.batch, 512)],
    ...INFER_BATCHES.map((b) => [`W1 inference (batch ${b})`, ours.w1_infer[b], peerAt(torch.w1_infer?.[String(b)], b, b)]),
  ];
  const torchLatency = typeof torch.w1_latency_ms === 'number' ? torch.w1_latency_ms : null;
  const peerMath = { fp32: 'TF32 off', tf32: 'TF32 on', bf16: 'bf16 autocast' }[precision];

  log(`\n${precision}, images/s; PyTorch ${torch.missing ? `not measured: ${torch.missing}` : `${torch.torch} eager on ${torch.device}, cuDNN, ${peerMath}`}`);
  log(`${'figure'.padEnd(26)} ${'convkit'.padStart(10)} ${'PyTorch'.padStart(10)}  ratio`);
  for (const [name, a, b] of rows) {
    log(`${name.padEnd(26)} ${a.toFixed(0).padStart(10)} ${(b === null ? 'n/a' : b.toFixed(0)).padStart(10)}  ${b === null ? 'n/a' : `x${(a / b).toFixed(2)}`}`);
  }
  log(`${'W1 batch-1 latency, ms'.padEnd(26)} ${ours.w1_latency_ms.toFixed(3).padStart(10)} ${(torchLatency === null ? 'n/a' : torchLatency.toFixed(3)).padStart(10)}  ${torchLatency === null ? 'n/a' : `x${(torchLatency / ours.w1_latency_ms).toFixed(2)}`}`);
  return { convkit: ours, torch };
}

main().catch((e) => {
  console.error(`bench:gpu: ${e.stack || e}`);
  process.exit(1);
});
