#!/usr/bin/env node
// npm's install hook. A bundled prebuild that loads wins (lib/native.ts's choice); otherwise the
// addon is built from source with cmake-js, or with node-gyp from binding.gyp where CMake is
// missing.
// `--from-source` (npm run build) skips the prebuild check.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const fromSource = process.argv.includes('--from-source') || !!process.env.CONVKIT_BUILD_FROM_SOURCE;

function run(cmd, args) {
  console.log(`convkit: ${[cmd, ...args].join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.error) throw r.error;
  return r.status === 0;
}

function hasCommand(cmd) {
  return spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
}

if (!fromSource) {
  try {
    // The run-time loader itself where it is built (always, in the published package): it
    // refuses a glibc prebuild on musl, which node-gyp-build alone picks on any musl system but
    // Alpine, and which may even load there under a glibc shim.
    const loader = path.join(root, 'dist', 'native.js');
    if (fs.existsSync(loader)) require(loader);
    else require('node-gyp-build')(root);
    console.log('convkit: using the prebuilt native addon');
    process.exit(0);
  } catch {
    // no usable prebuild: build below
  }
}

// A git checkout also builds the C++ test suite and bench_ops (npm test runs them with ctest).
const devCheckout = fs.existsSync(path.join(root, '.git'));
let ok = false;
if (hasCommand('cmake')) {
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  ok = run(process.execPath, [cmakeJs, 'compile', '-O', 'build', `--CDCONVKIT_TESTS=${devCheckout ? 'ON' : 'OFF'}`]);
} else {
  console.log('convkit: cmake not found; building with node-gyp (binding.gyp)');
  const npmNodeGyp = process.env.npm_config_node_gyp;
  ok = npmNodeGyp ? run(process.execPath, [npmNodeGyp, 'rebuild']) : run('node-gyp', ['rebuild']);
}
if (!ok) {
  console.error('convkit: building the native addon failed (needs g++ >= 9 and cmake >= 3.19, or node-gyp)');
  process.exit(1);
}
