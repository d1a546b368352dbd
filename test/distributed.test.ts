// ck.distributed on Open MPI: jobs of 2 and 3 ranks started by mpirun on this machine (child
// script test-support/children/distributed.js) must get exact sums and broadcasts, and a rank
// that throws, hangs or lacks the library must end the job with one clear error, never a hang.
// Needs Open MPI's mpirun (apt-get install openmpi-bin); CI installs it.
import { beforeAll, describe, expect, test } from '@jest/globals';
import { spawnSync } from 'child_process';
import * as path from 'path';
import * as ck from '../lib';

const script = path.join(__dirname, '..', 'test-support', 'children', 'distributed.js');
// A job that has not ended by then hangs: the test fails instead of waiting forever.
const JOB_LIMIT_MS = 90000;

interface Job {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  output: string;
  reports: Record<string, unknown>[];
}

// The environment of a process that no launcher started.
function plainEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CONVKIT_THREADS: '1', ...extra };
  for (const k of Object.keys(env)) if (/^(OMPI_|PMIX_|PMI_)/.test(k)) delete env[k];
  return env;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Job {
  const r = spawnSync(command, args, { env, encoding: 'utf8', timeout: JOB_LIMIT_MS, killSignal: 'SIGKILL' });
  if (r.error) throw r.error;
  const stdout = r.stdout ?? '';
  const reports = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  return { status: r.status, signal: r.signal, stdout, output: stdout + (r.stderr ?? ''), reports };
}

function mpirun(ranks: number, scenario: string, extra: Record<string, string> = {}): Job {
  return run('mpirun', ['--allow-run-as-root', '--oversubscribe', '-np', String(ranks), process.execPath, script, scenario],
    plainEnv(extra));
}

function occurrences(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

beforeAll(() => {
  const found = spawnSync('mpirun', ['--version'], { encoding: 'utf8' });
  if (found.error || found.status !== 0) {
    throw new Error('test/distributed.test.ts needs Open MPI\'s mpirun: apt-get install openmpi-bin libopenmpi-dev');
  }
});

describe('collectives under mpirun', () => {
  test.each([2, 3])('%i ranks: exact sums, both roots broadcast, inputs unchanged', (size) => {
    const job = mpirun(size, 'collectives');
    expect(job.signal).toBeNull();
    expect(job.status).toBe(0);
    const reports = job.reports.sort((a, b) => (a.rank as number) - (b.rank as number));
    expect(reports.map((r) => r.rank)).toEqual([...Array(size).keys()]);
    // rank r holds (r+1) * [1, -2, 0.5]: the sum is (1 + ... + size) times that
    const t = (size * (size + 1)) / 2;
    for (const r of reports) {
      expect(r.size).toBe(size);
      expect(r.localRank).toBe(r.rank);  // every rank runs on this machine
      expect(r.mpiLoaded).toBe(true);
      expect(r.sum).toEqual([t, -2 * t, 0.5 * t]);
      expect(r.sumShape).toEqual([3]);
      expect(r.bigSumLength).toBe(100003);
      expect(r.bigSumWrong).toBe(0);
      expect(r.queuedSumLength).toBe(8 * 62 * 62 * 16);
      expect(r.queuedSumWrong).toBe(0);
      const rank = r.rank as number;
      expect(r.smallAfter).toEqual([rank + 1, -2 * (rank + 1), 0.5 * (rank + 1)]);
      // rank q's tensor is [q+7, q+8, q+9, q+10]
      expect(r.fromLast).toEqual([size + 6, size + 7, size + 8, size + 9]);
      expect(r.fromLastShape).toEqual([2, 2]);
      expect(r.fromFirst).toEqual([7, 8, 9, 10]);
      expect(r.ownAfter).toEqual([rank + 7, rank + 8, rank + 9, rank + 10]);
    }
  });
});

describe('without a launcher', () => {
  test('rank 0 of 1, loading no MPI library; the collectives return copies', () => {
    const job = run(process.execPath, [script, 'collectives'], plainEnv());
    expect(job.status).toBe(0);
    expect(job.reports).toEqual([{
      rank: 0, size: 1, localRank: 0,
      sum: [1, -2, 0.5], sumShape: [3], bigSumWrong: 0, bigSumLength: 100003,
      queuedSumWrong: 0, queuedSumLength: 8 * 62 * 62 * 16, smallAfter: [1, -2, 0.5],
      fromLast: [7, 8, 9, 10], fromLastShape: [2, 2], fromFirst: [7, 8, 9, 10], ownAfter: [7, 8, 9, 10],
      mpiLoaded: false,
    }]);
  });

  test('bad arguments are typed errors naming the call', async () => {
    await expect(ck.distributed.init({ timeoutMs: -1 })).rejects.toThrow(
      new ck.ValueError('distributed.init: timeoutMs must be a positive number of milliseconds, got -1'));
    const comm = await ck.distributed.init({ timeoutMs: 1000 });
    expect([comm.rank, comm.size, comm.localRank]).toEqual([0, 1, 0]);
    expect(await ck.distributed.init()).toBe(comm);
    const x = ck.tensor([1, 2], [2]);
    await expect(comm.broadcast(x, 1)).rejects.toThrow(
      new ck.ValueError('distributed.broadcast: root must be a rank in [0, 0], got 1'));
    await expect(comm.allreduce([1, 2] as never)).rejects.toThrow(ck.DTypeError);
    await expect(comm.barrier()).resolves.toBeUndefined();
  });
});

describe('faults end the whole job with one clear error', () => {
  test('a rank that throws: non-zero status, its message once, the waiting rank ended by mpirun', () => {
    const job = mpirun(2, 'throw');
    expect(job.signal).toBeNull();
    expect(job.status).not.toBe(0);
    expect(occurrences(job.output, 'Error: rank 1 failed on purpose')).toBe(1);
    expect(job.output).toContain('exited with non-zero status');
  });

  test('a rank that never joins: the others time out after timeoutMs with a DeviceError', () => {
    const job = mpirun(2, 'timeout');
    expect(job.signal).toBeNull();
    expect(job.status).not.toBe(0);
    expect(occurrences(job.output,
      'DeviceError: distributed.allreduce: not every rank took part within timeoutMs (5000 ms)')).toBe(1);
  });

  test('a rank that catches the timeout (and the call queued behind it) and exits cleanly still exits non-zero, ending the job', () => {
    const job = mpirun(2, 'timeoutCaught');
    expect(job.signal).toBeNull();
    expect(job.status).not.toBe(0);
    expect(job.reports).toEqual([{
      rank: 0,
      first: 'DeviceError: distributed.allreduce: not every rank took part within timeoutMs (5000 ms): a rank is '
        + 'missing or hung, or the ranks issued different collectives',
      second: 'DeviceError: distributed.barrier: the communicator is unusable since allreduce timed out',
      third: 'DeviceError: distributed.barrier: the communicator is unusable since allreduce timed out',
    }]);
    expect(occurrences(job.output, 'convkit: distributed: MPI was not finalized because allreduce timed out; '
      + 'exiting with status 1 so that the launcher ends the job')).toBe(1);
    // the status itself ends the job (not only Open MPI's check for a missing finalize)
    expect(job.output).toContain('exited with non-zero status');
  });

  test('mpirun without a loadable library: a DeviceError saying what to install', () => {
    const job = mpirun(2, 'nolib', { CONVKIT_MPI_LIBRARY: '/nonexistent/libmpi.so.40' });
    expect(job.status).toBe(0);
    expect(job.reports).toHaveLength(2);
    for (const r of job.reports) {
      expect(r).toMatchObject({ ok: false, name: 'DeviceError', isDeviceError: true });
      expect(r.message).toContain("cannot load the MPI library '/nonexistent/libmpi.so.40'");
      expect(r.message).toContain('apt-get install openmpi-bin');
    }
  });
});
