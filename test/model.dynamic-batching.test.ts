// Dynamic batching: predictOnBatch / predict calls that arrive while a model is busy predicting
// run together as one batch, and each call still gets exactly (bitwise) its own rows' outputs.
import { describe, expect, test } from '@jest/globals';
import * as ck from '../lib';
import { mulberry32 } from '../lib/rng';

function randomTensor(shape: number[], seed: number): ck.Tensor {
  const rand = mulberry32(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return ck.tensor(Float32Array.from({ length: n }, () => rand() * 2 - 1), shape);
}

/** A small conv net with batch norm (inference folds it) and two outputs. */
function twoHeaded(): ck.LayersModel {
  const image = ck.input({ shape: [12, 12, 3] });
  const c1 = ck.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', useBias: false }).apply(image);
  const b1 = ck.layers.activation({ activation: 'relu' }).apply(ck.layers.batchNormalization({}).apply(c1));
  const d = ck.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'same', activation: 'relu6' }).apply(b1);
  const pooled = ck.layers.globalAveragePooling2d().apply(d);
  const classes = ck.layers.dense({ units: 5, activation: 'softmax' }).apply(pooled);
  const box = ck.layers.dense({ units: 4 }).apply(ck.layers.flatten().apply(d));
  return ck.model({ inputs: image, outputs: [classes, box] }) as ck.LayersModel;
}

async function alone(model: ck.LayersModel, xs: ck.Tensor[]): Promise<Float32Array[][]> {
  const out: Float32Array[][] = [];
  for (const x of xs) {
    const ys = model.predictOnBatch(x) as unknown as ck.Tensor[];
    out.push(await Promise.all(ys.map(async (y) => (await y.data()).slice())));
  }
  return out;
}

describe('dynamic batching', () => {
  test('concurrent calls coalesce, and each gets bitwise its own outputs', async () => {
    const model = twoHeaded();
    const sizes = [1, 3, 1, 2, 1, 1, 4, 1, 2, 1, 1, 1, 5, 1, 1, 2];
    const xs = sizes.map((n, i) => randomTensor([n, 12, 12, 3], 100 + i));
    model.dynamicBatching = false;
    const want = await alone(model, xs);
    const before = model.net.inferenceCounts();
    model.dynamicBatching = { maxBatchSize: 8 };
    // A big call keeps the model busy while the small ones arrive.
    const busy = model.predictOnBatch(randomTensor([1024, 12, 12, 3], 7)) as unknown as ck.Tensor[];
    const got = xs.map((x) => model.predictOnBatch(x) as unknown as ck.Tensor[]);
    for (let i = 0; i < xs.length; i++) {
      for (let j = 0; j < 2; j++) {
        expect(got[i][j].shape[0]).toBe(sizes[i]);
        expect(Buffer.from((await got[i][j].data()).buffer).equals(Buffer.from(want[i][j].buffer))).toBe(true);
      }
    }
    await busy[0].data();
    const after = model.net.inferenceCounts();
    expect(after.calls - before.calls).toBe(xs.length + 1);
    // 29 rows in groups of at most 8 rows: at least 4 tasks, and far fewer than 16 calls.
    const tasks = after.tasks - before.tasks - 1;
    expect(tasks).toBeGreaterThanOrEqual(4);
    expect(tasks).toBeLessThanOrEqual(8);
  });

  test('opted out, every call runs on its own', async () => {
    const model = twoHeaded();
    model.dynamicBatching = false;
    const before = model.net.inferenceCounts();
    const outs = Array.from({ length: 6 }, (_, i) => model.predictOnBatch(randomTensor([1, 12, 12, 3], i)) as unknown as ck.Tensor[]);
    await Promise.all(outs.map((o) => o[0].data()));
    const after = model.net.inferenceCounts();
    expect(after.tasks - before.tasks).toBe(6);
    expect(model.dynamicBatching).toBe(false);
  });

  test('an input still being computed does not join: its call waits for it', async () => {
    const model = twoHeaded();
    model.dynamicBatching = { maxBatchSize: 32 };
    const x = randomTensor([2, 12, 12, 3], 3);
    const want = await alone(model, [ck.ops.relu(x)]);
    const busy = model.predictOnBatch(randomTensor([32, 12, 12, 3], 4)) as unknown as ck.Tensor[];
    model.predictOnBatch(randomTensor([1, 12, 12, 3], 5)); // opens a group
    const pending = ck.ops.relu(x); // queued on another stream: not ready yet
    const got = model.predictOnBatch(pending) as unknown as ck.Tensor[];
    expect(Buffer.from((await got[0].data()).buffer).equals(Buffer.from(want[0][0].buffer))).toBe(true);
    await busy[0].data();
  });

  test('a call made after a weight update sees the new weights, as it would alone', async () => {
    const model = twoHeaded();
    model.dynamicBatching = { maxBatchSize: 32 };
    const x = randomTensor([1, 12, 12, 3], 9);
    const scaled = model.getWeights().map((w) => ck.tensor(w.dataSync().map((v) => v * 1.5), [...w.shape]));
    const busy = model.predictOnBatch(randomTensor([1024, 12, 12, 3], 4)) as unknown as ck.Tensor[];
    const before = model.predictOnBatch(x) as unknown as ck.Tensor[]; // opens a group behind busy
    model.setWeights(scaled); // queued behind that group, without waiting
    const after = model.predictOnBatch(x) as unknown as ck.Tensor[];
    const [b, a] = [await before[1].data(), await after[1].data()];
    expect(Array.from(a)).not.toEqual(Array.from(b));
    model.dynamicBatching = false;
    const alone = model.predictOnBatch(x) as unknown as ck.Tensor[];
    expect(Buffer.from((await alone[1].data()).buffer).equals(Buffer.from(a.buffer))).toBe(true);
    await busy[0].data();
  });

  test('bad settings are ValueErrors naming the model', () => {
    const model = twoHeaded();
    expect(model.dynamicBatching).toEqual({ maxBatchSize: 32 });
    expect(() => { model.dynamicBatching = { maxBatchSize: 0 }; }).toThrow(ck.ValueError);
    expect(() => { model.dynamicBatching = { maxBatchSize: 2.5 }; }).toThrow(/maxBatchSize must be an integer in \[1, 65536\], got 2.5/);
    expect(() => { model.dynamicBatching = { maxRows: 4 } as never; }).toThrow(/unknown option 'maxRows'/);
    expect(() => { model.dynamicBatching = true as never; }).toThrow(/expected false or \{ maxBatchSize \}/);
  });
});
