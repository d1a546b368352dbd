// Data-parallel fit with syncBatchNorm under mpirun on 2 and 4 ranks (child script
// test-support/children/distributed-syncbn.js): the batch norms' statistics summed over the
// ranks make fit and fitDataset equal one process training on the same global batches (weights
// and moving statistics, within float rounding: the sums are added in another order), where
// without it they differ; a last global batch of one row leaves ranks without rows, which still
// join every sum; a rank whose step fails before its sums (out of memory) stops every rank at that
// step. native/tests/test_batchnorm_sync.cpp checks the split kernels.
// Needs Open MPI's mpirun (apt-get install openmpi-bin); CI installs it.
import { beforeAll, describe, expect, test } from '@jest/globals';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ck from '../lib';

const script = path.join(__dirname, '..', 'test-support', 'children', 'distributed-syncbn.js');
// A job that has not ended by then hangs: the test fails instead of waiting forever.
const JOB_LIMIT_MS = 120000;

interface Report {
  rank: number;
  synced?: number[][];
  unsynced?: number[][];
  alone?: number[][];
  dataset?: number[][];
  datasetAlone?: number[][];
  loss?: number[];
  aloneLoss?: number[];
  iterations: number;
  error?: { name: string; isDistributedError: boolean; message: string };
}

function plainEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CONVKIT_THREADS: '1' };
  for (const k of Object.keys(env)) if (/^(OMPI_|PMIX_|PMI_)/.test(k)) delete env[k];
  return env;
}

function job(ranks: number, args: string[]): Report[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ck-syncbn-'));
  try {
    const r = spawnSync('mpirun', ['--allow-run-as-root', '--oversubscribe', '-np', String(ranks), process.execPath, script, ...args, dir],
      { env: plainEnv(), encoding: 'utf8', timeout: JOB_LIMIT_MS, killSignal: 'SIGKILL' });
    if (r.error) throw r.error;
    expect({ status: r.status, signal: r.signal, output: r.status === 0 ? '' : `${r.stdout}${r.stderr}` })
      .toEqual({ status: 0, signal: null, output: '' });
    return [...Array(ranks).keys()].map((rank) => JSON.parse(fs.readFileSync(path.join(dir, `rank${rank}.json`), 'utf8')) as Report);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// The largest difference between two sets of weights, relative to the reference's scale.
function maxDiff(a: number[][], b: number[][]): number {
  expect(a.map((w) => w.length)).toEqual(b.map((w) => w.length));
  let worst = 0;
  a.forEach((w, k) => w.forEach((v, i) => {
    worst = Math.max(worst, Math.abs(v - b[k][i]) / Math.max(1, Math.abs(b[k][i])));
  }));
  return worst;
}

beforeAll(() => {
  const found = spawnSync('mpirun', ['--version'], { encoding: 'utf8' });
  if (found.error || found.status !== 0) {
    throw new Error('test/distributed-syncbn.test.ts needs Open MPI\'s mpirun: apt-get install openmpi-bin libopenmpi-dev');
  }
});

describe('syncBatchNorm', () => {
  // 41 examples in batches of 8: the last global batch has one row, so ranks 0 (2 ranks) or 0-2
  // (4 ranks) take that step without rows. The model's weights: conv kernel, gamma, beta,
  // moving mean, moving variance, dense kernel and bias, beta, moving mean and variance, dense.
  test.each([2, 4])('%i ranks: fit and fitDataset equal one process on the global batches, weights and moving statistics; without it they differ', (ranks) => {
    const reports = job(ranks, ['fit', '41']);
    for (const r of reports) {
      expect(r.iterations).toBe(12);
      // every rank holds the same weights (the moving statistics too)
      expect(maxDiff(r.synced!, reports[0].synced!)).toBeLessThan(1e-6);
      expect(maxDiff(r.dataset!, reports[0].dataset!)).toBeLessThan(1e-6);
    }
    const r = reports[0];
    expect(maxDiff(r.synced!, r.alone!)).toBeLessThan(2e-4);
    expect(maxDiff(r.dataset!, r.datasetAlone!)).toBeLessThan(2e-4);
    r.loss!.forEach((l, e) => expect(l).toBeCloseTo(r.aloneLoss![e], 4));
    // each rank's own statistics (and the moving ones averaged) are another training
    expect(maxDiff(r.unsynced!, r.alone!)).toBeGreaterThan(1e-2);
    // training happened: the moving statistics moved from Keras's start (mean 0, variance 1)
    expect(Math.max(...r.alone![3].map(Math.abs))).toBeGreaterThan(0.1);
  });

  test.each([2, 4])('%i ranks: a rank whose step fails before its batch norms\' sums stops every rank at that step', (ranks) => {
    const reports = job(ranks, ['fault']);
    for (const r of reports) {
      expect(r.iterations).toBe(0);
      expect(r.error).toBeDefined();
      if (r.rank === ranks - 1) {
        expect(r.error!.isDistributedError).toBe(false);
      } else {
        expect(r.error!.isDistributedError).toBe(true);
        expect(r.error!.message).toContain(`rank ${ranks - 1} failed`);
      }
    }
  });

  test('syncBatchNorm must be a boolean, and needs distributed', async () => {
    const m = ck.sequential([ck.layers.dense({ inputShape: [2], units: 1 })]);
    m.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
    const x = ck.zeros([2, 2]), y = ck.zeros([2, 1]);
    await expect(m.fit(x, y, { syncBatchNorm: 'yes' as never, verbose: 0 })).rejects.toThrow(
      new ck.ValueError('sequential.fit: syncBatchNorm must be a boolean, got "yes"'));
    await expect(m.fit(x, y, { syncBatchNorm: true, verbose: 0 })).rejects.toThrow(
      new ck.ValueError('sequential.fit: syncBatchNorm sums the batch norms\' statistics over the ranks of a data-parallel fit; give it with distributed'));
  });
});
