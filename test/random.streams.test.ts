// One seed given to ck.setSeed and to fit (as the CLI and the README's recipe do) must give initial
// weights and batch orders drawn independently: issue #17 found fit's first-epoch order drawn from
// the very numbers of the initial weights (a correlation of 0.98-0.9999 on the seeds' CNN).
import { describe, expect, test } from '@jest/globals';
import * as ck from '../lib';
import { Rng } from '../lib/rng';

const N = 64;

/** Pearson's correlation of x[k] with y[k + lag] over the overlap. */
function correlation(x: ArrayLike<number>, y: ArrayLike<number>, lag: number): number {
  const pairs: [number, number][] = [];
  for (let k = Math.max(0, -lag); k < x.length && k + lag < y.length; k++) pairs.push([x[k], y[k + lag]]);
  const mean = (i: 0 | 1) => pairs.reduce((s, p) => s + p[i], 0) / pairs.length;
  const [mx, my] = [mean(0), mean(1)];
  let sxy = 0, sxx = 0, syy = 0;
  for (const [a, b] of pairs) {
    sxy += (a - mx) * (b - my);
    sxx += (a - mx) ** 2;
    syy += (b - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}

/**
 * The order fit visits N examples in, seen through the public API: inputs of zeros give a
 * prediction of exactly 0 whatever the kernel, the target of example i is i, so with batch size 1
 * and a learning rate of 0 each step's squared error is i^2.
 */
async function firstEpochOrder(model: ck.Sequential, seed: number): Promise<number[]> {
  model.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0 }), loss: 'meanSquaredError' });
  const order: number[] = [];
  let previous = 0;
  await model.fit(ck.zeros([N, N]), ck.tensor(Float32Array.from({ length: N }, (_, i) => i), [N, 1]), {
    epochs: 1, batchSize: 1, verbose: 0, seed,
    callbacks: [{ onBatchEnd: async (b, logs) => {
      const sum = (logs!.loss as number) * (b + 1);
      order.push(Math.round(Math.sqrt(Math.max(0, sum - previous))));
      previous = sum;
    } }],
  });
  return order;
}

/**
 * The uniform behind each draw of the Fisher-Yates shuffle that made `order` (the draw for place
 * i, from the end, picked index j = floor(u * (i + 1)) of the identity as swapped so far), as the
 * middle of its interval: replaying the swaps recovers every j from the order.
 */
function shuffleUniforms(order: number[]): number[] {
  const p = order.map((_, i) => i);
  const u: number[] = [];
  for (let i = order.length - 1; i > 0; i--) {
    const j = p.indexOf(order[i]);
    u.push((j + 0.5) / (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return u;
}

describe('ck.setSeed and fit({ seed }) with the same seed', () => {
  test.each([1, 2, 3, 7])('seed %d: fit\'s first order is not drawn from the initial weights\' numbers', async (seed) => {
    ck.setSeed(seed);
    const model = ck.sequential([ck.layers.input({ shape: [N] }), ck.layers.dense({ units: 1 })]);
    const kernel = model.getWeights()[0].dataSync().slice();
    const order = await firstEpochOrder(model, seed);
    expect([...order].sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, i) => i));
    // The kernel is glorot-uniform, linear in its uniforms. Unrelated draws of 63 give |r| < 0.5
    // at every small shift (4 standard deviations); one stream gave r = 1.00 at a shift of one.
    const uniforms = shuffleUniforms(order);
    for (let lag = -4; lag <= 4; lag++) expect(Math.abs(correlation(kernel, uniforms, lag))).toBeLessThan(0.5);
  });

  test('the weights still follow the seed: the same seed, the same weights and order', async () => {
    const run = async () => {
      ck.setSeed(11);
      const model = ck.sequential([ck.layers.input({ shape: [N] }), ck.layers.dense({ units: 1 })]);
      return { kernel: [...model.getWeights()[0].dataSync()], order: await firstEpochOrder(model, 11) };
    };
    expect(await run()).toEqual(await run());
  });
});

describe('Rng streams', () => {
  const draws = (rng: Rng, n: number) => Array.from({ length: n }, () => rng.uniform());

  test('the unnamed stream is unchanged (fit\'s orders for a seed stay what they were)', () => {
    // xoshiro128** with its state expanded from 1 by splitmix32, computed in Python from the
    // published algorithms: convkit's numbers before streams were named.
    const rng = new Rng(1);
    expect(Array.from({ length: 4 }, () => rng.nextUint32())).toEqual([2442144158, 3238099751, 3819917871, 2104621829]);
  });

  test('named streams of one seed are unrelated to each other and to the unnamed one', () => {
    const n = 4096;
    const plain = draws(new Rng(5), n);
    const weights = draws(new Rng(5, 'initial weights'), n);
    const split = draws(new Rng(5, 'validation split'), n);
    for (const [a, b] of [[plain, weights], [plain, split], [weights, split]]) {
      // 4096 unrelated uniforms: |r| has a standard deviation of 1/64.
      for (let lag = -2; lag <= 2; lag++) expect(Math.abs(correlation(a, b, lag))).toBeLessThan(0.08);
    }
  });
});
