#!/usr/bin/env node
// The CUDA backend without a GPU: builds the addon on convkit's CUDA emulator (build-emu/,
// CONVKIT_CUDA_EMU_BACKEND: the .cu kernels compiled as host C++, see native/tests/cuda_emu) and
// runs the JS-level GPU suites through it: scripts/gpu-parity.js (every op and gradient against
// the CPU, to() round trips, stream ordering of copies and host callbacks, memory figures) and
// the jest files of CUDA tensors and models (test/cuda.ops.test.ts, test/model.cuda.test.ts:
// models trained on CUDA against the CPU; test/precision.cuda.test.ts: the TF32 / bf16
// tensor-core paths). npm test runs it; the out-of-memory case is left to
// real GPUs (it fills device memory).
//
//   node scripts/cuda-emu.js [--quick]
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');

const root = path.join(__dirname, '..');
if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.log(`cuda-emu: the emulator's fibers need x86-64 Linux (this is ${process.platform}-${process.arch}): skipped`);
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
run(process.execPath, [require.resolve('jest/bin/jest'), '--runInBand', 'test/cuda.ops.test.ts', 'test/model.cuda.test.ts',
  'test/precision.cuda.test.ts'],
  { ...env, CONVKIT_GPU_PARITY_OOM: '0' });
