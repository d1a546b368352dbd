// Data-parallel fit of models compiled onto CUDA (a GPU, or the addon built on convkit's CUDA
// emulator, which scripts/cuda-emu.js runs this file with), under mpirun on 2 ranks (child script
// test-support/children/distributed-cuda.js), fit and fitDataset: the gradients go through host memory (downloaded
// after backward, summed by MPI, uploaded before the update), and with syncBatchNorm the batch
// norms' statistics too. Every rank must hold the same weights bit for bit, those of one process
// training on CUDA up to float rounding, with and without synchronised batch norm, also through a
// step in which a rank has no rows; without syncBatchNorm the batch-norm model must differ from
// one process (the option takes effect on the GPU). Needs Open MPI's mpirun (CI installs it).
// Without CUDA (the plain build), a model compiled onto CUDA cannot be made: nothing to run.
import { describe, expect, test } from '@jest/globals';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ck from '../lib';

const onCuda = ck.cudaStatus().available ? describe : describe.skip;
const script = path.join(__dirname, '..', 'test-support', 'children', 'distributed-cuda.js');
// A job that has not ended by then hangs: the test fails instead of waiting forever.
const JOB_LIMIT_MS = 180000;

interface Fit {
  epochs: number[][][];  // each epoch's weights
  loss: number[];
  iterations: number;
}
interface Report {
  rank: number;
  plain: Fit;
  synced: Fit;
  unsynced: Fit;
  dataset: Fit;
  plainAlone?: Fit;
  syncedAlone?: Fit;
  datasetAlone?: Fit;
}

// The environment of mpirun (CONVKIT_ADDON included), less that of a launcher that may have started this process.
function plainEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CONVKIT_THREADS: '1' };
  for (const k of Object.keys(env)) if (/^(OMPI_|PMIX_|PMI_)/.test(k)) delete env[k];
  return env;
}

function job(ranks: number): Report[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ck-dist-cuda-'));
  try {
    const r = spawnSync('mpirun', ['--allow-run-as-root', '--oversubscribe', '-x', 'CONVKIT_ADDON', '-np', String(ranks), process.execPath, script, dir],
      { env: plainEnv(), encoding: 'utf8', timeout: JOB_LIMIT_MS, killSignal: 'SIGKILL' });
    if (r.error) throw r.error;
    expect({ status: r.status, signal: r.signal, output: r.status === 0 ? '' : `${r.stdout}${r.stderr}` })
      .toEqual({ status: 0, signal: null, output: '' });
    return [...Array(ranks).keys()].map((rank) => JSON.parse(fs.readFileSync(path.join(dir, `rank${rank}.json`), 'utf8')) as Report);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function maxDiff(a: number[][], b: number[][]): number {
  expect(a.map((w) => w.length)).toEqual(b.map((w) => w.length));
  let worst = 0;
  a.forEach((w, k) => w.forEach((v, i) => { worst = Math.max(worst, Math.abs(v - b[k][i])); }));
  return worst;
}

onCuda('distributed fit of a CUDA model', () => {
  test('2 ranks: fit and fitDataset give the same weights on every rank, those of one process on CUDA; syncBatchNorm normalizes over the global batch', () => {
    const [first, second] = job(2);
    for (const name of ['plain', 'synced', 'unsynced', 'dataset'] as const) {
      expect(first[name].iterations).toBe(8);
      // bitwise: JSON writes every float32 exactly
      expect(second[name].epochs).toEqual(first[name].epochs);
    }
    for (const [ranks, alone] of [[first.plain, first.plainAlone!], [first.synced, first.syncedAlone!], [first.dataset, first.datasetAlone!]]) {
      ranks.epochs.forEach((weights, e) => expect(maxDiff(weights, alone.epochs[e])).toBeLessThan(1e-5));
      ranks.loss.forEach((l, e) => expect(l).toBeCloseTo(alone.loss[e], 5));
    }
    // training happened, and each rank's own batch statistics lead elsewhere
    expect(maxDiff(first.plain.epochs[1], first.plain.epochs[0])).toBeGreaterThan(1e-2);
    expect(maxDiff(first.unsynced.epochs[1], first.syncedAlone!.epochs[1])).toBeGreaterThan(1e-2);
  });
});
