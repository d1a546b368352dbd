// model.save('file://dir') and ck.loadModel('file://dir'): model.json + weights.bin in the
// TensorFlow.js layers format, optionally with optimizer state to resume training. A save
// replaces the folder's model as a whole or not at all (folder.ts); reads bound every size
// before allocating.
import * as fs from 'fs';
import * as path from 'path';
import { ConvkitError, FormatError, ValueError } from '../errors';
import { LayersModel, Sequential } from '../models/sequential';
import { native } from '../native';
import { optimizerFromConfig } from '../optimizers';
import { Tensor } from '../tensor';
import { commitModelFolder, readModelFolder, sha256, WEIGHTS_BIN } from './folder';
import { checkManifest, layersFromTopology, layerToJson, ModelJson, WeightEntry } from './topology';

const MAX_MODEL_JSON = 64 * 1024 * 1024;
const MAX_WEIGHTS = 8 * 1024 * 1024 * 1024;
const VERSION = '0.1.0';

export interface SaveResult {
  modelArtifactsInfo: { dateSaved: Date; modelTopologyType: 'JSON'; modelTopologyBytes: number; weightDataBytes: number };
}

function dirFromUrl(url: string, op: string): string {
  if (typeof url !== 'string' || url.length === 0) throw new ValueError(`${op}: expected a 'file://' path`);
  const dir = url.startsWith('file://') ? url.slice('file://'.length) : url.includes('://') ? null : url;
  if (dir === null || dir.length === 0) throw new ValueError(`${op}: only 'file://' URLs are supported, got ${url}`);
  return path.resolve(dir);
}

export interface SaveOptions {
  includeOptimizer?: boolean;
  /** Extra metadata kept in model.json (e.g. class names). */
  metadata?: Record<string, unknown>;
  /** @internal Where training stands (modelCheckpoint): kept as userDefinedMetadata.convkitCheckpoint. */
  checkpoint?: Record<string, unknown>;
}

/** Metadata convkit writes itself: a save drops stale copies carried over from a loaded model. */
const OWN_METADATA = ['convkitOptimizer', 'convkitCheckpoint'];

export async function saveModel(model: LayersModel, url: string, options: SaveOptions = {}): Promise<SaveResult> {
  const dir = dirFromUrl(url, 'save');
  model.build();
  // One snapshot: every copy is queued on the model's stream in this one turn, so the weights,
  // the optimizer state and its step count come from the same point between two training steps.
  const entries: WeightEntry[] = [];
  const copies: Tensor[] = [];
  for (const layer of model.layers) {
    const weights = model.getLayerWeights(layer);  // this model's copy, should the layer be in others too
    const specs = layer.weightSpecs(model.built!.layerShapes[model.layers.indexOf(layer)].input);
    weights.forEach((w, k) => {
      entries.push({ name: `${layer.name}/${specs[k].name}`, shape: [...w.shape], dtype: 'float32' });
      copies.push(w);
    });
  }
  const metadata: Record<string, unknown> = { ...(options.metadata ?? {}) };
  for (const key of OWN_METADATA) delete metadata[key];
  let iterations: Promise<number> | null = null;
  if (options.includeOptimizer && model.compiled) {
    const state = model.net.getOptimizerState().map((h) => new Tensor(h));
    state.forEach((t, i) => {
      entries.push({ name: `optimizer/slot_${i}`, shape: [...t.shape], dtype: 'float32', group: 'optimizer' });
      copies.push(t);
    });
    iterations = model.net.iterations();
    metadata.convkitOptimizer = { iterations: 0, slots: state.length };
  }
  const values = await Promise.all(copies.map((t) => t.data()));
  if (iterations) (metadata.convkitOptimizer as { iterations: number }).iterations = await iterations;
  if (options.checkpoint) metadata.convkitCheckpoint = options.checkpoint;
  const bytes = values.reduce((n, c) => n + c.byteLength, 0);
  const weightData = new Uint8Array(bytes);
  let offset = 0;
  for (const c of values) {
    weightData.set(new Uint8Array(c.buffer, c.byteOffset, c.byteLength), offset);
    offset += c.byteLength;
  }
  copies.forEach((t) => t.dispose());
  const json: ModelJson & { convkitSave?: { weightsBytes: number; weightsSha256: string } } = {
    modelTopology: {
      ...model.topology(layerToJson),
      keras_version: `convkit ${VERSION}`,
      backend: 'convkit',
    },
    format: 'layers-model',
    generatedBy: `convkit ${VERSION}`,
    convertedBy: null,
    weightsManifest: [{ paths: [WEIGHTS_BIN], weights: entries }],
  };
  if (model.compiled) {
    const c = model.compiled;
    json.trainingConfig = {
      loss: c.loss,
      metrics: c.accuracyName ? [c.accuracyName] : [],
      optimizer_config: { class_name: c.optimizer.className, config: c.optimizer.getConfig() },
    };
  }
  if (Object.keys(metadata).length) json.userDefinedMetadata = metadata;
  json.convkitSave = { weightsBytes: bytes, weightsSha256: sha256(weightData) };
  const text = JSON.stringify(json);
  await commitModelFolder(dir, text, weightData);
  return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', modelTopologyBytes: text.length, weightDataBytes: bytes } };
}

/** The weight files a manifest names, read in manifest order, their sizes checked first. */
function readWeightBytes(dir: string, json: ModelJson): Uint8Array {
  let expected = 0;
  const files: string[] = [];
  for (const group of json.weightsManifest) {
    const want = group.weights.reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1) * 4, 0);
    expected += want;
    if (expected > MAX_WEIGHTS) throw new FormatError(`loadModel: the manifest declares ${expected} bytes of weights`);
    let size = 0;
    for (const p of group.paths) {
      const file = path.join(dir, p);
      if (path.dirname(file) !== dir) throw new FormatError(`loadModel: weights path ${p} leaves the model folder`);
      let st: fs.Stats;
      try {
        st = fs.statSync(file);
      } catch {
        throw new FormatError(`loadModel: weights file ${p} is missing`);
      }
      // A folder, FIFO or device named like a weights file would fail to read or block forever.
      if (!st.isFile()) throw new FormatError(`loadModel: weights file ${p} is not a regular file`);
      size += st.size;
      files.push(file);
    }
    if (size !== want) {
      throw new FormatError(`loadModel: the weights files hold ${size} bytes but the manifest declares ${want}`);
    }
  }
  const buffer = new Uint8Array(expected);
  let offset = 0;
  for (const f of files) {
    const b = fs.readFileSync(f);
    if (offset + b.length > expected) throw new FormatError('loadModel: weights files changed while reading');
    buffer.set(b, offset);
    offset += b.length;
  }
  if (offset !== expected) throw new FormatError('loadModel: weights files changed while reading');
  return buffer;
}

/** The manifest's weights by name, as Float32Arrays over (copies of) the bytes read. */
function splitWeights(json: ModelJson, bytes: Uint8Array): Map<string, { entry: WeightEntry; data: Float32Array }> {
  const out = new Map<string, { entry: WeightEntry; data: Float32Array }>();
  let offset = 0;
  for (const group of json.weightsManifest) {
    for (const w of group.weights) {
      const n = w.shape.reduce((a, b) => a * b, 1);
      out.set(w.name, { entry: w, data: new Float32Array(bytes.buffer.slice(bytes.byteOffset + offset, bytes.byteOffset + offset + n * 4)) });
      offset += n * 4;
    }
  }
  return out;
}

/** A Sequential or functional model from a topology (layers deserialized and connected). */
function modelFromTopology(topology: unknown): LayersModel {
  const { name, layers, functional } = layersFromTopology(topology);
  if (!functional) return new Sequential({ layers, name });
  // Loaded lazily: the functional module builds on this one's importers.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { functionalFromConfig } = require('../models/functional') as typeof import('../models/functional');
  try {
    return functionalFromConfig(functional, layers.map((layer, i) => ({ name: layer.name, layer, inbound: functional.inbound[i] })));
  } catch (e) {
    if (e instanceof RangeError) throw new FormatError('model.json: the layer graph is too deep');
    throw e;
  }
}

/** One saved weight: its manifest entry and its values. */
export type StoredWeight = { entry: WeightEntry; data: Float32Array };

/**
 * A saved model folder ('file://dir', as convkit or TensorFlow.js writes it) read and checked as
 * loadModel reads it: its model.json and its weights by name (optimizer slots included, in
 * their 'optimizer' group).
 */
export async function readSavedWeights(url: string, op: string): Promise<{ dir: string; json: ModelJson; weights: Map<string, StoredWeight> }> {
  const dir = dirFromUrl(url, op);
  const { json, weights: bytes } = await readModelFolder(dir, MAX_MODEL_JSON, checkManifest, (j) => readWeightBytes(dir, j));
  return { dir, json, weights: splitWeights(json, bytes) };
}

export async function loadModel(url: string): Promise<LayersModel> {
  const { dir, json, weights } = await readSavedWeights(url, 'loadModel');
  let model: LayersModel;
  try {
    model = modelFromTopology(json.modelTopology);
    // The weights files' real sizes bound what building the model may allocate.
    model.maxParams = json.weightsManifest.flatMap((g) => g.weights).filter((w) => w.group !== 'optimizer')
      .reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1), 0);
    model.build();
    model.maxParams = undefined;
  } catch (e) {
    // a topology the executor refuses (absurd sizes, layers that do not fit) is a bad file
    if (e instanceof ConvkitError && !(e instanceof FormatError)) throw new FormatError(`loadModel: ${dir}/model.json: ${e.message}`);
    throw e;
  }
  const modelWeights = [...weights.values()].filter((w) => w.entry.group !== 'optimizer');
  let order = 0;
  for (const [li, layer] of model.layers.entries()) {
    const specs = layer.weightSpecs(model.built!.layerShapes[li].input);
    const values = specs.map((spec) => {
      // tfjs matches by name ("<layer>/<weight>"); files converted from Keras may prefix
      // names differently, so fall back to the manifest's order.
      const found = weights.get(`${layer.name}/${spec.name}`) ?? modelWeights[order];
      order++;
      if (!found) throw new FormatError(`loadModel: no weights for ${layer.name}/${spec.name}`);
      const shape = found.entry.shape;
      if (shape.length !== spec.shape.length || shape.some((d, i) => d !== spec.shape[i])) {
        throw new FormatError(`loadModel: weight ${found.entry.name} has shape [${shape.join(',')}] but ${layer.name} needs ${spec.name} [${spec.shape.join(',')}]`);
      }
      return new Tensor(native.fromArray(found.data, spec.shape));
    });
    if (values.length) layer.setWeights(values);
  }
  if (order !== modelWeights.length) {
    throw new FormatError(`loadModel: the file has ${modelWeights.length} weights but the topology uses ${order}`);
  }
  const training = json.trainingConfig;
  if (training && typeof training.loss === 'string') {
    const opt = training.optimizer_config as { class_name?: string; config?: Record<string, unknown> } | undefined;
    const meta = json.userDefinedMetadata?.convkitOptimizer as { iterations?: number; slots?: number } | undefined;
    const slots = [...weights.values()].filter((w) => w.entry.group === 'optimizer');
    try {
      model.compile({ optimizer: optimizerFromConfig(opt?.class_name ?? 'SGD', opt?.config), loss: training.loss, metrics: Array.isArray(training.metrics) ? training.metrics as string[] : [] });
    } catch (e) {
      // A training config we cannot reproduce: the model still predicts (compile it yourself),
      // unless the file is a checkpoint whose optimizer state would then be silently dropped.
      if (meta && slots.length) {
        throw new FormatError(`loadModel: the file holds optimizer state, but its training config cannot be rebuilt: ${(e as Error).message}`);
      }
    }
    if (model.compiled && meta && slots.length) {
      model.net.setOptimizerState(slots.map((s) => native.fromArray(s.data, s.entry.shape)), Number(meta.iterations ?? 0));
    }
  }
  model.userDefinedMetadata = json.userDefinedMetadata;
  return model;
}

/**
 * A model (untrained, weights initialized) from a Keras / TensorFlow.js layers config: a
 * model.json object (its modelTopology is used) or a topology itself,
 * { class_name: 'Sequential', config: { layers: [...] } }. Like tf.models.modelFromJSON.
 */
export function modelFromJSON(json: unknown): LayersModel {
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new FormatError('modelFromJSON: expected a JSON object (a model.json or a Sequential topology)');
  const obj = json as Record<string, unknown>;
  return modelFromTopology(obj.modelTopology !== undefined ? obj.modelTopology : obj);
}
