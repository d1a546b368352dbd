// What every ck.applications builder shares: checking the Keras-style options (inputShape,
// includeTop, classes, pooling, weights), the feature-extraction pooling, and loading saved
// weights into a freshly built model.
import { describeValue, FormatError, ShapeError, ValueError } from '../errors';
import { readSavedWeights, StoredWeight } from '../io/files';
import { ActivationIdentifier, checkActivation } from '../layers/activations';
import { GlobalAveragePooling2D, GlobalMaxPooling2D } from '../layers/conv';
import { Layer, SymbolicTensor, WeightSpec } from '../layers/layer';
import { LayersModel } from '../models/layers-model';
import { tensor } from '../tensor';

export interface ApplicationArgs {
  /** One image's shape [height, width, channels]. */
  inputShape?: number[];
  /** Whether to put the classifier on top (else the model ends at the last convolutional block). */
  includeTop?: boolean;
  /** Classes of the classifier on top. */
  classes?: number;
  /** Without the top: 'avg' or 'max' adds a global pooling layer, so the model outputs vectors. */
  pooling?: 'avg' | 'max' | null;
  /** The classifier's activation: 'softmax' (default), or 'linear' for logits. */
  classifierActivation?: ActivationIdentifier | null;
  /**
   * 'file://dir': weights that convkit or TensorFlow.js saved there (model.json + weights.bin),
   * loaded by layer and weight name; the builder then returns a Promise of the model. null or
   * absent: freshly initialized weights.
   */
  weights?: string | null;
  /** The model's name (default: Keras's). */
  name?: string;
}

/** The options every builder takes, checked, with Keras's defaults filled in. */
export interface CheckedArgs {
  inputShape: number[];
  includeTop: boolean;
  classes: number;
  pooling: 'avg' | 'max' | null;
  classifierActivation: ActivationIdentifier;
  weights: string | null;
  name?: string;
}

export function checkOptions(op: string, args: unknown, known: string[]): Record<string, unknown> {
  if (args === undefined) return {};
  if (args === null || typeof args !== 'object' || Array.isArray(args)) throw new ValueError(`${op}: options must be an object, got ${describeValue(args)}`);
  const all = ['inputShape', 'includeTop', 'classes', 'pooling', 'classifierActivation', 'weights', 'name', ...known];
  for (const key of Object.keys(args)) {
    if (!all.includes(key)) throw new ValueError(`${op}: unknown option '${key}' (options: ${all.join(', ')})`);
  }
  return args as Record<string, unknown>;
}

export function checkCommon(op: string, args: Record<string, unknown>, defaults: { inputShape: number[]; classes: number; minSize: number }): CheckedArgs {
  const shape = args.inputShape ?? defaults.inputShape;
  if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new ShapeError(`${op}: inputShape must be [height, width, channels] of positive integers, got ${describeValue(shape)}`);
  }
  if (shape[0] < defaults.minSize || shape[1] < defaults.minSize) {
    throw new ShapeError(`${op}: the input must be at least ${defaults.minSize}x${defaults.minSize}, got inputShape [${shape.join(', ')}]`);
  }
  const includeTop = args.includeTop ?? true;
  if (typeof includeTop !== 'boolean') throw new ValueError(`${op}: includeTop must be a boolean, got ${describeValue(includeTop)}`);
  const classes = args.classes ?? defaults.classes;
  if (!Number.isInteger(classes) || (classes as number) < 1) throw new ValueError(`${op}: classes must be a positive integer, got ${describeValue(classes)}`);
  const pooling = args.pooling ?? null;
  if (pooling !== null && pooling !== 'avg' && pooling !== 'max') {
    throw new ValueError(`${op}: pooling must be 'avg', 'max' or null, got ${describeValue(pooling)}`);
  }
  const weights = args.weights ?? null;
  if (weights !== null && typeof weights !== 'string') throw new ValueError(`${op}: weights must be a 'file://' path or null, got ${describeValue(weights)}`);
  if (weights === 'imagenet') {
    throw new ValueError(`${op}: convkit downloads nothing; save pretrained weights (e.g. from TensorFlow.js or Keras via tensorflowjs_converter) to a folder and pass weights: 'file://that/folder'`);
  }
  if (args.name !== undefined && (typeof args.name !== 'string' || args.name.length === 0)) {
    throw new ValueError(`${op}: name must be a non-empty string, got ${describeValue(args.name)}`);
  }
  return {
    inputShape: shape.slice(), includeTop, classes: classes as number, pooling,
    classifierActivation: checkActivation(args.classifierActivation ?? 'softmax', op), weights, name: args.name as string | undefined,
  };
}

/** A number option: finite and within [min, max]. */
export function numberIn(op: string, name: string, v: unknown, def: number, min: number, max = Infinity): number {
  const x = v ?? def;
  if (typeof x !== 'number' || !Number.isFinite(x) || x < min || x > max) {
    throw new ValueError(`${op}: ${name} must be a number in [${min}, ${max}], got ${describeValue(v)}`);
  }
  return x;
}

/** Keras's feature-extraction pooling when the top is left out. */
export function poolFeatures(x: SymbolicTensor, pooling: 'avg' | 'max' | null): SymbolicTensor {
  if (pooling === 'avg') return new GlobalAveragePooling2D().apply(x);
  if (pooling === 'max') return new GlobalMaxPooling2D().apply(x);
  return x;
}

/** The builder's result: the model, or with `weights` a Promise of it once they are loaded. */
export function withWeights<M extends LayersModel>(model: M, weights: string | null, op: string): M | Promise<M> {
  if (weights === null) return model;
  return loadWeights(model, weights, op).then(() => model);
}

interface Wanted {
  layer: Layer;
  spec: WeightSpec;
  key: string;
}

/**
 * Loads weights that convkit or TensorFlow.js saved ('file://dir') into a built model, as Keras's
 * load_weights does for the same architecture. Each weight is found by its name
 * ('<layer>/<weight>', as both write them); weights in the file that the model lacks (a top the
 * model leaves out) are skipped. When some names are not in the file (layers auto-numbered
 * differently, as conv2d_21 in a second model of one session), the model's weights take the
 * file's in order instead. A weight that is missing gives a FormatError and a shape that differs
 * a ShapeError, both naming the weight, the file and the shapes.
 */
export async function loadWeights(model: LayersModel, url: string, op = 'loadWeights'): Promise<void> {
  if (!(model instanceof LayersModel)) throw new ValueError(`${op}: expected a model, got ${describeValue(model)}`);
  const { dir, weights } = await readSavedWeights(url, op);
  model.build();
  const perLayer = model.layers.map((layer, li) => layer.weightSpecs(model.built!.layerShapes[li].input)
    .map((spec): Wanted => ({ layer, spec, key: `${layer.name}/${spec.name}` })));
  const wanted = perLayer.flat();
  const stored = [...weights.values()].filter((w) => w.entry.group !== 'optimizer');
  const byName = (key: string): StoredWeight | undefined => {
    const w = weights.get(key);
    return w && w.entry.group !== 'optimizer' ? w : undefined;
  };
  const missing = wanted.filter((w) => !byName(w.key));
  let chosen: StoredWeight[];
  let how = '';
  if (missing.length === 0) {
    chosen = wanted.map((w) => byName(w.key)!);
  } else {
    if (stored.length < wanted.length) {
      throw new FormatError(`${op}: ${dir} has no weight named ${missing[0].key}${missing.length > 1 ? ` (nor ${missing.length - 1} more of the model's)` : ''}, ` +
        `and holds ${stored.length} weights where ${model.name} needs ${wanted.length}: it was saved from another architecture or settings`);
    }
    chosen = stored.slice(0, wanted.length);
    how = ` (matched by position: the file has no weight named ${missing[0].key})`;
  }
  wanted.forEach((w, k) => {
    const shape = chosen[k].entry.shape;
    if (shape.length !== w.spec.shape.length || shape.some((d, i) => d !== w.spec.shape[i])) {
      throw new ShapeError(`${op}: weight ${chosen[k].entry.name} in ${dir} has shape [${shape.join(', ')}] but ${model.name}'s ` +
        `${w.key} needs [${w.spec.shape.join(', ')}]${how}: it was saved from another architecture or settings`);
    }
  });
  let k = 0;
  for (const specs of perLayer) {
    if (specs.length) specs[0].layer.setWeights(specs.map((w, j) => tensor(chosen[k + j].data, w.spec.shape)));
    k += specs.length;
  }
}
