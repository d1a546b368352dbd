// Seeded generators: same seed, same numbers. Rng (xoshiro128**) for initializers and shuffling;
// mulberry32 for image augmentation and for the random data of convkit's tests and tools.
export class Rng {
  private s: Uint32Array;
  private spare: number | null = null;

  /**
   * `stream` names what the numbers are for: one seed's named streams and its unnamed one draw
   * unrelated sequences, so that one seed given to ck.setSeed (the initial weights) and to fit
   * (the batch order) does not make the order a function of the weights.
   */
  constructor(seed: number = Math.floor(Math.random() * 2 ** 32), stream = '') {
    // splitmix32 expands the seed into the four state words; a named stream XORs in a second
    // expansion, of the name's hash (a seed alone cannot reproduce the 128-bit difference).
    this.s = new Uint32Array(4);
    let x = seed >>> 0;
    let y = stream ? fnv1a(stream) : 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      y = (y + 0x9e3779b9) >>> 0;
      this.s[i] = (splitmixFinal(x) ^ (stream ? splitmixFinal(y) : 0)) >>> 0;
    }
  }

  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** [0, 1) */
  uniform(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Standard normal redrawn outside [-2, 2], as TensorFlow's truncated_normal. */
  truncatedNormal(): number {
    for (;;) {
      const v = this.normal();
      if (v >= -2 && v <= 2) return v;
    }
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** A shuffled permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }
}

function splitmixFinal(x: number): number {
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/** FNV-1a of a string's UTF-16 code units. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * mulberry32: a tiny 32-bit generator of numbers uniform in [0, 1), the same on every platform.
 * Augmentation draws from it, and so do the test and tool data (test-support/reference.ts,
 * scripts/gpu-parity.js, scripts/fuzz/rng.js). `key` is XORed into the state before mixing: a
 * second seed word, for the fuzzer's 52-bit seeds (0 is mulberry32 itself). No imports and no
 * module state: the augment worker runs this function's source text (data/augment.ts).
 */
export function mulberry32(seed: number, key = 0): () => number {
  const imul = Math.imul;  // looked up once: a global lookup per draw is slow in jest's vm context
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state ^ key;
    t = imul(t ^ (t >>> 15), t | 1);
    t ^= t + imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
