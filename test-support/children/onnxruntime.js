// onnxruntime-node for test/onnx.export.test.ts, in a process of its own: inside jest its
// output tensors fail onnxruntime's own Float32Array check (they come from the main realm, the
// check uses jest's). Forked with 'advanced' serialization; each message
// { id, file, feeds: [{ data: Float32Array, dims }] } runs the model at `file` on the feeds (in
// its input order) and is answered { id, inputNames, outputNames, outputs: [{ data, dims }] }
// or { id, error }.
'use strict';
const ort = require('onnxruntime-node');

process.on('message', async ({ id, file, feeds }) => {
  try {
    const session = await ort.InferenceSession.create(file, { intraOpNumThreads: 1, interOpNumThreads: 1 });
    const inputs = {};
    feeds.forEach((f, i) => {
      inputs[session.inputNames[i]] = new ort.Tensor('float32', Float32Array.from(f.data), f.dims);
    });
    const results = await session.run(inputs);
    const outputs = session.outputNames.map((name) => ({ data: Float32Array.from(results[name].data), dims: [...results[name].dims] }));
    process.send({ id, inputNames: [...session.inputNames], outputNames: [...session.outputNames], outputs });
    await session.release();
  } catch (e) {
    process.send({ id, error: String(e && e.stack || e) });
  }
});
