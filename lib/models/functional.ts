// The functional API, as in tfjs and Keras: ck.input() gives a symbolic tensor, layer.apply()
// connects layers, and ck.model({ inputs, outputs }) builds a model over the graph between
// them: branches, merges, several inputs and outputs. It trains through the same native
// executor as Sequential models, one native call per batch.
import { describeValue, FormatError, ValueError } from '../errors';
import { InputLayer } from '../layers/core';
import { Layer, Shape, SymbolicTensor } from '../layers/layer';
import { ModelGraph, uniqueModelName } from './base';
import { LayersModel } from './layers-model';
import { SummaryRow } from './summary';

/** ck.input({ shape }): a model input (its InputLayer made for it). */
export function input(args: { shape?: number[]; batchShape?: (number | null)[]; name?: string }): SymbolicTensor {
  if (!args || typeof args !== 'object') throw new ValueError('input: expected { shape }');
  const layer = new InputLayer(args);
  const out = new SymbolicTensor([null, ...layer.declaredInputShape], layer);
  layer.inboundNodes.push({ inputs: [], output: out });
  return out;
}

/** A model over a graph of layers (tfjs's LayersModel made by tf.model). */
export class Functional extends LayersModel {
  readonly inputs: SymbolicTensor[];
  readonly outputs: SymbolicTensor[];
  private readonly graphDef: ModelGraph;

  constructor(args: { inputs: SymbolicTensor | SymbolicTensor[]; outputs: SymbolicTensor | SymbolicTensor[]; name?: string }) {
    super(args?.name ?? uniqueModelName('model'));
    const inputs = toList(args?.inputs, 'inputs');
    const outputs = toList(args?.outputs, 'outputs');
    inputs.forEach((t, i) => {
      if (!(t.sourceLayer instanceof InputLayer)) {
        throw new ValueError(`model: inputs[${i}] comes from ${t.sourceLayer.name}, not from ck.input()`);
      }
    });
    if (new Set(inputs).size !== inputs.length) throw new ValueError('model: an input is listed twice');
    this.inputs = inputs;
    this.outputs = outputs;

    // Keras's layer order: a depth-first walk from the outputs numbers the layers (post-order),
    // depth is the longest path to an output, and layers go deepest first, ties by number. It
    // is a topological order, so each layer comes after everything it reads.
    const walked: SymbolicTensor[] = inputs.filter(() => false);
    const done = new Set<SymbolicTensor>();
    const visiting = new Set<SymbolicTensor>();
    const reads = (t: SymbolicTensor) => (t.sourceLayer instanceof InputLayer ? [] : t.sourceLayer.inboundNodes[0].inputs);
    const walk = (t: SymbolicTensor): void => {
      if (done.has(t)) return;
      if (t.sourceLayer instanceof InputLayer && !inputs.includes(t)) {
        throw new ValueError(`model: the graph is disconnected: ${t.sourceLayer.name} is reached from the outputs but is not one of the inputs`);
      }
      if (visiting.has(t)) throw new ValueError(`model: the graph has a cycle through ${t.sourceLayer.name}`);
      visiting.add(t);
      reads(t).forEach(walk);
      visiting.delete(t);
      done.add(t);
      walked.push(t);
    };
    outputs.forEach(walk);
    for (const t of inputs) if (!done.has(t)) walked.unshift(t), done.add(t);
    const depth = new Map<SymbolicTensor, number>();
    for (const t of [...walked].reverse()) {
      const d = depth.get(t) ?? 0;
      depth.set(t, d);
      for (const u of reads(t)) depth.set(u, Math.max(depth.get(u) ?? 0, d + 1));
    }
    const index = new Map(walked.map((t, i) => [t, i]));
    const ordered = [...walked].sort((a, b) => depth.get(b)! - depth.get(a)! || index.get(a)! - index.get(b)!);
    const valueOf = new Map<SymbolicTensor, number>(ordered.map((t, j) => [t, inputs.length + j]));
    const nodes: ModelGraph['nodes'] = ordered.map((t) => ({
      inputs: t.sourceLayer instanceof InputLayer ? [inputs.indexOf(t)] : reads(t).map((u) => valueOf.get(u)!),
    }));
    this.layers.push(...ordered.map((t) => t.sourceLayer));
    const outs = outputs.map((t) => valueOf.get(t)!);
    if (new Set(this.layers.map((l) => l.name)).size !== this.layers.length) {
      throw new ValueError(`model: layer names must be unique, got ${this.layers.map((l) => l.name).join(', ')}`);
    }
    this.graphDef = { inputShapes: inputs.map((t) => t.shape.slice(1) as Shape), nodes, outputs: outs };
    // Every shape is known: build now (weights initialized), as tfjs and Keras do.
    this.build();
  }

  protected graph(): ModelGraph {
    return this.graphDef;
  }

  protected inputLayers(): Layer[] {
    return this.inputs.map((t) => t.sourceLayer);
  }

  /** Keras's functional summary: every layer, input layers included, and what it reads. */
  protected summaryRows(): SummaryRow[] {
    this.build();
    return this.layers.map((layer, i) => ({
      ...this.summaryRow(i),
      connectedTo: (layer.inboundNodes[0]?.inputs ?? []).map((t) => `${t.sourceLayer.name}[0][0]`),
    }));
  }

  /** The topology as tfjs writes a functional model (class_name 'Model', Keras 2 layout). */
  topology(layerJson: (layer: Layer) => { class_name: string; config: unknown }): { class_name: string; config: unknown } {
    const ref = (t: SymbolicTensor) => [t.sourceLayer.name, 0, 0];
    return {
      class_name: 'Model',
      config: {
        name: this.name,
        layers: this.layers.map((layer) => ({
          name: layer.name,
          ...layerJson(layer),
          inbound_nodes: layer instanceof InputLayer ? [] : [layer.inboundNodes[0].inputs.map((t) => [...ref(t), {}])],
        })),
        input_layers: this.inputs.map(ref),
        output_layers: this.outputs.map(ref),
      },
    };
  }
}

function toList(v: unknown, what: string): SymbolicTensor[] {
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0 || !list.every((t) => t instanceof SymbolicTensor)) {
    throw new ValueError(`model: ${what} must be symbolic tensors (from ck.input() and layer.apply())`);
  }
  return list as SymbolicTensor[];
}

/** ck.model({ inputs, outputs }) as in tfjs. */
export function model(args: { inputs: SymbolicTensor | SymbolicTensor[]; outputs: SymbolicTensor | SymbolicTensor[]; name?: string }): Functional {
  return new Functional(args);
}

type LayerEntry = { name: string; layer: Layer; inbound: unknown };

/**
 * Rebuilds a functional model from its tfjs/Keras topology config (class_name 'Model' or
 * 'Functional', Keras 2 node layout): `layers` are the deserialized layers, in the config's order.
 */
export function functionalFromConfig(config: Record<string, unknown>, entries: LayerEntry[]): Functional {
  const byName = new Map<string, { layer: Layer; inbound: unknown; output?: SymbolicTensor }>();
  for (const e of entries) {
    if (byName.has(e.name)) throw new FormatError(`model.json: two layers are named ${describeValue(e.name)}`);
    byName.set(e.name, { layer: e.layer, inbound: e.inbound });
  }
  const refName = (ref: unknown, what: string): string => {
    if (!Array.isArray(ref) || typeof ref[0] !== 'string' || !byName.has(ref[0])) {
      throw new FormatError(`model.json: ${what} ${describeValue(ref)} does not name a layer of the model`);
    }
    if ((ref[1] ?? 0) !== 0 || (ref[2] ?? 0) !== 0) {
      throw new FormatError(`model.json: ${what} ${describeValue(ref)} uses a shared layer's second node; shared layers are not supported`);
    }
    return ref[0];
  };
  const resolving = new Set<string>();
  const outputOf = (name: string): SymbolicTensor => {
    const entry = byName.get(name)!;
    if (entry.output) return entry.output;
    if (entry.layer instanceof InputLayer) {
      entry.output = new SymbolicTensor([null, ...entry.layer.declaredInputShape], entry.layer);
      entry.layer.inboundNodes.push({ inputs: [], output: entry.output });
      return entry.output;
    }
    if (resolving.has(name)) throw new FormatError(`model.json: the layer graph has a cycle through ${name}`);
    const nodes = entry.inbound;
    if (!Array.isArray(nodes) || nodes.length !== 1 || !Array.isArray(nodes[0]) || nodes[0].length === 0) {
      throw new FormatError(`model.json: layer ${name} needs exactly one inbound node (shared layers are not supported)`);
    }
    resolving.add(name);
    const inputs = (nodes[0] as unknown[]).map((ref) => outputOf(refName(ref, `an inbound node of ${name}`)));
    resolving.delete(name);
    entry.output = entry.layer.apply(entry.layer.multiInput ? inputs : inputs[0]);
    return entry.output;
  };
  const list = (key: string): unknown[] => {
    const v = config[key];
    if (!Array.isArray(v) || v.length === 0) throw new FormatError(`model.json: the functional topology needs ${key}`);
    return v;
  };
  const inputs = list('input_layers').map((ref) => outputOf(refName(ref, 'input_layers entry')));
  const outputs = list('output_layers').map((ref) => outputOf(refName(ref, 'output_layers entry')));
  try {
    return new Functional({ inputs, outputs, name: typeof config.name === 'string' ? config.name : undefined });
  } catch (e) {
    throw new FormatError(`model.json: ${(e as Error).message}`);
  }
}
