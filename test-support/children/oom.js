// Runs under an address-space limit (ulimit -v): asks for a tensor, a training batch and a
// prediction far beyond it, prints what each gave (error class and message) as JSON lines, and
// shows that the process still works and holds no more native memory than before.
// usage: node oom.js
'use strict';
const ck = require('../../dist');

function attempt(what, fn) {
  return Promise.resolve().then(fn).then(
    () => ({ what, ok: true }),
    (e) => ({ what, ok: false, name: e.name, isDeviceError: e instanceof ck.DeviceError, message: e.message }));
}

(async () => {
  const report = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
  // a small model and data, trained and run once so that its buffers exist
  ck.setSeed(1);
  const model = ck.sequential([
    ck.layers.input({ shape: [64, 64, 1] }),
    ck.layers.conv2d({ filters: 64, kernelSize: 3, padding: 'same', activation: 'relu' }),
    ck.layers.globalAveragePooling2d(),
    ck.layers.dense({ units: 2, activation: 'softmax' }),
  ]);
  model.compile({ optimizer: 'sgd', loss: 'categoricalCrossentropy' });
  const rows = 4096;
  const x = ck.fill([rows, 64, 64, 1], 0.5);
  const y = ck.toCategorical(Array.from({ length: rows }, (_, i) => i % 2), 2);
  const small = { x: ck.fill([8, 64, 64, 1], 0.5), y: ck.toCategorical([0, 1, 0, 1, 0, 1, 0, 1], 2) };
  await model.fit(small.x, small.y, { epochs: 1, batchSize: 8, verbose: 0 });
  await model.predict(small.x).data();
  const before = ck.memory();
  report({ what: 'before', hostBytes: before.hostBytes, hostAllocations: before.hostAllocations });

  // 8 GiB in one tensor
  report(await attempt('tensor', () => ck.fill([2 ** 31 - 1], 0)));
  // one batch of 4096 64x64 images through 64 filters: 4 GiB of activations for one layer
  report(await attempt('fit', () => model.fit(x, y, { epochs: 1, batchSize: rows, verbose: 0 })));
  // predict runs a batch in slices, so the same batch predicts within the limit...
  report(await attempt('predict in slices', async () => {
    const p = await model.predict(x, { batchSize: rows }).data();
    if (p.length !== rows * 2) throw new Error(`predict gave ${p.length} values`);
  }));
  // ...but an output that is itself beyond memory cannot be made: 4 GiB of conv features
  const features = ck.sequential([
    ck.layers.input({ shape: [64, 64, 1] }),
    ck.layers.conv2d({ filters: 64, kernelSize: 3, padding: 'same' }),
  ]);
  report(await attempt('predict', () => features.predict(x, { batchSize: rows }).data()));

  // still usable: the same model trains and predicts at a sane batch size, and ops run
  const h = await model.fit(small.x, small.y, { epochs: 2, batchSize: 4, verbose: 0 });
  const p = await model.predict(small.x).data();
  const r = ck.ops.relu(ck.tensor([-1, 2], [2])).dataSync();
  const after = ck.memory();
  report({ what: 'after', loss: h.history.loss, predicted: Array.from(p.slice(0, 2)), relu: Array.from(r), hostBytes: after.hostBytes, hostAllocations: after.hostAllocations });
})().catch((e) => {
  process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
