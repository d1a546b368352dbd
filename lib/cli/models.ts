// The models `convkit train` builds: the seeds' CNN for 28x28 digits, a small VGG-style CNN sized
// to an image folder's images, a Keras / TensorFlow.js layers config given with --model, or a
// trained model's base under a new classifier (--base, transfer learning).
import * as fs from 'fs';
import * as path from 'path';
import * as ck from '../index';
import { CliError, modelDir } from './common';

/** The seeds' MNIST CNN (62,346 parameters for 10 classes). */
export function seedsCnn(shape: [number, number, number], classes: number): ck.Sequential {
  return ck.sequential([
    ck.layers.input({ shape }),
    ck.layers.conv2d({ filters: 32, kernelSize: 5, activation: 'relu' }),
    ck.layers.maxPooling2d({ poolSize: 2 }),
    ck.layers.conv2d({ filters: 64, kernelSize: 5, activation: 'relu' }),
    ck.layers.maxPooling2d({ poolSize: 2 }),
    ck.layers.flatten(),
    ck.layers.dense({ units: classes, activation: 'softmax' }),
  ], { name: 'convkit_cnn' });
}

/**
 * A small VGG-style CNN: blocks of [conv3x3 relu, conv3x3 relu, maxpool 2] with 16, 32, 64, ...
 * filters, halving the image until it is under 8 pixels (at most 5 blocks), then flatten (or
 * global average pooling when the last feature map is large) and a dense softmax.
 */
export function vggCnn(shape: [number, number, number], classes: number): ck.Sequential {
  const [h, w] = shape;
  const layers: ck.Layer[] = [ck.layers.input({ shape })];
  let size = Math.min(h, w);
  let hh = h;
  let ww = w;
  let filters = 16;
  let blocks = 0;
  while ((blocks === 0 || size >= 8) && blocks < 5) {
    layers.push(ck.layers.conv2d({ filters, kernelSize: 3, padding: 'same', activation: 'relu' }));
    layers.push(ck.layers.conv2d({ filters, kernelSize: 3, padding: 'same', activation: 'relu' }));
    if (size >= 2) {
      layers.push(ck.layers.maxPooling2d({ poolSize: 2 }));
      size = Math.floor(size / 2);
      hh = Math.floor(hh / 2);
      ww = Math.floor(ww / 2);
    }
    blocks++;
    if (size < 8) break;
    filters *= 2;
  }
  layers.push(hh * ww * filters <= 4096 ? ck.layers.flatten() : ck.layers.globalAveragePooling2d());
  layers.push(ck.layers.dense({ units: classes, activation: 'softmax' }));
  return ck.sequential(layers, { name: 'convkit_vgg' });
}

/**
 * A model from a JSON spec file: a model.json (its modelTopology) or a Sequential topology
 * { class_name: 'Sequential', config: { layers: [...] } }. A spec whose first layer declares no
 * input shape takes the data's.
 */
export function specModel(file: string, shape: [number, number, number] | null, where = `--model ${file}`, hint = ''): ck.LayersModel {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new CliError(`${where} cannot be read (expected a JSON model spec)`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CliError(`${where} is not valid JSON (${(e as Error).message})`);
  }
  let model: ck.LayersModel;
  try {
    model = ck.modelFromJSON(json);
    if (!model.layers[0]?.inputShape) {
      if (!shape) throw new CliError(`${where}: the first layer declares no input shape (add batch_input_shape, e.g. [null, 28, 28, 1]${hint})`);
      model = ck.sequential([ck.layers.input({ shape }), ...model.layers], { name: model.name });
    }
    model.build();
  } catch (e) {
    if (e instanceof CliError) throw e;
    if (e instanceof ck.ConvkitError) throw new CliError(`${where}: ${e.message.replace(/^model\.json: /, '')}`);
    throw e;
  }
  return model;
}

/** Checks that a model takes the data's images and has one output per class. */
export function checkModelFits(model: ck.LayersModel, shape: [number, number, number], classes: number, where: string): void {
  const input = model.inputShape;
  if (input.length !== 3 || input.some((d, i) => d !== shape[i])) {
    throw new CliError(`${where}: the model takes input (None, ${input.join(', ')}) but the images are (None, ${shape.join(', ')}); set --image-size/--channels or the spec's input shape to match`);
  }
  const outs = model.outputShapes;
  if (outs.length !== 1) throw new CliError(`${where}: the model has ${outs.length} outputs; it needs one, with ${classes} units (softmax)`);
  const out = outs[0];
  if (out.length !== 2 || out[1] !== classes) {
    throw new CliError(`${where}: the model outputs (None, ${out.slice(1).join(', ')}) but the data has ${classes} classes; the last layer needs ${classes} units (softmax)`);
  }
}

type TopologyEntry = { class_name?: unknown; name?: unknown; config?: Record<string, unknown>; inbound_nodes?: unknown };

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const FEATURE_LAYERS = new Set(['Flatten', 'GlobalAveragePooling2D', 'GlobalMaxPooling2D']);

/** A model for `--base`: MODEL's base under a new classifier, and which layers it reused. */
export interface TransferModel {
  model: ck.LayersModel;
  /** The reused layers (the base), in MODEL's order; frozen with --freeze-base. */
  base: string[];
  /** MODEL's layers left out: its classifier and what follows it. */
  dropped: string[];
}

/**
 * `--base MODEL`: MODEL's layers before its classifier, with their trained weights, under a new
 * Dense(classes, softmax) head. The classifier is MODEL's last Dense layer: it and every layer
 * after it (its Activation or Softmax, a Reshape) are left out, so the base is what computes the
 * classifier's input. A model with no Dense layer (MobileNet v1 classifies with a 1x1 Conv2D)
 * is cut after its last Flatten or global pooling layer. When the base's output is not one
 * vector per image, the head starts with a Flatten. `freeze` makes every base layer
 * non-trainable; otherwise every layer trains (fine-tuning the whole model).
 */
export async function transferModel(modelPath: string, classes: number, freeze: boolean): Promise<TransferModel> {
  const where = `--base ${modelPath}`;
  const dir = path.resolve(modelDir(modelPath));
  let loaded: ck.LayersModel;
  let topology: unknown;
  try {
    loaded = await ck.loadModel(`file://${dir}`);
    topology = (JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8')) as { modelTopology?: unknown }).modelTopology;
  } catch (e) {
    if (e instanceof ck.ConvkitError || e instanceof SyntaxError) throw new CliError(`${where} is not a usable model: ${(e as Error).message.replace(/^loadModel: /, '')}`);
    throw e;
  }
  if (!isRecord(topology)) throw new CliError(`${where}: model.json has no modelTopology`);
  const functional = topology.class_name === 'Model' || topology.class_name === 'Functional';
  const config = topology.config;
  const entries = (Array.isArray(config) ? config : isRecord(config) ? config.layers : []) as TopologyEntry[];
  // A Sequential's entries are its layers one to one; a functional model's carry their names.
  const names = entries.map((e, i) => (functional ? String(e.name ?? e.config?.name) : loaded.layers[i]?.name));
  if (loaded.layers.length !== entries.length || names.some((n) => !loaded.layers.some((l) => l.name === n))) {
    throw new CliError(`${where}: model.json's layers do not match the model loaded from it`);
  }
  if (functional && (!isRecord(config) || !Array.isArray(config.input_layers) || config.input_layers.length !== 1)) {
    throw new CliError(`${where}: the model takes several inputs; a base needs one (the images)`);
  }

  const lastDense = entries.map((e) => e.class_name).lastIndexOf('Dense');
  let baseOutput: number;
  if (lastDense >= 0) {
    baseOutput = functional ? names.indexOf(inboundNames(entries[lastDense], where)[0]) : lastDense - 1;
  } else {
    baseOutput = entries.map((e) => FEATURE_LAYERS.has(String(e.class_name))).lastIndexOf(true);
    if (baseOutput < 0) throw new CliError(`${where}: found no classifier to replace (no Dense layer, and no Flatten or global pooling layer to cut after)`);
  }
  // The base: the layers the base output depends on (for a stack, every layer up to it).
  const keep = new Set<number>();
  if (functional) {
    const visit = (i: number): void => {
      if (i < 0 || keep.has(i)) return;
      keep.add(i);
      for (const n of inboundNames(entries[i], where)) visit(names.indexOf(n));
    };
    visit(baseOutput);
  } else {
    for (let i = 0; i <= baseOutput; i++) keep.add(i);
  }
  const baseIdx = [...keep].sort((a, b) => a - b);
  const base = baseIdx.map((i) => names[i]);
  if (!base.some((n) => loaded.getLayer(n).getWeights().length > 0)) {
    throw new CliError(`${where}: no layer before its classifier (${names[lastDense >= 0 ? lastDense : baseOutput]}) has weights to reuse`);
  }

  const used = new Set(names);
  const fresh = (prefix: string) => {
    let name = prefix;
    for (let k = 1; used.has(name); k++) name = `${prefix}_${k}`;
    used.add(name);
    return name;
  };
  const headName = fresh('transfer_head');
  const flattenName = fresh('transfer_flatten');
  const build = (flatten: boolean): ck.LayersModel => {
    const layers: TopologyEntry[] = baseIdx.map((i) => ({
      ...entries[i], config: { ...entries[i].config, name: names[i], trainable: !freeze },
    }));
    const head: TopologyEntry[] = [
      ...(flatten ? [{ class_name: 'Flatten', config: { name: flattenName } }] : []),
      { class_name: 'Dense', config: { name: headName, units: classes, activation: 'softmax' } },
    ];
    if (functional) {
      let prev = names[baseOutput];
      for (const h of head) {
        h.name = h.config!.name;
        h.inbound_nodes = [[[prev, 0, 0, {}]]];
        prev = String(h.name);
      }
    }
    const spec = functional
      ? { class_name: 'Model', config: { ...(config as Record<string, unknown>), layers: [...layers, ...head], output_layers: [[headName, 0, 0]] } }
      : { class_name: 'Sequential', config: { name: isRecord(config) ? config.name : undefined, layers: [...layers, ...head] } };
    try {
      return ck.modelFromJSON(spec);
    } catch (e) {
      if (e instanceof ck.ConvkitError) throw new CliError(`${where}: cannot rebuild its base: ${e.message.replace(/^model\.json: /, '')}`);
      throw e;
    }
  };
  let model = build(false);
  if (model.outputShapes[0].length !== 2) model = build(true);
  for (const name of base) {
    const weights = loaded.getLayer(name).getWeights();
    if (weights.length) model.getLayer(name).setWeights(weights);
  }
  return { model, base: base.filter((n) => loaded.getLayer(n).className !== 'InputLayer'), dropped: names.filter((n) => !base.includes(n)) };
}

/** The layer names a functional topology entry reads (its one inbound node). */
function inboundNames(entry: TopologyEntry, where: string): string[] {
  const nodes = entry.inbound_nodes;
  if (!Array.isArray(nodes) || nodes.length === 0) return [];
  if (nodes.length !== 1 || !Array.isArray(nodes[0])) throw new CliError(`${where}: layer ${String(entry.name)} is shared (applied more than once); shared layers are not supported`);
  return (nodes[0] as unknown[]).map((ref) => (Array.isArray(ref) ? String(ref[0]) : ''));
}
