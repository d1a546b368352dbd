#!/usr/bin/env node
// Proves the published package works from its prebuild alone: `npm run prebuild`, `npm pack`,
// then install the tarball into scratch projects with no compiler, cmake or node-gyp on PATH
// (once running install scripts, once with --ignore-scripts) and run a convolution there.
'use strict';
const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.join(__dirname, '..');
const npmCli = process.env.npm_execpath && process.env.npm_execpath.endsWith('.js')
  ? process.env.npm_execpath
  : path.join(path.dirname(fs.realpathSync(process.execPath)), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');

function npm(args, opts = {}) {
  const r = spawnSync(process.execPath, [npmCli, ...args], { stdio: 'inherit', ...opts });
  if (r.status !== 0) throw new Error(`npm ${args.join(' ')} failed (${r.status})`);
}

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-pack-'));
// A PATH with node and sh (npm runs scripts through sh) alone: no g++, cc, make, cmake or node-gyp.
const binDir = path.join(scratch, 'bin');
fs.mkdirSync(binDir);
fs.symlinkSync(process.execPath, path.join(binDir, 'node'));
fs.symlinkSync('/bin/sh', path.join(binDir, 'sh'));
const bareEnv = { ...process.env, PATH: binDir, npm_config_node_gyp: path.join(binDir, 'no-node-gyp') };
for (const k of Object.keys(bareEnv)) if (k.startsWith('npm_lifecycle') || k === 'INIT_CWD') delete bareEnv[k];

const check = `
const ck = require('convkit');
const where = require('node-gyp-build').resolve(require('path').dirname(require.resolve('convkit/package.json')));
if (!where.includes('prebuilds')) throw new Error('loaded ' + where + ', not the prebuild');
// The seeds' edge filter on a 3x3 patch gives 175.
const x = ck.tensor([150, 45, 25, 250, 200, 80, 215, 250, 235], [1, 3, 3, 1]);
const w = ck.tensor([0, -1, 0, -1, 4, -1, 0, -1, 0], [3, 3, 1, 1]);
ck.ops.conv2d(x, w).data().then((y) => {
  if (y.length !== 1 || y[0] !== 175) throw new Error('conv2d gave ' + Array.from(y));
  console.log('pack-test: ' + process.argv[1] + ' loads ' + where + ', conv2d = ' + y[0]);
});
`;

try {
  npm(['run', 'prebuild'], { cwd: root });
  execFileSync(process.execPath, [npmCli, 'pack', '--pack-destination', scratch], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  const tgz = fs.readdirSync(scratch).find((f) => f.endsWith('.tgz'));
  if (!tgz) throw new Error('npm pack wrote no tarball');
  for (const mode of ['scripts', 'ignore-scripts']) {
    const dir = path.join(scratch, mode);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `scratch-${mode}`, version: '1.0.0', private: true }));
    const args = ['install', path.join(scratch, tgz), '--no-audit', '--no-fund', '--prefer-offline'];
    if (mode === 'ignore-scripts') args.push('--ignore-scripts');
    npm(args, { cwd: dir, env: bareEnv });
    const r = spawnSync(process.execPath, ['-e', check, mode], { cwd: dir, env: bareEnv, stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`the installed package failed to run (${mode})`);
  }
  console.log('pack-test: 2 passed, 0 failed');
} catch (e) {
  console.error(`pack-test: ${e.message}`);
  console.log('pack-test: 0 passed, 1 failed');
  process.exitCode = 1;
} finally {
  fs.rmSync(scratch, { recursive: true, force: true });
}
