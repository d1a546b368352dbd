// The fuzzer's randomness: one small seeded generator per case, so that a case is reproduced
// from (target, seed) alone: a mulberry32-style generator keyed by a seed of up to 52 bits.
'use strict';

class Rng {
  constructor(seed) {
    this.state = (Number(seed) >>> 0) ^ 0x9e3779b9;
    this.hi = Math.floor(Number(seed) / 4294967296) >>> 0;
  }

  /** Uniform 32-bit unsigned integer. */
  u32() {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state ^ this.hi;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1). */
  float() {
    return this.u32() / 4294967296;
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
  const r = new Rng(runSeed);
  r.state = (r.state + Math.imul(index + 1, 0x9e3779b1)) >>> 0;
  r.hi = (r.hi ^ Math.imul(index, 0x85ebca6b)) >>> 0;
  return r.u32() + (r.u32() & 0xfffff) * 4294967296;
}

module.exports = { Rng, caseSeed };
