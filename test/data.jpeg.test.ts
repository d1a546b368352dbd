// The native JPEG path of the image pipeline (libjpeg-turbo's TurboJPEG, loaded at run time):
// for the JPEGs it takes it gives exactly sharp's pixels, and it leaves to sharp every file whose
// pixels sharp would change after decoding (EXIF orientation, ICC profile, CMYK, colour to grey)
// or that libjpeg warns about. Needs libturbojpeg.so.0 (apt-get install libturbojpeg0); CI
// installs it.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import { decodeUnitFloats } from '../lib/data/images';
import type { ImageOptions } from '../lib/data/images';

type Img = ReturnType<typeof sharp>;
import * as ck from '../lib';
import { native } from '../lib/native';
import { mulberry32 } from '../lib/rng';
import { tmpDir } from '../test-support/cli-fixtures';

let root: string;

/** A photo-like RGB image: smooth gradients, an edge and noise, so every DCT band is used. */
function photo(h: number, w: number, seed: number): Buffer {
  const rand = mulberry32(seed);
  const px = Buffer.alloc(h * w * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const edge = x > w * 0.6 && y < h * 0.7 ? 90 : 0;
      px[(y * w + x) * 3] = Math.min(255, (x * 255) / w + edge * 0.5 + rand() * 30);
      px[(y * w + x) * 3 + 1] = Math.min(255, (y * 255) / h + rand() * 30);
      px[(y * w + x) * 3 + 2] = Math.min(255, 128 + 100 * Math.sin((x + y) / 7) + edge * 0.3);
    }
  }
  return px;
}

async function writeJpeg(name: string, h: number, w: number, make: (img: Img) => Img): Promise<string> {
  const file = path.join(root, name);
  await make(sharp(photo(h, w, h * 31 + w), { raw: { width: w, height: h, channels: 3 } })).toFile(file);
  return file;
}

/** The JPEG with an APP1 EXIF segment holding only an orientation tag, after its SOI marker. */
function withOrientation(jpeg: Buffer, orientation: number): Buffer {
  const tiff = Buffer.from([0x4d, 0x4d, 0, 0x2a, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, orientation, 0, 0, 0, 0, 0, 0]);
  const body = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);
  const header = Buffer.from([0xff, 0xe1, (body.length + 2) >> 8, (body.length + 2) & 255]);
  return Buffer.concat([jpeg.subarray(0, 2), header, body, jpeg.subarray(2)]);
}

async function viaSharp(file: string, opts: ImageOptions): Promise<Uint8Array> {
  process.env.CONVKIT_JPEG_DECODER = 'sharp';
  try {
    return await ck.data.decodeImage(file, opts);
  } finally {
    delete process.env.CONVKIT_JPEG_DECODER;
  }
}

async function direct(file: string, channels: 1 | 3, size: [number, number], interpolation: 'bilinear' | 'nearest' = 'bilinear') {
  return native.decodeJpeg({ bytes: fs.readFileSync(file), channels, outHeight: size[0], outWidth: size[1], interpolation });
}

beforeAll(() => {
  root = tmpDir('convkit-jpeg-');
  if (native.jpegLibrary() === null) {
    throw new Error('test/data.jpeg.test.ts needs libjpeg-turbo\'s TurboJPEG library: apt-get install libturbojpeg0');
  }
});

afterAll(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

describe('JPEGs decoded natively', () => {
  const variants: [string, number, number, (img: Img) => Img][] = [
    ['4:2:0 baseline', 160, 200, (i) => i.jpeg({ quality: 85 })],
    ['4:4:4', 37, 53, (i) => i.jpeg({ quality: 95, chromaSubsampling: '4:4:4' })],
    ['progressive', 120, 90, (i) => i.jpeg({ quality: 70, progressive: true })],
    ['optimised Huffman tables, odd size', 33, 17, (i) => i.jpeg({ quality: 60, optimiseCoding: true })],
    ['greyscale', 64, 48, (i) => i.grayscale().toColourspace('b-w').jpeg({ quality: 90 })],
  ];
  test.each(variants)('%s: the same pixels as sharp, in each channel count and interpolation', async (name, h, w, make) => {
    const file = await writeJpeg(`${name.replace(/\W+/g, '-')}.jpg`, h, w, make);
    for (const channels of [3, 1] as const) {
      for (const interpolation of ['bilinear', 'nearest'] as const) {
        const size: [number, number] = [24, 40];
        const fast = await direct(file, channels, size, interpolation);
        const isGreyFile = name === 'greyscale';
        if (channels === 1 && !isGreyFile) {
          expect(fast).toBeNull(); // colour to grey: libvips's luminance, so sharp's
          continue;
        }
        expect(fast).not.toBeNull();
        expect(Buffer.from(fast!).equals(Buffer.from(await viaSharp(file, { imageSize: size, channels, interpolation })))).toBe(true);
        // decodeImage takes the native path and returns the same.
        expect(Buffer.from(await ck.data.decodeImage(file, { imageSize: size, channels, interpolation })).equals(Buffer.from(fast!))).toBe(true);
      }
    }
  });
});

describe('read and scaled natively', () => {
  test('decodeUnitFloats of a JPEG path: native read, decode and scale, bitwise decodeImage / 255', async () => {
    const file = await writeJpeg('floats.jpg', 50, 70, (i) => i.jpeg({ quality: 80 }));
    for (const interpolation of ['bilinear', 'nearest'] as const) {
      const opts = { imageSize: [20, 30] as [number, number], channels: 3 as const, interpolation };
      const px = await ck.data.decodeImage(file, opts);
      const fast = await native.decodeJpeg({ path: file, channels: 3, outHeight: 20, outWidth: 30, interpolation, unitFloats: true });
      expect(Object.prototype.toString.call(fast)).toBe('[object Float32Array]');
      expect(Buffer.from(fast!.buffer).equals(Buffer.from(Float32Array.from(px, (v) => v / 255).buffer))).toBe(true);
      expect(Buffer.from((await decodeUnitFloats(file, opts)).buffer).equals(Buffer.from(fast!.buffer))).toBe(true);
    }
  });

  test('a path that is not a regular file of a plain JPEG answers null at once, never blocks', async () => {
    const fifo = path.join(root, 'pipe.jpg');
    spawnSync('mkfifo', [fifo]);
    const png = path.join(root, 'really.jpg');
    await sharp({ create: { width: 4, height: 4, channels: 3, background: 'red' } }).png().toFile(png);
    for (const p of [fifo, root, path.join(root, 'missing.jpg'), png]) {
      expect(await native.decodeJpeg({ path: p, channels: 3, outHeight: 4, outWidth: 4, interpolation: 'bilinear' })).toBeNull();
    }
    // and the JS path then says why
    await expect(decodeUnitFloats(fifo, { imageSize: [4, 4], channels: 3 })).rejects.toThrow('not a regular file');
    expect((await decodeUnitFloats(png, { imageSize: [4, 4], channels: 3 })).length).toBe(48);
  });
});

describe('JPEGs left to sharp', () => {
  test('an EXIF orientation: sharp rotates it', async () => {
    const wide = fs.readFileSync(await writeJpeg('wide.jpg', 30, 60, (i) => i.jpeg()));
    const file = path.join(root, 'rotated.jpg');
    fs.writeFileSync(file, withOrientation(wide, 6));
    expect((await sharp(file).metadata()).orientation).toBe(6);
    expect(await direct(file, 3, [8, 8])).toBeNull();
    // Orientation 6 turns the 60x30 picture upright as 30 wide x 60 high: the wide-format
    // decode (what ignoring the tag gives) differs.
    const upright = await ck.data.decodeImage(file, { imageSize: [8, 8], channels: 3 });
    const ignored = native.resizeImage({ pixels: await sharp(file).raw().toBuffer(), height: 30, width: 60, channels: 3, outHeight: 8, outWidth: 8, interpolation: 'bilinear' });
    expect(Buffer.from(upright).equals(Buffer.from(ignored))).toBe(false);
    // Orientation 1 is the default: decoded natively.
    const plain = path.join(root, 'orientation-1.jpg');
    fs.writeFileSync(plain, withOrientation(wide, 1));
    expect((await sharp(plain).metadata()).orientation).toBe(1);
    expect(await direct(plain, 3, [8, 8])).not.toBeNull();
  });

  test('an ICC profile: sharp converts through it', async () => {
    const file = await writeJpeg('p3.jpg', 40, 40, (i) => i.withIccProfile('p3').jpeg());
    expect((await sharp(file).metadata()).icc).toBeDefined();
    expect(await direct(file, 3, [8, 8])).toBeNull();
  });

  test('CMYK', async () => {
    const file = await writeJpeg('cmyk.jpg', 40, 40, (i) => i.toColourspace('cmyk').jpeg());
    expect((await sharp(file).metadata()).space).toBe('cmyk');
    expect(await direct(file, 3, [8, 8])).toBeNull();
  });

  test('a truncated file: sharp gives the verdict (a FormatError)', async () => {
    const whole = await writeJpeg('whole.jpg', 80, 80, (i) => i.jpeg());
    const cut = path.join(root, 'cut.jpg');
    const bytes = fs.readFileSync(whole);
    fs.writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    expect(await direct(cut, 3, [8, 8])).toBeNull();
    await expect(ck.data.decodeImage(cut, { imageSize: [8, 8], channels: 3 })).rejects.toThrow(ck.FormatError);
  });

  test('hostile marker sequences never crash: null, and sharp reports them', async () => {
    const good = fs.readFileSync(await writeJpeg('base.jpg', 16, 16, (i) => i.jpeg()));
    const rand = mulberry32(5);
    const cases: Buffer[] = [
      Buffer.from([0xff, 0xd8, 0xff]),
      Buffer.from([0xff, 0xd8, 0xff, 0xe1, 0xff, 0xff, 0x45]), // a segment longer than the file
      Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe1, 0x00, 0x10]), Buffer.from('Exif\0\0MM\0\x2a\xff\xff\xff\xff\0\0')]),
      Buffer.from([0xff, 0xd8, 0xff, 0xe1, 0x00, 0x01]), // length below 2
    ];
    for (let k = 0; k < 40; k++) {
      const b = Buffer.from(good);
      for (let j = 0; j < 6; j++) b[2 + Math.floor(rand() * (b.length - 2))] = Math.floor(rand() * 256);
      cases.push(b);
    }
    for (const bytes of cases) {
      const px = await native.decodeJpeg({ bytes, channels: 3, outHeight: 8, outWidth: 8, interpolation: 'bilinear' });
      if (px !== null) expect(px.length).toBe(8 * 8 * 3);
    }
    expect(await native.decodeJpeg({ bytes: cases[1], channels: 3, outHeight: 8, outWidth: 8, interpolation: 'bilinear' })).toBeNull();
    await expect(ck.data.decodeImage(cases[1], { imageSize: [8, 8], channels: 3 })).rejects.toThrow(ck.FormatError);
  });

  test('bad arguments are typed errors naming decodeJpeg', () => {
    const base = { bytes: new Uint8Array(4), channels: 3 as const, outHeight: 4, outWidth: 4, interpolation: 'bilinear' as const };
    expect(() => native.decodeJpeg({ ...base, channels: 2 as 3 })).toThrow(new ck.ValueError('decodeJpeg: channels must be 1 or 3'));
    expect(() => native.decodeJpeg({ ...base, bytes: 'x' as unknown as Uint8Array })).toThrow(/pass either bytes/);
    expect(() => native.decodeJpeg({ ...base, outWidth: 5000 })).toThrow(ck.ValueError);
    expect(() => native.decodeJpeg({ ...base, path: 'x.jpg' })).toThrow(/pass either bytes \(a Uint8Array\) or path \(a string\)/);
  });
});
