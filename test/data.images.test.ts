// ck.data: imageFolder (tensors), imageFolderDataset and Dataset (streaming), augmentation,
// model.fitDataset / evaluateDataset, and the Fashion-MNIST package reader.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import * as ck from '../lib';
import { parseFashionClass } from '../lib/data/datasets';
import { makeShapeFolder, SHAPE_CLASSES, tmpDir, writeCorrupt } from '../test-support/cli-fixtures';

jest.setTimeout(60000);

let root: string;
let folder: string;

beforeAll(async () => {
  root = tmpDir('convkit-data-');
  folder = await makeShapeFolder(path.join(root, 'shapes'), { perClass: 10, size: 20 });
  writeCorrupt(path.join(folder, 'vstripes', 'zz-bad.webp'));
  // An RGBA PNG of another size and a 16-bit greyscale one: converted like the rest.
  await sharp({ create: { width: 50, height: 30, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 0.5 } } }).png().toFile(path.join(folder, 'circle', 'rgba.png'));
  await sharp({ create: { width: 7, height: 9, channels: 3, background: { r: 128, g: 128, b: 128 } } }).grayscale().png().toFile(path.join(folder, 'circle', 'grey.png'));
});

afterAll(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

describe('imageFolder', () => {
  test('decodes, converts and resizes every readable image; one warning for the rest', async () => {
    const warnings: string[] = [];
    const r = await ck.data.imageFolder(folder, { imageSize: [12, 16], channels: 3, validationSplit: 0.2, seed: 1, onWarning: (m) => warnings.push(m) });
    expect(r.classNames).toEqual(SHAPE_CLASSES);
    expect(r.train.images.shape.slice(1)).toEqual([12, 16, 3]);
    expect(r.train.images.shape[0] + r.validation!.images.shape[0]).toBe(32);
    // Stratified: 20% of each class (12, 10, 10 images) held out.
    expect(r.validation!.images.shape[0]).toBe(2 + 2 + 2);
    expect(Array.from(r.validation!.labels.dataSync()).sort()).toEqual([0, 0, 1, 1, 2, 2]);
    expect(r.skipped).toEqual([{ file: path.join(folder, 'vstripes', 'zz-bad.webp'), reason: 'unsupported image format' }]);
    expect(warnings).toEqual([expect.stringMatching(/^imageFolder: skipped 1 unreadable image of 33: vstripes[/\\]zz-bad\.webp/)]);
    const px = r.train.images.dataSync();
    expect(Math.min(...px)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...px)).toBeLessThanOrEqual(1);
    // The same seed, the same split.
    const again = await ck.data.imageFolder(folder, { imageSize: [12, 16], channels: 3, validationSplit: 0.2, seed: 1, onWarning: () => undefined });
    expect(again.validation!.files).toEqual(r.validation!.files);
  });

  test("the split draws from its own stream, not from the one fit shuffles with for the same seed", async () => {
    // Before the split had its own stream, its choice within each class was the first draws of
    // fit's order for the same seed (the CLI passes one seed to both).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { Rng } = require('../lib/rng') as typeof import('../lib/rng');
    const circles = fs.readdirSync(path.join(folder, 'circle')).filter((f) => /\.(png|jpe?g|webp)$/i.test(f)).sort();
    let coupled = 0;
    for (const seed of [1, 2, 3, 4, 5]) {
      const r = await ck.data.imageFolder(folder, { imageSize: [4, 4], channels: 1, validationSplit: 0.2, seed, onWarning: () => undefined });
      const held = r.validation!.files.filter((f) => path.dirname(f).endsWith('circle')).map((f) => path.basename(f)).sort();
      const fitsFirst = Array.from(new Rng(seed).permutation(circles.length).slice(0, held.length), (k) => circles[k]).sort();
      if (held.join() === fitsFirst.join()) coupled++;
    }
    expect(coupled).toBeLessThan(5);
  });

  test('greyscale output, and the alpha flattened onto black', async () => {
    const r = await ck.data.imageFolder(folder, { imageSize: [4, 4], channels: 1, onWarning: () => undefined });
    expect(r.train.images.shape.slice(1)).toEqual([4, 4, 1]);
    const i = r.train.files.indexOf(path.join(folder, 'circle', 'rgba.png'));
    const px = Array.from(r.train.images.dataSync().subarray(i * 16, (i + 1) * 16));
    // Red at half opacity over black: luminance of (128, 0, 0), about 0.1-0.25.
    for (const v of px) expect(v).toBeGreaterThan(0.05);
    for (const v of px) expect(v).toBeLessThan(0.3);
    const g = r.train.files.indexOf(path.join(folder, 'circle', 'grey.png'));
    for (const v of r.train.images.dataSync().subarray(g * 16, (g + 1) * 16)) expect(v).toBeCloseTo(128 / 255, 2);
  });

  test('bad folders and options throw typed errors', async () => {
    await expect(ck.data.imageFolder(path.join(root, 'nope'))).rejects.toThrow(/does not exist/);
    await expect(ck.data.imageFolder(folder, { imageSize: [0, 4] as [number, number] })).rejects.toThrow(ck.ValueError);
    await expect(ck.data.imageFolder(folder, { channels: 2 as 1 })).rejects.toThrow(/channels must be 1 or 3/);
    const empty = path.join(root, 'empty');
    fs.mkdirSync(empty);
    await expect(ck.data.imageFolder(empty)).rejects.toThrow(ck.FormatError);
  });

  test('loadImage: one image as a [1, h, w, c] tensor', async () => {
    const t = await ck.data.loadImage(path.join(folder, 'circle', 'rgba.png'), { imageSize: [5, 6], channels: 3 });
    expect(t.shape).toEqual([1, 5, 6, 3]);
    const px = t.dataSync();
    expect(px[0]).toBeGreaterThan(0.3);
    expect(px[1]).toBe(0);
    await expect(ck.data.loadImage(path.join(folder, 'vstripes', 'zz-bad.webp'), { imageSize: [5, 5] })).rejects.toThrow(/cannot read .*unsupported image format/);
  });
});

describe('augmentation', () => {
  const x = () => {
    const v = new Float32Array(4 * 8 * 8 * 3);
    for (let i = 0; i < v.length; i++) v[i] = ((i * 37) % 256) / 255;
    return ck.tensor(v, [4, 8, 8, 3]);
  };

  test('seeded, shape-preserving, in range; flip alone mirrors exactly', async () => {
    const a = await ck.data.augment(x(), { flip: true, crop: 0.2, zoom: 0.2, brightness: 0.3 }, { seed: 9 });
    const b = await ck.data.augment(x(), { flip: true, crop: 0.2, zoom: 0.2, brightness: 0.3 }, { seed: 9 });
    const c = await ck.data.augment(x(), { flip: true, crop: 0.2, zoom: 0.2, brightness: 0.3 }, { seed: 10 });
    expect(a.shape).toEqual([4, 8, 8, 3]);
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    expect(Array.from(a.dataSync())).not.toEqual(Array.from(c.dataSync()));
    for (const v of a.dataSync()) expect(v >= 0 && v <= 1).toBe(true);

    const src = x().dataSync();
    const f = (await ck.data.augment(x(), { flip: true }, { seed: 3 })).dataSync();
    for (let i = 0; i < 4; i++) {
      const img = (d: Float32Array, y: number, xx: number, ch: number) => d[((i * 8 + y) * 8 + xx) * 3 + ch];
      const same = img(f, 2, 1, 0) === img(src, 2, 1, 0) && img(f, 5, 6, 2) === img(src, 5, 6, 2);
      const mirrored = img(f, 2, 1, 0) === img(src, 2, 6, 0) && img(f, 5, 6, 2) === img(src, 5, 1, 2);
      expect(same || mirrored).toBe(true);
    }
    expect(() => ck.data.augmentImages(x(), { rotate: 1 } as never)).toThrow(/unknown option 'rotate'/);
  });

  test('the fit callback re-augments before each epoch and restores the images after', async () => {
    const images = x();
    const before = Array.from(images.dataSync());
    const seen: number[][] = [];
    const model = ck.sequential([ck.layers.flatten({ inputShape: [8, 8, 3] }), ck.layers.dense({ units: 2, activation: 'softmax' })]);
    model.compile({ optimizer: 'sgd', loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
    const aug = ck.data.augmentImages(images, { crop: 0.25, brightness: 0.2 }, { seed: 1 });
    const spy = { onEpochBegin: async () => { seen.push(Array.from(images.dataSync())); } };
    await model.fit(images, ck.toCategorical([0, 1, 0, 1], 2), { epochs: 3, batchSize: 2, verbose: 0, callbacks: [aug, spy] });
    expect(seen).toHaveLength(3);
    expect(seen[0]).not.toEqual(before);
    expect(seen[1]).not.toEqual(seen[0]);
    expect(Array.from(images.dataSync())).toEqual(before);
  });
});

describe('Dataset', () => {
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);

  test('map, filter, take, skip, repeat and their sizes', async () => {
    const d = ck.data.array(range(10));
    expect(await d.map((v) => v * 2).toArray()).toEqual(range(10).map((v) => v * 2));
    expect(await d.filter((v) => v % 3 === 0).toArray()).toEqual([0, 3, 6, 9]);
    expect(await d.skip(7).toArray()).toEqual([7, 8, 9]);
    expect(await d.take(3).repeat(2).toArray()).toEqual([0, 1, 2, 0, 1, 2]);
    expect(d.take(3).repeat(2).size).toBe(6);
    // An async map with concurrency keeps the order.
    const slow = d.map(async (v) => {
      await new Promise((r) => setTimeout(r, (10 - v) * 2));
      return v;
    }, { concurrency: 4 });
    expect(await slow.prefetch(3).toArray()).toEqual(range(10));
  });

  test('cache: later passes replay the first complete pass without running what comes before', async () => {
    let calls = 0;
    const d = ck.data.array(range(6)).map((v) => {
      calls++;
      return { v, t: ck.tensor([v], [1]) };
    }).cache();
    expect(d.size).toBe(6);
    // A pass that stops early keeps nothing.
    expect((await d.take(2).toArray()).map((e) => e.v)).toEqual([0, 1]);
    const first = await d.toArray();
    expect(calls).toBe(8);
    const again = await d.toArray();
    expect(calls).toBe(8);
    expect(again.map((e) => e.v)).toEqual(range(6));
    again.forEach((e, i) => expect(e.t).toBe(first[i].t));
    // Shuffling after the cache still gives a new order each pass, from the cached elements.
    const shuffled = d.shuffle(6, 3);
    const a = (await shuffled.toArray()).map((e) => e.v);
    const b = (await shuffled.toArray()).map((e) => e.v);
    expect([...a].sort()).toEqual(range(6));
    expect(a).not.toEqual(b);
    expect(calls).toBe(8);
  });

  test('cache: a failed first pass keeps nothing and fails again', async () => {
    let calls = 0;
    const d = ck.data.array(range(4)).map((v) => {
      calls++;
      if (v === 2 && calls < 5) throw new ck.ValueError('bad element');
      return v;
    }).cache();
    await expect(d.toArray()).rejects.toThrow('bad element');
    expect(await d.toArray()).toEqual(range(4));
    expect(await d.toArray()).toEqual(range(4));
    expect(calls).toBe(7);
  });

  test('shuffle: a seeded permutation, a new order on each pass', async () => {
    const d = ck.data.array(range(50)).shuffle(50, 7);
    const first = await d.toArray();
    const second = await d.toArray();
    expect([...first].sort((a, b) => a - b)).toEqual(range(50));
    expect(first).not.toEqual(range(50));
    expect(second).not.toEqual(first);
    expect(await ck.data.array(range(50)).shuffle(50, 7).toArray()).toEqual(first);
    // A small buffer still yields every element once.
    expect((await ck.data.array(range(50)).shuffle(4, 1).toArray()).sort((a, b) => a - b)).toEqual(range(50));
  });

  test('batch stacks tensors, typed arrays and numbers, field by field', async () => {
    const d = ck.data.array(range(5).map((i) => ({ xs: ck.tensor([i, i, i, i], [2, 2]), ys: Float32Array.of(i, -i), id: `e${i}` })));
    const batches = await d.batch(2).toArray();
    expect(batches).toHaveLength(3);
    expect(batches[0].xs.shape).toEqual([2, 2, 2]);
    expect(batches[2].xs.shape).toEqual([1, 2, 2]);
    expect(Array.from(batches[1].ys.dataSync())).toEqual([2, -2, 3, -3]);
    expect(batches[1].id).toEqual(['e2', 'e3']);
    expect(d.batch(2, { dropRemainder: true }).size).toBe(2);
    expect((await ck.data.array([1, 2, 3]).batch(3).toArray())[0].shape).toEqual([3]);
  });

  test('imageFolderDataset + fitDataset + evaluateDataset', async () => {
    const warnings: string[] = [];
    const { classNames, train, validation } = ck.data.imageFolderDataset(folder, { imageSize: [16, 16], channels: 3, validationSplit: 0.25, seed: 3, onWarning: (m) => warnings.push(m) });
    expect(classNames).toEqual(SHAPE_CLASSES);
    const first = await train.take(1).toArray();
    expect(first[0].xs.shape).toEqual([16, 16, 3]);
    expect(first[0].ys.shape).toEqual([3]);

    ck.setSeed(1);
    const model = ck.sequential([
      ck.layers.conv2d({ inputShape: [16, 16, 3], filters: 4, kernelSize: 3, activation: 'relu' }),
      ck.layers.globalAveragePooling2d(),
      ck.layers.dense({ units: 3, activation: 'softmax' }),
    ]);
    model.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
    const epochs: number[] = [];
    const h = await model.fitDataset(train.shuffle(64, 1).batch(8).prefetch(2), {
      epochs: 2, verbose: 0, validationData: validation!.batch(8), callbacks: { onEpochEnd: async (e) => { epochs.push(e); } },
    });
    expect(epochs).toEqual([0, 1]);
    expect(Object.keys(h.history).sort()).toEqual(['accuracy', 'loss', 'val_accuracy', 'val_loss']);
    expect(h.history.loss).toHaveLength(2);
    for (const v of h.history.loss) expect(Number.isFinite(v)).toBe(true);
    // The corrupt image is skipped, with one warning after the first pass (it is a vstripes file
    // and may fall in either split).
    expect(warnings.length).toBeLessThanOrEqual(2);
    expect(warnings.join('\n')).toMatch(/skipped 1 unreadable image: vstripes[/\\]zz-bad\.webp/);
    const [loss, acc] = await model.evaluateDataset(validation!.batch(5));
    expect(loss).toBeGreaterThan(0);
    expect(acc).toBeGreaterThanOrEqual(0);
    expect(acc).toBeLessThanOrEqual(1);
    await expect(model.fitDataset(ck.data.array([1, 2]) as never, { verbose: 0 })).rejects.toThrow(/\{ xs, ys \} batches/);
  });
});

describe('fashionMnist package reader', () => {
  test('parses rows of 784 bytes, skipping the empty rows the package has', () => {
    const row = (v: number) => `[${new Array(784).fill(v).join(',')}]`;
    const json = `{"data":[${row(1)},[],${row(255)}, ${row(0)}]}`;
    const rows = parseFashionClass(Buffer.from(json), 'x.json');
    expect(rows.map((r) => [r.length, r[0], r[783]])).toEqual([[784, 1, 1], [784, 255, 255], [784, 0, 0]]);
    expect(() => parseFashionClass(Buffer.from('{"data":[[1,2,3]]}'), 'x.json')).toThrow(/row of 3 pixels/);
    expect(() => parseFashionClass(Buffer.from(`{"data":[${row(256)}]}`), 'x.json')).toThrow(/above 255/);
  });
});

describe('cifar10 reader', () => {
  /** A batch file in the CIFAR-10 binary format whose record k has label k % 10 and pixel values from (k, channel, pixel). */
  const value = (k: number, c: number, p: number) => (k * 7 + c * 101 + p * 13) % 256;
  function writeBatch(file: string, first: number, records = 10000): void {
    const buf = Buffer.alloc(records * 3073);
    for (let r = 0; r < records; r++) {
      const k = first + r;
      buf[r * 3073] = k % 10;
      for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) buf[r * 3073 + 1 + c * 1024 + p] = value(k, c, p);
    }
    fs.writeFileSync(file, buf);
  }

  test('reads the binary batches into NHWC images and labels, with limits', async () => {
    const dir = path.join(root, 'cifar-10-batches-bin');
    fs.mkdirSync(dir);
    for (let i = 1; i <= 5; i++) writeBatch(path.join(dir, `data_batch_${i}.bin`), (i - 1) * 10000);
    writeBatch(path.join(dir, 'test_batch.bin'), 50000);
    const { train, test: held, classNames } = await ck.datasets.cifar10({ path: dir, trainLimit: 10003, testLimit: 2 });
    expect(classNames).toEqual(['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']);
    expect(train.images.shape).toEqual([10003, 32, 32, 3]);
    expect(held.images.shape).toEqual([2, 32, 32, 3]);
    const x = train.images.dataSync();
    // Record 10001 comes from the second file; pixel (row 5, column 9) is p = 5 * 32 + 9.
    for (const k of [0, 9999, 10001]) {
      for (const c of [0, 1, 2]) expect(x[k * 3072 + (5 * 32 + 9) * 3 + c]).toBeCloseTo(value(k, c, 5 * 32 + 9) / 255, 6);
    }
    expect(Array.from(train.labels.dataSync().subarray(9998, 10003))).toEqual([8, 9, 0, 1, 2]);
    expect(Array.from(held.labels.dataSync())).toEqual([0, 1]);
    expect(held.images.dataSync()[3]).toBeCloseTo(value(50000, 0, 1) / 255, 6);
  });

  test('missing or damaged files and a missing path are typed errors', async () => {
    const dir = path.join(root, 'cifar-bad');
    fs.mkdirSync(dir);
    await expect(ck.datasets.cifar10({ path: dir })).rejects.toThrow(/data_batch_1\.bin is missing \(extract cifar-10-binary\.tar\.gz/);
    for (let i = 1; i <= 5; i++) writeBatch(path.join(dir, `data_batch_${i}.bin`), 0, i === 3 ? 9999 : 10000);
    writeBatch(path.join(dir, 'test_batch.bin'), 0);
    await expect(ck.datasets.cifar10({ path: dir })).rejects.toThrow(new ck.FormatError(`cifar10: ${path.join(dir, 'data_batch_3.bin')} has 30726927 bytes, expected 30730000 (10,000 records of 3073)`));
    writeBatch(path.join(dir, 'data_batch_3.bin'), 0);
    const bad = fs.readFileSync(path.join(dir, 'test_batch.bin'));
    bad[3073 * 4] = 10;
    fs.writeFileSync(path.join(dir, 'test_batch.bin'), bad);
    await expect(ck.datasets.cifar10({ path: dir, trainLimit: 1 })).rejects.toThrow(/record 4 has label 10, expected 0-9/);
    await expect(ck.datasets.cifar10({} as never)).rejects.toThrow(ck.ValueError);
  });

  test('cifar100: fine or coarse labels and their names from the binary version', async () => {
    const dir = path.join(root, 'cifar-100-binary');
    fs.mkdirSync(dir);
    const write = (file: string, records: number) => {
      const buf = Buffer.alloc(records * 3074);
      for (let k = 0; k < records; k++) {
        buf[k * 3074] = k % 20;
        buf[k * 3074 + 1] = (k * 7) % 100;
        for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) buf[k * 3074 + 2 + c * 1024 + p] = value(k, c, p);
      }
      fs.writeFileSync(path.join(dir, file), buf);
    };
    write('train.bin', 50000);
    write('test.bin', 10000);
    fs.writeFileSync(path.join(dir, 'fine_label_names.txt'), Array.from({ length: 100 }, (_, i) => `fine${i}`).join('\n') + '\n');
    fs.writeFileSync(path.join(dir, 'coarse_label_names.txt'), Array.from({ length: 20 }, (_, i) => `coarse${i}`).join('\n') + '\n');
    const fine = await ck.datasets.cifar100({ path: dir, trainLimit: 3, testLimit: 1 });
    expect(fine.classNames.length).toBe(100);
    expect(fine.classNames[99]).toBe('fine99');
    expect(Array.from(fine.train.labels.dataSync())).toEqual([0, 7, 14]);
    expect(fine.train.images.dataSync()[2 * 3072 + (5 * 32 + 9) * 3 + 1]).toBeCloseTo(value(2, 1, 5 * 32 + 9) / 255, 6);
    const coarse = await ck.datasets.cifar100({ path: dir, labelMode: 'coarse', trainLimit: 3, testLimit: 1 });
    expect(coarse.classNames).toEqual(Array.from({ length: 20 }, (_, i) => `coarse${i}`));
    expect(Array.from(coarse.train.labels.dataSync())).toEqual([0, 1, 2]);
    await expect(ck.datasets.cifar100({ path: dir, labelMode: 'medium' as never })).rejects.toThrow(/labelMode must be 'fine' or 'coarse'/);
    fs.writeFileSync(path.join(dir, 'coarse_label_names.txt'), 'a\nb\n');
    await expect(ck.datasets.cifar100({ path: dir, labelMode: 'coarse' })).rejects.toThrow(/names 2 classes, expected 20/);
  });
});
