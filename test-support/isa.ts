// Which CPU kernel sets (ISA paths) this machine can run, and a describe.each-friendly setup that
// forces one per block and restores the original afterwards. describeIsas / describeIsaThreads
// register a block for every ISA: the ones this CPU lacks as skipped, their titles saying why,
// so a run on a machine without AVX-512 reports those tests as skipped instead of leaving them out.
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import * as ck from '../lib';

export type IsaName = 'scalar' | 'avx2' | 'avx512' | 'neon';

/** The kernel set convkit chose at load (the CPU's best or CONVKIT_ISA). */
export const initialIsa: IsaName = ck.devices()[0].isa;

/**
 * Why this CPU cannot run `isa` (ck.setIsa's DeviceError; a ValueError from an addon built
 * before convkit had that kernel set), or null if it can.
 */
function missing(isa: IsaName): string | null {
  try {
    ck.setIsa(isa);
    return null;
  } catch (e) {
    if (e instanceof ck.DeviceError || e instanceof ck.ValueError) return e.message;
    throw e;
  } finally {
    try {
      ck.setIsa(initialIsa);
    } catch {
      /* initialIsa is always supported */
    }
  }
}

/** Every ISA convkit has kernels for, with why this CPU cannot run it (null: it can). */
export const isaSupport: { isa: IsaName; missing: string | null }[] =
  (['scalar', 'avx2', 'avx512', 'neon'] as IsaName[]).map((isa) => ({ isa, missing: missing(isa) }));

/** Every ISA this CPU supports: ck.setIsa throws DeviceError for the others. */
export const isas: IsaName[] = isaSupport.filter((s) => s.missing === null).map((s) => s.isa);

/** The thread counts describeIsaThreads and isaThreads run each ISA at (work splits differ). */
const THREAD_COUNTS = [1, 3];

/** `title` with jest's each-placeholders filled in order: %s, %i, %d, %p. */
function format(title: string, values: unknown[]): string {
  let i = 0;
  return title.replace(/%[sidp]/g, (m) => (i < values.length ? String(values[i++]) : m));
}

/**
 * describe.each(isas)(title, fn) over every ISA: a block per ISA this CPU runs, and a skipped one,
 * titled with the reason, per ISA it lacks.
 */
export function describeIsas(title: string, fn: (isa: IsaName) => void): void {
  for (const { isa, missing: why } of isaSupport) {
    if (why === null) describe(format(title, [isa]), () => fn(isa));
    else describe.skip(`${format(title, [isa])} (skipped: ${why})`, () => fn(isa));
  }
}

/** describe.each(isaThreads)(title, fn) likewise: the ISAs this CPU lacks are skipped blocks. */
export function describeIsaThreads(title: string, fn: (isa: IsaName, threads: number) => void): void {
  for (const { isa, missing: why } of isaSupport) {
    for (const threads of THREAD_COUNTS) {
      if (why === null) describe(format(title, [isa, threads]), () => fn(isa, threads));
      else describe.skip(`${format(title, [isa, threads])} (skipped: ${why})`, () => fn(isa, threads));
    }
  }
}

/** Call inside describeIsas: forces `isa` for the block and checks it took effect. */
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

/** Every (isa, threads) pair for describe.each: the ISAs this CPU runs at 1 thread and at 3 threads. */
export const isaThreads: [IsaName, number][] = isas.flatMap((isa) => THREAD_COUNTS.map((n) => [isa, n] as [IsaName, number]));
