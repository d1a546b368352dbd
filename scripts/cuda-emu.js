#!/usr/bin/env node
// The CUDA backend without a GPU: builds the addon on convkit's CUDA emulator (build-emu/,
// CONVKIT_CUDA_EMU_BACKEND: the .cu kernels compiled as host C++, see native/tests/cuda_emu) and
// runs the JS-level GPU suites through it: scripts/gpu-parity.js (every op and gradient against
// the CPU, to() round trips, stream ordering of copies and host callbacks, memory figures) and
// the jest files of CUDA tensors and models (test/cuda.ops.test.ts, test/model.cuda.test.ts:
// models trained on CUDA against the CPU, test/layers.activations.test.ts likewise through the
// newer activations, test/layers.normalization.test.ts through layer and group normalization;
// test/precision.cuda.test.ts: the TF32 / bf16 tensor-core paths; test/losses-metrics.cuda.test.ts:
// the Keras losses and metrics against the CPU; test/distributed.cuda.test.ts: data-parallel fit of CUDA models
// on 2 MPI ranks, through host memory; test/metrics.topk-matrix.test.ts and
// test/optimizers.accumulation.test.ts: top-k precision, the confusion matrix and gradient
// accumulation on CUDA against their references; test/model.shared-layers.test.ts and
// test/layers.dropout-noise.test.ts: shared weights and broadcast dropout masks against the CPU;
// test/mnist.cuda.test.ts is listed too, and reports itself skipped: full
// MNIST needs a real GPU). npm test runs it; the out-of-memory case is left to real GPUs (it fills
// device memory). Off x86-64 Linux it cannot run: a skip line, or with CI set a failure.
//
//   node scripts/cuda-emu.js [--quick]
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');

const root = path.join(__dirname, '..');
const ci = process.env.CI !== undefined && !['', '0', 'false'].includes(process.env.CI.toLowerCase());
if (process.platform !== 'linux' || process.arch !== 'x64') {
  const why = `the emulator's fibers need x86-64 Linux (this is ${process.platform}-${process.arch})`;
  if (ci) {
    console.error(`cuda-emu: CI=${process.env.CI}, and the GPU suite cannot run here: ${why}`);
    process.exit(1);
  }
  console.log(`cuda-emu: ${why}: skipped`);
  process.exit(0);
}

function run(cmd, args, env) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) process.exit(r.status === null ? 1 : r.status);
}

const jobs = process.env.JOBS || '2';
run(process.execPath, [require.resolve('cmake-js/bin/cmake-js'), 'compile', '-O', 'build-emu', '-p', jobs,
  '--CDCONVKIT_CUDA=OFF', '--CDCONVKIT_CUDA_EMU_BACKEND=ON', '--CDCONVKIT_TESTS=OFF']);
const args = [path.join(__dirname, 'gpu-parity.js'), '--no-oom'];
if (process.argv.includes('--quick')) args.push('--quick');
const env = { CONVKIT_ADDON: path.join(root, 'build-emu', 'Release', 'convkit.node') };
run(process.execPath, args, env);
run(process.execPath, [require.resolve('jest/bin/jest'), '--runInBand', 'test/cuda.ops.test.ts', 'test/model.cuda.test.ts', 'test/layers.activations.test.ts',
  'test/precision.cuda.test.ts', 'test/mnist.cuda.test.ts', 'test/cli.cuda.test.ts',
  'test/layers.normalization.test.ts', 'test/losses-metrics.cuda.test.ts', 'test/layers.conv-transpose.test.ts',
  'test/distributed.cuda.test.ts', 'test/metrics.topk-matrix.test.ts', 'test/optimizers.accumulation.test.ts',
  'test/model.shared-layers.test.ts', 'test/layers.dropout-noise.test.ts', 'test/layers.augment.test.ts'],
  { ...env, CONVKIT_GPU_PARITY_OOM: '0' });
