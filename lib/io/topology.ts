// The TensorFlow.js layers format's model.json: Keras topology in snake_case, a weights
// manifest, training config. Converts between it and our layers, treating input as hostile.
import { describeValue, FormatError } from '../errors';
import { deserializeLayer } from '../layers';
import { Layer } from '../layers/layer';

export interface WeightEntry {
  name: string;
  shape: number[];
  dtype: 'float32';
  group?: string;
}

export interface ModelJson {
  modelTopology: { class_name: string; config: unknown; keras_version?: string; backend?: string };
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  weightsManifest: { paths: string[]; weights: WeightEntry[] }[];
  trainingConfig?: Record<string, unknown>;
  userDefinedMetadata?: Record<string, unknown>;
}

const MAX_LAYERS = 10000;
const MAX_DEPTH = 32;

export const toSnake = (k: string): string => k.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
export const toCamel = (k: string): string => k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** Deep-renames the keys of plain objects (arrays and values kept), bounded in depth. */
export function renameKeys(v: unknown, rename: (k: string) => string, depth = 0): unknown {
  if (depth > MAX_DEPTH) throw new FormatError('model.json: nesting is too deep');
  if (Array.isArray(v)) return v.map((x) => renameKeys(x, rename, depth + 1));
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[rename(k)] = renameKeys(x, rename, depth + 1);
    return out;
  }
  return v;
}

export function layerToJson(layer: Layer): { class_name: string; config: unknown } {
  return { class_name: layer.className, config: renameKeys(layer.getConfig(), toSnake) };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

/**
 * The layers of a Sequential topology (Keras writes config as {layers} or, older, as a list) or
 * of a functional one (class_name 'Model' as tfjs writes it, or Keras's 'Functional'), with,
 * for functional ones, the config and each layer's inbound_nodes for connecting them.
 */
export function layersFromTopology(topology: unknown): {
  name?: string; layers: Layer[]; functional?: Record<string, unknown> & { inbound: unknown[] };
} {
  if (!isObject(topology)) throw new FormatError('model.json: modelTopology must be an object');
  const className = topology.class_name;
  const isFunctional = className === 'Model' || className === 'Functional';
  if (className !== 'Sequential' && !isFunctional) {
    throw new FormatError(`model.json: only Sequential and functional models can be loaded, got class_name ${describeValue(className)}`);
  }
  const config = topology.config;
  if (isFunctional && !isObject(config)) throw new FormatError('model.json: a functional topology needs a config object');
  const list = Array.isArray(config) ? config : isObject(config) ? config.layers : undefined;
  if (!Array.isArray(list) || list.length === 0) throw new FormatError('model.json: the topology has no layers');
  if (list.length > MAX_LAYERS) throw new FormatError(`model.json: too many layers (${list.length})`);
  const layers = list.map((entry, i) => {
    if (!isObject(entry) || typeof entry.class_name !== 'string' || !isObject(entry.config)) {
      throw new FormatError(`model.json: layer ${i} must be {class_name, config}`);
    }
    const cfg = renameKeys(entry.config, toCamel) as Record<string, unknown>;
    // Keras initializer configs nest as {class_name, config}: our readers take className.
    for (const [k, v] of Object.entries(cfg)) if (k.endsWith('Initializer') && isObject(v)) cfg[k] = { className: v.className, config: v.config };
    try {
      return deserializeLayer(entry.class_name, cfg);
    } catch (e) {
      if (e instanceof FormatError) throw e;
      throw new FormatError(`model.json: layer ${i} (${entry.class_name}): ${(e as Error).message}`);
    }
  });
  const name = isObject(config) && typeof config.name === 'string' ? config.name : undefined;
  if (!isFunctional) return { name, layers };
  const inbound = list.map((entry) => (entry as Record<string, unknown>).inbound_nodes);
  return { name, layers, functional: { ...(config as Record<string, unknown>), inbound } };
}

/** Checks the manifest's shape before anything is read or allocated. */
export function checkManifest(json: unknown): ModelJson {
  if (!isObject(json)) throw new FormatError('model.json: not a JSON object');
  if (!isObject(json.modelTopology)) throw new FormatError('model.json: no modelTopology (is this a TensorFlow.js layers model?)');
  const manifest = json.weightsManifest;
  if (!Array.isArray(manifest)) throw new FormatError('model.json: weightsManifest must be an array');
  for (const group of manifest) {
    if (!isObject(group) || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      throw new FormatError('model.json: each weightsManifest entry needs paths and weights arrays');
    }
    for (const p of group.paths) {
      if (typeof p !== 'string' || p.length === 0 || p.includes('..') || p.startsWith('/') || p.includes('\\') || p.includes('\0')) {
        throw new FormatError(`model.json: weights path ${describeValue(p)} must be a plain file name inside the model folder`);
      }
    }
    for (const w of group.weights) {
      if (!isObject(w) || typeof w.name !== 'string' || !Array.isArray(w.shape)) throw new FormatError('model.json: each weight needs a name and a shape');
      if (w.dtype !== undefined && w.dtype !== 'float32') throw new FormatError(`model.json: weight ${w.name} has dtype ${describeValue(w.dtype)}; only float32 is supported`);
      if (w.quantization !== undefined) throw new FormatError(`model.json: weight ${w.name} is quantized; only float32 is supported`);
      if (w.shape.length > 8 || !w.shape.every((d) => Number.isInteger(d) && d >= 0 && d < 2 ** 31)) {
        throw new FormatError(`model.json: weight ${w.name} has an invalid shape ${describeValue(w.shape)}`);
      }
    }
  }
  return json as unknown as ModelJson;
}
