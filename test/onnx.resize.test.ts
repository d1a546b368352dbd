// ONNX Resize and Upsample as UpSampling2D, checked against onnxruntime-node: graphs written by
// onnx.helper (test/fixtures/onnx/make-resize.py) with linear half_pixel / pytorch_half_pixel /
// asymmetric and nearest asymmetric + floor nodes, and PyTorch's nn.Upsample(mode='bilinear',
// align_corners=False) exported by torch.onnx.export, are imported with ck.io.loadOnnx and
// predict as onnxruntime does on the same file (within 1e-4 of the output's scale); the
// samplings convkit has no layer for are FormatErrors naming the node and its attributes; a
// half-pixel layer exported to ONNX runs in onnxruntime and imports back as the same layer.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ck from '../lib';
import { UpSampling2D } from '../lib/layers';
import { OnnxRuntime, relativeError, toNchw } from '../test-support/onnxruntime';
import { randomArray } from '../test-support/helpers';

const python = '/usr/bin/python3';
const MAKE = path.join(__dirname, 'fixtures', 'onnx', 'make-resize.py');
const TOLERANCE = 1e-4;
const runtime = new OnnxRuntime();
let dir: string;

const hasOnnx = spawnSync(python, ['-c', 'import onnx, numpy'], { encoding: 'utf8' }).status === 0;
const hasTorch = hasOnnx && spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
if (!hasOnnx) console.warn(`onnx.resize: the python onnx package is not installed (${python} -c 'import onnx, numpy' failed), so the onnx.helper graphs are not made`);
if (hasOnnx && !hasTorch) console.warn(`onnx.resize: PyTorch is not installed (${python} -c 'import torch' failed), so nn.Upsample's export is not checked`);

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-onnx-resize-'));
  runtime.start();
  if (hasOnnx) {
    const made = spawnSync(python, [MAKE, dir, ...(hasTorch ? ['--torch'] : [])], { encoding: 'utf8' });
    if (made.status !== 0) throw new Error(`${MAKE} failed: ${made.stderr}`);
  }
}, 120_000);

afterAll(() => {
  runtime.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** convkit's and onnxruntime's predictions for one random NHWC batch: their relative error, and the model. */
async function versusRuntime(file: string, batch = 3): Promise<{ error: number; model: ck.Functional }> {
  const model = await ck.io.loadOnnx(file);
  const [h, w, c] = model.inputs[0].shape.slice(1) as number[];
  const xs = randomArray(batch * h * w * c, 11, -1.5, 1.5);
  const run = await runtime.run(file, [{ data: toNchw(xs, [batch, h, w, c]), dims: [batch, c, h, w] }]);
  const got = await (model.predict(ck.tensor(xs, [batch, h, w, c])) as ck.Tensor).data();
  const [n, oc, oh, ow] = run.outputs[0].dims;
  expect(got.length).toBe(n * oc * oh * ow);
  return { error: relativeError(got, toNchwBack(run.outputs[0].data, [n, oc, oh, ow])), model };
}

/** onnxruntime's NCHW output in convkit's NHWC order. */
function toNchwBack(x: Float32Array, [n, c, h, w]: number[]): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++)
    for (let k = 0; k < c; k++)
      for (let i = 0; i < h; i++)
        for (let j = 0; j < w; j++) out[((b * h + i) * w + j) * c + k] = x[((b * c + k) * h + i) * w + j];
  return out;
}

const upSamplings = (model: ck.Functional) => model.layers.filter((l): l is UpSampling2D => l instanceof UpSampling2D);

(hasOnnx ? describe : describe.skip)('onnx.helper graphs predict as in onnxruntime', () => {
  const mapped: [string, number[], string, boolean][] = [
    ['linear_half_pixel.onnx', [2, 3], 'bilinear', true],
    ['linear_default_half_pixel.onnx', [3, 2], 'bilinear', true],
    ['linear_pytorch_half_pixel_sizes.onnx', [2, 3], 'bilinear', true],
    ['linear_half_pixel_opset18.onnx', [4, 1], 'bilinear', true],
    ['linear_asymmetric.onnx', [2, 3], 'bilinear', false],
    ['nearest_asymmetric_floor.onnx', [2, 3], 'nearest', false],
    ['upsample9_linear.onnx', [2, 2], 'bilinear', false],
    ['upsample7_nearest.onnx', [3, 2], 'nearest', false],
  ];
  test.each(mapped)('%s: UpSampling2D size %j, %s, halfPixelCenters %s', async (name, size, interpolation, halfPixelCenters) => {
    // Resize by `sizes` fixes the batch too: that file runs batches of 1.
    const { error, model } = await versusRuntime(path.join(dir, name), name.includes('_sizes') ? 1 : 3);
    expect(error).toBeLessThan(TOLERANCE);
    const [up] = upSamplings(model);
    expect([up.size, up.interpolation, up.halfPixelCenters]).toEqual([size, interpolation, halfPixelCenters]);
  });

  test.each([
    ['linear_align_corners.onnx', /node resize \(Resize\): mode 'linear' with coordinate_transformation_mode 'align_corners' samples differently/],
    ['nearest_half_pixel.onnx', /node resize \(Resize\): mode 'nearest' with coordinate_transformation_mode 'half_pixel' and nearest_mode 'round_prefer_floor' samples differently/],
    ['cubic_half_pixel.onnx', /node resize \(Resize\): mode 'cubic' with coordinate_transformation_mode 'half_pixel' samples differently/],
    ['linear_half_pixel_by_1_5.onnx', /node resize \(Resize\): scales \[1, 1, 1.5, 2\]: convkit up-samples height and width by whole factors/],
  ])('%s is a FormatError naming the node and its attributes', async (name, message) => {
    const file = path.join(dir, 'refused', name);
    await expect(runtime.run(file, [{ data: new Float32Array(60), dims: [1, 3, 4, 5] }])).resolves.toBeDefined();  // valid ONNX
    const error = await ck.io.loadOnnx(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ck.FormatError);
    expect(String((error as Error).message)).toMatch(message);
  });

  (hasTorch ? test : test.skip)("PyTorch's nn.Upsample(scale_factor=2, mode='bilinear', align_corners=False), exported by torch.onnx.export", async () => {
    const { error, model } = await versusRuntime(path.join(dir, 'torch_bilinear.onnx'));
    expect(error).toBeLessThan(TOLERANCE);
    const [up] = upSamplings(model);
    expect([up.size, up.interpolation, up.halfPixelCenters]).toEqual([[2, 2], 'bilinear', true]);
  });
});

describe('a half-pixel UpSampling2D exported', () => {
  test('writes Resize half_pixel, runs in onnxruntime as in convkit and imports back as the same layer', async () => {
    const L = ck.layers;
    const model = ck.sequential([
      L.input({ shape: [5, 4, 3] }),
      L.conv2d({ filters: 2, kernelSize: 2, name: 'conv' }),
      L.upSampling2d({ size: [2, 3], interpolation: 'bilinear', halfPixelCenters: true, name: 'up' }),
    ]);
    model.getLayer('conv').setWeights([ck.tensor(randomArray(24, 3, -1, 1), [2, 2, 3, 2]), ck.tensor([0.1, -0.2], [2])]);
    const file = path.join(dir, 'exported.onnx');
    await ck.io.toOnnx(model, file);
    const xs = randomArray(2 * 5 * 4 * 3, 5, -1, 1);
    const run = await runtime.run(file, [{ data: xs, dims: [2, 5, 4, 3] }]);
    const want = await (model.predict(ck.tensor(xs, [2, 5, 4, 3])) as ck.Tensor).data();
    expect(relativeError(run.outputs[0].data, want)).toBeLessThan(TOLERANCE);
    const back = await ck.io.loadOnnx(file);
    const [up] = upSamplings(back);
    expect([up.size, up.interpolation, up.halfPixelCenters]).toEqual([[2, 3], 'bilinear', true]);
    const again = await (back.predict(ck.tensor(xs, [2, 5, 4, 3])) as ck.Tensor).data();
    expect(relativeError(again, want)).toBeLessThan(TOLERANCE);
  });
});
