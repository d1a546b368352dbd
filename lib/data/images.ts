// Image files to pixels: sharp (libvips, on libuv's thread pool) decodes, auto-orients, flattens
// alpha onto black and converts to the wanted channel count; convkit's native resize stretches
// the result to the wanted size (as Keras's image_dataset_from_directory does), so folders of
// mixed sizes, greyscale and colour images give one tensor. Resizing natively costs a fraction
// of a libvips resize pipeline per small image and gives the same pixels on every platform.
import * as fs from 'fs';
import { native } from '../native';
import { sharp } from '../sharp';
import { describeValue, FormatError, ValueError } from '../errors';
import { Tensor, tensor } from '../tensor';

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp'];

export interface ImageOptions {
  /** [height, width] of the decoded images. */
  imageSize: [number, number];
  /** 1 (greyscale) or 3 (RGB). */
  channels: 1 | 3;
  /**
   * How images are resized to imageSize: 'bilinear' (default; antialiased when shrinking, as
   * torchvision's Resize) or 'nearest'.
   */
  interpolation?: Interpolation;
}

export type Interpolation = 'bilinear' | 'nearest';
const INTERPOLATIONS: readonly Interpolation[] = ['bilinear', 'nearest'];

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
  const interpolation = opts.interpolation ?? defaults.interpolation ?? 'bilinear';
  if (!INTERPOLATIONS.includes(interpolation)) {
    throw new ValueError(`${where}: interpolation must be one of ${INTERPOLATIONS.map((i) => `'${i}'`).join(', ')}, got ${describeValue(interpolation)}`);
  }
  return { imageSize: [size[0], size[1]], channels, interpolation };
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
function sniffFormat(bytes: Buffer): 'png' | 'jpeg' | 'webp' | null {
  const head = bytes.subarray(0, 12);
  if (head.length >= 8 && head.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'png';
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'jpeg';
  if (head.length >= 12 && head.toString('latin1', 0, 4) === 'RIFF' && head.toString('latin1', 8, 12) === 'WEBP') return 'webp';
  return null;
}

/**
 * Images up to this many pixels are decoded whole by sharp and resized by convkit. Larger ones
 * (rare in datasets) are first reduced by libvips as they stream in, JPEGs in the DCT domain, to
 * at most 4x the wanted size, so a hostile or huge file never becomes one huge decoded buffer.
 */
const WHOLE_DECODE_PIXELS = 4096 * 4096;
/** Largest image file read (bytes). */
const MAX_FILE_BYTES = 512 * 1024 * 1024;

type Decoded = { data: Buffer; info: { width: number; height: number; channels: number } };

/** Auto-orients, drops alpha onto black and converts to greyscale or sRGB, as every path does. */
function normalised(img: ReturnType<typeof sharp>, channels: 1 | 3): ReturnType<typeof sharp> {
  const flat = img.rotate().flatten({ background: { r: 0, g: 0, b: 0 } });
  return channels === 1 ? flat.grayscale() : flat.toColourspace('srgb');
}

async function decodeLarge(bytes: Buffer, [h, w]: [number, number], channels: 1 | 3): Promise<Decoded> {
  const source = sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error' });
  // A header may declare a side of millions of pixels within the pixel bound (8388608 x 1): the
  // reduction would then shrink by a factor libvips refuses, with warnings on stderr. Refuse it first.
  const { width = 0, height = 0, orientation = 1 } = await source.metadata();
  if (!(width >= 1 && height >= 1 && width <= MAX_SIDE && height <= MAX_SIDE)) {
    throw new Error(`the image declares ${width}x${height} pixels (at most ${MAX_SIDE} a side)`);
  }
  const [srcH, srcW] = orientation >= 5 ? [width, height] : [height, width];
  return normalised(source, channels)
    .resize(Math.min(srcW, 4 * w), Math.min(srcH, 4 * h), { fit: 'fill', kernel: 'linear' })
    .raw().toBuffer({ resolveWithObject: true });
}

const nativeJpeg = () => process.env.CONVKIT_JPEG_DECODER !== 'sharp';

/**
 * decodePixels as float32 values v / 255 (what imageFolder and imageFolderDataset feed models):
 * for a plain JPEG file, read, decoded, resized and scaled on libuv's pool in one native task,
 * leaving the JS thread only the call.
 */
export async function decodeUnitFloats(input: string | Buffer, opts: ImageOptions): Promise<Float32Array> {
  if (typeof input === 'string' && /\.jpe?g$/i.test(input) && nativeJpeg()) {
    const [h, w] = opts.imageSize;
    const px = await native.decodeJpeg({
      path: input, channels: opts.channels, outHeight: h, outWidth: w, interpolation: opts.interpolation ?? 'bilinear', unitFloats: true,
    });
    if (px) return px as Float32Array;
  }
  return toFloat(await decodePixels(input, opts));
}

/** decodeImage without its checks, for callers that checked the options and report errors themselves. */
export async function decodePixels(input: string | Buffer, opts: ImageOptions): Promise<Uint8Array> {
  let bytes: Buffer;
  if (typeof input === 'string') {
    // A FIFO or a device named like an image would block the reader or never end: files only.
    const stat = fs.statSync(input);
    if (!stat.isFile()) throw new Error('not a regular file');
    if (stat.size > MAX_FILE_BYTES) throw new Error(`the file has ${stat.size} bytes (at most ${MAX_FILE_BYTES} are read)`);
    bytes = await fs.promises.readFile(input);
  } else {
    bytes = input;
  }
  const format = sniffFormat(bytes);
  if (!format) throw new Error('unsupported image format (PNG, JPEG and WebP are read)');
  const [h, w] = opts.imageSize;
  const c = opts.channels;
  const interpolation = opts.interpolation ?? 'bilinear';
  if (format === 'jpeg' && nativeJpeg()) {
    // Plain JPEGs decode natively with libjpeg-turbo when it is installed; null: sharp's file.
    const px = await native.decodeJpeg({ bytes, channels: c, outHeight: h, outWidth: w, interpolation });
    if (px) return px as Uint8Array;
  }
  let decoded: Decoded;
  try {
    decoded = await normalised(sharp(bytes, { limitInputPixels: WHOLE_DECODE_PIXELS, failOn: 'error' }), c)
      .raw().toBuffer({ resolveWithObject: true });
  } catch (e) {
    if (!/exceeds pixel limit/i.test(imageErrorMessage(e))) throw e;
    decoded = await decodeLarge(bytes, [h, w], c);
  }
  const { data, info } = decoded;
  let pixels = new Uint8Array(data.buffer, data.byteOffset, data.length);
  if (info.channels !== c) {
    // libvips may keep one band for greyscale sources or add an alpha band: take what we need.
    const k = info.channels;
    const n = info.width * info.height;
    const picked = new Uint8Array(n * c);
    for (let p = 0; p < n; p++) {
      for (let j = 0; j < c; j++) picked[p * c + j] = data[p * k + Math.min(j, k === 2 || k === 4 ? k - 2 : k - 1)];
    }
    pixels = picked;
  }
  return native.resizeImage({
    pixels, height: info.height, width: info.width, channels: c,
    outHeight: h, outWidth: w, interpolation,
  });
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
