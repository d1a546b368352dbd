#!/usr/bin/env node
// Stands in for node-gyp when prebuildify runs (PREBUILD_NODE_GYP): prebuildify asks for
// `rebuild --release ...`; we bring the cmake-js build in build/ up to date (incrementally),
// and prebuildify picks up build/Release/convkit.node, strips it and copies it to
// prebuilds/<platform>-<arch>/.
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');

const root = path.join(__dirname, '..');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const r = spawnSync(process.execPath, [cmakeJs, 'compile', '-O', 'build'], { cwd: root, stdio: 'inherit' });
process.exit(r.status === null ? 1 : r.status);
