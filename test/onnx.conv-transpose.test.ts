// Conv2DTranspose and Cropping2D through ONNX, checked against onnxruntime-node: convkit models
// exported (ConvTranspose with pads and output_padding, Slice) predict as convkit does, and
// torch.nn.ConvTranspose2d exports (made here by PyTorch: padding, output_padding, dilation,
// strides) import and predict as onnxruntime does on the same file.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ck from '../lib';
import { randomArray } from '../test-support/helpers';
import { fromNchw, OnnxRuntime, relativeError, toNchw } from '../test-support/onnxruntime';

let dir: string;
let files = 0;
const runtime = new OnnxRuntime();

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-onnx-convt-'));
  runtime.start();
});

afterAll(() => {
  runtime.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const TOLERANCE = 1e-4;
const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** Random weights everywhere (biases included), so a misplaced one shows. */
function randomize(model: ck.LayersModel, seed: number): void {
  model.layers.forEach((layer, i) => {
    const ws = layer.getWeights();
    if (ws.length) layer.setWeights(ws.map((w, k) => ck.tensor(randomArray(w.size, seed * 100 + i * 7 + k, -0.6, 0.6), [...w.shape])));
  });
}

/** convkit's predictions on an NHWC batch against onnxruntime's on the NCHW file (NCHW layout export). */
async function versusRuntime(model: ck.LayersModel, shape: number[], file: string, batch = 2, seed = 5): Promise<number> {
  const dims = [batch, ...shape];
  const xs = randomArray(prod(dims), seed, -1.5, 1.5);
  const run = await runtime.run(file, [{ data: toNchw(xs, dims), dims: [batch, shape[2], shape[0], shape[1]] }]);
  const y = model.predict(ck.tensor(xs, dims)) as ck.Tensor;
  const outShape = [...y.shape];
  expect(run.outputs[0].dims).toEqual([outShape[0], outShape[3], outShape[1], outShape[2]]);
  return relativeError(fromNchw(run.outputs[0].data, outShape), y.dataSync());
}

describe('export: Conv2DTranspose as ConvTranspose, Cropping2D as Slice', () => {
  const models: [string, () => ck.LayersModel][] = [
    ['same, strides 2, relu, then cropping', () => ck.sequential([ck.layers.input({ shape: [5, 4, 3] }),
      ck.layers.conv2dTranspose({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' }),
      ck.layers.cropping2D({ cropping: [[1, 2], [0, 3]] })])],
    ['valid, stride above the kernel (output_padding in ONNX), no bias', () => ck.sequential([ck.layers.input({ shape: [3, 4, 2] }),
      ck.layers.conv2dTranspose({ filters: 3, kernelSize: [1, 2], strides: [3, 4], useBias: false })])],
    ['outputPadding with same and valid, an even kernel, dilation', () => ck.sequential([ck.layers.input({ shape: [4, 3, 2] }),
      ck.layers.conv2dTranspose({ filters: 3, kernelSize: [4, 3], strides: [2, 3], padding: 'same', outputPadding: [1, 2] }),
      ck.layers.conv2dTranspose({ filters: 2, kernelSize: 3, strides: 2, padding: 'valid', outputPadding: 1, activation: 'tanh' }),
      ck.layers.conv2dTranspose({ filters: 2, kernelSize: 2, dilationRate: [2, 3], padding: 'same' }),
      ck.layers.cropping2D({ cropping: 2 })])],
  ];
  test.each(models)('%s: onnxruntime predicts as convkit', async (_, build) => {
    const model = build();
    randomize(model, 3);
    const shape = model.built!.inputShapes[0];
    const file = path.join(dir, `export${files++}.onnx`);
    await ck.io.toOnnx(model, file, { layout: 'nchw' });
    expect(await versusRuntime(model, shape, file)).toBeLessThan(TOLERANCE);
    // ... and reads back into convkit with the same predictions.
    const back = await ck.io.loadOnnx(file);
    const x = ck.tensor(randomArray(2 * prod(shape), 9, -1, 1), [2, ...shape]);
    const a = (model.predict(x) as ck.Tensor).dataSync();
    const b = (back.predict(x) as ck.Tensor).dataSync();
    expect(relativeError(b, a)).toBeLessThan(TOLERANCE);
  });
});

describe('import: torch.nn.ConvTranspose2d exported by PyTorch', () => {
  const python = '/usr/bin/python3';
  const hasTorch = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
  if (!hasTorch) console.warn(`onnx.conv-transpose: PyTorch is not installed (${python} -c 'import torch' failed)`);
  (hasTorch ? test : test.skip)('padding, output_padding, dilation, strides, no bias, in a small decoder: as onnxruntime', async () => {
    const file = path.join(dir, 'torch_decoder.onnx');
    const script = `
import sys, torch
import torch.nn as nn
torch.manual_seed(0)
class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.up1 = nn.ConvTranspose2d(4, 5, 3, stride=2, padding=1, output_padding=1)
        self.up2 = nn.ConvTranspose2d(5, 3, (4, 3), stride=(2, 3), padding=(1, 2), output_padding=(0, 2), dilation=(1, 2))
        self.up3 = nn.ConvTranspose2d(3, 2, 2, stride=2, bias=False)
        self.up4 = nn.ConvTranspose2d(2, 2, 5, padding=2)
    def forward(self, x):
        x = torch.relu(self.up1(torch.relu(self.conv(x))))
        return self.up4(self.up3(torch.sigmoid(self.up2(x))))
model = Decoder().eval()
for p in model.parameters():
    nn.init.uniform_(p, -0.5, 0.5)
torch.onnx.export(model, torch.randn(1, 3, 5, 4), sys.argv[1], opset_version=13, input_names=['x'], output_names=['y'],
                  dynamic_axes={'x': {0: 'batch'}, 'y': {0: 'batch'}})`;
    const made = spawnSync(python, ['-c', script, file], { encoding: 'utf8' });
    if (made.status !== 0) throw new Error(`torch.onnx.export failed: ${made.stderr}`);
    const model = await ck.io.loadOnnx(file);
    const kinds = model.layers.map((l) => l.className);
    expect(kinds.filter((k) => k === 'Conv2DTranspose')).toHaveLength(4);
    expect(kinds).toContain('Cropping2D');
    expect(model.outputs[0].shape).toEqual([null, 40, 48, 2]);
    expect(await versusRuntime(model, [5, 4, 3], file, 3, 11)).toBeLessThan(TOLERANCE);
  }, 60_000);
});
