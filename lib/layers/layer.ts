// The layer contract (as tfjs-layers / Keras): a layer knows its output shape for an input
// shape, the weights it declares, its config for serialization, and how it lowers to the native
// executor's layers. Weights live in the model's native executor once the model is built.
import { describeValue, ShapeError, ValueError } from '../errors';
import { getInitializer, Initializer } from '../initializers';
import { Tensor } from '../tensor';

/** Per-example shape (no batch dimension). */
export type Shape = number[];

export interface LayerArgs {
  name?: string;
  trainable?: boolean;
  /** Shape of one example, e.g. [28, 28, 1]; only meaningful on the first layer. */
  inputShape?: Shape;
  /** Keras's batch_input_shape: [null, ...inputShape]. */
  batchInputShape?: (number | null)[];
  dtype?: 'float32';
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
}

/** What a model gives its layers once built: access to their weights in the executor. */
export interface LayerHost {
  getLayerWeights(layer: Layer): Tensor[];
  setLayerWeights(layer: Layer, weights: Tensor[]): void;
  setLayerTrainable(layer: Layer, trainable: boolean): void;
}

const nameCounters = new Map<string, number>();

/** Keras's automatic names: conv2d, conv2d_1, max_pooling2d, ... */
export function uniqueName(prefix: string): string {
  const n = nameCounters.get(prefix) ?? 0;
  nameCounters.set(prefix, n + 1);
  return n === 0 ? prefix : `${prefix}_${n}`;
}

export function snakeCase(className: string): string {
  return className
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z])([A-Z][a-z])/g, '$1_$2')
    .toLowerCase();
}

export abstract class Layer {
  /** The serialized class name, as Keras and tfjs write it (e.g. 'Conv2D'). */
  abstract readonly className: string;
  readonly name: string;
  readonly inputShape?: Shape;
  /** Merge layers take a list of inputs (computeOutputShape and lower get one shape per input). */
  readonly multiInput: boolean = false;
  /** @internal The model built last with this layer: getWeights/setWeights go to its executor. */
  host?: LayerHost;
  /** Every built model holding the layer (weakly): freezing reaches each of them. */
  private readonly hosts: WeakRef<LayerHost>[] = [];
  /** @internal Where the functional API applied this layer: the symbolic inputs it read and its output. */
  inboundNodes: { inputs: import('../models/functional').SymbolicTensor[]; output?: import('../models/functional').SymbolicTensor }[] = [];

  /**
   * The symbolic output of this layer in the functional graph it was applied in (as Keras's
   * layer.output): ck.model({ inputs: base.inputs, outputs: base.getLayer('flatten').output })
   * makes a model of part of another, keeping its trained weights.
   */
  get output(): import('../models/functional').SymbolicTensor {
    const node = this.inboundNodes[0];
    if (!node?.output) throw new ValueError(`${this.name}.output: the layer is not connected in a functional graph (ck.input / apply)`);
    return node.output;
  }
  private trainableFlag: boolean;

  constructor(args: LayerArgs, defaultPrefix: string) {
    checkArgs(args, defaultPrefix);
    if (args.name !== undefined && typeof args.name !== 'string') {
      throw new ValueError(`${defaultPrefix}: name must be a string, got ${describeValue(args.name)}`);
    }
    this.name = args.name ?? uniqueName(defaultPrefix);
    this.trainableFlag = args.trainable ?? true;
    if (args.inputShape !== undefined) this.inputShape = checkShape(args.inputShape, this.name);
    else if (args.batchInputShape !== undefined) {
      const batch = args.batchInputShape as unknown;
      this.inputShape = checkShape(Array.isArray(batch) ? batch.slice(1) : batch, this.name);
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
    if (this.inputShape) config.batchInputShape = [null, ...this.inputShape];
    return config;
  }

  countParams(inputShape: Shape): number {
    return this.weightSpecs(inputShape).reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1), 0);
  }

  /**
   * The functional API: applied to symbolic tensors (ck.input, or another layer's output) it
   * records the connection and returns the symbolic output; ck.model({ inputs, outputs }) then
   * builds the graph. A layer is applied once (shared layers are not supported yet).
   */
  apply(inputs: import('../models/functional').SymbolicTensor | import('../models/functional').SymbolicTensor[]): import('../models/functional').SymbolicTensor {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require('../models/functional') as typeof import('../models/functional')).applyLayer(this, inputs);
  }

  /** @internal Called by a model that has built this layer into its executor. */
  attach(host: LayerHost): void {
    this.host = host;
    if (!this.hosts.some((ref) => ref.deref() === host)) this.hosts.push(new WeakRef(host));
  }

  /** The layer's current weights (copies), in Keras's order. Needs a built model. */
  getWeights(): Tensor[] {
    if (!this.host) return [];
    return this.host.getLayerWeights(this);
  }

  setWeights(weights: Tensor[]): void {
    if (!this.host) throw new ValueError(`${this.name}: add the layer to a model and build it before setting weights`);
    this.host.setLayerWeights(this, weights);
  }
}

function checkArgs(args: unknown, where: string): void {
  if (args === null || typeof args !== 'object' || Array.isArray(args)) {
    throw new ValueError(`${where}: layer options must be an object`);
  }
}

export function checkShape(shape: unknown, where: string): Shape {
  if (!Array.isArray(shape) || shape.length === 0 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new ShapeError(`${where}: inputShape must be a non-empty array of positive integers, got ${describeValue(shape)}`);
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
  if (v !== undefined && v !== 'channelsLast' && v !== 'channels_last') {
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
