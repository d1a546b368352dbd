// ONNX export: ck.io.toOnnx(model, path) and model.save('onnx://path') write a convkit model as
// an ONNX model (opset 13, IR version 7) that onnxruntime, TensorRT or OpenVINO can serve. The
// messages are the official ONNX schema compiled for protobufjs (the onnx-proto package); the
// layers are lowered in onnx-layers.ts over the graph of onnx-graph.ts. The model's inputs stay
// NHWC as in convkit (a Transpose to NCHW starts the graph) unless layout 'nchw' is asked for.
import * as fs from 'fs';
import * as path from 'path';
import { onnx } from 'onnx-proto';
import { describeValue, IOError, ValueError } from '../errors';
import { InputLayer } from '../layers/core';
import { Layer, Shape, SymbolicTensor } from '../layers/layer';
import { Tensor } from '../tensor';
import { dimsIn, OnnxGraph, OnnxValue, tensorType } from './onnx-graph';
import { lowerLayer, Weight } from './onnx-layers';

/** The operator set the exporter writes (every operator it uses is in opset 13's form). */
export const ONNX_OPSET = 13;
/** The IR version that opset 13 came with, so older runtimes that know opset 13 read the file. */
const IR_VERSION = 7;
/** Protocol buffers cannot hold a message of 2 GiB or more (ONNX's external data is not written). */
const MAX_PROTO_BYTES = 2 ** 31 - 1;

const PRODUCER_VERSION: string = (() => {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return String(require('../../package.json').version);
  } catch {
    return '0.0.0';
  }
})();

export interface OnnxExportOptions {
  /**
   * How the ONNX model takes and gives images: 'nhwc' (default, as convkit: [batch, height,
   * width, channels]) or 'nchw' ([batch, channels, height, width], as PyTorch models do). Values
   * that are not images (class scores) are the same either way.
   */
  layout?: 'nhwc' | 'nchw';
  /** Class names for metadata_props.classNames (default: the model's userDefinedMetadata.classNames). */
  classNames?: string[];
  /** More metadata_props entries. */
  metadata?: Record<string, string>;
}

export interface OnnxExportResult {
  /** The file written (absolute). */
  path: string;
  /** Its size. */
  bytes: number;
  /** The bytes of the weights (initializers) in it. */
  weightBytes: number;
  opset: number;
  inputs: { name: string; dims: (number | 'batch')[] }[];
  outputs: { name: string; dims: (number | 'batch')[] }[];
}

/**
 * What the exporter reads from a model (a Sequential or functional LayersModel has it all),
 * described here so that io/ does not import models/. A functional model lists its inputs and
 * outputs as symbolic tensors; a model without them is a chain of its layers (Sequential).
 */
export interface OnnxExportable {
  readonly name: string;
  readonly layers: Layer[];
  readonly built?: { inputShapes: Shape[]; layerShapes: { input: Shape; output: Shape }[] };
  readonly inputs?: SymbolicTensor[];
  readonly outputs?: SymbolicTensor[];
  userDefinedMetadata?: Record<string, unknown>;
  build(): void;
  getLayerWeights(layer: Layer): Tensor[];
}

const OPTION_KEYS = ['layout', 'classNames', 'metadata'];

function checkOptions(options: unknown): Required<Pick<OnnxExportOptions, 'layout'>> & OnnxExportOptions {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new ValueError(`toOnnx: options must be an object, got ${describeValue(options)}`);
  }
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!OPTION_KEYS.includes(key)) throw new ValueError(`toOnnx: unknown option '${key}' (options: ${OPTION_KEYS.join(', ')})`);
  }
  const layout = o.layout ?? 'nhwc';
  if (layout !== 'nhwc' && layout !== 'nchw') throw new ValueError(`toOnnx: layout must be 'nhwc' or 'nchw', got ${describeValue(layout)}`);
  if (o.classNames !== undefined && !(Array.isArray(o.classNames) && o.classNames.every((c) => typeof c === 'string'))) {
    throw new ValueError(`toOnnx: classNames must be an array of strings, got ${describeValue(o.classNames)}`);
  }
  if (o.metadata !== undefined && (o.metadata === null || typeof o.metadata !== 'object' || Array.isArray(o.metadata) ||
    !Object.values(o.metadata).every((v) => typeof v === 'string'))) {
    throw new ValueError(`toOnnx: metadata must be an object of strings, got ${describeValue(o.metadata)}`);
  }
  return { ...(o as OnnxExportOptions), layout };
}

/** Each layer's weights by their names in weightSpecs (kernel, bias, moving_mean, ...). */
async function layerWeights(model: OnnxExportable, layer: Layer, index: number): Promise<Map<string, Weight>> {
  const tensors = model.getLayerWeights(layer);
  const specs = layer.weightSpecs(model.built!.layerShapes[index].input);
  try {
    const values = await Promise.all(tensors.map((t) => t.data()));
    return new Map(specs.map((s, k) => [s.name, { data: values[k], shape: [...tensors[k].shape] }]));
  } finally {
    tensors.forEach((t) => t.dispose());
  }
}

/** The model's values in graph order: its inputs, then each layer's output from its inputs. */
async function lowerModel(model: OnnxExportable, g: OnnxGraph, layout: 'nhwc' | 'nchw'):
  Promise<{ inputs: { value: OnnxValue; layer: Layer | null }[]; outputs: { value: OnnxValue; layer: Layer }[] }> {
  const built = model.built!;
  const inputLayers: (Layer | null)[] = model.inputs
    ? model.inputs.map((t) => t.sourceLayer)
    : [model.layers[0] instanceof InputLayer ? model.layers[0] : null];
  const inputs = built.inputShapes.map((shape, i) => {
    const layer = inputLayers[i];
    // Keras names a Sequential model's implicit input after its first layer.
    const name = layer ? layer.name : `${model.layers[0].name}_input`;
    if (!g.claim(name)) throw new ValueError(`toOnnx: two inputs are named ${name}`);
    return { value: { name, shape, layout: shape.length === 3 ? layout : 'nhwc' } as OnnxValue, layer };
  });

  const lowerOne = async (layer: Layer, j: number, values: OnnxValue[]): Promise<OnnxValue> =>
    lowerLayer({ g, layer, inputs: values, output: built.layerShapes[j].output, weights: await layerWeights(model, layer, j) });

  if (!model.inputs || !model.outputs) {
    let value = inputs[0].value;
    let last: Layer | undefined;
    for (const [j, layer] of model.layers.entries()) {
      if (layer instanceof InputLayer) continue;
      value = await lowerOne(layer, j, [value]);
      last = layer;
    }
    return { inputs, outputs: [{ value, layer: last ?? model.layers[0] }] };
  }
  // Each layer becomes its nodes and initializers once: a layer applied more than once is refused.
  const shared = model.layers.find((layer) => layer.inboundNodes.length > 1);
  if (shared) throw new ValueError(`toOnnx: ${shared.name} is applied more than once (a shared layer); ONNX export does not support shared layers yet`);
  const values = new Map<SymbolicTensor, OnnxValue>(model.inputs.map((t, i) => [t, inputs[i].value]));
  for (const [j, layer] of model.layers.entries()) {
    if (layer instanceof InputLayer) continue;
    const node = layer.inboundNodes[0];
    values.set(node.output!, await lowerOne(layer, j, node.inputs.map((t) => values.get(t)!)));
  }
  return { inputs, outputs: model.outputs.map((t) => ({ value: values.get(t)!, layer: t.sourceLayer })) };
}

function metadataProps(model: OnnxExportable, options: OnnxExportOptions): onnx.IStringStringEntryProto[] {
  const props: Record<string, string> = { ...(options.metadata ?? {}) };
  const fromModel = model.userDefinedMetadata?.classNames;
  const classNames = options.classNames ??
    (Array.isArray(fromModel) && fromModel.every((c) => typeof c === 'string') ? (fromModel as string[]) : undefined);
  if (classNames) props.classNames = JSON.stringify(classNames);
  props.imageLayout = (options.layout ?? 'nhwc').toUpperCase();
  return Object.entries(props).map(([key, value]) => ({ key, value }));
}

/** The model as the bytes of an ONNX file, and what its inputs and outputs are. */
export async function encodeOnnx(model: OnnxExportable, options: OnnxExportOptions = {}):
  Promise<{ bytes: Uint8Array; weightBytes: number; inputs: OnnxExportResult['inputs']; outputs: OnnxExportResult['outputs'] }> {
  const opts = checkOptions(options);
  model.build();
  const g = new OnnxGraph();
  const { inputs, outputs } = await lowerModel(model, g, opts.layout);
  // Outputs are named after the layers that make them, in the layout asked for.
  const outputInfo = outputs.map(({ value, layer }) => {
    const want = value.shape.length === 3 ? opts.layout : 'nhwc';
    const name = want === value.layout
      ? g.node('Identity', [value.name], layer.name)
      : g.node('Transpose', [value.name], layer.name, { perm: want === 'nchw' ? [0, 3, 1, 2] : [0, 2, 3, 1] });
    return { name, dims: dimsIn(value.shape, want) };
  });
  const inputInfo = inputs.map(({ value }) => ({ name: value.name, dims: dimsIn(value.shape, value.layout) }));
  const weightBytes = g.initializers.reduce((n, t) => n + (t.rawData?.length ?? 0), 0);
  if (weightBytes > MAX_PROTO_BYTES) {
    throw new ValueError(`toOnnx: ${model.name} has ${weightBytes} bytes of weights; an ONNX file holds under 2 GiB (external data is not written)`);
  }
  const proto = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName: 'convkit',
    producerVersion: PRODUCER_VERSION,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    metadataProps: metadataProps(model, opts),
    graph: {
      name: model.name,
      node: g.nodes,
      initializer: g.initializers,
      input: inputInfo.map((i) => tensorType(i.name, i.dims)),
      output: outputInfo.map((o) => tensorType(o.name, o.dims)),
    },
  });
  const bytes = onnx.ModelProto.encode(proto).finish();
  const batched = (dims: number[]) => ['batch' as const, ...dims];
  return {
    bytes, weightBytes,
    inputs: inputInfo.map((i) => ({ name: i.name, dims: batched(i.dims) })),
    outputs: outputInfo.map((o) => ({ name: o.name, dims: batched(o.dims) })),
  };
}

/** Writes the file whole or not at all: a temporary file, synced, renamed over the target. */
async function writeAtomically(file: string, bytes: Uint8Array): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    const fh = await fs.promises.open(tmp, 'w');
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, file);
  } catch (e) {
    await fs.promises.rm(tmp, { force: true });
    const err = e as NodeJS.ErrnoException;
    throw new IOError(`toOnnx: cannot write ${file}: ${err.message}`, err.code, file);
  }
}

/**
 * Writes `model` as an ONNX file at `file` (a path, or 'onnx://path'). A layer or activation
 * with no faithful ONNX form is a ValueError naming it, and nothing is written.
 */
export async function toOnnx(model: OnnxExportable, file: string, options: OnnxExportOptions = {}): Promise<OnnxExportResult> {
  if (typeof file !== 'string' || file.length === 0 || file === 'onnx://') {
    throw new ValueError(`toOnnx: expected a file path (or 'onnx://path'), got ${describeValue(file)}`);
  }
  const target = path.resolve(file.startsWith('onnx://') ? file.slice('onnx://'.length) : file);
  const encoded = await encodeOnnx(model, options);
  await writeAtomically(target, encoded.bytes);
  return {
    path: target, bytes: encoded.bytes.length, weightBytes: encoded.weightBytes, opset: ONNX_OPSET,
    inputs: encoded.inputs, outputs: encoded.outputs,
  };
}
