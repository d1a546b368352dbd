#!/usr/bin/env node
// npm run check:onnx: torchvision's resnet18, mobilenet_v2, mobilenet_v3_small and
// efficientnet_b0 (random weights) exported by PyTorch's torch.onnx.export
// (scripts/check-onnx.py), imported with ck.io.loadOnnx, and compared with onnxruntime-node on
// the same file: the largest error relative to the output's scale on random images, and
// predictOnBatch against onnxruntime's run at batch 1 (median ms) and 32 (images/s), both on
// this machine's threads. A model the importer cannot take prints its FormatError.
// Needs PyTorch and torchvision (apt-get install python3-torch python3-torchvision).
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const ort = require('onnxruntime-node');
const ck = require('../dist');

const MODELS = ['resnet18', 'mobilenet_v2', 'mobilenet_v3_small', 'efficientnet_b0'];

function images(n, seed) {
  let s = seed >>> 0;
  return Float32Array.from({ length: n * 224 * 224 * 3 }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 * 2 - 1;
  });
}

/** NHWC -> NCHW. */
function nchw(x, n) {
  const out = new Float32Array(x.length);
  for (let i = 0; i < n; i++) for (let p = 0; p < 224 * 224; p++) for (let c = 0; c < 3; c++) {
    out[((i * 3 + c) * 224 * 224) + p] = x[(i * 224 * 224 + p) * 3 + c];
  }
  return out;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timeIt(run, reps) {
  await run();
  const times = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    await run();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return median(times);
}

async function check(file) {
  const model = await ck.io.loadOnnx(file);
  const threads = ck.devices()[0].threads;
  const session = await ort.InferenceSession.create(file, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const x = images(4, 7);
  const got = await model.predict(ck.tensor(x, [4, 224, 224, 3])).data();
  const want = (await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', nchw(x, 4), [4, 3, 224, 224]) }))[session.outputNames[0]].data;
  const scale = Math.max(...Array.from(want, Math.abs));
  let err = 0;
  for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]));
  const row = { error: err / scale };
  for (const batch of [1, 32]) {
    const xb = images(batch, 9);
    const ours = ck.tensor(xb, [batch, 224, 224, 3]);
    const theirs = { [session.inputNames[0]]: new ort.Tensor('float32', nchw(xb, batch), [batch, 3, 224, 224]) };
    const reps = batch === 1 ? 30 : 3;
    row[`convkit_${batch}`] = await timeIt(() => model.predictOnBatch(ours).data(), reps);
    row[`ort_${batch}`] = await timeIt(() => session.run(theirs), reps);
  }
  await session.release();
  return row;
}

(async () => {
  if (spawnSync('/usr/bin/python3', ['-c', 'import torch, torchvision']).status !== 0) {
    console.error('check:onnx needs PyTorch and torchvision: apt-get install python3-torch python3-torchvision');
    process.exit(1);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-check-onnx-'));
  try {
    const made = spawnSync('/usr/bin/python3', [path.join(__dirname, 'check-onnx.py'), dir], { encoding: 'utf8' });
    if (made.status !== 0) throw new Error(`exporting the models failed: ${made.stderr.slice(-500)}`);
    console.log(`convkit ${ck.version}, ${ck.devices()[0].threads} threads; onnxruntime-node ${require('onnxruntime-node/package.json').version}; torchvision models, random weights, 224x224x3`);
    console.log('| model | imports | max error / output scale | batch 1 ms: convkit / onnxruntime | batch 32 img/s: convkit / onnxruntime |');
    console.log('|---|---|---|---|---|');
    for (const name of MODELS) {
      try {
        const r = await check(path.join(dir, `${name}.onnx`));
        console.log(`| ${name} | yes | ${r.error.toExponential(1)} | ${r.convkit_1.toFixed(2)} / ${r.ort_1.toFixed(2)} (x${(r.ort_1 / r.convkit_1).toFixed(2)}) | ` +
          `${(32000 / r.convkit_32).toFixed(0)} / ${(32000 / r.ort_32).toFixed(0)} (x${(r.ort_32 / r.convkit_32).toFixed(2)}) |`);
      } catch (e) {
        console.log(`| ${name} | no: ${String(e.message).split('\n')[0].slice(0, 160)} | - | - | - |`);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
})().catch((e) => {
  console.error(`check:onnx: ${e.message || e}`);
  process.exit(1);
});
