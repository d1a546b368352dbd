// convkit: convolutional neural networks for Node.js on native kernels.
import { native } from './native';
import * as ops from './ops';

export { ConvkitError, DeviceError, DTypeError, FormatError, ShapeError, ValueError } from './errors';
export { fill, ones, Tensor, tensor, zeros } from './tensor';
export type { Device, TensorLike } from './tensor';
export { ops };

export interface CpuDevice {
  type: 'cpu';
  isa: 'avx512' | 'avx2' | 'scalar';
  threads: number;
}

/** The devices convkit can run on. The CPU entry says which kernels (ISA) and threads it uses. */
export function devices(): CpuDevice[] {
  const info = native.info();
  return [{ type: 'cpu', isa: info.isa as CpuDevice['isa'], threads: info.threads }];
}

/** Native memory in use (exact counts of live host allocations). */
export function memory(): { hostBytes: number; hostAllocations: number; hostPeakBytes: number } {
  return native.memory();
}

/** Threads the CPU kernels use (0: one per core). Also settable with CONVKIT_THREADS. */
export function setThreads(n: number): void {
  native.setThreads(n);
}

/** Forces the CPU kernel set (as CONVKIT_ISA does); throws DeviceError if the CPU lacks it. */
export function setIsa(isa: 'avx512' | 'avx2' | 'scalar'): void {
  native.setIsa(isa);
}

export { layers, registerLayer } from './layers';
export { Layer } from './layers/layer';
export { sequential, Sequential, History } from './models/sequential';
export type { FitArgs } from './models/sequential';
export type { FitDatasetArgs } from './models/dataset-fit';
export type { CompileArgs, MetricFn } from './models/base';
export { optimizers } from './optimizers';
export type { Optimizer } from './optimizers';
export { initializers } from './initializers';
export { callbacks, Callback, schedules } from './callbacks';
export { toCategorical } from './utils';
export { setSeed } from './random';
export { loadModel, modelFromJSON } from './io/files';
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
