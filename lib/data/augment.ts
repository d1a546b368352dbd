// Seeded image augmentation: random horizontal flip, translation (a random crop of the padded
// image), zoom and brightness, as Keras's RandomFlip / RandomTranslation / RandomZoom /
// RandomBrightness layers do them (bilinear sampling, 'reflect' fill). The kernel is native
// (native/core/image_augment.cpp) and runs on libuv's thread pool, so the JS thread stays free
// and the next epoch's images are made while the current epoch trains.
import { Callback } from '../callbacks';
import { describeValue, ValueError } from '../errors';
import { native } from '../native';
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

/** Augments a fixed set of images natively (on libuv's thread pool), with a new seed each time. */
export class Augmenter {
  readonly options: Required<AugmentOptions>;

  constructor(private readonly clean: Float32Array, private readonly shape: number[], options: AugmentOptions) {
    this.options = checkAugment(options);
  }

  run(seed: number): Promise<Float32Array> {
    return native.augmentImages({ images: this.clean, shape: this.shape, ...this.options, seed: seed >>> 0 });
  }
}

function checkImages(images: unknown, where: string): Tensor {
  const x = checkTensor(images, where, 'images');
  if (x.rank !== 4) throw new ValueError(`${where}: images must be [N, height, width, channels], got [${x.shape.join(',')}]`);
  return x;
}

/** Augmented copies of images [N, h, w, c] (computed natively, off the JS thread). */
export async function augment(images: Tensor, options: AugmentOptions, args: { seed?: number } = {}): Promise<Tensor> {
  const x = checkImages(images, 'augment');
  const a = new Augmenter((await x.data()).slice(), [...x.shape], options);
  return tensor(await a.run(args.seed ?? Math.floor(Math.random() * 2 ** 32)), [...x.shape]);
}

/**
 * A fit callback that re-augments the training images before every epoch: it keeps a clean copy
 * of `images` and rewrites that tensor in place (fit reads it by reference), making the next
 * epoch's images off the JS thread while the current epoch trains; the tensor is restored when
 * training ends. Pass validation data separately (validationData): a validationSplit would take
 * rows of the augmented tensor.
 */
export class AugmentImages extends Callback {
  private readonly clean: Float32Array;
  private readonly augmenter: Augmenter;
  private next: Promise<Float32Array> | null = null;
  private readonly seed: number;
  /** Seconds fit spent waiting for augmented images (0 when augmenting keeps up with training). */
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
  }
}
