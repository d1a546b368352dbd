// mulberry32 (lib/rng.ts), the one definition that augmentation, the test data
// (test-support/reference.ts), the GPU parity cases and the fuzzer's cases draw from: its numbers
// are those of the published C generator, and native augmentation (native/core/image_augment.cpp)
// draws the same numbers.
import { describe, expect, test } from '@jest/globals';
import * as ck from '../lib';
import { checkAugment } from '../lib/data/augment';
import { mulberry32 } from '../lib/rng';
import { augmentReference } from '../test-support/reference';

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

describe('native augmentation draws from mulberry32(seed) and gives the plain-JS reference\'s pixels', () => {
  test.each([
    [[3, 6, 5, 2], { flip: true, crop: 0.2, zoom: 0.3, brightness: 0.25 }, 0xdeadbeef],
    [[4, 9, 7, 3], { flip: true, crop: 0.5, zoom: 0.5, brightness: 1 }, 1],
    [[2, 1, 8, 1], { flip: false, crop: 0.1, zoom: 0, brightness: 0.2 }, 77],
    [[5, 4, 4, 3], { flip: true, crop: 0, zoom: 0, brightness: 0 }, 4294967295],
  ])('%j %j seed %d', async (shape, options, seed) => {
    const src = new Float32Array(shape.reduce((a, b) => a * b, 1)).map((_, i) => ((i * 37) % 101) / 100);
    const native = await ck.data.augment(ck.tensor(src, shape), options, { seed });
    const reference = augmentReference(src, shape, checkAugment(options), mulberry32(seed));
    expect(Buffer.from(native.dataSync().buffer).equals(Buffer.from(reference.buffer))).toBe(true);
    const other = augmentReference(src, shape, checkAugment(options), mulberry32(seed + 1));
    expect(Array.from(other)).not.toEqual(Array.from(reference));
  });
});
