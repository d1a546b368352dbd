#!/usr/bin/env node
// Proves the published package works from its prebuild alone: `npm run prebuild`, `npm pack`,
// then install the tarball into scratch projects with no compiler, cmake or node-gyp on PATH
// (once running install scripts, once with --ignore-scripts) and run a convolution there.
// A prebuild made here is removed again: lib/native.ts prefers prebuilds/ to build/, so a
// lingering one would shadow every later rebuild.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { npm, pack, bareEnv, installInto } = require('./tarball');

const root = path.join(__dirname, '..');
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-pack-'));
const env = bareEnv(scratch);
const madePrebuilds = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
const hadPrebuilds = fs.existsSync(madePrebuilds);

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
  const tgz = pack(scratch);
  for (const mode of ['scripts', 'ignore-scripts']) {
    const dir = path.join(scratch, mode);
    installInto(dir, tgz, mode === 'ignore-scripts' ? ['--ignore-scripts'] : [], env);
    const r = spawnSync(process.execPath, ['-e', check, mode], { cwd: dir, env, stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`the installed package failed to run (${mode})`);
  }
  console.log('pack-test: 2 passed, 0 failed');
} catch (e) {
  console.error(`pack-test: ${e.message}`);
  console.log('pack-test: 0 passed, 1 failed');
  process.exitCode = 1;
} finally {
  if (!hadPrebuilds) fs.rmSync(madePrebuilds, { recursive: true, force: true });
  fs.rmSync(scratch, { recursive: true, force: true });
}
