// convkit's op table: every op and gradient of ck.ops with the shapes, attributes and tolerances
// it is checked at (random shapes, odd sizes, 1x1 images), declared once and run by three suites:
//   - scripts/gpu-parity.js (test/cuda.ops.test.ts): each case on CPU tensors against CUDA ones;
//   - test/ops.table.test.ts, ISA parity: each case under every vector ISA the CPU has against
//     the scalar reference kernels (ck.setIsa);
//   - test/ops.table.test.ts, gradients: each case with an `fd` entry against central finite
//     differences of its forward op.
// A case: { name, inputs: [{ data, shape }], run(...tensors) -> Tensor | { key: Tensor },
// tol: { atol, rtol } | { exact: true }, fd? }. fd: the gradient outputs (keys of run's result;
// `out` for a single tensor) and the input each differentiates (`wrt`), for the scalar
// L = sum(inputs[dy] * forward(...inputs)) (dy: index of the upstream gradient, 0 unless given),
// or, for a loss (`output: 'loss'`, no dy), L = the mean of run's per-example losses.
'use strict';

const { mulberry32 } = require('../dist/rng');

class Rng {
  constructor(seed) {
    this.next = mulberry32(seed);
  }
  int(lo, hi) {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick(list) {
    return list[Math.floor(this.next() * list.length)];
  }
  floats(n, lo = -1, hi = 1) {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * this.next();
    return a;
  }
}

const numel = (shape) => shape.reduce((a, b) => a * b, 1);

/** Throws unless |got - want| <= atol + rtol * |want| everywhere (exact: bitwise equal). */
function compare(what, got, want, { atol = 1e-6, rtol = 1e-5, exact = false } = {}) {
  if (got.length !== want.length) throw new Error(`${what}: length ${got.length} vs ${want.length}`);
  let worst = -1;
  let worstRatio = 0;
  for (let i = 0; i < got.length; i++) {
    const g = got[i];
    const w = want[i];
    if (exact) {
      if (!Object.is(g, w) && !(Number.isNaN(g) && Number.isNaN(w))) {
        throw new Error(`${what}: element ${i}: ${g} vs ${w} expected (must be identical)`);
      }
      continue;
    }
    if (Number.isNaN(w) || Number.isNaN(g)) {
      if (Number.isNaN(w) && Number.isNaN(g)) continue;
      throw new Error(`${what}: element ${i}: ${g} vs ${w} expected`);
    }
    if (g === w) continue;  // equal infinities too
    const ratio = Math.abs(g - w) / (atol + rtol * Math.abs(w));
    if (!(ratio <= worstRatio)) {
      worstRatio = ratio;
      worst = i;
    }
  }
  if (worstRatio > 1) {
    throw new Error(`${what}: element ${worst}: ${got[worst]} vs ${want[worst]} expected ` +
      `(|diff| ${Math.abs(got[worst] - want[worst]).toExponential(2)} > atol ${atol.toExponential(1)} + rtol ${rtol} * |expected|)`);
  }
}

/** The op cases (their probes for output shapes run on the CPU). */
function opCases(ck, { seed = 1234, quick = false } = {}) {
  const rng = new Rng(seed);
  const reps = quick ? 2 : 5;
  const cases = [];
  const op = (name, inputs, run, tol = {}, fd = undefined) => cases.push({ name, inputs, run, tol, fd });
  const inp = (shape, lo = -1, hi = 1) => ({ data: rng.floats(numel(shape), lo, hi), shape });
  // Tolerance for sums of `n` products of values in [-1, 1] (float32, any summation order).
  const sumTol = (n) => ({ atol: 2e-6 * (n + 1), rtol: 1e-4 });
  // A loss's gradient output is that of the mean of its per-example losses.
  const meanLoss = { output: 'loss', wrt: { grad: 0 } };

  // ---- convolution ----
  const convGeometries = [
    { N: 1, H: 1, W: 1, C: 1, K: 1, R: 1, S: 1, sh: 1, sw: 1, dh: 1, dw: 1, padding: 'valid' },
    { N: 2, H: 1, W: 1, C: 3, K: 5, R: 3, S: 3, sh: 1, sw: 1, dh: 1, dw: 1, padding: 'same' },
    { N: 1, H: 7, W: 5, C: 1, K: 1, R: 2, S: 3, sh: 2, sw: 1, dh: 1, dw: 2, padding: 'same' },
    { N: 3, H: 9, W: 11, C: 5, K: 7, R: 3, S: 3, sh: 1, sw: 1, dh: 1, dw: 1, padding: 'valid' },
  ];
  for (let i = 0; i < reps; i++) {
    const padding = rng.pick(['valid', 'same']);
    const H = rng.int(1, 13);
    const W = rng.int(1, 13);
    const g = { N: rng.int(1, 3), H, W, C: rng.int(1, 9), K: rng.int(1, 11), sh: rng.int(1, 3), sw: rng.int(1, 3), dh: rng.int(1, 2), dw: rng.int(1, 2), padding };
    const fit = (n, d) => Math.max(1, Math.floor((n - 1) / d) + 1);  // the largest kernel that fits
    g.R = padding === 'same' ? rng.int(1, 5) : rng.int(1, Math.min(5, fit(H, g.dh)));
    g.S = padding === 'same' ? rng.int(1, 5) : rng.int(1, Math.min(5, fit(W, g.dw)));
    convGeometries.push(g);
  }
  for (const g of convGeometries) {
    const desc = `x [${g.N},${g.H},${g.W},${g.C}] filter ${g.R}x${g.S}x${g.C}x${g.K} strides ${g.sh}x${g.sw} dilation ${g.dh}x${g.dw} ${g.padding}`;
    const opts = { strides: [g.sh, g.sw], dilation: [g.dh, g.dw], padding: g.padding };
    const xs = [g.N, g.H, g.W, g.C];
    const ws = [g.R, g.S, g.C, g.K];
    const tol = sumTol(Math.max(g.R * g.S * g.C, g.R * g.S * g.K, g.N * g.H * g.W));
    op(`conv2d ${desc}`, [inp(xs), inp(ws), inp([g.K])],
      (x, w, b) => ck.ops.conv2d(x, w, { ...opts, bias: b }), tol);
    op(`conv2d+relu ${desc}`, [inp(xs), inp(ws)],
      (x, w) => ck.ops.conv2d(x, w, { ...opts, activation: 'relu' }), tol);
    // dy has the output's shape: take it from a CPU run of the forward op.
    const probe = ck.ops.conv2d(ck.zeros(xs).to('cpu'), ck.zeros(ws).to('cpu'), opts);
    op(`conv2dGrad ${desc}`, [inp(probe.shape), inp(xs), inp(ws)],
      (dy, x, w) => ck.ops.conv2dGrad(dy, x, w, opts), tol,
      { forward: (dy, x, w) => ck.ops.conv2d(x, w, opts), wrt: { dx: 1, dw: 2 } });
    probe.dispose();
  }

  // ---- dense ----
  const denseShapes = [[[1, 1], 1], [[1, 7], 3], [[2, 3, 5], 4], [[9, 33], 17]];
  for (let i = 0; i < reps; i++) denseShapes.push([[rng.int(1, 37), rng.int(1, 70)], rng.int(1, 40)]);
  for (const [xs, units] of denseShapes) {
    const K = xs[xs.length - 1];
    const M = numel(xs) / K;
    const tol = sumTol(Math.max(K, units, M));
    const ys = [...xs.slice(0, -1), units];
    op(`dense x [${xs}] units ${units} + bias`, [inp(xs), inp([K, units]), inp([units])],
      (x, w, b) => ck.ops.dense(x, w, { bias: b }), tol);
    op(`dense+relu x [${xs}] units ${units}`, [inp(xs), inp([K, units])],
      (x, w) => ck.ops.dense(x, w, { activation: 'relu' }), tol);
    op(`denseGrad x [${xs}] units ${units}`, [inp(ys), inp(xs), inp([K, units]), inp([units])],
      (dy, x, w) => ck.ops.denseGrad(dy, x, w), tol,
      { forward: (dy, x, w, b) => ck.ops.dense(x, w, { bias: b }), wrt: { dx: 1, dw: 2, db: 3 } });
  }

  // ---- pooling ----
  const poolGeometries = [
    { N: 1, H: 1, W: 1, C: 1, ph: 1, pw: 1, sh: 1, sw: 1, padding: 'valid' },
    { N: 2, H: 1, W: 1, C: 3, ph: 2, pw: 2, sh: 2, sw: 2, padding: 'same' },
    { N: 1, H: 5, W: 7, C: 3, ph: 3, pw: 2, sh: 1, sw: 2, padding: 'same' },
  ];
  for (let i = 0; i < reps; i++) {
    const padding = rng.pick(['valid', 'same']);
    const H = rng.int(1, 12);
    const W = rng.int(1, 12);
    poolGeometries.push({
      N: rng.int(1, 3), H, W, C: rng.int(1, 9), padding,
      ph: padding === 'same' ? rng.int(1, 4) : rng.int(1, Math.min(4, H)),
      pw: padding === 'same' ? rng.int(1, 4) : rng.int(1, Math.min(4, W)),
      sh: rng.int(1, 3), sw: rng.int(1, 3),
    });
  }
  for (const g of poolGeometries) {
    const desc = `x [${g.N},${g.H},${g.W},${g.C}] pool ${g.ph}x${g.pw} strides ${g.sh}x${g.sw} ${g.padding}`;
    const opts = { poolSize: [g.ph, g.pw], strides: [g.sh, g.sw], padding: g.padding };
    const xs = [g.N, g.H, g.W, g.C];
    const probe = ck.ops.maxPool2d(ck.zeros(xs).to('cpu'), opts);
    const overlap = sumTol(Math.ceil(g.ph / g.sh) * Math.ceil(g.pw / g.sw));
    op(`maxPool2d ${desc}`, [inp(xs)], (x) => ck.ops.maxPool2d(x, opts), { exact: true });
    op(`maxPool2dGrad ${desc}`, [inp(probe.shape), inp(xs)], (dy, x) => ck.ops.maxPool2dGrad(dy, x, opts), overlap,
      { forward: (dy, x) => ck.ops.maxPool2d(x, opts), wrt: { out: 1 } });
    op(`avgPool2d ${desc}`, [inp(xs)], (x) => ck.ops.avgPool2d(x, opts), sumTol(g.ph * g.pw));
    op(`avgPool2dGrad ${desc}`, [inp(probe.shape), inp(xs)], (dy, x) => ck.ops.avgPool2dGrad(dy, x, opts), overlap,
      { forward: (dy, x) => ck.ops.avgPool2d(x, opts), wrt: { out: 1 } });
    probe.dispose();
  }
  // ---- the functional-model layers' ops: grouped and depthwise convolution, Lp pooling, zero
  // padding, up-sampling, add and concatenate ----
  for (const g of convGeometries) {
    const desc = `x [${g.N},${g.H},${g.W},${g.C}] ${g.R}x${g.S} strides ${g.sh}x${g.sw} dilation ${g.dh}x${g.dw} ${g.padding}`;
    const opts = { strides: [g.sh, g.sw], dilation: [g.dh, g.dw], padding: g.padding };
    const xs = [g.N, g.H, g.W, g.C];
    const M = 1 + (g.K % 3);
    const dws = [g.R, g.S, g.C, M];
    const dtol = sumTol(Math.max(g.R * g.S * M, g.N * g.H * g.W));
    const dprobe = ck.ops.depthwiseConv2d(ck.zeros(xs).to('cpu'), ck.zeros(dws).to('cpu'), opts);
    op(`depthwiseConv2d ${desc} multiplier ${M}`, [inp(xs), inp(dws), inp([g.C * M])],
      (x, w, b) => ck.ops.depthwiseConv2d(x, w, { ...opts, bias: b, activation: 'relu' }), dtol);
    op(`depthwiseConv2dGrad ${desc} multiplier ${M}`, [inp(dprobe.shape), inp(xs), inp(dws)],
      (dy, x, w) => ck.ops.depthwiseConv2dGrad(dy, x, w, opts), dtol,
      { forward: (dy, x, w) => ck.ops.depthwiseConv2d(x, w, opts), wrt: { dx: 1, dw: 2 } });
    dprobe.dispose();
    // Two groups of g.C input and g.K output channels each.
    const gxs = [g.N, g.H, g.W, 2 * g.C];
    const gws = [g.R, g.S, g.C, 2 * g.K];
    const gopts = { ...opts, groups: 2 };
    const gtol = sumTol(Math.max(g.R * g.S * g.C, g.R * g.S * 2 * g.K, g.N * g.H * g.W));
    const gprobe = ck.ops.conv2d(ck.zeros(gxs).to('cpu'), ck.zeros(gws).to('cpu'), gopts);
    op(`conv2d groups 2 ${desc}`, [inp(gxs), inp(gws), inp([2 * g.K])],
      (x, w, b) => ck.ops.conv2d(x, w, { ...gopts, bias: b }), gtol);
    op(`conv2dGrad groups 2 ${desc}`, [inp(gprobe.shape), inp(gxs), inp(gws)],
      (dy, x, w) => ck.ops.conv2dGrad(dy, x, w, gopts), gtol,
      { forward: (dy, x, w) => ck.ops.conv2d(x, w, gopts), wrt: { dx: 1, dw: 2 } });
    gprobe.dispose();
    // The transposed convolution of this geometry: x [N,H,W,C] grows to K filters.
    const tws = [g.R, g.S, g.K, g.C];
    const tprobe = ck.ops.conv2dTranspose(ck.zeros(xs).to('cpu'), ck.zeros(tws).to('cpu'), opts);
    const ttol = sumTol(Math.max(g.R * g.S * Math.max(g.C, g.K), numel(tprobe.shape) / g.K));
    op(`conv2dTranspose ${desc}`, [inp(xs), inp(tws), inp([g.K])],
      (x, w, b) => ck.ops.conv2dTranspose(x, w, { ...opts, bias: b, activation: 'relu' }), ttol);
    op(`conv2dTransposeGrad ${desc}`, [inp(tprobe.shape), inp(xs), inp(tws)],
      (dy, x, w) => ck.ops.conv2dTransposeGrad(dy, x, w, opts), ttol,
      { forward: (dy, x, w) => ck.ops.conv2dTranspose(x, w, opts), wrt: { dx: 1, dw: 2 } });
    tprobe.dispose();
  }
  for (const g of poolGeometries) {
    const desc = `x [${g.N},${g.H},${g.W},${g.C}] pool ${g.ph}x${g.pw} strides ${g.sh}x${g.sw} ${g.padding}`;
    const xs = [g.N, g.H, g.W, g.C];
    for (const p of [1, 2, 3.5]) {
      const opts = { poolSize: [g.ph, g.pw], strides: [g.sh, g.sw], padding: g.padding, p };
      const probe = ck.ops.lpPool2d(ck.zeros(xs).to('cpu'), opts);
      const tol = { atol: 1e-5, rtol: 1e-4 };
      op(`lpPool2d p ${p} ${desc}`, [inp(xs)], (x) => ck.ops.lpPool2d(x, opts), tol);
      op(`lpPool2dGrad p ${p} ${desc}`, [inp(probe.shape), inp(xs)], (dy, x) => ck.ops.lpPool2dGrad(dy, x, opts),
        { atol: 1e-4, rtol: 1e-3 }, { forward: (dy, x) => ck.ops.lpPool2d(x, opts), wrt: { out: 1 } });
      probe.dispose();
    }
  }
  const spatialShapes = [[1, 1, 1, 1], [2, 3, 5, 4]];
  for (let i = 0; i < reps; i++) spatialShapes.push([rng.int(1, 3), rng.int(1, 9), rng.int(1, 9), rng.int(1, 9)]);
  for (const xs of spatialShapes) {
    const padding = [[rng.int(0, 3), rng.int(0, 3)], [rng.int(0, 3), rng.int(0, 3)]];
    const padded = [xs[0], xs[1] + padding[0][0] + padding[0][1], xs[2] + padding[1][0] + padding[1][1], xs[3]];
    op(`zeroPadding2d [${xs}] padding ${JSON.stringify(padding)}`, [inp(xs)], (x) => ck.ops.zeroPadding2d(x, { padding }), { exact: true });
    op(`zeroPadding2dGrad [${xs}] padding ${JSON.stringify(padding)}`, [inp(padded), inp(xs)],
      (dy, x) => ck.ops.zeroPadding2dGrad(dy, x, { padding }), { exact: true },
      { forward: (dy, x) => ck.ops.zeroPadding2d(x, { padding }), wrt: { out: 1 } });
    const size = [rng.int(1, 3), rng.int(1, 3)];
    const up = [xs[0], xs[1] * size[0], xs[2] * size[1], xs[3]];
    for (const opts of [{ size }, { size, interpolation: 'bilinear' }, { size, interpolation: 'bilinear', halfPixelCenters: false }]) {
      const how = `${opts.interpolation || 'nearest'}${opts.halfPixelCenters === false ? ' corner-aligned' : ''}`;
      op(`upSampling2d [${xs}] size ${size} ${how}`, [inp(xs)], (x) => ck.ops.upSampling2d(x, opts), sumTol(4));
      op(`upSampling2dGrad [${xs}] size ${size} ${how}`, [inp(up), inp(xs)],
        (dy, x) => ck.ops.upSampling2dGrad(dy, x, opts), sumTol(4 * size[0] * size[1]),
        { forward: (dy, x) => ck.ops.upSampling2d(x, opts), wrt: { out: 1 } });
    }
    op(`add [${xs}]`, [inp(xs), inp(xs)], (a, b) => ck.ops.add(a, b), { exact: true });
    const widths = [rng.int(1, 5), rng.int(1, 5), rng.int(1, 5)];
    const parts = widths.map((w) => [...xs.slice(0, 3), w]);
    const joined = [...xs.slice(0, 3), widths.reduce((a, b) => a + b, 0)];
    op(`concatenate [${xs.slice(0, 3)}] widths ${widths}`, parts.map((s) => inp(s)),
      (...ts) => ck.ops.concatenate(ts), { exact: true });
    op(`concatenateGrad [${xs.slice(0, 3)}] widths ${widths}`, [inp(joined), ...parts.map((s) => inp(s))],
      (dy, ...ts) => Object.fromEntries(ck.ops.concatenateGrad(dy, ts).map((t, i) => [`d${i}`, t])), { exact: true },
      { forward: (dy, ...ts) => ck.ops.concatenate(ts), wrt: { d0: 1, d1: 2, d2: 3 } });
    // A gate of one value per example and channel broadcast over space (squeeze-and-excitation).
    const gate = [xs[0], 1, 1, xs[3]];
    op(`mul [${xs}] by a gate [${gate}]`, [inp(xs), inp(gate)], (a, b) => ck.ops.mul(a, b), { exact: true });
    op(`mulGrad [${xs}] by a gate [${gate}]`, [inp(xs), inp(gate), inp(xs)],
      (a, b, dy) => ck.ops.mulGrad(dy, b, a), sumTol(xs[1] * xs[2]),
      { dy: 2, forward: (a, b) => ck.ops.mul(a, b), wrt: { da: 1, db: 0 } });
  }
  const globalShapes = [[1, 1, 1, 1], [2, 1, 1, 5], [3, 7, 5, 4]];
  for (let i = 0; i < reps; i++) globalShapes.push([rng.int(1, 4), rng.int(1, 15), rng.int(1, 15), rng.int(1, 33)]);
  for (const xs of globalShapes) {
    const ys = [xs[0], xs[3]];
    op(`globalAvgPool x [${xs}]`, [inp(xs)], (x) => ck.ops.globalAvgPool(x), sumTol(xs[1] * xs[2]));
    op(`globalAvgPoolGrad x [${xs}]`, [inp(ys), inp(xs)], (dy, x) => ck.ops.globalAvgPoolGrad(dy, x), undefined,
      { forward: (dy, x) => ck.ops.globalAvgPool(x), wrt: { out: 1 } });
    op(`globalMaxPool x [${xs}]`, [inp(xs)], (x) => ck.ops.globalMaxPool(x), { exact: true });
    op(`globalMaxPoolGrad x [${xs}]`, [inp(ys), inp(xs)], (dy, x) => ck.ops.globalMaxPoolGrad(dy, x), { exact: true },
      { forward: (dy, x) => ck.ops.globalMaxPool(x), wrt: { out: 1 } });
  }

  // ---- activations, softmax, dropout ----
  const elemShapes = [[1], [7], [3, 5, 1, 2], [1000 + rng.int(0, 99)]];
  for (let i = 0; i < reps; i++) elemShapes.push([rng.int(1, 9), rng.int(1, 300)]);
  const act = { atol: 2e-6, rtol: 2e-5 };
  for (const s of elemShapes) {
    for (const name of ['relu', 'sigmoid', 'tanh', 'leakyRelu', 'elu']) {
      const opts = name === 'leakyRelu' ? { alpha: 0.15 } : name === 'elu' ? { alpha: 0.7 } : undefined;
      op(`${name} [${s}]`, [inp(s, -3, 3)], (x) => ck.ops[name](x, opts), act);
      // The gradient from the OUTPUT y: take y from the forward op on each device.
      op(`${name}Grad [${s}]`, [inp(s), inp(s, -3, 3)], (dy, x) => ck.ops[`${name}Grad`](dy, ck.ops[name](x, opts), opts), act,
        { forward: (dy, x) => ck.ops[name](x, opts), wrt: { out: 1 } });
    }
    for (const name of ['gelu', 'swish', 'hardSwish', 'hardSigmoid', 'softplus', 'selu', 'mish']) {
      for (const opts of name === 'gelu' ? [{ approximate: false }, { approximate: true }] : [undefined]) {
        const label = opts && opts.approximate ? `${name} approximate` : name;
        op(`${label} [${s}]`, [inp(s, -5, 5)], (x) => ck.ops[name](x, opts), act);
        // The gradient from the INPUT x.
        op(`${label}Grad [${s}]`, [inp(s), inp(s, -5, 5)], (dy, x) => ck.ops[`${name}Grad`](dy, x, opts), act,
          { forward: (dy, x) => ck.ops[name](x, opts), wrt: { out: 1 } });
      }
    }
    const cols = s[s.length - 1];
    op(`softmax [${s}]`, [inp(s, -5, 5)], (x) => ck.ops.softmax(x), sumTol(cols));
    op(`softmaxGrad [${s}]`, [inp(s), inp(s, -5, 5)], (dy, x) => ck.ops.softmaxGrad(dy, ck.ops.softmax(x)), sumTol(cols),
      { forward: (dy, x) => ck.ops.softmax(x), wrt: { out: 1 } });
    const seed = rng.int(0, 2 ** 31);
    const rate = rng.pick([0.1, 0.5, 0.9]);
    op(`dropout [${s}] rate ${rate}`, [inp(s)], (x) => ck.ops.dropout(x, { rate, seed }), { exact: true });
    op(`dropoutGrad [${s}]`, [inp(s), inp(s)], (dy, x) => ck.ops.dropoutGrad(dy, ck.ops.dropout(x, { rate, seed }).mask), { exact: true },
      { forward: (dy, x) => ck.ops.dropout(x, { rate, seed }).y, wrt: { out: 1 } });
    op(`mul [${s}]`, [inp(s), inp(s)], (a, b) => ck.ops.mul(a, b), { exact: true });
    op(`reshape [${s}]`, [inp(s)], (x) => x.reshape([-1]), { exact: true });
  }

  // ---- batch normalization over the last axis ----
  const bnShapes = [[1, 1], [1, 5], [2, 1, 1, 3], [7, 3, 3, 4]];
  for (let i = 0; i < reps; i++) bnShapes.push([rng.int(1, 40), rng.int(1, 20)]);
  for (const s of bnShapes) {
    const C = s[s.length - 1];
    const rows = numel(s) / C;
    const tol = { atol: 2e-5 * Math.sqrt(rows + 1), rtol: 2e-4 };
    op(`batchNorm (inference) [${s}]`, [inp(s), inp([C]), inp([C]), inp([C]), inp([C], 0.1, 2)],
      (x, gamma, beta, mean, variance) => ck.ops.batchNorm(x, { gamma, beta, mean, variance, epsilon: 1e-3 }), tol);
    op(`batchNormTrain [${s}] (moving statistics updated in place)`, [inp(s), inp([C]), inp([C]), inp([C]), inp([C], 0.1, 2)],
      (x, gamma, beta, movingMean, movingVariance) => {
        const r = ck.ops.batchNormTrain(x, { gamma, beta, movingMean, movingVariance, momentum: 0.9, epsilon: 1e-3 });
        return { ...r, movingMean, movingVariance };
      }, tol);
    op(`batchNormTrain [${s}] without gamma/beta`, [inp(s)], (x) => ck.ops.batchNormTrain(x), tol);
    op(`batchNormGrad [${s}]`, [inp(s), inp(s), inp([C])],
      (dy, x, gamma) => {
        const f = ck.ops.batchNormTrain(x, { gamma });
        return ck.ops.batchNormGrad(dy, x, { mean: f.mean, invstd: f.invstd, gamma });
      }, { atol: 5e-5 * Math.sqrt(rows + 1), rtol: 5e-4 },
      { forward: (dy, x, gamma) => ck.ops.batchNormTrain(x, { gamma }).y, wrt: { dx: 1, dgamma: 2 } });
  }

  // ---- losses ----
  const lossShapes = [[1, 1], [1, 2], [3, 10], [17, 5]];
  for (let i = 0; i < reps; i++) lossShapes.push([rng.int(1, 50), rng.int(1, 30)]);
  for (const [rows, cols] of lossShapes) {
    const s = [rows, cols];
    const tol = sumTol(cols);
    const oneHot = new Float32Array(rows * cols);
    const ids = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      ids[r] = rng.int(0, cols - 1);
      oneHot[r * cols + ids[r]] = 1;
    }
    op(`softmaxCrossEntropy [${s}]`, [inp(s, -4, 4), { data: oneHot, shape: s }],
      (logits, labels) => ck.ops.softmaxCrossEntropy(logits, labels), tol, meanLoss);
    op(`softmaxCrossEntropy sparse [${s}]`, [inp(s, -4, 4), { data: ids, shape: [rows] }],
      (logits, labels) => ck.ops.softmaxCrossEntropy(logits, labels, { sparse: true }), tol, meanLoss);
    op(`binaryCrossEntropy [${s}]`, [inp(s, 0.01, 0.99), inp(s, 0, 1)],
      (p, t) => ck.ops.binaryCrossEntropy(p, t), sumTol(cols * 10), meanLoss);
    op(`binaryCrossEntropy fromLogits [${s}]`, [inp(s, -4, 4), inp(s, 0, 1)],
      (p, t) => ck.ops.binaryCrossEntropy(p, t, { fromLogits: true }), tol, meanLoss);
    op(`meanSquaredError [${s}]`, [inp(s), inp(s)], (p, t) => ck.ops.meanSquaredError(p, t), tol, meanLoss);
  }

  // ---- optimizer updates (in place) ----
  const optSizes = [1, 7, 1000 + rng.int(0, 99), rng.int(1, 5000)];
  const opt = { atol: 1e-6, rtol: 1e-5 };
  for (const n of optSizes) {
    const s = [n];
    op(`sgdUpdate [${n}]`, [inp(s), inp(s)], (w, g) => {
      ck.ops.sgdUpdate(w, g, { learningRate: 0.1 });
      return { w };
    }, opt);
    op(`sgdUpdate momentum nesterov [${n}]`, [inp(s), inp(s), inp(s)], (w, g, velocity) => {
      ck.ops.sgdUpdate(w, g, { learningRate: 0.1, momentum: 0.9, nesterov: true, velocity });
      ck.ops.sgdUpdate(w, g, { learningRate: 0.1, momentum: 0.9, nesterov: true, velocity });
      return { w, velocity };
    }, opt);
    op(`adamUpdate [${n}]`, [inp(s), inp(s), inp(s), inp(s, 0, 1)], (w, g, m, v) => {
      ck.ops.adamUpdate(w, g, { m, v, step: 3, learningRate: 0.01 });
      ck.ops.adamUpdate(w, g, { m, v, step: 4, learningRate: 0.01, weightDecay: 0.01 });
      return { w, m, v };
    }, opt);
    op(`rmspropUpdate centered momentum [${n}]`, [inp(s), inp(s), inp(s, 0, 1), inp(s), inp(s, -0.1, 0.1)],
      (w, g, ms, momentumBuffer, mg) => {
        ck.ops.rmspropUpdate(w, g, { ms, momentumBuffer, mg, momentum: 0.5, centered: true, learningRate: 0.01 });
        return { w, ms, momentumBuffer, mg };
      }, { atol: 1e-5, rtol: 1e-4 });
    op(`rmspropUpdate [${n}]`, [inp(s), inp(s), inp(s, 0, 1)], (w, g, ms) => {
      ck.ops.rmspropUpdate(w, g, { ms, learningRate: 0.01 });
      return { w, ms };
    }, { atol: 1e-5, rtol: 1e-4 });
  }

  // ---- image augmentation (Keras's affine_transform, RandomContrast, RandomBrightness) ----
  for (let i = 0; i < reps; i++) {
    const xs = [rng.int(1, 3), rng.int(1, 7), rng.int(1, 7), rng.int(1, 9)];
    const n = xs[0];
    // a turn, zoom and shift about the centre, slightly projective: points inside and outside
    const transforms = new Float32Array(n * 8);
    for (let j = 0; j < n; j++) {
      const a = rng.next() * 2 * Math.PI, z = 0.6 + rng.next();
      const [c, s] = [Math.cos(a) * z, Math.sin(a) * z];
      transforms.set([c, -s, rng.next() * 4 - 2, s, c, rng.next() * 4 - 2, (rng.next() - 0.5) * 0.04, (rng.next() - 0.5) * 0.04], j * 8);
    }
    const t = { data: transforms, shape: [n, 8] };
    for (const fillMode of ['reflect', 'wrap', 'constant', 'nearest']) {
      for (const interpolation of ['bilinear', 'nearest']) {
        const opts = { fillMode, interpolation, fillValue: 0.5 };
        op(`imageTransform [${xs}] ${fillMode} ${interpolation}`, [inp(xs), t], (x, tr) => ck.ops.imageTransform(x, tr, opts), sumTol(4));
        op(`imageTransformGrad [${xs}] ${fillMode} ${interpolation}`, [inp(xs), t, inp(xs)],
          (dy, tr) => ck.ops.imageTransformGrad(dy, tr, opts), sumTol(4 * xs[1] * xs[2]),
          { forward: (dy, tr, x) => ck.ops.imageTransform(x, tr, opts), wrt: { out: 2 } });
      }
    }
    const factors = inp([n], 0.3, 1.7);
    const deltas = inp([n], -0.4, 0.4);
    const clipped = { valueRange: [0.2, 0.8] };
    const open = { valueRange: [-10, 10] };  // no clip near the finite differences' steps
    op(`imageContrast [${xs}]`, [inp(xs, 0, 1), factors], (x, f) => ck.ops.imageContrast(x, f, clipped), sumTol(4));
    op(`imageContrastGrad [${xs}]`, [inp(xs), inp(xs, 0, 1), factors], (dy, x, f) => ck.ops.imageContrastGrad(dy, x, f, open),
      sumTol(xs[1] * xs[2]), { forward: (dy, x, f) => ck.ops.imageContrast(x, f, open), wrt: { out: 1 } });
    op(`imageBrightness [${xs}]`, [inp(xs, 0, 1), deltas], (x, d) => ck.ops.imageBrightness(x, d, clipped), { exact: true });
    op(`imageBrightnessGrad [${xs}]`, [inp(xs), inp(xs, 0, 1), deltas], (dy, x, d) => ck.ops.imageBrightnessGrad(dy, x, d, open),
      { exact: true }, { forward: (dy, x, d) => ck.ops.imageBrightness(x, d, open), wrt: { out: 1 } });
  }

  return cases;
}

module.exports = { compare, opCases, Rng, numel };
