// Keras 3's random preprocessing layers: RandomFlip, RandomRotation, RandomZoom,
// RandomTranslation, RandomContrast and RandomBrightness. Each lowers to one native kind
// (native/core/layers/augment.cpp): the identity in predict and evaluate; in a training step each
// example draws its own transform from the step's seed mixed with the layer's `seed`, so the same
// seeds repeat a run. Their factors are resolved into [lower, upper] ranges as Keras resolves them.
import { describeValue, ValueError } from '../errors';
import { channelsLast, Layer, LayerArgs, NativeLayerSpec, OptionSpec, Shape } from './layer';

export type FillMode = 'reflect' | 'wrap' | 'constant' | 'nearest';
export type AugmentInterpolation = 'bilinear' | 'nearest';
/** A factor: one number f (the range [-f, f], or as each layer says) or [lower, upper]. */
export type Factor = number | [number, number];

const FILL_MODES: readonly FillMode[] = ['reflect', 'wrap', 'constant', 'nearest'];
const INTERPOLATIONS: readonly AugmentInterpolation[] = ['bilinear', 'nearest'];

interface SeededArgs extends LayerArgs {
  /** The layer's own seed, mixed into each training step's (Keras's seed; default none: 0). */
  seed?: number | null;
  /** 'channels_last' only. */
  dataFormat?: 'channels_last' | 'channelsLast' | null;
}

export interface FillArgs {
  /** How points outside the image are filled (default 'reflect'). */
  fillMode?: FillMode;
  /** How the resampled image is read (default 'bilinear'). */
  interpolation?: AugmentInterpolation;
  /** The value of fillMode 'constant' (default 0). */
  fillValue?: number;
}

const SEEDED: OptionSpec = { seed: 'integer?', dataFormat: 'string?' };
const FILL: OptionSpec = { fillMode: [...FILL_MODES], interpolation: [...INTERPOLATIONS], fillValue: 'number' };

function seedOf(v: unknown, where: string): number | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new ValueError(`${where}: seed must be a non-negative integer or null, got ${describeValue(v)}`);
  }
  return v;
}

function isNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function factorError(where: string, what: string, bounds: string, v: unknown): ValueError {
  return new ValueError(`${where}: ${what} must be a number or a list of two numbers in ${bounds}, got ${describeValue(v)}`);
}

/**
 * Keras's BaseImagePreprocessingLayer._set_factor with bounds [lo, hi]: a pair is sorted
 * (refused when its first value is above hi or its second below lo); a number f in [lo, hi]
 * gives [max(-|f|, lo), |f|].
 */
function boundedFactor(v: unknown, lo: number, hi: number, where: string, what = 'factor'): [number, number] {
  if (Array.isArray(v)) {
    if (v.length !== 2 || !v.every(isNumber) || v[0] > hi || v[1] < lo) throw factorError(where, what, `[${lo}, ${hi}]`, v);
    return v[0] <= v[1] ? [v[0], v[1]] : [v[1], v[0]];
  }
  if (!isNumber(v) || v < lo || v > hi) throw factorError(where, what, `[${lo}, ${hi}]`, v);
  return [Math.max(-Math.abs(v), lo), Math.abs(v)];
}

/**
 * RandomZoom's and RandomTranslation's height and width factors: each value in [-1, 1] (a zoom's
 * above -1), a pair sorted, a number f giving [-|f|, |f|].
 */
function axisFactor(v: unknown, zoom: boolean, where: string, what: string): [number, number] {
  const ok = (x: unknown) => isNumber(x) && x <= 1 && (zoom ? x > -1 : x >= -1);
  const bounds = zoom ? '(-1, 1]' : '[-1, 1]';
  if (Array.isArray(v)) {
    if (v.length !== 2 || !v.every(ok)) throw factorError(where, what, bounds, v);
    return v[0] <= v[1] ? [v[0], v[1]] : [v[1], v[0]];
  }
  if (!ok(v)) throw factorError(where, what, bounds, v);
  return [-Math.abs(v as number), Math.abs(v as number)];
}

function fillOptions(args: FillArgs): Required<FillArgs> {
  return { fillMode: args.fillMode ?? 'reflect', interpolation: args.interpolation ?? 'bilinear', fillValue: args.fillValue ?? 0 };
}

function valueRangeOf(v: unknown, where: string): [number, number] {
  if (!Array.isArray(v) || v.length !== 2 || !v.every(isNumber) || v[0] === v[1]) {
    throw new ValueError(`${where}: valueRange must be [low, high], two different finite numbers, got ${describeValue(v)}`);
  }
  return v[0] < v[1] ? [v[0], v[1]] : [v[1], v[0]];
}

/** What the random layers share: the seed, the image check, identity shapes. */
abstract class RandomImageLayer extends Layer {
  readonly seed: number | null;

  constructor(args: SeededArgs, prefix: string, options: OptionSpec) {
    super(args, prefix, { ...SEEDED, ...options });
    channelsLast(args.dataFormat, this.name);
    this.seed = seedOf(args.seed, this.name);
  }

  computeOutputShape(inputShape: Shape): Shape {
    return inputShape;
  }

  protected nativeSeed(): { seed: number } {
    return { seed: this.seed ?? 0 };
  }

  getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), seed: this.seed, dataFormat: 'channels_last' };
  }
}

export type FlipMode = 'horizontal' | 'vertical' | 'horizontal_and_vertical';

export interface RandomFlipArgs extends SeededArgs {
  /** Which axes flip (default both: with probability 1/2 an image is flipped along both, as Keras). */
  mode?: FlipMode;
}

/** Keras RandomFlip: each image flipped (left-right, up-down, or both at once) with probability 1/2. */
export class RandomFlip extends RandomImageLayer {
  readonly className = 'RandomFlip';
  readonly mode: FlipMode;

  constructor(args: RandomFlipArgs = {}) {
    super(args, 'random_flip', { mode: ['horizontal', 'vertical', 'horizontal_and_vertical'] });
    this.mode = args.mode ?? 'horizontal_and_vertical';
  }

  lower(): NativeLayerSpec[] {
    return [{
      kind: 'randomFlip', name: this.name, horizontal: this.mode !== 'vertical', vertical: this.mode !== 'horizontal', ...this.nativeSeed(),
    }];
  }

  getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), mode: this.mode };
  }
}

export interface RandomRotationArgs extends SeededArgs, FillArgs {
  /** Fractions of a full turn: f gives angles in [-f, f] * 2 pi, [lower, upper] that range. */
  factor: Factor;
}

/** Keras RandomRotation: each image turned about its centre by an angle drawn from the factor's range. */
export class RandomRotation extends RandomImageLayer {
  readonly className = 'RandomRotation';
  readonly factor: [number, number];
  readonly fill: Required<FillArgs>;

  constructor(args: RandomRotationArgs) {
    super(args, 'random_rotation', { factor: 'numberOrList', ...FILL });
    this.factor = boundedFactor(args?.factor, -1, 1, this.name);
    this.fill = fillOptions(args);
  }

  lower(): NativeLayerSpec[] {
    return [{ kind: 'randomRotation', name: this.name, lower: this.factor[0], upper: this.factor[1], ...this.fill, ...this.nativeSeed() }];
  }

  getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), factor: [...this.factor], ...this.fill };
  }
}

export interface RandomZoomArgs extends SeededArgs, FillArgs {
  /** Heights scaled by 1 + a value of this range (f: [-f, f]; positive zooms out). */
  heightFactor: Factor;
  /** Widths likewise; null (default): scaled by the height's factor, keeping the aspect. */
  widthFactor?: Factor | null;
}

/** Keras RandomZoom: each image zoomed about its centre by factors drawn per axis. */
export class RandomZoom extends RandomImageLayer {
  readonly className = 'RandomZoom';
  readonly heightFactor: Factor;
  readonly widthFactor: Factor | null;
  readonly fill: Required<FillArgs>;
  private readonly height: [number, number];
  private readonly width: [number, number] | null;

  constructor(args: RandomZoomArgs) {
    super(args, 'random_zoom', { heightFactor: 'numberOrList', widthFactor: 'numberOrList?', ...FILL });
    this.height = axisFactor(args?.heightFactor, true, this.name, 'heightFactor');
    this.width = args.widthFactor === undefined || args.widthFactor === null ? null : axisFactor(args.widthFactor, true, this.name, 'widthFactor');
    this.heightFactor = args.heightFactor;
    this.widthFactor = args.widthFactor ?? null;
    this.fill = fillOptions(args);
  }

  lower(): NativeLayerSpec[] {
    const width = this.width ? { widthLower: this.width[0], widthUpper: this.width[1] } : {};
    return [{
      kind: 'randomZoom', name: this.name, heightLower: this.height[0], heightUpper: this.height[1], ...width, ...this.fill, ...this.nativeSeed(),
    }];
  }

  getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), heightFactor: this.heightFactor, widthFactor: this.widthFactor, ...this.fill };
  }
}

export interface RandomTranslationArgs extends SeededArgs, FillArgs {
  /** Vertical shifts, in fractions of the height (f: [-f, f]; positive moves the image down). */
  heightFactor: Factor;
  /** Horizontal shifts, in fractions of the width (positive moves it right). */
  widthFactor: Factor;
}

/** Keras RandomTranslation: each image shifted by a drawn fraction of its height and width. */
export class RandomTranslation extends RandomImageLayer {
  readonly className = 'RandomTranslation';
  readonly heightFactor: Factor;
  readonly widthFactor: Factor;
  readonly fill: Required<FillArgs>;
  private readonly height: [number, number];
  private readonly width: [number, number];

  constructor(args: RandomTranslationArgs) {
    super(args, 'random_translation', { heightFactor: 'numberOrList', widthFactor: 'numberOrList', ...FILL });
    this.height = axisFactor(args?.heightFactor, false, this.name, 'heightFactor');
    this.width = axisFactor(args.widthFactor, false, this.name, 'widthFactor');
    this.heightFactor = args.heightFactor;
    this.widthFactor = args.widthFactor;
    this.fill = fillOptions(args);
  }

  lower(): NativeLayerSpec[] {
    return [{
      kind: 'randomTranslation', name: this.name, heightLower: this.height[0], heightUpper: this.height[1],
      widthLower: this.width[0], widthUpper: this.width[1], ...this.fill, ...this.nativeSeed(),
    }];
  }

  getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), heightFactor: this.heightFactor, widthFactor: this.widthFactor, ...this.fill };
  }
}

export interface RandomContrastArgs extends SeededArgs {
  /**
   * Contrast factors drawn from [1 - lower, 1 + upper]. As Keras 3 resolves it, a number f in
   * [0, 1] gives lower 0, upper f (factors in [1, 1 + f]); a pair [lower, upper] is taken as it is.
   */
  factor: Factor;
  /** The range the outputs are clipped to (default [0, 255]). */
  valueRange?: [number, number];
}

/** Keras RandomContrast: per image and channel, (x - mean) * factor + mean, clipped to valueRange. */
export class RandomContrast extends RandomImageLayer {
  readonly className = 'RandomContrast';
  readonly factor: [number, number];
  readonly valueRange: [number, number];

  constructor(args: RandomContrastArgs) {
    super(args, 'random_contrast', { factor: 'numberOrList', valueRange: 'numberOrList' });
    this.factor = boundedFactor(args?.factor, 0, 1, this.name);
    this.valueRange = valueRangeOf(args.valueRange ?? [0, 255], this.name);
  }

  lower(): NativeLayerSpec[] {
    return [{
      kind: 'randomContrast', name: this.name, lower: this.factor[0], upper: this.factor[1],
      valueLow: this.valueRange[0], valueHigh: this.valueRange[1], ...this.nativeSeed(),
    }];
  }

  getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), factor: [...this.factor], valueRange: [...this.valueRange] };
  }
}

export interface RandomBrightnessArgs extends SeededArgs {
  /** Offsets in fractions of the value range: f gives [-f, f], [lower, upper] that range (within [-1, 1]). */
  factor: Factor;
  /** The inputs' range: offsets scale by its width, outputs are clipped to it (default [0, 255]). */
  valueRange?: [number, number];
}

/** Keras RandomBrightness: each image offset by a drawn fraction of the value range, clipped to it. */
export class RandomBrightness extends RandomImageLayer {
  readonly className = 'RandomBrightness';
  readonly factor: [number, number];
  readonly valueRange: [number, number];

  constructor(args: RandomBrightnessArgs) {
    super(args, 'random_brightness', { factor: 'numberOrList', valueRange: 'numberOrList' });
    this.factor = boundedFactor(args?.factor, -1, 1, this.name);
    this.valueRange = valueRangeOf(args.valueRange ?? [0, 255], this.name);
  }

  lower(): NativeLayerSpec[] {
    return [{
      kind: 'randomBrightness', name: this.name, lower: this.factor[0], upper: this.factor[1],
      valueLow: this.valueRange[0], valueHigh: this.valueRange[1], ...this.nativeSeed(),
    }];
  }

  getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), factor: [...this.factor], valueRange: [...this.valueRange] };
  }
}
