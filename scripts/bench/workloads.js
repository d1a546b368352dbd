// The benchmark workloads of DESIGN.md, shared by the bench scripts: W1 (the seeds' MNIST CNN)
// and W2 (a CIFAR-shaped CNN), deterministic inputs, and the median of a list of timings.
'use strict';
const ck = require('../../dist');

/** W1: the seeds' CNN on 28x28x1 (62,346 parameters). */
function w1() {
  return ck.sequential([
    ck.layers.input({ shape: [28, 28, 1] }),
    ck.layers.conv2d({ filters: 32, kernelSize: 5, activation: 'relu' }),
    ck.layers.maxPooling2d({ poolSize: 2 }),
    ck.layers.conv2d({ filters: 64, kernelSize: 5, activation: 'relu' }),
    ck.layers.maxPooling2d({ poolSize: 2 }),
    ck.layers.flatten(),
    ck.layers.dense({ units: 10, activation: 'softmax' }),
  ]);
}

/** W2: two blocks of two 3x3 'same' convolutions on 32x32x3. */
function w2() {
  const conv = (filters) => ck.layers.conv2d({ filters, kernelSize: 3, padding: 'same', activation: 'relu' });
  return ck.sequential([
    ck.layers.input({ shape: [32, 32, 3] }), conv(32), conv(32), ck.layers.maxPooling2d({ poolSize: 2 }),
    conv(64), conv(64), ck.layers.maxPooling2d({ poolSize: 2 }), ck.layers.flatten(),
    ck.layers.dense({ units: 10, activation: 'softmax' }),
  ]);
}

/** A tensor of `shape` filled from a seeded LCG in [0, 1). */
function random(shape, seed) {
  let s = seed >>> 0;
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
  return ck.tensor(data, shape);
}

const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

module.exports = { w1, w2, random, median };
