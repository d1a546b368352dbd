// The layer contract (as tfjs-layers / Keras): a layer knows its output shape for an input
// shape, the weights it declares, its config for serialization, and how it lowers to the native
// executor's layers. Weights live in the model's native executor once the model is built.
import { Regularizer } from '../regularizers';
import { ConvkitError, describeValue, ShapeError, ValueError } from '../errors';
import { getInitializer, Initializer } from '../initializers';
import { globalRng } from '../random';
import { native } from '../native';
import { checkTensor, Tensor } from '../tensor';

/** Per-example shape (no batch dimension). */
export type Shape = number[];

export interface LayerArgs {
  name?: string;
  trainable?: boolean;
  /** Shape of one example, e.g. [28, 28, 1]; only meaningful on the first layer. */
  inputShape?: Shape;
  /** Keras's batch_input_shape: [null, ...inputShape]. */
  batchInputShape?: (number | null)[];
  /** tfjs's batchSize: accepted, but convkit models take batches of any size. */
  batchSize?: number | null;
  dtype?: 'float32' | null;
  inputDType?: 'float32' | null;
  /** tfjs's initial weights: not supported (null only); use setWeights once the layer is built. */
  weights?: null;
}

/** An initializer option: a name ('heNormal'), { className, config } as tfjs and Keras write it, or an initializer. */
export type InitializerOption = string | Initializer | { className: string; config?: Record<string, unknown> } | null;

/** A shape with the batch dimension first, as tfjs and Keras show it: [null, 28, 28, 1]. */
export type BatchShape = (number | null)[];

/**
 * What one layer option accepts; the value's range is the layer constructor's to check. A
 * trailing '?' also accepts null (Keras's None: the default). An array lists the values allowed.
 * 'unsupported': an option Keras and tfjs have that convkit cannot honour (regularizers,
 * constraints, ...): only null (or leaving it out) is accepted, never silently ignored.
 */
export type OptionType =
  | 'boolean' | 'string' | 'number' | 'integer' | 'intOrPair' | 'intOrSingle' | 'padding2d' | 'shape' | 'inputShape'
  | 'batchInputShape' | 'initializer' | 'dtype' | 'regularizer' | 'numberOrList' | 'noiseShape' | 'noiseShape?'
  | 'boolean?' | 'string?' | 'number?' | 'numberOrList?' | 'integer?' | 'intOrPair?' | 'intOrSingle?' | 'initializer?' | 'dtype?' | 'regularizer?'
  | 'unsupported' | readonly (string | number | boolean | null)[];

/** The options a layer takes, by tfjs (camelCase) name. */
export type OptionSpec = Readonly<Record<string, OptionType>>;

/** The options every layer takes (tfjs's LayerArgs, and what Keras writes in every layer config). */
export const BASE_OPTIONS: OptionSpec = {
  name: 'string', trainable: 'boolean', inputShape: 'inputShape', batchInputShape: 'batchInputShape', batchSize: 'integer?',
  dtype: 'dtype?', inputDType: 'dtype?', weights: 'unsupported',
};

/** Options for weights' regularizers and constraints, which convkit does not support (null only). */
export function unsupported(...names: string[]): OptionSpec {
  return Object.fromEntries(names.map((n) => [n, 'unsupported' as const]));
}

/** Keras's and tfjs's weight regularizers and constraints of a layer with a kernel and a bias. */
export const KERNEL_EXTRAS: OptionSpec = {
  kernelRegularizer: 'regularizer?', biasRegularizer: 'regularizer?',
  ...unsupported('activityRegularizer', 'kernelConstraint', 'biasConstraint'),
};

const isInt = (v: unknown): boolean => Number.isInteger(v);
const isSize = (v: unknown): boolean => Number.isInteger(v) && (v as number) > 0;
const typeChecks: Record<string, [(v: unknown) => boolean, string]> = {
  boolean: [(v) => typeof v === 'boolean', 'a boolean'],
  string: [(v) => typeof v === 'string', 'a string'],
  number: [(v) => typeof v === 'number' && Number.isFinite(v), 'a finite number'],
  integer: [isInt, 'an integer'],
  // a per-channel value given once for every channel or as a list (Rescaling's scale, Normalization's mean)
  numberOrList: [(v) => (typeof v === 'number' && Number.isFinite(v)) ||
    (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number' && Number.isFinite(x))), 'a finite number or a non-empty array of them'],
  intOrPair: [(v) => isInt(v) || (Array.isArray(v) && v.length === 2 && v.every(isInt)), 'an integer or a pair of integers'],
  // a 1D layer's size, as Keras's int or 1-tuple
  intOrSingle: [(v) => isInt(v) || (Array.isArray(v) && v.length === 1 && isInt(v[0])), 'an integer or [integer]'],
  padding2d: [(v) => isInt(v) || (Array.isArray(v) && v.length === 2 &&
    (v.every(isInt) || v.every((p) => Array.isArray(p) && p.length === 2 && p.every(isInt)))),
  'an integer, [height, width] or [[top, bottom], [left, right]] of integers'],
  shape: [(v) => Array.isArray(v) && v.every(isInt), 'an array of integers'],
  // Dropout's mask shape, batch first: positive integers or null (the input's size)
  noiseShape: [(v) => Array.isArray(v) && v.length > 0 && v.every((d) => d === null || isSize(d)), 'an array of positive integers or nulls'],
  // (the shapes of a model's input are ShapeErrors)
  inputShape: [(v) => Array.isArray(v) && v.length > 0 && v.every(isSize), 'a non-empty array of positive integers'],
  batchInputShape: [(v) => Array.isArray(v) && v.length > 1 && v.every((d, i) => isSize(d) || (i === 0 && d === null)),
    '[batch, ...dims]: positive integers (the batch may be null)'],
  initializer: [(v) => typeof v === 'string' || (typeof v === 'object' && v !== null && !Array.isArray(v)),
    "an initializer name or { className, config }"],
  // (read in full, with its own messages, by regularizerOf)
  regularizer: [(v) => typeof v === 'string' || (typeof v === 'object' && v !== null && !Array.isArray(v)),
    "ck.regularizers.l1/l2/l1l2(...), a name or { className, config }"],
  // Keras 3 writes dtype as a DTypePolicy object ({ className: 'DTypePolicy', config: { name } }).
  dtype: [(v) => v === 'float32' || (typeof v === 'object' && v !== null &&
    ((v as { name?: unknown }).name === 'float32' || (v as { config?: { name?: unknown } }).config?.name === 'float32')), "'float32'"],
};

/** Edit distance of two short strings (for "did you mean"). */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

/** The known option a mistyped key most likely meant: Keras's snake_case, another case, a typo. */
function suggest(key: string, known: string[]): string | undefined {
  const camel = key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  const exact = known.find((k) => k === camel || k.toLowerCase() === key.toLowerCase() || k.toLowerCase() === camel.toLowerCase());
  if (exact) return exact;
  let best: string | undefined;
  let bestD = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const k of known) {
    const d = distance(key.toLowerCase(), k.toLowerCase());
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best;
}

/**
 * Checks a layer's options against the options it takes: an unknown key (a misspelling would
 * otherwise leave the option at its default) or a value of the wrong type is a ValueError that
 * names the layer, the option, what it takes and what it got. `where` names the layer.
 */
export function checkLayerOptions(args: unknown, where: string, className: string, spec: OptionSpec): void {
  checkArgs(args, where);
  const options = args as Record<string, unknown>;
  const known = Object.keys(spec);
  for (const key of Object.keys(options)) {
    if (!Object.prototype.hasOwnProperty.call(spec, key)) {
      const hint = suggest(key, known);
      throw new ValueError(`${where}: unknown option '${key}'${hint ? ` (did you mean '${hint}'?)` : ''}; ${className} takes ${known.join(', ')}`);
    }
    const v = options[key];
    if (v === undefined) continue;
    const type = spec[key];
    if (Array.isArray(type)) {
      if (!type.includes(v as never)) {
        throw new ValueError(`${where}: ${key} must be ${type.map((t) => describeValue(t)).join(' or ')}, got ${describeValue(v)}`);
      }
      continue;
    }
    if (type === 'unsupported') {
      if (v !== null) throw new ValueError(`${where}: ${key} is not supported by convkit (leave it out, or null), got ${describeValue(v)}`);
      continue;
    }
    const t = type as string;
    const nullable = t.endsWith('?');
    if (v === null && nullable) continue;
    const kind = nullable ? t.slice(0, -1) : t;
    const [ok, expected] = typeChecks[kind];
    if (!ok(v)) {
      const message = `${where}: ${key} must be ${expected}${nullable ? ' or null' : ''}, got ${describeValue(v)}`;
      throw kind === 'inputShape' || kind === 'batchInputShape' ? new ShapeError(message) : new ValueError(message);
    }
  }
}

/** A layer of the native executor (see native/addon/addon_net.cpp for the fields). */
export interface NativeLayerSpec {
  kind: string;
  name: string;
  /** Value ids the layer reads (set when the model is built; see ModelGraph). */
  inputs?: number[];
  targetShape?: number[];
  [field: string]: string | number | boolean | number[] | undefined;
}

export interface WeightSpec {
  name: string;
  shape: Shape;
  initializer: Initializer;
  trainable: boolean;
  /** Its penalty in the training loss (kernelRegularizer, biasRegularizer, ...). */
  regularizer?: Regularizer | null;
}

/** What a model gives its layers once built: access to their weights in the executor. */
export interface LayerHost {
  getLayerWeights(layer: Layer): Tensor[];
  setLayerWeights(layer: Layer, weights: Tensor[]): void;
  setLayerTrainable(layer: Layer, trainable: boolean): void;
}

/**
 * A placeholder for a value of a functional graph: what a layer will produce, with its shape
 * (batch first, null). ck.input() makes one; layer.apply() connects a layer to some.
 */
export class SymbolicTensor {
  /**
   * @internal `nodeIndex`: which application of sourceLayer makes it (Keras's node index: a
   * layer applied twice, sharing its weights, has nodes 0 and 1).
   */
  constructor(readonly shape: (number | null)[], readonly sourceLayer: Layer, readonly nodeIndex = 0) {}

  get name(): string {
    return `${this.sourceLayer.name}/output`;
  }

  get rank(): number {
    return this.shape.length;
  }
}

/** The inputs of layer.apply as a list, refused unless they are symbolic tensors. */
export function symbolicInputs(layer: Layer, inputs: unknown): SymbolicTensor[] {
  const list = Array.isArray(inputs) ? inputs : [inputs];
  if (list.length === 0 || !list.every((t) => t instanceof SymbolicTensor)) {
    throw new ValueError(`${layer.name}.apply: expected symbolic tensors (from ck.input() or another layer's apply()); ` +
      'to compute on a Tensor, build a model and call predict');
  }
  return list;
}

const nameCounters = new Map<string, number>();

/** Keras's automatic names: conv2d, conv2d_1, max_pooling2d, ... */
export function uniqueName(prefix: string): string {
  const n = nameCounters.get(prefix) ?? 0;
  nameCounters.set(prefix, n + 1);
  return n === 0 ? prefix : `${prefix}_${n}`;
}

export abstract class Layer {
  /** The serialized class name, as Keras and tfjs write it (e.g. 'Conv2D'). */
  abstract readonly className: string;
  readonly name: string;
  /** @internal The shape of one example the options declared (inputShape, batchInputShape, inputDim). */
  declaredInputShape?: Shape;
  /** Merge layers take a list of inputs (computeOutputShape and lower get one shape per input). */
  readonly multiInput: boolean = false;
  /** @internal The model built last with this layer: getWeights/setWeights go to its executor. */
  host?: LayerHost;
  /** Every built model holding the layer (weakly): freezing reaches each of them. */
  private readonly hosts: WeakRef<LayerHost>[] = [];
  /**
   * @internal Where the functional API applied this layer, in order (Keras's inbound nodes):
   * the symbolic inputs each application read and its output. Every application computes with
   * the same weights.
   */
  inboundNodes: { inputs: SymbolicTensor[]; output?: SymbolicTensor }[] = [];
  /**
   * The per-example shapes the layer was built with (set when a model with a known input shape
   * takes the layer, when it is applied to symbolic tensors, or when a model builds), or
   * undefined while the layer is not built. Merge layers have one input shape per input.
   */
  private built?: { input: Shape | Shape[]; output: Shape };
  /** Weights of a built layer that no built model holds yet (read or set before its model builds). */
  private pendingWeights?: Tensor[];
  /**
   * @internal The model that built this layer's shapes without building itself yet (a
   * Sequential model the layer was added to): getWeights and setWeights build it first.
   */
  builder?: { build(): void };

  /**
   * The symbolic output of this layer in the functional graph it was applied in (as Keras's
   * layer.output): ck.model({ inputs: base.inputs, outputs: base.getLayer('flatten').output })
   * makes a model of part of another, keeping its trained weights.
   */
  get output(): SymbolicTensor {
    if (this.inboundNodes.length > 1) {
      throw new ValueError(`${this.name}.output: the layer is applied ${this.inboundNodes.length} times (shared weights), so it has one output per application; use getOutputAt(nodeIndex)`);
    }
    return this.getOutputAt(0);
  }

  /** The symbolic output of the layer's nodeIndex-th application (Keras's get_output_at). */
  getOutputAt(nodeIndex: number): SymbolicTensor {
    const node = this.inboundNodes[nodeIndex];
    if (!node?.output) {
      throw new ValueError(this.inboundNodes.length === 0
        ? `${this.name}.output: the layer is not connected in a functional graph (ck.input / apply)`
        : `${this.name}.getOutputAt: nodeIndex must be an integer in [0, ${this.inboundNodes.length}), got ${describeValue(nodeIndex)}`);
    }
    return node.output;
  }
  private trainableFlag: boolean;

  /**
   * `options` lists what the layer takes besides the options every layer takes (BASE_OPTIONS):
   * other keys, and values of the wrong type, are ValueErrors naming the layer. A layer class
   * that gives no list (a custom layer) has only the common options checked.
   */
  constructor(args: LayerArgs, defaultPrefix: string, options?: OptionSpec) {
    checkArgs(args, defaultPrefix);
    if (args.name !== undefined && typeof args.name !== 'string') {
      throw new ValueError(`${defaultPrefix}: name must be a string, got ${describeValue(args.name)}`);
    }
    this.name = args.name ?? uniqueName(defaultPrefix);
    if (options) checkLayerOptions(args, this.name, new.target.name, { ...options, ...BASE_OPTIONS });
    else {
      const common = Object.fromEntries(Object.entries(args).filter(([k]) => k in BASE_OPTIONS));
      checkLayerOptions(common, this.name, new.target.name, BASE_OPTIONS);
    }
    this.trainableFlag = args.trainable ?? true;
    if (args.batchSize !== undefined && args.batchSize !== null) positiveInt(args.batchSize, this.name, 'batchSize');
    if (args.inputShape !== undefined) this.declaredInputShape = checkShape(args.inputShape, this.name);
    else if (args.batchInputShape !== undefined) {
      const batch = args.batchInputShape as unknown;
      this.declaredInputShape = checkShape(Array.isArray(batch) ? batch.slice(1) : batch, this.name, 'batchInputShape');
    }
  }

  /** Frozen layers keep their weights during fit (and skip their weight gradients). */
  get trainable(): boolean {
    return this.trainableFlag;
  }

  set trainable(value: boolean) {
    if (typeof value !== 'boolean') throw new ValueError(`${this.name}: trainable must be a boolean`);
    this.trainableFlag = value;
    for (const ref of this.hosts) ref.deref()?.setLayerTrainable(this, value);
  }

  /** tfjs's batchInputShape: [null, ...the inputShape the options declared], or undefined. */
  get batchInputShape(): BatchShape | undefined {
    return this.declaredInputShape ? [null, ...this.declaredInputShape] : undefined;
  }

  /**
   * The input shape the layer was built with, batch first as null ([null, 28, 28, 1]; a merge
   * layer: one per input), as Keras's layer.input_shape; before it is built, the one its options
   * declare (batchInputShape), else undefined (tfjs layers have no inputShape; undefined, not an
   * error, so `layer.inputShape ?? ...` tests it).
   */
  get inputShape(): BatchShape | BatchShape[] | undefined {
    const input = this.built?.input;
    if (!input) return this.batchInputShape;
    return this.multiInput ? (input as Shape[]).map((s) => [null, ...s]) : [null, ...(input as Shape)];
  }

  /** The output shape the layer was built with, batch first as null, as tfjs's layer.outputShape. */
  get outputShape(): BatchShape {
    return [null, ...this.builtShapes('outputShape').output];
  }

  /** True once the layer knows the shapes it is built with (see inputShape). */
  get isBuilt(): boolean {
    return this.built !== undefined;
  }

  /** @internal Records the per-example shapes the layer is built with (by `builder`, if it builds later). */
  setBuiltShapes(input: Shape | Shape[], output: Shape, builder?: { build(): void }): void {
    this.builder = builder;
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    if (this.pendingWeights && !(this.built && same(this.built.input, input))) this.pendingWeights = undefined;
    this.built = { input: this.multiInput ? (input as Shape[]).map((s) => s.slice()) : (input as Shape).slice(), output: output.slice() };
  }

  private builtShapes(op: string): { input: Shape | Shape[]; output: Shape } {
    if (!this.built) {
      throw new ValueError(`${this.name}.${op}: the layer is not built yet, so its shapes are unknown; add it to a model whose ` +
        'input shape is known (a first layer ck.layers.input({ shape }) or one with inputShape), or apply it to ck.input({ shape })');
    }
    return this.built;
  }

  /** The output shape for an input shape (per example); throws ShapeError naming the layer. */
  abstract computeOutputShape(inputShape: Shape): Shape;

  /** The weights this layer creates for an input shape, in Keras's order. */
  weightSpecs(_inputShape: Shape): WeightSpec[] {
    return [];
  }

  /** The native executor layers that compute this layer. */
  abstract lower(inputShape: Shape): NativeLayerSpec[];

  /** tfjs-style config (camelCase); io/ writes it in Keras's snake_case. */
  getConfig(): Record<string, unknown> {
    const config: Record<string, unknown> = { name: this.name, trainable: this.trainable, dtype: 'float32' };
    if (this.declaredInputShape) config.batchInputShape = [null, ...this.declaredInputShape];
    return config;
  }

  /**
   * The number of weight values (trainable or not) of the built layer, as tfjs's and Keras's
   * countParams(): the sum of the sizes of getWeights(). A ValueError while the layer is not built.
   */
  countParams(): number {
    return countWeights(this.weightSpecs(this.builtInput('countParams')));
  }

  /** The (first) input shape of the built layer, per example. */
  private builtInput(op: string): Shape {
    const input = this.builtShapes(op).input;
    return (this.multiInput ? (input as Shape[])[0] : input) as Shape;
  }

  /**
   * The functional API: applied to symbolic tensors (ck.input, or another layer's output) it
   * records the connection and returns the symbolic output; ck.model({ inputs, outputs }) then
   * builds the graph. Applied again, the layer shares its weights between the applications (a
   * Siamese network), as in Keras: each input must give it weights of the same shapes.
   */
  apply(inputs: SymbolicTensor | SymbolicTensor[]): SymbolicTensor {
    const list = symbolicInputs(this, inputs);
    if (this.multiInput && list.length < 2) throw new ValueError(`${this.name}.apply: a merge layer needs a list of at least 2 inputs`);
    if (!this.multiInput && list.length !== 1) throw new ValueError(`${this.name}.apply: takes one input, got ${list.length}`);
    const shapes = list.map((t) => t.shape.slice(1) as Shape);
    const input = (this.multiInput ? shapes : shapes[0]) as Shape;
    const output = this.computeOutputShape(input);
    if (this.inboundNodes.length > 0 && this.built) this.checkSharedInput(input, shapes);
    const out = new SymbolicTensor([null, ...output], this, this.inboundNodes.length);
    this.inboundNodes.push({ inputs: list, output: out });
    // The shapes a layer reports are its first application's (Keras's inputShape of a shared
    // layer whose applications differ is 'multiple').
    if (out.nodeIndex === 0 || !this.built) this.setBuiltShapes(this.multiInput ? shapes : shapes[0], output);
    return out;
  }

  /** A further application must make the weights the layer was built with. */
  private checkSharedInput(input: Shape, shapes: Shape[]): void {
    const first = this.weightSpecs(this.builtInput('apply'));
    const again = this.weightSpecs((this.multiInput ? shapes[0] : input) as Shape);
    const same = first.length === again.length && first.every((w, k) =>
      w.shape.length === again[k].shape.length && w.shape.every((d, i) => d === again[k].shape[i]));
    if (!same) {
      const describe = (ws: WeightSpec[]) => ws.map((w) => `${w.name} [${w.shape.join(',')}]`).join(', ');
      throw new ShapeError(`${this.name}.apply: applying the layer again shares its weights (${describe(first)}), ` +
        `but input (None, ${shapes.map((d) => d.join(', ')).join('), (None, ')}) needs ${describe(again) || 'none'}`);
    }
  }

  /** @internal Called by a model that has built this layer into its executor. */
  attach(host: LayerHost): void {
    this.host = host;
    this.pendingWeights = undefined;
    if (!this.hosts.some((ref) => ref.deref() === host)) this.hosts.push(new WeakRef(host));
  }

  /**
   * The layer's current weights (copies), in Keras's order: those of the model built last with
   * it, or, for a built layer whose model has not built yet, its initial weights (the model then
   * starts from them). [] while the layer is not built, as in tfjs.
   */
  getWeights(): Tensor[] {
    this.buildModel();
    if (this.host) return this.host.getLayerWeights(this);
    if (!this.built) return [];
    return this.initialWeights().map((t) => hostTensor(t.dataSync().slice(), t.shape));
  }

  setWeights(weights: Tensor[]): void {
    this.buildModel();
    if (this.host) {
      this.host.setLayerWeights(this, weights);
      return;
    }
    if (!this.built) throw new ValueError(`${this.name}.setWeights: the layer is not built yet; add it to a model with a known input shape first`);
    const specs = this.weightSpecs(this.builtInput('setWeights'));
    if (!Array.isArray(weights) || weights.length !== specs.length) {
      const got = Array.isArray(weights) ? weights.length : typeof weights;
      throw new ValueError(`${this.name}.setWeights: expected ${specs.length} weights, got ${got}`);
    }
    this.pendingWeights = weights.map((w, k) => {
      const t = checkTensor(w, `${this.name}.setWeights`, `weights[${k}]`);
      if (t.shape.length !== specs[k].shape.length || t.shape.some((d, j) => d !== specs[k].shape[j])) {
        throw new ShapeError(`${this.name}.setWeights: ${specs[k].name} has shape [${specs[k].shape.join(',')}], got [${t.shape.join(',')}]`);
      }
      return hostTensor(t.dataSync().slice(), t.shape);
    });
  }

  /**
   * @internal The weights a model building this layer starts from when no other model holds
   * it: those read or set before the build, if they fit `inputShape`; else none (initialize).
   */
  takePendingWeights(inputShape: Shape): Tensor[] {
    const pending = this.pendingWeights ?? [];
    const specs = this.weightSpecs(inputShape);
    const fits = pending.length === specs.length &&
      pending.every((t, k) => t.shape.length === specs[k].shape.length && t.shape.every((d, i) => d === specs[k].shape[i]));
    return fits ? pending : [];
  }

  /**
   * Builds the model that gave this layer its shapes, if it has not built yet, so that the
   * layer's weights are the model's. A model that cannot build (another layer's shape does not
   * fit) leaves the layer's own weights to it.
   */
  private buildModel(): void {
    if (this.host || !this.built || !this.builder) return;
    try {
      this.builder.build();
    } catch (e) {
      if (!(e instanceof ConvkitError)) throw e;
    }
  }

  /** The built layer's weights before any model holds them, initialized once. */
  private initialWeights(): Tensor[] {
    if (!this.pendingWeights) {
      const rng = globalRng();
      this.pendingWeights = this.weightSpecs(this.builtInput('getWeights')).map((w) => hostTensor(w.initializer.generate(w.shape, rng), w.shape));
    }
    return this.pendingWeights;
  }
}

/** A host tensor of these values (a copy the layer keeps, whatever the default device). */
function hostTensor(values: Float32Array, shape: readonly number[]): Tensor {
  return new Tensor(native.fromArray(values, shape.slice()));
}

/** The number of values of weights of these shapes. */
export function countWeights(specs: WeightSpec[]): number {
  return specs.reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1), 0);
}

function checkArgs(args: unknown, where: string): void {
  if (args === null || typeof args !== 'object' || Array.isArray(args)) {
    throw new ValueError(`${where}: layer options must be an object, got ${describeValue(args)}`);
  }
}

export function checkShape(shape: unknown, where: string, what = 'inputShape'): Shape {
  if (!Array.isArray(shape) || shape.length === 0 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new ShapeError(`${where}: ${what} must be a non-empty array of positive integers, got ${describeValue(shape)}`);
  }
  return shape.slice();
}

export function positiveInt(v: unknown, where: string, name: string): number {
  if (!Number.isInteger(v) || (v as number) < 1) {
    throw new ValueError(`${where}: ${name} must be a positive integer, got ${describeValue(v)}`);
  }
  return v as number;
}

export function pairOf(v: unknown, def: number | undefined, where: string, name: string): [number, number] {
  if (v === undefined && def !== undefined) return [def, def];
  const arr = typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(arr) || arr.length !== 2 || !arr.every((x) => Number.isInteger(x) && x >= 1)) {
    throw new ValueError(`${where}: ${name} must be a positive integer or a pair of them, got ${describeValue(v)}`);
  }
  return [arr[0], arr[1]];
}

export function paddingOf(v: unknown, where: string): 'valid' | 'same' {
  if (v === undefined) return 'valid';
  if (v !== 'valid' && v !== 'same') {
    throw new ValueError(`${where}: padding must be 'valid' or 'same', got ${describeValue(v)}`);
  }
  return v;
}

export function channelsLast(v: unknown, where: string): void {
  if (v !== undefined && v !== null && v !== 'channelsLast' && v !== 'channels_last') {
    throw new ValueError(`${where}: only dataFormat 'channelsLast' (NHWC) is supported, got ${describeValue(v)}`);
  }
}

export function initializerOf(v: unknown, def: string, where: string): Initializer {
  return getInitializer(v ?? def, where);
}

export function requireRank(shape: Shape, rank: number, where: string, what: string): void {
  if (shape.length !== rank) {
    throw new ShapeError(`${where}: expects ${what}, got input shape (None, ${shape.join(', ')})`);
  }
}
