#!/usr/bin/env node
// npm run test:mutation: Stryker mutation testing of one part of lib/ at a time (docs/testing.md).
//
//   npm run test:mutation -- <target> [stryker options...]
//   npm run test:mutation -- --mutate lib/optimizers.ts [stryker options...]
//   npm run test:mutation -- --list
//
// A target names the lib/ files to mutate and the jest files that exercise them (the table below:
// jest's --findRelatedTests cannot work it out, see stryker.config.mjs). Without a target, the
// files given to --mutate pick it: the target whose files contain them all; a file no target
// holds runs every jest file, which is very slow. `--tests a.test.ts,b.test.ts` replaces the jest
// files. Other options go to `stryker run` as they are, e.g. `--concurrency 1`, or a line range to
// sample a big file: `--mutate lib/models/base.ts:100-180`.
// Slow (minutes per target on 2 cores) and so run by hand, never by npm test or CI.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');

// Each target: the files Stryker mutates, and the jest files whose tests reach them. The CLI
// tests (they run dist/), the reliability and fuzz suites (child processes on dist/) and the GPU
// suites are left out: they cannot see a mutant of lib/ in the sandbox.
const targets = {
  optimizers: {
    mutate: ['lib/optimizers.ts'],
    tests: ['test/optimizers.mutation.test.ts', 'test/model.optimizers.test.ts', 'test/model.io.test.ts',
      'test/model.errors.test.ts', 'test/errors.test.ts'],
  },
  callbacks: {
    mutate: ['lib/callbacks.ts'],
    tests: ['test/callbacks.mutation.test.ts', 'test/callbacks.test.ts', 'test/model.fit.test.ts',
      'test/model.errors.test.ts', 'test/errors.test.ts'],
  },
  io: {
    mutate: ['lib/io/**/*.ts'],
    tests: ['test/io.mutation.test.ts', 'test/io-folder.mutation.test.ts', 'test/io-reads.mutation.test.ts',
      'test/model.io.test.ts', 'test/model.optimizers.test.ts', 'test/model.errors.test.ts', 'test/errors.test.ts',
      'test/model.functional.test.ts', 'test/model.tfjs-training.test.ts', 'test/callbacks.test.ts',
      'test/layers.shapes.test.ts'],
  },
  data: {
    mutate: ['lib/data/dataset.ts', 'lib/data/datasets.ts', 'lib/data/idx.ts', 'lib/data/image-folder.ts',
      'lib/data/images.ts', 'lib/data/index.ts', 'lib/data/augment.ts'],
    tests: ['test/data.mutation.test.ts', 'test/data.images.test.ts', 'test/model.dataset-fit.test.ts',
      'test/callbacks.test.ts', 'test/model.fit.test.ts', 'test/rng.test.ts'],
  },
  models: {
    mutate: ['lib/models/**/*.ts'],
    tests: ['test/models.mutation.test.ts', 'test/model.fit.test.ts', 'test/model.errors.test.ts',
      'test/model.functional.test.ts', 'test/model.summary.test.ts', 'test/model.dataset-fit.test.ts',
      'test/model.io.test.ts', 'test/model.optimizers.test.ts', 'test/callbacks.test.ts',
      'test/errors.test.ts', 'test/layers.shapes.test.ts'],
  },
};

function usage(code) {
  const lines = Object.entries(targets).map(([name, t]) => `  ${name.padEnd(11)} mutates ${t.mutate.join(' ')}`);
  (code ? console.error : console.log)(
    'usage: npm run test:mutation -- <target> | --mutate <files> [--tests <jest files>] [stryker options]\n' +
    `targets:\n${lines.join('\n')}`);
  process.exit(code);
}

const argv = process.argv.slice(2);
if (argv.includes('--list') || argv.includes('--help') || argv.includes('-h')) usage(0);

let name = null;
if (argv.length > 0 && !argv[0].startsWith('-')) name = argv.shift();
if (name !== null && !(name in targets)) {
  console.error(`test:mutation: unknown target '${name}'`);
  usage(2);
}

/** Removes `--flag value` (or `--flag=value`) from argv and returns the value. */
function takeOption(flag) {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === flag) return argv.splice(i, 2)[1];
    if (argv[i].startsWith(`${flag}=`)) return argv.splice(i, 1)[0].slice(flag.length + 1);
  }
  return undefined;
}

const mutateArg = takeOption('--mutate') ?? takeOption('-m');
const testsArg = takeOption('--tests');
if (name === null && mutateArg === undefined) usage(2);

const mutate = mutateArg !== undefined ? mutateArg.split(',').filter(Boolean) : targets[name].mutate;

/** Whether lib file `file` (a path, perhaps with a :line range) belongs to target `t`. */
function inTarget(t, file) {
  const strip = (p) => p.replace(/:\d+(:\d+)?-\d+(:\d+)?$/, '');
  const f = strip(file);
  return t.mutate.some((m) => (m.endsWith('/**/*.ts') ? f.startsWith(m.slice(0, -'**/*.ts'.length)) : f === strip(m)));
}

if (name === null) {
  name = Object.keys(targets).find((n) => mutate.every((f) => inTarget(targets[n], f))) ?? null;
}

let tests;
if (testsArg !== undefined) {
  tests = testsArg.split(',').filter(Boolean);
} else if (name !== null) {
  tests = targets[name].tests;
} else {
  console.error(`test:mutation: no target holds ${mutate.join(', ')}: running every jest file for each mutant (slow); ` +
    'pass --tests to choose them');
  tests = [];
}
// A target's own *.mutation.test.ts may not have been written yet.
tests = tests.filter((t) => {
  const there = fs.existsSync(path.join(root, t));
  if (!there) console.error(`test:mutation: ${t} does not exist, leaving it out`);
  return there;
});

// Reports go to reports/mutation/<target>/, or for --mutate to a folder named after the files.
const report = mutateArg !== undefined
  ? mutate.map((m) => m.replace(/^lib\//, '')).join('+').replace(/[^A-Za-z0-9.+-]+/g, '-') : name;
console.log(`test:mutation: ${report}: mutating ${mutate.join(' ')}`);
console.log(`test:mutation: jest files: ${tests.length > 0 ? tests.join(' ') : 'all'}`);

// The tests load the native addon as lib/native.ts does: CONVKIT_ADDON, else a prebuild or
// build/Release (copied into Stryker's sandbox). Say so now rather than after Stryker's start-up.
const env = { ...process.env, CONVKIT_MUTATION_TESTS: tests.join(','), CONVKIT_MUTATION_TARGET: report };
if (env.CONVKIT_ADDON) {
  env.CONVKIT_ADDON = path.resolve(env.CONVKIT_ADDON);   // the tests run in the sandbox folder
} else {
  try {
    require('node-gyp-build').path(root);
  } catch {
    console.error('test:mutation: no native addon in prebuilds/ or build/Release/: run `npm run build`, or set CONVKIT_ADDON to a built convkit.node');
    process.exit(2);
  }
}

const stryker = path.join(path.dirname(require.resolve('@stryker-mutator/core/package.json')), 'bin', 'stryker.js');
const r = spawnSync(process.execPath, [stryker, 'run', 'stryker.config.mjs', '--mutate', mutate.join(','), ...argv], {
  cwd: root,
  stdio: 'inherit',
  env,
});
if (r.error) throw r.error;
process.exit(r.status ?? 1);
