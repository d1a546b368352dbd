// Small data helpers users of tfjs/Keras expect.
import { ValueError } from './errors';
import { Tensor, tensor } from './tensor';

/** One-hot encodes integer labels: [N] (or a number array) -> [N, numClasses]. */
export function toCategorical(labels: Tensor | ArrayLike<number>, numClasses?: number): Tensor {
  const values = labels instanceof Tensor ? labels.dataSync() : Float32Array.from(labels);
  let classes = numClasses;
  if (classes === undefined) classes = values.reduce((m, v) => Math.max(m, v), -1) + 1;
  if (!Number.isInteger(classes) || classes < 1) throw new ValueError(`toCategorical: numClasses must be a positive integer, got ${String(numClasses)}`);
  const out = new Float32Array(values.length * classes);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isInteger(v) || v < 0 || v >= classes) {
      throw new ValueError(`toCategorical: label ${v} at index ${i} is outside [0, ${classes - 1}]`);
    }
    out[i * classes + v] = 1;
  }
  return tensor(out, [values.length, classes]);
}
