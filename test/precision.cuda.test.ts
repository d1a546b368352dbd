// ck.setPrecision('tf32' | 'bf16'): the GPU's convolutions and dense layers on the tensor cores.
// With CUDA (a GPU, or the addon built on convkit's CUDA emulator, which scripts/cuda-emu.js runs
// this file with): each op in each mode matches the CPU's fp32 op run on operands rounded as the
// mode prescribes (rounded here with plain arithmetic), and is measurably off the unrounded
// result, so the mode really took effect; the precision is the one in force when the op was
// called; a model trains in each mode close to fp32, and its step graphs follow the precision.
// Everywhere: argument checks, and the CPU stays fp32 (bitwise) whatever the setting.
import { afterEach, describe, expect, test } from '@jest/globals';
import * as ck from '../lib';
import { bitwiseEqual, maxAbsDiff, randomArray, tinyData, tinyModel, weightsOf } from '../test-support/helpers';

const cuda = ck.cudaStatus();
const tensorCores = cuda.available && Number(cuda.devices[0].computeCapability.split('.')[0]) >= 8;
ck.setSeed(20261124);

afterEach(() => ck.setPrecision('fp32'));

/** v rounded to `bits` significant bits: ties away from zero (TF32) or to even (bf16). */
function roundSignificand(v: number, bits: number, tiesAway: boolean): number {
  if (v === 0 || !Number.isFinite(v)) return v;
  const e = Math.floor(Math.log2(Math.abs(v))) + 1;  // |v| = m * 2^e, 0.5 <= m < 1
  const scaled = v * 2 ** (bits - e);
  let r = Math.round(Math.abs(scaled));
  if (!tiesAway && Math.abs(Math.abs(scaled) % 1 - 0.5) === 0 && r % 2 === 1) r -= 1;
  return Math.fround(Math.sign(scaled) * r * 2 ** (e - bits));
}

function rounded(t: ck.Tensor, mode: ck.Precision): ck.Tensor {
  const d = t.dataSync();
  if (mode === 'fp32') return ck.tensor(d.slice(), [...t.shape]);
  const out = new Float32Array(d.length);
  d.forEach((v, i) => { out[i] = roundSignificand(v, mode === 'tf32' ? 11 : 8, mode === 'tf32'); });
  return ck.tensor(out, [...t.shape]);
}

/** |got - want| <= 1e-4 * sqrt(red) + 1e-4 |want| everywhere (the fp32 parity tolerance). */
function withinFp32(got: Float32Array, want: Float32Array, red: number): boolean {
  const atol = 1e-4 * Math.sqrt(red);
  return want.every((w, i) => Math.abs(got[i] - w) <= atol + 1e-4 * Math.abs(w));
}

const modes: ck.Precision[] = ['tf32', 'bf16'];

describe('setPrecision / getPrecision', () => {
  test('fp32 by default; the three modes round-trip; anything else is a ValueError naming setPrecision', () => {
    expect(ck.getPrecision()).toBe('fp32');
    for (const p of ['tf32', 'bf16', 'fp32'] as const) {
      ck.setPrecision(p);
      expect(ck.getPrecision()).toBe(p);
    }
    for (const bad of ['fp16', 'TF32', '', 3, null, undefined]) {
      expect(() => ck.setPrecision(bad as ck.Precision)).toThrow(ck.ValueError);
      expect(() => ck.setPrecision(bad as ck.Precision)).toThrow(/setPrecision/);
    }
    expect(ck.getPrecision()).toBe('fp32');
  });

  test('the CPU computes in fp32 whatever the setting: training is bitwise the same', async () => {
    const { x, labels } = tinyData(48, 2);
    const y = ck.tensor(labels, [labels.length]);
    const run = async (mode: ck.Precision) => {
      ck.setPrecision(mode);
      ck.setSeed(7);
      const m = tinyModel();
      m.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy', device: 'cpu' });
      await m.fit(x, y, { epochs: 2, batchSize: 16, verbose: 0, seed: 1 });
      return weightsOf(m);
    };
    const fp32 = await run('fp32');
    for (const mode of modes) expect(bitwiseEqual(await run(mode), fp32)).toBe(true);
  });
});

// Without CUDA the GPU blocks are skipped, and their titles say why.
const skipped = cuda.available ? '' : ` (skipped: ${cuda.reason})`;
(cuda.available ? describe : describe.skip)(`ops on CUDA in each precision${skipped}`, () => {
  const x = ck.tensor(randomArray(2 * 10 * 10 * 24, 5, -1, 1), [2, 10, 10, 24]);
  const w = ck.tensor(randomArray(3 * 3 * 24 * 40, 6, -1, 1), [3, 3, 24, 40]);
  const b = ck.tensor(randomArray(40, 7, -1, 1), [40]);
  const dy = ck.tensor(randomArray(2 * 10 * 10 * 40, 8, -1, 1), [2, 10, 10, 40]);
  const opts = { padding: 'same' as const, activation: 'relu' as const };

  test.each(modes)('conv2d and its gradients in %s: the fp32 op on rounded operands, not the unrounded one', async (mode) => {
    const [xr, wr, dyr] = [x, w, dy].map((t) => rounded(t, tensorCores ? mode : 'fp32'));
    ck.setPrecision(mode);
    const got = ck.ops.conv2d(x.to('cuda'), w.to('cuda'), { ...opts, bias: b.to('cuda') });
    const grads = ck.ops.conv2dGrad(dy.to('cuda'), x.to('cuda'), w.to('cuda'), { padding: 'same' });
    const want = ck.ops.conv2d(xr, wr, { ...opts, bias: b });
    const wantGrads = ck.ops.conv2dGrad(dyr, xr, wr, { padding: 'same' });
    const exact = ck.ops.conv2d(x, w, { ...opts, bias: b });
    const exactGrads = ck.ops.conv2dGrad(dy, x, w, { padding: 'same' });
    const y = await got.data();
    expect(withinFp32(y, await want.data(), 3 * 3 * 24)).toBe(true);
    expect(withinFp32(await grads.dx.data(), await wantGrads.dx.data(), 3 * 3 * 40)).toBe(true);
    expect(withinFp32(await grads.dw.data(), await wantGrads.dw.data(), 2 * 10 * 10)).toBe(true);
    // The bias gradient is a plain fp32 column sum of dy in every mode.
    expect(withinFp32(await grads.db.data(), await exactGrads.db.data(), 2 * 10 * 10)).toBe(true);
    expect(withinFp32(y, await exact.data(), 3 * 3 * 24)).toBe(!tensorCores);
    expect(withinFp32(await grads.dw.data(), await exactGrads.dw.data(), 2 * 10 * 10)).toBe(!tensorCores);
  });

  test.each(modes)('dense and its gradients in %s', async (mode) => {
    const [M, K, N] = [64, 300, 70];
    const dx = ck.tensor(randomArray(M * K, 9, -1, 1), [M, K]);
    const dw = ck.tensor(randomArray(K * N, 10, -1, 1), [K, N]);
    const ddy = ck.tensor(randomArray(M * N, 11, -1, 1), [M, N]);
    const [xr, wr, dyr] = [dx, dw, ddy].map((t) => rounded(t, tensorCores ? mode : 'fp32'));
    ck.setPrecision(mode);
    const got = await ck.ops.dense(dx.to('cuda'), dw.to('cuda')).data();
    const g = ck.ops.denseGrad(ddy.to('cuda'), dx.to('cuda'), dw.to('cuda'));
    const wg = ck.ops.denseGrad(dyr, xr, wr);
    expect(withinFp32(got, await ck.ops.dense(xr, wr).data(), K)).toBe(true);
    expect(withinFp32(await g.dx.data(), await wg.dx.data(), N)).toBe(true);
    expect(withinFp32(await g.dw.data(), await wg.dw.data(), M)).toBe(true);
    expect(withinFp32(got, await ck.ops.dense(dx, dw).data(), K)).toBe(!tensorCores);
  });

  test('an op keeps the precision in force when it was called', async () => {
    ck.setPrecision('bf16');
    const pending = ck.ops.conv2d(x.to('cuda'), w.to('cuda'), opts);
    ck.setPrecision('fp32');
    const got = await pending.data();
    const want = await ck.ops.conv2d(rounded(x, tensorCores ? 'bf16' : 'fp32'), rounded(w, tensorCores ? 'bf16' : 'fp32'), opts).data();
    expect(withinFp32(got, want, 3 * 3 * 24)).toBe(true);
    const now = await ck.ops.conv2d(x.to('cuda'), w.to('cuda'), opts).data();
    expect(maxAbsDiff(now, await ck.ops.conv2d(x, w, opts).data())).toBeLessThan(1e-4 * Math.sqrt(3 * 3 * 24) + 1e-3);
  });
});

(cuda.available ? describe : describe.skip)(`models on CUDA in each precision${skipped}`, () => {
  const { x, labels } = tinyData(96, 3);
  const y = ck.tensor(labels, [labels.length]);
  const initial = weightsOf(tinyModel());

  function build(): ck.LayersModel {
    const m = tinyModel();
    m.setWeights(initial.map((w, i) => ck.tensor(w, [...m.getWeights()[i].shape])));
    m.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'], device: 'cuda' });
    return m;
  }

  async function train(mode: ck.Precision) {
    ck.setPrecision(mode);
    const m = build();
    const h = await m.fit(x, y, { epochs: 4, batchSize: 16, verbose: 0, seed: 2 });
    ck.setPrecision('fp32');
    return { history: h.history, weights: weightsOf(m) };
  }

  test.each(modes)('%s trains as fp32 does: close losses and accuracy, its own rounding', async (mode) => {
    const fp32 = await train('fp32');
    const got = await train(mode);
    const rtol = mode === 'tf32' ? 5e-3 : 3e-2;
    got.history.loss.forEach((l, e) => expect(Math.abs(l - fp32.history.loss[e])).toBeLessThanOrEqual(rtol * fp32.history.loss[e]));
    const accDiff = Math.abs(got.history.accuracy.at(-1)! - fp32.history.accuracy.at(-1)!);
    expect(accDiff).toBeLessThanOrEqual(2 / 96);  // at most two of the 96 examples change class
    expect(bitwiseEqual(got.weights, fp32.weights)).toBe(tensorCores ? false : true);
  });

  test('step graphs follow the precision: a fit in bf16 then one in fp32 replays as direct steps run them', async () => {
    const run = async (graphs: boolean) => {
      ck.setCudaGraphs(graphs);
      try {
        const m = build();
        ck.setPrecision('bf16');
        await m.fit(x, y, { epochs: 2, batchSize: 16, verbose: 0, seed: 4 });
        ck.setPrecision('fp32');
        await m.fit(x, y, { epochs: 2, batchSize: 16, verbose: 0, seed: 5 });
        return { weights: weightsOf(m), captures: m.net.cudaGraphCaptures() };
      } finally {
        ck.setCudaGraphs(true);
      }
    };
    const graphed = await run(true);
    const direct = await run(false);
    expect(direct.captures).toBe(0);
    expect(graphed.captures).toBe(2);  // one per precision (a batch of 16, training)
    expect(bitwiseEqual(graphed.weights, direct.weights)).toBe(true);
  });
});
