#!/usr/bin/env node
// npm run bench:ops: GFLOP/s per op and ISA path from the core's bench_ops binary (built with
// the ctest suite in a git checkout: `npm run build`). Arguments pass through (--quick, --isa).
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const bin = path.join(__dirname, '..', 'build', 'bench_ops');
if (!fs.existsSync(bin)) {
  console.error('bench:ops: build/bench_ops is missing; build the core with its tests first (npm run build in a git checkout)');
  process.exit(1);
}
const r = spawnSync(bin, process.argv.slice(2), { stdio: 'inherit' });
process.exit(r.status === null ? 1 : r.status);
