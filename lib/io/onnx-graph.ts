// The ONNX graph the exporter fills: nodes, initializers, and the layout of every value. Inside
// the graph images are NCHW (what ONNX's Conv, pooling, BatchNormalization and Resize take);
// convkit's values are NHWC, so each value records which of the two it is held in and a
// Transpose is added, once per value, where an op needs the other one. The messages are built
// as the official schema's plain objects (onnx-proto) and encoded by protobufjs in onnx.ts.
import { onnx } from 'onnx-proto';
import { Shape } from '../layers/layer';

/**
 * A value of the model in the ONNX graph: `shape` is convkit's per-example shape (NHWC for
 * images); `layout` 'nchw' means the ONNX tensor holds an image with its channels first,
 * 'nhwc' that it holds the values in convkit's own order (every value that is not an image).
 */
export interface OnnxValue {
  name: string;
  shape: Shape;
  layout: 'nchw' | 'nhwc';
}

export type AttributeValue = number | number[] | string | { float: number };

const TO_NCHW = [0, 3, 1, 2];
const TO_NHWC = [0, 2, 3, 1];

function attribute(name: string, value: AttributeValue): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: T.INTS, ints: value };
  if (typeof value === 'object') return { name, type: T.FLOAT, f: value.float };
  return { name, type: T.INT, i: value };
}

/** Little-endian bytes of float32 values (TensorProto.raw_data is little-endian on every host). */
function floatBytes(values: ArrayLike<number>): Uint8Array {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i], true);
  return bytes;
}

/** Little-endian bytes of int64 values. */
function int64Bytes(values: number[]): Uint8Array {
  const bytes = new Uint8Array(values.length * 8);
  const view = new DataView(bytes.buffer);
  values.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
  return bytes;
}

export class OnnxGraph {
  readonly nodes: onnx.INodeProto[] = [];
  readonly initializers: onnx.ITensorProto[] = [];
  private readonly names = new Set<string>();
  /** The other-layout copy of each value already made (by value name). */
  private readonly transposed = new Map<string, string>();
  /** Int64 and scalar constants, shared by value. */
  private readonly constants = new Map<string, string>();

  /** A name no value of the graph has yet: `base`, else `base_1`, `base_2`, ... */
  fresh(base: string): string {
    let name = base;
    for (let k = 1; this.names.has(name); k++) name = `${base}_${k}`;
    this.names.add(name);
    return name;
  }

  /** Claims a name that must be exactly this (a graph input or output); false if it is taken. */
  claim(name: string): boolean {
    if (this.names.has(name)) return false;
    this.names.add(name);
    return true;
  }

  /** Adds a node writing one new value named from `output` (made unique); returns that name. */
  node(opType: string, inputs: string[], output: string, attrs: Record<string, AttributeValue> = {}): string {
    const out = this.fresh(output);
    this.nodes.push({
      opType, input: inputs, output: [out], name: out,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return out;
  }

  /** A float32 initializer (weights), under a unique name from `name`. */
  floats(name: string, dims: number[], values: ArrayLike<number>): string {
    const unique = this.fresh(name);
    this.initializers.push({ name: unique, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: floatBytes(values) });
    return unique;
  }

  /** A shared int64 vector constant (shapes, pads, permutations). */
  int64s(values: number[]): string {
    const key = `i64:${values.join(',')}`;
    let name = this.constants.get(key);
    if (!name) {
      name = this.fresh(`const_i64_${values.join('_').replace(/-/g, 'm')}`);
      this.initializers.push({
        name, dims: [values.length], dataType: onnx.TensorProto.DataType.INT64,
        rawData: int64Bytes(values),
      });
      this.constants.set(key, name);
    }
    return name;
  }

  /** A shared float32 vector constant (a Clip bound: [] dims is a scalar). */
  floatConstant(values: number[], dims: number[] = [values.length]): string {
    const key = `f32:${dims.join('x')}:${values.join(',')}`;
    let name = this.constants.get(key);
    if (!name) {
      name = this.floats(`const_f32_${values.join('_').replace(/[-.]/g, 'm')}`, dims, Float32Array.from(values));
      this.constants.set(key, name);
    }
    return name;
  }

  /** The value held with its channels first (a Transpose added once when it is not). */
  nchw(v: OnnxValue): string {
    if (v.layout === 'nchw') return v.name;
    return this.transpose(v.name, TO_NCHW, 'nchw');
  }

  /** The value held in convkit's order (a Transpose added once for an NCHW image). */
  nhwc(v: OnnxValue): string {
    if (v.layout === 'nhwc') return v.name;
    return this.transpose(v.name, TO_NHWC, 'nhwc');
  }

  /** The value's name in `layout`; values that are not images have only the one. */
  inLayout(v: OnnxValue, layout: 'nchw' | 'nhwc'): string {
    return layout === 'nchw' ? this.nchw(v) : this.nhwc(v);
  }

  private transpose(name: string, perm: number[], suffix: string): string {
    let out = this.transposed.get(name);
    if (!out) {
      out = this.node('Transpose', [name], `${name}/${suffix}`, { perm });
      this.transposed.set(name, out);
    }
    return out;
  }
}

/** A float32 tensor type with a symbolic batch dimension first. */
export function tensorType(name: string, dims: number[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: [{ dimParam: 'batch' }, ...dims.map((d) => ({ dimValue: d }))] },
      },
    },
  };
}

/** An image's per-example dims as ONNX holds them in `layout`. */
export function dimsIn(shape: Shape, layout: 'nchw' | 'nhwc'): number[] {
  return layout === 'nchw' && shape.length === 3 ? [shape[2], shape[0], shape[1]] : shape;
}
