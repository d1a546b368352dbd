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
