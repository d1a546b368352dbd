// ONNX import: ck.io.loadOnnx(path) reads an ONNX model (as PyTorch's torch.onnx.export, or
// convkit's own exporter, writes CNNs) into a convkit functional model that predicts, trains
// and saves like any other. The file is decoded with protobufjs from the official ONNX schema
// (onnx-proto), checked as a graph (every input made somewhere, no cycles), walked in
// dependency order and each node mapped to layers by onnx-import-ops.ts. Images become NHWC and
// kernels HWIO: the model takes [batch, height, width, channels] whatever layout the file had.
import * as fs from 'fs';
import * as path from 'path';
import { onnx } from 'onnx-proto';
import { ConvkitError, describeValue, FormatError, IOError, ValueError } from '../errors';
import { Layer, SymbolicTensor } from '../layers/layer';
import { Functional, input as symbolicInput, model as functionalModel } from '../models/functional';
import { tensor } from '../tensor';
import { LayerWeight, NCHW, OpContext, TensorValue, Value } from './onnx-import-context';
import { handlerFor } from './onnx-import-ops';
import { Attributes, Constant, CONSTANT_OPS, constantNode, decodeTensor, foldConstant, int } from './onnx-import-values';

export interface OnnxImportOptions {
  /** Refuse files larger than this many bytes (default and most: 2 GiB - 1, what protobuf can hold). */
  maxBytes?: number;
  /** The model's name (default: the graph's name). */
  name?: string;
}

const MAX_PROTO_BYTES = 2 ** 31 - 1;
/** Graphs with more nodes than this are refused before anything is built. */
const MAX_NODES = 100_000;
/** The opsets whose operators the importer reads (their forms changed at 11 and 13: both handled). */
const OPSETS = { min: 7, max: 21 };

function checkOptions(options: unknown): Required<Pick<OnnxImportOptions, 'maxBytes'>> & OnnxImportOptions {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new ValueError(`loadOnnx: options must be an object, got ${describeValue(options)}`);
  }
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!['maxBytes', 'name'].includes(key)) throw new ValueError(`loadOnnx: unknown option '${key}' (options: maxBytes, name)`);
  }
  const maxBytes = o.maxBytes ?? MAX_PROTO_BYTES;
  if (typeof maxBytes !== 'number' || !Number.isInteger(maxBytes) || maxBytes < 1 || maxBytes > MAX_PROTO_BYTES) {
    throw new ValueError(`loadOnnx: maxBytes must be an integer in [1, ${MAX_PROTO_BYTES}], got ${describeValue(maxBytes)}`);
  }
  if (o.name !== undefined && (typeof o.name !== 'string' || o.name === '')) throw new ValueError(`loadOnnx: name must be a non-empty string, got ${describeValue(o.name)}`);
  return { ...(o as OnnxImportOptions), maxBytes };
}

/** A layer name from an ONNX name: '/layer1/conv1/Conv' -> 'layer1_conv1_Conv'. */
function layerBase(name: string): string {
  return name.replace(/^[^A-Za-z0-9]+/, '').replace(/[^A-Za-z0-9_.-]+/g, '_') || 'onnx';
}

/** The graph's nodes in an order where each comes after those it reads; dangling reads and cycles are FormatErrors. */
function dependencyOrder(nodes: onnx.INodeProto[], sources: Set<string>): onnx.INodeProto[] {
  const producer = new Map<string, number>();
  nodes.forEach((node, i) => {
    if (typeof node.opType !== 'string' || node.opType === '') throw new FormatError(`loadOnnx: node ${i} has no op type`);
    if ((node.output ?? []).filter(Boolean).length === 0) throw new FormatError(`loadOnnx: ${describeNode(node)} has no output`);
    for (const out of node.output ?? []) {
      if (!out) continue;
      if (sources.has(out) || producer.has(out)) throw new FormatError(`loadOnnx: ${describeNode(node)} writes '${out}', which another node, input or initializer already makes`);
      producer.set(out, i);
    }
  });
  const waiting = nodes.map((node) => new Set((node.input ?? []).filter((name) => name && !sources.has(name))));
  const readers = new Map<number, number[]>();
  waiting.forEach((deps, i) => {
    for (const name of deps) {
      const p = producer.get(name);
      if (p === undefined) throw new FormatError(`loadOnnx: ${describeNode(nodes[i])} reads '${name}', which no node, input or initializer makes`);
      readers.set(p, [...(readers.get(p) ?? []), i]);
    }
  });
  const remaining = waiting.map((deps) => new Set([...deps].map((name) => producer.get(name)!)));
  const ready = remaining.flatMap((deps, i) => (deps.size === 0 ? [i] : []));
  const order: onnx.INodeProto[] = [];
  while (ready.length) {
    const i = ready.shift()!;
    order.push(nodes[i]);
    for (const r of readers.get(i) ?? []) {
      remaining[r].delete(i);
      if (remaining[r].size === 0) ready.push(r);
    }
  }
  if (order.length < nodes.length) {
    const stuck = nodes.find((_, i) => remaining[i].size > 0)!;
    throw new FormatError(`loadOnnx: the graph has a cycle through ${describeNode(stuck)}`);
  }
  return order;
}

const describeNode = (node: onnx.INodeProto) => `node ${node.name || node.output?.[0] || '?'} (${node.opType})`;

/** Ops that keep every value where it is, which an NHWC input may pass before its Transpose. */
const ELEMENTWISE = ['Identity', 'Cast', 'Add', 'Sub', 'Mul', 'Div', 'Relu', 'Clip'];

/**
 * Whether every path from value `name` through element-wise ops ends in a Transpose to NCHW:
 * TensorFlow graphs (tf2onnx) keep their input NHWC, scale and normalize it there (Keras's
 * Rescaling and Normalization), and transpose it before the first convolution.
 */
function transposedToNchw(name: string, readers: Map<string, onnx.INodeProto[]>, where: string, seen = new Map<string, boolean>()): boolean {
  const known = seen.get(name);
  if (known !== undefined) return known;
  seen.set(name, false);  // a cycle is reported later, as a FormatError of its own
  const rs = readers.get(name) ?? [];
  const result = rs.length > 0 && rs.every((r) => {
    if (r.opType === 'Transpose') return (r.attribute ?? []).some((a) => a.name === 'perm' && (a.ints ?? []).map((v) => int(v, where)).join() === '0,3,1,2');
    return ELEMENTWISE.includes(r.opType ?? '') && Boolean(r.output?.[0]) && transposedToNchw(r.output![0], readers, where, seen);
  });
  seen.set(name, result);
  return result;
}

/**
 * A graph input as a convkit input: [N, F] vectors; [N, C, H, W] images, or [N, H, W, C] ones
 * when the file says so (metadata imageLayout NHWC, as convkit's exporter writes) or the input
 * reaches the rest of the graph only through Transposes to NCHW (after element-wise ops).
 */
function graphInput(info: onnx.IValueInfoProto, readers: Map<string, onnx.INodeProto[]>, name: string, declaredNhwc: boolean): TensorValue {
  const where = `loadOnnx: input ${info.name}`;
  const t = info.type?.tensorType;
  if (!t) throw new FormatError(`${where} is not a tensor`);
  if (t.elemType !== onnx.TensorProto.DataType.FLOAT) {
    throw new FormatError(`${where} has element type ${onnx.TensorProto.DataType[t.elemType ?? 0] ?? t.elemType}; convkit models take float32`);
  }
  const dims = (t.shape?.dim ?? []).slice(1).map((d) => (d.dimValue !== null && d.dimValue !== undefined ? int(d.dimValue, where) : 0));
  if (!(dims.length === 3 || dims.length === 1) || dims.some((d) => !(d > 0))) {
    const shown = (t.shape?.dim ?? []).map((d) => d.dimParam || int(d.dimValue, where));
    throw new FormatError(`${where} has shape [${shown.join(', ')}]; convkit needs [batch, C, H, W] or [batch, F] with every size after the batch fixed`);
  }
  if (dims.length === 1) {
    const st = symbolicInput({ shape: dims, name });
    return { kind: 'tensor', st, dims, axes: null, order: null, nonNegative: false };
  }
  const nhwc = declaredNhwc || transposedToNchw(info.name!, readers, where);
  const shape = nhwc ? dims : [dims[1], dims[2], dims[0]];
  return { kind: 'tensor', st: symbolicInput({ shape, name }), dims, axes: nhwc ? [1, 2, 3] : NCHW, order: null, nonNegative: false };
}

/** The ModelProto as a convkit functional model. */
export function modelFromOnnx(proto: onnx.ModelProto, options: OnnxImportOptions = {}): Functional {
  const opts = checkOptions(options);
  const graph = proto.graph;
  if (!graph) throw new FormatError('loadOnnx: the model has no graph');
  const opsetEntry = (proto.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  const opset = opsetEntry ? int(opsetEntry.version, 'loadOnnx: opset_import') : 0;
  if (opset < OPSETS.min || opset > OPSETS.max) {
    throw new FormatError(`loadOnnx: opset ${opset || '(none)'} of the default domain; convkit reads opsets ${OPSETS.min} to ${OPSETS.max}`);
  }
  const nodes = graph.node ?? [];
  if (nodes.length > MAX_NODES) throw new FormatError(`loadOnnx: the graph has ${nodes.length} nodes (at most ${MAX_NODES})`);
  for (const node of nodes) {
    if (node.domain && node.domain !== 'ai.onnx') throw new FormatError(`loadOnnx: ${describeNode(node)} is in domain '${node.domain}'; convkit reads the default ONNX domain only`);
  }

  const meta = Object.fromEntries((proto.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? '']));
  const values = new Map<string, Value>();
  for (const init of graph.initializer ?? []) {
    if (!init.name) throw new FormatError('loadOnnx: an initializer has no name');
    values.set(init.name, decodeTensor(init, `loadOnnx: initializer ${init.name}`));
  }
  const readers = new Map<string, onnx.INodeProto[]>();
  for (const node of nodes) for (const name of new Set(node.input ?? [])) if (name) readers.set(name, [...(readers.get(name) ?? []), node]);

  const usedNames = new Set<string>();
  const fresh = (base: string) => {
    let name = base;
    for (let k = 1; usedNames.has(name); k++) name = `${base}_${k}`;
    usedNames.add(name);
    return name;
  };
  const inputs: SymbolicTensor[] = [];
  for (const info of graph.input ?? []) {
    if (!info.name) throw new FormatError('loadOnnx: a graph input has no name');
    if (values.has(info.name)) continue;  // an initializer listed as an input (IR version 3)
    const value = graphInput(info, readers, fresh(layerBase(info.name)), meta.imageLayout === 'NHWC');
    values.set(info.name, value);
    inputs.push(value.st);
  }
  if (inputs.length === 0) throw new FormatError('loadOnnx: the graph has no input');

  const outputNames = new Set((graph.output ?? []).map((o) => o.name ?? ''));
  const absorbed = new Set<onnx.INodeProto>();
  const pending: { layer: Layer; weights: LayerWeight[] }[] = [];
  for (const node of dependencyOrder(nodes, new Set(values.keys()))) {
    if (absorbed.has(node)) continue;
    const op = node.opType!;
    const where = `loadOnnx: ${describeNode(node)}`;
    const attrs = new Attributes(node, where);
    const nodeInputs = (node.input ?? []).map((name) => (name ? values.get(name) : undefined));
    const outputs = node.output ?? [];
    for (const extra of outputs.slice(1)) {
      if (extra && (readers.has(extra) || outputNames.has(extra))) throw new FormatError(`${where}: its output '${extra}' is read, but convkit computes only the first output of ${op}`);
    }
    let value: Value;
    try {
      if (op === 'Constant') {
        value = constantNode(attrs, where);
      } else if (CONSTANT_OPS.includes(op) && nodeInputs.some(Boolean) && nodeInputs.every((v) => !v || v.kind === 'const')) {
        value = foldConstant(op, nodeInputs as (Constant | undefined)[], attrs, opset, where);
      } else {
        const base = layerBase(node.name || outputs[0]);
        const ctx: OpContext = {
          node, op, where, attrs, opset, inputs: nodeInputs,
          apply(make, x, weights, suffix) {
            const layer = make(fresh(suffix ? `${base}_${suffix}` : base));
            const y = layer.apply(x) as SymbolicTensor;
            if (weights) pending.push({ layer, weights });
            return y;
          },
          soleConsumer(name = outputs[0]) {
            const r = readers.get(name) ?? [];
            return r.length === 1 && !outputNames.has(name) && (r[0].input ?? []).filter((i) => i === name).length === 1 ? r[0] : undefined;
          },
          absorb(consumer) {
            absorbed.add(consumer);
          },
          constantNamed(name) {
            const v = values.get(name);
            return v?.kind === 'const' ? v : undefined;
          },
        };
        value = handlerFor(op, where)(ctx);
      }
    } catch (e) {
      // convkit's own checks (a layer refusing a shape) are about this node too.
      if (e instanceof ConvkitError && !(e instanceof FormatError)) throw new FormatError(`${where}: ${e.message}`);
      throw e;
    }
    values.set(outputs[0], value);
    for (const a of absorbed) if (a.output?.[0] && !values.has(a.output[0])) values.set(a.output[0], value);
  }

  const outputs = (graph.output ?? []).map((o) => {
    const v = values.get(o.name ?? '');
    if (!v) throw new FormatError(`loadOnnx: output '${o.name}' is made by no node`);
    if (v.kind !== 'tensor') throw new FormatError(`loadOnnx: output '${o.name}' is a constant; convkit models compute their outputs`);
    if (v.order) throw new FormatError(`loadOnnx: output '${o.name}' holds an image flattened in NCHW order, which convkit's Flatten does not give`);
    if (inputs.includes(v.st)) throw new FormatError(`loadOnnx: output '${o.name}' is an input, unchanged`);
    return v.st;
  });
  if (outputs.length === 0) throw new FormatError('loadOnnx: the graph has no output');

  const model = functionalModel({ inputs, outputs, name: opts.name ?? (graph.name ? layerBase(graph.name) : 'onnx_model') });
  for (const { layer, weights } of pending) {
    const tensors = weights.map((w) => tensor(w.data, w.shape));
    try {
      layer.setWeights(tensors);
    } finally {
      tensors.forEach((t) => t.dispose());
    }
  }
  if (meta.classNames) {
    try {
      const names = JSON.parse(meta.classNames);
      if (Array.isArray(names) && names.every((n) => typeof n === 'string')) model.userDefinedMetadata = { classNames: names };
    } catch {
      // class names that are not a JSON array of strings are left out, as any other metadata
    }
  }
  return model;
}

/** The bytes of an ONNX file as a ModelProto; anything protobuf cannot read is a FormatError. */
export function decodeOnnx(bytes: Uint8Array, where = 'loadOnnx'): onnx.ModelProto {
  try {
    return onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new FormatError(`${where}: not an ONNX model (protobuf: ${(e as Error).message})`);
  }
}

/**
 * Reads the ONNX file at `file` (a path, or 'onnx://path') as a convkit functional model taking
 * NHWC images. An operator or attribute convkit cannot express is a FormatError naming the
 * node and its op type; a damaged, oversized or cyclic file is a FormatError too.
 */
export async function loadOnnx(file: string, options: OnnxImportOptions = {}): Promise<Functional> {
  if (typeof file !== 'string' || file.length === 0 || file === 'onnx://') {
    throw new ValueError(`loadOnnx: expected a file path (or 'onnx://path'), got ${describeValue(file)}`);
  }
  const opts = checkOptions(options);
  const target = path.resolve(file.startsWith('onnx://') ? file.slice('onnx://'.length) : file);
  let bytes: Uint8Array;
  try {
    const stat = await fs.promises.stat(target);
    if (!stat.isFile()) throw new IOError(`loadOnnx: ${target} is not a file`, 'EISDIR', target);
    if (stat.size > opts.maxBytes) throw new FormatError(`loadOnnx: ${target} has ${stat.size} bytes, more than maxBytes (${opts.maxBytes})`);
    bytes = await fs.promises.readFile(target);
  } catch (e) {
    if (e instanceof ConvkitError) throw e;
    const err = e as NodeJS.ErrnoException;
    throw new IOError(`loadOnnx: cannot read ${target}: ${err.message}`, err.code, target);
  }
  return modelFromOnnx(decodeOnnx(bytes, `loadOnnx: ${target}`), opts);
}
