#!/usr/bin/env node
// comm.allreduce's bandwidth alone, against MPI_Allreduce in a plain C program (allreduce.c,
// built here with mpicc), 2 ranks, 4 KB to 64 MB: the allreduce table of npm run
// bench:distributed without its training runs, so that it fits in a minute.
//   node scripts/bench/allreduce.js [--quick] [--json] [--rounds N] [--addon LABEL=PATH ...]
// --addon times convkit with another build of the addon too (CONVKIT_ADDON=PATH), in the same
// run: a before/after comparison on one machine in one state.
// Needs Open MPI with its compiler wrapper (apt-get install openmpi-bin libopenmpi-dev).
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const args = process.argv.slice(2);
const asJson = args.includes('--json');
const quick = args.includes('--quick');
const addons = [['this build', undefined]];
args.forEach((a, i) => {
  if (a !== '--addon') return;
  const [label, file] = args[i + 1].split('=');
  addons.unshift([label, path.resolve(file)]);
});
const child = path.join(__dirname, 'distributed-child.js');
// The launcher runs as root in CI containers; these let it (never set in convkit itself).
const env = { ...process.env, OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMPI_MCA_rmaps_base_oversubscribe: '1' };

function mpirun(command, extra = {}) {
  const r = spawnSync('mpirun', ['-np', '2', ...command], { encoding: 'utf8', env: { ...env, ...extra }, timeout: 300000 });
  if (r.status !== 0) throw new Error(`mpirun -np 2 ${command.join(' ')} failed: ${(r.stderr || r.error?.message || '').slice(-500)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

const sizes = quick ? [1 << 10, 1 << 18, 1 << 20, 1 << 22] : [1 << 10, 1 << 16, 1 << 18, 1 << 20, 1 << 22, 1 << 24];
const bin = path.join(os.tmpdir(), `convkit-bench-allreduce-${process.pid}`);
const built = spawnSync('mpicc', ['-O2', '-o', bin, path.join(__dirname, 'allreduce.c')], { encoding: 'utf8' });
if (built.status !== 0) throw new Error(`mpicc failed (apt-get install libopenmpi-dev): ${(built.stderr || built.error?.message || '').slice(-300)}`);
// --rounds N (default 1) runs MPI and each build N times, interleaved, and keeps each figure's
// fastest, with MPI run once more at the end: a shared VM's figures vary by 2x from one run to
// the next, and a disturbance only ever slows a run down.
const rounds = args.includes('--rounds') ? Number(args[args.indexOf('--rounds') + 1]) : 1;
const fastest = (a, b) => (a ? a.map((s, i) => Math.min(s, b[i])) : b);
const result = { sizes, rounds, mpi_s: null, convkit: {} };
try {
  for (let r = 0; r < rounds; r++) {
    result.mpi_s = fastest(result.mpi_s, mpirun([bin, ...sizes.map(String)]).seconds);
    for (const [label, file] of addons) {
      const got = mpirun([process.execPath, child, 'allreduce', ...sizes.map(String)], file ? { CONVKIT_ADDON: file } : {});
      const had = result.convkit[label] ?? {};
      result.convkit[label] = Object.fromEntries(['seconds', 'disposedSeconds', 'inPlaceSeconds'].map((k) => [k, fastest(had[k], got[k])]));
    }
  }
  result.mpi_s = fastest(result.mpi_s, mpirun([bin, ...sizes.map(String)]).seconds);
} finally {
  fs.rmSync(bin, { force: true });
}
const peer = { seconds: result.mpi_s };
if (asJson) {
  console.log(JSON.stringify(result));
} else {
  const gbs = (bytes, s) => (bytes / s / 1e9).toFixed(2);
  const pct = (mpi, s) => `${(100 * mpi / s).toFixed(0)}%`;
  console.log('allreduce, 2 ranks: GB/s = bytes / time per call (% of MPI_Allreduce in a plain C program)');
  console.log(`| buffer | MPI | ${addons.map(([l]) => `${l}: in place | ${l}: new, disposed | ${l}: new, to the GC`).join(' | ')} |`);
  console.log(`|---|---|${addons.map(() => '---|---|---|').join('')}`);
  sizes.forEach((n, i) => {
    const bytes = 4 * n;
    const cells = addons.map(([l]) => {
      const c = result.convkit[l];
      return [c.inPlaceSeconds, c.disposedSeconds, c.seconds].map((t) => `${gbs(bytes, t[i])} (${pct(peer.seconds[i], t[i])})`).join(' | ');
    });
    console.log(`| ${bytes >= 1 << 20 ? `${bytes / (1 << 20)} MB` : `${bytes / 1024} KB`} | ${gbs(bytes, peer.seconds[i])} | ${cells.join(' | ')} |`);
  });
}
