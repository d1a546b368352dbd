#!/usr/bin/env node
// npm run bench:distributed: ck.distributed on Open MPI, on this machine (issue #20's figures):
//   - allreduce bandwidth: convkit's comm.allreduce against MPI_Allreduce called by a plain MPI C
//     program (scripts/bench/allreduce.c, built here with mpicc), 2 ranks, 4 KB to 64 MB;
//   - the overhead of `distributed` with one rank: W1/W2 training through fit with and without
//     it under mpirun -np 1;
//   - scaling: 2 ranks x 1 thread against 1 rank x 1 thread on W1 (batch 100 per rank) and W2
//     (batch 64 per rank), global images/s.
//   npm run bench:distributed [-- --json] [-- --quick]
// Needs Open MPI with its compiler wrapper (apt-get install openmpi-bin libopenmpi-dev).
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const args = process.argv.slice(2);
const asJson = args.includes('--json');
const quick = args.includes('--quick');
const log = (...m) => { if (!asJson) console.log(...m); };
const child = path.join(__dirname, 'distributed-child.js');
// The launcher runs as root in CI containers; these let it (never set in convkit itself).
const env = { ...process.env, OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMPI_MCA_rmaps_base_oversubscribe: '1' };

function mpirun(ranks, command) {
  const r = spawnSync('mpirun', ['-np', String(ranks), ...command], { encoding: 'utf8', env, timeout: 900000 });
  if (r.status !== 0) throw new Error(`mpirun -np ${ranks} ${command.join(' ')} failed: ${(r.stderr || r.error?.message || '').slice(-500)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

function buildPeer() {
  const bin = path.join(os.tmpdir(), `convkit-bench-allreduce-${process.pid}`);
  const r = spawnSync('mpicc', ['-O2', '-o', bin, path.join(__dirname, 'allreduce.c')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mpicc failed (apt-get install libopenmpi-dev): ${(r.stderr || r.error?.message || '').slice(-300)}`);
  return bin;
}

(async () => {
  if (spawnSync('mpirun', ['--version']).status !== 0) throw new Error('mpirun not found: apt-get install openmpi-bin libopenmpi-dev');
  const sizes = (quick ? [1 << 10, 1 << 18, 1 << 22] : [1 << 10, 1 << 12, 1 << 16, 1 << 18, 1 << 20, 1 << 22, 1 << 24]);
  const peerBin = buildPeer();
  let peer;
  try {
    peer = mpirun(2, [peerBin, ...sizes.map(String)]);
  } finally {
    fs.rmSync(peerBin, { force: true });
  }
  const ours = mpirun(2, [process.execPath, child, 'allreduce', ...sizes.map(String)]);
  const result = {
    allreduce: sizes.map((n, i) => ({ bytes: 4 * n, convkit_s: ours.seconds[i], convkit_in_place_s: ours.inPlaceSeconds[i], mpi_s: peer.seconds[i] })),
    fit: {},
  };
  const gbs = (bytes, s) => (bytes / s / 1e9).toFixed(2).padStart(6);
  log('allreduce, 2 ranks (GB/s = bytes / time per call; % of MPI_Allreduce in a plain C program)');
  for (const r of result.allreduce) {
    log(`  ${(r.bytes / 1024).toFixed(0).padStart(8)} KB  MPI ${gbs(r.bytes, r.mpi_s)}  convkit in place ${gbs(r.bytes, r.convkit_in_place_s)} (${(100 * r.mpi_s / r.convkit_in_place_s).toFixed(0)}%)` +
      `  into a new tensor ${gbs(r.bytes, r.convkit_s)} (${(100 * r.mpi_s / r.convkit_s).toFixed(0)}%)`);
  }
  for (const [w, batch, n] of [['w1', 100, quick ? 600 : 2000], ['w2', 64, quick ? 192 : 640]]) {
    const local = mpirun(1, [process.execPath, child, 'fit', w, String(batch), String(n), 'local']);
    const one = mpirun(1, [process.execPath, child, 'fit', w, String(batch), String(n)]);
    const two = mpirun(2, [process.execPath, child, 'fit', w, String(batch), String(n)]);
    result.fit[w] = { local: local.images_per_s, one_rank: one.images_per_s, two_ranks: two.images_per_s };
    log(`${w.toUpperCase()} training, batch ${batch} per rank, 1 thread per rank: 1 rank ${local.images_per_s.toFixed(0)} img/s; ` +
      `with distributed ${one.images_per_s.toFixed(0)} (overhead ${(100 * (1 - one.images_per_s / local.images_per_s)).toFixed(1)}%); ` +
      `2 ranks ${two.images_per_s.toFixed(0)} (x${(two.images_per_s / local.images_per_s).toFixed(2)})`);
  }
  if (asJson) console.log(JSON.stringify(result));
})().catch((e) => {
  console.error(`bench:distributed: ${e.message || e}`);
  process.exit(1);
});
