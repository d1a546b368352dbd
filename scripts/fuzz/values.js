// Hostile values the targets draw from: numbers at every edge convkit's checks meet (NaN,
// infinities, -0, non-integers, 2^31, 2^53, negatives), wrong types, deep and self-referencing
// structures, and shapes that are huge, negative or ragged.
'use strict';

const EDGE_NUMBERS = [
  0, -0, 1, -1, 2, 3, 0.5, 1.5, -2.5, 1e-7, 0.999999, 1.000001, 7, 16, 255, 256, 65535, 65536,
  2 ** 24, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), 2 ** 32, 2 ** 32 + 1, 2 ** 53, 2 ** 53 + 2, -(2 ** 53),
  1e15, 1e300, -1e300, Number.MAX_VALUE, Number.MIN_VALUE, Number.EPSILON, NaN, Infinity, -Infinity,
];

function hostileNumber(rng) {
  return rng.chance(0.85) ? rng.pick(EDGE_NUMBERS) : (rng.float() - 0.5) * 10 ** rng.int(-8, 12);
}

/** Nested arrays `depth` deep around `leaf`. */
function nested(depth, leaf) {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

/** An array that contains itself, and an object whose property points back at it. */
function cyclic(rng) {
  if (rng.chance(0.5)) {
    const a = [1, 2];
    a.push(a);
    return rng.chance(0.5) ? a : [a];
  }
  const o = { name: 'x' };
  o.config = o;
  o.layers = [o];
  return o;
}

function hostileString(rng) {
  return rng.pick([
    '', ' ', 'x', 'same', 'valid', 'SAME', 'relu', 'softmax', 'float32', 'int32', 'NaN', '1', '-1', '1e309',
    '../../etc/passwd', '/etc/passwd', '\u0000', 'a\u0000b', '\ud800', '__proto__', 'constructor',
    'x'.repeat(5000), '%s%n%x', '{}', '[]', 'null',
  ]);
}

/** Any value at all, `depth` limiting how deep arrays and objects go. */
function hostileValue(rng, depth = 0) {
  const kind = rng.weighted({ number: 8, string: 3, bool: 1, nil: 2, array: depth < 3 ? 3 : 0, object: depth < 3 ? 2 : 0, deep: 1, cyclic: 1, exotic: 1 });
  switch (kind) {
    case 'number': return hostileNumber(rng);
    case 'string': return hostileString(rng);
    case 'bool': return rng.chance(0.5);
    case 'nil': return rng.chance(0.5) ? null : undefined;
    case 'array': return Array.from({ length: rng.int(0, 4) }, () => hostileValue(rng, depth + 1));
    case 'object': {
      const o = {};
      for (let i = rng.int(0, 3); i > 0; i--) o[hostileString(rng).slice(0, 12) || 'k'] = hostileValue(rng, depth + 1);
      return o;
    }
    case 'deep': return nested(rng.pick([40, 1000, 100000]), rng.chance(0.5) ? 1 : {});
    case 'cyclic': return cyclic(rng);
    default: return rng.pick([
      () => 10n, () => Symbol('s'), () => () => 1, () => new Float32Array(3), () => new Int32Array([1, 2]),
      () => new Date(0), () => new Map(), () => Object.create(null), () => new Proxy({}, {}),
      () => Object.freeze([1, 2]), () => [1, , 3], // eslint-disable-line no-sparse-arrays
    ])();
  }
}

/** A shape that convkit must reject or take: huge, negative, fractional, too many dims, not numbers. */
function hostileShape(rng) {
  switch (rng.int(0, 9)) {
    case 0: return Array.from({ length: rng.int(1, 4) }, () => hostileNumber(rng));
    case 1: return [1e6, 1e6, 1e6, 1];
    case 2: return Array.from({ length: rng.int(9, 12) }, () => 1);
    case 3: return [2 ** 31, 1];
    case 4: return [65536, 32768];
    case 5: return [-1, rng.int(1, 4)];
    case 6: return [rng.int(0, 3), '2'];
    case 7: return rng.chance(0.5) ? [] : [0];
    case 8: return hostileValue(rng);
    default: return [rng.int(1, 3), 1.5];
  }
}

/** A short printable form of any value (cycles, BigInts and symbols included), for case details. */
function show(v, max = 200) {
  const seen = new WeakSet();
  try {
    const text = JSON.stringify(v, (k, x) => {
      if (typeof x === 'bigint') return `${x}n`;
      if (typeof x === 'symbol' || typeof x === 'function') return String(x);
      if (typeof x === 'number' && !Number.isFinite(x)) return String(x);
      if (x && typeof x === 'object') {
        if (seen.has(x)) return '<cycle>';
        seen.add(x);
      }
      return x;
    });
    return String(text).slice(0, max);
  } catch {
    return '<unprintable>';
  }
}

module.exports = { show, EDGE_NUMBERS, hostileNumber, hostileString, hostileValue, hostileShape, nested, cyclic };
