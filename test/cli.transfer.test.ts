// `convkit train DIR --base MODEL --freeze-base`: a base trained on MNIST, its layers before the
// classifier reused under a new head for a generated folder of 28x28 shapes. The frozen base is
// saved bit for bit as trained (and stays so through --resume), the unfrozen one is fine-tuned;
// a functional base is cut at its last Dense layer's input; mistakes are one-line errors.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import * as fs from 'fs';
import * as path from 'path';
import * as ck from '../lib';
import { bitwiseEqual } from '../test-support/helpers';
import { ensureBuilt, jsonLines, makeShapeFolder, runCli, SHAPE_CLASSES, tmpDir } from '../test-support/cli-fixtures';

jest.setTimeout(120000);

let root: string;
let shapes: string;
let base: string;

const weightsOf = (model: ck.LayersModel, names: string[]) => names.flatMap((n) => model.getLayer(n).getWeights().map((w) => w.dataSync().slice()));
const BASE_LAYERS = ['conv2d', 'conv2d_1'];

async function train(args: string[]): Promise<Record<string, any>> {
  const r = await runCli(['train', ...args, '--json']);
  if (r.code !== 0) throw new Error(`train ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  const lines = jsonLines(r.stdout);
  return lines[lines.length - 1];
}

beforeAll(async () => {
  ensureBuilt();
  root = tmpDir('convkit-cli-transfer-');
  shapes = await makeShapeFolder(path.join(root, 'shapes'), { perClass: 20, size: 28 });
  base = path.join(root, 'digits');
  await train(['mnist', '--train-limit', '2000', '--test-limit', '200', '--epochs', '1', '--seed', '1', '--out', base]);
});

afterAll(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

describe('--base MODEL --freeze-base', () => {
  let run: string;
  let result: Record<string, any>;

  beforeAll(async () => {
    run = path.join(root, 'frozen');
    result = await train([shapes, '--base', base, '--freeze-base', '--image-size', '28x28', '--channels', '1', '--epochs', '12', '--lr', '0.01', '--seed', '2', '--out', run]);
  });

  test('the base is MODEL up to its flatten, saved bit for bit as trained; a new head sized to the classes trained', async () => {
    const digits = await ck.loadModel(`file://${base}`);
    const model = await ck.loadModel(`file://${run}`);
    expect(model.layers.map((l) => l.name)).toEqual([...digits.layers.slice(0, -1).map((l) => l.name), 'transfer_head']);
    expect(model.outputShape).toEqual([null, SHAPE_CLASSES.length]);
    expect(bitwiseEqual(weightsOf(model, BASE_LAYERS), weightsOf(digits, BASE_LAYERS))).toBe(true);
    for (const layer of model.layers.slice(1, -1)) expect(layer.trainable).toBe(false);
    expect(model.getLayer('transfer_head').trainable).toBe(true);
    expect(result.classNames).toEqual(SHAPE_CLASSES);
    expect(result.base).toBe(base);
    expect(result.freezeBase).toBe(true);
    // the head learns the three shapes on the frozen MNIST features
    const history = JSON.parse(fs.readFileSync(path.join(run, 'history.json'), 'utf8'));
    expect(history.history.loss[11]).toBeLessThan(0.5 * history.history.loss[0]);
    // 12 held-out images: seeds 2-7 give 8-11 right; chance (1/3) reaches 8 with p = 0.02.
    expect(result.testAccuracy).toBeGreaterThanOrEqual(0.6);
    expect(history.params).toEqual(expect.objectContaining({ base, freezeBase: true }));
  });

  test('the base stays frozen through --resume', async () => {
    const again = await train(['--resume', run, '--epochs', '14']);
    expect(again.resumedFrom).toBe(12);
    expect(again.base).toBe(base);
    const digits = await ck.loadModel(`file://${base}`);
    const model = await ck.loadModel(`file://${run}`);
    expect(bitwiseEqual(weightsOf(model, BASE_LAYERS), weightsOf(digits, BASE_LAYERS))).toBe(true);
  });

  test('the summary counts the base as non-trainable', async () => {
    const r = await runCli(['train', shapes, '--base', base, '--freeze-base', '--image-size', '28x28', '--channels', '1', '--epochs', '1', '--seed', '2', '--out', path.join(root, 'frozen-text')]);
    expect(r.code).toBe(0);
    // conv 5x5x1x32 + 32 = 832, conv 5x5x32x64 + 64 = 51,264; head 1024 x 3 + 3 = 3,075
    expect(r.stdout).toContain('Trainable params: 3,075');
    expect(r.stdout).toContain('Non-trainable params: 52,096');
    expect(r.stdout).toContain('Transfer from');
    expect(r.stdout).toContain('5 layers reused and frozen, dense replaced by a new 3-class head');
  });
});

test('--base without --freeze-base fine-tunes every layer from the trained weights', async () => {
  const run = path.join(root, 'tuned');
  const result = await train([shapes, '--base', base, '--image-size', '28x28', '--channels', '1', '--epochs', '2', '--seed', '2', '--out', run]);
  expect(result.freezeBase).toBe(false);
  const digits = await ck.loadModel(`file://${base}`);
  const model = await ck.loadModel(`file://${run}`);
  const before = weightsOf(digits, BASE_LAYERS);
  const after = weightsOf(model, BASE_LAYERS);
  expect(bitwiseEqual(after, before)).toBe(false);
  // fine-tuned from the trained weights, not from fresh ones: a few Adam steps move them little
  let worst = 0;
  after.forEach((w, k) => w.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - before[k][i])))));
  expect(worst).toBeLessThan(0.05);
  for (const layer of model.layers) expect(layer.trainable).toBe(true);
});

test('a functional base is cut at its last Dense layer\'s input, its branches kept', async () => {
  const input = ck.input({ shape: [28, 28, 1], name: 'image' });
  const a = ck.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'ca' }).apply(input);
  const b = ck.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'cb' }).apply(a);
  const sum = ck.layers.add({ name: 'sum' }).apply([a, b]);
  const gap = ck.layers.globalAveragePooling2d({ name: 'gap' }).apply(sum);
  const probs = ck.layers.dense({ units: 7, activation: 'softmax', name: 'probs' }).apply(gap);
  const source = ck.model({ inputs: input, outputs: probs });
  const dir = path.join(root, 'functional');
  await source.save(`file://${dir}`);
  const run = path.join(root, 'from-functional');
  await train([shapes, '--base', dir, '--freeze-base', '--image-size', '28x28', '--channels', '1', '--epochs', '1', '--seed', '2', '--out', run]);
  const model = await ck.loadModel(`file://${run}`);
  expect(model.layers.map((l) => l.name)).toEqual(['image', 'ca', 'cb', 'sum', 'gap', 'transfer_head']);
  expect(bitwiseEqual(weightsOf(model, ['ca', 'cb']), weightsOf(source, ['ca', 'cb']))).toBe(true);
  expect(model.outputShape).toEqual([null, 3]);
});

describe('mistakes are one-line errors', () => {
  test.each([
    [['--base', 'BASE', '--freeze-base'], 1, /--base .*digits takes input \(None, 28, 28, 1\) but the images are \(None, 32, 32, 3\); pass --image-size 28x28 --channels 1/],
    [['--freeze-base'], 2, /--freeze-base needs --base MODEL/],
    [['--base', 'BASE', '--model', 'spec.json'], 2, /--base and --model both give the model/],
    [['--base', 'SHAPES', '--image-size', '28x28', '--channels', '1'], 1, /is not a model: .*model\.json does not exist/],
  ])('%j', async (args, code, message) => {
    const r = await runCli(['train', shapes, ...args.map((a) => (a === 'BASE' ? base : a === 'SHAPES' ? shapes : a)), '--epochs', '1', '--out', path.join(root, 'never')]);
    expect(r.code).toBe(code);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).not.toContain('Epoch');
  });

  test('--base with mnist needs a base that takes 28x28x1', async () => {
    const big = path.join(root, 'big');
    const m = ck.sequential([ck.layers.input({ shape: [32, 32, 3] }), ck.layers.conv2d({ filters: 2, kernelSize: 3 }), ck.layers.flatten(), ck.layers.dense({ units: 2, activation: 'softmax' })]);
    await m.save(`file://${big}`);
    const r = await runCli(['train', 'mnist', '--base', big, '--train-limit', '100', '--epochs', '1', '--out', path.join(root, 'never')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/takes input \(None, 32, 32, 3\) but the images are \(None, 28, 28, 1\); MNIST images are 28x28x1/);
  });
});
