// convkit: convolutional neural networks for Node.js on native kernels.
import { native, NativeMemory } from './native';
import * as ops from './ops';
import { callbacks as trainingCallbacks } from './callbacks';
import { tensorBoard } from './io/tensorboard';

export { BusyError, ConvkitError, DeviceError, DistributedError, DTypeError, FormatError, IOError, ShapeError, ValueError } from './errors';
export { defaultDevice, fill, ones, Tensor, tensor, zeros } from './tensor';
export type { Device, TensorLike } from './tensor';
export type { NativeMemory as MemoryInfo } from './native';
export { ops };
export * as distributed from './distributed';

/** A CPU kernel set: avx2 and avx512 on x86-64, neon on arm64, scalar everywhere. */
export type Isa = 'avx512' | 'avx2' | 'neon' | 'scalar';

export interface CpuDevice {
  type: 'cpu';
  isa: Isa;
  threads: number;
}

export interface CudaDevice {
  type: 'cuda';
  index: number;
  name: string;
  /** Total device memory. */
  memoryBytes: number;
  /** e.g. '9.0' for Hopper (sm_90). */
  computeCapability: string;
  multiprocessors: number;
}

export interface CudaStatus {
  available: boolean;
  /** Why CUDA cannot be used ('built without CUDA', or the CUDA runtime's message); null if it can. */
  reason: string | null;
  devices: CudaDevice[];
}

/** Whether this build and machine can use CUDA, which GPUs there are, and if not, why. */
export function cudaStatus(): CudaStatus {
  const s = native.cudaStatus();
  return {
    available: s.available,
    reason: s.reason,
    devices: s.devices.map((d) => ({ type: 'cuda' as const, ...d })),
  };
}

/**
 * The devices convkit can run on: the CPU first (which kernels (ISA) and threads it uses), then
 * one entry per CUDA GPU. Without CUDA, only the CPU; ck.cudaStatus() says why.
 */
export function devices(): [CpuDevice, ...CudaDevice[]] {
  const info = native.info();
  return [{ type: 'cpu', isa: info.isa as CpuDevice['isa'], threads: info.threads }, ...cudaStatus().devices];
}

/**
 * Native memory in use: exact counts of live host allocations, and the CUDA caching allocator's
 * figures (device bytes held by live tensors, bytes cached for reuse, their peak, page-locked
 * staging cached); the device figures are 0 without CUDA.
 */
export function memory(): NativeMemory {
  return native.memory();
}

/** Gives the CUDA allocator's cached (free) blocks back to the driver; a no-op without CUDA. */
export function emptyCache(): void {
  native.emptyCache();
}

/**
 * Threads the CPU kernels use (0: one per core). Also settable with CONVKIT_THREADS. Safe while
 * fits and ops run: work already running or queued keeps a consistent split, and later work uses
 * the new count (a running training step finishes on the count it started with).
 */
export function setThreads(n: number): void {
  native.setThreads(n);
}

/**
 * Whether models compiled onto CUDA from now on replay each training step as one CUDA graph
 * (default true; CONVKIT_CUDA_GRAPHS=0 sets false). Off, each step launches its kernels one by
 * one: the same results, more launch overhead. For comparison and debugging.
 */
export function setCudaGraphs(enabled: boolean): void {
  native.setCudaGraphs(enabled);
}

/** The precisions of the GPU's matrix products (see setPrecision). */
export type Precision = 'fp32' | 'tf32' | 'bf16';

/**
 * The math of the GPU's convolutions and dense layers, forward and backward, as PyTorch's
 * `allow_tf32` / autocast: 'fp32' (the default) on the CUDA cores; 'tf32' or 'bf16' on the
 * tensor cores (sm_80 and newer; older GPUs keep fp32), their operands rounded to TF32 (10-bit
 * mantissa) or bfloat16 (7-bit) and the products accumulated in fp32. Weights, activations,
 * gradients and optimizer state stay fp32 (the master copy), so no loss scaling is needed: both
 * formats keep fp32's exponent range. Applies to work queued after the call (ops when called,
 * training steps when fit queues them); the CPU always computes in fp32.
 */
export function setPrecision(precision: Precision): void {
  native.setPrecision(precision);
}

/** The precision set by setPrecision ('fp32' unless changed). */
export function getPrecision(): Precision {
  return native.getPrecision();
}

/** Forces the CPU kernel set (as CONVKIT_ISA does); throws DeviceError if the CPU lacks it. */
export function setIsa(isa: Isa): void {
  native.setIsa(isa);
}

export { layers, registerLayer } from './layers';
export type {
  AugmentInterpolation, Factor, FillMode, FlipMode, RandomBrightnessArgs, RandomContrastArgs, RandomFlipArgs, RandomRotationArgs,
  RandomTranslationArgs, RandomZoomArgs,
} from './layers';
export { Layer, SymbolicTensor } from './layers/layer';
export { LayersModel, History } from './models/layers-model';
export { sequential, Sequential } from './models/sequential';
export { input, model, Functional } from './models/functional';
export { applications } from './applications';
export type { ApplicationArgs, MobileNetArgs, MobileNetV2Args, ResNet20Args, VggArgs } from './applications';
export type { FitArgs } from './models/layers-model';
export type { FitDatasetArgs } from './models/dataset-fit';
export type { CompileArgs, MetricFn } from './models/base';
export { optimizers } from './optimizers';
export { regularizers } from './regularizers';
export { losses } from './losses';
export type { Loss } from './losses';
export { metrics } from './metrics';
export type { Metric } from './metrics';
export type { Regularizer } from './regularizers';
export type { Optimizer } from './optimizers';
export type { LearningRateSchedule } from './schedules';
export { initializers } from './initializers';
/** The callbacks of callbacks.ts and those that write through io/ (tensorBoard). */
export const callbacks = { ...trainingCallbacks, tensorBoard };
export { Callback, schedules } from './callbacks';
export type { TensorBoardArgs } from './io/tensorboard';
export type { CheckpointState, ModelCheckpointArgs } from './callbacks';
export { toCategorical } from './utils';
export { setSeed } from './random';
export { loadModel, modelFromJSON } from './io/load';
export * as io from './io/api';
export { datasets } from './data/datasets';
export { data, AugmentImages, Dataset } from './data';
export type { AugmentOptions, ImageElement, ImageFolderOptions, ImageFolderResult, ImageSplit, ImageOptions } from './data';
export { viz } from './viz';
export type { GridOptions, HistoryLike, Tile, VegaLiteSpec } from './viz';

/** convkit's version (from its package.json). */
export const version: string = (() => {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return String(require('../package.json').version);
  } catch {
    return '0.0.0';
  }
})();
