// ck.ops.conv2dTranspose / conv2dTransposeGrad against a plain-loop scatter reference (float64) on
// every ISA path this CPU runs, PyTorch's conv_transpose2d, Keras's output sizes, finite
// differences, and the typed errors of configurations Keras refuses.
import { describe, expect, test } from '@jest/globals';
import { spawnSync } from 'child_process';
import * as ck from '../lib';
import * as ref from '../test-support/reference';
import { describeIsas, t, useIsa, vals } from '../test-support/isa';

type Pad = 'valid' | 'same';
interface Case {
  x: [number, number, number, number];  // N, H, W, C
  k: [number, number];
  filters: number;
  strides: [number, number];
  padding: Pad;
  outputPadding: [number, number] | null;
  dilation?: [number, number];
  /** The output height and width Keras's Conv2DTranspose gives (deconv_output_length, worked by hand). */
  keras: [number, number];
}

const cases: Case[] = [
  { x: [1, 1, 1, 1], k: [1, 1], filters: 1, strides: [1, 1], padding: 'valid', outputPadding: null, keras: [1, 1] },
  // valid: in * stride + max(k - stride, 0)
  { x: [2, 3, 4, 2], k: [3, 3], filters: 3, strides: [2, 2], padding: 'valid', outputPadding: null, keras: [7, 9] },
  { x: [1, 4, 3, 3], k: [2, 1], filters: 2, strides: [3, 2], padding: 'valid', outputPadding: null, keras: [12, 6] },
  { x: [2, 5, 5, 4], k: [4, 4], filters: 5, strides: [2, 2], padding: 'valid', outputPadding: null, keras: [12, 12] },
  // same: in * stride
  { x: [2, 4, 3, 3], k: [3, 3], filters: 4, strides: [2, 2], padding: 'same', outputPadding: null, keras: [8, 6] },
  { x: [1, 3, 5, 2], k: [4, 2], filters: 3, strides: [2, 3], padding: 'same', outputPadding: null, keras: [6, 15] },
  { x: [1, 6, 6, 17], k: [3, 3], filters: 19, strides: [1, 1], padding: 'same', outputPadding: null, keras: [6, 6] },
  // outputPadding: (in - 1) * stride + k - 2 * pad + outputPadding, pad = k // 2 ('same') or 0
  { x: [2, 3, 4, 2], k: [3, 3], filters: 3, strides: [2, 2], padding: 'same', outputPadding: [1, 0], keras: [6, 7] },
  { x: [1, 4, 4, 3], k: [3, 3], filters: 2, strides: [2, 2], padding: 'valid', outputPadding: [1, 1], keras: [10, 10] },
  { x: [2, 3, 3, 2], k: [5, 3], filters: 2, strides: [3, 2], padding: 'same', outputPadding: [2, 1], keras: [9, 6] },
  { x: [1, 2, 5, 3], k: [1, 1], filters: 4, strides: [3, 3], padding: 'valid', outputPadding: [0, 2], keras: [4, 15] },
  // dilation (Keras dilates the kernel first: k_eff = (k - 1) * d + 1)
  { x: [1, 4, 3, 2], k: [3, 2], filters: 3, strides: [1, 2], padding: 'valid', outputPadding: null, dilation: [2, 2], keras: [8, 7] },
  { x: [2, 3, 4, 16], k: [3, 3], filters: 32, strides: [2, 2], padding: 'same', outputPadding: null, keras: [6, 8] },
];

const opts = (c: Case) => ({ strides: c.strides, padding: c.padding, outputPadding: c.outputPadding, dilation: c.dilation ?? [1, 1] });
const wShape = (c: Case): number[] => [c.k[0], c.k[1], c.filters, c.x[3]];

/**
 * TensorFlow's conv2d_transpose by its definition: input pixel (i, j) scatters x * w[r, s] onto
 * output pixel (i * stride - padTop + r * dilation, ...), the padding being TensorFlow's 'same'
 * (or 0) for the convolution from the output back to the input. Float64.
 */
function reference(c: Case, x: ArrayLike<number>, w: ArrayLike<number>, b?: ArrayLike<number>): Float64Array {
  const [N, H, W, C] = c.x;
  const [Ho, Wo] = c.keras;
  const F = c.filters;
  const d = c.dilation ?? [1, 1];
  const padTop = (inSize: number, outSize: number, a: number) => {
    if (c.padding === 'valid') return 0;
    const kEff = (c.k[a] - 1) * d[a] + 1;
    return Math.floor(Math.max((inSize - 1) * c.strides[a] + kEff - outSize, 0) / 2);
  };
  const ph = padTop(H, Ho, 0), pw = padTop(W, Wo, 1);
  const y = new Float64Array(N * Ho * Wo * F);
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < H; i++) {
      for (let j = 0; j < W; j++) {
        for (let r = 0; r < c.k[0]; r++) {
          const oh = i * c.strides[0] - ph + r * d[0];
          if (oh < 0 || oh >= Ho) continue;
          for (let s = 0; s < c.k[1]; s++) {
            const ow = j * c.strides[1] - pw + s * d[1];
            if (ow < 0 || ow >= Wo) continue;
            for (let ci = 0; ci < C; ci++) {
              const xv = x[((n * H + i) * W + j) * C + ci];
              for (let f = 0; f < F; f++) y[((n * Ho + oh) * Wo + ow) * F + f] += xv * w[((r * c.k[1] + s) * F + f) * C + ci];
            }
          }
        }
      }
    }
  }
  if (b) for (let i = 0; i < y.length; i++) y[i] += b[i % F];
  return y;
}

/** The gradients of sum(dy * reference(x, w) + b) by the same scatter, read backwards. */
function referenceGrad(c: Case, dy: ArrayLike<number>, x: ArrayLike<number>, w: ArrayLike<number>) {
  const [N, H, W, C] = c.x;
  const [Ho, Wo] = c.keras;
  const F = c.filters;
  const d = c.dilation ?? [1, 1];
  const padTop = (inSize: number, outSize: number, a: number) => c.padding === 'valid' ? 0
    : Math.floor(Math.max((inSize - 1) * c.strides[a] + (c.k[a] - 1) * d[a] + 1 - outSize, 0) / 2);
  const ph = padTop(H, Ho, 0), pw = padTop(W, Wo, 1);
  const dx = new Float64Array(x.length), dw = new Float64Array(w.length), db = new Float64Array(F);
  for (let i = 0; i < dy.length; i++) db[i % F] += dy[i];
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < H; i++) {
      for (let j = 0; j < W; j++) {
        for (let r = 0; r < c.k[0]; r++) {
          const oh = i * c.strides[0] - ph + r * d[0];
          if (oh < 0 || oh >= Ho) continue;
          for (let s = 0; s < c.k[1]; s++) {
            const ow = j * c.strides[1] - pw + s * d[1];
            if (ow < 0 || ow >= Wo) continue;
            for (let ci = 0; ci < C; ci++) {
              const xi = ((n * H + i) * W + j) * C + ci;
              for (let f = 0; f < F; f++) {
                const g = dy[((n * Ho + oh) * Wo + ow) * F + f];
                const wi = ((r * c.k[1] + s) * F + f) * C + ci;
                dx[xi] += g * w[wi];
                dw[wi] += g * x[xi];
              }
            }
          }
        }
      }
    }
  }
  return { dx, dw, db };
}

const tol = (terms: number) => ({ rtol: 1e-4, atol: 2e-6 * Math.max(1, Math.sqrt(terms)) + 1e-6 });
const name = (c: Case) => `x [${c.x}] k ${c.k.join('x')} -> ${c.filters} strides ${c.strides.join('x')} ${c.padding}` +
  ` outputPadding ${JSON.stringify(c.outputPadding)}${c.dilation ? ` dilation ${c.dilation.join('x')}` : ''}`;
const named = cases.map((c) => ({ ...c, name: name(c) }));

function data(c: Case, seed: number) {
  const rng = new ref.Rng(seed);
  const yShape = [c.x[0], ...c.keras, c.filters];
  return {
    x: rng.array(ref.prod(c.x)), w: rng.array(ref.prod(wShape(c))), b: rng.array(c.filters),
    dy: rng.array(ref.prod(yShape)), yShape,
  };
}

describeIsas('conv2dTranspose on the %s kernels', (isa) => {
  useIsa(isa);

  test.each(named)('forward (plain, bias, bias + relu) matches the scatter reference: $name', (c) => {
    const { x, w, b, yShape } = data(c, 11);
    const terms = c.k[0] * c.k[1] * c.x[3];
    const y = ck.ops.conv2dTranspose(t(x, c.x), t(w, wShape(c)), opts(c));
    expect(y.shape).toEqual(yShape);
    ref.expectClose(vals(y), reference(c, x, w), { ...tol(terms), name: `y ${c.name}`, shape: yShape });
    const yb = ck.ops.conv2dTranspose(t(x, c.x), t(w, wShape(c)), { ...opts(c), bias: t(b, [c.filters]) });
    ref.expectClose(vals(yb), reference(c, x, w, b), { ...tol(terms), name: `y+b ${c.name}`, shape: yShape });
    const yr = ck.ops.conv2dTranspose(t(x, c.x), t(w, wShape(c)), { ...opts(c), bias: t(b, [c.filters]), activation: 'relu' });
    ref.expectClose(vals(yr), reference(c, x, w, b).map((v) => Math.max(v, 0)), { ...tol(terms), name: `relu ${c.name}`, shape: yShape });
  });

  test.each(named)('gradients match the reference: $name', (c) => {
    const { x, w, dy, yShape } = data(c, 12);
    const want = referenceGrad(c, dy, x, w);
    const got = ck.ops.conv2dTransposeGrad(t(dy, yShape), t(x, c.x), t(w, wShape(c)), opts(c));
    expect(got.dx.shape).toEqual(c.x);
    expect(got.dw.shape).toEqual(wShape(c));
    expect(got.db.shape).toEqual([c.filters]);
    const pixels = ref.prod(yShape) / c.filters;
    ref.expectClose(vals(got.dx), want.dx, { ...tol(c.k[0] * c.k[1] * c.filters), name: `dx ${c.name}`, shape: c.x });
    ref.expectClose(vals(got.dw), want.dw, { ...tol(pixels), name: `dw ${c.name}`, shape: wShape(c) });
    ref.expectClose(vals(got.db), want.db, { ...tol(pixels), name: `db ${c.name}` });
  });
});

describe('conv2dTranspose', () => {
  test.each(named)("output size is Keras's deconv_output_length: $name", (c) => {
    const y = ck.ops.conv2dTranspose(ck.zeros(c.x), ck.zeros(wShape(c)), opts(c));
    expect(y.shape).toEqual([c.x[0], ...c.keras, c.filters]);
  });

  // PyTorch as the peer where /usr/bin/python3 has it (CI installs python3-torch: .ci/run).
  const python = '/usr/bin/python3';
  const hasTorch = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
  if (!hasTorch) console.warn(`ops.conv-transpose: PyTorch is not installed (${python} -c 'import torch' failed)`);
  (hasTorch ? test : test.skip)("matches PyTorch's conv_transpose2d, cropped where TensorFlow's padding puts the output", () => {
    // torch computes the uncropped transposed convolution ((in - 1) * stride + k_eff rows); the
    // output is its window from TensorFlow's top/left padding, zeros past its end (outputPadding).
    const inputs = named.map((c, i) => ({ c, ...data(c, 100 + i) }));
    const script = `
import json, sys, torch
import torch.nn.functional as F
out = []
for case in json.load(sys.stdin):
    N, H, W, C = case['x']; kh, kw = case['k']; f = case['filters']
    x = torch.tensor(case['xv'], dtype=torch.float64).reshape(N, H, W, C).permute(0, 3, 1, 2)
    w = torch.tensor(case['wv'], dtype=torch.float64).reshape(kh, kw, f, C).permute(3, 2, 0, 1)
    y = F.conv_transpose2d(x, w, stride=case['strides'], dilation=case['dilation'])
    out.append(y.permute(0, 2, 3, 1).reshape(-1).tolist() + [float(y.shape[2]), float(y.shape[3])])
json.dump(out, sys.stdout)`;
    const payload = inputs.map(({ c, x, w }) => ({ x: c.x, k: c.k, filters: c.filters, strides: c.strides, dilation: c.dilation ?? [1, 1], xv: Array.from(x), wv: Array.from(w) }));
    const run = spawnSync(python, ['-c', script], { input: JSON.stringify(payload), encoding: 'utf8', maxBuffer: 1 << 26 });
    if (run.status !== 0) throw new Error(`${python} with torch failed: ${run.stderr}`);
    const results: number[][] = JSON.parse(run.stdout);
    inputs.forEach(({ c, x, w, yShape }, i) => {
      const full = results[i];
      const [FH, FW] = full.splice(full.length - 2, 2);
      const d = c.dilation ?? [1, 1];
      const top = (a: number) => c.padding === 'valid' ? 0
        : Math.floor(Math.max((c.x[1 + a] - 1) * c.strides[a] + (c.k[a] - 1) * d[a] + 1 - c.keras[a], 0) / 2);
      const want = new Float64Array(ref.prod(yShape));
      for (let n = 0; n < c.x[0]; n++) {
        for (let h = 0; h < c.keras[0]; h++) {
          for (let q = 0; q < c.keras[1]; q++) {
            const fh = h + top(0), fw = q + top(1);
            if (fh >= FH || fw >= FW) continue;
            for (let f = 0; f < c.filters; f++) want[((n * c.keras[0] + h) * c.keras[1] + q) * c.filters + f] = full[((n * FH + fh) * FW + fw) * c.filters + f];
          }
        }
      }
      const y = ck.ops.conv2dTranspose(t(x, c.x), t(w, wShape(c)), opts(c));
      ref.expectClose(vals(y), want, { ...tol(c.k[0] * c.k[1] * c.x[3]), name: `torch ${c.name}`, shape: yShape });
    });
  });

  test('finite differences agree with the gradients', () => {
    const c: Case = { x: [1, 3, 2, 2], k: [3, 2], filters: 2, strides: [2, 3], padding: 'same', outputPadding: [1, 2], keras: [6, 5] };
    const { x, w, b, yShape } = data(c, 13);
    const r = new ref.Rng(14).array(ref.prod(yShape));
    const loss = ([xx, ww, bb]: Float32Array[]) =>
      ref.dot(vals(ck.ops.conv2dTranspose(t(xx, c.x), t(ww, wShape(c)), { ...opts(c), bias: t(bb, [c.filters]) })), r);
    const g = ck.ops.conv2dTransposeGrad(t(r, yShape), t(x, c.x), t(w, wShape(c)), opts(c));
    [g.dx, g.dw, g.db].forEach((analytic, which) => {
      const fd = ref.finiteDiff(loss, [x, w, b], which);
      ref.expectClose(vals(analytic), fd.grad, { rtol: 1e-2, atol: 1e-3, name: ['dx', 'dw', 'db'][which] });
    });
  });

  test('configurations Keras refuses are typed errors naming the op and the values', () => {
    const x = ck.zeros([1, 3, 3, 2]);
    expect(() => ck.ops.conv2dTranspose(x, ck.zeros([3, 3, 4, 2]), { strides: 2, outputPadding: 2 }))
      .toThrow(new ck.ValueError('conv2dTranspose: outputPadding along the height (2) must be smaller than the stride (2)'));
    expect(() => ck.ops.conv2dTranspose(x, ck.zeros([3, 3, 4, 5])))
      .toThrow(ck.ShapeError);
    expect(() => ck.ops.conv2dTranspose(x, ck.zeros([3, 3, 4, 5]))).toThrow(/in-channels\) 5 does not match the input channels 2/);
    // An even kernel with 'same' padding and outputPadding 0: a 4x4 output convolves back to 2x2.
    expect(() => ck.ops.conv2dTranspose(x, ck.zeros([2, 2, 4, 2]), { strides: 2, padding: 'same', outputPadding: 0 }))
      .toThrow(new ck.ShapeError("conv2dTranspose: an output of 4x4 does not convolve back to the input's 3x3 (it gives 2x2); change outputPadding or padding (input [1,3,3,2], filter [2,2,4,2])"));
    expect(() => ck.ops.conv2dTranspose(x, ck.zeros([3, 3, 4, 2]), { outputPadding: -1 })).toThrow(ck.ValueError);
    expect(() => ck.ops.conv2dTranspose(x, ck.zeros([3, 3, 4, 2]), { activation: 'sigmoid' as never })).toThrow(ck.ValueError);
    expect(() => ck.ops.conv2dTranspose(x, ck.zeros([3, 3, 4, 2]), { outputPading: 1 } as never)).toThrow(/unknown option 'outputPading'/);
    expect(() => ck.ops.conv2dTransposeGrad(ck.zeros([1, 3, 3, 4]), x, ck.zeros([3, 3, 4, 2])))
      .toThrow(new ck.ShapeError('conv2dTransposeGrad: dy must have the output shape [1,5,5,4], got [1,3,3,4]'));
  });
});
