// The fuzz targets and how often a run draws each (ops are cheap, `convkit predict` starts a
// process per case; selftest and regression only run when named).
'use strict';

const TARGETS = Object.fromEntries(['ops', 'tensor', 'layers', 'model', 'idx', 'images', 'onnx', 'cli', 'selftest', 'regression']
  .map((name) => [name, require(`./${name}`)]));

const DEFAULT_WEIGHTS = { ops: 40, tensor: 10, layers: 15, model: 20, idx: 5, images: 8, onnx: 6, cli: 0.3 };

module.exports = { TARGETS, DEFAULT_WEIGHTS };
