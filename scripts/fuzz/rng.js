// The fuzzer's randomness: one small seeded generator per case, so that a case is reproduced
// from (target, seed) alone: convkit's mulberry32 (lib/rng.ts) keyed by a seed of up to 52 bits,
// its low word the state and its high word the key.
'use strict';

const { mulberry32 } = require('../../dist/rng');

/** A seed's two words: the generator's starting state and its key. */
function seedWords(seed) {
  return { state: (Number(seed) >>> 0) ^ 0x9e3779b9, key: Math.floor(Number(seed) / 4294967296) >>> 0 };
}

class Rng {
  constructor(seed) {
    const { state, key } = seedWords(seed);
    this.next = mulberry32(state, key);
  }

  /** Uniform 32-bit unsigned integer. */
  u32() {
    return this.next() * 4294967296;
  }

  /** Uniform in [0, 1). */
  float() {
    return this.next();
  }

  /** Integer in [lo, hi] (inclusive). */
  int(lo, hi) {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  chance(p) {
    return this.float() < p;
  }

  pick(list) {
    return list[Math.floor(this.float() * list.length)];
  }

  /** Picks a key of `table` ({ key: weight }) with probability proportional to its weight. */
  weighted(table) {
    const entries = Object.entries(table);
    let r = this.float() * entries.reduce((n, [, w]) => n + w, 0);
    for (const [k, w] of entries) {
      r -= w;
      if (r < 0) return k;
    }
    return entries[entries.length - 1][0];
  }

  bytes(n) {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }

  /** A new generator whose stream depends on this one's next value (for sub-tasks). */
  fork() {
    return new Rng(this.u32() + this.u32() * 2097152);
  }
}

/** The seed of case `index` of a run seeded with `runSeed` (a 52-bit integer, printable). */
function caseSeed(runSeed, index) {
  const { state, key } = seedWords(runSeed);
  const next = mulberry32(state + Math.imul(index + 1, 0x9e3779b1), key ^ Math.imul(index, 0x85ebca6b));
  const u32 = () => next() * 4294967296;
  return u32() + (u32() & 0xfffff) * 4294967296;
}

module.exports = { Rng, caseSeed };
