// The one place the native addon is loaded (node-gyp-build: the local build wins, else the bundled
// prebuild for this platform and architecture; CONVKIT_ADDON=path/to/convkit.node loads that file
// instead, e.g. a CUDA build in build-gpu/), and its typed interface. Nothing else in lib/
// requires the addon.
import * as path from 'path';
import { DeviceError } from './errors';
import type { NativeMetric } from './metrics';

export interface NativeHandle {
  shape(): number[];
  device(): 'cpu' | 'cuda';
  disposed(): boolean;
  dispose(): void;
  dataSync(): Float32Array;
  data(): Promise<Float32Array>;
}

type H = NativeHandle;
type Opt = NativeHandle | null;
export type Padding = 'valid' | 'same';
// The options objects the op bindings read by name (every key required: lib/ops fills defaults).
type ConvOpts = { strides: [number, number]; padding: Padding; dilation: [number, number] };
type PoolOpts = { poolSize: [number, number]; strides: [number, number]; padding: Padding };
type PadOpts = { top: number; bottom: number; left: number; right: number };
type UpOpts = { size: [number, number]; interpolation: string; halfPixelCenters: boolean };
type ImageSamplingOpts = { interpolation: string; fillMode: string; fillValue: number };
type ValueRangeOpts = { valueLow: number; valueHigh: number };

export interface NativeGpu {
  index: number;
  name: string;
  memoryBytes: number;
  computeCapability: string;
  multiprocessors: number;
}

export interface NativeCudaStatus {
  available: boolean;
  /** Why CUDA is unavailable ('built without CUDA', or the CUDA runtime's message); null if available. */
  reason: string | null;
  devices: NativeGpu[];
}

export interface NativeMemory {
  hostBytes: number;
  hostAllocations: number;
  hostPeakBytes: number;
  deviceBytes: number;
  deviceAllocations: number;
  deviceCachedBytes: number;
  devicePeakBytes: number;
  pinnedCachedBytes: number;
}

export interface StepSums {
  lossSum: number;
  correct: number;
  count: number;
  /** Per model output: its summed loss and correct count. */
  outputLoss: number[];
  outputCorrect: number[];
  /** Per model output, each compiled built-in metric's counts in turn (see lib/metrics.ts). */
  metricSums: number[];
}

export interface NativeParamInfo {
  layer: number;
  name: string;
  shape: number[];
  trainable: boolean;
}

/** The network executor (native/core/net.h): one call per training batch. */
export interface NativeNet {
  params(): NativeParamInfo[];
  compile(loss: { name: string; fromLogits: boolean; labelSmoothing: number; delta: number }, optimizer: Record<string, unknown>,
    accuracy: boolean, metrics: NativeMetric[]): void;
  /** Moves the weights; throws DeviceError when CUDA is unavailable or cannot run a layer. */
  setDevice(device: 'cpu' | 'cuda'): void;
  device(): 'cpu' | 'cuda';
  /** Step graphs captured so far (CUDA nets; diagnostics). */
  cudaGraphCaptures(): number;
  setTrainable(layer: number, trainable: boolean): void;
  setLearningRate(lr: number): void;
  /** The weights (params() indices) whose L1/L2 penalty joins the training loss. */
  setRegularizers(penalties: { param: number; l1: number; l2: number }[]): void;
  setDynamicBatching(maxRows: number): void;
  inferenceCounts(): { calls: number; tasks: number };
  /** Data-parallel steps sum their gradients over the MPI job, in buckets of bucketFloats, from now on (null: no longer). */
  setDistributed(timeoutMs: number | null, bucketFloats?: number, syncBatchNorm?: boolean, orderedSum?: boolean): void;
  /**
   * globalBatch > 0: a data-parallel step; `rows` (maybe none) are this process's share, from the
   * global batch's row firstRow (dropout draws the masks of those global rows).
   * sampleWeight: [one [N] tensor of per-example loss weights] (fit's sampleWeight, classWeight).
   * slices > 1: the gradient is the sum, in slice order, of the rows' slices' (fit's gradientSlices).
   */
  trainStep(xs: H[], ys: H[], rows: Int32Array, seed: number, globalBatch?: number | null, sampleWeight?: H[] | null,
    firstRow?: number, slices?: number): Promise<StepSums>;
  evalStep(xs: H[], ys: H[], rows: Int32Array, sampleWeight?: H[]): Promise<StepSums>;
  layerOutputs(xs: H[], start: number, count: number, layers: number[], batchSize: number): H[];
  getParam(index: number): H;
  setParam(index: number, value: H): void;
  getOptimizerState(): H[];
  setOptimizerState(state: H[], iterations: number): void;
  iterations(): Promise<number>;
  resetMetrics(): void;
  /** Zeroes the evaluation sums only (an evaluation beside a fit). */
  resetEvalMetrics(): void;
  synchronize(): Promise<void>;
}

export interface NativeBinding {
  TensorHandle: Function;
  /** inputShapes: per model input; outputs: value ids (0..I-1 inputs, I+j native layer j). */
  Net: new (inputShapes: number[][], layers: object[], outputs: number[]) => NativeNet;
  fromArray(data: Float32Array, shape: number[]): H;
  fill(shape: number[], value: number): H;
  reshape(x: H, shape: number[]): H;
  setErrorClasses(classes: Record<string, Function>): void;
  info(): { isa: string; bestIsa: string; threads: number; threadsFrom: string };
  setIsa(isa: string): void;
  setThreads(n: number): void;
  setCudaGraphs(enabled: boolean): void;
  setPrecision(precision: string): void;
  getPrecision(): 'fp32' | 'tf32' | 'bf16';
  memory(): NativeMemory;
  synchronize(): void;
  toDevice(x: H, device: 'cpu' | 'cuda'): H;
  cudaStatus(): NativeCudaStatus;
  emptyCache(): void;
  /** The MPI communicator (native/addon/addon_mpi.cpp): every call runs on its communication thread. */
  resizeImage(options: {
    pixels: Uint8Array; height: number; width: number; channels: number;
    outHeight: number; outWidth: number; interpolation: 'bilinear' | 'nearest';
  }): Uint8Array;
  decodeJpeg(options: {
    bytes?: Uint8Array; path?: string; channels: 1 | 3; outHeight: number; outWidth: number;
    interpolation: 'bilinear' | 'nearest'; unitFloats?: boolean;
  }): Promise<Uint8Array | Float32Array | null>;
  jpegLibrary(): string | null;
  augmentImages(options: {
    images: Float32Array; shape: number[]; flip: boolean; crop: number; zoom: number; brightness: number; seed: number;
  }): Promise<Float32Array>;
  mpiInit(timeoutMs: number): Promise<{ rank: number; size: number; localRank: number }>;
  /** The sum over the ranks: a new tensor, or undefined in place (x holds it). */
  mpiAllreduce(x: H, timeoutMs: number, inPlace: boolean, ordered?: boolean): Promise<H | undefined>;
  mpiBroadcast(x: H, root: number, timeoutMs: number): Promise<H>;
  mpiBarrier(timeoutMs: number): Promise<void>;
  /** A data-parallel fit's sync point outside a step: what failed (null: nothing) and every rank's value. */
  mpiSync(failure: string | null, value: number, timeoutMs: number): Promise<{ failed: string | null; values: number[] }>;
  mpiFinalize(timeoutMs: number): void;

  conv2d(x: H, w: H, b: Opt, o: ConvOpts & { activation: string; groups: number }): H;
  conv2dGrad(dy: H, x: H, w: H, o: ConvOpts & { withBias: boolean; groups: number }): { dx: H; dw: H; db?: H };
  depthwiseConv2d(x: H, w: H, b: Opt, o: ConvOpts & { activation: string }): H;
  conv2dTranspose(x: H, w: H, b: Opt, o: ConvOpts & { outputPadding: [number, number]; activation: string }): H;
  conv2dTransposeGrad(dy: H, x: H, w: H, o: ConvOpts & { outputPadding: [number, number]; withBias: boolean }): { dx: H; dw: H; db?: H };
  depthwiseConv2dGrad(dy: H, x: H, w: H, o: ConvOpts & { withBias: boolean }): { dx: H; dw: H; db?: H };
  dense(x: H, w: H, b: Opt, o: { activation: string }): H;
  denseGrad(dy: H, x: H, w: H, o: { withBias: boolean }): { dx: H; dw: H; db?: H };
  maxPool2d(x: H, o: PoolOpts): H;
  maxPool2dGrad(dy: H, x: H, o: PoolOpts): H;
  avgPool2d(x: H, o: PoolOpts): H;
  avgPool2dGrad(dy: H, x: H, o: PoolOpts): H;
  lpPool2d(x: H, o: PoolOpts & { p: number }): H;
  lpPool2dGrad(dy: H, x: H, o: PoolOpts & { p: number }): H;
  zeroPadding2d(x: H, o: PadOpts): H;
  zeroPadding2dGrad(dy: H, x: H, o: PadOpts): H;
  upSampling2d(x: H, o: UpOpts): H;
  upSampling2dGrad(dy: H, x: H, o: UpOpts): H;
  imageTransform(images: H, transforms: H, o: ImageSamplingOpts): H;
  imageTransformGrad(dy: H, transforms: H, o: ImageSamplingOpts): H;
  imageContrast(images: H, factors: H, o: ValueRangeOpts): H;
  imageContrastGrad(dy: H, images: H, factors: H, o: ValueRangeOpts): H;
  imageBrightness(images: H, deltas: H, o: ValueRangeOpts): H;
  imageBrightnessGrad(dy: H, images: H, deltas: H, o: ValueRangeOpts): H;
  globalMaxPool(x: H): H;
  globalMaxPoolGrad(dy: H, x: H): H;
  globalAvgPool(x: H): H;
  globalAvgPoolGrad(dy: H, x: H): H;
  activation(x: H, o: { activation: string; alpha: number }): H;
  /** The second tensor is the output y, or the input x for the activations from gelu on. */
  activationGrad(dy: H, yOrX: H, o: { activation: string; alpha: number }): H;
  softmax(x: H): H;
  softmaxGrad(dy: H, y: H): H;
  dropout(x: H, o: { rate: number; seed: number }): { y: H; mask: H };
  mul(a: H, b: H): H;
  mulGrad(dy: H, a: H, b: H): { da: H; db: H };
  add(a: H, b: H): H;
  concatenate(parts: H[]): H;
  concatenateGrad(dy: H, parts: H[]): H[];
  batchNormTrain(x: H, gamma: Opt, beta: Opt, movingMean: Opt, movingVar: Opt,
    o: { epsilon: number; momentum: number }): { y: H; mean: H; invstd: H };
  batchNormInfer(x: H, gamma: Opt, beta: Opt, mean: H, variance: H, o: { epsilon: number }): H;
  batchNormGrad(dy: H, x: H, mean: H, invstd: H, gamma: Opt): { dx: H; dgamma: H; dbeta: H };
  softmaxCrossEntropy(logits: H, labels: H, o: { sparse: boolean }): { loss: H; grad: H };
  binaryCrossEntropy(input: H, target: H, o: { fromLogits: boolean }): { loss: H; grad: H };
  meanSquaredError(y: H, target: H): { loss: H; grad: H };
  sgdUpdate(w: H, g: H, velocity: Opt, o: { learningRate: number; momentum: number; nesterov: boolean }): void;
  adamUpdate(w: H, g: H, m: H, v: H, o: {
    learningRate: number; beta1: number; beta2: number; epsilon: number; weightDecay: number; step: number;
  }): void;
  rmspropUpdate(w: H, g: H, ms: H, mom: Opt, mg: Opt, o: {
    learningRate: number; rho: number; momentum: number; epsilon: number; centered: boolean;
  }): void;
}

// eslint-disable-next-line @typescript-eslint/no-var-requires
const nodeGypBuild: { resolve(dir: string): string } = require('node-gyp-build');

export type Libc = 'glibc' | 'musl' | null;

/**
 * The C library this Node runs on: 'glibc' or 'musl' on Linux, null elsewhere. Node's diagnostic
 * report names the glibc it runs on and has no such field on musl (node-gyp-build itself only
 * looks for /etc/alpine-release, which other musl distributions lack).
 */
export function hostLibc(
  platform: string = process.platform,
  report: () => object = () => process.report.getReport(),
): Libc {
  if (platform !== 'linux') return null;
  const header = (report() as { header?: { glibcVersionRuntime?: string } }).header;
  return header && header.glibcVersionRuntime ? 'glibc' : 'musl';
}

const sourceBuildHint = 'build it from source: a C++ compiler, CMake and Python ' +
  '(Alpine: apk add build-base cmake python3), then npm rebuild convkit (docs/platforms.md)';

/**
 * The addon file in the package at `root`: node-gyp-build's choice (build/Release, else the
 * prebuild whose file name tags this platform, architecture and C library), except that on musl
 * a prebuild not tagged musl is refused: every Linux prebuild convkit ships is linked against
 * glibc, and on musl it would fail to load or, under a glibc shim, misbehave. No addon at all is
 * a DeviceError that says how to build one. `libc` is asked only when a prebuild was chosen.
 */
export function addonFile(
  root: string,
  libc: () => Libc = hostLibc,
  resolve: (dir: string) => string = nodeGypBuild.resolve,
): string {
  const target = `${process.platform}-${process.arch}`;
  let file: string;
  try {
    file = resolve(root);
  } catch (e) {
    throw new DeviceError(`convkit: no native addon for ${target} in ${root} ` +
      `(${String((e as Error).message).trim()}): ${sourceBuildHint}`);
  }
  const inPrebuilds = path.relative(root, file).split(path.sep)[0] === 'prebuilds';
  if (inPrebuilds && !path.basename(file).split('.').includes('musl') && libc() === 'musl') {
    throw new DeviceError(`convkit: the prebuilt addon ${path.relative(root, file)} is built ` +
      `against glibc and this Node runs on musl (${target}): ${sourceBuildHint}`);
  }
  return file;
}

const addonPath = process.env.CONVKIT_ADDON;
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const native = require(addonPath ? path.resolve(addonPath) : addonFile(path.join(__dirname, '..'))) as NativeBinding;
