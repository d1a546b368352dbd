// Image files to pixels with sharp (libvips, on libuv's thread pool: the JS thread only waits).
// Every image is decoded, auto-oriented, flattened onto black if it has alpha, converted to the
// wanted channel count and resized (stretched, as Keras's image_dataset_from_directory does) to
// the wanted size, so folders of mixed sizes, greyscale and colour images give one tensor.
import * as fs from 'fs';
import { sharp } from '../sharp';
import { describeValue, FormatError, ValueError } from '../errors';
import { Tensor, tensor } from '../tensor';

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp'];

export interface ImageOptions {
  /** [height, width] of the decoded images. */
  imageSize: [number, number];
  /** 1 (greyscale) or 3 (RGB). */
  channels: 1 | 3;
}

/** Largest decoded image accepted (pixels): a bound against decompression bombs. */
const MAX_INPUT_PIXELS = 100_000_000;
/** Longest side accepted (JPEG's own limit). */
const MAX_SIDE = 65535;

export function checkImageOptions(opts: Partial<ImageOptions>, where: string, defaults: ImageOptions): ImageOptions {
  const size = opts.imageSize ?? defaults.imageSize;
  if (!Array.isArray(size) || size.length !== 2 || !size.every((d) => Number.isInteger(d) && d >= 1 && d <= 4096)) {
    throw new ValueError(`${where}: imageSize must be [height, width] with integers in [1, 4096], got ${describeValue(size)}`);
  }
  const channels = opts.channels ?? defaults.channels;
  if (channels !== 1 && channels !== 3) throw new ValueError(`${where}: channels must be 1 or 3, got ${describeValue(channels)}`);
  return { imageSize: [size[0], size[1]], channels };
}

/**
 * Decodes one image file (or encoded bytes) to uint8 pixels, [height, width, channels]
 * row-major. Throws FormatError when the input is not an image sharp can decode, ValueError for
 * bad options.
 */
export async function decodeImage(input: string | Buffer, opts: ImageOptions): Promise<Uint8Array> {
  const o = checkImageOptions(opts ?? {}, 'decodeImage', { imageSize: opts?.imageSize, channels: 3 } as ImageOptions);
  if (typeof input !== 'string' && !Buffer.isBuffer(input)) {
    throw new ValueError(`decodeImage: input must be a file path or a Buffer of encoded image bytes, got ${describeValue(input)}`);
  }
  try {
    return await decodePixels(input, o);
  } catch (e) {
    throw new FormatError(`decodeImage: cannot read ${typeof input === 'string' ? input : 'the buffer'}: ${imageErrorMessage(e)}`);
  }
}

/**
 * The encoded format from its first bytes: PNG, JPEG and WebP are decoded; anything else (SVG,
 * GIF, TIFF, ...) is refused before it reaches a decoder, which keeps hostile files of formats
 * convkit does not promise away from libvips's larger attack surface.
 */
function sniffFormat(input: string | Buffer): 'png' | 'jpeg' | 'webp' | null {
  let head: Buffer;
  if (typeof input === 'string') {
    head = Buffer.alloc(12);
    const fd = fs.openSync(input, 'r');
    try {
      head = head.subarray(0, fs.readSync(fd, head, 0, 12, 0));
    } finally {
      fs.closeSync(fd);
    }
  } else {
    head = input.subarray(0, 12);
  }
  if (head.length >= 8 && head.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'png';
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'jpeg';
  if (head.length >= 12 && head.toString('latin1', 0, 4) === 'RIFF' && head.toString('latin1', 8, 12) === 'WEBP') return 'webp';
  return null;
}

/** decodeImage without its checks, for callers that checked the options and report errors themselves. */
export async function decodePixels(input: string | Buffer, opts: ImageOptions): Promise<Uint8Array> {
  // A FIFO or a device named like an image would block the decoder or never end: files only.
  if (typeof input === 'string' && !fs.statSync(input).isFile()) throw new Error('not a regular file');
  if (!sniffFormat(input)) throw new Error('unsupported image format (PNG, JPEG and WebP are read)');
  const [h, w] = opts.imageSize;
  const c = opts.channels;
  const source = sharp(input, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error' });
  // A header may declare a side of millions of pixels within the pixel bound (8388608 x 1): the
  // resize would then shrink by a factor libvips refuses, with warnings on stderr. Refuse it first.
  const { width = 0, height = 0 } = await source.metadata();
  if (!(width >= 1 && height >= 1 && width <= MAX_SIDE && height <= MAX_SIDE)) {
    throw new Error(`the image declares ${width}x${height} pixels (at most ${MAX_SIDE} a side)`);
  }
  let img = source
    .rotate()
    .flatten({ background: { r: 0, g: 0, b: 0 } })
    .resize(w, h, { fit: 'fill' });
  img = c === 1 ? img.grayscale() : img.toColourspace('srgb');
  const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
  if (info.width !== w || info.height !== h) {
    throw new FormatError(`decoded to ${info.width}x${info.height} instead of ${w}x${h}`);
  }
  if (info.channels === c) return new Uint8Array(data.buffer, data.byteOffset, data.length);
  // libvips may keep one band for greyscale sources or add an alpha band: take what we need.
  const out = new Uint8Array(h * w * c);
  const k = info.channels;
  for (let p = 0; p < h * w; p++) {
    for (let j = 0; j < c; j++) out[p * c + j] = data[p * k + Math.min(j, k === 2 || k === 4 ? k - 2 : k - 1)];
  }
  return out;
}

/** One image as a [1, height, width, channels] tensor scaled to 0..1, ready for model.predict. */
export async function loadImage(file: string, opts: Partial<ImageOptions> & { imageSize: [number, number] }): Promise<Tensor> {
  const o = checkImageOptions(opts ?? {}, 'loadImage', { imageSize: opts?.imageSize, channels: 3 });
  if (typeof file !== 'string') throw new ValueError(`loadImage: file must be a path, got ${describeValue(file)}`);
  let px: Uint8Array;
  try {
    px = await decodePixels(file, o);
  } catch (e) {
    throw new FormatError(`loadImage: cannot read ${file}: ${imageErrorMessage(e)}`);
  }
  return tensor(toFloat(px), [1, o.imageSize[0], o.imageSize[1], o.channels]);
}

/** A short reason from sharp's (sometimes multi-line) error messages. */
export function imageErrorMessage(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  if (/ENOENT|no such file/i.test(msg)) return 'no such file';
  if (/unsupported image format/i.test(msg)) return 'unsupported image format';
  return msg.split('\n')[0].replace(/^Input (file|buffer) /, '').slice(0, 200);
}

export function toFloat(px: Uint8Array, out = new Float32Array(px.length), offset = 0): Float32Array {
  for (let i = 0; i < px.length; i++) out[offset + i] = px[i] / 255;
  return out;
}

/** Runs fn over items with at most `limit` promises in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
