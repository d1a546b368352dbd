#!/usr/bin/env node
// CPU-vs-GPU parity of every op and gradient of ck.ops through the public API (random shapes,
// odd sizes, 1x1 images), plus the device semantics of CUDA tensors: to() round trips, data() /
// dataSync(), mixed-device errors, memory figures and out-of-memory recovery. Without a usable
// GPU it checks instead that ck.devices() lists no CUDA device and that to('cuda') throws a
// DeviceError giving the reason.
//
// Used two ways: test/cuda.ops.test.ts runs each case as a jest test, and on a GPU host without
// jest (see docs/gpu.md):
//   CONVKIT_ADDON=build-gpu/Release/convkit.node node scripts/gpu-parity.js [--quick] [--no-oom]
// which loads ../dist and prints "N passed, N failed".
'use strict';

// ---- numbers ----

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
        throw new Error(`${what}: element ${i}: gpu ${g} vs cpu ${w} (must be identical)`);
      }
      continue;
    }
    if (Number.isNaN(w) || Number.isNaN(g)) {
      if (Number.isNaN(w) && Number.isNaN(g)) continue;
      throw new Error(`${what}: element ${i}: gpu ${g} vs cpu ${w}`);
    }
    if (g === w) continue;  // equal infinities too
    const ratio = Math.abs(g - w) / (atol + rtol * Math.abs(w));
    if (!(ratio <= worstRatio)) {
      worstRatio = ratio;
      worst = i;
    }
  }
  if (worstRatio > 1) {
    throw new Error(`${what}: element ${worst}: gpu ${got[worst]} vs cpu ${want[worst]} ` +
      `(|diff| ${Math.abs(got[worst] - want[worst]).toExponential(2)} > atol ${atol.toExponential(1)} + rtol ${rtol} * |cpu|)`);
  }
}

// ---- cases ----

/**
 * The parity and semantics cases: [{ name, run: async () => void }] (run throws on a mismatch).
 * Needs a usable CUDA device.
 */
function buildCases(ck, { seed = 1234, quick = false, oom = true } = {}) {
  const rng = new Rng(seed);
  const reps = quick ? 2 : 5;
  const cases = [];
  const add = (name, run) => cases.push({ name, run });

  // One op on CPU tensors and on copies of them on the GPU; `outputs` picks the tensors to compare
  // from what fn returns (a Tensor, an object of Tensors, or in-place state).
  const parity = (name, inputs, fn, tol = {}) => add(name, async () => {
    const cpu = inputs.map(({ data, shape }) => ck.tensor(data.slice(), shape).to('cpu'));
    const gpu = cpu.map((t) => t.to('cuda'));
    for (const t of gpu) if (t.device !== 'cuda') throw new Error(`${name}: to('cuda') gave a ${t.device} tensor`);
    const outC = fn(...cpu);
    const outG = fn(...gpu);
    const asMap = (o) => (o instanceof ck.Tensor ? { out: o } : o);
    const mc = asMap(outC);
    const mg = asMap(outG);
    for (const key of Object.keys(mc)) {
      const tc = mc[key];
      const tg = mg[key];
      if (!(tg instanceof ck.Tensor)) throw new Error(`${name}: ${key} missing on the GPU`);
      if (tg.device !== 'cuda') throw new Error(`${name}: ${key} is on ${tg.device}, expected cuda`);
      if (tg.shape.join() !== tc.shape.join()) throw new Error(`${name}: ${key} shape [${tg.shape}] vs [${tc.shape}]`);
      const t = typeof tol === 'function' ? tol(key) : tol;
      compare(`${name}: ${key}`, await tg.data(), await tc.data(), t);
    }
    for (const t of [...cpu, ...gpu]) t.dispose();
  });
  const inp = (shape, lo = -1, hi = 1) => ({ data: rng.floats(numel(shape), lo, hi), shape });
  // Tolerance for sums of `n` products of values in [-1, 1] (float32, any summation order).
  const sumTol = (n) => ({ atol: 2e-6 * (n + 1), rtol: 1e-4 });

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
    parity(`conv2d ${desc}`, [inp(xs), inp(ws), inp([g.K])],
      (x, w, b) => ck.ops.conv2d(x, w, { ...opts, bias: b }), tol);
    parity(`conv2d+relu ${desc}`, [inp(xs), inp(ws)],
      (x, w) => ck.ops.conv2d(x, w, { ...opts, activation: 'relu' }), tol);
    // dy has the output's shape: take it from a CPU run of the forward op.
    const probe = ck.ops.conv2d(ck.zeros(xs).to('cpu'), ck.zeros(ws).to('cpu'), opts);
    parity(`conv2dGrad ${desc}`, [inp(probe.shape), inp(xs), inp(ws)],
      (dy, x, w) => ck.ops.conv2dGrad(dy, x, w, opts), tol);
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
    parity(`dense x [${xs}] units ${units} + bias`, [inp(xs), inp([K, units]), inp([units])],
      (x, w, b) => ck.ops.dense(x, w, { bias: b }), tol);
    parity(`dense+relu x [${xs}] units ${units}`, [inp(xs), inp([K, units])],
      (x, w) => ck.ops.dense(x, w, { activation: 'relu' }), tol);
    parity(`denseGrad x [${xs}] units ${units}`, [inp(ys), inp(xs), inp([K, units])],
      (dy, x, w) => ck.ops.denseGrad(dy, x, w), tol);
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
    parity(`maxPool2d ${desc}`, [inp(xs)], (x) => ck.ops.maxPool2d(x, opts), { exact: true });
    parity(`maxPool2dGrad ${desc}`, [inp(probe.shape), inp(xs)], (dy, x) => ck.ops.maxPool2dGrad(dy, x, opts), overlap);
    parity(`avgPool2d ${desc}`, [inp(xs)], (x) => ck.ops.avgPool2d(x, opts), sumTol(g.ph * g.pw));
    parity(`avgPool2dGrad ${desc}`, [inp(probe.shape), inp(xs)], (dy, x) => ck.ops.avgPool2dGrad(dy, x, opts), overlap);
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
    parity(`depthwiseConv2d ${desc} multiplier ${M}`, [inp(xs), inp(dws), inp([g.C * M])],
      (x, w, b) => ck.ops.depthwiseConv2d(x, w, { ...opts, bias: b, activation: 'relu' }), dtol);
    parity(`depthwiseConv2dGrad ${desc} multiplier ${M}`, [inp(dprobe.shape), inp(xs), inp(dws)],
      (dy, x, w) => ck.ops.depthwiseConv2dGrad(dy, x, w, opts), dtol);
    dprobe.dispose();
    // Two groups of g.C input and g.K output channels each.
    const gxs = [g.N, g.H, g.W, 2 * g.C];
    const gws = [g.R, g.S, g.C, 2 * g.K];
    const gopts = { ...opts, groups: 2 };
    const gtol = sumTol(Math.max(g.R * g.S * g.C, g.R * g.S * 2 * g.K, g.N * g.H * g.W));
    const gprobe = ck.ops.conv2d(ck.zeros(gxs).to('cpu'), ck.zeros(gws).to('cpu'), gopts);
    parity(`conv2d groups 2 ${desc}`, [inp(gxs), inp(gws), inp([2 * g.K])],
      (x, w, b) => ck.ops.conv2d(x, w, { ...gopts, bias: b }), gtol);
    parity(`conv2dGrad groups 2 ${desc}`, [inp(gprobe.shape), inp(gxs), inp(gws)],
      (dy, x, w) => ck.ops.conv2dGrad(dy, x, w, gopts), gtol);
    gprobe.dispose();
    // The transposed convolution of this geometry: x [N,H,W,C] grows to K filters.
    const tws = [g.R, g.S, g.K, g.C];
    const tprobe = ck.ops.conv2dTranspose(ck.zeros(xs).to('cpu'), ck.zeros(tws).to('cpu'), opts);
    const ttol = sumTol(Math.max(g.R * g.S * Math.max(g.C, g.K), numel(tprobe.shape) / g.K));
    parity(`conv2dTranspose ${desc}`, [inp(xs), inp(tws), inp([g.K])],
      (x, w, b) => ck.ops.conv2dTranspose(x, w, { ...opts, bias: b, activation: 'relu' }), ttol);
    parity(`conv2dTransposeGrad ${desc}`, [inp(tprobe.shape), inp(xs), inp(tws)],
      (dy, x, w) => ck.ops.conv2dTransposeGrad(dy, x, w, opts), ttol);
    tprobe.dispose();
  }
  for (const g of poolGeometries) {
    const desc = `x [${g.N},${g.H},${g.W},${g.C}] pool ${g.ph}x${g.pw} strides ${g.sh}x${g.sw} ${g.padding}`;
    const xs = [g.N, g.H, g.W, g.C];
    for (const p of [1, 2, 3.5]) {
      const opts = { poolSize: [g.ph, g.pw], strides: [g.sh, g.sw], padding: g.padding, p };
      const probe = ck.ops.lpPool2d(ck.zeros(xs).to('cpu'), opts);
      const tol = { atol: 1e-5, rtol: 1e-4 };
      parity(`lpPool2d p ${p} ${desc}`, [inp(xs)], (x) => ck.ops.lpPool2d(x, opts), tol);
      parity(`lpPool2dGrad p ${p} ${desc}`, [inp(probe.shape), inp(xs)], (dy, x) => ck.ops.lpPool2dGrad(dy, x, opts),
        { atol: 1e-4, rtol: 1e-3 });
      probe.dispose();
    }
  }
  const spatialShapes = [[1, 1, 1, 1], [2, 3, 5, 4]];
  for (let i = 0; i < reps; i++) spatialShapes.push([rng.int(1, 3), rng.int(1, 9), rng.int(1, 9), rng.int(1, 9)]);
  for (const xs of spatialShapes) {
    const padding = [[rng.int(0, 3), rng.int(0, 3)], [rng.int(0, 3), rng.int(0, 3)]];
    const padded = [xs[0], xs[1] + padding[0][0] + padding[0][1], xs[2] + padding[1][0] + padding[1][1], xs[3]];
    parity(`zeroPadding2d [${xs}] padding ${JSON.stringify(padding)}`, [inp(xs)], (x) => ck.ops.zeroPadding2d(x, { padding }), { exact: true });
    parity(`zeroPadding2dGrad [${xs}] padding ${JSON.stringify(padding)}`, [inp(padded), inp(xs)],
      (dy, x) => ck.ops.zeroPadding2dGrad(dy, x, { padding }), { exact: true });
    const size = [rng.int(1, 3), rng.int(1, 3)];
    const up = [xs[0], xs[1] * size[0], xs[2] * size[1], xs[3]];
    for (const opts of [{ size }, { size, interpolation: 'bilinear' }, { size, interpolation: 'bilinear', halfPixelCenters: false }]) {
      const how = `${opts.interpolation || 'nearest'}${opts.halfPixelCenters === false ? ' corner-aligned' : ''}`;
      parity(`upSampling2d [${xs}] size ${size} ${how}`, [inp(xs)], (x) => ck.ops.upSampling2d(x, opts), sumTol(4));
      parity(`upSampling2dGrad [${xs}] size ${size} ${how}`, [inp(up), inp(xs)],
        (dy, x) => ck.ops.upSampling2dGrad(dy, x, opts), sumTol(4 * size[0] * size[1]));
    }
    parity(`add [${xs}]`, [inp(xs), inp(xs)], (a, b) => ck.ops.add(a, b), { exact: true });
    const widths = [rng.int(1, 5), rng.int(1, 5), rng.int(1, 5)];
    const parts = widths.map((w) => [...xs.slice(0, 3), w]);
    const joined = [...xs.slice(0, 3), widths.reduce((a, b) => a + b, 0)];
    parity(`concatenate [${xs.slice(0, 3)}] widths ${widths}`, parts.map((s) => inp(s)),
      (...ts) => ck.ops.concatenate(ts), { exact: true });
    parity(`concatenateGrad [${xs.slice(0, 3)}] widths ${widths}`, [inp(joined), ...parts.map((s) => inp(s))],
      (dy, ...ts) => Object.fromEntries(ck.ops.concatenateGrad(dy, ts).map((t, i) => [`d${i}`, t])), { exact: true });
    // A gate of one value per example and channel broadcast over space (squeeze-and-excitation).
    const gate = [xs[0], 1, 1, xs[3]];
    parity(`mul [${xs}] by a gate [${gate}]`, [inp(xs), inp(gate)], (a, b) => ck.ops.mul(a, b), { exact: true });
    parity(`mulGrad [${xs}] by a gate [${gate}]`, [inp(xs), inp(gate), inp(xs)],
      (a, b, dy) => ck.ops.mulGrad(dy, b, a), sumTol(xs[1] * xs[2]));
  }
  const globalShapes = [[1, 1, 1, 1], [2, 1, 1, 5], [3, 7, 5, 4]];
  for (let i = 0; i < reps; i++) globalShapes.push([rng.int(1, 4), rng.int(1, 15), rng.int(1, 15), rng.int(1, 33)]);
  for (const xs of globalShapes) {
    const ys = [xs[0], xs[3]];
    parity(`globalAvgPool x [${xs}]`, [inp(xs)], (x) => ck.ops.globalAvgPool(x), sumTol(xs[1] * xs[2]));
    parity(`globalAvgPoolGrad x [${xs}]`, [inp(ys), inp(xs)], (dy, x) => ck.ops.globalAvgPoolGrad(dy, x));
    parity(`globalMaxPool x [${xs}]`, [inp(xs)], (x) => ck.ops.globalMaxPool(x), { exact: true });
    parity(`globalMaxPoolGrad x [${xs}]`, [inp(ys), inp(xs)], (dy, x) => ck.ops.globalMaxPoolGrad(dy, x), { exact: true });
  }

  // ---- activations, softmax, dropout ----
  const elemShapes = [[1], [7], [3, 5, 1, 2], [1000 + rng.int(0, 99)]];
  for (let i = 0; i < reps; i++) elemShapes.push([rng.int(1, 9), rng.int(1, 300)]);
  const act = { atol: 2e-6, rtol: 2e-5 };
  for (const s of elemShapes) {
    for (const name of ['relu', 'sigmoid', 'tanh', 'leakyRelu', 'elu']) {
      const opts = name === 'leakyRelu' ? { alpha: 0.15 } : name === 'elu' ? { alpha: 0.7 } : undefined;
      parity(`${name} [${s}]`, [inp(s, -3, 3)], (x) => ck.ops[name](x, opts), act);
      // The gradient from the OUTPUT y: take y from the forward op on each device.
      parity(`${name}Grad [${s}]`, [inp(s), inp(s, -3, 3)], (dy, x) => ck.ops[`${name}Grad`](dy, ck.ops[name](x, opts), opts), act);
    }
    for (const name of ['gelu', 'swish', 'hardSwish', 'hardSigmoid', 'softplus', 'selu', 'mish']) {
      for (const opts of name === 'gelu' ? [{ approximate: false }, { approximate: true }] : [undefined]) {
        const label = opts && opts.approximate ? `${name} approximate` : name;
        parity(`${label} [${s}]`, [inp(s, -5, 5)], (x) => ck.ops[name](x, opts), act);
        // The gradient from the INPUT x.
        parity(`${label}Grad [${s}]`, [inp(s), inp(s, -5, 5)], (dy, x) => ck.ops[`${name}Grad`](dy, x, opts), act);
      }
    }
    const cols = s[s.length - 1];
    parity(`softmax [${s}]`, [inp(s, -5, 5)], (x) => ck.ops.softmax(x), sumTol(cols));
    parity(`softmaxGrad [${s}]`, [inp(s), inp(s, -5, 5)], (dy, x) => ck.ops.softmaxGrad(dy, ck.ops.softmax(x)), sumTol(cols));
    const seed = rng.int(0, 2 ** 31);
    const rate = rng.pick([0.1, 0.5, 0.9]);
    parity(`dropout [${s}] rate ${rate}`, [inp(s)], (x) => ck.ops.dropout(x, { rate, seed }), { exact: true });
    parity(`dropoutGrad [${s}]`, [inp(s), inp(s)], (dy, x) => ck.ops.dropoutGrad(dy, ck.ops.dropout(x, { rate, seed }).mask), { exact: true });
    parity(`mul [${s}]`, [inp(s), inp(s)], (a, b) => ck.ops.mul(a, b), { exact: true });
    parity(`reshape [${s}]`, [inp(s)], (x) => x.reshape([-1]), { exact: true });
  }
  add('activations on an empty tensor', async () => {
    const x = ck.tensor(new Float32Array(0), [0, 3]).to('cuda');
    const y = ck.ops.relu(x);
    if (y.device !== 'cuda' || y.shape.join() !== '0,3' || (await y.data()).length !== 0) throw new Error('bad empty relu');
  });

  // ---- batch normalization over the last axis ----
  const bnShapes = [[1, 1], [1, 5], [2, 1, 1, 3], [7, 3, 3, 4]];
  for (let i = 0; i < reps; i++) bnShapes.push([rng.int(1, 40), rng.int(1, 20)]);
  for (const s of bnShapes) {
    const C = s[s.length - 1];
    const rows = numel(s) / C;
    const tol = { atol: 2e-5 * Math.sqrt(rows + 1), rtol: 2e-4 };
    parity(`batchNorm (inference) [${s}]`, [inp(s), inp([C]), inp([C]), inp([C]), inp([C], 0.1, 2)],
      (x, gamma, beta, mean, variance) => ck.ops.batchNorm(x, { gamma, beta, mean, variance, epsilon: 1e-3 }), tol);
    parity(`batchNormTrain [${s}] (moving statistics updated in place)`, [inp(s), inp([C]), inp([C]), inp([C]), inp([C], 0.1, 2)],
      (x, gamma, beta, movingMean, movingVariance) => {
        const r = ck.ops.batchNormTrain(x, { gamma, beta, movingMean, movingVariance, momentum: 0.9, epsilon: 1e-3 });
        return { ...r, movingMean, movingVariance };
      }, tol);
    parity(`batchNormTrain [${s}] without gamma/beta`, [inp(s)], (x) => ck.ops.batchNormTrain(x), tol);
    parity(`batchNormGrad [${s}]`, [inp(s), inp(s), inp([C])],
      (dy, x, gamma) => {
        const f = ck.ops.batchNormTrain(x, { gamma });
        return ck.ops.batchNormGrad(dy, x, { mean: f.mean, invstd: f.invstd, gamma });
      }, { atol: 5e-5 * Math.sqrt(rows + 1), rtol: 5e-4 });
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
    parity(`softmaxCrossEntropy [${s}]`, [inp(s, -4, 4), { data: oneHot, shape: s }],
      (logits, labels) => ck.ops.softmaxCrossEntropy(logits, labels), tol);
    parity(`softmaxCrossEntropy sparse [${s}]`, [inp(s, -4, 4), { data: ids, shape: [rows] }],
      (logits, labels) => ck.ops.softmaxCrossEntropy(logits, labels, { sparse: true }), tol);
    parity(`binaryCrossEntropy [${s}]`, [inp(s, 0.01, 0.99), inp(s, 0, 1)],
      (p, t) => ck.ops.binaryCrossEntropy(p, t), sumTol(cols * 10));
    parity(`binaryCrossEntropy fromLogits [${s}]`, [inp(s, -4, 4), inp(s, 0, 1)],
      (p, t) => ck.ops.binaryCrossEntropy(p, t, { fromLogits: true }), tol);
    parity(`meanSquaredError [${s}]`, [inp(s), inp(s)], (p, t) => ck.ops.meanSquaredError(p, t), tol);
  }

  // ---- optimizer updates (in place) ----
  const optSizes = [1, 7, 1000 + rng.int(0, 99), rng.int(1, 5000)];
  const opt = { atol: 1e-6, rtol: 1e-5 };
  for (const n of optSizes) {
    const s = [n];
    parity(`sgdUpdate [${n}]`, [inp(s), inp(s)], (w, g) => {
      ck.ops.sgdUpdate(w, g, { learningRate: 0.1 });
      return { w };
    }, opt);
    parity(`sgdUpdate momentum nesterov [${n}]`, [inp(s), inp(s), inp(s)], (w, g, velocity) => {
      ck.ops.sgdUpdate(w, g, { learningRate: 0.1, momentum: 0.9, nesterov: true, velocity });
      ck.ops.sgdUpdate(w, g, { learningRate: 0.1, momentum: 0.9, nesterov: true, velocity });
      return { w, velocity };
    }, opt);
    parity(`adamUpdate [${n}]`, [inp(s), inp(s), inp(s), inp(s, 0, 1)], (w, g, m, v) => {
      ck.ops.adamUpdate(w, g, { m, v, step: 3, learningRate: 0.01 });
      ck.ops.adamUpdate(w, g, { m, v, step: 4, learningRate: 0.01, weightDecay: 0.01 });
      return { w, m, v };
    }, opt);
    parity(`rmspropUpdate centered momentum [${n}]`, [inp(s), inp(s), inp(s, 0, 1), inp(s), inp(s, -0.1, 0.1)],
      (w, g, ms, momentumBuffer, mg) => {
        ck.ops.rmspropUpdate(w, g, { ms, momentumBuffer, mg, momentum: 0.5, centered: true, learningRate: 0.01 });
        return { w, ms, momentumBuffer, mg };
      }, { atol: 1e-5, rtol: 1e-4 });
    parity(`rmspropUpdate [${n}]`, [inp(s), inp(s), inp(s, 0, 1)], (w, g, ms) => {
      ck.ops.rmspropUpdate(w, g, { ms, learningRate: 0.01 });
      return { w, ms };
    }, { atol: 1e-5, rtol: 1e-4 });
  }

  // ---- device semantics ----
  add("to('cuda') and back is exact; data() and dataSync() agree", async () => {
    const values = rng.floats(12345, -1e6, 1e6);
    const x = ck.tensor(values, [12345]).to('cpu');
    const g = x.to('cuda');
    if (g.device !== 'cuda' || g.to('cuda') !== g) throw new Error('to(cuda) of a cuda tensor should be itself');
    const back = g.to('cpu');
    if (back.device !== 'cpu') throw new Error('to(cpu) gave a cuda tensor');
    compare('round trip', await back.data(), values, { exact: true });
    compare('data()', await g.data(), values, { exact: true });
    compare('dataSync()', g.dataSync(), values, { exact: true });
    // A CPU op on the copy, then back to the GPU: the copies order after the ops that make them.
    const r = ck.ops.relu(back).to('cuda');
    compare('relu round trip', await r.data(), values.map((v) => Math.max(v, 0)), { exact: true });
  });
  add('to() copies the values as of the call, before later in-place updates on either side', async () => {
    const values = rng.floats(4099);
    const x = ck.tensor(values.slice(), [4099]).to('cpu');
    const g = x.to('cuda');
    ck.ops.sgdUpdate(x, ck.ones([4099]).to('cpu'), { learningRate: 1 });  // x -= 1 on the CPU
    const c = g.to('cpu');
    ck.ops.sgdUpdate(g, ck.ones([4099]).to('cuda'), { learningRate: 1 });  // g -= 1 on the GPU
    compare('uploaded', await c.data(), values, { exact: true });
    compare('updated on the GPU', await g.data(), await x.data(), { exact: true });
  });
  add('a chain of ops stays on the GPU and matches the CPU', async () => {
    const x = ck.tensor(rng.floats(2 * 9 * 9 * 3), [2, 9, 9, 3]).to('cpu');
    const w = ck.tensor(rng.floats(3 * 3 * 3 * 8), [3, 3, 3, 8]).to('cpu');
    const k = ck.tensor(rng.floats(4 * 4 * 8 * 10), [4 * 4 * 8, 10]).to('cpu');
    const run = (xx, ww, kk) => ck.ops.softmax(ck.ops.dense(ck.ops.maxPool2d(ck.ops.conv2d(xx, ww, { padding: 'same', activation: 'relu' })).reshape([2, -1]), kk));
    const c = run(x, w, k);
    const g = run(x.to('cuda'), w.to('cuda'), k.to('cuda'));
    if (g.device !== 'cuda') throw new Error(`chain ended on ${g.device}`);
    compare('chain', await g.data(), await c.data(), { atol: 1e-5, rtol: 1e-4 });
  });
  add('mixed devices: DeviceError naming the op and the devices', async () => {
    const a = ck.ones([2, 3]).to('cpu');
    const b = a.to('cuda');
    const expectDeviceError = (fn, ...parts) => {
      try {
        fn();
      } catch (e) {
        if (!(e instanceof ck.DeviceError)) throw new Error(`expected DeviceError, got ${e && e.name}: ${e && e.message}`);
        for (const p of parts) if (!e.message.includes(p)) throw new Error(`message "${e.message}" lacks "${p}"`);
        return;
      }
      throw new Error('no error thrown');
    };
    expectDeviceError(() => ck.ops.mul(a, b), 'mul', 'a on cpu', 'b on cuda');
    expectDeviceError(() => ck.ops.dense(b, ck.ones([3, 2]).to('cpu')), 'dense', 'x on cuda', 'kernel on cpu');
    expectDeviceError(() => ck.ops.sgdUpdate(b, a), 'sgdUpdate', 'weights on cuda', 'gradient on cpu');
    expectDeviceError(() => ck.ops.concatenate([a, b]), 'concatenate', 'tensor 0 on cpu', 'tensor 1 on cuda');
    expectDeviceError(() => ck.ops.add(b, a), 'add', 'a on cuda', 'b on cpu');
    // The process is fine afterwards.
    compare('after', await ck.ops.mul(b, b).data(), new Float32Array(6).fill(1), { exact: true });
  });
  add('memory(): device bytes of live tensors, cached after dispose, emptyCache()', async () => {
    const bytes = 4 << 20;
    let last = '';
    for (let attempt = 0; attempt < 5; attempt++) {  // a GC finalizer may free other tensors meanwhile
      const before = ck.memory();
      const t = ck.ops.relu(ck.zeros([bytes / 4]).to('cuda'));
      await t.data();
      const live = ck.memory();
      t.dispose();
      const after = ck.memory();
      const grew = live.deviceBytes - before.deviceBytes;
      last = `live +${grew}, allocations +${live.deviceAllocations - before.deviceAllocations}, cached after dispose +${after.deviceCachedBytes - live.deviceCachedBytes}`;
      if (grew >= 2 * bytes && after.deviceCachedBytes >= live.deviceCachedBytes + bytes && after.deviceBytes <= live.deviceBytes - bytes &&
          live.devicePeakBytes >= live.deviceBytes) break;
      if (attempt === 4) throw new Error(`memory figures off: ${last}`);
    }
    ck.emptyCache();
    if (ck.memory().deviceCachedBytes !== 0) throw new Error('emptyCache() left cached bytes');
  });
  add('a model on the CPU refuses CUDA inputs with a DeviceError naming both devices', async () => {
    const model = ck.sequential([ck.layers.input({ shape: [3] }), ck.layers.dense({ units: 2 })]);
    try {
      model.predict(ck.ones([4, 3]).to('cuda'));
    } catch (e) {
      if (e instanceof ck.DeviceError && /cuda tensor but the model is on the cpu/.test(e.message)) return;
      throw e;
    }
    throw new Error('predict on a CUDA tensor did not throw');
  });
  if (oom) {
    add('out of device memory: DeviceError, and the process stays usable', async () => {
      const block = ck.zeros([1 << 28]).to('cuda');  // 1 GiB
      const held = [];
      let error = null;
      try {
        for (let i = 0; i < 4096; i++) held.push(ck.ops.relu(block));
      } catch (e) {
        error = e;
      }
      const n = held.length;
      for (const t of held) t.dispose();
      if (!(error instanceof ck.DeviceError) || !/out of memory/.test(error.message) || !/relu/.test(error.message)) {
        throw new Error(`expected an out-of-memory DeviceError from relu, got ${error && error.name}: ${error && error.message}`);
      }
      // The freed blocks are reused, and work still runs.
      const again = ck.ops.relu(block);
      compare('after OOM', (await ck.ops.mul(again, again).data()).subarray(0, 16), new Float32Array(16), { exact: true });
      again.dispose();
      block.dispose();
      ck.emptyCache();
      return `${n} x 1 GiB allocated before: ${error.message}`;
    });
  }
  return cases;
}

/** Without a usable GPU: the checks that CUDA reports itself unavailable, with a reason. */
function noCudaChecks(ck) {
  const status = ck.cudaStatus();
  const problems = [];
  if (status.available) problems.push('cudaStatus().available is true');
  if (typeof status.reason !== 'string' || status.reason.length === 0) problems.push('no reason given');
  if (status.devices.length !== 0) problems.push('cudaStatus() lists devices');
  const devices = ck.devices();
  if (devices.some((d) => d.type === 'cuda') || devices.length !== 1 || devices[0].type !== 'cpu') {
    problems.push(`devices() is ${JSON.stringify(devices)}`);
  }
  try {
    ck.ones([2]).to('cuda');
    problems.push("to('cuda') did not throw");
  } catch (e) {
    if (!(e instanceof ck.DeviceError)) problems.push(`to('cuda') threw ${e && e.name}`);
    else if (!e.message.includes(status.reason)) problems.push(`to('cuda') message "${e.message}" lacks the reason`);
  }
  return { reason: status.reason, problems };
}

module.exports = { buildCases, noCudaChecks, compare, Rng };

if (require.main === module) {
  (async () => {
    const path = require('path');
    const ck = require(path.join(__dirname, '..', 'dist'));
    const quick = process.argv.includes('--quick');
    const oom = !process.argv.includes('--no-oom');
    const status = ck.cudaStatus();
    console.log(`devices: ${JSON.stringify(ck.devices())}`);
    if (!status.available) {
      const { reason, problems } = noCudaChecks(ck);
      console.log(`CUDA unavailable (${reason}): checked that it says so`);
      problems.forEach((p) => console.log(`FAIL ${p}`));
      console.log(`${problems.length ? 0 : 1} passed, ${problems.length} failed`);
      process.exit(problems.length ? 1 : 0);
    }
    let passed = 0;
    let failed = 0;
    const t0 = Date.now();
    for (const c of buildCases(ck, { quick, oom })) {
      try {
        const note = await c.run();
        passed++;
        if (note) console.log(`ok   ${c.name}: ${note}`);
      } catch (e) {
        failed++;
        console.log(`FAIL ${c.name}: ${e && e.message}`);
      }
    }
    console.log(`memory: ${JSON.stringify(ck.memory())}`);
    console.log(`${passed} passed, ${failed} failed (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    process.exit(failed ? 1 : 0);
  })().catch((e) => {
    console.error(e);
    process.exit(2);
  });
}
