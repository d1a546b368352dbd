// Data-parallel fit with the gradients summed in buckets (ck.distributed.init's bucketCapMb),
// under mpirun on 2 and 4 ranks (child script test-support/children/distributed-buckets.js): a
// bucket per layer, a few layers per bucket and one bucket (the whole buffer in one allreduce)
// must give the same weights bit for bit on every rank, each element being summed by one
// allreduce of the same floats; and a rank that fails mid-fit must still stop every rank at the
// same step, none applying it, with buckets in flight. native/tests/test_core_buckets.cpp checks
// where the buckets are cut and that each goes out with its final values before backward ends.
// Needs Open MPI's mpirun (apt-get install openmpi-bin); CI installs it.
import { beforeAll, describe, expect, test } from '@jest/globals';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ck from '../lib';

const script = path.join(__dirname, '..', 'test-support', 'children', 'distributed-buckets.js');
// A job that has not ended by then hangs: the test fails instead of waiting forever.
const JOB_LIMIT_MS = 90000;

interface Report {
  rank: number;
  epochs?: { logs: Record<string, number>; weights: number[][] }[];
  iterations: number;
  error?: { name: string; isDistributedError: boolean; message: string };
  sameAsApplied?: boolean;
  moved?: boolean;
}

// The environment of mpirun, less that of a launcher that may have started this process.
function plainEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CONVKIT_THREADS: '1' };
  for (const k of Object.keys(env)) if (/^(OMPI_|PMIX_|PMI_)/.test(k)) delete env[k];
  return env;
}

// Runs the scenario on `ranks` ranks; every rank's report.
function job(ranks: number, args: string[]): Report[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ck-buckets-'));
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

beforeAll(() => {
  const found = spawnSync('mpirun', ['--version'], { encoding: 'utf8' });
  if (found.error || found.status !== 0) {
    throw new Error('test/distributed-buckets.test.ts needs Open MPI\'s mpirun: apt-get install openmpi-bin libopenmpi-dev');
  }
});

describe('gradients summed in buckets', () => {
  // The model's layers hold 40, 222, 440 and 27 floats of weights (conv, conv, dense, dense):
  // 1e-6 MiB (one float) cuts a bucket per layer, 0.001 MiB (262 floats) two buckets, Infinity one.
  test.each([2, 4])('%i ranks: a bucket per layer, two buckets and one give the same weights, bit for bit, on every rank', (ranks) => {
    const runs = ['1e-6', '0.001', 'Infinity'].map((cap) => job(ranks, ['fit', '41', cap]));
    const [perLayer, two, one] = runs;
    for (const reports of runs) {
      expect(reports.map((r) => r.iterations)).toEqual(Array(ranks).fill(12));
      for (const r of reports) {
        // bitwise: JSON writes every float32 exactly
        expect(r.epochs).toEqual(one[0].epochs);
      }
    }
    expect(perLayer[0].epochs).toHaveLength(2);
    // training happened
    const [start, end] = [one[0].epochs![0].weights, one[0].epochs![1].weights];
    expect(start.some((w, k) => w.some((v, i) => Math.abs(v - end[k][i]) > 1e-3))).toBe(true);
    expect(two[0].epochs![1].logs.loss).toBe(one[0].epochs![1].logs.loss);
  });

  test('bucketCapMb must be a positive number', async () => {
    for (const bad of [0, -1, Number.NaN, '25']) {
      await expect(ck.distributed.init({ bucketCapMb: bad as never })).rejects.toThrow(new ck.ValueError(
        `distributed.init: bucketCapMb must be a positive number of MiB (Infinity: one bucket), got ${bad === '25' ? '"25"' : String(bad)}`));
    }
  });
});

describe('a rank that fails mid-fit, with buckets in flight', () => {
  // The failing (last) rank throws its own error, the others a DistributedError with its
  // message; every rank applied the same `applied` steps and no more.
  function expectFailedTogether(reports: Report[], own: { name: string; message: string }, others: string, applied: number): void {
    const last = reports.length - 1;
    for (const r of reports) {
      expect(r.error).toEqual(r.rank === last ? { ...own, isDistributedError: false }
        : { name: 'DistributedError', isDistributedError: true, message: others });
      expect(r.iterations).toBe(applied);
      expect(r.sameAsApplied).toBe(true);
      expect(r.moved).toBe(applied > 0);
    }
  }

  test.each([2, 4])('%i ranks, the last rank\'s callback throws before batch 2: the queued steps apply, the next has its buckets skipped on every rank', (ranks) => {
    const reports = job(ranks, ['fault', 'callback', '1e-6']);
    const own = `bad batch on rank ${ranks - 1}`;
    expectFailedTogether(reports, { name: 'Error', message: own },
      `sequential.fit: every rank stopped at the same step without applying it, because rank ${ranks - 1} failed: Error: ${own}`, 3);
  });

  test('the last rank runs out of memory in its first step: it hands its buckets over at the step\'s end, and no rank applies the step', () => {
    const reports = job(2, ['fault', 'memory', '1e-6']);
    const own = reports[1].error!.message;
    expect(own).toMatch(/^out of host memory allocating \d+ bytes$/);
    expectFailedTogether(reports, { name: 'DeviceError', message: own },
      `sequential.fit: every rank stopped at the same step without applying it, because rank 1 failed: DeviceError: ${own}`, 0);
  });
});
