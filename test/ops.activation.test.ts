// Activations (forward from x; gradient from the output y, or from the input x for gelu, swish,
// hardSwish, hardSigmoid, softplus, selu and mish), softmax, dropout and mul against the plain-JS
// float64 reference, on every ISA path this CPU supports, plus finite-difference checks.
import { describe, expect, test } from '@jest/globals';
import * as ck from '../lib';
import * as ref from '../test-support/reference';
import { describeIsas, t, useIsa, vals } from '../test-support/isa';

type Fwd = (x: ck.Tensor) => ck.Tensor;
type Grad = (dy: ck.Tensor, y: ck.Tensor) => ck.Tensor;
interface ActCase {
  label: string;
  name: ref.FromYActName;
  alpha: number;
  fwd: Fwd;
  grad: Grad;
  /** Forward tolerance: exact-ish for the piecewise-linear ones, a few ulp for exp-based. */
  rtol: number;
  atol: number;
}

const actCases: ActCase[] = [
  { label: 'relu', name: 'relu', alpha: 0, fwd: ck.ops.relu, grad: ck.ops.reluGrad, rtol: 0, atol: 0 },
  { label: 'leakyRelu (default alpha 0.2)', name: 'leakyRelu', alpha: 0.2, fwd: (x) => ck.ops.leakyRelu(x), grad: (dy, y) => ck.ops.leakyReluGrad(dy, y), rtol: 1e-6, atol: 0 },
  { label: 'leakyRelu alpha 0.01', name: 'leakyRelu', alpha: 0.01, fwd: (x) => ck.ops.leakyRelu(x, { alpha: 0.01 }), grad: (dy, y) => ck.ops.leakyReluGrad(dy, y, { alpha: 0.01 }), rtol: 1e-6, atol: 0 },
  { label: 'leakyRelu alpha 0 (= relu)', name: 'leakyRelu', alpha: 0, fwd: (x) => ck.ops.leakyRelu(x, { alpha: 0 }), grad: (dy, y) => ck.ops.leakyReluGrad(dy, y, { alpha: 0 }), rtol: 0, atol: 0 },
  { label: 'elu (default alpha 1)', name: 'elu', alpha: 1, fwd: (x) => ck.ops.elu(x), grad: (dy, y) => ck.ops.eluGrad(dy, y), rtol: 1e-5, atol: 1e-7 },
  { label: 'elu alpha 0.5', name: 'elu', alpha: 0.5, fwd: (x) => ck.ops.elu(x, { alpha: 0.5 }), grad: (dy, y) => ck.ops.eluGrad(dy, y, { alpha: 0.5 }), rtol: 1e-5, atol: 1e-7 },
  { label: 'sigmoid', name: 'sigmoid', alpha: 0, fwd: ck.ops.sigmoid, grad: ck.ops.sigmoidGrad, rtol: 1e-5, atol: 1e-7 },
  { label: 'tanh', name: 'tanh', alpha: 0, fwd: ck.ops.tanh, grad: ck.ops.tanhGrad, rtol: 1e-5, atol: 1e-7 },
];

interface FromXCase {
  label: string;
  name: ref.FromXActName;
  fwd: Fwd;
  /** The gradient from the input x. */
  grad: (dy: ck.Tensor, x: ck.Tensor) => ck.Tensor;
}

const fromXCases: FromXCase[] = [
  { label: 'gelu', name: 'gelu', fwd: (x) => ck.ops.gelu(x), grad: (dy, x) => ck.ops.geluGrad(dy, x) },
  { label: 'gelu approximate (tanh)', name: 'geluTanh', fwd: (x) => ck.ops.gelu(x, { approximate: true }), grad: (dy, x) => ck.ops.geluGrad(dy, x, { approximate: true }) },
  { label: 'swish', name: 'swish', fwd: ck.ops.swish, grad: ck.ops.swishGrad },
  { label: 'hardSwish', name: 'hardSwish', fwd: ck.ops.hardSwish, grad: ck.ops.hardSwishGrad },
  { label: 'hardSigmoid', name: 'hardSigmoid', fwd: ck.ops.hardSigmoid, grad: ck.ops.hardSigmoidGrad },
  { label: 'softplus', name: 'softplus', fwd: ck.ops.softplus, grad: ck.ops.softplusGrad },
  { label: 'selu', name: 'selu', fwd: ck.ops.selu, grad: ck.ops.seluGrad },
  { label: 'mish', name: 'mish', fwd: ck.ops.mish, grad: ck.ops.mishGrad },
];

// Odd sizes around the vector widths (8, 16) and tails, and different ranks.
const shapes: number[][] = [[1], [7], [2, 8], [17], [3, 11], [2, 3, 5, 7], [10, 100], [4099], [3, 33335]];

/** Random values plus the special points: 0, tiny, saturating, and large magnitudes. */
function inputs(n: number, rng: ref.Rng): Float32Array {
  const x = rng.array(n, -6, 6);
  const special = [0, -0, 1e-8, -1e-8, 1, -1, 15, -15, 50, -50, 90, -90];
  for (let i = 0; i < Math.min(special.length, n); i++) x[(i * 7919) % n] = special[i];
  return x;
}

describeIsas('activations on the %s kernels', (isa) => {
  useIsa(isa);

  describe.each(actCases)('$label', (a) => {
    test.each(shapes)('forward and gradient on shape [%s]', (...shape) => {
      const n = ref.prod(shape);
      const rng = new ref.Rng(n * 7 + a.label.length);
      const x = inputs(n, rng);
      const y = a.fwd(t(x, shape));
      expect(y.shape).toEqual(shape);
      const yRef = ref.activation(a.name, x, a.alpha);
      ref.expectClose(vals(y), yRef, { rtol: a.rtol, atol: a.atol, name: `${a.label}(x)`, shape });
      // The gradient takes the output y (here the reference's, rounded to float32).
      const dy = rng.array(n);
      const dx = a.grad(t(dy, shape), t(yRef, shape));
      expect(dx.shape).toEqual(shape);
      ref.expectClose(vals(dx), ref.activationGrad(a.name, dy, yRef, a.alpha), { rtol: 1e-5, atol: 1e-7, name: `${a.label}Grad`, shape });
    });

    test('gradient agrees with central differences', () => {
      const rng = new ref.Rng(123 + a.label.length);
      const n = 23;
      // Away from the kink at 0 for the piecewise ones; a loss sum(act(x) * r).
      const x = rng.arrayAwayFromZero(n, 0.05, 3);
      const r = rng.array(n);
      const loss = ([xi]: Float32Array[]): number => ref.dot(a.fwd(t(xi, [n])).dataSync(), r);
      const y = a.fwd(t(x, [n]));
      const an = vals(a.grad(t(r, [n]), y));
      const fd = ref.finiteDiff(loss, [x], 0, { eps: 1e-2 });
      ref.expectClose(ref.gather(an, fd.indices), fd.grad, { rtol: 1e-3, atol: 1e-4, name: `${a.label}Grad vs finite differences` });
    });
  });

  describe.each(fromXCases)('$label (gradient from x)', (a) => {
    test.each(shapes)('forward and gradient on shape [%s] against float64', (...shape) => {
      const n = ref.prod(shape);
      const rng = new ref.Rng(n * 13 + a.label.length);
      const x = inputs(n, rng);
      const y = a.fwd(t(x, shape));
      expect(y.shape).toEqual(shape);
      ref.expectClose(vals(y), ref.activation(a.name, x), { rtol: 1e-5, atol: 1e-6, name: `${a.label}(x)`, shape });
      const dy = rng.array(n);
      const dx = a.grad(t(dy, shape), t(x, shape));
      expect(dx.shape).toEqual(shape);
      ref.expectClose(vals(dx), ref.activationGradFromX(a.name, dy, x), { rtol: 1e-5, atol: 1e-6, name: `${a.label}Grad`, shape });
    });

    test('gradient agrees with central differences', () => {
      const rng = new ref.Rng(321 + a.label.length);
      const n = 40;
      // Over [-5, 5], away from selu's kink at 0 and the hard ones' at -3 and 3; a loss sum(act(x) * r).
      const x = Float32Array.from(rng.array(n, -5, 5), (v) => (Math.abs(Math.abs(v) - 3) < 0.05 ? v * 0.9 : Math.abs(v) < 0.05 ? v + 0.2 : v));
      const r = rng.array(n);
      const loss = ([xi]: Float32Array[]): number => ref.dot(a.fwd(t(xi, [n])).dataSync(), r);
      const an = vals(a.grad(t(r, [n]), t(x, [n])));
      const fd = ref.finiteDiff(loss, [x], 0, { eps: 1e-2 });
      ref.expectClose(ref.gather(an, fd.indices), fd.grad, { rtol: 1e-3, atol: 1e-4, name: `${a.label}Grad vs finite differences` });
    });
  });

  test('the newer activations at known points (Keras 3 definitions)', () => {
    const x = [-3, -1, 0, 1, 3];
    const at = (f: Fwd): number[] => Array.from(vals(f(t(x, [5]))));
    // hardSigmoid is relu6(x + 3) / 6 (not tfjs's clip(0.2x + 0.5)): 1/3 at -1 where tfjs gives 0.3.
    ref.expectClose(at(ck.ops.hardSigmoid), [0, 1 / 3, 0.5, 2 / 3, 1], { rtol: 1e-6, atol: 1e-7, name: 'hardSigmoid' });
    ref.expectClose(at(ck.ops.hardSwish), [-0, -1 / 3, 0, 2 / 3, 3], { rtol: 1e-6, atol: 1e-7, name: 'hardSwish' });
    // selu(1) = scale, selu(-1) = scale * alpha * (e^-1 - 1).
    ref.expectClose(at(ck.ops.selu), [1.0507009873554805 * 1.6732632423543772 * Math.expm1(-3), 1.0507009873554805 * 1.6732632423543772 * Math.expm1(-1), 0, 1.0507009873554805, 3 * 1.0507009873554805], { rtol: 1e-6, atol: 1e-7, name: 'selu' });
    // gelu(1) = Phi(1) = 0.8413447460685429; the tanh form differs from it in the 4th digit.
    ref.expectClose([at((v) => ck.ops.gelu(v))[3]], [0.8413447460685429], { rtol: 1e-6, atol: 0, name: 'gelu(1)' });
    ref.expectClose([at((v) => ck.ops.gelu(v, { approximate: true }))[3]], [0.8411919906082768], { rtol: 1e-6, atol: 0, name: 'gelu approximate(1)' });
  });

  test('gelu options are checked by name and type', () => {
    const x = t([1, 2], [2]);
    expect(() => ck.ops.gelu(x, { approximate: 'yes' as unknown as boolean })).toThrow(new ck.ValueError('gelu: approximate must be a boolean, got "yes"'));
    expect(() => ck.ops.gelu(x, { approx: true } as never)).toThrow(ck.ValueError);
    expect(() => ck.ops.geluGrad(x, x, { approximate: 1 as unknown as boolean })).toThrow(/geluGrad: approximate must be a boolean/);
  });

  test('a gradient from x checks that dy and x match', () => {
    expect(() => ck.ops.swishGrad(t([1, 2, 3], [3]), t([1, 2], [2]))).toThrow(ck.ShapeError);
    expect(() => ck.ops.swishGrad(t([1, 2, 3], [3]), t([1, 2], [2]))).toThrow(/swishGrad/);
  });

  test('relu zeroes negatives and keeps positives exactly', () => {
    const y = vals(ck.ops.relu(t([-3, -5, 3, 5, 0, -0.25, 0.25], [7])));
    expect(Array.from(y)).toEqual([0, 0, 3, 5, 0, 0, 0.25]);
  });

  test('sigmoid and tanh saturate without NaN or overflow', () => {
    const x = [-1000, -100, -20, 20, 100, 1000];
    const s = vals(ck.ops.sigmoid(t(x, [6])));
    const th = vals(ck.ops.tanh(t(x, [6])));
    expect(s.every(Number.isFinite)).toBe(true);
    expect(th.every(Number.isFinite)).toBe(true);
    ref.expectClose(s, ref.activation('sigmoid', x), { rtol: 1e-5, atol: 1e-7, name: 'sigmoid saturated' });
    ref.expectClose(th, [-1, -1, -1, 1, 1, 1], { rtol: 0, atol: 1e-7, name: 'tanh saturated' });
  });

  describe('softmax', () => {
    const smShapes: number[][] = [[1, 1], [3, 10], [4, 17], [2, 3, 33], [5, 1000], [9], [3001, 10]];

    test.each(smShapes)('forward and gradient on shape [%s]', (...shape) => {
      const cols = shape[shape.length - 1];
      const rows = ref.prod(shape) / cols;
      const rng = new ref.Rng(rows * 1000 + cols);
      const x = rng.array(rows * cols, -5, 5);
      const y = ck.ops.softmax(t(x, shape));
      expect(y.shape).toEqual(shape);
      const yRef = ref.softmax(x, rows, cols);
      ref.expectClose(vals(y), yRef, { rtol: 1e-5, atol: 1e-8, name: 'softmax', shape });
      const dy = rng.array(rows * cols);
      const dx = ck.ops.softmaxGrad(t(dy, shape), t(yRef, shape));
      expect(dx.shape).toEqual(shape);
      ref.expectClose(vals(dx), ref.softmaxGrad(dy, yRef, rows, cols), { rtol: 1e-4, atol: 1e-7, name: 'softmaxGrad', shape });
    });

    test('is stable for large logits and invariant to a per-row shift', () => {
      const rows = 3;
      const cols = 19;
      const rng = new ref.Rng(8);
      const x = rng.array(rows * cols, -3, 3);
      const shifted = Float32Array.from(x, (v, i) => v + [1000, -1000, 88][Math.floor(i / cols)]);
      const y = vals(ck.ops.softmax(t(shifted, [rows, cols])));
      expect(y.every(Number.isFinite)).toBe(true);
      // Shifting by 1000 loses the low bits of x in float32: compare with the reference of the shifted values.
      ref.expectClose(y, ref.softmax(shifted, rows, cols), { rtol: 1e-5, atol: 1e-8, name: 'softmax shifted' });
      const big = vals(ck.ops.softmax(t([1e4, 0, -1e4], [1, 3])));
      expect(Array.from(big)).toEqual([1, 0, 0]);
    });

    test('rows sum to one', () => {
      const rng = new ref.Rng(9);
      const y = vals(ck.ops.softmax(t(rng.array(7 * 37, -10, 10), [7, 37])));
      for (let r = 0; r < 7; r++) {
        let s = 0;
        for (let c = 0; c < 37; c++) s += y[r * 37 + c];
        expect(Math.abs(s - 1)).toBeLessThan(1e-5);
      }
    });

    test('softmaxGrad agrees with central differences', () => {
      const rng = new ref.Rng(10);
      const shape = [3, 6];
      const x = rng.array(18, -2, 2);
      const r = rng.array(18);
      const loss = ([xi]: Float32Array[]): number => ref.dot(ck.ops.softmax(t(xi, shape)).dataSync(), r);
      const an = vals(ck.ops.softmaxGrad(t(r, shape), ck.ops.softmax(t(x, shape))));
      const fd = ref.finiteDiff(loss, [x], 0, { eps: 1e-2 });
      ref.expectClose(ref.gather(an, fd.indices), fd.grad, { rtol: 1e-3, atol: 1e-4, name: 'softmaxGrad vs finite differences' });
    });
  });

  describe('dropout and mul', () => {
    test('inverted dropout: mask is 0 or 1/(1-rate), about rate of it zero, y = x * mask, seeded', () => {
      const n = 20000;
      const rate = 0.3;
      const rng = new ref.Rng(11);
      const x = rng.array(n);
      const { y, mask } = ck.ops.dropout(t(x, [n]), { rate, seed: 1234 });
      const m = vals(mask);
      const yv = vals(y);
      const keep = Math.fround(1 / (1 - rate));
      let zeros = 0;
      const badMask: number[] = [];
      for (let i = 0; i < n; i++) {
        if (m[i] === 0) zeros++;
        else if (Math.abs(m[i] - keep) > 1e-6) badMask.push(i);
      }
      expect(badMask.slice(0, 5).map((i) => [i, m[i]])).toEqual([]);
      ref.expectClose(yv, Float32Array.from(x, (v, i) => v * m[i]), { rtol: 0, atol: 0, name: 'dropout y = x * mask' });
      // Binomial(20000, 0.3): standard deviation ~65; 5 sigma.
      expect(Math.abs(zeros - rate * n)).toBeLessThan(325);
      // Same seed, same mask; another seed, another mask.
      expect(Array.from(vals(ck.ops.dropout(t(x, [n]), { rate, seed: 1234 }).mask))).toEqual(Array.from(m));
      const other = vals(ck.ops.dropout(t(x, [n]), { rate, seed: 4321 }).mask);
      expect(other.some((v, i) => v !== m[i])).toBe(true);
      // Its gradient is dy * mask.
      const dy = rng.array(n);
      const dx = vals(ck.ops.dropoutGrad(t(dy, [n]), mask));
      ref.expectClose(dx, Float32Array.from(dy, (v, i) => v * m[i]), { rtol: 0, atol: 0, name: 'dropoutGrad' });
    });

    test('dropout with rate 0 keeps everything', () => {
      const x = new ref.Rng(12).array(33);
      const { y, mask } = ck.ops.dropout(t(x, [3, 11]), { rate: 0, seed: 1 });
      expect(Array.from(vals(mask))).toEqual(new Array(33).fill(1));
      expect(Array.from(vals(y))).toEqual(Array.from(x));
    });

    test.each([[1], [17], [4, 33]])('mul multiplies elementwise on shape [%s]', (...shape) => {
      const n = ref.prod(shape);
      const rng = new ref.Rng(n);
      const a = rng.array(n);
      const b = rng.array(n);
      const y = ck.ops.mul(t(a, shape), t(b, shape));
      expect(y.shape).toEqual(shape);
      ref.expectClose(vals(y), Float32Array.from(a, (v, i) => v * b[i]), { rtol: 0, atol: 0, name: 'mul' });
    });
  });
});
