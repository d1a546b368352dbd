#!/usr/bin/env node
// npm test: the core's C++ suite (ctest, with the CUDA kernels' parity suite on the CUDA
// emulator), the same suite under AddressSanitizer+UBSan and under ThreadSanitizer (a few minutes
// of extra builds; `--no-sanitizers` skips them), the JS-level GPU suite on an addon built on the
// CUDA emulator (scripts/cuda-emu.js; `--no-cuda-emu` skips it), the TypeScript suite (jest),
// then the install-from-tarball check. Runs each and fails if any failed.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const steps = [];

/** Whether g++ can build and link a program with -fsanitize=<kinds> (the runtime is installed). */
function canSanitize(kinds) {
  const dir = fs.mkdtempSync(path.join(require('os').tmpdir(), 'convkit-san-'));
  try {
    fs.writeFileSync(path.join(dir, 'probe.cpp'), 'int main() { return 0; }\n');
    const r = spawnSync('g++', [`-fsanitize=${kinds}`, 'probe.cpp', '-o', 'probe'], { cwd: dir, stdio: 'ignore' });
    return r.status === 0;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (fs.existsSync(path.join(root, 'build', 'CTestTestfile.cmake'))) {
  steps.push(['ctest', 'ctest', ['--test-dir', 'build', '--output-on-failure']]);
  if (process.argv.includes('--no-sanitizers')) {
    console.log('npm test: --no-sanitizers: skipping the sanitized C++ suites');
  } else if (!canSanitize('address,undefined') || !canSanitize('thread')) {
    console.log('npm test: g++ cannot link the ASan/UBSan/TSan runtimes here: skipping the sanitized C++ suites');
  } else {
    steps.push(['sanitizers (ctest under ASan+UBSan and TSan)', 'sh', [path.join(__dirname, 'sanitize.sh'), 'asan', 'tsan']]);
  }
  if (process.argv.includes('--no-cuda-emu')) {
    console.log('npm test: --no-cuda-emu: skipping the GPU suite on the CUDA emulator');
  } else {
    steps.push(['GPU suite on the CUDA emulator', process.execPath, [path.join(__dirname, 'cuda-emu.js')]]);
  }
} else {
  console.log('npm test: no CMake build in build/ (built with node-gyp?): skipping the C++ suites');
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
