// Loads the model in DIR, trains it one step and saves it back into DIR, in a process whose
// file size limit (ulimit -f) is below the weights' size; prints the error the save gave as one
// JSON line, then shows the process still works (a prediction) and exits 0.
// usage: node save-limited.js DIR
'use strict';
const ck = require('../../dist');

(async () => {
  const dir = process.argv[2];
  const model = await ck.loadModel(`file://${dir}`);
  const x = ck.fill([4, ...model.inputShape], 0.5);
  const y = ck.toCategorical([0, 1, 2, 3], model.outputShape[1]);
  await model.trainOnBatch(x, y);
  let error = null;
  try {
    await model.save(`file://${dir}`, { includeOptimizer: true, metadata: { version: 'new' } });
  } catch (e) {
    error = { name: e.name, isConvkitError: e instanceof ck.ConvkitError, isIOError: e instanceof ck.IOError, code: e.code, path: e.path, message: e.message };
  }
  const p = await model.predict(x).data();
  process.stdout.write(`${JSON.stringify({ error, predicted: p.length })}\n`);
})().catch((e) => {
  process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
