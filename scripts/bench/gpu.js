#!/usr/bin/env node
// npm run bench:gpu: DESIGN.md's workloads on the GPU through the public API (compile with
// device 'cuda'): W1 training (SGD, batch 100) and inference at batch 1/100/1000, W2 training
// at batch 64 and 512, side by side with PyTorch eager on the same GPU (cuDNN, fp32, TF32 off;
// scripts/bench/torch_peer.py --device cuda) in the same run, with the ratios. convkit has no
// TF32/bf16 yet, so only fp32 rows are measured. Without CUDA it says why and exits 0.
//   npm run bench:gpu [-- --json] [-- --smoke]   (--smoke: tiny sizes, to check the plumbing)
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');
const ck = require('../../dist');
const { w1, w2, trainRate, inferRate } = require('./workloads');

const args = process.argv.slice(2);
const asJson = args.includes('--json');
const smoke = args.includes('--smoke');
const log = (...m) => { if (!asJson) console.log(...m); };

function torchPeer() {
  if (smoke) return { missing: 'not run with --smoke' };
  const python = process.env.PYTHON || 'python3';
  const r = spawnSync(python, [path.join(__dirname, 'torch_peer.py'), '--device', 'cuda'], { encoding: 'utf8' });
  try {
    const out = JSON.parse(r.stdout.trim().split('\n').pop());
    return out.error ? { missing: out.error } : out;
  } catch {
    return { missing: `PyTorch (${python}) failed: ${(r.stderr || r.error?.message || '').slice(-300)}` };
  }
}

async function main() {
  const status = ck.cudaStatus();
  if (!status.available) {
    log(`bench:gpu: CUDA is unavailable here (${status.reason}); nothing measured`);
    if (asJson) console.log(JSON.stringify({ cuda: false, reason: status.reason }));
    return;
  }
  const gpu = status.devices[0].name;
  const emulated = /emulator/i.test(gpu);
  log(`GPU: ${gpu}${emulated ? ' (the CUDA emulator on the host: these figures say nothing about speed)' : ''}`);
  const n = smoke ? [64, 32, 64] : [6000, 3072, 8192];
  const batch = smoke ? [16, 16, 32] : [100, 64, 512];
  const cuda = { device: 'cuda', epochs: smoke ? 2 : 4 };
  const ours = {
    w1_train: await trainRate(w1, [28, 28, 1], batch[0], n[0], cuda),
    w2_train: await trainRate(w2, [32, 32, 3], batch[1], n[1], cuda),
    w2_train_512: await trainRate(w2, [32, 32, 3], batch[2], n[2], cuda),
    w1_infer: {},
  };
  const model = w1();
  model.compile({ optimizer: 'sgd', loss: 'sparseCategoricalCrossentropy', device: 'cuda' });
  for (const b of [1, 100, 1000]) ours.w1_infer[b] = await inferRate(model, b, smoke ? Math.min(2 * b, 200) : Math.max(2000, 4 * b));
  const torch = torchPeer();
  const ratio = (a, b) => (b ? `x${(a / b).toFixed(2)}` : 'n/a');
  const rows = [
    [`W1 train (batch ${batch[0]}), img/s`, ours.w1_train, torch.w1_train],
    [`W2 train (batch ${batch[1]}), img/s`, ours.w2_train, torch.w2_train],
    [`W2 train (batch ${batch[2]}), img/s`, ours.w2_train_512, torch.w2_train_512],
    ...[1, 100, 1000].map((b) => [`W1 infer (batch ${b}), img/s`, ours.w1_infer[b], torch.w1_infer?.[String(b)]]),
  ];
  log(`\nfp32 (PyTorch: ${torch.missing ?? `${torch.torch} on ${torch.device}, TF32 off`})`);
  for (const [name, a, b] of rows) log(`  ${name.padEnd(30)} convkit ${a.toFixed(0).padStart(8)}   PyTorch ${b ? b.toFixed(0).padStart(8) : '     n/a'}   ${ratio(a, b)}`);
  log('TF32 and bf16: not measured (convkit has no tensor-core path yet)');
  const command = `npm run bench:gpu${smoke ? ' -- --smoke' : ''}`;
  console.log(JSON.stringify({ command, gpu, emulated, convkit: ours, torch }));
}

main().catch((e) => {
  console.error(`bench:gpu: ${e.message}`);
  process.exit(1);
});
