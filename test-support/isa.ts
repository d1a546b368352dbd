// Which CPU kernel sets (ISA paths) this machine can run, and a describe.each-friendly setup that
// forces one per block and restores the original afterwards.
import { afterAll, beforeAll, expect } from '@jest/globals';
import * as ck from '../lib';

export type IsaName = 'scalar' | 'avx2' | 'avx512';

/** The kernel set convkit chose at load (cpuid or CONVKIT_ISA). */
export const initialIsa: IsaName = ck.devices()[0].isa;

/** Every ISA this CPU supports: ck.setIsa throws DeviceError for the others. */
export const isas: IsaName[] = (['scalar', 'avx2', 'avx512'] as IsaName[]).filter((isa) => {
  try {
    ck.setIsa(isa);
    return true;
  } catch (e) {
    if (e instanceof ck.DeviceError) return false;
    throw e;
  } finally {
    try {
      ck.setIsa(initialIsa);
    } catch {
      /* initialIsa is always supported */
    }
  }
});

/** Call inside describe.each(isas): forces `isa` for the block and checks it took effect. */
export function useIsa(isa: IsaName): void {
  beforeAll(() => {
    ck.setIsa(isa);
    expect(ck.devices()[0].isa).toBe(isa);
  });
  afterAll(() => ck.setIsa(initialIsa));
}

/** A tensor over a copy of `data` (tests keep their own arrays unaliased). */
export function t(data: ArrayLike<number>, shape: readonly number[]): ck.Tensor {
  return ck.tensor(Float32Array.from(data), [...shape]);
}

/** Values of a tensor (blocking), copied so later disposal cannot matter. */
export function vals(x: ck.Tensor): Float32Array {
  return Float32Array.from(x.dataSync());
}

/** The thread count convkit started with (CONVKIT_THREADS or one per core). */
export const initialThreads: number = ck.devices()[0].threads;

/** Call inside a describe: runs the block with `n` kernel threads (work splits differ). */
export function useThreads(n: number): void {
  beforeAll(() => {
    ck.setThreads(n);
    expect(ck.devices()[0].threads).toBe(n);
  });
  afterAll(() => ck.setThreads(initialThreads));
}

/** Every (isa, threads) pair for describe.each: the ISAs at 1 thread and at 3 threads. */
export const isaThreads: [IsaName, number][] = isas.flatMap((isa) => [[isa, 1], [isa, 3]] as [IsaName, number][]);
