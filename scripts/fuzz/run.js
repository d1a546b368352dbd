#!/usr/bin/env node
// convkit's fuzzer for hostile inputs (npm run fuzz): model.json and weights files, IDX files,
// images (also through `convkit predict`), layer configs, tensors and every ck.ops function,
// mutated from a seed. Cases run in child processes under an address-space limit; a case that
// crashes or hangs its process, throws anything but a ConvkitError, or makes convkit allocate
// more native memory than any valid input of its size needs, is a finding, reported with the
// command that reproduces it.
//
//   npm run fuzz -- --cases 20000 --seed 7            a longer run (default: 2000 cases, seed 1)
//   npm run fuzz -- --targets model,images            only some targets
//   npm run fuzz -- --replay ops:123456789            one case again, with its error's stack
//   npm run fuzz -- --regressions                     every past finding (scripts/fuzz/regressions.js)
//   npm run fuzz -- --asan build-asan/Release/convkit.node   against the sanitizer build
'use strict';
const { spawn } = require('child_process');
const path = require('path');
const { Rng, caseSeed } = require('./rng');
const { TARGETS, DEFAULT_WEIGHTS } = require('./targets');
const { REGRESSIONS } = require('./regressions');

const ROOT = path.join(__dirname, '..', '..');
const FINDINGS = new Set(['untyped', 'alloc', 'crash', 'hang', 'harness']);

/**
 * Runs `cases` cases (targets drawn by weight, case seeds derived from `seed`) or the given
 * `replay` list of { target, seed }, in worker processes. Resolves with every case's result.
 */
async function runFuzz(opts = {}) {
  const seed = opts.seed ?? 1;
  // CONVKIT_FUZZ_LIB / CONVKIT_FUZZ_ASAN point a run (and test/fuzz.test.ts) at another build.
  const lib = opts.lib ?? process.env.CONVKIT_FUZZ_LIB ?? path.join(ROOT, 'dist');
  const asan = opts.asan ?? process.env.CONVKIT_FUZZ_ASAN;
  const weights = opts.targets ? Object.fromEntries(opts.targets.map((t) => [t, DEFAULT_WEIGHTS[t] ?? 1])) : DEFAULT_WEIGHTS;
  for (const t of Object.keys(weights)) if (!TARGETS[t]) throw new Error(`fuzz: unknown target '${t}' (known: ${Object.keys(TARGETS).join(', ')})`);
  let cases;
  if (opts.replay) {
    cases = opts.replay.map((c, index) => ({ index, target: c.target, seed: c.seed }));
  } else {
    const pickRng = new Rng(seed * 7919 + 17);
    cases = Array.from({ length: opts.cases ?? 2000 }, (_, index) => ({ index, target: pickRng.weighted(weights) }));
    for (const c of cases) c.seed = caseSeed(seed, c.index);
  }
  const results = new Array(cases.length);
  const jobs = Math.max(1, opts.jobs ?? 1);
  // Each worker takes a contiguous slice, so a worker's cases and their order depend only on the seed.
  const slices = Array.from({ length: jobs }, (_, j) => cases.filter((_, i) => i % jobs === j));
  await Promise.all(slices.map((slice) => runSlice(slice, results, { ...opts, seed, lib, asan })));
  return summarize(results.filter(Boolean), seed);
}

async function runSlice(slice, results, opts) {
  let next = 0;
  while (next < slice.length) {
    const rest = slice.slice(next);
    const ended = await runWorker(rest, results, opts);
    next += ended;
  }
}

/** One worker over `cases`; resolves with how many of them it finished or gave up on. */
function runWorker(cases, results, opts) {
  const timeoutFor = (c) => (TARGETS[c.target].timeoutMs ?? 20000) * (opts.timeoutScale ?? 1);
  const job = {
    lib: opts.lib, root: ROOT, runSeed: opts.seed, allocLimit: opts.allocLimit ?? 1 << 30,
    cases: cases.map((c) => ({ index: c.index, target: c.target, seed: c.seed })),
  };
  // The address-space limit turns an allocation from unchecked sizes into a typed out-of-memory
  // error (a finding) instead of a machine that swaps or a process the kernel kills. Under
  // AddressSanitizer (which maps terabytes of shadow memory) its allocator limit does that.
  const env = { ...process.env, CONVKIT_THREADS: process.env.CONVKIT_THREADS ?? '2' };
  let limit = `ulimit -v ${Math.floor((opts.addressSpaceMb ?? 4096) * 1024)} && `;
  if (opts.asan) {
    Object.assign(env, asanEnv(opts.asan));
    limit = '';
  }
  const child = spawn('/bin/sh', ['-c', `${limit}exec "$0" --expose-gc "$1"`, process.execPath, path.join(__dirname, 'worker.js')], {
    cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
  });
  // The job (its case list may be long) goes through stdin.
  child.stdin.on('error', () => {});
  child.stdin.end(JSON.stringify(job));
  // Keep the start of stderr (a sanitizer's report) and its end.
  let head = '';
  let tail = '';
  child.stdout.on('data', () => {});
  child.stderr.on('data', (d) => {
    if (head.length < 3000) head += String(d).slice(0, 3000 - head.length);
    else tail = (tail + d).slice(-1500);
  });
  const stderrText = () => head + (tail ? `\n...\n${tail}` : '');
  return new Promise((resolve) => {
    let done = 0;
    let current = null;
    let timer = null;
    let buffered = '';
    const arm = () => {
      clearTimeout(timer);
      if (current) timer = setTimeout(() => child.kill('SIGKILL'), timeoutFor(current));
    };
    child.stdio[3].on('data', (d) => {
      buffered += d;
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.startsWith('S ')) {
          current = cases.find((c) => c.index === Number(line.slice(2)));
          arm();
        } else if (line.startsWith('D ')) {
          if (current) current.detail = line.slice(2);
        } else if (line.startsWith('E ')) {
          const r = JSON.parse(line.slice(2));
          results[r.index] = r;
          opts.onResult?.(r);
          done++;
          current = null;
          clearTimeout(timer);
        }
      }
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (current) {
        const hung = signal === 'SIGKILL';
        const r = {
          index: current.index, target: current.target, seed: current.seed, outcome: hung ? 'hang' : 'crash', detail: current.detail,
          error: { name: hung ? 'hang' : 'crash', message: hung ? `no result within ${timeoutFor(current)} ms` : `worker exited with ${signal ?? `code ${code}`}`, stderr: stderrText() },
        };
        results[r.index] = r;
        opts.onResult?.(r);
        done++;
      } else if (done < cases.length && code !== 0) {
        // Died between cases (setup): count the next case as the crash so the run moves on.
        const c = cases[done];
        results[c.index] = { index: c.index, target: c.target, seed: c.seed, outcome: 'crash', error: { name: 'crash', message: `worker exited with ${signal ?? `code ${code}`} outside a case`, stderr: stderrText() } };
        done++;
      }
      resolve(Math.max(done, 1));
    });
  });
}

/**
 * The environment that runs node with convkit's AddressSanitizer build (scripts/sanitize.sh):
 * libasan preloaded (node itself is not instrumented), leaks off for node's own allocations,
 * and allocations above 2 GiB failing (a typed out-of-memory error, so an 'alloc' finding).
 */
function asanEnv(addon) {
  const { execFileSync } = require('child_process');
  const libasan = execFileSync('gcc', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).trim();
  return {
    LD_PRELOAD: libasan,
    ASAN_OPTIONS: 'detect_leaks=0:allocator_may_return_null=1:max_allocation_size_mb=2048:abort_on_error=1',
    UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
    CONVKIT_ADDON: path.resolve(addon),
  };
}

/** Whether a regression case (target 'regression') ended as its entry in regressions.js expects. */
function regressionPassed(r) {
  const want = REGRESSIONS[r.seed]?.expect;
  return want === 'ok' ? r.outcome === 'ok' : r.outcome === 'typed' && r.error?.name === want;
}

function summarize(results, seed) {
  for (const r of results) {
    if (r.target === 'regression' && !FINDINGS.has(r.outcome) && !regressionPassed(r)) {
      r.error = { name: 'regression', message: `expected ${REGRESSIONS[r.seed]?.expect}, got ${r.outcome}${r.error ? ` (${r.error.name}: ${r.error.message})` : ''}` };
      r.outcome = 'untyped';
    }
  }
  const byTarget = {};
  for (const r of results) {
    const t = (byTarget[r.target] ??= { cases: 0, ok: 0, typed: 0, findings: 0 });
    t.cases++;
    if (FINDINGS.has(r.outcome)) t.findings++;
    else t[r.outcome]++;
  }
  const findings = results.filter((r) => FINDINGS.has(r.outcome));
  return { seed, cases: results.length, byTarget, findings, results };
}

function replayCommand(r) {
  return `npm run fuzz -- --replay ${r.target}:${r.seed}`;
}

function parseArgs(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`fuzz: ${a} needs a value`);
      return argv[++i];
    };
    if (a === '--cases') opts.cases = Number(val());
    else if (a === '--seed') opts.seed = Number(val());
    else if (a === '--jobs') opts.jobs = Number(val());
    else if (a === '--targets') opts.targets = val().split(',');
    else if (a === '--lib') opts.lib = path.resolve(val());
    else if (a === '--asan') opts.asan = val();
    else if (a === '--replay') {
      opts.replay = val().split(',').map((s) => {
        const [target, seed] = s.split(':');
        return { target, seed: Number(seed) };
      });
    } else if (a === '--regressions') opts.replay = REGRESSIONS.map((_, i) => ({ target: 'regression', seed: i }));
    else if (a === '--verbose') opts.verbose = true;
    else if (a === '--json') opts.json = val();
    else throw new Error(`fuzz: unknown option ${a} (--cases N --seed S --jobs J --targets a,b --replay target:seed --regressions --lib DIR --asan ADDON --json FILE --verbose)`);
  }
  if (opts.cases !== undefined && !(Number.isInteger(opts.cases) && opts.cases > 0)) throw new Error('fuzz: --cases must be a positive integer');
  if (opts.seed !== undefined && !Number.isSafeInteger(opts.seed)) throw new Error('fuzz: --seed must be an integer');
  return opts;
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(e.message);
    process.exit(2);
  }
  const t0 = Date.now();
  let n = 0;
  const total = opts.replay ? opts.replay.length : opts.cases ?? 2000;
  const out = await runFuzz({
    ...opts,
    onResult: (r) => {
      n++;
      if (opts.verbose || opts.replay) console.log(`${r.target}:${r.seed} ${r.outcome}${r.detail ? ` ${r.detail}` : ''}${r.error ? `\n  ${r.error.name}: ${r.error.message}${opts.replay && r.error.stack ? `\n${r.error.stack}` : ''}${opts.replay && r.error.stderr ? `\n${r.error.stderr}` : ''}` : ''}`);
      else if (process.stderr.isTTY && n % 50 === 0) process.stderr.write(`\r${n}/${total} cases`);
      if (FINDINGS.has(r.outcome) && !opts.replay) console.log(`\nFINDING ${r.outcome}: ${r.error?.name}: ${r.error?.message}\n  ${replayCommand(r)}`);
    },
  });
  if (process.stderr.isTTY) process.stderr.write('\r');
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  console.log(`fuzz: ${out.cases} cases (seed ${out.seed}) in ${secs} s`);
  for (const [t, s] of Object.entries(out.byTarget)) console.log(`  ${t.padEnd(8)} ${String(s.cases).padStart(6)} cases: ${s.ok} clean, ${s.typed} typed errors, ${s.findings} findings`);
  if (opts.json) require('fs').writeFileSync(opts.json, JSON.stringify({ seed: out.seed, cases: out.cases, seconds: Number(secs), byTarget: out.byTarget, findings: out.findings }, null, 2));
  if (out.findings.length) {
    console.log(`${out.findings.length} findings:`);
    for (const r of out.findings) console.log(`  ${r.outcome}: ${r.error?.name}: ${r.error?.message}\n    ${replayCommand(r)}`);
    process.exit(1);
  }
}

if (require.main === module) main();

module.exports = { runFuzz, replayCommand, asanEnv, regressionPassed, FINDINGS };
