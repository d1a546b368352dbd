// One fuzz worker process: runs cases one after another and reports each on fd 3, "S <i>"
// before it starts and "E <json>" when it ends, so that the parent (run.js) can name the case
// that crashed or hung the process. A case ends as 'ok' (a clean result), 'typed' (a
// ConvkitError) or a finding: 'untyped' (any other exception, or an async error that escaped),
// 'alloc' (native memory above the limit, or an out-of-memory error: something was allocated
// from sizes that were not checked first), 'harness' (the case's own preparation failed).
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { Rng, caseSeed } = require('./rng');
const { TARGETS } = require('./targets');

const job = JSON.parse(fs.readFileSync(0, 'utf8'));  // from run.js, on stdin
const ck = require(job.lib);
const ALLOC_LIMIT = job.allocLimit;

function report(line) {
  fs.writeSync(3, `${line}\n`);
}

function describeError(e) {
  if (e instanceof Error) return { name: e.name, message: String(e.message).slice(0, 500), stack: String(e.stack).split('\n').slice(0, 8).join('\n') };
  return { name: typeof e, message: String(e).slice(0, 500) };
}

const isOutOfMemory = (e) => e instanceof Error && /out of (host |device )?memory|allocation failed|Invalid typed array length|Array buffer allocation/i.test(e.message);

let escaped = null;
process.on('unhandledRejection', (e) => {
  escaped ??= e;
});
process.on('uncaughtException', (e) => {
  escaped ??= e;
});

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-fuzz-'));
  const env = { ck, tmp, root: job.root, lib: job.lib, fixtures: {}, allocLimit: ALLOC_LIMIT };
  try {
    for (const item of job.cases) {
      const target = TARGETS[item.target];
      const seed = item.seed ?? caseSeed(job.runSeed, item.index);
      report(`S ${item.index}`);
      if (!env.fixtures[item.target] && target.setup) env.fixtures[item.target] = await target.setup(env);
      const dir = path.join(tmp, `case-${item.index}`);
      fs.mkdirSync(dir);
      ck.setSeed(seed % 2 ** 31);
      const rng = new Rng(seed);
      const t0 = Date.now();
      let outcome = 'ok';
      let error;
      let detail;
      escaped = null;
      // Targets that prepare files call ctx.begin() before handing them to convkit: an error
      // before that is the harness's own ('harness', a finding to fix in scripts/fuzz).
      const ctx = { ...env, dir, seed, fixture: env.fixtures[item.target], detail: undefined, started: !target.prepares };
      // What the case is doing, told to the parent at once: a crash or hang record then says it.
      ctx.note = (text) => {
        ctx.detail = text;
        report(`D ${String(text).replace(/\n/g, ' ').slice(0, 300)}`);
      };
      ctx.begin = () => {
        ctx.started = true;
        if (ctx.detail) ctx.note(ctx.detail);
      };
      try {
        detail = await target.run(rng, ctx);
      } catch (e) {
        detail = ctx.detail;
        error = describeError(e);
        outcome = !ctx.started ? 'harness' : isOutOfMemory(e) ? 'alloc' : e instanceof ck.ConvkitError ? 'typed' : 'untyped';
      }
      // Let finalizers and queued tasks settle, then look for escaped errors and memory.
      await new Promise((r) => setImmediate(r));
      if (escaped && outcome !== 'untyped' && outcome !== 'harness') {
        outcome = 'untyped';
        error = { ...describeError(escaped), escaped: true };
      }
      const mem = ck.memory();
      if (mem.hostPeakBytes > ALLOC_LIMIT && outcome !== 'untyped') {
        outcome = 'alloc';
        error = { name: 'alloc', message: `native host memory peaked at ${mem.hostPeakBytes} bytes (limit ${ALLOC_LIMIT})`, ...(error ? { after: error } : {}) };
      }
      report(`E ${JSON.stringify({ index: item.index, target: item.target, seed, outcome, error, detail: typeof detail === 'string' ? detail.slice(0, 300) : undefined, ms: Date.now() - t0 })}`);
      fs.rmSync(dir, { recursive: true, force: true });
      // Keep garbage (and the native memory it holds) from adding up across cases.
      if (global.gc && (mem.hostBytes > 64 << 20 || item.index % 64 === 0)) global.gc();
      if (outcome === 'alloc') process.exit(0);  // the peak cannot be reset: start afresh
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`fuzz worker failed outside a case: ${e && e.stack}\n`);
  process.exit(70);
});
