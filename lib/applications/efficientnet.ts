// keras.applications.EfficientNetB0 (keras/src/applications/efficientnet.py): the same layers,
// names, order and weight shapes, built from Keras's block table and scaling rules.
import { ValueError } from '../errors';
import { varianceScaling } from '../initializers';
import { Activation, Dense, Dropout, Reshape } from '../layers/core';
import { BatchNormalization, Conv2D, GlobalAveragePooling2D, GlobalMaxPooling2D } from '../layers/conv';
import { SymbolicTensor } from '../layers/layer';
import { Add, Multiply } from '../layers/merge';
import { Normalization, Rescaling } from '../layers/preprocessing';
import { DepthwiseConv2D, ZeroPadding2D } from '../layers/spatial';
import { Functional, input } from '../models/functional';
import { ApplicationArgs, checkCommon, checkOptions, withWeights } from './common';
import { correctPad, makeDivisible } from './mobilenet_v2';

export interface EfficientNetArgs extends ApplicationArgs {
  /**
   * Keras's stem (default true): Rescaling(1/255) then Normalization (its mean and variance are
   * weights: adapt() them, or load them with the rest). false: the model starts at stem_conv_pad.
   */
  includePreprocessing?: boolean;
}

// Keras's initializers: conv kernels VarianceScaling(2, fan_out, truncated normal), the
// classifier VarianceScaling(1/3, fan_out, uniform).
const convInit = () => varianceScaling({ scale: 2, mode: 'fanOut', distribution: 'truncatedNormal' });
const denseInit = () => varianceScaling({ scale: 1 / 3, mode: 'fanOut', distribution: 'uniform' });

/** One row of Keras's DEFAULT_BLOCKS_ARGS: kernel, repeats, filters in and out, expansion, stride (all with SE ratio 0.25). */
type BlockRow = [number, number, number, number, number, number];
const BLOCKS: BlockRow[] = [
  [3, 1, 32, 16, 1, 1], [3, 2, 16, 24, 6, 2], [5, 2, 24, 40, 6, 2], [3, 3, 40, 80, 6, 2],
  [5, 3, 80, 112, 6, 1], [5, 4, 112, 192, 6, 2], [3, 1, 192, 320, 6, 1],
];
const SE_RATIO = 0.25;

interface Scaling {
  width: number;
  depth: number;
  size: number;
  dropout: number;
  name: string;
}

const swish = (name: string) => new Activation({ activation: 'swish', name });
const bn = (name: string) => new BatchNormalization({ name });

/**
 * keras.applications.EfficientNetB0: Rescaling(1/255) + Normalization; stem_conv_pad
 * (correct_pad) + stem_conv (3x3, stride 2, 32 filters) + stem_bn + stem_activation (swish); 16
 * MBConv blocks block1a..block7a: expand_conv (1x1, none at expansion 1) + expand_bn +
 * expand_activation, dwconv_pad before a stride-2 dwconv, dwconv + bn + activation,
 * squeeze-and-excitation (se_squeeze global average, se_reshape [1, 1, filters], se_reduce 1x1
 * to a quarter of the block's input channels + swish, se_expand 1x1 + sigmoid, se_excite:
 * the image times that gate), project_conv + project_bn, and where shapes agree drop (Dropout
 * at Keras's drop-connect rate 0.2 * block / 16) + add; then top_conv (1x1 to 1280) + top_bn +
 * top_activation. The top: avg_pool -> top_dropout (0.2) -> predictions. Without it, `pooling`
 * adds avg_pool or max_pool.
 *
 * 5,330,571 parameters with the top (5,288,548 trainable), 4,049,571 without, as Keras counts
 * them (Normalization's mean, variance and count included).
 *
 * The drop layers drop whole examples (noiseShape [null, 1, 1, 1]: stochastic depth), as Keras's.
 * Where it differs from Keras: Keras adds a
 * third stem layer, Rescaling by 1/sqrt(ImageNet's per-channel variance), when it loads its own
 * ImageNet weights; convkit's Rescaling takes one scale for all channels, so for those weights
 * fold that scale into the Normalization's variance (variance * stddev).
 */
export function efficientNetB0(args: EfficientNetArgs & { weights: string }): Promise<Functional>;
export function efficientNetB0(args?: EfficientNetArgs & { weights?: null }): Functional;
export function efficientNetB0(args?: EfficientNetArgs): Functional | Promise<Functional>;
export function efficientNetB0(args?: EfficientNetArgs): Functional | Promise<Functional> {
  return efficientNet('applications.efficientNetB0', args, { width: 1, depth: 1, size: 224, dropout: 0.2, name: 'efficientnetb0' });
}

function efficientNet(op: string, args: EfficientNetArgs | undefined, scaling: Scaling): Functional | Promise<Functional> {
  const raw = checkOptions(op, args, ['includePreprocessing']);
  const opts = checkCommon(op, raw, { inputShape: [scaling.size, scaling.size, 3], classes: 1000, minSize: 32 });
  const includePreprocessing = raw.includePreprocessing ?? true;
  if (typeof includePreprocessing !== 'boolean') throw new ValueError(`${op}: includePreprocessing must be a boolean, got ${String(includePreprocessing)}`);
  const filtersOf = (f: number) => makeDivisible(f * scaling.width, 8);
  const repeatsOf = (r: number) => Math.ceil(scaling.depth * r);

  const image = input({ shape: opts.inputShape });
  let x = image;
  if (includePreprocessing) {
    x = new Rescaling({ scale: 1 / 255, name: 'rescaling' }).apply(x);
    x = new Normalization({ name: 'normalization' }).apply(x);
  }
  x = new ZeroPadding2D({ padding: correctPad(x.shape[1] as number, x.shape[2] as number, 3), name: 'stem_conv_pad' }).apply(x);
  x = new Conv2D({
    filters: filtersOf(32), kernelSize: 3, strides: 2, padding: 'valid', useBias: false, kernelInitializer: convInit(), name: 'stem_conv',
  }).apply(x);
  x = swish('stem_activation').apply(bn('stem_bn').apply(x));

  const total = BLOCKS.reduce((n, row) => n + repeatsOf(row[1]), 0);
  let b = 0;
  BLOCKS.forEach(([kernel, repeats, filtersIn, filtersOut, expansion, stride], i) => {
    for (let j = 0; j < repeatsOf(repeats); j++) {
      const name = `block${i + 1}${String.fromCharCode(97 + j)}_`;
      x = mbConv(x, {
        kernel, expansion, name, dropRate: 0.2 * b / total,
        filtersIn: j === 0 ? filtersOf(filtersIn) : filtersOf(filtersOut), filtersOut: filtersOf(filtersOut), stride: j === 0 ? stride : 1,
      });
      b++;
    }
  });

  x = new Conv2D({ filters: filtersOf(1280), kernelSize: 1, padding: 'same', useBias: false, kernelInitializer: convInit(), name: 'top_conv' }).apply(x);
  x = swish('top_activation').apply(bn('top_bn').apply(x));
  if (opts.includeTop) {
    x = new GlobalAveragePooling2D({ name: 'avg_pool' }).apply(x);
    if (scaling.dropout > 0) x = new Dropout({ rate: scaling.dropout, name: 'top_dropout' }).apply(x);
    x = new Dense({ units: opts.classes, activation: opts.classifierActivation, kernelInitializer: denseInit(), name: 'predictions' }).apply(x);
  } else if (opts.pooling === 'avg') {
    x = new GlobalAveragePooling2D({ name: 'avg_pool' }).apply(x);
  } else if (opts.pooling === 'max') {
    x = new GlobalMaxPooling2D({ name: 'max_pool' }).apply(x);
  }
  return withWeights(new Functional({ inputs: image, outputs: x, name: opts.name ?? scaling.name }), opts.weights, op);
}

interface Block {
  kernel: number;
  expansion: number;
  filtersIn: number;
  filtersOut: number;
  stride: number;
  dropRate: number;
  name: string;
}

/** Keras's block(): an inverted residual with squeeze-and-excitation (ratio 0.25, always on in EfficientNet). */
function mbConv(inputs: SymbolicTensor, { kernel, expansion, filtersIn, filtersOut, stride, dropRate, name }: Block): SymbolicTensor {
  const filters = filtersIn * expansion;
  let x = inputs;
  if (expansion !== 1) {
    x = new Conv2D({ filters, kernelSize: 1, padding: 'same', useBias: false, kernelInitializer: convInit(), name: `${name}expand_conv` }).apply(x);
    x = swish(`${name}expand_activation`).apply(bn(`${name}expand_bn`).apply(x));
  }
  if (stride === 2) {
    x = new ZeroPadding2D({ padding: correctPad(x.shape[1] as number, x.shape[2] as number, kernel), name: `${name}dwconv_pad` }).apply(x);
  }
  x = new DepthwiseConv2D({
    kernelSize: kernel, strides: stride, padding: stride === 2 ? 'valid' : 'same', useBias: false, depthwiseInitializer: convInit(), name: `${name}dwconv`,
  }).apply(x);
  x = swish(`${name}activation`).apply(bn(`${name}bn`).apply(x));

  const filtersSe = Math.max(1, Math.trunc(filtersIn * SE_RATIO));
  let se = new GlobalAveragePooling2D({ name: `${name}se_squeeze` }).apply(x);
  se = new Reshape({ targetShape: [1, 1, filters], name: `${name}se_reshape` }).apply(se);
  se = new Conv2D({ filters: filtersSe, kernelSize: 1, padding: 'same', activation: 'swish', kernelInitializer: convInit(), name: `${name}se_reduce` }).apply(se);
  se = new Conv2D({ filters, kernelSize: 1, padding: 'same', activation: 'sigmoid', kernelInitializer: convInit(), name: `${name}se_expand` }).apply(se);
  x = new Multiply({ name: `${name}se_excite` }).apply([x, se]);

  x = new Conv2D({ filters: filtersOut, kernelSize: 1, padding: 'same', useBias: false, kernelInitializer: convInit(), name: `${name}project_conv` }).apply(x);
  x = bn(`${name}project_bn`).apply(x);
  if (stride === 1 && filtersIn === filtersOut) {
    if (dropRate > 0) x = new Dropout({ rate: dropRate, noiseShape: [null, 1, 1, 1], name: `${name}drop` }).apply(x);
    x = new Add({ name: `${name}add` }).apply([x, inputs]);
  }
  return x;
}
