// The packed package installed as a user installs it, for the tarball tests: scripts/pack-test.js
// (linux-x64) and `node scripts/arm64.js tarball` (linux-arm64 under qemu-aarch64).
'use strict';
const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const npmCli = process.env.npm_execpath && process.env.npm_execpath.endsWith('.js')
  ? process.env.npm_execpath
  : path.join(path.dirname(fs.realpathSync(process.execPath)), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');

function npm(args, opts = {}) {
  const r = spawnSync(process.execPath, [npmCli, ...args], { stdio: 'inherit', ...opts });
  if (r.status !== 0) throw new Error(`npm ${args.join(' ')} failed (${r.status})`);
}

/** `npm pack` of the checkout (dist/ and whatever prebuilds/ holds) into `dest`; the tarball's path. */
function pack(dest) {
  execFileSync(process.execPath, [npmCli, 'pack', '--pack-destination', dest], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  const tgz = fs.readdirSync(dest).find((f) => f.endsWith('.tgz'));
  if (!tgz) throw new Error('npm pack wrote no tarball');
  return path.join(dest, tgz);
}

/**
 * The environment of a machine without a toolchain: a PATH of `scratch`/bin holding node and sh
 * alone (npm runs scripts through sh; no g++, cc, make, cmake or node-gyp), npm's node-gyp
 * pointed at nothing, and no trace of the npm script that runs us.
 */
function bareEnv(scratch) {
  const binDir = path.join(scratch, 'bin');
  fs.mkdirSync(binDir, { recursive: true });
  fs.symlinkSync(process.execPath, path.join(binDir, 'node'));
  fs.symlinkSync('/bin/sh', path.join(binDir, 'sh'));
  const env = { ...process.env, PATH: binDir, npm_config_node_gyp: path.join(binDir, 'no-node-gyp') };
  for (const k of Object.keys(env)) if (k.startsWith('npm_lifecycle') || k === 'INIT_CWD' || k === 'CONVKIT_ADDON') delete env[k];
  return env;
}

/** A new project at `dir` with the tarball installed by `npm install <tgz> ...extraArgs`. */
function installInto(dir, tgz, extraArgs, env) {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'),
    JSON.stringify({ name: `scratch-${path.basename(dir)}`, version: '1.0.0', private: true }));
  npm(['install', tgz, '--no-audit', '--no-fund', '--prefer-offline', ...extraArgs], { cwd: dir, env });
}

module.exports = { npm, pack, bareEnv, installInto };
