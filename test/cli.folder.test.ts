// `convkit train DIR` end to end on a generated folder of 32x32 images (3 classes x 30, some
// JPEGs of another size, some greyscale, one corrupt file), then predict, evaluate and summary
// on the model it wrote. Runs the built CLI (node dist/cli/main.js).
import { afterAll, beforeAll, expect, jest, test } from '@jest/globals';
import * as fs from 'fs';
import * as path from 'path';
import { ensureBuilt, gridSize, jsonLines, makeShapeFolder, pngSize, runCli, SHAPE_CLASSES, tmpDir, writeCorrupt } from '../test-support/cli-fixtures';

jest.setTimeout(120000);

let root: string;
let data: string;
let run: string;
let result: Record<string, any>;
let epochs: Record<string, any>[];
let stderr: string;
let writeLog: string;

beforeAll(async () => {
  ensureBuilt();
  root = tmpDir();
  data = await makeShapeFolder(path.join(root, 'shapes'), { perClass: 30, size: 32 });
  writeCorrupt(path.join(data, 'circle', 'broken.png'));
  fs.writeFileSync(path.join(data, 'circle', 'notes.txt'), 'not an image extension: ignored\n');
  run = path.join(root, 'run');
  writeLog = path.join(root, 'writes.jsonl');
  const r = await runCli(['train', data, '--epochs', '8', '--seed', '1', '--out', run, '--json'], {
    env: { NODE_OPTIONS: `--require ${path.join(__dirname, '..', 'test-support', 'children', 'write-log.js')}`, CONVKIT_WRITE_LOG: writeLog },
  });
  stderr = r.stderr;
  if (r.code !== 0) throw new Error(`train failed (${r.code}): ${r.stderr}`);
  const lines = jsonLines(r.stdout);
  epochs = lines.filter((l) => l.type === 'epoch');
  result = lines[lines.length - 1];
  expect(lines.length).toBe(epochs.length + 1);
});

afterAll(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

test('--json: one object per epoch, then the result, and nothing else on stdout', () => {
  expect(epochs.map((e) => e.epoch)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  for (const e of epochs) {
    expect(e).toEqual(expect.objectContaining({ type: 'epoch', epochs: 8 }));
    for (const k of ['loss', 'accuracy', 'val_loss', 'val_accuracy', 'seconds', 'imagesPerSecond']) expect(typeof e[k]).toBe('number');
  }
  expect(result.type).toBe('result');
  expect(result.dataset).toBe('shapes');
  expect(result.evaluatedOn).toBe('validation');
  expect(result.classNames).toEqual(SHAPE_CLASSES);
  // 30 per class (one corrupt skipped), a stratified 20% held out.
  expect(result.trainImages + result.validationImages).toBe(90);
  expect(result.validationImages).toBe(18);
  expect(result.testImages).toBe(18);
  expect(result.skippedImages).toBe(1);
  expect(result.testAccuracy).toBeGreaterThanOrEqual(0.8);
  expect(result.imagesPerSecond).toBeGreaterThan(0);
  expect(result.seed).toBe(1);
  expect(result.out).toBe(run);
  for (const k of ['model', 'weights', 'history', 'curves', 'curvesSpec', 'confusion', 'confusionSpec', 'filters', 'featureMaps']) {
    expect(fs.existsSync(result.files[k])).toBe(true);
  }
});

test('a corrupt image is skipped with one warning, and training goes on', () => {
  const lines = stderr.split('\n').filter(Boolean);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^convkit: warning: skipped 1 unreadable image of 91: circle[/\\]broken\.png/);
});

test('the output folder: model with metadata, history, specs beside the PNGs', async () => {
  const model = JSON.parse(fs.readFileSync(path.join(run, 'model.json'), 'utf8'));
  expect(model.format).toBe('layers-model');
  expect(model.userDefinedMetadata).toEqual(expect.objectContaining({ classNames: SHAPE_CLASSES, imageSize: [32, 32], channels: 3 }));
  const history = JSON.parse(fs.readFileSync(path.join(run, 'history.json'), 'utf8'));
  expect(history.epoch).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  expect(history.history.val_accuracy).toHaveLength(8);
  const spec = JSON.parse(fs.readFileSync(path.join(run, 'curves.vl.json'), 'utf8'));
  expect(spec.$schema).toMatch(/vega-lite/);
  expect(JSON.parse(fs.readFileSync(path.join(run, 'confusion.vl.json'), 'utf8')).data.values).toHaveLength(9);

  for (const f of ['curves.png', 'confusion.png']) {
    const m = await pngSize(path.join(run, f));
    expect(m.format).toBe('png');
    expect(m.width).toBeGreaterThan(300);
    expect(m.height).toBeGreaterThan(200);
  }
  // First conv: 16 filters of 3x3 (RGB) drawn at 16x; feature maps: the input + 16 maps of 32x32 at 3x.
  expect(await pngSize(path.join(run, 'filters.png'))).toEqual({ format: 'png', ...gridSize(16, 3, 3, 16) });
  expect(await pngSize(path.join(run, 'feature-maps.png'))).toEqual({ format: 'png', ...gridSize(17, 32, 32, 3) });
});

test('every file of the run folder is written whole: under another name, then renamed into place', () => {
  const entries = fs.readFileSync(writeLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { write?: string; rename?: string; to?: string });
  const resolved = (p: string) => path.resolve(p);
  const outputs = (fs.readdirSync(run, { recursive: true }) as string[]).map((f) => path.join(run, f)).filter((f) => fs.statSync(f).isFile());
  expect(outputs.map((f) => path.relative(run, f))).toEqual(expect.arrayContaining(['model.json', 'weights.bin', 'history.json', 'curves.png',
    'confusion.png', 'filters.png', 'feature-maps.png', path.join('checkpoint', 'model.json'), path.join('checkpoint', 'weights.bin')]));
  for (const file of outputs) {
    const openedInPlace = entries.some((e) => e.write !== undefined && resolved(e.write) === file);
    const renamedIn = entries.some((e) => e.to !== undefined && resolved(e.to) === file);
    expect({ file: path.relative(run, file), openedInPlace, renamedIn }).toEqual({ file: path.relative(run, file), openedInPlace: false, renamedIn: true });
  }
  // and the temporary names are gone
  expect(outputs.filter((f) => /\.tmp$|\.tmp-/.test(f))).toEqual([]);
});

test('predict: top-k classes of images decoded as in training', async () => {
  const circle = path.join(data, 'circle', 'circle_004.jpg'); // a 48x48 JPEG: resized like in training
  const stripes = path.join(data, 'hstripes', 'hstripes_001.png');
  const r = await runCli(['predict', run, circle, stripes, '--json', '--top', '2']);
  expect(r.code).toBe(0);
  expect(r.stderr).toBe('');
  const [out, ...rest] = jsonLines(r.stdout);
  expect(rest).toHaveLength(0);
  expect(out.type).toBe('predictions');
  expect(out.predictions).toHaveLength(2);
  for (const p of out.predictions) {
    expect(p.top).toHaveLength(2);
    expect(p.top[0].probability).toBeGreaterThanOrEqual(p.top[1].probability);
  }
  expect(out.predictions[0].top[0].class).toBe('circle');
  expect(out.predictions[1].top[0].class).toBe('hstripes');

  const human = await runCli(['predict', run, circle]);
  expect(human.code).toBe(0);
  expect(human.stdout).toMatch(/circle_004\.jpg\n {2}circle +\d+\.\d\d%\n/);
  expect(human.stdout.trim().split('\n')).toHaveLength(4); // the file and the default top 3
});

test('evaluate on the folder and summary of the model', async () => {
  const ev = await runCli(['evaluate', run, data, '--json']);
  expect(ev.code).toBe(0);
  const [e] = jsonLines(ev.stdout);
  expect(e).toEqual(expect.objectContaining({ type: 'evaluation', images: 90, skippedImages: 1 }));
  expect(e.accuracy).toBeGreaterThan(0.8);
  expect(e.perClass.map((p: any) => p.class)).toEqual(SHAPE_CLASSES);

  const s = await runCli(['summary', run]);
  expect(s.code).toBe(0);
  expect(s.stdout).toMatch(/Total params: 75,155/);
  expect(s.stdout).toMatch(/Classes: circle, hstripes, vstripes/);
});

test('greyscale at another size, augmented, from a JSON spec without an input shape', async () => {
  const spec = path.join(root, 'spec.json');
  fs.writeFileSync(spec, JSON.stringify({
    class_name: 'Sequential',
    config: {
      layers: [
        { class_name: 'Conv2D', config: { filters: 8, kernel_size: [3, 3], activation: 'relu', padding: 'same' } },
        { class_name: 'MaxPooling2D', config: { pool_size: [2, 2] } },
        { class_name: 'Flatten', config: {} },
        { class_name: 'Dense', config: { units: 3, activation: 'softmax' } },
      ],
    },
  }));
  const out = path.join(root, 'grey');
  const r = await runCli(['train', data, '--image-size', '24x20', '--channels', '1', '--model', spec, '--augment', 'flip,crop,zoom=0.2,brightness',
    '--epochs', '2', '--seed', '2', '--out', out, '--json', '--optimizer', 'sgd', '--lr', '0.05', '--batch-size', '16']);
  expect(r.code).toBe(0);
  const result2 = jsonLines(r.stdout).at(-1)!;
  expect(result2.epochs).toBe(2);
  const meta = JSON.parse(fs.readFileSync(path.join(out, 'model.json'), 'utf8')).userDefinedMetadata;
  expect(meta).toEqual(expect.objectContaining({ imageSize: [20, 24], channels: 1 }));
  // 8 filters of 3x3 drawn at 16x; the input and 8 maps of 20x24 at round(96/24) = 4x.
  expect(await pngSize(path.join(out, 'filters.png'))).toEqual({ format: 'png', ...gridSize(8, 3, 3, 16) });
  expect(await pngSize(path.join(out, 'feature-maps.png'))).toEqual({ format: 'png', ...gridSize(9, 20, 24, 4) });
  // predict takes the size and channels from the metadata.
  const p = await runCli(['predict', out, path.join(data, 'vstripes', 'vstripes_000.png'), '--json']);
  expect(p.code).toBe(0);
  expect(jsonLines(p.stdout)[0]).toEqual(expect.objectContaining({ imageSize: [20, 24], channels: 1 }));
});

test('plain progress lines when stdout is not a terminal', async () => {
  const r = await runCli(['train', data, '--epochs', '1', '--seed', '3', '--out', path.join(root, 'plain')]);
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/Total params: 75,155/);
  expect(r.stdout).toMatch(/Epoch 1\/1\n3\/3 \[=+\] - .* - loss: \d\.\d{4} - accuracy: \d\.\d{4} - val_loss: \d\.\d{4} - val_accuracy: \d\.\d{4}\n/);
  expect(r.stdout).toMatch(/Test accuracy: \d+\.\d\d% \(loss \d\.\d{4}\) on 18 validation images/);
  expect(r.stdout).not.toMatch(/\r|\x1b\[/);
});
