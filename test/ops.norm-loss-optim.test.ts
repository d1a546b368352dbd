// Batch normalization, the losses and the optimizer updates against the plain-JS reference (Keras's
// formulas), on every ISA path this CPU supports, plus finite-difference checks of the gradients.
import { describe, expect, test } from '@jest/globals';
import * as ck from '../lib';
import * as ref from '../test-support/reference';
import { describeIsas, describeIsaThreads, t, useIsa, useThreads, vals } from '../test-support/isa';

const rowsCols = (shape: readonly number[]): [number, number] => {
  const cols = shape[shape.length - 1];
  return [ref.prod(shape) / cols, cols];
};

// Small and odd shapes, one row, and enough rows for several row blocks and thread chunks.
const bnShapes: number[][] = [[8, 5], [2, 3, 3, 7], [17, 33], [1, 4], [64, 16], [5, 1], [300, 7], [6000, 5], [4, 40, 40, 3]];

function batchNormCaseTests(): void {
  test.each(bnShapes)('train: y, batch mean, invstd and the moving statistics on [%s]', (...shape) => {
    const [rows, C] = rowsCols(shape);
    const rng = new ref.Rng(rows * 100 + C);
    const x = rng.array(rows * C, 1, 4); // an offset mean: the variance must not cancel badly
    const gamma = rng.array(C, 0.5, 1.5);
    const beta = rng.array(C);
    const mm = rng.array(C);
    const mv = rng.array(C, 0.5, 2);
    for (const [label, withAffine, eps, momentum] of [
      ['defaults with gamma/beta', true, undefined, undefined],
      ['no gamma/beta, eps 1e-5, momentum 0.9', false, 1e-5, 0.9],
    ] as const) {
      const movingMean = t(mm, [C]);
      const movingVariance = t(mv, [C]);
      const r = ck.ops.batchNormTrain(t(x, shape), {
        gamma: withAffine ? t(gamma, [C]) : undefined,
        beta: withAffine ? t(beta, [C]) : undefined,
        movingMean, movingVariance, epsilon: eps, momentum,
      });
      const want = ref.batchNormTrain(x, rows, C, {
        gamma: withAffine ? gamma : undefined, beta: withAffine ? beta : undefined, eps, momentum, movingMean: mm, movingVariance: mv,
      });
      expect(r.y.shape).toEqual(shape);
      expect(r.mean.shape).toEqual([C]);
      expect(r.invstd.shape).toEqual([C]);
      // y = x*scale + shift in float32 (scale = gamma*invstd) may round like |mean*scale| * 2^-23:
      // large when the batch variance is 0 (one row) and invstd = 1/sqrt(eps).
      const yAtol = 2e-5 + 4 * 2 ** -23 * ref.maxAbs(want.mean) * ref.maxAbs(want.invstd) * (withAffine ? ref.maxAbs(gamma) : 1);
      ref.expectClose(vals(r.y), want.y, { rtol: 1e-4, atol: yAtol, name: `batchNormTrain y (${label})`, shape });
      ref.expectClose(vals(r.mean), want.mean, { rtol: 1e-5, atol: 1e-6, name: `batchNormTrain mean (${label})` });
      ref.expectClose(vals(r.invstd), want.invstd, { rtol: 1e-4, atol: 1e-6, name: `batchNormTrain invstd (${label})` });
      // The moving statistics are updated in place, Keras-style, with the biased batch variance.
      ref.expectClose(vals(movingMean), want.movingMean!, { rtol: 1e-5, atol: 1e-6, name: `moving mean (${label})` });
      ref.expectClose(vals(movingVariance), want.movingVariance!, { rtol: 1e-4, atol: 1e-6, name: `moving variance (${label})` });
    }
  });

  test.each(bnShapes)('gradient dx, dgamma, dbeta on [%s]', (...shape) => {
    const [rows, C] = rowsCols(shape);
    const rng = new ref.Rng(rows * 3 + C * 5);
    const x = rng.array(rows * C, -2, 2);
    const gamma = rng.array(C, 0.5, 1.5);
    const dy = rng.array(rows * C);
    const stats = ref.batchNormTrain(x, rows, C);
    for (const g of [gamma, undefined]) {
      const got = ck.ops.batchNormGrad(t(dy, shape), t(x, shape), { mean: t(stats.mean, [C]), invstd: t(stats.invstd, [C]), gamma: g ? t(g, [C]) : undefined });
      const want = ref.batchNormGrad(dy, x, rows, C, stats.mean, stats.invstd, g);
      const label = g ? 'with gamma' : 'without gamma';
      expect(got.dx.shape).toEqual(shape);
      const sums = { rtol: 1e-4, atol: 1e-5 * Math.sqrt(rows) };
      ref.expectClose(vals(got.dx), want.dx, { rtol: 1e-3, atol: 1e-4, name: `batchNormGrad dx (${label})`, shape });
      ref.expectClose(vals(got.dgamma), want.dgamma, { ...sums, name: `batchNormGrad dgamma (${label})` });
      ref.expectClose(vals(got.dbeta), want.dbeta, { ...sums, name: `batchNormGrad dbeta (${label})` });
    }
  });
}

// The kernels split rows into blocks and thread chunks.
describeIsaThreads('batch normalization on the %s kernels with %i thread(s)', (isa, threads) => {
  useIsa(isa);
  useThreads(threads);
  batchNormCaseTests();
});

describeIsas('batch normalization on the %s kernels', (isa) => {
  useIsa(isa);
  batchNormCaseTests();

  test('train without moving statistics still normalizes each channel to mean 0, variance ~1', () => {
    const rng = new ref.Rng(3);
    const [rows, C] = [50, 6];
    const x = rng.array(rows * C, -3, 5);
    const y = vals(ck.ops.batchNormTrain(t(x, [rows, C]), { epsilon: 1e-6 }).y);
    for (let c = 0; c < C; c++) {
      let s = 0;
      let s2 = 0;
      for (let r = 0; r < rows; r++) {
        s += y[r * C + c];
        s2 += y[r * C + c] ** 2;
      }
      expect(Math.abs(s / rows)).toBeLessThan(1e-5);
      expect(Math.abs(s2 / rows - 1)).toBeLessThan(1e-3);
    }
  });

  test.each(bnShapes)('inference with given mean/variance on [%s]', (...shape) => {
    const [rows, C] = rowsCols(shape);
    const rng = new ref.Rng(rows * 7 + C);
    const x = rng.array(rows * C, -2, 2);
    const mean = rng.array(C);
    const variance = rng.array(C, 0.1, 3);
    const gamma = rng.array(C, 0.5, 1.5);
    const beta = rng.array(C);
    const y = ck.ops.batchNorm(t(x, shape), { mean: t(mean, [C]), variance: t(variance, [C]), gamma: t(gamma, [C]), beta: t(beta, [C]) });
    expect(y.shape).toEqual(shape);
    ref.expectClose(vals(y), ref.batchNormInfer(x, rows, C, mean, variance, { gamma, beta }), { rtol: 1e-5, atol: 1e-6, name: 'batchNorm (inference)', shape });
    const y2 = ck.ops.batchNorm(t(x, shape), { mean: t(mean, [C]), variance: t(variance, [C]), epsilon: 0.01 });
    ref.expectClose(vals(y2), ref.batchNormInfer(x, rows, C, mean, variance, { eps: 0.01 }), { rtol: 1e-5, atol: 1e-6, name: 'batchNorm (inference, no affine)', shape });
  });

  test('batchNormGrad agrees with central differences of the training forward (x, gamma, beta)', () => {
    const rng = new ref.Rng(17);
    const shape = [6, 3];
    const [rows, C] = [6, 3];
    const x = rng.array(rows * C, -2, 2);
    const gamma = rng.array(C, 0.5, 1.5);
    const beta = rng.array(C);
    const r = rng.array(rows * C);
    const loss = ([xi, gi, bi]: Float32Array[]): number =>
      ref.dot(ck.ops.batchNormTrain(t(xi, shape), { gamma: t(gi, [C]), beta: t(bi, [C]) }).y.dataSync(), r);
    const fwd = ck.ops.batchNormTrain(t(x, shape), { gamma: t(gamma, [C]), beta: t(beta, [C]) });
    const an = ck.ops.batchNormGrad(t(r, shape), t(x, shape), { mean: fwd.mean, invstd: fwd.invstd, gamma: t(gamma, [C]) });
    for (const [which, analytic, name] of [[0, an.dx, 'dx'], [1, an.dgamma, 'dgamma'], [2, an.dbeta, 'dbeta']] as const) {
      const fd = ref.finiteDiff(loss, [x, gamma, beta], which, { eps: 1e-2 });
      ref.expectClose(ref.gather(vals(analytic), fd.indices), fd.grad, { rtol: 2e-3, atol: 2e-4, name: `batchNorm ${name} vs finite differences` });
    }
  });
});

// ---- losses ----

interface XentCase {
  shape: number[];
}
const xentShapes: XentCase[] = [{ shape: [1, 1] }, { shape: [4, 10] }, { shape: [7, 3] }, { shape: [3, 2, 5] }, { shape: [16, 17] }, { shape: [2, 1000] }, { shape: [3001, 10] }];

function oneHot(ids: number[], cols: number): Float32Array {
  const out = new Float32Array(ids.length * cols);
  ids.forEach((c, r) => (out[r * cols + c] = 1));
  return out;
}

const meanOf = (a: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s / a.length;
};

describeIsas('losses on the %s kernels', (isa) => {
  useIsa(isa);
  const lossTol = { rtol: 1e-5, atol: 1e-6 };

  test.each(xentShapes)('softmaxCrossEntropy with one-hot, soft and sparse labels on $shape', ({ shape }) => {
    const [rows, cols] = rowsCols(shape);
    const rng = new ref.Rng(rows * 31 + cols);
    const logits = rng.array(rows * cols, -4, 4);
    const ids = Array.from({ length: rows }, () => rng.int(0, cols - 1));
    const hot = oneHot(ids, cols);

    const dense = ck.ops.softmaxCrossEntropy(t(logits, shape), t(hot, shape));
    const want = ref.softmaxCrossEntropy(logits, hot, rows, cols);
    expect(dense.loss.shape).toEqual([rows]);
    expect(dense.grad.shape).toEqual(shape);
    ref.expectClose(vals(dense.loss), want.loss, { ...lossTol, name: 'softmaxCrossEntropy loss (one-hot)' });
    ref.expectClose(vals(dense.grad), want.grad, { ...lossTol, name: 'softmaxCrossEntropy grad (one-hot)', shape });
    // With one-hot labels the mean-loss gradient is (softmax - onehot) / rows.
    const sm = ref.softmax(logits, rows, cols);
    ref.expectClose(vals(dense.grad), Float32Array.from(sm, (p, i) => (p - hot[i]) / rows), { ...lossTol, name: '(softmax - onehot)/rows' });

    const soft = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      const row = ref.softmax(rng.array(cols, -2, 2), 1, cols);
      soft.set(row, r * cols);
    }
    const softOut = ck.ops.softmaxCrossEntropy(t(logits, shape), t(soft, shape));
    const wantSoft = ref.softmaxCrossEntropy(logits, soft, rows, cols);
    ref.expectClose(vals(softOut.loss), wantSoft.loss, { ...lossTol, name: 'softmaxCrossEntropy loss (soft labels)' });
    ref.expectClose(vals(softOut.grad), wantSoft.grad, { ...lossTol, name: 'softmaxCrossEntropy grad (soft labels)', shape });

    const sparseShape = shape.slice(0, -1);
    const sparse = ck.ops.softmaxCrossEntropy(t(logits, shape), t(ids, sparseShape), { sparse: true });
    const wantSparse = ref.softmaxCrossEntropy(logits, ids, rows, cols, true);
    expect(sparse.loss.shape).toEqual([rows]);
    expect(sparse.grad.shape).toEqual(shape);
    ref.expectClose(vals(sparse.loss), wantSparse.loss, { ...lossTol, name: 'softmaxCrossEntropy loss (sparse)' });
    ref.expectClose(vals(sparse.grad), wantSparse.grad, { ...lossTol, name: 'softmaxCrossEntropy grad (sparse)', shape });
    // Sparse ids and their one-hot rows are the same loss.
    ref.expectClose(vals(sparse.loss), vals(dense.loss), { ...lossTol, name: 'sparse vs one-hot' });
  });

  test('softmaxCrossEntropy is stable for huge logits', () => {
    const logits = [1000, -1000, 0, 500, 800, -3000];
    const labels = [0, 1, 0, 1, 0, 0];
    const out = ck.ops.softmaxCrossEntropy(t(logits, [2, 3]), t(labels, [2, 3]));
    const want = ref.softmaxCrossEntropy(logits, labels, 2, 3);
    expect(vals(out.loss).every(Number.isFinite)).toBe(true);
    ref.expectClose(vals(out.loss), want.loss, { ...lossTol, name: 'huge-logit loss' });
    ref.expectClose(vals(out.grad), want.grad, { ...lossTol, name: 'huge-logit grad' });
  });

  const bceShapes: number[][] = [[1, 1], [4, 1], [5, 3], [2, 3, 7], [8, 17], [2001, 9]];

  test.each(bceShapes)('binaryCrossEntropy from probabilities and from logits on [%s]', (...shape) => {
    const [rows, cols] = rowsCols(shape);
    const rng = new ref.Rng(rows * 13 + cols);
    const n = rows * cols;
    const probs = rng.array(n, 0.02, 0.98);
    const hard = Float32Array.from({ length: n }, () => (rng.next() < 0.5 ? 0 : 1));
    const softT = rng.array(n, 0, 1);
    for (const [label, target] of [['0/1 targets', hard], ['soft targets', softT]] as const) {
      const p = ck.ops.binaryCrossEntropy(t(probs, shape), t(target, shape));
      const want = ref.binaryCrossEntropy(probs, target, rows, cols);
      expect(p.loss.shape).toEqual([rows]);
      expect(p.grad.shape).toEqual(shape);
      ref.expectClose(vals(p.loss), want.loss, { ...lossTol, name: `bce(probs) loss, ${label}` });
      ref.expectClose(vals(p.grad), want.grad, { rtol: 1e-4, atol: 1e-6, name: `bce(probs) grad, ${label}`, shape });

      const logits = rng.array(n, -8, 8);
      const l = ck.ops.binaryCrossEntropy(t(logits, shape), t(target, shape), { fromLogits: true });
      const wantL = ref.binaryCrossEntropy(logits, target, rows, cols, true);
      ref.expectClose(vals(l.loss), wantL.loss, { ...lossTol, name: `bce(logits) loss, ${label}` });
      ref.expectClose(vals(l.grad), wantL.grad, { rtol: 1e-5, atol: 1e-7, name: `bce(logits) grad, ${label}`, shape });
    }
  });

  test('binaryCrossEntropy clips probabilities to [1e-7, 1-1e-7] as Keras does', () => {
    // p = 0 or 1 against the wrong target costs -log(1e-7) = 16.118..., never Infinity.
    const input = [0, 1, 0, 1];
    const target = [1, 0, 0, 1];
    const out = ck.ops.binaryCrossEntropy(t(input, [4, 1]), t(target, [4, 1]));
    const want = ref.binaryCrossEntropy(input, target, 4, 1);
    ref.expectClose(vals(out.loss), want.loss, { rtol: 1e-3, atol: 1e-5, name: 'clipped bce loss' });
    expect(vals(out.loss)[0]).toBeCloseTo(-Math.log(1e-7), 2);
    // Clipping is active at 0 and 1, so the gradient there is 0 (as through Keras's clip).
    ref.expectClose(vals(out.grad), want.grad, { rtol: 0, atol: 0, name: 'clipped bce grad' });
    // Large logits are stable too.
    const l = ck.ops.binaryCrossEntropy(t([100, -100, 100, -100], [2, 2]), t([0, 1, 1, 0], [2, 2]), { fromLogits: true });
    // Each wrong-signed |logit| of 100 costs 100, each right one ~0 (row means [100, 0]).
    ref.expectClose(vals(l.loss), [100, 0], { rtol: 1e-6, atol: 1e-6, name: 'bce(logits) saturated' });
    ref.expectClose(vals(l.grad), [0.25, -0.25, 0, 0], { rtol: 1e-6, atol: 1e-6, name: 'bce(logits) saturated grad' });
  });

  test.each([[[1, 1]], [[6, 4]], [[2, 3, 9]], [[33, 17]], [[2001, 9]]])('meanSquaredError on %j', (shape) => {
    const [rows, cols] = rowsCols(shape);
    const rng = new ref.Rng(rows + cols * 3);
    const y = rng.array(rows * cols, -3, 3);
    const target = rng.array(rows * cols, -3, 3);
    const out = ck.ops.meanSquaredError(t(y, shape), t(target, shape));
    const want = ref.meanSquaredError(y, target, rows, cols);
    expect(out.loss.shape).toEqual([rows]);
    expect(out.grad.shape).toEqual(shape);
    ref.expectClose(vals(out.loss), want.loss, { ...lossTol, name: 'mse loss' });
    ref.expectClose(vals(out.grad), want.grad, { ...lossTol, name: 'mse grad', shape });
  });

  describe('finite differences of the batch-mean loss', () => {
    const shape = [3, 4];
    const [rows, cols] = [3, 4];

    test('softmaxCrossEntropy (dense and sparse)', () => {
      const rng = new ref.Rng(41);
      const logits = rng.array(12, -2, 2);
      const ids = [2, 0, 3];
      const hot = oneHot(ids, cols);
      for (const sparse of [false, true]) {
        const labels = sparse ? t(ids, [rows]) : t(hot, shape);
        const loss = ([xi]: Float32Array[]): number => meanOf(ck.ops.softmaxCrossEntropy(t(xi, shape), labels, { sparse }).loss.dataSync());
        const an = vals(ck.ops.softmaxCrossEntropy(t(logits, shape), labels, { sparse }).grad);
        const fd = ref.finiteDiff(loss, [logits], 0, { eps: 1e-2 });
        ref.expectClose(ref.gather(an, fd.indices), fd.grad, { rtol: 2e-3, atol: 1e-4, name: `softmaxCrossEntropy grad (sparse=${sparse}) vs finite differences` });
      }
    });

    test('binaryCrossEntropy (probabilities and logits)', () => {
      const rng = new ref.Rng(42);
      const probs = rng.array(12, 0.2, 0.8);
      const logits = rng.array(12, -3, 3);
      const target = rng.array(12, 0, 1);
      for (const [fromLogits, x, eps] of [[false, probs, 2e-3], [true, logits, 1e-2]] as const) {
        const loss = ([xi]: Float32Array[]): number => meanOf(ck.ops.binaryCrossEntropy(t(xi, shape), t(target, shape), { fromLogits }).loss.dataSync());
        const an = vals(ck.ops.binaryCrossEntropy(t(x, shape), t(target, shape), { fromLogits }).grad);
        const fd = ref.finiteDiff(loss, [x], 0, { eps });
        ref.expectClose(ref.gather(an, fd.indices), fd.grad, { rtol: 2e-3, atol: 2e-4, name: `binaryCrossEntropy grad (fromLogits=${fromLogits}) vs finite differences` });
      }
    });

    test('meanSquaredError', () => {
      const rng = new ref.Rng(43);
      const y = rng.array(12, -2, 2);
      const target = rng.array(12, -2, 2);
      const loss = ([yi]: Float32Array[]): number => meanOf(ck.ops.meanSquaredError(t(yi, shape), t(target, shape)).loss.dataSync());
      const an = vals(ck.ops.meanSquaredError(t(y, shape), t(target, shape)).grad);
      const fd = ref.finiteDiff(loss, [y], 0, { eps: 1e-2 });
      ref.expectClose(ref.gather(an, fd.indices), fd.grad, { rtol: 2e-3, atol: 1e-4, name: 'meanSquaredError grad vs finite differences' });
    });
  });
});

// ---- optimizers ----

const optSizes = [1, 17, 1000, 100003];

/** Runs `steps` updates on native tensors and the reference; compares weights and state. */
describeIsas('optimizer updates on the %s kernels', (isa) => {
  useIsa(isa);
  const tol = { rtol: 1e-5, atol: 1e-7 };

  const sgdConfigs = [
    { label: 'plain (default lr 0.01)', opts: {} },
    { label: 'lr 0.1', opts: { learningRate: 0.1 } },
    { label: 'momentum 0.9', opts: { learningRate: 0.05, momentum: 0.9 } },
    { label: 'nesterov momentum 0.9', opts: { learningRate: 0.05, momentum: 0.9, nesterov: true } },
  ];
  describe.each(optSizes)('size %i', (n) => {
    test.each(sgdConfigs)('sgd $label over 3 steps', ({ opts }) => {
      const rng = new ref.Rng(n + 1);
      const w0 = rng.array(n);
      const w = t(w0, [n]);
      const needsVelocity = (opts as { momentum?: number }).momentum !== undefined;
      const velocity = needsVelocity ? ck.zeros([n]) : undefined;
      const wRef = Float64Array.from(w0);
      const vRef = needsVelocity ? new Float64Array(n) : null;
      for (let step = 0; step < 3; step++) {
        const g = rng.array(n, -2, 2);
        ck.ops.sgdUpdate(w, t(g, [n]), { ...opts, velocity });
        ref.sgdStep(wRef, g, vRef, opts);
      }
      ref.expectClose(vals(w), wRef, { ...tol, name: 'sgd weights' });
      if (velocity) ref.expectClose(vals(velocity), vRef!, { ...tol, name: 'sgd velocity' });
    });

    const adamConfigs = [
      { label: 'defaults', opts: {} },
      { label: 'lr 0.01, beta1 0.8, beta2 0.99, epsilon 1e-6', opts: { learningRate: 0.01, beta1: 0.8, beta2: 0.99, epsilon: 1e-6 } },
      { label: 'AdamW weightDecay 0.004', opts: { learningRate: 0.01, weightDecay: 0.004 } },
    ];
    test.each(adamConfigs)('adam $label over 3 steps', ({ opts }) => {
      const rng = new ref.Rng(n + 2);
      const w0 = rng.array(n);
      const w = t(w0, [n]);
      const m = ck.zeros([n]);
      const v = ck.zeros([n]);
      const wRef = Float64Array.from(w0);
      const mRef = new Float64Array(n);
      const vRef = new Float64Array(n);
      for (let step = 1; step <= 3; step++) {
        const g = rng.array(n, -2, 2);
        ck.ops.adamUpdate(w, t(g, [n]), { ...opts, m, v, step });
        ref.adamStep(wRef, g, mRef, vRef, step, opts);
      }
      ref.expectClose(vals(w), wRef, { ...tol, name: 'adam weights' });
      // v sums squares: relative only (1 - beta2 rounded from float 0.999 in float is 1.3e-5 off).
      // m sums signed terms, so its rounding is bounded by float eps times the largest |g|.
      ref.expectClose(vals(m), mRef, { rtol: 2e-6, atol: 2 * 2 ** -23, name: 'adam m' });
      ref.expectClose(vals(v), vRef, { rtol: 2e-6, atol: 0, name: 'adam v' });
    });

    const rmsConfigs = [
      { label: 'defaults', opts: {} },
      { label: 'momentum 0.9', opts: { momentum: 0.9, learningRate: 0.01 } },
      { label: 'centered', opts: { centered: true, rho: 0.8 } },
      { label: 'centered with momentum 0.5', opts: { centered: true, momentum: 0.5, epsilon: 1e-6 } },
    ];
    test.each(rmsConfigs)('rmsprop $label over 3 steps', ({ opts }) => {
      const rng = new ref.Rng(n + 3);
      const o = opts as { momentum?: number; centered?: boolean };
      const w0 = rng.array(n);
      const w = t(w0, [n]);
      const ms = ck.zeros([n]);
      const mom = o.momentum ? ck.zeros([n]) : undefined;
      const mg = o.centered ? ck.zeros([n]) : undefined;
      const wRef = Float64Array.from(w0);
      const msRef = new Float64Array(n);
      const momRef = o.momentum ? new Float64Array(n) : null;
      const mgRef = o.centered ? new Float64Array(n) : null;
      for (let step = 0; step < 3; step++) {
        const g = rng.array(n, -2, 2);
        ck.ops.rmspropUpdate(w, t(g, [n]), { ...opts, ms, momentumBuffer: mom, mg });
        ref.rmspropStep(wRef, g, msRef, momRef, mgRef, opts);
      }
      ref.expectClose(vals(w), wRef, { rtol: 1e-5, atol: 1e-6, name: 'rmsprop weights' });
      ref.expectClose(vals(ms), msRef, { rtol: 2e-6, atol: 0, name: 'rmsprop ms' });
      if (mom) ref.expectClose(vals(mom), momRef!, { rtol: 1e-4, atol: 1e-6, name: 'rmsprop momentum' });
      if (mg) ref.expectClose(vals(mg), mgRef!, { ...tol, name: 'rmsprop mg' });
    });
  });

  test('adam: the first step moves every weight by about lr against the gradient sign (Keras epsilon placement)', () => {
    // Step 1: m = (1-b1) g, v = (1-b2) g^2, lr_t = lr sqrt(1-b2)/(1-b1), so Keras's
    // w -= lr_t m / (sqrt(v) + eps) is lr * g / (|g| + eps / sqrt(1-b2)): epsilon acts 1/sqrt(1-b2)
    // times larger than in the "eps added to sqrt(v_hat)" formulation, visible for small |g|.
    const n = 9;
    const w = ck.zeros([n]);
    const g = [3, -2, 1, -0.5, 0.25, -4, 7, -8, 0.125];
    const eps = 1e-6;
    ck.ops.adamUpdate(w, t(g, [n]), { m: ck.zeros([n]), v: ck.zeros([n]), step: 1, learningRate: 0.1, epsilon: eps });
    const b2 = 0.999;
    ref.expectClose(vals(w), g.map((x) => (-0.1 * x) / (Math.abs(x) + eps / Math.sqrt(1 - b2))), { rtol: 2e-6, atol: 0, name: 'adam first step' });
  });
});
