// Saving a model to 'file://dir' and reading a saved one back: model.json + weights.bin in the
// TensorFlow.js layers format, optionally with optimizer state to resume training. A save
// replaces the folder's model as a whole or not at all (folder.ts); reads bound every size
// before allocating. Models call saveModel (model.save); load.ts builds models from the reads.
import * as fs from 'fs';
import * as path from 'path';
import { FormatError, ValueError } from '../errors';
import { Layer, Shape } from '../layers/layer';
import { NativeNet } from '../native';
import { Optimizer } from '../optimizers';
import { Loss, lossToJson } from '../losses';
import { Metric, metricToJson } from '../metrics';
import { Tensor } from '../tensor';
import { commitModelFolder, readModelFolder, sha256, WEIGHTS_BIN } from './folder';
import { checkManifest, layerToJson, ModelJson, WeightEntry } from './topology';

const MAX_MODEL_JSON = 64 * 1024 * 1024;
const MAX_WEIGHTS = 8 * 1024 * 1024 * 1024;
const VERSION = '0.1.0';

export interface SaveResult {
  modelArtifactsInfo: { dateSaved: Date; modelTopologyType: 'JSON' | 'ONNX'; modelTopologyBytes: number; weightDataBytes: number };
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

/**
 * What saving reads from a model (a LayersModel has it all): described here, so that io/ does
 * not import models/, which import io/ to save.
 */
export interface SavableModel {
  readonly layers: Layer[];
  readonly built?: { layerShapes: { input: Shape }[] };
  readonly compiled?: { loss: Loss; accuracyName: string | null; metrics: Metric[]; optimizer: Optimizer };
  readonly net: NativeNet;
  build(): void;
  getLayerWeights(layer: Layer): Tensor[];
  topology(layerJson: (layer: Layer) => { class_name: string; config: unknown }): { class_name: string; config: unknown };
}

export async function saveModel(model: SavableModel, url: string, options: SaveOptions = {}): Promise<SaveResult> {
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
      loss: lossToJson(c.loss),
      metrics: [...(c.accuracyName ? [c.accuracyName] : []), ...c.metrics.map(metricToJson)],
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
