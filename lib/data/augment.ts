// Seeded image augmentation: random horizontal flip, translation (a random crop of the padded
// image), zoom and brightness, as Keras's RandomFlip / RandomTranslation / RandomZoom /
// RandomBrightness layers do them (bilinear sampling, 'reflect' fill). It runs on a worker
// thread, so the JS thread stays free and the next epoch's images are made while the current
// epoch trains. (libvips, through sharp, costs about 2.5 ms per small image for such a pipeline,
// 20 times the work itself: too slow to redo 60,000 images every epoch.)
import { Worker } from 'worker_threads';
import { Callback } from '../callbacks';
import { describeValue, ValueError } from '../errors';
import { mulberry32 } from '../rng';
import { checkTensor, Tensor, tensor } from '../tensor';

export interface AugmentOptions {
  /** Mirror left-right with probability 1/2. */
  flip?: boolean;
  /** Translate by up to this fraction of the width and height (a random crop of the padded image), e.g. 0.1. */
  crop?: number;
  /** Scale by a factor in [1 - zoom, 1 + zoom] about the centre, e.g. 0.1. */
  zoom?: number;
  /** Add a brightness offset in [-brightness, brightness] (of the 0..1 range), e.g. 0.2. */
  brightness?: number;
}

/** The amounts the names stand for in `--augment flip,crop,zoom,brightness`. */
export const AUGMENT_DEFAULTS: Required<AugmentOptions> = { flip: true, crop: 0.1, zoom: 0.1, brightness: 0.2 };

function fraction(v: unknown, name: string, max: number): number {
  if (v === undefined || v === false) return 0;
  if (typeof v !== 'number' || !(v >= 0 && v <= max)) throw new ValueError(`augment: ${name} must be a number in [0, ${max}], got ${describeValue(v)}`);
  return v;
}

export function checkAugment(opts: AugmentOptions): Required<AugmentOptions> {
  if (!opts || typeof opts !== 'object') throw new ValueError('augment: expected { flip, crop, zoom, brightness }');
  for (const k of Object.keys(opts)) {
    if (!(k in AUGMENT_DEFAULTS)) throw new ValueError(`augment: unknown option '${k}' (known: flip, crop, zoom, brightness)`);
  }
  return {
    flip: Boolean(opts.flip),
    crop: fraction(opts.crop, 'crop', 0.5),
    zoom: fraction(opts.zoom, 'zoom', 0.5),
    brightness: fraction(opts.brightness, 'brightness', 1),
  };
}

/**
 * The augmentation itself: images [n, h, w, c] (NHWC floats) -> augmented copies, drawing from
 * `rand` (the worker's mulberry32, the same numbers on every platform). Self-contained (no
 * imports, no closures) because its source is what the worker thread runs.
 */
export function augmentKernel(src: Float32Array, shape: number[], o: Required<AugmentOptions>, rand: () => number): Float32Array {
  const [n, h, w, c] = shape;
  const reflect = (v: number, size: number) => {
    if (size === 1) return 0;
    const period = 2 * (size - 1);
    let m = Math.abs(v) % period;
    if (m > size - 1) m = period - m;
    return m;
  };
  const out = new Float32Array(src.length);
  const size = h * w * c;
  const cx = (w - 1) / 2;
  const cy = (h - 1) / 2;
  for (let i = 0; i < n; i++) {
    // Drawn in a fixed order for every image, whatever is enabled, so that one option's
    // numbers do not depend on the others.
    const flip = rand() < 0.5 && o.flip;
    const scale = 1 + o.zoom * (2 * rand() - 1);
    const dx = o.crop * w * (2 * rand() - 1);
    const dy = o.crop * h * (2 * rand() - 1);
    const delta = o.brightness * (2 * rand() - 1);
    const base = i * size;
    const identity = scale === 1 && dx === 0 && dy === 0;
    for (let y = 0; y < h; y++) {
      const sy = identity ? y : (y - cy - dy) / scale + cy;
      const y0 = Math.floor(sy);
      const fy = sy - y0;
      const ya = reflect(y0, h);
      const yb = reflect(y0 + 1, h);
      for (let x = 0; x < w; x++) {
        const xo = flip ? w - 1 - x : x;
        const sx = identity ? xo : (xo - cx - dx) / scale + cx;
        const x0 = Math.floor(sx);
        const fx = sx - x0;
        const xa = reflect(x0, w);
        const xb = reflect(x0 + 1, w);
        const dst = base + (y * w + x) * c;
        for (let ch = 0; ch < c; ch++) {
          const p00 = src[base + (ya * w + xa) * c + ch];
          const p01 = src[base + (ya * w + xb) * c + ch];
          const p10 = src[base + (yb * w + xa) * c + ch];
          const p11 = src[base + (yb * w + xb) * c + ch];
          let v = (p00 * (1 - fx) + p01 * fx) * (1 - fy) + (p10 * (1 - fx) + p11 * fx) * fy;
          if (delta !== 0) v = Math.min(1, Math.max(0, v + delta));
          out[dst + ch] = v;
        }
      }
    }
  }
  return out;
}

const WORKER_SOURCE = `
const { parentPort } = require('worker_threads');
const mulberry32 = ${mulberry32.toString()};
const augmentKernel = ${augmentKernel.toString()};
let clean = null;
parentPort.on('message', (m) => {
  try {
    if (m.clean) clean = m.clean;
    const out = augmentKernel(m.clean || clean, m.shape, m.options, mulberry32(m.seed));
    parentPort.postMessage({ id: m.id, out }, [out.buffer]);
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: String(e && e.stack || e) });
  }
});
`;

/** A worker thread that augments a fixed set of images with a new seed on each request. */
export class Augmenter {
  private readonly worker: Worker;
  private next = 0;
  private readonly pending = new Map<number, { resolve: (a: Float32Array) => void; reject: (e: Error) => void }>();
  private sentClean = false;
  readonly options: Required<AugmentOptions>;

  constructor(private readonly clean: Float32Array, private readonly shape: number[], options: AugmentOptions) {
    this.options = checkAugment(options);
    this.worker = new Worker(WORKER_SOURCE, { eval: true });
    this.worker.unref();
    this.worker.on('message', (m: { id: number; out?: Float32Array; error?: string }) => {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (!p) return;
      if (m.error !== undefined) p.reject(new Error(`augment worker: ${m.error}`));
      else p.resolve(m.out!);
    });
    this.worker.on('error', (e) => {
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    });
  }

  run(seed: number): Promise<Float32Array> {
    const id = this.next++;
    const p = new Promise<Float32Array>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.worker.postMessage({ id, seed: seed >>> 0, shape: this.shape, options: this.options, clean: this.sentClean ? undefined : this.clean });
    this.sentClean = true;
    return p;
  }

  close(): void {
    void this.worker.terminate();
  }
}

function checkImages(images: unknown, where: string): Tensor {
  const x = checkTensor(images, where, 'images');
  if (x.rank !== 4) throw new ValueError(`${where}: images must be [N, height, width, channels], got [${x.shape.join(',')}]`);
  return x;
}

/** Augmented copies of images [N, h, w, c] (computed on a worker thread). */
export async function augment(images: Tensor, options: AugmentOptions, args: { seed?: number } = {}): Promise<Tensor> {
  const x = checkImages(images, 'augment');
  const a = new Augmenter((await x.data()).slice(), [...x.shape], options);
  try {
    return tensor(await a.run(args.seed ?? Math.floor(Math.random() * 2 ** 32)), [...x.shape]);
  } finally {
    a.close();
  }
}

/**
 * A fit callback that re-augments the training images before every epoch: it keeps a clean copy
 * of `images` and rewrites that tensor in place (fit reads it by reference), making the next
 * epoch's images on a worker thread while the current epoch trains; the tensor is restored when
 * training ends. Pass validation data separately (validationData): a validationSplit would take
 * rows of the augmented tensor.
 */
export class AugmentImages extends Callback {
  private readonly clean: Float32Array;
  private readonly augmenter: Augmenter;
  private next: Promise<Float32Array> | null = null;
  private readonly seed: number;
  /** Seconds fit spent waiting for augmented images (0 when the worker keeps up with training). */
  waited = 0;

  constructor(private readonly images: Tensor, options: AugmentOptions, args: { seed?: number } = {}) {
    super();
    const x = checkImages(images, 'augmentImages');
    this.clean = x.dataSync().slice();
    this.augmenter = new Augmenter(this.clean, [...x.shape], options);
    this.seed = args.seed ?? Math.floor(Math.random() * 2 ** 32);
  }

  private start(epoch: number): Promise<Float32Array> {
    const p = this.augmenter.run((this.seed + Math.imul(epoch + 1, 0x9e3779b1)) >>> 0);
    p.catch(() => undefined);
    return p;
  }

  async onEpochBegin(epoch: number) {
    const t0 = Date.now();
    const px = await (this.next ?? this.start(epoch));
    this.waited += (Date.now() - t0) / 1000;
    (await this.images.data()).set(px);
    const epochs = Number(this.params.epochs ?? Infinity);
    this.next = epoch + 1 < epochs ? this.start(epoch + 1) : null;
  }

  async onTrainEnd() {
    (await this.images.data()).set(this.clean);
    this.next = null;
    this.augmenter.close();
  }
}
