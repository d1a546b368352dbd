#!/usr/bin/env node
// npm test: the core's C++ suite (ctest), the TypeScript suite (jest), then the
// install-from-tarball check. Runs each and fails if any failed.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const steps = [];
if (fs.existsSync(path.join(root, 'build', 'CTestTestfile.cmake'))) {
  steps.push(['ctest', 'ctest', ['--test-dir', 'build', '--output-on-failure']]);
} else {
  console.log('npm test: no CMake build in build/ (built with node-gyp?): skipping the C++ suite');
}
steps.push(['jest', process.execPath, [require.resolve('jest/bin/jest'), '--runInBand']]);
if (!process.argv.includes('--no-pack')) {
  steps.push(['pack-test', process.execPath, [path.join(__dirname, 'pack-test.js')]]);
}

const failed = [];
for (const [name, cmd, args] of steps) {
  console.log(`\n=== ${name}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) failed.push(name);
}
console.log(failed.length ? `\nnpm test: failed: ${failed.join(', ')}` : '\nnpm test: all suites passed');
process.exit(failed.length ? 1 : 0);
