// Ordered sums (ck.distributed.init's orderedSum) against one process (fit's gradientSlices):
// under mpirun on 2 and 4 ranks (child script test-support/children/distributed-ordered.js), a
// data-parallel fit whose every gradient bucket is gathered and added in rank order must give, bit
// for bit, the weights of one process that trains each global batch as that many slices, each
// alone, their gradients added in slice order; one process without slices gives other bits (the
// same sums in another association), as does 4 ranks' MPI_Allreduce (checked by hand when this
// was written: the test fails with orderedSum off). Needs Open MPI's mpirun (CI installs it).
import { beforeAll, describe, expect, test } from '@jest/globals';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ck from '../lib';

const script = path.join(__dirname, '..', 'test-support', 'children', 'distributed-ordered.js');
// A job that has not ended by then hangs: the test fails instead of waiting forever.
const JOB_LIMIT_MS = 90000;

interface Report {
  rank: number;
  ranks?: number[][][];  // each epoch's weights
  slices?: number[][][];
  plain?: number[][][];
  error?: { name: string; message: string };
}

// The environment of mpirun, less that of a launcher that may have started this process; one
// thread per process, ranks and the one process alike (the slices' sums split over threads as
// the ranks' do with as many).
function plainEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CONVKIT_THREADS: '1' };
  for (const k of Object.keys(env)) if (/^(OMPI_|PMIX_|PMI_)/.test(k)) delete env[k];
  return env;
}

function job(ranks: number, scenario: string): Report[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ck-ordered-'));
  try {
    const r = spawnSync('mpirun', ['--allow-run-as-root', '--oversubscribe', '-np', String(ranks), process.execPath, script, scenario, dir],
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
    throw new Error('test/distributed-ordered.test.ts needs Open MPI\'s mpirun: apt-get install openmpi-bin libopenmpi-dev');
  }
});

describe('orderedSum', () => {
  test.each([2, 4])('%i ranks give the weights of one process with gradientSlices, bit for bit, after every epoch', (ranks) => {
    const reports = job(ranks, 'fit');
    const [first] = reports;
    // bitwise: JSON writes every float32 exactly
    for (const r of reports) expect(r.ranks).toEqual(first.ranks);
    expect(first.ranks).toHaveLength(2);
    expect(first.slices).toEqual(first.ranks);
    // The same sums in another association: close, not equal (the comparison above can fail).
    expect(first.plain).not.toEqual(first.ranks);
    first.plain!.forEach((epoch, e) => epoch.forEach((w, k) => w.forEach((v, i) => {
      expect(Math.abs(v - first.ranks![e][k][i])).toBeLessThan(1e-4);
    })));
    // training happened
    expect(first.ranks![1].some((w, k) => w.some((v, i) => Math.abs(v - first.ranks![0][k][i]) > 1e-3))).toBe(true);
  });

  test('ranks that disagree on orderedSum all fail when fit starts, naming it', () => {
    const reports = job(2, 'disagree');
    for (const r of reports) {
      expect(r.error).toEqual({ name: 'DistributedError', message: expect.stringContaining("distributed.init's orderedSum: rank 0 has 1, rank 1 has 0") });
    }
  });

  test('orderedSum must be a boolean', async () => {
    await expect(ck.distributed.init({ orderedSum: 1 as never })).rejects.toThrow(new ck.ValueError('distributed.init: orderedSum must be a boolean, got 1'));
  });
});

describe('gradientSlices', () => {
  function model(): ck.Sequential {
    ck.setSeed(1);
    const m = ck.sequential([ck.layers.dense({ inputShape: [3], units: 2, activation: 'softmax' })]);
    m.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.5 }), loss: 'sparseCategoricalCrossentropy' });
    return m;
  }
  const x = ck.tensor(Float32Array.from({ length: 30 }, (_, i) => Math.sin(i)), [10, 3]);
  const y = ck.tensor(Float32Array.from({ length: 10 }, (_, i) => i % 2), [10]);

  test('one slice trains as without the option; more slices sum the same gradients (close)', async () => {
    const plain = model(), one = model(), three = model();
    await plain.fit(x, y, { batchSize: 10, epochs: 3, verbose: 0, seed: 2 });
    await one.fit(x, y, { batchSize: 10, epochs: 3, verbose: 0, seed: 2, gradientSlices: 1 });
    // 3 slices of a 10-row batch (3, 3 and 4 rows), and 12 of it: two empty slices included
    await three.fit(x, y, { batchSize: 10, epochs: 3, verbose: 0, seed: 2, gradientSlices: 12 });
    const w = (m: ck.Sequential) => m.getWeights().map((t) => Array.from(t.dataSync()));
    expect(w(one)).toEqual(w(plain));
    w(three).forEach((t, k) => t.forEach((v, i) => expect(v).toBeCloseTo(w(plain)[k][i], 5)));
    expect(w(plain)).not.toEqual(w(model()));
  });

  test('bad values are ValueErrors', async () => {
    const m = model();
    await expect(m.fit(x, y, { gradientSlices: 0, verbose: 0 })).rejects.toThrow(new ck.ValueError(`${m.name}.fit: gradientSlices must be an integer >= 1, got 0`));
    await expect(m.fit(x, y, { gradientSlices: 1.5, verbose: 0 })).rejects.toThrow(new ck.ValueError(`${m.name}.fit: gradientSlices must be an integer >= 1, got 1.5`));
    const comm = await ck.distributed.init();
    await expect(m.fit(x, y, { gradientSlices: 2, distributed: comm, verbose: 0 })).rejects.toThrow(new ck.ValueError(
      `${m.name}.fit: gradientSlices trains one process as that many ranks would; not with distributed`));
  });
});
