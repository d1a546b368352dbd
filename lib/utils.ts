// Small data helpers users of tfjs/Keras expect.
import { describeValue, DTypeError, ShapeError, ValueError } from './errors';
import { MAX_ELEMENTS, Tensor, tensor } from './tensor';

/** One-hot encodes integer labels: [N] (or a number array) -> [N, numClasses]. */
export function toCategorical(labels: Tensor | ArrayLike<number>, numClasses?: number): Tensor {
  if (!(labels instanceof Tensor) && (labels === null || typeof labels !== 'object' || typeof (labels as ArrayLike<number>).length !== 'number')) {
    throw new DTypeError(`toCategorical: labels must be a Tensor or an array of class ids, got ${describeValue(labels)}`);
  }
  // Anything but a number (a nested or self-containing array) is NaN, reported below as a bad label.
  const values = labels instanceof Tensor ? labels.dataSync() : Float32Array.from(labels, (v) => (typeof v === 'number' ? v : NaN));
  const bad = values.findIndex((v) => !Number.isInteger(v) || v < 0);
  if (bad >= 0) throw new ValueError(`toCategorical: label ${values[bad]} at index ${bad} is not a class id (an integer >= 0)`);
  let classes = numClasses;
  if (classes === undefined) classes = values.reduce((m, v) => Math.max(m, v), -1) + 1;
  if (!Number.isInteger(classes) || classes < 1) throw new ValueError(`toCategorical: numClasses must be a positive integer, got ${describeValue(numClasses)}`);
  // The one-hot matrix is a tensor: bounded as every tensor is, before it is allocated.
  if (values.length * classes > MAX_ELEMENTS) {
    throw new ShapeError(`toCategorical: ${values.length} labels x ${classes} classes is more than 2^31-1 elements`);
  }
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
