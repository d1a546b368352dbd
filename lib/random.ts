// The process-wide seeded RNG for weight initialization (ck.setSeed, like tf.random.set_seed or
// torch.manual_seed): the same seed gives the same initial weights. It draws from the seed's
// 'initial weights' stream, so the same seed given to fit (whose shuffle draws from the seed's
// unnamed stream) orders the batches independently of the weights.
import { describeValue, ValueError } from './errors';
import { Rng } from './rng';

let rng = new Rng();

export function setSeed(seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new ValueError(`setSeed: seed must be a non-negative integer, got ${describeValue(seed)}`);
  rng = new Rng(seed, 'initial weights');
}

export function globalRng(): Rng {
  return rng;
}
