// mulberry32 (lib/rng.ts), the one definition that augmentation, the test data
// (test-support/reference.ts), the GPU parity cases and the fuzzer's cases draw from: its numbers
// are those of the published C generator, and the augment worker, which runs its source text,
// draws from it.
import { describe, expect, test } from '@jest/globals';
import * as ck from '../lib';
import { augmentKernel, checkAugment } from '../lib/data/augment';
import { mulberry32 } from '../lib/rng';

const draws = (next: () => number, n: number) => Array.from({ length: n }, () => next() * 2 ** 32);

describe('mulberry32', () => {
  // From Tommy Ettinger's C code compiled with gcc (uint32_t arithmetic throughout):
  //   z = (*a += 0x6D2B79F5u); z = (z ^ (z >> 15)) * (z | 1u); z ^= z + (z ^ (z >> 7)) * (z | 61u);
  //   return z ^ (z >> 14);
  // and, keyed, the same with `^ key` after the addition.
  test.each([
    [0, [1144304738, 1416247, 958946056, 627933444]],
    [1, [2693262067, 11749833, 2265367787, 4213581821]],
    [42, [2581720956, 1925393290, 3661312704, 2876485805]],
    [0xffffffff, [3850105811, 813802916, 3073704848, 4054706436]],
  ])('seed %d gives the C generator\'s numbers, over 2^32', (seed, want) => {
    expect(draws(mulberry32(seed), 4)).toEqual(want);
  });

  test('a key is XORed into the state before mixing', () => {
    expect(draws(mulberry32(7, 0x9e3779b9), 4)).toEqual([2410552966, 1267401276, 3578688766, 2341652327]);
  });

  test('seeds are taken modulo 2^32', () => {
    expect(draws(mulberry32(2 ** 32 + 42), 4)).toEqual(draws(mulberry32(42), 4));
    expect(draws(mulberry32(-1), 4)).toEqual(draws(mulberry32(0xffffffff), 4));
  });
});

test('the augment worker draws from mulberry32(seed), as augmentKernel does in this thread', async () => {
  const shape = [3, 6, 5, 2];
  const src = new Float32Array(shape.reduce((a, b) => a * b, 1)).map((_, i) => ((i * 37) % 101) / 100);
  const options = { flip: true, crop: 0.2, zoom: 0.3, brightness: 0.25 };
  const seed = 0xdeadbeef;
  const worker = await ck.data.augment(ck.tensor(src, shape), options, { seed });
  const here = augmentKernel(src, shape, checkAugment(options), mulberry32(seed));
  expect(Array.from(worker.dataSync())).toEqual(Array.from(here));
  const other = augmentKernel(src, shape, checkAugment(options), mulberry32(seed + 1));
  expect(Array.from(other)).not.toEqual(Array.from(here));
});
