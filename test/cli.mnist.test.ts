// `convkit train mnist` end to end on a subset of the real MNIST (--train-limit/--test-limit are
// hidden options for quick runs), then predict on digits written as PNG files and evaluate;
// fashion-mnist likewise when its package is installed.
import { afterAll, beforeAll, expect, jest, test } from '@jest/globals';
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import * as ck from '../lib';
import { ensureBuilt, gridSize, jsonLines, pngSize, runCli, tmpDir } from '../test-support/cli-fixtures';

jest.setTimeout(120000);

let root: string;
let run: string;
let result: Record<string, any>;

beforeAll(async () => {
  ensureBuilt();
  root = tmpDir();
  run = path.join(root, 'mnist-run');
  const r = await runCli(['train', 'mnist', '--train-limit', '3000', '--test-limit', '500', '--epochs', '2', '--seed', '1', '--out', run, '--json']);
  if (r.code !== 0) throw new Error(`train mnist failed (${r.code}): ${r.stderr}`);
  expect(r.stderr).toBe('');
  const lines = jsonLines(r.stdout);
  expect(lines.map((l) => l.type)).toEqual(['epoch', 'epoch', 'result']);
  result = lines[2];
});

afterAll(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

test('the result: test accuracy on the held-out test images, images/s, output files', () => {
  expect(result).toEqual(expect.objectContaining({
    type: 'result', dataset: 'mnist', evaluatedOn: 'test', testImages: 500, trainImages: 2700, validationImages: 300,
    epochs: 2, seed: 1, skippedImages: 0, classNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  }));
  expect(result.testAccuracy).toBeGreaterThan(0.8);
  expect(result.testLoss).toBeGreaterThan(0);
  expect(result.imagesPerSecond).toBeGreaterThan(0);
  expect(result.device).toEqual(expect.objectContaining({ type: 'cpu' }));
  expect(Object.keys(result.files).sort()).toEqual(['confusion', 'confusionSpec', 'curves', 'curvesSpec', 'featureMaps', 'filters', 'history', 'model', 'weights']);
});

test('the pictures are PNGs of the expected sizes', async () => {
  // The seeds' CNN: 32 filters of 5x5 at round(48/5) = 10x; maps of 24x24 ('valid') at 4x, after the input's centre.
  expect(await pngSize(path.join(run, 'filters.png'))).toEqual({ format: 'png', ...gridSize(32, 5, 5, 10) });
  expect(await pngSize(path.join(run, 'feature-maps.png'))).toEqual({ format: 'png', ...gridSize(33, 24, 24, 4) });
  const curves = await pngSize(path.join(run, 'curves.png'));
  const confusion = await pngSize(path.join(run, 'confusion.png'));
  expect(curves.format).toBe('png');
  expect(confusion.format).toBe('png');
  expect(curves.width!).toBeGreaterThan(curves.height!); // two panels side by side
  expect(confusion.width!).toBeGreaterThan(500);
});

test('predict on MNIST digits saved as PNG files; evaluate on the test split', async () => {
  const { test: t } = await ck.datasets.mnist({ trainLimit: 1, testLimit: 20 });
  const px = t.images.dataSync();
  const labels = t.labels.dataSync();
  const files: string[] = [];
  for (let i = 0; i < 20; i++) {
    const file = path.join(root, `digit-${i}-label-${labels[i]}.png`);
    const raw = Buffer.from(Uint8Array.from(px.subarray(i * 784, (i + 1) * 784), (v) => Math.round(v * 255)));
    await sharp(raw, { raw: { width: 28, height: 28, channels: 1 } }).png().toFile(file);
    files.push(file);
  }
  const r = await runCli(['predict', run, ...files, '--json', '--top', '1']);
  expect(r.code).toBe(0);
  const [out] = jsonLines(r.stdout);
  const right = out.predictions.filter((p: any, i: number) => p.top[0].class === String(labels[i])).length;
  expect(right).toBeGreaterThanOrEqual(15);

  const ev = await runCli(['evaluate', run, 'mnist', '--test-limit', '500', '--json']);
  expect(ev.code).toBe(0);
  const [e] = jsonLines(ev.stdout);
  expect(e.images).toBe(500);
  expect(e.accuracy).toBeCloseTo(result.testAccuracy, 5);
});

const hasFashion = (() => {
  try {
    require.resolve('fashion-mnist/package.json');
    return true;
  } catch {
    return false;
  }
})();

(hasFashion ? test : test.skip)(`train fashion-mnist on a subset${hasFashion ? '' : ' (skipped: the fashion-mnist package is not installed)'}`, async () => {
  const r = await runCli(['train', 'fashion-mnist', '--train-limit', '1000', '--test-limit', '200', '--epochs', '1', '--seed', '1', '--out', path.join(root, 'fashion'), '--json']);
  expect(r.code).toBe(0);
  const res = jsonLines(r.stdout).at(-1)!;
  expect(res).toEqual(expect.objectContaining({ type: 'result', dataset: 'fashion-mnist', testImages: 200, trainImages: 900 }));
  expect(res.classNames).toHaveLength(10);
  expect(res.classNames[9]).toBe('Ankle boot');
  expect(res.testAccuracy).toBeGreaterThan(0.4);
});
