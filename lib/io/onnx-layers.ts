// Each convkit layer as ONNX operators (opset 13), computing what convkit's predict computes:
// inference semantics (dropout is the identity, batch norm uses its moving statistics), Keras's
// 'same' padding as explicit pads (the extra row or column at the bottom/right), HWIO kernels
// as ONNX's OIHW. A layer class missing here, a subclass of one (a custom layer), or an
// activation missing from ACTIVATIONS has no ONNX form: the exporter names it in a ValueError.
import { ValueError } from '../errors';
import { Activation, Dense, Dropout, Flatten, LeakyReLU, ReLU, Reshape, Softmax } from '../layers/core';
import {
  AveragePooling2D, BatchNormalization, Conv2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D, Pooling2D,
} from '../layers/conv';
import { Conv2DTranspose, Cropping2D } from '../layers/decoder';
import { Layer, Shape } from '../layers/layer';
import { Add, Average, Concatenate, Multiply } from '../layers/merge';
import { GroupNormalization, LayerNormalization } from '../layers/normalization';
import { DepthwiseConv2D, LpPooling2D, SeparableConv2D, UpSampling2D, ZeroPadding2D } from '../layers/spatial';
import { OnnxGraph, OnnxValue } from './onnx-graph';

export interface Weight {
  data: Float32Array;
  shape: number[];
}

/** What lowering one layer sees: its inputs in the graph, its output shape, its weights by name. */
export interface LayerContext {
  g: OnnxGraph;
  layer: Layer;
  inputs: OnnxValue[];
  /** The layer's per-example output shape, as convkit built it. */
  output: Shape;
  weights: Map<string, Weight>;
}

type Lowering = (ctx: LayerContext) => OnnxValue;

/** The unsupported-layer error: what the exporter cannot write, and why. */
function noOnnxForm(layer: Layer, why: string): ValueError {
  return new ValueError(`toOnnx: layer ${layer.name} (${layer.className}) has no ONNX form: ${why}`);
}

function weight(ctx: LayerContext, name: string): Weight {
  const w = ctx.weights.get(name);
  if (!w) throw new ValueError(`toOnnx: layer ${ctx.layer.name} has no weight '${name}'`);
  return w;
}

/** The value made by the layer's last node, in `layer`'s name space. */
const out = (ctx: LayerContext, suffix = 'output') => `${ctx.layer.name}/${suffix}`;

// ---- activations ----

type ActivationLowering = (g: OnnxGraph, x: string, name: string, layout: 'nchw' | 'nhwc') => string;

/** The activations convkit layers name, as ONNX operators ('linear' is none). */
const ACTIVATIONS: Record<string, ActivationLowering> = {
  relu: (g, x, name) => g.node('Relu', [x], name),
  relu6: (g, x, name) => g.node('Clip', [x, g.floatConstant([0], []), g.floatConstant([6], [])], name),
  elu: (g, x, name) => g.node('Elu', [x], name, { alpha: { float: 1 } }),
  sigmoid: (g, x, name) => g.node('Sigmoid', [x], name),
  tanh: (g, x, name) => g.node('Tanh', [x], name),
  // convkit's softmax is over the last axis: the channels, which NCHW holds at axis 1.
  softmax: (g, x, name, layout) => g.node('Softmax', [x], name, { axis: layout === 'nchw' ? 1 : -1 }),
  softplus: (g, x, name) => g.node('Softplus', [x], name),
  // Keras's constants (ONNX's defaults differ in the last digits).
  selu: (g, x, name) => g.node('Selu', [x], name, { alpha: { float: 1.6732632423543772 }, gamma: { float: 1.0507009873554805 } }),
  // Keras 3's hard sigmoid, relu6(x + 3) / 6, is clip(x / 6 + 1/2, 0, 1).
  hardSigmoid: (g, x, name) => g.node('HardSigmoid', [x], name, { alpha: { float: 1 / 6 }, beta: { float: 0.5 } }),
  // Opset 13 has no HardSwish (14) or Gelu (20) operator: they are written out.
  hardSwish: (g, x, name) => g.node('Mul', [x, g.node('HardSigmoid', [x], `${name}/gate`, { alpha: { float: 1 / 6 }, beta: { float: 0.5 } })], name),
  swish: (g, x, name) => g.node('Mul', [x, g.node('Sigmoid', [x], `${name}/gate`)], name),
  mish: (g, x, name) => g.node('Mul', [x, g.node('Tanh', [g.node('Softplus', [x], `${name}/softplus`)], `${name}/gate`)], name),
  // 0.5 x (1 + erf(x / sqrt 2))
  gelu: (g, x, name) => {
    const erf = g.node('Erf', [g.node('Div', [x, g.floatConstant([Math.SQRT2], [])], `${name}/scaled`)], `${name}/erf`);
    const gate = g.node('Mul', [g.node('Add', [erf, g.floatConstant([1], [])], `${name}/one_plus`), g.floatConstant([0.5], [])], `${name}/gate`);
    return g.node('Mul', [x, gate], name);
  },
  // 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
  gelu_new: (g, x, name) => {
    const cube = g.node('Mul', [g.node('Mul', [x, x], `${name}/square`), x], `${name}/cube`);
    const inner = g.node('Add', [x, g.node('Mul', [cube, g.floatConstant([0.044715], [])], `${name}/cubic`)], `${name}/inner`);
    const tanh = g.node('Tanh', [g.node('Mul', [inner, g.floatConstant([Math.sqrt(2 / Math.PI)], [])], `${name}/scaled`)], `${name}/tanh`);
    const gate = g.node('Mul', [g.node('Add', [tanh, g.floatConstant([1], [])], `${name}/one_plus`), g.floatConstant([0.5], [])], `${name}/gate`);
    return g.node('Mul', [x, gate], name);
  },
};

/** `act` applied to v (v itself for 'linear'); an activation with no ONNX form is a ValueError. */
function activation(ctx: LayerContext, v: OnnxValue, act: string, name = out(ctx)): OnnxValue {
  if (act === 'linear') return v;
  const lower = ACTIVATIONS[act];
  if (!lower) throw noOnnxForm(ctx.layer, `activation '${act}' is not one the exporter knows (${['linear', ...Object.keys(ACTIVATIONS)].join(', ')})`);
  return { ...v, name: lower(ctx.g, v.name, name, v.layout) };
}

// ---- geometry and weight layouts ----

/** Keras's 'same' padding along one axis: [before, after], the odd cell after. */
function samePads(input: number, kernel: number, stride: number, dilation: number): [number, number] {
  const outLength = Math.ceil(input / stride);
  const total = Math.max((outLength - 1) * stride + (kernel - 1) * dilation + 1 - input, 0);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

/** ONNX's pads [top, left, bottom, right] for a window over an NHWC input shape. */
function windowPads(input: Shape, kernel: [number, number], strides: [number, number], dilation: [number, number], padding: 'valid' | 'same'): number[] {
  if (padding === 'valid') return [0, 0, 0, 0];
  const [top, bottom] = samePads(input[0], kernel[0], strides[0], dilation[0]);
  const [left, right] = samePads(input[1], kernel[1], strides[1], dilation[1]);
  return [top, left, bottom, right];
}

/** HWIO [kh, kw, in, out] as ONNX's OIHW [out, in, kh, kw]. */
function hwioToOihw(k: Weight): Weight {
  const [kh, kw, ci, co] = k.shape;
  const data = new Float32Array(k.data.length);
  for (let h = 0; h < kh; h++)
    for (let w = 0; w < kw; w++)
      for (let i = 0; i < ci; i++)
        for (let o = 0; o < co; o++) data[((o * ci + i) * kh + h) * kw + w] = k.data[((h * kw + w) * ci + i) * co + o];
  return { data, shape: [co, ci, kh, kw] };
}

/**
 * A depthwise kernel [kh, kw, C, M] as a grouped convolution's [C*M, 1, kh, kw]: output channel
 * c*M + m reads input channel c (group c), as convkit and Keras order them.
 */
function depthwiseToOihw(k: Weight): Weight {
  const [kh, kw, c, m] = k.shape;
  return hwioToOihw({ data: k.data, shape: [kh, kw, 1, c * m] });
}

interface ConvGeometry {
  kernelSize: [number, number];
  strides: [number, number];
  dilationRate: [number, number];
  padding: 'valid' | 'same';
}

function conv(ctx: LayerContext, x: string, input: Shape, geometry: ConvGeometry, kernel: Weight, bias: Weight | undefined,
  group: number, name: string): string {
  const w = ctx.g.floats(`${ctx.layer.name}/kernel`, kernel.shape, kernel.data);
  const inputs = bias ? [x, w, ctx.g.floats(`${ctx.layer.name}/bias`, bias.shape, bias.data)] : [x, w];
  return ctx.g.node('Conv', inputs, name, {
    kernel_shape: geometry.kernelSize, strides: geometry.strides, dilations: geometry.dilationRate,
    pads: windowPads(input, geometry.kernelSize, geometry.strides, geometry.dilationRate, geometry.padding), group,
  });
}

// ---- the layers ----

const conv2d: Lowering = (ctx) => {
  const layer = ctx.layer as Conv2D;
  const [x] = ctx.inputs;
  const bias = layer.useBias ? weight(ctx, 'bias') : undefined;
  const name = layer.activation === 'linear' ? out(ctx) : out(ctx, 'conv');
  const y = conv(ctx, ctx.g.nchw(x), x.shape, layer, hwioToOihw(weight(ctx, 'kernel')), bias, layer.groups, name);
  return activation(ctx, { name: y, shape: ctx.output, layout: 'nchw' }, layer.activation);
};

const depthwiseConv2d: Lowering = (ctx) => {
  const layer = ctx.layer as DepthwiseConv2D;
  const [x] = ctx.inputs;
  const bias = layer.useBias ? weight(ctx, 'bias') : undefined;
  const name = layer.activation === 'linear' ? out(ctx) : out(ctx, 'depthwise');
  const y = conv(ctx, ctx.g.nchw(x), x.shape, layer, depthwiseToOihw(weight(ctx, 'depthwise_kernel')), bias, x.shape[2], name);
  return activation(ctx, { name: y, shape: ctx.output, layout: 'nchw' }, layer.activation);
};

const separableConv2d: Lowering = (ctx) => {
  const layer = ctx.layer as SeparableConv2D;
  const [x] = ctx.inputs;
  const depthwise = conv(ctx, ctx.g.nchw(x), x.shape, layer, depthwiseToOihw(weight(ctx, 'depthwise_kernel')), undefined,
    x.shape[2], out(ctx, 'depthwise'));
  const pointwise: ConvGeometry = { kernelSize: [1, 1], strides: [1, 1], dilationRate: [1, 1], padding: 'valid' };
  const bias = layer.useBias ? weight(ctx, 'bias') : undefined;
  const name = layer.activation === 'linear' ? out(ctx) : out(ctx, 'pointwise');
  const y = conv(ctx, depthwise, ctx.output, pointwise, hwioToOihw(weight(ctx, 'pointwise_kernel')), bias, 1, name);
  return activation(ctx, { name: y, shape: ctx.output, layout: 'nchw' }, layer.activation);
};

/** Dense on the last axis: Gemm for one vector per example, MatMul + Add for more axes. */
const dense: Lowering = (ctx) => {
  const layer = ctx.layer as Dense;
  const [x] = ctx.inputs;
  const g = ctx.g;
  const kernel = weight(ctx, 'kernel');
  const w = g.floats(`${layer.name}/kernel`, kernel.shape, kernel.data);
  const b = layer.useBias ? weight(ctx, 'bias') : undefined;
  const bias = b ? g.floats(`${layer.name}/bias`, b.shape, b.data) : undefined;
  const name = layer.activation === 'linear' ? out(ctx) : out(ctx, 'dense');
  let y: string;
  if (x.shape.length === 1) {
    y = g.node('Gemm', bias ? [x.name, w, bias] : [x.name, w], name);
  } else if (bias) {
    y = g.node('Add', [g.node('MatMul', [g.nhwc(x), w], out(ctx, 'matmul')), bias], name);
  } else {
    y = g.node('MatMul', [g.nhwc(x), w], name);
  }
  return activation(ctx, { name: y, shape: ctx.output, layout: 'nhwc' }, layer.activation);
};

/**
 * Batch norm with the moving statistics: ONNX's BatchNormalization on images (channels at
 * axis 1); on other values, whose channels are last, the same affine map as Mul and Add with
 * scale gamma / sqrt(var + eps) and shift beta - mean * scale, computed in double.
 */
const batchNorm: Lowering = (ctx) => {
  const layer = ctx.layer as BatchNormalization;
  const [x] = ctx.inputs;
  const g = ctx.g;
  const mean = weight(ctx, 'moving_mean');
  const variance = weight(ctx, 'moving_variance');
  const c = mean.data.length;
  const gamma = layer.scale ? weight(ctx, 'gamma').data : new Float32Array(c).fill(1);
  const beta = layer.center ? weight(ctx, 'beta').data : new Float32Array(c);
  if (x.shape.length === 3) {
    const inputs = [g.nchw(x), g.floats(`${layer.name}/gamma`, [c], gamma), g.floats(`${layer.name}/beta`, [c], beta),
      g.floats(`${layer.name}/moving_mean`, [c], mean.data), g.floats(`${layer.name}/moving_variance`, [c], variance.data)];
    const y = g.node('BatchNormalization', inputs, out(ctx), { epsilon: { float: layer.epsilon }, momentum: { float: layer.momentum } });
    return { name: y, shape: ctx.output, layout: 'nchw' };
  }
  const scale = new Float32Array(c);
  const shift = new Float32Array(c);
  for (let i = 0; i < c; i++) {
    const s = gamma[i] / Math.sqrt(variance.data[i] + layer.epsilon);
    scale[i] = s;
    shift[i] = beta[i] - mean.data[i] * s;
  }
  const scaled = g.node('Mul', [g.nhwc(x), g.floats(`${layer.name}/scale`, [c], scale)], out(ctx, 'scaled'));
  return { name: g.node('Add', [scaled, g.floats(`${layer.name}/shift`, [c], shift)], out(ctx)), shape: ctx.output, layout: 'nhwc' };
};

/**
 * Layer and group normalization in opset-13 operators (LayerNormalization is opset 17, and
 * GroupNormalization's opset-18 form scales per group, not per channel): the channels-last value
 * reshaped to [N, positions, groups, channels per group] (a layer norm: one group per position),
 * mean and biased variance by ReduceMean over each group's axes, then gamma and beta per channel.
 */
const normalization: Lowering = (ctx) => {
  const layer = ctx.layer as LayerNormalization | GroupNormalization;
  const g = ctx.g;
  const c = ctx.output[ctx.output.length - 1];
  const positions = ctx.output.reduce((a, b) => a * b, 1) / c;
  const groups = layer instanceof GroupNormalization ? layer.groups : 1;
  const grouped = g.node('Reshape', [g.nhwc(ctx.inputs[0]), g.int64s([0, positions, groups, c / groups])], out(ctx, 'grouped'));
  const axes = layer instanceof GroupNormalization ? [1, 3] : [3];
  const mean = g.node('ReduceMean', [grouped], out(ctx, 'mean'), { axes, keepdims: 1 });
  const centered = g.node('Sub', [grouped, mean], out(ctx, 'centered'));
  const variance = g.node('ReduceMean', [g.node('Mul', [centered, centered], out(ctx, 'squares'))], out(ctx, 'variance'), { axes, keepdims: 1 });
  const std = g.node('Sqrt', [g.node('Add', [variance, g.floatConstant([layer.epsilon], [])], out(ctx, 'variance_eps'))], out(ctx, 'std'));
  const normalized = g.node('Div', [centered, std], out(ctx, 'normalized'));
  let y = g.node('Reshape', [normalized, g.int64s([0, ...ctx.output])], layer.scale || layer.center ? out(ctx, 'unscaled') : out(ctx));
  if (layer.scale) y = g.node('Mul', [y, g.floats(`${layer.name}/gamma`, [c], weight(ctx, 'gamma').data)], layer.center ? out(ctx, 'scaled') : out(ctx));
  if (layer.center) y = g.node('Add', [y, g.floats(`${layer.name}/beta`, [c], weight(ctx, 'beta').data)], out(ctx));
  return { name: y, shape: ctx.output, layout: 'nhwc' };
};

const activationLayer: Lowering = (ctx) => activation(ctx, ctx.inputs[0], (ctx.layer as Activation).activation);

const relu: Lowering = (ctx) => {
  const max = (ctx.layer as ReLU).maxValue;
  const [x] = ctx.inputs;
  if (max === null) return activation(ctx, x, 'relu');
  const y = ctx.g.node('Clip', [x.name, ctx.g.floatConstant([0], []), ctx.g.floatConstant([max], [])], out(ctx));
  return { ...x, name: y, shape: ctx.output };
};

const leakyRelu: Lowering = (ctx) => {
  const [x] = ctx.inputs;
  return { ...x, name: ctx.g.node('LeakyRelu', [x.name], out(ctx), { alpha: { float: (ctx.layer as LeakyReLU).alpha } }) };
};

const softmax: Lowering = (ctx) => activation(ctx, ctx.inputs[0], 'softmax');

/** Max and average pooling; Keras's average over 'same' windows counts only the real cells. */
function pooling(opType: 'MaxPool' | 'AveragePool'): Lowering {
  return (ctx) => {
    const layer = ctx.layer as Pooling2D;
    const [x] = ctx.inputs;
    const attrs: Record<string, number[] | number> = {
      kernel_shape: layer.poolSize, strides: layer.strides, pads: windowPads(x.shape, layer.poolSize, layer.strides, [1, 1], layer.padding),
    };
    if (opType === 'AveragePool') attrs.count_include_pad = 0;
    return { name: ctx.g.node(opType, [ctx.g.nchw(x)], out(ctx), attrs), shape: ctx.output, layout: 'nchw' };
  };
}

/**
 * convkit's Lp pooling is a power mean, (mean over the window's real cells of |x|^p)^(1/p);
 * ONNX's LpPool is a sum with no division, so it is written as its parts: |x|^p averaged over
 * the real cells (AveragePool without the padding), then ^(1/p).
 */
const lpPool: Lowering = (ctx) => {
  const layer = ctx.layer as LpPooling2D;
  const [x] = ctx.inputs;
  const g = ctx.g;
  const abs = g.node('Abs', [g.nchw(x)], out(ctx, 'abs'));
  const powered = g.node('Pow', [abs, g.floatConstant([layer.p], [])], out(ctx, 'pow'));
  const mean = g.node('AveragePool', [powered], out(ctx, 'mean'), {
    kernel_shape: layer.poolSize, strides: layer.strides, pads: windowPads(x.shape, layer.poolSize, layer.strides, [1, 1], layer.padding),
    count_include_pad: 0,
  });
  return { name: g.node('Pow', [mean, g.floatConstant([1 / layer.p], [])], out(ctx)), shape: ctx.output, layout: 'nchw' };
};

function globalPooling(opType: 'GlobalAveragePool' | 'GlobalMaxPool'): Lowering {
  return (ctx) => {
    const layer = ctx.layer as GlobalAveragePooling2D | GlobalMaxPooling2D;
    const g = ctx.g;
    const pooled = g.node(opType, [g.nchw(ctx.inputs[0])], layer.keepDims ? out(ctx) : out(ctx, 'pooled'));
    // [N, C, 1, 1]: as NCHW it is the (1, 1, C) image keepDims asks for; else flattened to [N, C].
    if (layer.keepDims) return { name: pooled, shape: ctx.output, layout: 'nchw' };
    return { name: g.node('Flatten', [pooled], out(ctx), { axis: 1 }), shape: ctx.output, layout: 'nhwc' };
  };
}

/** convkit flattens NHWC: an NCHW image goes back to NHWC first, so Dense weights keep their order. */
const flatten: Lowering = (ctx) => ({
  name: ctx.g.node('Flatten', [ctx.g.nhwc(ctx.inputs[0])], out(ctx), { axis: 1 }), shape: ctx.output, layout: 'nhwc',
});

const reshape: Lowering = (ctx) => {
  const shape = ctx.g.int64s([0, ...ctx.output]);  // 0: the batch dimension as it is
  return { name: ctx.g.node('Reshape', [ctx.g.nhwc(ctx.inputs[0]), shape], out(ctx)), shape: ctx.output, layout: 'nhwc' };
};

const dropout: Lowering = (ctx) => ctx.inputs[0];

const zeroPadding: Lowering = (ctx) => {
  const [[t, b], [l, r]] = (ctx.layer as ZeroPadding2D).padding;
  const pads = ctx.g.int64s([0, 0, t, l, 0, 0, b, r]);
  return { name: ctx.g.node('Pad', [ctx.g.nchw(ctx.inputs[0]), pads], out(ctx), { mode: 'constant' }), shape: ctx.output, layout: 'nchw' };
};

/**
 * Up-sampling as convkit's layer samples: nearest reads source row floor(dst / size); bilinear
 * interpolates at dst / size, clamped at the last row (ONNX's 'asymmetric' coordinates), or with
 * halfPixelCenters at (dst + 0.5) / size - 0.5, clamped at both ends ('half_pixel').
 */
const upSampling: Lowering = (ctx) => {
  const layer = ctx.layer as UpSampling2D;
  const g = ctx.g;
  const scales = g.floatConstant([1, 1, layer.size[0], layer.size[1]]);
  const attrs: Record<string, string> = layer.interpolation === 'nearest'
    ? { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }
    : { mode: 'linear', coordinate_transformation_mode: layer.halfPixelCenters ? 'half_pixel' : 'asymmetric' };
  // Resize's second input (roi) is unused with these coordinates: '' leaves it out.
  return { name: g.node('Resize', [g.nchw(ctx.inputs[0]), '', scales], out(ctx), attrs), shape: ctx.output, layout: 'nchw' };
};

/**
 * Conv2DTranspose as ConvTranspose: Keras's [kh, kw, filters, in] kernel is ONNX's
 * [in, filters, kh, kw]. convkit's output is the window from TensorFlow's top/left padding of
 * the uncropped (in - 1) * stride + k_eff cells; where it reaches past their end (outputPadding,
 * or 'valid' with a stride above the kernel) ONNX's output_padding adds those cells instead of
 * an end pad.
 */
const conv2dTranspose: Lowering = (ctx) => {
  const layer = ctx.layer as Conv2DTranspose;
  const [x] = ctx.inputs;
  const k = weight(ctx, 'kernel');
  const [kh, kw, f, ci] = k.shape;
  const data = new Float32Array(k.data.length);
  for (let h = 0; h < kh; h++)
    for (let w = 0; w < kw; w++)
      for (let o = 0; o < f; o++)
        for (let i = 0; i < ci; i++) data[((i * f + o) * kh + h) * kw + w] = k.data[((h * kw + w) * f + o) * ci + i];
  const pads = [0, 0, 0, 0];
  const outputPadding = [0, 0];
  for (const a of [0, 1]) {
    const kEff = (layer.kernelSize[a] - 1) * layer.dilationRate[a] + 1;
    const full = (x.shape[a] - 1) * layer.strides[a] + kEff;
    const before = layer.padding === 'same' ? samePads(ctx.output[a], layer.kernelSize[a], layer.strides[a], layer.dilationRate[a])[0] : 0;
    const after = full - before - ctx.output[a];
    pads[a] = before;
    if (after >= 0) pads[a + 2] = after;
    else outputPadding[a] = -after;
  }
  const g = ctx.g;
  const inputs = [g.nchw(x), g.floats(`${layer.name}/kernel`, [ci, f, kh, kw], data)];
  if (layer.useBias) inputs.push(g.floats(`${layer.name}/bias`, [f], weight(ctx, 'bias').data));
  const y = g.node('ConvTranspose', inputs, layer.activation === 'linear' ? out(ctx) : out(ctx, 'conv_transpose'), {
    kernel_shape: layer.kernelSize, strides: layer.strides, dilations: layer.dilationRate, pads, output_padding: outputPadding,
  });
  return activation(ctx, { name: y, shape: ctx.output, layout: 'nchw' }, layer.activation);
};

/** Cropping2D as a Slice of the two spatial axes (2 and 3 in NCHW). */
const cropping: Lowering = (ctx) => {
  const [[t], [l]] = (ctx.layer as Cropping2D).cropping;
  const g = ctx.g;
  const slice = [g.nchw(ctx.inputs[0]), g.int64s([t, l]), g.int64s([t + ctx.output[0], l + ctx.output[1]]), g.int64s([2, 3])];
  return { name: g.node('Slice', slice, out(ctx)), shape: ctx.output, layout: 'nchw' };
};

/** Merges read their inputs in one layout: NCHW when they are images, else convkit's order. */
function merged(ctx: LayerContext): { names: string[]; layout: 'nchw' | 'nhwc' } {
  const layout = ctx.inputs[0].shape.length === 3 ? 'nchw' : 'nhwc';
  return { names: ctx.inputs.map((v) => ctx.g.inLayout(v, layout)), layout };
}

function variadic(opType: 'Sum' | 'Mean'): Lowering {
  return (ctx) => {
    const { names, layout } = merged(ctx);
    return { name: ctx.g.node(opType, names, out(ctx)), shape: ctx.output, layout };
  };
}

/**
 * A product of two or more inputs, left to right as convkit multiplies them. A gate of the
 * output's C channels ([C] or [1, ..., 1, C], squeeze-and-excitation) is held as [N, C, 1, 1]
 * beside an NCHW image, or [N, 1, ..., 1, C] otherwise, so ONNX's broadcasting (which aligns
 * trailing axes) spreads it over space as convkit does.
 */
const multiply: Lowering = (ctx) => {
  const layout = ctx.output.length === 3 ? 'nchw' : 'nhwc';
  const C = ctx.output[ctx.output.length - 1];
  const gateDims = layout === 'nchw' ? [C, 1, 1] : [...new Array<number>(ctx.output.length - 1).fill(1), C];
  const names = ctx.inputs.map((v, k) => {
    if (v.shape.length === ctx.output.length) return ctx.g.inLayout(v, layout);
    return ctx.g.node('Reshape', [ctx.g.nhwc(v), ctx.g.int64s([0, ...gateDims])], out(ctx, `gate${k}`));
  });
  let y = names[0];
  for (let k = 1; k < names.length; k++) y = ctx.g.node('Mul', [y, names[k]], k === names.length - 1 ? out(ctx) : out(ctx, `product${k}`));
  return { name: y, shape: ctx.output, layout };
};

/** Concatenated along convkit's last axis: the channels, axis 1 in NCHW. */
const concatenate: Lowering = (ctx) => {
  const { names, layout } = merged(ctx);
  return { name: ctx.g.node('Concat', names, out(ctx), { axis: layout === 'nchw' ? 1 : -1 }), shape: ctx.output, layout };
};

/** The lowering of each layer class convkit has, by its exact class (not subclasses). */
const LOWERINGS = new Map<Function, Lowering>([
  [Conv2D, conv2d],
  [DepthwiseConv2D, depthwiseConv2d],
  [SeparableConv2D, separableConv2d],
  [Dense, dense],
  [BatchNormalization, batchNorm],
  [Activation, activationLayer],
  [ReLU, relu],
  [LeakyReLU, leakyRelu],
  [Softmax, softmax],
  [MaxPooling2D, pooling('MaxPool')],
  [AveragePooling2D, pooling('AveragePool')],
  [LpPooling2D, lpPool],
  [GlobalAveragePooling2D, globalPooling('GlobalAveragePool')],
  [GlobalMaxPooling2D, globalPooling('GlobalMaxPool')],
  [Flatten, flatten],
  [Reshape, reshape],
  [Dropout, dropout],
  [ZeroPadding2D, zeroPadding],
  [UpSampling2D, upSampling],
  [Add, variadic('Sum')],
  [Average, variadic('Mean')],
  [Multiply, multiply],
  [Concatenate, concatenate],
  [LayerNormalization, normalization],
  [GroupNormalization, normalization],
  [Conv2DTranspose, conv2dTranspose],
  [Cropping2D, cropping],
]);

/** The layer as ONNX nodes added to ctx.g; its output value. */
export function lowerLayer(ctx: LayerContext): OnnxValue {
  const lower = LOWERINGS.get(ctx.layer.constructor);
  if (!lower) throw noOnnxForm(ctx.layer, 'the exporter knows only convkit\'s own layer classes');
  return lower(ctx);
}
