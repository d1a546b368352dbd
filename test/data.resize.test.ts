// The image pipeline's resize (native resizeImage, behind decodeImage, loadImage, imageFolder and
// imageFolderDataset) against a float64 reference written from the definition: separable
// triangle filters with half-pixel centres, widened by the reduction factor when shrinking.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import * as ck from '../lib';
import { native } from '../lib/native';
import { mulberry32 } from '../lib/rng';
import { tmpDir } from '../test-support/cli-fixtures';

type Interp = 'bilinear' | 'nearest';

/** Weights of every input index for output index i along one axis (float64, plain loops). */
function axisWeights(inSize: number, outSize: number, i: number, interp: Interp): Float64Array {
  const w = new Float64Array(inSize);
  const scale = inSize / outSize;
  if (interp === 'nearest') {
    w[Math.min(inSize - 1, Math.floor((i + 0.5) * scale))] = 1;
    return w;
  }
  const spread = Math.max(scale, 1);
  const centre = (i + 0.5) * scale;
  let sum = 0;
  for (let j = 0; j < inSize; j++) {
    w[j] = Math.max(0, 1 - Math.abs((j + 0.5 - centre) / spread));
    sum += w[j];
  }
  for (let j = 0; j < inSize; j++) w[j] /= sum;
  return w;
}

function referenceResize(px: Uint8Array, h: number, w: number, c: number, oh: number, ow: number, interp: Interp): Float64Array {
  const out = new Float64Array(oh * ow * c);
  for (let y = 0; y < oh; y++) {
    const wy = axisWeights(h, oh, y, interp);
    for (let x = 0; x < ow; x++) {
      const wx = axisWeights(w, ow, x, interp);
      for (let k = 0; k < c; k++) {
        let acc = 0;
        for (let sy = 0; sy < h; sy++) {
          if (wy[sy] === 0) continue;
          for (let sx = 0; sx < w; sx++) acc += wy[sy] * wx[sx] * px[(sy * w + sx) * c + k];
        }
        out[(y * ow + x) * c + k] = acc;
      }
    }
  }
  return out;
}

function randomPixels(n: number, seed: number): Uint8Array {
  const rand = mulberry32(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(rand() * 256));
}

/** Every value within 0.5 + 1e-3 of the float64 result (rounding to nearest, float32 sums). */
function expectRounded(got: Uint8Array, want: Float64Array): void {
  expect(got.length).toBe(want.length);
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  expect(worst).toBeLessThanOrEqual(0.501);
}

describe('resizeImage', () => {
  const cases: [number, number, number, number, number, Interp][] = [
    [160, 200, 3, 96, 96, 'bilinear'], // the bench's photos: shrink 2.08 x 1.67
    [7, 5, 1, 20, 13, 'bilinear'], // enlarge
    [31, 9, 4, 6, 27, 'bilinear'], // shrink one side, enlarge the other
    [1, 1, 3, 4, 5, 'bilinear'],
    [64, 64, 2, 16, 16, 'bilinear'], // exact 4x reduction
    [3, 400, 1, 2, 7, 'bilinear'], // a 57x reduction of the width
    [13, 17, 3, 5, 40, 'nearest'],
    [5, 5, 3, 5, 5, 'bilinear'], // same size: the pixels themselves
  ];
  test.each(cases)('%ix%ix%i -> %ix%i %s matches the float64 reference', (h, w, c, oh, ow, interp) => {
    const px = randomPixels(h * w * c, h * 1000 + w);
    const got = native.resizeImage({ pixels: px, height: h, width: w, channels: c, outHeight: oh, outWidth: ow, interpolation: interp });
    expectRounded(got, referenceResize(px, h, w, c, oh, ow, interp));
  });

  test('same size returns the pixels; a constant image stays constant', () => {
    const px = randomPixels(5 * 6 * 3, 7);
    expect(native.resizeImage({ pixels: px, height: 5, width: 6, channels: 3, outHeight: 5, outWidth: 6, interpolation: 'bilinear' })).toEqual(px);
    const flat = new Uint8Array(40 * 30).fill(201);
    const out = native.resizeImage({ pixels: flat, height: 40, width: 30, channels: 1, outHeight: 9, outWidth: 70, interpolation: 'bilinear' });
    expect(Array.from(new Set(out))).toEqual([201]);
  });

  test('shrinking averages instead of aliasing: a one-pixel checkerboard becomes grey', () => {
    // A 3x reduction: an unwidened filter centred on a pixel would copy it (0 or 255).
    const px = Uint8Array.from({ length: 63 * 63 }, (_, i) => ((Math.floor(i / 63) + i) & 1 ? 255 : 0));
    const out = native.resizeImage({ pixels: px, height: 63, width: 63, channels: 1, outHeight: 21, outWidth: 21, interpolation: 'bilinear' });
    for (const v of out) expect(Math.abs(v - 127.5)).toBeLessThan(40);
  });

  test('an extreme aspect ratio resizes without a huge intermediate', () => {
    const px = randomPixels(200_000, 3); // 200000 x 1 x 1, enlarged sideways to 512 wide
    const out = native.resizeImage({ pixels: px, height: 200_000, width: 1, channels: 1, outHeight: 4, outWidth: 512, interpolation: 'bilinear' });
    expect(out.length).toBe(4 * 512);
    const col = referenceResize(px, 200_000, 1, 1, 4, 1, 'bilinear');
    for (let y = 0; y < 4; y++) for (let x = 0; x < 512; x++) expect(Math.abs(out[y * 512 + x] - col[y])).toBeLessThanOrEqual(0.501);
  });

  test('bad arguments are typed errors naming resizeImage', () => {
    const px = new Uint8Array(12);
    const base = { pixels: px, height: 2, width: 2, channels: 3, outHeight: 4, outWidth: 4, interpolation: 'bilinear' as Interp };
    expect(() => native.resizeImage({ ...base, interpolation: 'bicubic' as Interp })).toThrow(new ck.ValueError("resizeImage: interpolation must be 'bilinear' or 'nearest', got 'bicubic'"));
    expect(() => native.resizeImage({ ...base, height: 3 })).toThrow(new ck.ShapeError('resizeImage: expected 18 pixel values (3x2x3), got 12'));
    expect(() => native.resizeImage({ ...base, channels: 5 })).toThrow(ck.ValueError);
    expect(() => native.resizeImage({ ...base, outWidth: 0 })).toThrow(ck.ValueError);
    expect(() => native.resizeImage({ ...base, outHeight: 1 << 20, outWidth: 1 << 20 })).toThrow(/exceeds 2\^30 values/);
    expect(() => native.resizeImage({ ...base, pixels: new Float32Array(12) as unknown as Uint8Array })).toThrow(/pixels must be a Uint8Array/);
    expect(() => native.resizeImage({ ...base, extra: 1 } as typeof base)).toThrow(/unknown option 'extra'/);
  });
});

describe('decoding uses it', () => {
  let root: string;
  beforeAll(() => {
    root = tmpDir('convkit-resize-');
  });
  afterAll(() => {
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  test('decodeImage of a PNG equals the reference resize of its pixels, in each interpolation', async () => {
    const [h, w] = [37, 53];
    const px = randomPixels(h * w * 3, 11);
    const file = path.join(root, 'noise.png');
    await sharp(Buffer.from(px), { raw: { width: w, height: h, channels: 3 } }).png().toFile(file);
    for (const interpolation of ['bilinear', 'nearest'] as Interp[]) {
      const got = await ck.data.decodeImage(file, { imageSize: [16, 24], channels: 3, interpolation });
      expectRounded(got, referenceResize(px, h, w, 3, 16, 24, interpolation));
    }
    await expect(ck.data.decodeImage(file, { imageSize: [16, 24], channels: 3, interpolation: 'area' as Interp }))
      .rejects.toThrow(new ck.ValueError("decodeImage: interpolation must be one of 'bilinear', 'nearest', got \"area\""));
  });

  test('imageFolder and imageFolderDataset resize with the interpolation they are given, as decodeImage does', async () => {
    const dir = path.join(root, 'folder');
    for (const [c, seed] of [['a', 1], ['b', 2]] as [string, number][]) {
      fs.mkdirSync(path.join(dir, c), { recursive: true });
      const px = randomPixels(23 * 31 * 3, seed);
      await sharp(Buffer.from(px), { raw: { width: 31, height: 23, channels: 3 } }).jpeg({ quality: 90 }).toFile(path.join(dir, c, 'x.jpg'));
      await sharp(Buffer.from(px), { raw: { width: 31, height: 23, channels: 3 } }).png().toFile(path.join(dir, c, 'y.png'));
    }
    const per: Record<string, number[]> = {};
    for (const interpolation of ['bilinear', 'nearest'] as Interp[]) {
      const opts = { imageSize: [9, 13] as [number, number], channels: 3 as const, interpolation };
      const folder = await ck.data.imageFolder(dir, opts);
      const want = await Promise.all(folder.train.files.map(async (f) => Array.from(await ck.data.decodeImage(f, opts), (v) => Math.fround(v / 255))));
      expect(Array.from(folder.train.images.dataSync())).toEqual(want.flat());
      const streamed: number[] = [];
      for await (const e of ck.data.imageFolderDataset(dir, opts).train) streamed.push(...e.xs.dataSync());
      const files = ck.data.imageFolderDataset(dir, opts);
      expect(files.classNames).toEqual(['a', 'b']);
      per[interpolation] = streamed;
      expect(streamed.length).toBe(4 * 9 * 13 * 3);
    }
    expect(per.bilinear).not.toEqual(per.nearest);
  });

  test('an image above the whole-decode bound is reduced by libvips first, then resized alike', async () => {
    // 4200 x 4100 pixels (17.2 M > 4096^2): left half dark, right half light.
    const [h, w] = [4100, 4200];
    const px = new Uint8Array(h * w);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) px[y * w + x] = x < w / 2 ? 40 : 200;
    const file = path.join(root, 'large.png');
    await sharp(Buffer.from(px), { raw: { width: w, height: h, channels: 1 } }).png({ compressionLevel: 1 }).toFile(file);
    const got = await ck.data.decodeImage(file, { imageSize: [8, 8], channels: 1 });
    const want = referenceResize(Uint8Array.from({ length: 8 * 800 }, (_, i) => ((i % 800) < 400 ? 40 : 200)), 8, 800, 1, 8, 8, 'bilinear');
    // Two filters in a row blur the edge a little more than one: the columns beside it differ
    // by a few levels, the others not at all.
    for (let i = 0; i < 64; i++) expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual([3, 4].includes(i % 8) ? 8 : 1);
  });
});
