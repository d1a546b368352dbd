// Keras's random preprocessing layers (RandomFlip, RandomRotation, RandomZoom,
// RandomTranslation, RandomContrast, RandomBrightness). Their training-mode outputs are read
// back exactly through one SGD step of a dense layer after them (kernel zero, identity targets:
// the step writes example j's output into kernel column j) and compared against plain loops: flips
// and quarter turns pixel for pixel, other transforms against an independent float64 sampler of
// Keras's affine_transform (numpy's pad modes per corner), contrast and brightness against float64
// loops. Fixed ranges ([a, a]) make a draw deterministic; random ranges are checked for
// reproducibility (same seeds, same outputs) and independence (examples and seeds differ). The
// input gradients are checked by central finite differences, predict is the identity, configs
// round-trip through save/load with Keras's names, and a model with all six trains. With CUDA (a
// GPU or the emulator addon) the CUDA executor draws and computes what the CPU does.
import { describe, expect, test } from '@jest/globals';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ck from '../lib';
import { randomArray } from '../test-support/helpers';

const L = ck.layers;
const [H, W, C] = [5, 6, 2];
const N = 4;  // examples per batch: kernel column j receives example j (SGD rate N^2 / 2, exact)

function expectClose(name: string, got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol = 0): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const tol = atol + rtol * Math.abs(want[i]);
    if (!(Math.abs(got[i] - want[i]) <= tol)) throw new Error(`${name}[${i}]: got ${got[i]}, want ${want[i]} (tolerance ${tol})`);
  }
}

/**
 * The training-mode outputs of `layers` on x [N, h, w, c], one per example, read through one
 * training step: flatten, a dense layer with N units, kernel 0, mean squared error against the
 * identity, SGD with rate N^2 / 2 sets kernel column j to example j's output exactly.
 */
async function trainingOutputs(layers: ck.Layer[], x: Float32Array, shape = [H, W, C], seed = 7, device: 'cpu' | 'cuda' = 'cpu'): Promise<Float32Array[]> {
  const size = shape[0] * shape[1] * shape[2];
  const dense = L.dense({ units: N, useBias: false, kernelInitializer: 'zeros' });
  const model = ck.sequential([L.input({ shape }), ...layers, L.flatten(), dense]);
  model.compile({ optimizer: ck.optimizers.sgd({ learningRate: (N * N) / 2 }), loss: 'meanSquaredError', device });
  const eye = Float32Array.from({ length: N * N }, (_, i) => (i % (N + 1) === 0 ? 1 : 0));
  await model.fit(ck.tensor(x, [N, ...shape]), ck.tensor(eye, [N, N]), { epochs: 1, batchSize: N, shuffle: false, seed, verbose: 0 });
  const k = await dense.getWeights()[0].data();
  return Array.from({ length: N }, (_, j) => Float32Array.from({ length: size }, (_, i) => k[i * N + j]));
}

const image = (x: Float32Array, j: number, size = H * W * C) => x.subarray(j * size, (j + 1) * size);

/** A fill mode's index (numpy's pad modes, as Keras pads before sampling), written as folding. */
function fillIndex(i: number, n: number, mode: string): number {
  if (i >= 0 && i < n) return i;
  if (mode === 'nearest') return i < 0 ? 0 : n - 1;
  if (mode === 'wrap') return ((i % n) + n) % n;
  if (mode === 'reflect') {
    let v = i;
    while (v < 0 || v >= n) v = v < 0 ? -v - 1 : 2 * n - 1 - v;
    return v;
  }
  return -1;  // constant
}

/** Keras's affine_transform of one image [h, w, c] in float64: output (x, y) reads (a0 x + a1 y + a2, b0 x + b1 y + b2). */
function affineRef(img: ArrayLike<number>, h: number, w: number, c: number, t: number[], fill: string, interp: string, fillValue = 0): Float64Array {
  const out = new Float64Array(h * w * c);
  const at = (y: number, x: number, ch: number) => {
    const yy = fillIndex(y, h, fill), xx = fillIndex(x, w, fill);
    return yy < 0 || xx < 0 ? fillValue : img[(yy * w + xx) * c + ch];
  };
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const xs = t[0] * x + t[1] * y + t[2], ys = t[3] * x + t[4] * y + t[5];
      for (let ch = 0; ch < c; ch++) {
        let v: number;
        if (interp === 'nearest') v = at(Math.floor(ys + 0.5), Math.floor(xs + 0.5), ch);
        else {
          const x0 = Math.floor(xs), y0 = Math.floor(ys), fx = xs - x0, fy = ys - y0;
          v = (at(y0, x0, ch) * (1 - fx) + at(y0, x0 + 1, ch) * fx) * (1 - fy) + (at(y0 + 1, x0, ch) * (1 - fx) + at(y0 + 1, x0 + 1, ch) * fx) * fy;
        }
        out[(y * w + x) * c + ch] = v;
      }
    }
  }
  return out;
}

/** Keras's rotation matrix for `turns` of a full turn about ((w-1)/2, (h-1)/2). */
function rotation(turns: number, h: number, w: number): number[] {
  const a = turns * 2 * Math.PI, cx = (w - 1) / 2, cy = (h - 1) / 2;
  const [c, s] = [Math.cos(a), Math.sin(a)];
  return [c, -s, cx - cx * c + cy * s, s, c, cy - cx * s - cy * c];
}
const zoom = (zy: number, zx: number, h: number, w: number) => [zx, 0, ((w - 1) / 2) * (1 - zx), 0, zy, ((h - 1) / 2) * (1 - zy)];
const shift = (dy: number, dx: number) => [1, 0, -dx, 0, 1, -dy];

/** Image [h, w, c] with rows, columns or both reversed. */
function flipRef(img: ArrayLike<number>, h: number, w: number, c: number, rows: boolean, cols: boolean): Float64Array {
  const out = new Float64Array(h * w * c);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let ch = 0; ch < c; ch++) out[(y * w + x) * c + ch] = img[((rows ? h - 1 - y : y) * w + (cols ? w - 1 - x : x)) * c + ch];
    }
  }
  return out;
}

describe('training-mode outputs against plain loops', () => {
  const x = randomArray(N * H * W * C, 11, 0, 1);

  test('the reading harness returns the inputs exactly without an augmentation', async () => {
    const out = await trainingOutputs([], x);
    for (let j = 0; j < N; j++) expect(Array.from(out[j])).toEqual(Array.from(image(x, j)));
  });

  test('RandomFlip: each image is itself or its mirror, exactly, in every mode (both axes at once)', async () => {
    for (const [mode, rows, cols] of [['horizontal', false, true], ['vertical', true, false], ['horizontal_and_vertical', true, true]] as const) {
      const seen = new Set<string>();
      for (const seed of [1, 2]) {
        const out = await trainingOutputs([L.randomFlip({ mode, seed })], x, [H, W, C], seed);
        for (let j = 0; j < N; j++) {
          const same = out[j].every((v, i) => v === image(x, j)[i]);
          const flipped = out[j].every((v, i) => v === flipRef(image(x, j), H, W, C, rows, cols)[i]);
          expect(same || flipped).toBe(true);
          seen.add(same ? 'same' : 'flipped');
        }
      }
      expect(seen.size).toBe(2);  // 8 examples: both outcomes occur
    }
  });

  test('RandomRotation by a quarter turn moves pixel (x, y) to (n-1-y, x) on a square image', async () => {
    const n = 5;
    const sq = randomArray(N * n * n * C, 12, 0, 1);
    for (const interpolation of ['bilinear', 'nearest'] as const) {
      const out = await trainingOutputs([L.randomRotation({ factor: [0.25, 0.25], interpolation })], sq, [n, n, C]);
      for (let j = 0; j < N; j++) {
        const want = new Float32Array(n * n * C);
        for (let y = 0; y < n; y++) for (let xx = 0; xx < n; xx++) for (let ch = 0; ch < C; ch++) want[(y * n + xx) * C + ch] = sq[j * n * n * C + (xx * n + (n - 1 - y)) * C + ch];
        expectClose(`rotation ${interpolation}`, out[j], want, 1e-6);
      }
    }
  });

  test('RandomRotation, RandomZoom, RandomTranslation match a float64 affine sampler in every fill mode', async () => {
    for (const fillMode of ['reflect', 'wrap', 'constant', 'nearest'] as const) {
      for (const interpolation of ['bilinear', 'nearest'] as const) {
        const fill = { fillMode, interpolation, fillValue: 0.75 };
        const cases: [ck.Layer, number[]][] = [
          [L.randomRotation({ factor: [-0.1, -0.1], ...fill }), rotation(-0.1, H, W)],
          [L.randomZoom({ heightFactor: [0.5, 0.5], widthFactor: [-0.3, -0.3], ...fill }), zoom(1.5, 0.7, H, W)],
          [L.randomZoom({ heightFactor: [-0.4, -0.4], ...fill }), zoom(0.6, 0.6, H, W)],
          [L.randomTranslation({ heightFactor: [0.3, 0.3], widthFactor: [-0.45, -0.45], ...fill }), shift(0.3 * H, -0.45 * W)],
        ];
        for (const [layer, t] of cases) {
          const out = await trainingOutputs([layer], x);
          for (let j = 0; j < N; j++) {
            expectClose(`${layer.className} ${fillMode} ${interpolation}`, out[j], affineRef(image(x, j), H, W, C, t, fillMode, interpolation, 0.75), 2e-6);
          }
        }
      }
    }
  });

  test('RandomContrast and RandomBrightness match float64 loops, clipped to valueRange', async () => {
    const wide = randomArray(N * H * W * C, 13, -0.2, 1.2);
    // factor [-0.5, 0.5]: factors in [1 - (-0.5), 1 + 0.5], i.e. 1.5
    const contrast = await trainingOutputs([L.randomContrast({ factor: [-0.5, 0.5], valueRange: [0, 1] })], wide);
    const brightness = await trainingOutputs([L.randomBrightness({ factor: [0.25, 0.25], valueRange: [-1, 1] })], wide);
    for (let j = 0; j < N; j++) {
      const img = image(wide, j);
      const mean = [0, 1].map((ch) => img.filter((_, i) => i % C === ch).reduce((a, b) => a + b, 0) / (H * W));
      const clip = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
      expectClose('contrast', contrast[j], Float64Array.from(img, (v, i) => clip((v - mean[i % C]) * 1.5 + mean[i % C], 0, 1)), 1e-6);
      // the offset is 0.25 of the range's width 2
      expectClose('brightness', brightness[j], Float64Array.from(img, (v) => clip(v + 0.5, -1, 1)), 1e-6);
    }
  });
});

describe('random draws', () => {
  const one = randomArray(H * W * C, 14, 0, 1);
  const same = new Float32Array(N * H * W * C).map((_, i) => one[i % one.length]);
  const make = (seed?: number): ck.Layer[] => [
    L.randomRotation({ factor: 0.2, seed }), L.randomZoom({ heightFactor: 0.3, widthFactor: [-0.2, 0.4], seed }),
    L.randomTranslation({ heightFactor: 0.2, widthFactor: 0.2, seed }), L.randomContrast({ factor: 0.5, valueRange: [0, 1], seed }),
    L.randomBrightness({ factor: 0.3, valueRange: [0, 1], seed }),
  ];
  const key = (a: Float32Array[]) => a.map((v) => Array.from(v).join(',')).join('|');

  test('examples of a batch draw their own transforms; same seeds repeat, other seeds differ', async () => {
    for (let k = 0; k < 5; k++) {
      const run = (fitSeed: number, layerSeed?: number) => trainingOutputs([make(layerSeed)[k]], same, [H, W, C], fitSeed);
      const a = await run(3), b = await run(3), c = await run(4), d = await run(3, 99);
      expect(key(a)).toBe(key(b));
      expect(key(a)).not.toBe(key(c));
      expect(key(a)).not.toBe(key(d));
      expect(new Set(a.map((v) => Array.from(v).join(','))).size).toBe(N);
    }
  });

  test('drawn shifts lie in the factor\'s range: each image is its shift by one of the whole pixels that range rounds to', async () => {
    const x = randomArray(N * H * W * C, 23, 0, 1);
    // widths shifted by [0.1, 0.5] * 6 = [0.6, 3] pixels, read from the nearest pixel: 1, 2 or 3 whole pixels
    const seen = new Set<number>();
    for (const seed of [1, 2, 3]) {
      const out = await trainingOutputs([L.randomTranslation({ heightFactor: [0, 0], widthFactor: [0.1, 0.5], interpolation: 'nearest', fillMode: 'constant', seed })], x, [H, W, C], seed);
      for (let j = 0; j < N; j++) {
        const shifts = [0, 1, 2, 3, 4].filter((d) => affineRef(image(x, j), H, W, C, shift(0, d), 'constant', 'nearest').every((v, i) => v === out[j][i]));
        expect(shifts.length).toBe(1);
        expect(shifts[0]).toBeGreaterThanOrEqual(1);
        expect(shifts[0]).toBeLessThanOrEqual(3);
        seen.add(shifts[0]);
      }
    }
    expect(seen.size).toBeGreaterThan(1);
  });

  test('a zoom without widthFactor scales both axes by one draw (a square stays square about the centre)', async () => {
    const n = 5;
    // a centred plus sign: with one factor for both axes its two arms stay equal
    const plus = new Float32Array(N * n * n).map((_, i) => (i % (n * n) % n === 2 || Math.floor(i % (n * n) / n) === 2 ? 1 : 0));
    const out = await trainingOutputs([L.randomZoom({ heightFactor: 0.5, fillMode: 'constant' })], plus, [n, n, 1]);
    for (const img of out) {
      for (let y = 0; y < n; y++) for (let xx = 0; xx < n; xx++) expect(img[y * n + xx]).toBeCloseTo(img[xx * n + y], 6);
    }
  });
});

describe('inference, gradients, configs, fit', () => {
  const all = (): ck.Layer[] => [
    L.randomFlip({ seed: 1 }), L.randomRotation({ factor: 0.1, fillMode: 'constant', fillValue: 0.5 }),
    L.randomZoom({ heightFactor: [-0.2, 0.3], widthFactor: 0.1, interpolation: 'nearest' }),
    L.randomTranslation({ heightFactor: 0.1, widthFactor: [-0.2, 0.1], fillMode: 'wrap' }),
    L.randomContrast({ factor: [0.2, 0.4], valueRange: [0, 1] }), L.randomBrightness({ factor: 0.1, valueRange: [0, 1], seed: 5 }),
  ];

  test('predict is the identity', async () => {
    const x = randomArray(3 * H * W * C, 15, 0, 1);
    const model = ck.sequential([L.input({ shape: [H, W, C] }), ...all()]);
    expect(Array.from(await (model.predict(ck.tensor(x, [3, H, W, C])) as ck.Tensor).data())).toEqual(Array.from(x));
  });

  /** The kernel of a dense layer before `layer`, moved by one SGD step, against central differences of a float64 loss. */
  async function expectInputGradient(layer: ck.Layer, ...candidates: ((h: Float64Array, n: number) => Float64Array)[]): Promise<void> {
    const n = 2;
    const x = randomArray(n * H * W * C, 16, -1, 1);
    const t = randomArray(n * H * W * C, 17, 0, 1);
    const kernel = randomArray(C * C, 18, -0.5, 1);
    const dense = L.dense({ units: C, useBias: false });
    const model = ck.sequential([L.input({ shape: [H, W, C] }), dense, layer]);
    dense.setWeights([ck.tensor(kernel, [C, C])]);
    model.compile({ optimizer: ck.optimizers.sgd({ learningRate: 1 }), loss: 'meanSquaredError' });
    await model.fit(ck.tensor(x, [n, H, W, C]), ck.tensor(t, [n, H, W, C]), { epochs: 1, batchSize: n, verbose: 0 });
    const moved = await dense.getWeights()[0].data();
    const failures: string[] = [];
    for (const after of candidates) {
      try {
        expectClose(`${layer.className} input gradient`, Float64Array.from(kernel, (v, i) => v - moved[i]), finiteDifferences(x, t, kernel, n, after), 2e-5, 2e-3);
        return;
      } catch (e) {
        failures.push((e as Error).message);
      }
    }
    throw new Error(failures.join('; '));
  }

  function finiteDifferences(x: Float32Array, t: Float32Array, kernel: Float32Array, n: number,
    after: (h: Float64Array, n: number) => Float64Array): Float64Array {
    const loss = (k: ArrayLike<number>) => {
      const h = new Float64Array(n * H * W * C);
      for (let r = 0; r < n * H * W; r++) for (let j = 0; j < C; j++) for (let i = 0; i < C; i++) h[r * C + j] += x[r * C + i] * k[i * C + j];
      const y = after(h, n);
      let sum = 0;
      for (let i = 0; i < y.length; i++) sum += (y[i] - t[i]) ** 2;
      return sum / y.length;
    };
    const k = Float64Array.from(kernel);
    const grad = new Float64Array(k.length);
    for (let i = 0; i < k.length; i++) {
      const keep = k[i];
      k[i] = keep + 1e-6;
      const up = loss(k);
      k[i] = keep - 1e-6;
      const down = loss(k);
      k[i] = keep;
      grad[i] = (up - down) / 2e-6;
    }
    return grad;
  }

  const perImage = (f: (img: Float64Array) => Float64Array) => (h: Float64Array, n: number) => {
    const size = H * W * C, out = new Float64Array(h.length);
    for (let j = 0; j < n; j++) out.set(f(h.subarray(j * size, (j + 1) * size)), j * size);
    return out;
  };

  test('the input gradients are the transforms\' adjoints (finite differences)', async () => {
    for (const fillMode of ['reflect', 'wrap', 'constant', 'nearest'] as const) {
      await expectInputGradient(L.randomRotation({ factor: [0.07, 0.07], fillMode, fillValue: 0.3 }),
        perImage((img) => affineRef(img, H, W, C, rotation(0.07, H, W), fillMode, 'bilinear', 0.3)));
    }
    await expectInputGradient(L.randomZoom({ heightFactor: [0.4, 0.4], widthFactor: [-0.35, -0.35], interpolation: 'nearest' }),
      perImage((img) => affineRef(img, H, W, C, zoom(1.4, 0.65, H, W), 'reflect', 'nearest')));
    await expectInputGradient(L.randomTranslation({ heightFactor: [0.15, 0.15], widthFactor: [-0.3, -0.3] }),
      perImage((img) => affineRef(img, H, W, C, shift(0.15 * H, -0.3 * W), 'reflect', 'bilinear')));
    // a flip's draw is unknown here: one of the four (flipped or not per example) must match
    const flips = [0, 1, 2, 3].map((m) => (h: Float64Array, n: number) => {
      const size = H * W * C, out = new Float64Array(h.length);
      for (let j = 0; j < n; j++) out.set(flipRef(h.subarray(j * size, (j + 1) * size), H, W, C, ((m >> j) & 1) === 1, false), j * size);
      return out;
    });
    await expectInputGradient(L.randomFlip({ mode: 'vertical' }), ...flips);
    await expectInputGradient(L.randomContrast({ factor: [-0.6, 0.6], valueRange: [-0.5, 0.5] }), perImage((img) => {
      const mean = [0, 1].map((ch) => img.filter((_, i) => i % C === ch).reduce((a, b) => a + b, 0) / (H * W));
      return img.map((v, i) => Math.min(0.5, Math.max(-0.5, (v - mean[i % C]) * 1.6 + mean[i % C])));
    }));
    await expectInputGradient(L.randomBrightness({ factor: [0.1, 0.1], valueRange: [-1, 1] }),
      perImage((img) => img.map((v) => Math.min(1, Math.max(-1, v + 0.2)))));
  });

  test('configs round-trip through save and load with Keras\'s names', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-augment-'));
    try {
      const model = ck.sequential([L.input({ shape: [H, W, C] }), ...all()]);
      await model.save(`file://${dir}`);
      const saved = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8')).modelTopology.config.layers.slice(1);
      expect(saved.map((l: { class_name: string }) => l.class_name)).toEqual(
        ['RandomFlip', 'RandomRotation', 'RandomZoom', 'RandomTranslation', 'RandomContrast', 'RandomBrightness']);
      expect(saved[0].config).toMatchObject({ mode: 'horizontal_and_vertical', seed: 1, data_format: 'channels_last' });
      expect(saved[1].config).toMatchObject({ factor: [-0.1, 0.1], fill_mode: 'constant', fill_value: 0.5, interpolation: 'bilinear', seed: null });
      expect(saved[2].config).toMatchObject({ height_factor: [-0.2, 0.3], width_factor: 0.1, interpolation: 'nearest', fill_mode: 'reflect' });
      expect(saved[3].config).toMatchObject({ height_factor: 0.1, width_factor: [-0.2, 0.1], fill_mode: 'wrap' });
      expect(saved[4].config).toMatchObject({ factor: [0.2, 0.4], value_range: [0, 1] });
      expect(saved[5].config).toMatchObject({ factor: [-0.1, 0.1], value_range: [0, 1], seed: 5 });
      const loaded = await ck.loadModel(`file://${dir}`);
      expect(loaded.layers.map((l) => l.getConfig())).toEqual(model.layers.map((l) => l.getConfig()));
      expect(loaded.layers.map((l) => (l as unknown as { lower(): unknown }).lower())).toEqual(
        model.layers.map((l) => (l as unknown as { lower(): unknown }).lower()));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a small model with all six trains (fit lowers its loss)', async () => {
    const n = 16;
    const x = randomArray(n * H * W * C, 19, 0, 1);
    const labels = Float32Array.from({ length: n * 2 }, (_, i) => ((i >> 1) % 2 === i % 2 ? 1 : 0));
    const model = ck.sequential([L.input({ shape: [H, W, C] }), ...all(), L.conv2d({ filters: 4, kernelSize: 3, activation: 'relu' }),
      L.globalAveragePooling2d(), L.dense({ units: 2, activation: 'softmax' })]);
    model.compile({ optimizer: ck.optimizers.adam({ learningRate: 0.05 }), loss: 'categoricalCrossentropy' });
    const history = await model.fit(ck.tensor(x, [n, H, W, C]), ck.tensor(labels, [n, 2]), { epochs: 15, batchSize: 8, seed: 1, verbose: 0 });
    const loss = history.history.loss as number[];
    expect(loss.every(Number.isFinite)).toBe(true);
    expect(loss.at(-1)!).toBeLessThan(loss[0]);
  });

  test('bad options and inputs: typed errors naming the layer', () => {
    expect(() => L.randomRotation({ factor: 1.5, name: 'rot' })).toThrow(/^rot: factor must be a number or a list of two numbers in \[-1, 1\], got 1.5/);
    expect(() => L.randomZoom({ heightFactor: -1, name: 'z' })).toThrow(/^z: heightFactor must be .* in \(-1, 1\]/);
    expect(() => L.randomContrast({ factor: -0.1, name: 'c' })).toThrow(/^c: factor .* \[0, 1\]/);
    expect(() => L.randomFlip({ mode: 'diagonal' as never, name: 'f' })).toThrow(ck.ValueError);
    expect(() => L.randomTranslation({ heightFactor: 0.1, widthFactor: 0.1, fillMode: 'mirror' as never, name: 't' })).toThrow(ck.ValueError);
    expect(() => L.randomBrightness({ factor: 0.1, valueRange: [1, 1], name: 'b' })).toThrow(/^b: valueRange must be/);
    expect(() => ck.sequential([L.input({ shape: [8] }), L.randomFlip({ name: 'flat' })]).build()).toThrow(ck.ShapeError);
  });
});

const cuda = ck.cudaStatus();
const onCuda = cuda.available ? describe : describe.skip;
onCuda(`on CUDA (against the CPU)${cuda.available ? '' : ` (skipped: ${cuda.reason})`}`, () => {
  test('each layer draws and computes what the CPU does, forward and backward', async () => {
    const x = randomArray(N * H * W * C, 21, 0, 1);
    const make = (): ck.Layer[] => [
      L.randomFlip({ seed: 3 }), L.randomRotation({ factor: 0.3, fillMode: 'wrap' }),
      L.randomZoom({ heightFactor: 0.4, widthFactor: [-0.2, 0.5], interpolation: 'nearest', fillMode: 'constant', fillValue: 0.2 }),
      L.randomTranslation({ heightFactor: 0.3, widthFactor: 0.3, fillMode: 'nearest' }),
      L.randomContrast({ factor: [0.5, 0.5], valueRange: [0, 1] }), L.randomBrightness({ factor: 0.2, valueRange: [0, 1] }),
    ];
    for (let k = 0; k < 6; k++) {
      const cpu = await trainingOutputs([make()[k]], x, [H, W, C], 5, 'cpu');
      const gpu = await trainingOutputs([make()[k]], x, [H, W, C], 5, 'cuda');
      for (let j = 0; j < N; j++) expectClose(`${make()[k].className} example ${j}`, gpu[j], cpu[j], 1e-5, 1e-5);
    }
    // backward: a dense layer before all six, trained two steps on each device
    const build = () => ck.sequential([L.input({ shape: [H, W, C] }), L.dense({ units: C }), ...make(), L.flatten(), L.dense({ units: 2 })]);
    const [a, b] = [build(), build()];
    b.setWeights(a.getWeights());
    const compile = { optimizer: ck.optimizers.sgd({ learningRate: 0.05 }), loss: 'meanSquaredError' as const };
    a.compile({ ...compile, device: 'cpu' });
    b.compile({ ...compile, device: 'cuda' });
    const y = ck.tensor(randomArray(N * 2, 22, -1, 1), [N, 2]);
    await a.fit(ck.tensor(x, [N, H, W, C]), y, { epochs: 2, batchSize: N, shuffle: false, seed: 9, verbose: 0 });
    await b.fit(ck.tensor(x, [N, H, W, C]), y, { epochs: 2, batchSize: N, shuffle: false, seed: 9, verbose: 0 });
    const wa = a.getWeights(), wb = b.getWeights();
    for (let i = 0; i < wa.length; i++) expectClose(`weight ${i}`, await wb[i].data(), await wa[i].data(), 1e-5, 1e-4);
  });
});
