// Hostile inputs (issue #9, part 1): a bounded, seeded run of the fuzzer (scripts/fuzz) over
// model.json and weights files, IDX files, images, `convkit predict`, layer configs, tensors and
// every ck.ops function, in worker processes; every case must end in a ConvkitError or a clean
// result (no crash, hang, plain Error or allocation from unchecked sizes). Each past finding is
// kept as a named regression case (scripts/fuzz/regressions.js). Longer runs: npm run fuzz.
import { describe, expect, test } from '@jest/globals';
import * as fs from 'fs';
import * as path from 'path';

interface CaseResult {
  index: number;
  target: string;
  seed: number;
  outcome: string;
  detail?: string;
  error?: { name: string; message: string; stack?: string; stderr?: string };
}
interface FuzzRun {
  cases: number;
  byTarget: Record<string, { cases: number; ok: number; typed: number; findings: number }>;
  findings: CaseResult[];
  results: CaseResult[];
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const fuzz = require('../scripts/fuzz/run') as {
  runFuzz(opts: Record<string, unknown>): Promise<FuzzRun>;
  replayCommand(r: CaseResult): string;
};
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { REGRESSIONS } = require('../scripts/fuzz/regressions') as { REGRESSIONS: { name: string; expect: string }[] };

const ROOT = path.join(__dirname, '..');
const SEED = 20260523;
const CASES = 2000;

/** A finding as one readable line with the command that replays it. */
const show = (r: CaseResult) => `${r.outcome} ${r.target}:${r.seed} ${r.detail ?? ''}\n  ${r.error?.name}: ${r.error?.message}\n  ${r.error?.stderr?.slice(0, 600) ?? ''}\n  ${fuzz.replayCommand(r)}`;

describe('fuzzing hostile inputs', () => {
  test('the fuzzer runs against the built package (dist/)', () => {
    expect(fs.existsSync(path.join(ROOT, 'dist', 'index.js'))).toBe(true);
  });

  test(`${CASES} seeded cases over every target end in a ConvkitError or a clean result`, async () => {
    const run = await fuzz.runFuzz({ cases: CASES, seed: SEED, jobs: 2 });
    expect(run.findings.map(show)).toEqual([]);
    expect(run.cases).toBe(CASES);
    // Every target ran, and each both passed and refused inputs: the mutations reach convkit's
    // real work (kernels, loaders) as well as its checks.
    for (const t of ['ops', 'tensor', 'layers', 'model', 'idx', 'images']) {
      const s = run.byTarget[t];
      expect({ t, ran: s?.cases > 20 }).toEqual({ t, ran: true });
      expect({ t, clean: s.ok > 0, typed: s.typed > 0 }).toEqual({ t, clean: true, typed: true });
    }
    expect(run.byTarget.cli?.cases ?? 0).toBeGreaterThan(0);
    expect(run.byTarget.ops.ok / run.byTarget.ops.cases).toBeGreaterThan(0.2);
  });

  test('the same seed gives the same cases and outcomes', async () => {
    const a = await fuzz.runFuzz({ cases: 60, seed: 7, targets: ['ops', 'tensor', 'layers'] });
    const b = await fuzz.runFuzz({ cases: 60, seed: 7, targets: ['ops', 'tensor', 'layers'] });
    const key = (r: FuzzRun) => r.results.map((c) => `${c.target}:${c.seed}:${c.outcome}:${c.detail}:${c.error?.message}`);
    expect(key(a)).toEqual(key(b));
    expect(new Set(a.results.map((c) => c.seed)).size).toBe(60);
  });

  test('a crash, a hang and a plain Error are each reported with the seed that replays them', async () => {
    // selftest: seed % 4 = 0 aborts, 1 hangs, 2 throws a TypeError, 3 is clean.
    const run = await fuzz.runFuzz({ replay: [8, 9, 10, 11, 4].map((seed) => ({ target: 'selftest', seed })) });
    const got = run.results.map((r) => [r.seed, r.outcome]);
    expect(got).toEqual([[8, 'crash'], [9, 'hang'], [10, 'untyped'], [11, 'ok'], [4, 'crash']]);
    expect(run.findings.map((r) => fuzz.replayCommand(r))).toContain('npm run fuzz -- --replay selftest:9');
  });
});

describe('fuzzer findings stay fixed', () => {
  let run: FuzzRun;
  const results = () => run.results;

  test('every regression case runs in a worker', async () => {
    run = await fuzz.runFuzz({ replay: REGRESSIONS.map((_, seed) => ({ target: 'regression', seed })) });
    expect(results()).toHaveLength(REGRESSIONS.length);
  });

  test.each(REGRESSIONS.map((r, i) => [r.name, i, r.expect] as const))('%s', (_name, i, want) => {
    const r = results()[i];
    const got = r.outcome === 'typed' ? r.error!.name : r.outcome;
    expect({ got, error: got === want ? undefined : r.error }).toEqual({ got: want, error: undefined });
  });
});
