// A VGG-style network (Simonyan & Zisserman 2014) laid out and named as
// keras.applications.VGG16 is, with the depth, width and classifier as options.
import { describeValue, ShapeError, ValueError } from '../errors';
import { Dense, Flatten } from '../layers/core';
import { Conv2D, MaxPooling2D } from '../layers/conv';
import { Functional, input } from '../models/functional';
import { ApplicationArgs, checkCommon, checkOptions, poolFeatures, withWeights } from './common';

export interface VggArgs extends ApplicationArgs {
  /** 3x3 convolutions in each block; each block ends with a 2x2 max pool. */
  blocks?: number[];
  /** The first block's filters; each further block doubles them, up to 512. */
  filters?: number;
  /** Units of the fully connected ReLU layers between flatten and the classifier. */
  fcUnits?: number[];
}

const positiveInts = (v: unknown, allowEmpty: boolean): v is number[] =>
  Array.isArray(v) && (allowEmpty || v.length > 0) && v.length <= 64 && v.every((n) => Number.isInteger(n) && n > 0 && n <= 1 << 16);

/**
 * A VGG-style classifier, named as keras.applications.VGG16: for each block b (1-based) of
 * `blocks`, blocks[b-1] convolutions block{b}_conv{i} (3x3, 'same', ReLU, bias) with
 * min(filters * 2^(b-1), 512) filters, then block{b}_pool (2x2 max pool, stride 2). The top:
 * flatten -> fc1, fc2, ... (Dense, ReLU, `fcUnits`) -> predictions (Dense, softmax). Without
 * the top, `pooling` may add global average or max pooling.
 *
 * Defaults, for 32x32 images: blocks [2, 2, 3], filters 32, fcUnits [256], 10 classes — convs
 * of 32, 32 | 64, 64 | 128, 128, 128 filters, flatten 4*4*128 = 2048 -> fc1 256 -> 10:
 * 961,706 parameters. `vgg({ inputShape: [224, 224, 3], blocks: [2, 2, 3, 3, 3], filters: 64,
 * fcUnits: [4096, 4096], classes: 1000 })` is Keras's VGG16 (138,357,544 parameters).
 * With `weights: 'file://dir'` it returns a Promise of the model with those weights loaded.
 */
export function vgg(args: VggArgs & { weights: string }): Promise<Functional>;
export function vgg(args?: VggArgs & { weights?: null }): Functional;
export function vgg(args?: VggArgs): Functional | Promise<Functional>;
export function vgg(args?: VggArgs): Functional | Promise<Functional> {
  const op = 'applications.vgg';
  const raw = checkOptions(op, args, ['blocks', 'filters', 'fcUnits']);
  const blocks = raw.blocks ?? [2, 2, 3];
  if (!positiveInts(blocks, false)) throw new ValueError(`${op}: blocks must be a non-empty array of positive integers, got ${describeValue(blocks)}`);
  const filters = raw.filters ?? 32;
  if (!Number.isInteger(filters) || (filters as number) < 1) throw new ValueError(`${op}: filters must be a positive integer, got ${describeValue(filters)}`);
  const fcUnits = raw.fcUnits ?? [256];
  if (!positiveInts(fcUnits, true)) throw new ValueError(`${op}: fcUnits must be an array of positive integers, got ${describeValue(fcUnits)}`);
  const opts = checkCommon(op, raw, { inputShape: [32, 32, 3], classes: 10, minSize: 1 });
  const shrink = 2 ** blocks.length;
  if (opts.inputShape[0] < shrink || opts.inputShape[1] < shrink) {
    throw new ShapeError(`${op}: ${blocks.length} blocks halve the input ${blocks.length} times, so it must be at least ${shrink}x${shrink}; got inputShape [${opts.inputShape.join(', ')}]`);
  }

  const image = input({ shape: opts.inputShape });
  let x = image;
  blocks.forEach((convs, b) => {
    const width = Math.min((filters as number) * 2 ** b, 512);
    for (let i = 1; i <= convs; i++) {
      x = new Conv2D({ filters: width, kernelSize: 3, padding: 'same', activation: 'relu', name: `block${b + 1}_conv${i}` }).apply(x);
    }
    x = new MaxPooling2D({ poolSize: 2, strides: 2, name: `block${b + 1}_pool` }).apply(x);
  });
  if (opts.includeTop) {
    x = new Flatten({ name: 'flatten' }).apply(x);
    fcUnits.forEach((units, i) => {
      x = new Dense({ units, activation: 'relu', name: `fc${i + 1}` }).apply(x);
    });
    x = new Dense({ units: opts.classes, activation: opts.classifierActivation, name: 'predictions' }).apply(x);
  } else {
    x = poolFeatures(x, opts.pooling);
  }
  const depth = blocks.reduce((a, b) => a + b, 0) + fcUnits.length + 1;
  return withWeights(new Functional({ inputs: image, outputs: x, name: opts.name ?? `vgg${depth}` }), opts.weights, op);
}
