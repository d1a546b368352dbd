#!/usr/bin/env node
// npm test: the core's C++ suite (ctest, with the CUDA kernels' parity suite on the CUDA
// emulator), the same suite under AddressSanitizer+UBSan and under ThreadSanitizer (a few minutes
// of extra builds; `--no-sanitizers` leaves them out), the JS-level GPU suite on an addon built on
// the CUDA emulator (scripts/cuda-emu.js; `--no-cuda-emu` leaves it out), the TypeScript suite
// (jest), then the install-from-tarball check. Runs each and fails if any failed.
//
// A step this machine cannot run (no CMake build with tests in build/ because the addon came from
// node-gyp or a prebuild, no cmake, no g++ sanitizer runtimes, not x86-64 Linux) is skipped with a
// line saying what is missing, unless CI is set (as CI services and .ci/run's callers do): there
// it fails npm test, naming what is missing, so that CI cannot pass with a suite silently left out.
// Only the --no-* flags leave a step out on purpose, in CI too.
//
//   node scripts/test.js [--no-sanitizers] [--no-cuda-emu] [--no-pack] [--plan]
// --plan prints what would run and what cannot, and exits as the run would before starting.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.join(__dirname, '..');
const argv = process.argv.slice(2);
const ciValue = process.env.CI;
const ci = ciValue !== undefined && ciValue !== '' && ciValue !== '0' && ciValue.toLowerCase() !== 'false';
const steps = [];
/** Steps this machine cannot run, each with what is missing: failures in CI, skips elsewhere. */
const cannot = [];
const skipped = [];

function hasCommand(cmd) {
  return spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Whether g++ can build and link a program with -fsanitize=<kinds> (the runtime is installed). */
function canSanitize(kinds) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-san-'));
  try {
    fs.writeFileSync(path.join(dir, 'probe.cpp'), 'int main() { return 0; }\n');
    const r = spawnSync('g++', [`-fsanitize=${kinds}`, 'probe.cpp', '-o', 'probe'], { cwd: dir, stdio: 'ignore' });
    return r.status === 0;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A step this machine cannot run: a skip line for a developer; in CI, a failure naming what is missing. */
function cannotRun(step, missing, fix) {
  if (ci) {
    console.error(`npm test: CI=${ciValue}, and ${step} cannot run here: ${missing}. ${fix}.`);
    cannot.push(`${step}: ${missing}`);
  } else {
    console.log(`npm test: skipping ${step}: ${missing}. ${fix}. (With CI set this fails npm test.)`);
    skipped.push(step);
  }
}

const hasCmake = hasCommand('cmake');
const hasGxx = hasCommand('g++');

// The core's C++ suite: the addon's own CMake build, configured with tests in a git checkout.
if (fs.existsSync(path.join(root, 'build', 'CTestTestfile.cmake'))) {
  steps.push(['ctest', 'ctest', ['--test-dir', 'build', '--output-on-failure']]);
} else {
  cannotRun('the C++ suite (ctest)',
    `no CMake build with tests in build/ (the addon was built with node-gyp or came from a prebuild${hasCmake ? '' : '; cmake is not installed'})`,
    'Install cmake >= 3.19 and g++ >= 9, then `npm run build` in a git checkout');
}

// The same suite under the sanitizers: scripts/sanitize.sh builds build-asan/ (cmake-js) and
// build-tsan/ (cmake + ninja) itself.
if (argv.includes('--no-sanitizers')) {
  console.log('npm test: --no-sanitizers: leaving out the sanitized C++ suites');
} else {
  const missing = [];
  if (!hasCmake) missing.push('cmake not found');
  if (!hasCommand('ninja')) missing.push('ninja not found (the TSan build uses it)');
  if (!hasGxx) {
    missing.push('g++ not found');
  } else {
    if (!canSanitize('address,undefined')) missing.push("g++ cannot link the ASan/UBSan runtimes (libasan, libubsan)");
    if (!canSanitize('thread')) missing.push('g++ cannot link the TSan runtime (libtsan)');
  }
  if (missing.length) {
    cannotRun('the sanitized C++ suites (ASan+UBSan, TSan)', missing.join('; '),
      'Install them (gcc ships the runtimes; Debian: libasan, libubsan, libtsan), or pass --no-sanitizers to leave the suites out on purpose');
  } else {
    steps.push(['sanitizers (ctest under ASan+UBSan and TSan)', 'sh', [path.join(__dirname, 'sanitize.sh'), 'asan', 'tsan']]);
  }
}

// The JS-level GPU suites on the CUDA emulator: scripts/cuda-emu.js builds build-emu/ with
// cmake-js, whatever built build/.
if (argv.includes('--no-cuda-emu')) {
  console.log('npm test: --no-cuda-emu: leaving out the GPU suite on the CUDA emulator');
} else if (process.platform !== 'linux' || process.arch !== 'x64') {
  cannotRun('the GPU suite on the CUDA emulator', `the emulator's fibers need x86-64 Linux (this is ${process.platform}-${process.arch})`,
    'Run it on x86-64 Linux, or pass --no-cuda-emu to leave it out on purpose');
} else if (!hasCmake || !hasGxx) {
  cannotRun('the GPU suite on the CUDA emulator',
    `${[!hasCmake && 'cmake', !hasGxx && 'g++'].filter(Boolean).join(' and ')} not found (scripts/cuda-emu.js builds the emulator's addon in build-emu/ with cmake-js)`,
    'Install cmake >= 3.19 and g++ >= 9, or pass --no-cuda-emu to leave it out on purpose');
} else {
  steps.push(['GPU suite on the CUDA emulator', process.execPath, [path.join(__dirname, 'cuda-emu.js')]]);
}

steps.push(['jest', process.execPath, [require.resolve('jest/bin/jest'), '--runInBand']]);
if (!argv.includes('--no-pack')) {
  steps.push(['pack-test', process.execPath, [path.join(__dirname, 'pack-test.js')]]);
}

if (argv.includes('--plan')) {
  console.log(`npm test --plan${ci ? ` (CI=${ciValue})` : ''}: would run ${steps.map(([name]) => name).join(', ')}`);
  if (cannot.length) console.log(`npm test: would fail, as these cannot run here: ${cannot.join('; ')}`);
  if (skipped.length) console.log(`npm test: would skip ${skipped.join(', ')}`);
  process.exit(cannot.length ? 1 : 0);
}

const failed = [];
for (const [name, cmd, args] of steps) {
  console.log(`\n=== ${name}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) failed.push(name);
}
if (cannot.length) {
  console.error(`\nnpm test: CI=${ciValue}, and these could not run here: ${cannot.join('; ')}`);
}
const all = [...failed, ...cannot.map((c) => `cannot run ${c}`)];
if (all.length) console.log(`\nnpm test: failed: ${all.join('; ')}`);
else if (skipped.length) console.log(`\nnpm test: every suite that ran passed; skipped (see above): ${skipped.join(', ')}`);
else console.log('\nnpm test: all suites passed');
process.exit(all.length ? 1 : 0);
