// What every model has: layers compiled onto one native executor, summary, compile, weights.
// The training and inference loops are in sequential.ts.
import { DeviceError, ShapeError, ValueError } from '../errors';
import { InputLayer } from '../layers/core';
import { Layer, LayerHost, NativeLayerSpec, Shape } from '../layers/layer';
import { getLoss, LossName } from '../losses';
import { native, NativeNet } from '../native';
import { getOptimizer, Optimizer } from '../optimizers';
import { globalRng } from '../random';
import { checkTensor, Tensor } from '../tensor';
import { formatSummary } from './summary';

export type MetricFn = (yTrue: Tensor, yPred: Tensor) => number | Promise<number>;

export interface CompileArgs {
  optimizer: string | Optimizer;
  loss: string;
  metrics?: (string | MetricFn)[];
  /** 'cpu' (default) or 'cuda'; this build runs on the CPU only. */
  device?: 'cpu' | 'cuda' | 'auto';
}

/** @internal The compiled state the training loops use. */
export interface Compiled {
  optimizer: Optimizer;
  loss: LossName;
  /** The name 'accuracy' is logged under ('accuracy' or 'acc', as the user wrote it), or null. */
  accuracyName: string | null;
  userMetrics: { name: string; fn: MetricFn }[];
}

interface Built {
  net: NativeNet;
  inputShape: Shape;
  /** Per Keras layer: its input and output shapes, and its native layers [start, end). */
  layerShapes: { input: Shape; output: Shape }[];
  nativeRange: [number, number][];
  /** Per Keras layer: indices of its weights in net.params(). */
  paramIndices: number[][];
}

let modelCounter = 0;

export class ModelBase implements LayerHost {
  readonly name: string;
  readonly layers: Layer[] = [];
  /** Set by callbacks (earlyStopping) to end fit after the current epoch. */
  stopTraining = false;
  /** @internal */
  built?: Built;
  /** @internal */
  compiled?: Compiled;

  constructor(args: { layers?: Layer[]; name?: string } = {}) {
    this.name = args.name ?? (modelCounter++ === 0 ? 'sequential' : `sequential_${modelCounter - 1}`);
    for (const layer of args.layers ?? []) this.add(layer);
  }

  /** Appends a layer (the model is rebuilt, keeping the weights it had). */
  add(layer: Layer): void {
    if (!(layer instanceof Layer)) throw new ValueError(`${this.name}.add: expected a layer, got ${typeof layer}`);
    if (this.layers.includes(layer)) throw new ValueError(`${this.name}.add: layer ${layer.name} is already in the model`);
    if (layer instanceof InputLayer && this.layers.length > 0) {
      throw new ValueError(`${this.name}.add: an input layer must come first`);
    }
    const saved = this.built ? this.layers.map((l) => l.getWeights()) : null;
    this.layers.push(layer);
    if (this.built) {
      this.built = undefined;
      this.build();
      saved!.forEach((w, i) => w.length && this.layers[i].setWeights(w));
    }
  }

  /** Layers that compute something (the input layer only declares the shape). */
  private get computeLayers(): Layer[] {
    return this.layers.filter((l) => !(l instanceof InputLayer));
  }

  get inputShape(): Shape {
    const first = this.layers[0];
    if (!first?.inputShape) {
      throw new ValueError(`${this.name}: the first layer needs an inputShape (or start with ck.layers.input({ shape }))`);
    }
    return first.inputShape;
  }

  /** Builds the native executor and initializes the weights (done lazily by the other methods). */
  build(): void {
    if (this.built) return;
    if (this.computeLayers.length === 0) throw new ValueError(`${this.name}: add layers before building the model`);
    const inputShape = this.inputShape;
    const specs: NativeLayerSpec[] = [];
    const layerShapes: Built['layerShapes'] = [];
    const nativeRange: Built['nativeRange'] = [];
    let shape = inputShape;
    for (const layer of this.layers) {
      const output = layer.computeOutputShape(shape);
      const lowered = layer.lower(shape);
      nativeRange.push([specs.length, specs.length + lowered.length]);
      specs.push(...lowered);
      layerShapes.push({ input: shape, output });
      shape = output;
    }
    const net = new native.Net(inputShape, specs);
    const params = net.params();
    const paramIndices = nativeRange.map(([a, b]) => params.flatMap((p, i) => (p.layer >= a && p.layer < b ? [i] : [])));
    this.built = { net, inputShape, layerShapes, nativeRange, paramIndices };
    const rng = globalRng();
    this.layers.forEach((layer, li) => {
      const wanted = layer.weightSpecs(layerShapes[li].input);
      const got = paramIndices[li];
      if (wanted.length !== got.length) {
        throw new ValueError(`${layer.name}: declares ${wanted.length} weights but the executor made ${got.length}`);
      }
      wanted.forEach((w, k) => {
        net.setParam(got[k], native.fromArray(w.initializer.generate(w.shape, rng), w.shape));
      });
      layer.host = this;
    });
    if (this.compiled) this.compileNative();
  }

  /** @internal */
  get net(): NativeNet {
    this.build();
    return this.built!.net;
  }

  get outputShape(): (number | null)[] {
    this.build();
    return [null, ...this.built!.layerShapes[this.layers.length - 1].output];
  }

  countParams(): number {
    this.build();
    return this.layers.reduce((n, l, i) => n + l.countParams(this.built!.layerShapes[i].input), 0);
  }

  /** Prints Keras's summary table (or hands each line to printFn). */
  summary(lineLength?: number, positions?: number[], printFn: (line: string) => void = console.log): void {
    this.build();
    const rows = this.layers.flatMap((layer, i) => layer instanceof InputLayer ? [] : [{
      name: layer.name,
      className: layer.className,
      outputShape: [null, ...this.built!.layerShapes[i].output],
      params: layer.countParams(this.built!.layerShapes[i].input),
      trainableParams: layer.trainable ? layer.weightSpecs(this.built!.layerShapes[i].input)
        .filter((w) => w.trainable).reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1), 0) : 0,
    }]);
    formatSummary(this.name, rows, printFn, lineLength, positions);
  }

  compile(args: CompileArgs): void {
    if (!args || typeof args !== 'object') throw new ValueError(`${this.name}.compile: expected { optimizer, loss, metrics }`);
    if (args.device === 'cuda') {
      throw new DeviceError(`${this.name}.compile: device 'cuda' is not available in this build (no CUDA backend); use 'cpu'`);
    }
    if (args.device !== undefined && args.device !== 'cpu' && args.device !== 'auto') {
      throw new ValueError(`${this.name}.compile: unknown device ${JSON.stringify(args.device)}`);
    }
    const loss = getLoss(args.loss);
    const optimizer = getOptimizer(args.optimizer);
    let accuracyName: string | null = null;
    const userMetrics: Compiled['userMetrics'] = [];
    for (const m of args.metrics ?? []) {
      if (m === 'accuracy' || m === 'acc') accuracyName = m;
      else if (typeof m === 'function') userMetrics.push({ name: m.name || `metric_${userMetrics.length}`, fn: m });
      else throw new ValueError(`${this.name}.compile: unknown metric ${JSON.stringify(m)} (use 'accuracy' or a function)`);
    }
    this.compiled = { optimizer, loss, accuracyName, userMetrics };
    this.build();
    this.compileNative();
  }

  private compileNative(): void {
    const c = this.compiled!;
    const out = this.built!.layerShapes[this.layers.length - 1].output;
    if (c.loss === 'binaryCrossentropy' && out[out.length - 1] < 1) {
      throw new ShapeError(`${this.name}.compile: binaryCrossentropy needs outputs, got (None, ${out.join(', ')})`);
    }
    this.built!.net.compile(c.loss, { kind: c.optimizer.kind, ...c.optimizer.getConfig() }, c.accuracyName !== null);
  }

  /** The learning rate fit uses now (schedules change it between epochs). */
  get learningRate(): number {
    this.requireCompiled('learningRate');
    return this.compiled!.optimizer.learningRate;
  }

  set learningRate(lr: number) {
    this.requireCompiled('learningRate');
    this.net.setLearningRate(lr);
    this.compiled!.optimizer.learningRate = lr;
  }

  /** @internal */
  requireCompiled(op: string): Compiled {
    if (!this.compiled) throw new ValueError(`${this.name}.${op}: compile the model first (model.compile({ optimizer, loss }))`);
    return this.compiled;
  }

  /** @internal Checks x against the model's input and returns the number of examples. */
  checkInput(x: unknown, op: string): number {
    const t = checkTensor(x, `${this.name}.${op}`, 'x');
    const want = this.inputShape;
    if (t.rank !== want.length + 1 || want.some((d, i) => t.shape[i + 1] !== d)) {
      throw new ShapeError(`${this.name}.${op}: the model takes input (None, ${want.join(', ')}), got [${t.shape.join(',')}]`);
    }
    return t.shape[0];
  }

  // ---- weights ----

  getLayerWeights(layer: Layer): Tensor[] {
    const i = this.layers.indexOf(layer);
    if (i < 0 || !this.built) return [];
    return this.built.paramIndices[i].map((p) => new Tensor(this.built!.net.getParam(p)));
  }

  setLayerWeights(layer: Layer, weights: Tensor[]): void {
    this.build();
    const i = this.layers.indexOf(layer);
    const indices = this.built!.paramIndices[i];
    if (!Array.isArray(weights) || weights.length !== indices.length) {
      throw new ValueError(`${layer.name}.setWeights: expected ${indices.length} weights, got ${Array.isArray(weights) ? weights.length : typeof weights}`);
    }
    const specs = layer.weightSpecs(this.built!.layerShapes[i].input);
    weights.forEach((w, k) => {
      const t = checkTensor(w, `${layer.name}.setWeights`, `weights[${k}]`);
      if (t.shape.length !== specs[k].shape.length || t.shape.some((d, j) => d !== specs[k].shape[j])) {
        throw new ShapeError(`${layer.name}.setWeights: ${specs[k].name} has shape [${specs[k].shape.join(',')}], got [${t.shape.join(',')}]`);
      }
      this.built!.net.setParam(indices[k], t.handle);
    });
  }

  setLayerTrainable(layer: Layer, trainable: boolean): void {
    const i = this.layers.indexOf(layer);
    if (i < 0 || !this.built) return;
    const [a, b] = this.built.nativeRange[i];
    for (let n = a; n < b; n++) this.built.net.setTrainable(n, trainable);
  }

  /** All weights, layer by layer, in Keras's order (copies). */
  getWeights(): Tensor[] {
    this.build();
    return this.layers.flatMap((l) => this.getLayerWeights(l));
  }

  setWeights(weights: Tensor[]): void {
    this.build();
    const total = this.built!.paramIndices.reduce((n, p) => n + p.length, 0);
    if (!Array.isArray(weights) || weights.length !== total) {
      throw new ValueError(`${this.name}.setWeights: expected ${total} weights, got ${Array.isArray(weights) ? weights.length : typeof weights}`);
    }
    let k = 0;
    for (const l of this.layers) {
      const n = this.built!.paramIndices[this.layers.indexOf(l)].length;
      if (n) this.setLayerWeights(l, weights.slice(k, k + n));
      k += n;
    }
  }

  getLayer(name: string): Layer {
    const layer = this.layers.find((l) => l.name === name);
    if (!layer) throw new ValueError(`${this.name}.getLayer: no layer named '${name}'`);
    return layer;
  }
}
