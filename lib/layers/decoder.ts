// The layers of decoders (segmentation, autoencoders), Keras/tfjs names and layouts: the
// transposed convolution, which grows an image, and cropping, which trims a skip connection to
// the size of the upsampled path.
import { describeValue, ShapeError, ValueError } from '../errors';
import { Initializer } from '../initializers';
import { Regularizer, regularizerConfig, regularizerOf, RegularizerOption } from '../regularizers';
import { ActivationIdentifier, activationConfigName, checkActivation, withActivation } from './activations';
import { outputLength } from './conv';
import {
  channelsLast, initializerOf, InitializerOption, KERNEL_EXTRAS, Layer, LayerArgs, NativeLayerSpec, OptionSpec, pairOf,
  paddingOf, positiveInt, requireRank, Shape, WeightSpec,
} from './layer';

type Pair = number | [number, number];
const images = 'images (None, height, width, channels)';
const ser = (i: Initializer) => ({ className: i.className, config: i.config });

/**
 * Output length along one axis of a transposed convolution, as Keras's deconv_output_length:
 * outputPadding null gives in * stride ('same') or in * stride + max(kernel - stride, 0)
 * ('valid'); otherwise (in - 1) * stride + kernel - 2 * pad + outputPadding, pad being
 * floor(kernel / 2) for 'same' and 0 for 'valid' (kernel dilated).
 */
export function deconvOutputLength(input: number, kernel: number, stride: number, dilation: number,
  padding: 'valid' | 'same', outputPadding: number | null): number {
  const k = (kernel - 1) * dilation + 1;
  if (outputPadding === null) return padding === 'same' ? input * stride : input * stride + Math.max(k - stride, 0);
  const pad = padding === 'same' ? Math.floor(k / 2) : 0;
  return (input - 1) * stride + k - 2 * pad + outputPadding;
}

export interface Conv2DTransposeArgs extends LayerArgs {
  filters: number;
  kernelSize: Pair;
  strides?: Pair;
  padding?: 'valid' | 'same';
  /** Keras's output_padding: rows/columns after the last window, each smaller than its stride; null: Keras's default size. */
  outputPadding?: Pair | null;
  dilationRate?: Pair;
  activation?: ActivationIdentifier | null;
  useBias?: boolean;
  kernelInitializer?: InitializerOption;
  biasInitializer?: InitializerOption;
  dataFormat?: 'channelsLast' | 'channels_last' | null;
  kernelRegularizer?: RegularizerOption;
  biasRegularizer?: RegularizerOption;
  activityRegularizer?: null;
  kernelConstraint?: null;
  biasConstraint?: null;
}

const CONV_TRANSPOSE_OPTIONS: OptionSpec = {
  filters: 'integer', kernelSize: 'intOrPair', strides: 'intOrPair', padding: 'string', outputPadding: 'intOrPair?',
  dilationRate: 'intOrPair', activation: 'string?', useBias: 'boolean', kernelInitializer: 'initializer?',
  biasInitializer: 'initializer?', dataFormat: 'string?', ...KERNEL_EXTRAS,
};

/**
 * Keras Conv2DTranspose: the gradient of a convolution with respect to its input, run forward.
 * Its kernel is [kernelH, kernelW, filters, inChannels], as Keras and tfjs store it.
 */
export class Conv2DTranspose extends Layer {
  readonly className = 'Conv2DTranspose';
  readonly filters: number;
  readonly kernelSize: [number, number];
  readonly strides: [number, number];
  readonly padding: 'valid' | 'same';
  readonly outputPadding: [number, number] | null;
  readonly dilationRate: [number, number];
  readonly activation: ActivationIdentifier;
  readonly useBias: boolean;
  readonly kernelInitializer: Initializer;
  readonly biasInitializer: Initializer;
  readonly kernelRegularizer: Regularizer | null;
  readonly biasRegularizer: Regularizer | null;

  constructor(args: Conv2DTransposeArgs) {
    super(args, 'conv2d_transpose', CONV_TRANSPOSE_OPTIONS);
    this.filters = positiveInt(args.filters, this.name, 'filters');
    this.kernelSize = pairOf(args.kernelSize, undefined, this.name, 'kernelSize');
    this.strides = pairOf(args.strides, 1, this.name, 'strides');
    this.padding = paddingOf(args.padding, this.name);
    this.dilationRate = pairOf(args.dilationRate, 1, this.name, 'dilationRate');
    if (args.outputPadding === undefined || args.outputPadding === null) {
      this.outputPadding = null;
    } else {
      const op = typeof args.outputPadding === 'number' ? [args.outputPadding, args.outputPadding] : args.outputPadding;
      if (!op.every((v, i) => v >= 0 && v < this.strides[i])) {
        throw new ValueError(`${this.name}: outputPadding must be >= 0 and smaller than the strides ${describeValue(this.strides)}, got ${describeValue(args.outputPadding)}`);
      }
      this.outputPadding = [op[0], op[1]];
    }
    this.activation = checkActivation(args.activation, this.name);
    this.useBias = args.useBias ?? true;
    this.kernelInitializer = initializerOf(args.kernelInitializer, 'glorotUniform', this.name);
    this.biasInitializer = initializerOf(args.biasInitializer, 'zeros', this.name);
    this.kernelRegularizer = regularizerOf(args.kernelRegularizer, this.name, 'kernelRegularizer');
    this.biasRegularizer = regularizerOf(args.biasRegularizer, this.name, 'biasRegularizer');
    channelsLast(args.dataFormat, this.name);
  }

  computeOutputShape(inputShape: Shape): Shape {
    requireRank(inputShape, 3, this.name, images);
    const out = [0, 1].map((a) => deconvOutputLength(inputShape[a], this.kernelSize[a], this.strides[a], this.dilationRate[a],
      this.padding, this.outputPadding === null ? null : this.outputPadding[a]));
    // TensorFlow refuses an output whose convolution does not come back to the input's size (an
    // even kernel with 'same' padding and outputPadding 0), and so does Keras.
    const back = [0, 1].map((a) => outputLength(out[a], this.kernelSize[a], this.strides[a], this.dilationRate[a], this.padding));
    if (out[0] < 1 || out[1] < 1 || back[0] !== inputShape[0] || back[1] !== inputShape[1]) {
      throw new ShapeError(`${this.name}: a ${out.join('x')} output of the ${this.kernelSize.join('x')} kernel with strides ` +
        `${this.strides.join('x')}, '${this.padding}' padding and outputPadding ${describeValue(this.outputPadding)} does not ` +
        `convolve back to the input (None, ${inputShape.join(', ')}); change outputPadding or padding`);
    }
    return [out[0], out[1], this.filters];
  }

  weightSpecs(inputShape: Shape): WeightSpec[] {
    const specs: WeightSpec[] = [{
      name: 'kernel', shape: [...this.kernelSize, this.filters, inputShape[2]], initializer: this.kernelInitializer,
      trainable: true, regularizer: this.kernelRegularizer,
    }];
    if (this.useBias) specs.push({ name: 'bias', shape: [this.filters], initializer: this.biasInitializer, trainable: true, regularizer: this.biasRegularizer });
    return specs;
  }

  lower(): NativeLayerSpec[] {
    // Left out, the executor's outputPadding is Keras's None.
    const outputPadding = this.outputPadding ? { outputPaddingH: this.outputPadding[0], outputPaddingW: this.outputPadding[1] } : {};
    return withActivation({
      kind: 'conv2dTranspose', name: this.name, filters: this.filters, kernelH: this.kernelSize[0], kernelW: this.kernelSize[1],
      strideH: this.strides[0], strideW: this.strides[1], dilationH: this.dilationRate[0], dilationW: this.dilationRate[1],
      padding: this.padding, ...outputPadding, useBias: this.useBias, trainable: this.trainable,
    }, this.activation);
  }

  getConfig(): Record<string, unknown> {
    return {
      ...super.getConfig(), filters: this.filters, kernelSize: this.kernelSize, strides: this.strides,
      padding: this.padding, outputPadding: this.outputPadding, dataFormat: 'channels_last', dilationRate: this.dilationRate,
      activation: activationConfigName(this.activation), useBias: this.useBias,
      kernelInitializer: ser(this.kernelInitializer), biasInitializer: ser(this.biasInitializer),
      kernelRegularizer: regularizerConfig(this.kernelRegularizer), biasRegularizer: regularizerConfig(this.biasRegularizer),
      activityRegularizer: null, kernelConstraint: null, biasConstraint: null,
    };
  }
}

export type Cropping = number | [number, number] | [[number, number], [number, number]];

/** [[top, bottom], [left, right]] from Keras's int, (h, w) or ((t, b), (l, r)); default no cropping. */
function croppingPairs(v: unknown, where: string): [[number, number], [number, number]] {
  const count = (x: unknown): x is number => Number.isInteger(x) && (x as number) >= 0 && (x as number) < 1 << 24;
  if (v === undefined || v === null) return [[0, 0], [0, 0]];
  if (count(v)) return [[v, v], [v, v]];
  if (Array.isArray(v) && v.length === 2 && v.every(count)) return [[v[0], v[0]], [v[1], v[1]]];
  if (Array.isArray(v) && v.length === 2 && v.every((p) => Array.isArray(p) && p.length === 2 && p.every(count))) {
    return [[v[0][0], v[0][1]], [v[1][0], v[1][1]]];
  }
  throw new ValueError(`${where}: cropping must be an integer, [h, w] or [[top, bottom], [left, right]] of integers >= 0, got ${describeValue(v)}`);
}

/** Keras Cropping2D: drops rows from the top and bottom and columns from the left and right. */
export class Cropping2D extends Layer {
  readonly className = 'Cropping2D';
  readonly cropping: [[number, number], [number, number]];

  constructor(args: LayerArgs & { cropping?: Cropping; dataFormat?: 'channelsLast' | 'channels_last' | null } = {}) {
    super(args, 'cropping2d', { cropping: 'padding2d', dataFormat: 'string?' });
    this.cropping = croppingPairs(args.cropping, this.name);
    channelsLast(args.dataFormat, this.name);
  }

  computeOutputShape(inputShape: Shape): Shape {
    requireRank(inputShape, 3, this.name, images);
    const [[t, b], [l, r]] = this.cropping;
    const h = inputShape[0] - t - b, w = inputShape[1] - l - r;
    if (h < 1 || w < 1) {
      throw new ShapeError(`${this.name}: cropping ${JSON.stringify(this.cropping)} leaves nothing of the input (None, ${inputShape.join(', ')})`);
    }
    return [h, w, inputShape[2]];
  }

  lower(): NativeLayerSpec[] {
    const [[t, b], [l, r]] = this.cropping;
    return [{ kind: 'cropping2d', name: this.name, cropTop: t, cropBottom: b, cropLeft: l, cropRight: r }];
  }

  getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), cropping: this.cropping, dataFormat: 'channels_last' };
  }
}
