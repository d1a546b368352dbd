// ck.distributed on Open MPI: jobs of 2 and 3 ranks started by mpirun on this machine (child
// script test-support/children/distributed.js) must get exact sums and broadcasts, and a rank
// that throws, hangs or lacks the library must end the job with one clear error, never a hang.
// A data-parallel fit on 2 and 4 ranks must keep the ranks' weights bitwise equal and match one
// process training the same global batches; a rank that fails mid-fit must make every rank fail
// with its message at the same step, none applying it, and none waiting for the timeout; so must
// a rank whose fit rejects its own arguments, at the ranks' fingerprint exchange.
// `convkit train --distributed` under mpirun must train as one job, rank 0 alone printing and
// writing the run folder, and --resume must continue it as if never interrupted.
// Needs Open MPI's mpirun (apt-get install openmpi-bin); CI installs it.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ck from '../lib';
import { CLI, ensureBuilt, makeShapeFolder, tmpDir } from '../test-support/cli-fixtures';

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

function mpirun(ranks: number, scenario: string | string[], extra: Record<string, string> = {}): Job {
  return run('mpirun', ['--allow-run-as-root', '--oversubscribe', '-np', String(ranks), process.execPath, script,
    ...[scenario].flat()], plainEnv(extra));
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
      expect(r.pooledWrong).toEqual([0, 0]);
      expect(r.inPlaceSame).toBe(true);
      expect(r.inPlaceWrong).toBe(0);
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
      queuedSumWrong: 0, queuedSumLength: 8 * 62 * 62 * 16, pooledWrong: [0, 0], inPlaceSame: true, inPlaceWrong: 0, smallAfter: [1, -2, 0.5],
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
    await expect(comm.allreduce(x, { inplace: true } as never)).rejects.toThrow(new ck.ValueError("distributed.allreduce: unknown option 'inplace' (expected inPlace)"));
    await expect(comm.allreduce(x, { inPlace: 1 } as never)).rejects.toThrow(/inPlace must be a boolean, got 1/);
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

interface FitReport {
  rank: number;
  epochs: { logs: Record<string, number>; weights: number[][]; lastStep?: number[][] }[];
  iterations: number;
}

// The reports a fit scenario's ranks wrote into a fresh folder.
function fitReports(ranks: number, start: (dir: string) => Job): { job: Job; reports: FitReport[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ck-dist-'));
  try {
    const job = start(dir);
    const reports = [...Array(ranks).keys()].flatMap((r) => {
      const file = path.join(dir, `rank${r}.json`);
      return fs.existsSync(file) ? [JSON.parse(fs.readFileSync(file, 'utf8')) as FitReport] : [];
    });
    return { job, reports };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function maxDifference(a: number[][], b: number[][]): number {
  let worst = 0;
  a.forEach((w, k) => w.forEach((v, i) => { worst = Math.max(worst, Math.abs(v - b[k][i])); }));
  return worst;
}

describe('data-parallel fit on 2 and 4 ranks', () => {
  // One process on the same global batches (plain fit, no communicator) is the reference; the
  // ranks but 0 start from other weights and optimizer state, so agreeing with it needs rank 0's.
  function check(ranks: number, n: number, stepsPerEpoch: number, ...options: string[]): void {
    const { job, reports } = fitReports(ranks, (dir) => mpirun(ranks, ['fit', String(n), dir, ...options]));
    expect(job.signal).toBeNull();
    expect(job.status).toBe(0);
    expect(reports.map((r) => r.rank)).toEqual([...Array(ranks).keys()]);
    const reference = fitReports(1, (dir) => run(process.execPath, [script, 'reference', String(n), dir, ...options], plainEnv()));
    expect(reference.job.status).toBe(0);
    const [one] = reference.reports;
    const [first, ...others] = reports;
    expect(first.epochs).toHaveLength(2);
    first.epochs.forEach((epoch, e) => {
      for (const other of others) {
        // bitwise: JSON writes every float32 exactly
        expect(other.epochs[e].weights).toEqual(epoch.weights);
        expect(other.epochs[e].logs).toEqual(epoch.logs);
      }
      // the same sums in another order (float32 rounding only)
      expect(maxDifference(epoch.weights, one.epochs[e].weights)).toBeLessThan(2e-6);
      expect(epoch.logs.loss).toBeCloseTo(one.epochs[e].logs.loss, 5);
      expect(epoch.logs.accuracy).toBe(one.epochs[e].logs.accuracy);
      // a native metric's counts, summed over the ranks with the loss sums
      expect(epoch.logs.top2).toBe(one.epochs[e].logs.top2);
    });
    // the weights moved (training happened) and the step count is rank 0's, not rank 1's + 1
    expect(maxDifference(first.epochs[1].weights, first.epochs[0].weights)).toBeGreaterThan(0.01);
    for (const r of reports) expect(r.iterations).toBe(2 * stepsPerEpoch);
    expect(one.iterations).toBe(2 * stepsPerEpoch);
    // only rank 0 prints progress
    expect(occurrences(job.output, 'Epoch 2/2')).toBe(1);
  }

  test.each([2, 4])('%i ranks, 5 full global batches of 8 per epoch: the ranks stay bitwise equal and match one process', (ranks) => {
    check(ranks, 40, 5);
  });

  test.each([2, 4])('%i ranks, a last batch of 1 row: the ranks without any of it still take the step (no hang, same result)', (ranks) => {
    check(ranks, 41, 6);
  });

  test.each([[2, 40, 5], [4, 41, 6]])('dropout: %i ranks draw the masks of their rows\' places in the global batch, so they match one process', (ranks, n, steps) => {
    check(ranks, n, steps, 'dropout');
  });

  test('no seed: the ranks shuffle alike (rank 0 draws the seed), so their shares of one whole-dataset batch make it up exactly', () => {
    check(2, 40, 1, 'whole');
  });

  test('batch norm: local batch statistics, moving statistics averaged at each epoch end, so the ranks stay bitwise equal', () => {
    const { job, reports } = fitReports(2, (dir) => mpirun(2, ['fit', '40', dir, 'batchnorm']));
    expect(job.status).toBe(0);
    const [first, second] = reports;
    expect(first.epochs).toHaveLength(2);
    expect(first.epochs[0].weights).toHaveLength(8);  // conv 2, batch norm 4 (gamma, beta, moving mean and variance), dense 2
    first.epochs.forEach((epoch, e) => {
      expect(second.epochs[e].weights).toEqual(epoch.weights);
      // each rank's statistics came from its own rows; the epoch's end gives both their float32 mean
      const [mine, theirs] = [epoch.lastStep!, second.epochs[e].lastStep!];
      for (const k of [4, 5]) {
        expect(mine[k]).not.toEqual(theirs[k]);
        expect(epoch.weights[k]).toEqual(mine[k].map((v, i) => Math.fround(Math.fround(v + theirs[k][i]) / 2)));
      }
    });
    // the moving statistics moved from their initial zeros and ones
    const [mean, variance] = [first.epochs[1].weights[4], first.epochs[1].weights[5]];
    expect(Math.max(...mean.map(Math.abs))).toBeGreaterThan(1e-3);
    expect(Math.max(...variance.map((v) => Math.abs(v - 1)))).toBeGreaterThan(1e-3);
  });

  test('a rank whose fit or fitDataset rejects its own arguments: the others fail at the fingerprint exchange with its message, at once, and train once it agrees', () => {
    // timeoutMs is 10 minutes: a rank left waiting for the timeout would outlast JOB_LIMIT_MS
    const job = mpirun(2, 'refuse');
    expect(job.signal).toBeNull();
    expect(job.status).toBe(0);
    const fit = 'ValueError: sequential.fit: epochs must be an integer >= 1, got 0';
    const fitDataset = 'ValueError: sequential.fitDataset: epochs must be a positive integer, got 0';
    const own = (text: string) => ({ name: 'ValueError', isDistributedError: false, message: text.slice('ValueError: '.length) });
    const theirs = (where: string, text: string) => ({ name: 'DistributedError', isDistributedError: true,
      message: `sequential.${where}: every rank stopped before training, because rank 1 failed: ${text}` });
    expect(job.reports.sort((a, b) => (a.rank as number) - (b.rank as number))).toEqual([
      { rank: 0, fit: theirs('fit', fit), fitDataset: theirs('fitDataset', fitDataset), agreed: 'trained' },
      { rank: 1, fit: own(fit), fitDataset: own(fitDataset), agreed: 'trained' },
    ]);
  });

  test('a stop asked by one rank mid-epoch: every rank finishes that epoch and stops', () => {
    const job = mpirun(2, 'stop');
    expect(job.signal).toBeNull();
    expect(job.status).toBe(0);
    expect(job.reports.sort((a, b) => (a.rank as number) - (b.rank as number))).toEqual([
      { rank: 0, epochs: [0], iterations: 5 }, { rank: 1, epochs: [0], iterations: 5 }]);
  });

  test('a rank that stalls mid-epoch: the others\' step fails after timeoutMs with a DeviceError, ending the job', () => {
    const job = mpirun(2, 'stall');
    expect(job.signal).toBeNull();
    expect(job.status).not.toBe(0);
    expect(occurrences(job.output, 'DeviceError: distributed.allreduce of the gradients: not every rank took part '
      + 'within timeoutMs (5000 ms)')).toBe(1);
    expect(job.output).toContain('exited with non-zero status');
  });

  test('ranks that call fit differently throw the same DistributedError naming the fields, and train once they agree', () => {
    const job = mpirun(2, 'fingerprint');
    expect(job.signal).toBeNull();
    expect(job.status).toBe(0);
    const tail = ' (every rank must run fit with the same model, optimizer and arguments on data of the same length)';
    const error = (message: string) => ({ name: 'DistributedError', isDistributedError: true, message: message + tail });
    const expected = {
      batch: error('sequential.fit: the ranks disagree on batchSize (the global batch): rank 0 has 8, rank 1 has 6; '
        + 'the number of training examples: rank 0 has 40, rank 1 has 39'),
      layout: error('sequential_1.fit: the ranks disagree on the model (its layers and weight shapes): rank 0 has one, '
        + 'rank 1 has another; the parameter count: rank 0 has 151, rank 1 has 188'),
      seed: error('sequential.fit: the ranks disagree on seed: rank 0 has 7, rank 1 has none'),
      agreed: 'trained',
    };
    expect(job.reports.sort((a, b) => (a.rank as number) - (b.rank as number)))
      .toEqual([{ rank: 0, ...expected }, { rank: 1, ...expected }]);
  });
});

interface FaultReport {
  rank: number;
  error: { name: string; isDistributedError: boolean; message: string };
  iterations: number;
  sameAsApplied: boolean;
  moved: boolean;
}

describe('data-parallel fit: a rank that fails mid-fit fails every rank with its message', () => {
  // The ranks' timeoutMs is 10 minutes, far beyond JOB_LIMIT_MS: a rank left waiting for the
  // failed one would get the job killed, failing the test.
  function faultReports(ranks: number, how: string): FaultReport[] {
    const { job, reports } = fitReports(ranks, (dir) => mpirun(ranks, ['fault', how, dir]));
    expect(job.signal).toBeNull();
    expect(job.status).toBe(0);  // every rank caught its fit's error and carried on
    expect(reports.map((r) => r.rank)).toEqual([...Array(ranks).keys()]);
    return reports as unknown as FaultReport[];
  }

  // The failing (last) rank throws its own error, the others a DistributedError with its message;
  // every rank applied the same `applied` steps and no more (a fit of just those steps on the
  // same communicator gives the same weights bitwise).
  function expectFailedTogether(reports: FaultReport[], own: { name: string; message: string }, others: string, applied: number): void {
    const last = reports.length - 1;
    for (const r of reports) {
      if (r.rank === last) {
        expect(r.error).toEqual({ ...own, isDistributedError: false });
      } else {
        expect(r.error).toEqual({ name: 'DistributedError', isDistributedError: true, message: others });
      }
      expect(r.iterations).toBe(applied);
      expect(r.sameAsApplied).toBe(true);
      expect(r.moved).toBe(applied > 0);
    }
  }

  test.each([2, 4])('%i ranks, the last rank\'s callback throws before batch 2: the steps it had queued apply, then every rank stops at the next', (ranks) => {
    const reports = faultReports(ranks, 'callback');
    const own = `bad batch on rank ${ranks - 1}`;
    // one step runs ahead of the one fit awaits on the CPU: steps 0, 1 and 2 were queued
    expectFailedTogether(reports, { name: 'Error', message: own }, 'sequential.fit: every rank stopped at the same step '
      + `without applying it, because rank ${ranks - 1} failed: Error: ${own}`, 3);
  });

  test('the last rank throws after the epoch\'s last step: the others, at the epoch\'s end, stop there', () => {
    const reports = faultReports(2, 'epochEnd');
    expectFailedTogether(reports, { name: 'ValueError', message: 'rank 1 rejects the epoch' },
      'sequential.fit: every rank stopped at the end of the epoch, because rank 1 failed: ValueError: rank 1 rejects the epoch', 5);
  });

  test('the last rank runs out of memory in its first step (native): no rank applies it', () => {
    const reports = faultReports(2, 'memory');
    const own = reports[1].error.message;
    expect(own).toMatch(/^out of host memory allocating \d+ bytes$/);
    expectFailedTogether(reports, { name: 'DeviceError', message: own },
      `sequential.fit: every rank stopped at the same step without applying it, because rank 1 failed: DeviceError: ${own}`, 0);
  });
});

describe('data-parallel fitDataset: each rank reads its own shard', () => {
  interface DatasetReport extends FitReport {
    error?: { name: string; isDistributedError: boolean; message: string };
    weights: number[][];
  }

  // One process's fit on the same global batches of 8 (no shuffling) is the reference. With 41
  // examples the last global batch has 1 row: the other ranks' shards have ended, and they take
  // that step with no rows.
  test.each([[2, 40, 5], [2, 41, 6], [4, 41, 6]])('%i ranks, %i examples: bitwise-equal ranks matching one process on the same global batches',
    (ranks, n, stepsPerEpoch) => {
    const { job, reports } = fitReports(ranks, (dir) => mpirun(ranks, ['dataset', String(n), dir]));
    expect(job.signal).toBeNull();
    expect(job.status).toBe(0);
    expect(reports.map((r) => r.rank)).toEqual([...Array(ranks).keys()]);
    const reference = fitReports(1, (dir) => run(process.execPath, [script, 'reference', String(n), dir, 'ordered'], plainEnv()));
    expect(reference.job.status).toBe(0);
    const [one] = reference.reports;
    const [first, ...others] = reports;
    expect(first.epochs).toHaveLength(2);
    first.epochs.forEach((epoch, e) => {
      for (const other of others) {
        expect(other.epochs[e].weights).toEqual(epoch.weights);
        expect(other.epochs[e].logs).toEqual(epoch.logs);
      }
      expect(maxDifference(epoch.weights, one.epochs[e].weights)).toBeLessThan(2e-6);
      expect(epoch.logs.loss).toBeCloseTo(one.epochs[e].logs.loss, 5);
      expect(epoch.logs.accuracy).toBe(one.epochs[e].logs.accuracy);
      expect(epoch.logs.top2).toBe(one.epochs[e].logs.top2);
    });
    for (const r of reports) expect(r.iterations).toBe(2 * stepsPerEpoch);
    expect(occurrences(job.output, 'Epoch 2/2')).toBe(1);
  });

  test('the last rank\'s dataset throws on bad data before its third batch: every rank stops before that step with its message', () => {
    const { job, reports } = fitReports(2, (dir) => mpirun(2, ['dataset', '40', dir, 'throw']));
    expect(job.signal).toBeNull();
    expect(job.status).toBe(0);
    const [first, second] = reports as DatasetReport[];
    const own = "a corrupt image in rank 1's shard";
    expect(second.error).toEqual({ name: 'FormatError', isDistributedError: false, message: own });
    expect(first.error).toEqual({ name: 'DistributedError', isDistributedError: true,
      message: `sequential.fitDataset: every rank stopped before the same step, because rank 1 failed: FormatError: ${own}` });
    // two steps applied on both ranks, and the same ones
    expect([first.iterations, second.iterations]).toEqual([2, 2]);
    expect(second.weights).toEqual(first.weights);
  });
});

describe('data-parallel fit: options', () => {
  test('distributed must be a communicator; alone (rank 0 of 1) fit and fitDataset train as without it', async () => {
    const model = ck.sequential([ck.layers.dense({ inputShape: [2], units: 1 })]);
    model.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
    const x = ck.tensor([1, 2, 3, 4, 5, 6], [3, 2]);
    const y = ck.tensor([1, 0, 1], [3, 1]);
    await expect(model.fit(x, y, { distributed: { rank: 0, size: 2 } as never, verbose: 0 })).rejects.toThrow(
      new ck.ValueError(`${model.name}.fit: distributed must be the communicator that ck.distributed.init() resolves to, got {"rank":0,"size":2}`));
    const comm = await ck.distributed.init();
    const start = model.getWeights();
    const alone = await model.fit(x, y, { distributed: comm, verbose: 0, seed: 3, epochs: 2, batchSize: 2 });
    const after = model.getWeights().map((w) => Array.from(w.dataSync()));
    model.setWeights(start);
    const plain = await model.fit(x, y, { verbose: 0, seed: 3, epochs: 2, batchSize: 2 });
    expect(model.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(after);
    expect(alone.history).toEqual(plain.history);
    const ds = ck.data.array([{ xs: x, ys: y }]);
    await expect(model.fitDataset(ds, { distributed: { rank: 0 } as never, verbose: 0 })).rejects.toThrow(
      new ck.ValueError(`${model.name}.fitDataset: distributed must be the communicator that ck.distributed.init() resolves to, got {"rank":0}`));
    model.setWeights(start);
    const aloneDs = await model.fitDataset(ds, { distributed: comm, verbose: 0, epochs: 2 });
    const afterDs = model.getWeights().map((w) => Array.from(w.dataSync()));
    model.setWeights(start);
    const plainDs = await model.fitDataset(ds, { verbose: 0, epochs: 2 });
    expect(model.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(afterDs);
    expect(aloneDs.history).toEqual(plainDs.history);
  });
});

describe('convkit train --distributed under mpirun', () => {
  let work: string;
  let folder: string;

  beforeAll(async () => {
    ensureBuilt();
    work = tmpDir('ck-dist-cli-');
    folder = await makeShapeFolder(path.join(work, 'shapes'), { perClass: 8, size: 16 });
  }, 60000);

  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  const trainArgs = ['train', '--distributed', '--batch-size', '8', '--image-size', '16x16', '--json'];

  // Rank r runs in wdirs[r] (so a rank that wrote a default run folder would leave it there).
  function cli(args: string[], wdirs: string[]): Job {
    const ranks = wdirs.flatMap((wdir, r) => [...(r ? [':'] : []), '-np', '1', '--wdir', wdir, process.execPath, CLI, ...args]);
    return run('mpirun', ['--allow-run-as-root', '--oversubscribe', ...ranks], plainEnv());
  }

  function lines(job: Job): Record<string, any>[] {
    expect(job.signal).toBeNull();
    expect(job.status).toBe(0);
    return job.reports;
  }

  test('2 ranks, no --seed (rank 0\'s is shared): one job, only rank 0 prints and writes the run folder', () => {
    const [first, second] = [path.join(work, 'rank0'), path.join(work, 'rank1')];
    fs.mkdirSync(first);
    fs.mkdirSync(second);
    const out = lines(cli([...trainArgs, folder, '--epochs', '2'], [first, second]));
    // rank 0's lines alone: one per epoch, then the result
    expect(out.map((l) => l.type)).toEqual(['epoch', 'epoch', 'result']);
    const result = out[2];
    expect(result).toMatchObject({ ranks: 2, epochs: 2, trainImages: 18, validationImages: 6 });
    expect(path.dirname(result.out)).toBe(path.join(first, 'runs'));
    for (const file of ['model.json', 'weights.bin', 'history.json', 'curves.png', 'checkpoint/model.json']) {
      expect(fs.existsSync(path.join(result.out, file))).toBe(true);
    }
    expect(fs.readdirSync(second)).toEqual([]);
  });

  test('outside mpirun it trains alone and says so; --device cuda is a usage error', () => {
    const alone = run(process.execPath, [CLI, ...trainArgs, folder, '--epochs', '1', '--out', path.join(work, 'alone')], plainEnv());
    expect(alone.status).toBe(0);
    expect(alone.output).toContain('convkit: warning: --distributed: this job has one process (start it with mpirun -np N convkit train ...), so it trains alone');
    expect(alone.reports.map((l) => [l.type, l.ranks])).toEqual([['epoch', undefined], ['result', 1]]);
    const cuda = run(process.execPath, [CLI, ...trainArgs, folder, '--device', 'cuda'], plainEnv());
    expect(cuda.status).toBe(2);
    expect(cuda.output).toContain('convkit: error: --distributed trains on the CPU for now; leave out --device cuda');
  });

  test('--resume under mpirun continues the run: the same weights, bit for bit, as a run never interrupted', () => {
    const [once, twice] = [path.join(work, 'once'), path.join(work, 'twice')];
    const both = [work, work];
    lines(cli([...trainArgs, folder, '--epochs', '2', '--seed', '3', '--out', once], both));
    lines(cli([...trainArgs, folder, '--epochs', '1', '--seed', '3', '--out', twice], both));
    const out = lines(cli(['train', '--resume', twice, '--epochs', '2', '--distributed', '--json'], both));
    expect(out.map((l) => l.type)).toEqual(['epoch', 'result']);
    expect(out[1]).toMatchObject({ ranks: 2, epochs: 2, resumedFrom: 1 });
    expect(fs.readFileSync(path.join(twice, 'weights.bin')).equals(fs.readFileSync(path.join(once, 'weights.bin')))).toBe(true);
    const history = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'history.json'), 'utf8')).history;
    expect(history(twice)).toEqual(history(once));
  });
});
