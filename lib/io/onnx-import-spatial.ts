// The spatial ONNX operators as convkit layers: Conv (OIHW kernels as HWIO, grouped and
// depthwise), pooling, Pad and Resize. ONNX pads are mapped onto convkit's 'valid' and 'same'
// (TensorFlow's, the odd cell at the bottom/right) or a ZeroPadding2D before the window, and
// every window's output shape is checked against ONNX's formula for the node.
import { AveragePooling2D, Conv2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D } from '../layers/conv';
import { Conv2DTranspose, Cropping2D } from '../layers/decoder';
import { SymbolicTensor } from '../layers/layer';
import { DepthwiseConv2D, UpSampling2D, ZeroPadding2D } from '../layers/spatial';
import { constInput, fail, floats, Handler, image, imageOut, OpContext, tensorInput, TensorValue, unread, vectorOut } from './onnx-import-context';
import { Constant, count } from './onnx-import-values';

// ---- geometry ----

/** convkit's (TensorFlow's) 'same' padding along one axis: [before, after], the odd cell after. */
function samePads(input: number, kernel: number, stride: number, dilation: number): [number, number] {
  const total = Math.max((Math.ceil(input / stride) - 1) * stride + (kernel - 1) * dilation + 1 - input, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

interface Window {
  kernel: [number, number];
  strides: [number, number];
  dilations: [number, number];
  /** [top, left, bottom, right] */
  pads: number[];
}

/** A window op's geometry from its attributes, auto_pad resolved against the input size. */
function window(ctx: OpContext, x: TensorValue, kernel: number[] | undefined): Window {
  const a = ctx.attrs;
  const pair = (name: string, v: number[] | undefined, fallback: number): [number, number] => {
    const p = v ?? [fallback, fallback];
    if (p.length !== 2 || p.some((n) => !Number.isInteger(n) || n < (name === 'pads' ? 0 : 1))) {
      throw fail(ctx, `${name} must be two ${name === 'pads' ? 'non-negative' : 'positive'} integers for a 2-D window, got [${p.join(', ')}]`);
    }
    return [p[0], p[1]];
  };
  const k = pair('kernel_shape', kernel, 0);
  const strides = pair('strides', a.ints('strides'), 1);
  const dilations = pair('dilations', a.ints('dilations'), 1);
  const [, h, w] = x.dims;
  const autoPad = a.string('auto_pad', 'NOTSET');
  let pads: number[];
  if (autoPad === 'NOTSET') {
    pads = a.ints('pads') ?? [0, 0, 0, 0];
    if (pads.length !== 4 || pads.some((p) => !Number.isInteger(p) || p < 0)) throw fail(ctx, `pads must be 4 non-negative integers, got [${pads.join(', ')}]`);
  } else if (autoPad === 'VALID') {
    pads = [0, 0, 0, 0];
  } else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const [t, b] = samePads(h, k[0], strides[0], dilations[0]);
    const [l, r] = samePads(w, k[1], strides[1], dilations[1]);
    pads = autoPad === 'SAME_UPPER' ? [t, l, b, r] : [b, r, t, l];
  } else {
    throw fail(ctx, `auto_pad '${autoPad}' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER`);
  }
  return { kernel: k, strides, dilations, pads };
}

/**
 * The window's pads as convkit expresses them: none ('valid'), TensorFlow's 'same' (the odd
 * cell at the bottom/right), or a ZeroPadding2D before a 'valid' window when `zeroPadOk` (the
 * pads are zeros that the op must see, or zeros that cannot change its result).
 */
function padded(ctx: OpContext, x: TensorValue, win: Window, zeroPadOk: boolean | string): { st: SymbolicTensor; padding: 'valid' | 'same' } {
  const [t, l, b, r] = win.pads;
  if (t + l + b + r === 0) return { st: x.st, padding: 'valid' };
  const [, h, w] = x.dims;
  const [st, sb] = samePads(h, win.kernel[0], win.strides[0], win.dilations[0]);
  const [sl, sr] = samePads(w, win.kernel[1], win.strides[1], win.dilations[1]);
  if (t === st && b === sb && l === sl && r === sr) return { st: x.st, padding: 'same' };
  if (zeroPadOk !== true) throw fail(ctx, `pads [${win.pads.join(', ')}] are not TensorFlow's 'same' pads here ([${[st, sl, sb, sr].join(', ')}]), and ${zeroPadOk}`);
  const pad = ctx.apply((name) => new ZeroPadding2D({ name, padding: [[t, b], [l, r]] }), x.st, undefined, 'pad');
  return { st: pad, padding: 'valid' };
}

/** ONNX's output size of a window along one axis. */
function windowOutput(input: number, kernel: number, stride: number, dilation: number, padBefore: number, padAfter: number, ceil: boolean): number {
  const span = input + padBefore + padAfter - ((kernel - 1) * dilation + 1);
  return (ceil ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
}

/** The layer made what ONNX's formula says, or the mapping is wrong: never a silent mismatch. */
function checkImageShape(ctx: OpContext, st: SymbolicTensor, want: number[]): void {
  const got = st.shape.slice(1) as number[];
  if (got.join() !== [want[1], want[2], want[0]].join()) {
    throw fail(ctx, `convkit's layers give [${got.join(', ')}] (HWC) where ONNX gives [${want.join(', ')}] (CHW)`);
  }
}

// ---- convolution ----

/** OIHW [out, in, kh, kw] as HWIO [kh, kw, in, out]. */
function oihwToHwio(w: Float32Array, [co, ci, kh, kw]: number[]): Float32Array {
  const out = new Float32Array(w.length);
  for (let o = 0; o < co; o++)
    for (let i = 0; i < ci; i++)
      for (let y = 0; y < kh; y++)
        for (let x = 0; x < kw; x++) out[((y * kw + x) * ci + i) * co + o] = w[((o * ci + i) * kh + y) * kw + x];
  return out;
}

export const conv: Handler = (ctx) => {
  unread(ctx, ['auto_pad', 'dilations', 'group', 'kernel_shape', 'pads', 'strides']);
  const x = image(ctx);
  const w = constInput(ctx, 1, 'W');
  const b = ctx.inputs[2] ? constInput(ctx, 2, 'B') : undefined;
  if (w.dims.length !== 4) throw fail(ctx, `W must be 4-D (a 2-D convolution), got [${w.dims.join(', ')}]`);
  const [co, ciPerGroup, kh, kw] = w.dims;
  const group = ctx.attrs.int('group', 1);
  const ci = x.dims[0];
  if (group < 1 || ci % group !== 0 || co % group !== 0 || ci / group !== ciPerGroup) {
    throw fail(ctx, `W [${w.dims.join(', ')}] with group ${group} does not fit ${ci} input channels`);
  }
  if (b && count(b.dims) !== co) throw fail(ctx, `B has ${count(b.dims)} values for ${co} output channels`);
  const kernelAttr = ctx.attrs.ints('kernel_shape');
  if (kernelAttr && kernelAttr.join() !== [kh, kw].join()) throw fail(ctx, `kernel_shape [${kernelAttr.join(', ')}] differs from W's [${kh}, ${kw}]`);
  const win = window(ctx, x, [kh, kw]);
  const { st, padding } = padded(ctx, x, win, true);
  const kernel = oihwToHwio(floats(w), w.dims);
  const weights = [{ data: kernel, shape: [kh, kw, ciPerGroup, co] }];
  if (b) weights.push({ data: floats(b), shape: [co] });
  const geometry = { kernelSize: win.kernel, strides: win.strides, dilationRate: win.dilations, padding, useBias: Boolean(b) };
  let y: SymbolicTensor;
  if (group > 1 && group === ci) {
    // One group per input channel: a depthwise convolution; output channel c*M + m reads channel c,
    // so the [kh, kw, 1, C*M] kernel is the depthwise [kh, kw, C, M] as it lies in memory.
    weights[0].shape = [kh, kw, ci, co / ci];
    y = ctx.apply((name) => new DepthwiseConv2D({ name, ...geometry, depthMultiplier: co / ci }), st, weights);
  } else {
    y = ctx.apply((name) => new Conv2D({ name, filters: co, groups: group, ...geometry }), st, weights);
  }
  const [, h, wd] = x.dims;
  checkImageShape(ctx, y, [co, windowOutput(h, kh, win.strides[0], win.dilations[0], win.pads[0], win.pads[2], false),
    windowOutput(wd, kw, win.strides[1], win.dilations[1], win.pads[1], win.pads[3], false)]);
  return imageOut(y);
};

/**
 * ConvTranspose (PyTorch's ConvTranspose2d) as a 'valid' Conv2DTranspose with ONNX's
 * output_padding, which makes the uncropped (in - 1) * stride + k_eff + output_padding cells,
 * then a Cropping2D of ONNX's pads. W [in, out, kh, kw] becomes Keras's [kh, kw, out, in].
 */
export const convTranspose: Handler = (ctx) => {
  unread(ctx, ['auto_pad', 'dilations', 'group', 'kernel_shape', 'output_padding', 'pads', 'strides']);
  const x = image(ctx);
  const w = constInput(ctx, 1, 'W');
  const b = ctx.inputs[2] ? constInput(ctx, 2, 'B') : undefined;
  if (w.dims.length !== 4) throw fail(ctx, `W must be 4-D (a 2-D transposed convolution), got [${w.dims.join(', ')}]`);
  const [ci, co, kh, kw] = w.dims;
  const group = ctx.attrs.int('group', 1);
  if (group !== 1) throw fail(ctx, `group ${group}: convkit's Conv2DTranspose has no groups`);
  if (ci !== x.dims[0]) throw fail(ctx, `W [${w.dims.join(', ')}] does not fit ${x.dims[0]} input channels`);
  if (b && count(b.dims) !== co) throw fail(ctx, `B has ${count(b.dims)} values for ${co} output channels`);
  const kernelAttr = ctx.attrs.ints('kernel_shape');
  if (kernelAttr && kernelAttr.join() !== [kh, kw].join()) throw fail(ctx, `kernel_shape [${kernelAttr.join(', ')}] differs from W's [${kh}, ${kw}]`);
  const autoPad = ctx.attrs.string('auto_pad', 'NOTSET');
  if (autoPad !== 'NOTSET' && autoPad !== 'VALID') throw fail(ctx, `auto_pad '${autoPad}': give the pads (PyTorch's export does)`);
  const pads = autoPad === 'VALID' ? [0, 0, 0, 0] : ctx.attrs.ints('pads') ?? [0, 0, 0, 0];
  if (pads.length !== 4 || pads.some((p) => !Number.isInteger(p) || p < 0)) throw fail(ctx, `pads must be 4 non-negative integers, got [${pads.join(', ')}]`);
  const strides = ctx.attrs.ints('strides') ?? [1, 1];
  const dilations = ctx.attrs.ints('dilations') ?? [1, 1];
  const outputPadding = ctx.attrs.ints('output_padding') ?? [0, 0];
  if (strides.length !== 2 || dilations.length !== 2 || outputPadding.length !== 2) throw fail(ctx, 'strides, dilations and output_padding must have 2 values each');
  if (outputPadding.some((p, a) => !(p >= 0 && p < strides[a]))) {
    throw fail(ctx, `output_padding [${outputPadding.join(', ')}] must be smaller than the strides [${strides.join(', ')}], as Keras requires`);
  }
  const kernel = new Float32Array(w.data.length);
  const data = floats(w);
  for (let i = 0; i < ci; i++)
    for (let o = 0; o < co; o++)
      for (let y = 0; y < kh; y++)
        for (let z = 0; z < kw; z++) kernel[((y * kw + z) * co + o) * ci + i] = data[((i * co + o) * kh + y) * kw + z];
  const weights: { data: Float32Array; shape: number[] }[] = [{ data: kernel, shape: [kh, kw, co, ci] }];
  if (b) weights.push({ data: floats(b), shape: [co] });
  let y = ctx.apply((name) => new Conv2DTranspose({
    name, filters: co, kernelSize: [kh, kw], strides: [strides[0], strides[1]], dilationRate: [dilations[0], dilations[1]],
    padding: 'valid', outputPadding: [outputPadding[0], outputPadding[1]], useBias: Boolean(b),
  }), x.st, weights);
  const [t, l, bottom, r] = pads;
  if (t + l + bottom + r > 0) y = ctx.apply((name) => new Cropping2D({ name, cropping: [[t, bottom], [l, r]] }), y, undefined, 'crop');
  const size = (a: number) => strides[a] * (x.dims[1 + a] - 1) + outputPadding[a] + (w.dims[2 + a] - 1) * dilations[a] + 1 - pads[a] - pads[a + 2];
  checkImageShape(ctx, y, [co, size(0), size(1)]);
  return imageOut(y);
};

// ---- pooling ----

export function pool(kind: 'max' | 'average'): Handler {
  return (ctx) => {
    unread(ctx, ['auto_pad', 'ceil_mode', 'kernel_shape', 'pads', 'strides', ...(kind === 'max' ? ['dilations', 'storage_order'] : ['count_include_pad'])]);
    if ((ctx.node.output ?? []).length > 1 && ctx.node.output![1]) throw fail(ctx, 'the Indices output has no convkit form');
    const x = image(ctx);
    const win = window(ctx, x, ctx.attrs.ints('kernel_shape') ?? []);
    if (win.dilations.some((d) => d !== 1)) throw fail(ctx, `dilations [${win.dilations.join(', ')}]: convkit pools without dilation`);
    const [, h, w] = x.dims;
    const size = (ceil: boolean) => [windowOutput(h, win.kernel[0], win.strides[0], 1, win.pads[0], win.pads[2], ceil),
      windowOutput(w, win.kernel[1], win.strides[1], 1, win.pads[1], win.pads[3], ceil)];
    const ceil = ctx.attrs.int('ceil_mode', 0) === 1;
    if (ceil && size(true).join() !== size(false).join()) throw fail(ctx, 'ceil_mode 1 adds a partial window convkit does not compute');
    // Zeros padded in front of a max pool change nothing when the input is never negative and
    // every window holds a real cell; an average counting its padding averages those zeros.
    const zeroPadOk = kind === 'max'
      ? (x.nonNegative && win.pads.every((p, i) => p < win.kernel[i % 2])) || 'a max pool pads with -inf, which zeros match only after a ReLU'
      : ctx.attrs.int('count_include_pad', 0) === 1 || 'count_include_pad 0 averages only real cells, which convkit does with its own \'same\' pads only';
    const { st, padding } = padded(ctx, x, win, zeroPadOk);
    const args = { poolSize: win.kernel, strides: win.strides, padding };
    const y = ctx.apply((name) => (kind === 'max' ? new MaxPooling2D({ name, ...args }) : new AveragePooling2D({ name, ...args })), st);
    checkImageShape(ctx, y, [x.dims[0], ...size(false)]);
    return imageOut(y, x.nonNegative);
  };
}

export function globalPool(kind: 'max' | 'average'): Handler {
  return (ctx) => {
    unread(ctx, []);
    const x = image(ctx);
    const y = ctx.apply((name) => (kind === 'max' ? new GlobalMaxPooling2D({ name, keepDims: true }) : new GlobalAveragePooling2D({ name, keepDims: true })), x.st);
    return imageOut(y, x.nonNegative);
  };
}

/**
 * ReduceMean / ReduceMax over an image's two spatial axes (TensorFlow's GlobalAveragePooling2D
 * as tf2onnx writes it: axes [1, 2] of an NHWC value, [2, 3] once transposed; an attribute
 * before opset 18, an input from 18): GlobalAveragePooling2D / GlobalMaxPooling2D.
 */
export function reduce(kind: 'max' | 'average'): Handler {
  return (ctx) => {
    unread(ctx, ['axes', 'keepdims', 'noop_with_empty_axes']);
    const x = tensorInput(ctx, 0);
    if (!x.axes) throw fail(ctx, `reduces a vector of ${x.dims[0]} features; convkit reduces the spatial axes of an image only`);
    const given = ctx.opset >= 18 ? (ctx.inputs[1] ? [...constInput(ctx, 1, 'axes').data] : undefined) : ctx.attrs.ints('axes');
    if (!given || given.length === 0) {
      if (ctx.attrs.int('noop_with_empty_axes', 0) === 1) return x;
      throw fail(ctx, 'reduces every axis (no axes given); convkit reduces the spatial axes only');
    }
    const reduced = given.map((a) => (a < 0 ? a + 4 : a)).map((a) => (a >= 1 && a <= 3 ? x.axes![a - 1] : 0)).sort();
    if (reduced.join() !== '1,2') {
      throw fail(ctx, `axes [${given.join(', ')}] of [N, ${x.dims.join(', ')}] are not the image's two spatial axes (${[1, 2].map((ck) => x.axes!.indexOf(ck) + 1).join(', ')})`);
    }
    const keepDims = ctx.attrs.int('keepdims', 1) === 1;
    const Pool = kind === 'max' ? GlobalMaxPooling2D : GlobalAveragePooling2D;
    const y = ctx.apply((name) => new Pool({ name, keepDims }), x.st);
    if (!keepDims) return vectorOut(y, null, x.nonNegative);
    return { ...x, st: y, dims: x.dims.map((d, a) => (x.axes![a] === 3 ? d : 1)) };
  };
}

// ---- padding, resizing ----

/** Pad by zeros of an image's spatial axes, whichever ONNX axes hold them (tf2onnx pads NHWC values). */
export const pad: Handler = (ctx) => {
  unread(ctx, ['mode', 'pads', 'value']);
  const x = tensorInput(ctx, 0);
  if (!x.axes) throw fail(ctx, `pads a vector of ${x.dims[0]} features; convkit pads the spatial axes of an image`);
  const mode = ctx.attrs.string('mode', 'constant');
  if (mode !== 'constant') throw fail(ctx, `mode '${mode}': convkit pads with zeros only`);
  const pads = ctx.opset >= 11 ? [...constInput(ctx, 1, 'pads').data] : ctx.attrs.ints('pads') ?? [];
  const value = ctx.opset >= 11 ? (ctx.inputs[2] ? Number(constInput(ctx, 2, 'constant_value').data[0] ?? 0) : 0) : ctx.attrs.float('value', 0);
  if (value !== 0) throw fail(ctx, `constant_value ${value}: convkit pads with zeros only`);
  const channelAxis = x.axes.indexOf(3) + 1;
  if (pads.length !== 8 || pads.some((p) => !Number.isInteger(p) || p < 0) || pads[0] || pads[4] || pads[channelAxis] || pads[channelAxis + 4]) {
    throw fail(ctx, `pads [${pads.join(', ')}]: convkit pads the two spatial axes, by non-negative amounts`);
  }
  const [top, left] = [1, 2].map((ck) => x.axes!.indexOf(ck) + 1);
  const y = ctx.apply((name) => new ZeroPadding2D({ name, padding: [[pads[top], pads[top + 4]], [pads[left], pads[left + 4]]] }), x.st);
  return { ...x, st: y, dims: x.dims.map((d, a) => d + pads[a + 1] + pads[a + 5]), nonNegative: x.nonNegative };
};

/** Slice of an image's height and width (step 1): Cropping2D, as convkit exports it. */
export const slice: Handler = (ctx) => {
  unread(ctx, []);
  if (ctx.opset < 10) throw fail(ctx, 'Slice before opset 10 (starts/ends as attributes) is not supported');
  const x = image(ctx);
  const dims = [0, ...x.dims];  // NCHW, the batch left as is
  const list = (k: number, what: string, fallback: number[]) => (ctx.inputs[k] ? [...constInput(ctx, k, what).data].map(Number) : fallback);
  const starts = list(1, 'starts', []);
  const ends = list(2, 'ends', []);
  const axes = list(3, 'axes', starts.map((_, i) => i)).map((a) => (a < 0 ? a + 4 : a));
  const steps = list(4, 'steps', starts.map(() => 1));
  if (starts.length !== ends.length || axes.length !== starts.length || steps.length !== starts.length) {
    throw fail(ctx, 'starts, ends, axes and steps must have as many values');
  }
  const crop = [[0, 0], [0, 0]];
  axes.forEach((axis, i) => {
    if (axis !== 2 && axis !== 3) throw fail(ctx, `axis ${axis}: convkit crops only the height and width (axes 2 and 3)`);
    if (steps[i] !== 1) throw fail(ctx, `step ${steps[i]}: convkit crops with step 1`);
    const n = dims[axis];
    const at = (v: number) => Math.min(Math.max(v < 0 ? v + n : v, 0), n);  // ONNX's clamping
    const [s, e] = [at(starts[i]), at(ends[i])];
    if (e <= s) throw fail(ctx, `the slice [${starts[i]}, ${ends[i]}) of axis ${axis} (${n} cells) is empty`);
    crop[axis - 2] = [s, n - e];
  });
  const y = ctx.apply((name) => new Cropping2D({ name, cropping: crop as [[number, number], [number, number]] }), x.st);
  return imageOut(y, x.nonNegative);
};

/** An UpSampling2D by the whole factors `scales` (NCHW) gives the height and width. */
function upSampling(ctx: OpContext, x: TensorValue, scales: number[], interpolation: 'nearest' | 'bilinear', halfPixelCenters: boolean) {
  if (scales.length !== 4 || scales[0] !== 1 || scales[1] !== 1 || !scales.slice(2).every((s) => Number.isInteger(s) && s >= 1)) {
    throw fail(ctx, `scales [${scales.join(', ')}]: convkit up-samples height and width by whole factors`);
  }
  const y = ctx.apply((name) => new UpSampling2D({ name, size: [scales[2], scales[3]], interpolation, halfPixelCenters }), x.st);
  return imageOut(y, x.nonNegative);
}

export const resize: Handler = (ctx) => {
  unread(ctx, ['mode', 'coordinate_transformation_mode', 'nearest_mode', 'cubic_coeff_a', 'exclude_outside', 'extrapolation_value']);
  const x = image(ctx);
  const mode = ctx.attrs.string('mode', 'nearest');
  const coordinates = ctx.attrs.string('coordinate_transformation_mode', ctx.opset >= 11 ? 'half_pixel' : 'asymmetric');
  const nearest = ctx.attrs.string('nearest_mode', 'round_prefer_floor');
  // convkit's nearest reads source floor(destination / size); its bilinear interpolates at
  // destination / size, or with halfPixelCenters at (destination + 0.5) / size - 0.5. ONNX's
  // pytorch_half_pixel differs from half_pixel only where an output axis has one cell, which at
  // whole factors means one input cell: both sample 0 there.
  // tf_half_pixel_for_nn (TensorFlow 2's nearest UpSampling2D via tf2onnx) takes
  // floor((destination + 0.5) / size), which is floor(destination / size) at whole factors.
  const halfPixel = coordinates === 'half_pixel' || coordinates === 'pytorch_half_pixel';
  const floorNearest = nearest === 'floor' && (coordinates === 'asymmetric' || coordinates === 'tf_half_pixel_for_nn');
  const interpolation = mode === 'nearest' && floorNearest ? 'nearest'
    : mode === 'linear' && (coordinates === 'asymmetric' || halfPixel) ? 'bilinear' : null;
  if (!interpolation) {
    throw fail(ctx, `mode '${mode}' with coordinate_transformation_mode '${coordinates}'${mode === 'nearest' ? ` and nearest_mode '${nearest}'` : ''} samples differently from convkit's up-sampling (nearest: asymmetric or tf_half_pixel_for_nn + floor; linear: asymmetric, half_pixel or pytorch_half_pixel)`);
  }
  const [c, h, w] = x.dims;
  const scalesInput = ctx.opset >= 11 ? 2 : 1;
  const scales = ctx.inputs[scalesInput] && count((ctx.inputs[scalesInput] as Constant).dims ?? []) > 0
    ? [...constInput(ctx, scalesInput, 'scales').data]
    : ctx.inputs[3] ? [...constInput(ctx, 3, 'sizes').data].map((s, a) => s / [1, c, h, w][a]) : [];
  return upSampling(ctx, x, scales, interpolation, halfPixel);
};

/**
 * Upsample (opsets 7 to 9, Resize's forerunner) samples at destination / scale: nearest takes
 * its floor, linear interpolates there, as convkit's layer does without halfPixelCenters.
 */
export const upsample: Handler = (ctx) => {
  unread(ctx, ['mode', 'scales']);
  const x = image(ctx);
  const mode = ctx.attrs.string('mode', 'nearest');
  const interpolation = mode === 'nearest' ? 'nearest' : mode === 'linear' ? 'bilinear' : null;
  if (!interpolation) throw fail(ctx, `mode '${mode}': convkit up-samples 'nearest' or 'linear'`);
  // Opsets 7 and 8 give the scales as an attribute, 9 as the second input.
  const scales = ctx.opset >= 9 ? [...constInput(ctx, 1, 'scales').data] : ctx.attrs.floats('scales') ?? [];
  return upSampling(ctx, x, scales, interpolation, false);
};
