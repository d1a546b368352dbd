// convkit's typed errors. Every public entry throws one of these, naming the op or layer and
// the expected and actual shapes; the native addon throws the same classes.

export class ConvkitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A tensor has the wrong rank or shape for the op or layer. */
export class ShapeError extends ConvkitError {}
/** A value has the wrong type (not a Tensor, not a Float32Array, ...). */
export class DTypeError extends ConvkitError {}
/** The device cannot do it: out of memory, an ISA or device that is not there. */
export class DeviceError extends ConvkitError {}
/** A file or serialized model is malformed. */
export class FormatError extends ConvkitError {}
/** An option or argument has an invalid value (NaN, out of range, unknown name). */
export class ValueError extends ConvkitError {}
/**
 * Reading or writing a file failed (disk full, no permission, file too large). `code` is the
 * system's (ENOSPC, EACCES, EFBIG, ...) and `path` the file; a failed save leaves the previous
 * model or checkpoint in place.
 */
export class IOError extends ConvkitError {
  constructor(message: string, readonly code: string | undefined, readonly path: string) {
    super(message);
  }
}
/** The model is in use by another call that cannot run beside this one (a second fit while one trains). */
export class BusyError extends ConvkitError {}
/**
 * The ranks of a distributed job disagree on something they must share (the model, the
 * optimizer, the global batch, the dataset's length, the seed): every rank throws it, naming the
 * field and which ranks hold which value.
 */
export class DistributedError extends ConvkitError {}

/**
 * A value as error messages show it: JSON where JSON can say it, and never a throw of its own
 * (a self-referencing object, a BigInt, a symbol or nesting 100,000 deep would make
 * JSON.stringify throw a TypeError or RangeError in place of the ConvkitError being built).
 */
export function describeValue(v: unknown, max = 120): string {
  let text: string;
  if (typeof v === 'bigint') text = `${v}n`;
  else if (typeof v === 'symbol' || typeof v === 'function') text = String(v);
  else if (typeof v === 'number' || v === undefined) text = String(v);
  else {
    try {
      text = JSON.stringify(v) ?? String(v);
    } catch {
      text = Array.isArray(v) ? `an array of ${v.length}` : `a ${Object.prototype.toString.call(v).slice(8, -1)} that cannot be printed`;
    }
  }
  return text.length > max ? `${text.slice(0, max)}...` : text;
}
