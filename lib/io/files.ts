// model.save('file://dir') and ck.loadModel('file://dir'): model.json + weights.bin in the
// TensorFlow.js layers format, optionally with optimizer state to resume training. Writes are
// atomic (temporary file, fsync, rename); reads bound every size before allocating.
import * as fs from 'fs';
import * as path from 'path';
import { ConvkitError, FormatError, ValueError } from '../errors';
import { Sequential } from '../models/sequential';
import { native } from '../native';
import { getOptimizer, optimizers } from '../optimizers';
import { Tensor } from '../tensor';
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

function writeAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    for (let off = 0; off < bytes.length;) off += fs.writeSync(fd, bytes, off, bytes.length - off);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

export interface SaveOptions {
  includeOptimizer?: boolean;
  /** Extra metadata kept in model.json (e.g. class names). */
  metadata?: Record<string, unknown>;
}

export async function saveModel(model: Sequential, url: string, options: SaveOptions = {}): Promise<SaveResult> {
  const dir = dirFromUrl(url, 'save');
  model.build();
  await model.net.synchronize();
  const entries: WeightEntry[] = [];
  const chunks: Float32Array[] = [];
  for (const layer of model.layers) {
    const weights = layer.getWeights();
    const specs = layer.weightSpecs(model.built!.layerShapes[model.layers.indexOf(layer)].input);
    weights.forEach((w, k) => {
      entries.push({ name: `${layer.name}/${specs[k].name}`, shape: [...w.shape], dtype: 'float32' });
      chunks.push(w.dataSync());
    });
  }
  const metadata: Record<string, unknown> = { ...(options.metadata ?? {}) };
  if (options.includeOptimizer && model.compiled) {
    const state = model.net.getOptimizerState().map((h) => new Tensor(h));
    state.forEach((t, i) => {
      entries.push({ name: `optimizer/slot_${i}`, shape: [...t.shape], dtype: 'float32', group: 'optimizer' });
      chunks.push(t.dataSync());
    });
    metadata.convkitOptimizer = { iterations: await model.net.iterations(), slots: state.length };
  }
  const bytes = chunks.reduce((n, c) => n + c.byteLength, 0);
  const weightData = new Uint8Array(bytes);
  let offset = 0;
  for (const c of chunks) {
    weightData.set(new Uint8Array(c.buffer, c.byteOffset, c.byteLength), offset);
    offset += c.byteLength;
  }
  const json: ModelJson = {
    modelTopology: {
      class_name: 'Sequential',
      config: { name: model.name, layers: model.layers.map(layerToJson) },
      keras_version: `convkit ${VERSION}`,
      backend: 'convkit',
    },
    format: 'layers-model',
    generatedBy: `convkit ${VERSION}`,
    convertedBy: null,
    weightsManifest: [{ paths: ['weights.bin'], weights: entries }],
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
  fs.mkdirSync(dir, { recursive: true });
  const text = JSON.stringify(json);
  // Weights first, then model.json: a model.json on disk always has its weights beside it.
  writeAtomic(path.join(dir, 'weights.bin'), weightData);
  writeAtomic(path.join(dir, 'model.json'), text);
  return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', modelTopologyBytes: text.length, weightDataBytes: bytes } };
}

function readModelJson(dir: string): ModelJson {
  const file = path.join(dir, 'model.json');
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new FormatError(`loadModel: ${file} does not exist (a model folder holds model.json and its weights)`);
  }
  if (!stat.isFile() || stat.size > MAX_MODEL_JSON) throw new FormatError(`loadModel: ${file} is not a model.json of sane size`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new FormatError(`loadModel: ${file} is not valid JSON (${(e as Error).message})`);
  }
  return checkManifest(parsed);
}

/** Reads the weight files, checking their total size against the manifest first. */
function readWeights(dir: string, json: ModelJson): Map<string, { entry: WeightEntry; data: Float32Array }> {
  const out = new Map<string, { entry: WeightEntry; data: Float32Array }>();
  for (const group of json.weightsManifest) {
    const expected = group.weights.reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1) * 4, 0);
    if (expected > MAX_WEIGHTS) throw new FormatError(`loadModel: the manifest declares ${expected} bytes of weights`);
    let size = 0;
    const files = group.paths.map((p) => {
      const file = path.join(dir, p);
      if (path.dirname(file) !== dir) throw new FormatError(`loadModel: weights path ${p} leaves the model folder`);
      let st: fs.Stats;
      try {
        st = fs.statSync(file);
      } catch {
        throw new FormatError(`loadModel: weights file ${p} is missing`);
      }
      size += st.size;
      return file;
    });
    if (size !== expected) {
      throw new FormatError(`loadModel: the weights files hold ${size} bytes but the manifest declares ${expected}`);
    }
    const buffer = new Uint8Array(expected);
    let offset = 0;
    for (const f of files) {
      const b = fs.readFileSync(f);
      if (offset + b.length > expected) throw new FormatError('loadModel: weights files changed while reading');
      buffer.set(b, offset);
      offset += b.length;
    }
    offset = 0;
    for (const w of group.weights) {
      const n = w.shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(buffer.buffer.slice(offset, offset + n * 4));
      offset += n * 4;
      out.set(w.name, { entry: w, data });
    }
  }
  return out;
}

export async function loadModel(url: string): Promise<Sequential> {
  const dir = dirFromUrl(url, 'loadModel');
  const json = readModelJson(dir);
  const { name, layers } = layersFromTopology(json.modelTopology);
  let model: Sequential;
  try {
    model = new Sequential({ layers, name });
    model.build();
  } catch (e) {
    // a topology the executor refuses (absurd sizes, layers that do not fit) is a bad file
    if (e instanceof ConvkitError && !(e instanceof FormatError)) throw new FormatError(`loadModel: ${dir}/model.json: ${e.message}`);
    throw e;
  }
  const weights = readWeights(dir, json);
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
    const optimizer = optimizerFromConfig(opt);
    try {
      model.compile({ optimizer, loss: training.loss, metrics: Array.isArray(training.metrics) ? training.metrics as string[] : [] });
    } catch {
      // a training config we cannot reproduce: the model still predicts; compile it yourself
    }
    const meta = json.userDefinedMetadata?.convkitOptimizer as { iterations?: number; slots?: number } | undefined;
    const slots = [...weights.values()].filter((w) => w.entry.group === 'optimizer');
    if (model.compiled && meta && slots.length) {
      model.net.setOptimizerState(slots.map((s) => native.fromArray(s.data, s.entry.shape)), Number(meta.iterations ?? 0));
    }
  }
  model.userDefinedMetadata = json.userDefinedMetadata;
  return model;
}

function optimizerFromConfig(opt: { class_name?: string; config?: Record<string, unknown> } | undefined) {
  const config = (opt?.config ?? {}) as Record<string, number>;
  const lr = config.learningRate ?? config.learning_rate ?? config.lr;
  switch ((opt?.class_name ?? 'SGD').toLowerCase()) {
    case 'adam': return optimizers.adam({ learningRate: lr, beta1: config.beta1 ?? config.beta_1, beta2: config.beta2 ?? config.beta_2, epsilon: config.epsilon });
    case 'adamw': return optimizers.adamw({ learningRate: lr, weightDecay: config.weightDecay ?? config.weight_decay });
    case 'rmsprop': return optimizers.rmsprop({ learningRate: lr, rho: config.rho, momentum: config.momentum, epsilon: config.epsilon });
    case 'sgd': return optimizers.sgd({ learningRate: lr, momentum: config.momentum, nesterov: Boolean(config.nesterov) });
    default: return getOptimizer('sgd');
  }
}

/**
 * A model (untrained, weights initialized) from a Keras / TensorFlow.js layers config: a
 * model.json object (its modelTopology is used) or a topology itself,
 * { class_name: 'Sequential', config: { layers: [...] } }. Like tf.models.modelFromJSON.
 */
export function modelFromJSON(json: unknown): Sequential {
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new FormatError('modelFromJSON: expected a JSON object (a model.json or a Sequential topology)');
  const obj = json as Record<string, unknown>;
  const topology = obj.modelTopology !== undefined ? obj.modelTopology : obj;
  const { name, layers } = layersFromTopology(topology);
  return new Sequential({ layers, name });
}
