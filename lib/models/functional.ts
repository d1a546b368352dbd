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
  /** Per layer, its applications (nodes, by their outputs) in this model, in node order. */
  private readonly nodesOf = new Map<Layer, SymbolicTensor[]>();

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

    // Keras's order (tfjs's Container): a depth-first walk from the outputs numbers the nodes
    // (each application of a layer, identified by its output) in post-order, and each layer as
    // the walk first enters one of its nodes. Visiting the nodes from the last numbered, a
    // node's depth is the longest path to an output, raised to the deepest of its layer's nodes
    // visited so far, and a layer's depth is its deepest node's. Nodes run deepest first (a
    // topological order, so each comes after everything it reads, and a shared layer's first
    // node before the others); layers are listed deepest first; ties go by number. (Two nodes
    // of one depth are in the same order entered or finished: neither is the other's input.)
    const walked: SymbolicTensor[] = [];
    const entered: Layer[] = [];
    const done = new Set<SymbolicTensor>();
    const visiting = new Set<SymbolicTensor>();
    const walk = (t: SymbolicTensor): void => {
      if (done.has(t)) return;
      if (t.sourceLayer instanceof InputLayer && !inputs.includes(t)) {
        throw new ValueError(`model: the graph is disconnected: ${t.sourceLayer.name} is reached from the outputs but is not one of the inputs`);
      }
      if (visiting.has(t)) throw new ValueError(`model: the graph has a cycle through ${t.sourceLayer.name}`);
      visiting.add(t);
      entered.push(t.sourceLayer);
      reads(t).forEach(walk);
      visiting.delete(t);
      done.add(t);
      walked.push(t);
    };
    outputs.forEach(walk);
    // Inputs no output depends on come first.
    for (const t of inputs) if (!done.has(t)) walked.unshift(t), entered.unshift(t.sourceLayer), done.add(t);
    const layerNumber = new Map<Layer, number>();
    for (const layer of entered) if (!layerNumber.has(layer)) layerNumber.set(layer, layerNumber.size);
    const depth = new Map<SymbolicTensor, number>();
    const layerDepth = new Map<Layer, number>();
    for (const t of [...walked].reverse()) {
      const d = Math.max(depth.get(t) ?? 0, layerDepth.get(t.sourceLayer) ?? 0);
      depth.set(t, d);
      layerDepth.set(t.sourceLayer, d);
      for (const u of reads(t)) depth.set(u, Math.max(depth.get(u) ?? 0, d + 1));
    }
    const index = new Map(walked.map((t, i) => [t, i]));
    const ordered = [...walked].sort((a, b) => depth.get(b)! - depth.get(a)! || index.get(a)! - index.get(b)!);
    this.layers.push(...[...layerNumber.keys()].sort((a, b) => layerDepth.get(b)! - layerDepth.get(a)! || layerNumber.get(a)! - layerNumber.get(b)!));
    if (new Set(this.layers.map((l) => l.name)).size !== this.layers.length) {
      throw new ValueError(`model: layer names must be unique, got ${this.layers.map((l) => l.name).join(', ')}`);
    }
    const valueOf = new Map<SymbolicTensor, number>(ordered.map((t, j) => [t, inputs.length + j]));
    const layerIndex = new Map(this.layers.map((l, i) => [l, i]));
    const nodes: ModelGraph['nodes'] = ordered.map((t) => ({
      layer: layerIndex.get(t.sourceLayer)!,
      inputs: t.sourceLayer instanceof InputLayer ? [inputs.indexOf(t)] : reads(t).map((u) => valueOf.get(u)!),
    }));
    // Each layer's applications in this model, in the order it was applied (a layer may have
    // nodes in other graphs too: a saved model numbers only its own).
    for (const t of ordered) {
      const list = this.nodesOf.get(t.sourceLayer) ?? [];
      this.nodesOf.set(t.sourceLayer, [...list, t].sort((a, b) => a.nodeIndex - b.nodeIndex));
    }
    const outs = outputs.map((t) => valueOf.get(t)!);
    this.graphDef = { inputShapes: inputs.map((t) => t.shape.slice(1) as Shape), nodes, outputs: outs };
    // Every shape is known: build now (weights initialized), as tfjs and Keras do.
    this.build();
  }

  /** [layer name, the node's index among its layer's nodes in this model, 0]: Keras's reference to a node's output. */
  private nodeRef(t: SymbolicTensor): [string, number, number] {
    return [t.sourceLayer.name, this.nodesOf.get(t.sourceLayer)!.indexOf(t), 0];
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
      connectedTo: (this.nodesOf.get(layer) ?? []).flatMap((t) => reads(t).map((u) => {
        const [name, node, tensor] = this.nodeRef(u);
        return `${name}[${node}][${tensor}]`;
      })),
    }));
  }

  /** The topology as tfjs writes a functional model (class_name 'Model', Keras 2 layout). */
  topology(layerJson: (layer: Layer) => { class_name: string; config: unknown }): { class_name: string; config: unknown } {
    return {
      class_name: 'Model',
      config: {
        name: this.name,
        layers: this.layers.map((layer) => ({
          name: layer.name,
          ...layerJson(layer),
          inbound_nodes: layer instanceof InputLayer ? [] : this.nodesOf.get(layer)!.map((t) => reads(t).map((u) => [...this.nodeRef(u), {}])),
        })),
        input_layers: this.inputs.map((t) => this.nodeRef(t)),
        output_layers: this.outputs.map((t) => this.nodeRef(t)),
      },
    };
  }
}

/** The symbolic tensors the node that makes t read (none for a model input). */
function reads(t: SymbolicTensor): SymbolicTensor[] {
  return t.sourceLayer instanceof InputLayer ? [] : t.sourceLayer.inboundNodes[t.nodeIndex].inputs;
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
  const byName = new Map<string, { layer: Layer; inbound: unknown; outputs: SymbolicTensor[] }>();
  for (const e of entries) {
    if (byName.has(e.name)) throw new FormatError(`model.json: two layers are named ${describeValue(e.name)}`);
    byName.set(e.name, { layer: e.layer, inbound: e.inbound, outputs: [] });
  }
  // A reference [layerName, nodeIndex, tensorIndex(, kwargs)]: the output of that layer's
  // nodeIndex-th application (its only tensor).
  const refNode = (ref: unknown, what: string): [string, number] => {
    if (!Array.isArray(ref) || typeof ref[0] !== 'string' || !byName.has(ref[0])) {
      throw new FormatError(`model.json: ${what} ${describeValue(ref)} does not name a layer of the model`);
    }
    const node = ref[1] ?? 0;
    if (!Number.isInteger(node) || node < 0 || (ref[2] ?? 0) !== 0) {
      throw new FormatError(`model.json: ${what} ${describeValue(ref)} must be [layerName, nodeIndex >= 0, 0]`);
    }
    return [ref[0], node];
  };
  const resolving = new Set<string>();
  // The layer's applications are made in node order, each from the tensors its node lists.
  const outputOf = ([name, node]: [string, number], what: string): SymbolicTensor => {
    const entry = byName.get(name)!;
    if (entry.layer instanceof InputLayer) {
      if (node !== 0) throw new FormatError(`model.json: ${what} refers to node ${node} of input layer ${name}, which has one`);
      if (!entry.outputs.length) {
        entry.outputs.push(new SymbolicTensor([null, ...entry.layer.declaredInputShape], entry.layer));
        entry.layer.inboundNodes.push({ inputs: [], output: entry.outputs[0] });
      }
      return entry.outputs[0];
    }
    const nodes = entry.inbound;
    if (!Array.isArray(nodes) || nodes.length === 0) throw new FormatError(`model.json: layer ${name} needs inbound_nodes`);
    if (node >= nodes.length) {
      throw new FormatError(`model.json: ${what} refers to node ${node} of layer ${name}, which has ${nodes.length}`);
    }
    while (entry.outputs.length <= node) {
      const k = entry.outputs.length;
      const refs = nodes[k];
      if (!Array.isArray(refs) || refs.length === 0) {
        throw new FormatError(`model.json: inbound node ${k} of layer ${name} must be a non-empty list of [layerName, nodeIndex, tensorIndex, kwargs]`);
      }
      const key = `${name}[${k}]`;
      if (resolving.has(key)) throw new FormatError(`model.json: the layer graph has a cycle through ${name}`);
      resolving.add(key);
      const inputs = refs.map((ref) => outputOf(refNode(ref, `an inbound node of ${name}`), `an inbound node of ${name}`));
      resolving.delete(key);
      entry.outputs.push(entry.layer.apply(entry.layer.multiInput ? inputs : inputs[0]));
    }
    return entry.outputs[node];
  };
  const list = (key: string): unknown[] => {
    const v = config[key];
    if (!Array.isArray(v) || v.length === 0) throw new FormatError(`model.json: the functional topology needs ${key}`);
    return v;
  };
  const inputs = list('input_layers').map((ref) => outputOf(refNode(ref, 'input_layers entry'), 'input_layers'));
  const outputs = list('output_layers').map((ref) => outputOf(refNode(ref, 'output_layers entry'), 'output_layers'));
  try {
    return new Functional({ inputs, outputs, name: typeof config.name === 'string' ? config.name : undefined });
  } catch (e) {
    throw new FormatError(`model.json: ${(e as Error).message}`);
  }
}
