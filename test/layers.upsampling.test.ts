// UpSampling2D's halfPixelCenters: bilinear at (dst + 0.5) / size - 0.5 (Keras 3's layer,
// PyTorch's align_corners=False) against a plain float64 reference; the default still samples
// as tfjs's layer (bit for bit as ck.ops.upSampling2d with halfPixelCenters false) and keeps
// tfjs's config; the flag saves and loads; a model with the layer trains with the finite
// differences of its loss as gradients.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ck from '../lib';
import * as ref from '../test-support/reference';
import { randomArray, weightsOf } from '../test-support/helpers';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-upsampling-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Half-pixel bilinear up-sampling of NHWC x by whole factors, in float64, written out per axis. */
function halfPixelBilinear(x: ArrayLike<number>, [n, h, w, c]: number[], [sh, sw]: number[]): Float64Array {
  // Source position (i + 0.5) / s - 0.5 clamped to [0, len - 1]: its two neighbours and the weight of the upper.
  const axis = (i: number, s: number, len: number) => {
    const at = Math.min(Math.max((i + 0.5) / s - 0.5, 0), len - 1);
    const lo = Math.floor(at);
    return { lo, hi: Math.min(lo + 1, len - 1), t: at - lo };
  };
  const out = new Float64Array(n * h * sh * w * sw * c);
  for (let b = 0; b < n; b++)
    for (let i = 0; i < h * sh; i++) {
      const r = axis(i, sh, h);
      for (let j = 0; j < w * sw; j++) {
        const q = axis(j, sw, w);
        for (let k = 0; k < c; k++) {
          const v = (y: number, xx: number) => x[((b * h + y) * w + xx) * c + k];
          const top = v(r.lo, q.lo) * (1 - q.t) + v(r.lo, q.hi) * q.t;
          const bottom = v(r.hi, q.lo) * (1 - q.t) + v(r.hi, q.hi) * q.t;
          out[((b * h * sh + i) * w * sw + j) * c + k] = top * (1 - r.t) + bottom * r.t;
        }
      }
    }
  return out;
}

const up = (args: Parameters<typeof ck.layers.upSampling2d>[0], input: number[]) =>
  ck.sequential([ck.layers.input({ shape: input }), ck.layers.upSampling2d(args)]);

describe('UpSampling2D halfPixelCenters', () => {
  test.each([
    [[2, 3], [4, 5, 3]],
    [[3, 1], [3, 2, 17]],
    [[4, 2], [1, 1, 2]],
  ])('size %j on %j samples at (dst + 0.5) / size - 0.5, as the float64 reference', async (size, input) => {
    const dims = [2, ...input];
    const xs = randomArray(ref.prod(dims), 9, -2, 2);
    const model = up({ size: size as [number, number], interpolation: 'bilinear', halfPixelCenters: true }, input);
    const got = await (model.predict(ck.tensor(xs, dims)) as ck.Tensor).data();
    ref.expectClose(got, halfPixelBilinear(xs, dims, size), { rtol: 1e-6, atol: 1e-6 });
  });

  test("the default samples as tfjs's layer, bit for bit, and its config stays tfjs's", async () => {
    const dims = [2, 4, 5, 3];
    const xs = randomArray(ref.prod(dims), 4, -2, 2);
    const model = up({ size: [2, 3], interpolation: 'bilinear' }, dims.slice(1));
    const got = await (model.predict(ck.tensor(xs, dims)) as ck.Tensor).data();
    const want = await ck.ops.upSampling2d(ck.tensor(xs, dims), { size: [2, 3], interpolation: 'bilinear', halfPixelCenters: false }).data();
    expect(Buffer.from(got.buffer).equals(Buffer.from(want.buffer))).toBe(true);
    expect(model.layers[0].getConfig()).not.toHaveProperty('halfPixelCenters');
    // and differs from the half-pixel sampling, so the flag reaches the kernel
    expect(ref.maxAbs(got.map((v, i) => v - halfPixelBilinear(xs, dims, [2, 3])[i]))).toBeGreaterThan(0.05);
  });

  test('saves and loads: the flag is in the config only when set', async () => {
    const model = up({ size: [2, 2], interpolation: 'bilinear', halfPixelCenters: true, name: 'up' }, [3, 4, 2]);
    expect(model.getLayer('up').getConfig()).toMatchObject({ interpolation: 'bilinear', halfPixelCenters: true });
    await model.save(`file://${dir}/half`);
    const back = await ck.loadModel(`file://${dir}/half`);
    const layer = back.getLayer('up') as ck.Layer & { halfPixelCenters: boolean };
    expect(layer.halfPixelCenters).toBe(true);
    const x = ck.tensor(randomArray(2 * 3 * 4 * 2, 6, -1, 1), [2, 3, 4, 2]);
    const [a, b] = await Promise.all([(model.predict(x) as ck.Tensor).data(), (back.predict(x) as ck.Tensor).data()]);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
  });

  test('with nearest interpolation it is a ValueError naming the layer', () => {
    expect(() => ck.layers.upSampling2d({ halfPixelCenters: true, name: 'u' }))
      .toThrow(new ck.ValueError("u: halfPixelCenters applies to interpolation 'bilinear', got interpolation 'nearest'"));
    expect(() => ck.layers.upSampling2d({ interpolation: 'bilinear', halfPixelCenters: 1 as never, name: 'u' })).toThrow(ck.ValueError);
  });

  test('the trained gradients are the finite differences of the loss', async () => {
    const input = [3, 4, 2];
    const build = () => {
      ck.setSeed(5);
      const m = ck.sequential([
        ck.layers.input({ shape: input }),
        ck.layers.conv2d({ filters: 3, kernelSize: 2, padding: 'same', name: 'before' }),
        ck.layers.upSampling2d({ size: [3, 2], interpolation: 'bilinear', halfPixelCenters: true }),
        ck.layers.conv2d({ filters: 2, kernelSize: [2, 3], name: 'out' }),
      ]);
      m.compile({ optimizer: ck.optimizers.sgd({ learningRate: 1 }), loss: 'meanSquaredError' });
      return m;
    };
    const model = build();
    expect(model.getLayer('out').outputShape).toEqual([null, 8, 6, 2]);
    const n = 2;
    const x = ck.tensor(randomArray(n * 24, 31, -1, 1), [n, ...input]);
    const y = ck.tensor(randomArray(n * 96, 32, -1, 1), [n, 8, 6, 2]);
    const w0 = weightsOf(model);
    await model.fit(x, y, { epochs: 1, batchSize: n, shuffle: false, verbose: 0 });
    const grads = weightsOf(model).map((w, k) => w.map((v, i) => w0[k][i] - v));  // lr 1: w1 = w0 - g
    const probe = build();
    const shapes = model.getWeights().map((w) => [...w.shape]);
    const target = y.dataSync();
    // Keras's mean squared error, in float64 from the predictions.
    const lossAt = (weights: Float32Array[]) => {
      probe.setWeights(weights.map((w, k) => ck.tensor(w, shapes[k])));
      const p = (probe.predict(x) as ck.Tensor).dataSync();
      let s = 0;
      for (let i = 0; i < p.length; i++) s += (p[i] - target[i]) ** 2;
      return s / p.length;
    };
    // The first conv's weights reach the loss only through the up-sampling's backward pass.
    w0.forEach((w, k) => {
      const picks = Array.from({ length: w.length }, (_, i) => i).filter((i) => i % 3 === 0 || i === w.length - 1);
      const fd = ref.finiteDiff((ws) => lossAt(ws), w0, k, { indices: picks, eps: 1e-2 });
      ref.expectClose(ref.gather(grads[k], picks), fd.grad, { rtol: 2e-2, atol: 2e-4, name: `weight ${k}` });
    });
  });
});
