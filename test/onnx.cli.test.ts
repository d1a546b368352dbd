// `convkit export RUN --onnx FILE`: a run's model as an ONNX file that onnxruntime runs with
// the run's predictions and class names; mistakes are one line on stderr and a non-zero exit.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import * as fs from 'fs';
import * as path from 'path';
import { onnx } from 'onnx-proto';
import * as ck from '../lib';
import { OnnxRuntime } from '../test-support/onnxruntime';
import { ensureBuilt, jsonLines, runCli, tmpDir } from '../test-support/cli-fixtures';
import { randomArray } from '../test-support/helpers';

jest.setTimeout(60000);

let root: string;
let run: string;
const classNames = ['circle', 'square', 'star'];

beforeAll(async () => {
  ensureBuilt();
  root = tmpDir('convkit-onnx-cli-');
  run = path.join(root, 'run');
  const model = ck.sequential([
    ck.layers.input({ shape: [8, 6, 3] }),
    ck.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' }),
    ck.layers.batchNormalization(),
    ck.layers.flatten(),
    ck.layers.dense({ units: 3, activation: 'softmax', name: 'scores' }),
  ]);
  // trained moving statistics are not the initial zeros and ones
  const bn = model.layers[2];
  bn.setWeights(bn.getWeights().map((w, k) => ck.tensor(randomArray(w.size, 10 + k, 0.5, 1.5), [...w.shape])));
  await model.save(`file://${run}`, { metadata: { classNames, imageSize: [8, 6], channels: 3 } });
});

afterAll(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

/** onnxruntime-node's outputs for one input, in a child process of its own. */
async function runOnnx(file: string, data: Float32Array, dims: number[]) {
  const runtime = new OnnxRuntime();
  runtime.start();
  try {
    return await runtime.run(file, [{ data, dims }]);
  } finally {
    runtime.stop();
  }
}

describe('convkit export', () => {
  test('writes an ONNX file that predicts as the run does, with its class names', async () => {
    const file = path.join(root, 'model.onnx');
    const r = await runCli(['export', run, '--onnx', file, '--json']);
    expect(r.code).toBe(0);
    const [line] = jsonLines(r.stdout);
    expect(line).toMatchObject({
      type: 'export', format: 'onnx', opset: 13, layout: 'NHWC', classNames,
      inputs: [{ name: 'input', dims: ['batch', 8, 6, 3] }], outputs: [{ name: 'scores', dims: ['batch', 3] }],
    });
    const decoded = onnx.ModelProto.decode(fs.readFileSync(file));
    const meta = Object.fromEntries(decoded.metadataProps.map((p) => [p.key, p.value]));
    expect(JSON.parse(meta.classNames)).toEqual(classNames);

    const x = randomArray(2 * 8 * 6 * 3, 3, 0, 1);
    const model = await ck.loadModel(`file://${run}`);
    const want = await (model.predict(ck.tensor(x, [2, 8, 6, 3])) as ck.Tensor).data();
    const got = (await runOnnx(file, x, [2, 8, 6, 3])).outputs[0];
    expect(got.dims).toEqual([2, 3]);
    got.data.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThan(1e-5));
  });

  test('--nchw takes channels-first images; the human output names inputs and outputs', async () => {
    const file = path.join(root, 'nchw.onnx');
    const r = await runCli(['export', run, '--onnx', file, '--nchw']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/ONNX opset 13/);
    expect(r.stdout).toMatch(/input {2}input \[batch, 3, 8, 6\] NCHW/);
    expect(r.stdout).toMatch(/output scores \[batch, 3\]/);
    expect(r.stdout).toMatch(/3 class names/);
  });

  test.each([
    [['export', 'no-such-run', '--onnx', 'x.onnx'], 1, /model no-such-run does not exist/],
    [['export', '__RUN__'], 2, /required option '--onnx <file>'/],
    [['export', '__RUN__', '--onnx', '/no/such/folder/x.onnx'], 1, /the folder \/no\/such\/folder does not exist/],
    [['export', '__RUN__', '--onnx', '__ROOT__'], 1, /is a folder/],
  ])('%j exits %d with one line', async (args, code, message) => {
    const r = await runCli((args as string[]).map((a) => a.replace('__RUN__', run).replace('__ROOT__', root)));
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code, stdout: '' });
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message as RegExp);
  });
});
