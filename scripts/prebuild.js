#!/usr/bin/env node
// npm run prebuild: prebuildify (N-API, stripped) over the cmake-js build (scripts/cmake-gyp.js),
// writing prebuilds/<platform>-<arch>/convkit.glibc.node on Linux (convkit.musl.node on Alpine:
// lib/native.ts takes only the one built against the host's C library) and convkit.node elsewhere.
// prebuildify moves the addon out of build/Release; it is relinked there afterwards (an
// incremental build), so a checkout keeps its development addon.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const prebuildify = require.resolve('prebuildify/bin.js');
const args = [prebuildify, '--napi', '--strip', ...(process.platform === 'linux' ? ['--tag-libc'] : [])];
const r = spawnSync(process.execPath, args, {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, PREBUILD_NODE_GYP: path.join(__dirname, 'cmake-gyp.js') },
});
if (r.status !== 0) process.exit(r.status === null ? 1 : r.status);
if (!fs.existsSync(path.join(root, 'build', 'Release', 'convkit.node'))) {
  const relink = spawnSync(process.execPath, [path.join(__dirname, 'cmake-gyp.js')], { cwd: root, stdio: 'inherit' });
  process.exit(relink.status === null ? 1 : relink.status);
}
