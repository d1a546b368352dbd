// The process-wide seeded RNG for weight initialization (ck.setSeed, like tf.random.set_seed or
// torch.manual_seed): the same seed gives the same initial weights.
import { describeValue, ValueError } from './errors';
import { Rng } from './rng';

let rng = new Rng();

export function setSeed(seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new ValueError(`setSeed: seed must be a non-negative integer, got ${describeValue(seed)}`);
  rng = new Rng(seed);
}

export function globalRng(): Rng {
  return rng;
}
