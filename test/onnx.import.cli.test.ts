// `convkit import FILE.onnx OUT_DIR`: a PyTorch-exported ONNX file as a convkit model folder that
// predicts as the file imported by ck.io.loadOnnx does; mistakes are one line on stderr and a
// non-zero exit, and leave no folder behind.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import * as fs from 'fs';
import * as path from 'path';
import * as ck from '../lib';
import { ensureBuilt, jsonLines, runCli, tmpDir } from '../test-support/cli-fixtures';
import { randomArray } from '../test-support/helpers';

jest.setTimeout(60000);

const fixture = path.join(__dirname, 'fixtures', 'onnx', 'tiny_resnet.onnx');
let root: string;

beforeAll(() => {
  ensureBuilt();
  root = tmpDir('convkit-onnx-import-cli-');
});

afterAll(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

describe('convkit import', () => {
  test('writes a model folder that predicts as ck.io.loadOnnx does', async () => {
    const out = path.join(root, 'resnet');
    const r = await runCli(['import', fixture, out, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [line] = jsonLines(r.stdout);
    expect(line).toMatchObject({ type: 'import', out, inputs: [{ name: 'image', shape: [null, 32, 32, 3] }], outputs: [{ shape: [null, 10] }] });
    const saved = await ck.loadModel(`file://${out}`);
    const direct = await ck.io.loadOnnx(fixture);
    expect(line.params).toBe(direct.countParams());
    const x = ck.tensor(randomArray(2 * 32 * 32 * 3, 4, -1, 1), [2, 32, 32, 3]);
    expect(await (saved.predict(x) as ck.Tensor).data()).toEqual(await (direct.predict(x) as ck.Tensor).data());

    const text = await runCli(['import', fixture, path.join(root, 'again')]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/wrote .*again \(\d+ layers, [\d,]+ parameters\)\n {2}input {2}image \[batch, 32, 32, 3\] NHWC\n {2}output \S+ \[batch, 10\]/);
  });

  test('mistakes: a missing file, a damaged file, a folder in use, missing arguments', async () => {
    const missing = await runCli(['import', path.join(root, 'nope.onnx'), path.join(root, 'a')]);
    expect([missing.code, missing.stderr.trim()]).toEqual([1, `convkit: error: ${path.join(root, 'nope.onnx')} does not exist`]);
    const damaged = path.join(root, 'damaged.onnx');
    fs.writeFileSync(damaged, fs.readFileSync(fixture).subarray(0, 1000));
    const bad = await runCli(['import', damaged, path.join(root, 'b')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^convkit: error: cannot import .*damaged\.onnx: .*not an ONNX model/);
    expect(fs.existsSync(path.join(root, 'b'))).toBe(false);
    const used = path.join(root, 'used');
    fs.mkdirSync(used);
    fs.writeFileSync(path.join(used, 'keep.txt'), 'mine');
    const taken = await runCli(['import', fixture, used]);
    expect(taken.code).toBe(1);
    expect(taken.stderr).toMatch(/already exists and is not an empty folder/);
    expect(fs.readdirSync(used)).toEqual(['keep.txt']);
    const usage = await runCli(['import', fixture]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/missing required argument 'out'/);
  });
});
