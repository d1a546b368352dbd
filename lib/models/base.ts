// What every model has: a graph of layers compiled onto one native executor, summary, compile,
// weights. Sequential models give a chain, functional ones any DAG; the training and inference
// loops are in layers-model.ts (LayersModel).
import { BusyError, describeValue, DeviceError, FormatError, ShapeError, ValueError } from '../errors';
import { InputLayer } from '../layers/core';
import { countWeights, Layer, LayerHost, NativeLayerSpec, Shape } from '../layers/layer';
import { getLoss, Loss } from '../losses';
import { Metric, metricOf } from '../metrics';
import { native, NativeNet } from '../native';
import { getOptimizer, Optimizer } from '../optimizers';
import { globalRng } from '../random';
import { checkTensor, defaultDevice, Tensor } from '../tensor';
import { formatSummary, SummaryRow } from './summary';

export type MetricFn = (yTrue: Tensor, yPred: Tensor) => number | Promise<number>;

export interface DynamicBatching {
  /** The most rows one coalesced batch holds (calls with more rows run on their own). */
  maxBatchSize: number;
}

export interface CompileArgs {
  optimizer: string | Optimizer;
  /** A name ('categoricalCrossentropy', 'huber', ...), a ck.losses object, or a saved { className, config }. */
  loss: string | Loss | { className?: string; class_name?: string; config?: Record<string, unknown> };
  /**
   * 'accuracy' (or 'acc'), built-in metrics (names such as 'auc' or 'top_k_categorical_accuracy',
   * or ck.metrics objects), and user functions (yTrue, yPred) => number, which are computed on
   * validation data and in evaluate.
   */
  metrics?: (string | Metric | MetricFn | { className?: string; class_name?: string; config?: Record<string, unknown> })[];
  /**
   * Where the model trains and predicts: 'cpu', 'cuda' (a DeviceError when CUDA is unavailable
   * or a layer has no CUDA kernel yet) or 'auto' (CUDA when it can run the model, else the CPU).
   * Default: 'cpu', or 'auto' when CONVKIT_DEVICE=cuda. A model on CUDA takes inputs and targets
   * on either device (CUDA ones are gathered on the GPU); a model on the CPU takes host tensors.
   */
  device?: 'cpu' | 'cuda' | 'auto';
}

/** @internal The compiled state the training loops use. */
export interface Compiled {
  optimizer: Optimizer;
  loss: Loss;
  /** The name 'accuracy' is logged under ('accuracy' or 'acc', as the user wrote it), or null. */
  accuracyName: string | null;
  /** The built-in metrics computed natively, in compile order. */
  metrics: Metric[];
  userMetrics: { name: string; fn: MetricFn }[];
  device: 'cpu' | 'cuda' | 'auto';
}

/**
 * A model as a graph of values: ids 0..I-1 are its inputs, and node j (layers[layer], or
 * layers[j] when it names none, applied to the values `inputs`) makes value I+j. A layer applied
 * more than once (shared weights) is the layer of several nodes; its first node comes first.
 */
export interface ModelGraph {
  inputShapes: Shape[];
  nodes: { layer?: number; inputs: number[] }[];
  outputs: number[];
}

interface Built {
  net: NativeNet;
  inputShapes: Shape[];
  outputShapes: Shape[];
  /** Per Keras layer: its (first application's) input and output shapes, and native layers [start, end). */
  layerShapes: { input: Shape; inputs: Shape[]; output: Shape }[];
  nativeRange: [number, number][];
  /** Per graph node: its Keras layer and native layers [start, end) (a shared layer has several). */
  nodeLayer: number[];
  nodeRange: [number, number][];
  /** Per model output: the native layer that makes it (-1: it is a model input). */
  outputLayers: number[];
  /** Per Keras layer: indices of its weights in net.params(). */
  paramIndices: number[][];
}

const modelCounters = new Map<string, number>();

/** Keras's automatic model names: sequential, sequential_1, model, model_1, ... */
export function uniqueModelName(prefix: string): string {
  const n = modelCounters.get(prefix) ?? 0;
  modelCounters.set(prefix, n + 1);
  return n === 0 ? prefix : `${prefix}_${n}`;
}

export abstract class ModelBase implements LayerHost {
  readonly name: string;
  readonly layers: Layer[] = [];
  /** Set by callbacks (earlyStopping) to end fit after the current epoch. */
  stopTraining = false;
  /** @internal The training call running on this model (fit, fitDataset, trainOnBatch), or null. */
  training: string | null = null;
  /** @internal */
  built?: Built;
  /** @internal */
  compiled?: Compiled;
  /**
   * @internal The most weight values build() may create: loadModel sets it to what the weights
   * files hold, so a model.json cannot make convkit allocate more than its files back.
   */
  maxParams?: number;
  private batching: DynamicBatching | false = { maxBatchSize: 32 };

  constructor(name: string) {
    this.name = name;
  }

  /** The model's graph over this.layers (see ModelGraph). */
  protected abstract graph(): ModelGraph;

  /**
   * Dynamic batching, for servers that call predictOnBatch once per request: calls of at most
   * `maxBatchSize` rows that arrive while the model is still busy predicting run together as one
   * batch when their turn comes (no added delay: a call that finds the model idle starts at
   * once). Each call's result is bitwise what it would be alone. `false` runs every call on its
   * own. CPU models; default { maxBatchSize: 32 }.
   */
  get dynamicBatching(): DynamicBatching | false {
    return this.batching === false ? false : { ...this.batching };
  }

  set dynamicBatching(value: DynamicBatching | false) {
    const where = `${this.name}.dynamicBatching`;
    if (value !== false) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new ValueError(`${where}: expected false or { maxBatchSize }, got ${describeValue(value)}`);
      }
      const unknown = Object.keys(value).filter((k) => k !== 'maxBatchSize');
      if (unknown.length) throw new ValueError(`${where}: unknown option '${unknown[0]}' (expected maxBatchSize)`);
      const max = value.maxBatchSize;
      if (!Number.isInteger(max) || max < 1 || max > 65536) {
        throw new ValueError(`${where}: maxBatchSize must be an integer in [1, 65536], got ${describeValue(max)}`);
      }
      value = { maxBatchSize: max };
    }
    this.batching = value;
    if (this.built) this.built.net.setDynamicBatching(value === false ? 0 : value.maxBatchSize);
  }

  /** One example's shape for the (first) input. */
  get inputShape(): Shape {
    return this.graph().inputShapes[0];
  }

  /** Builds the native executor and initializes the weights (done lazily by the other methods). */
  build(): void {
    if (this.built) return;
    const graph = this.graph();
    const nIn = graph.inputShapes.length;
    const specs: NativeLayerSpec[] = [];
    const layerShapes: Built['layerShapes'] = [];
    const nativeRange: Built['nativeRange'] = [];
    const nodeLayer: number[] = [];
    const nodeRange: Built['nodeRange'] = [];
    const valueShapes: Shape[] = [...graph.inputShapes];
    // The native value that holds each model value (a layer lowered to nothing passes its input on).
    const nativeValue: number[] = graph.inputShapes.map((_, i) => i);
    const producer: number[] = graph.inputShapes.map(() => -1);
    graph.nodes.forEach((node, j) => {
      const li = node.layer ?? j;
      const layer = this.layers[li];
      const inputs = node.inputs.map((v) => valueShapes[v]);
      const arg = layer.multiInput ? inputs : inputs[0];
      const output = layer.computeOutputShape(arg as Shape);
      let lowered = layer.lower(arg as Shape);
      const first = nativeRange[li];
      if (first) lowered = this.sharedLowering(layer, lowered, first, specs);
      if (lowered.length > 0) lowered[0] = { ...lowered[0], inputs: node.inputs.map((v) => nativeValue[v]) as never };
      const range: [number, number] = [specs.length, specs.length + lowered.length];
      nodeLayer.push(li);
      nodeRange.push(range);
      specs.push(...lowered);
      if (!first) {
        nativeRange[li] = range;
        layerShapes[li] = { input: inputs[0], inputs, output };
        layer.setBuiltShapes(layer.multiInput ? inputs : inputs[0], output);
      }
      valueShapes.push(output);
      nativeValue.push(lowered.length ? nIn + specs.length - 1 : nativeValue[node.inputs[0]]);
      producer.push(lowered.length ? specs.length - 1 : producer[node.inputs[0]]);
    });
    if (specs.length === 0) throw new ValueError(`${this.name}: add layers before building the model`);
    this.layers.forEach((layer, li) => {
      if (!nativeRange[li]) throw new ValueError(`${this.name}: layer ${layer.name} is in no node of the graph`);
    });
    if (this.maxParams !== undefined) {
      const declared = this.layers.reduce((n, layer, j) => n + countWeights(layer.weightSpecs(layerShapes[j].input)), 0);
      if (!(declared <= this.maxParams)) {
        throw new FormatError(`${this.name}: the layers need ${declared} weight values but the weights files hold ${this.maxParams}`);
      }
    }
    const net = new native.Net(graph.inputShapes, specs, graph.outputs.map((v) => nativeValue[v]));
    net.setDynamicBatching(this.batching === false ? 0 : this.batching.maxBatchSize);
    const params = net.params();
    const paramIndices = nativeRange.map(([a, b]) => params.flatMap((p, i) => (p.layer >= a && p.layer < b ? [i] : [])));
    this.built = {
      net, inputShapes: graph.inputShapes, outputShapes: graph.outputs.map((v) => valueShapes[v]), layerShapes,
      nativeRange, nodeLayer, nodeRange, outputLayers: graph.outputs.map((v) => producer[v]), paramIndices,
    };
    const rng = globalRng();
    const penalties: { param: number; l1: number; l2: number }[] = [];
    this.layers.forEach((layer, li) => {
      const wanted = layer.weightSpecs(layerShapes[li].input);
      const got = paramIndices[li];
      if (wanted.length !== got.length) {
        throw new ValueError(`${layer.name}: declares ${wanted.length} weights but the executor made ${got.length}`);
      }
      wanted.forEach((w, k) => { if (w.regularizer) penalties.push({ param: got[k], l1: w.regularizer.l1, l2: w.regularizer.l2 }); });
      // A layer taken from another built model (transfer learning) brings its trained weights
      // along; from then on each model trains its own copy (trainable still reaches both). A
      // layer no model held yet brings the weights read or set on it since it was built, if any.
      const carried = layer.host ? (layer.host !== this ? layer.getWeights() : []) : layer.takePendingWeights(layerShapes[li].input);
      const fits = carried.length === wanted.length &&
        carried.every((t, k) => t.shape.length === wanted[k].shape.length && t.shape.every((d, i) => d === wanted[k].shape[i]));
      wanted.forEach((w, k) => {
        const value = fits ? carried[k] : new Tensor(native.fromArray(w.initializer.generate(w.shape, rng), w.shape));
        net.setParam(got[k], asShape(value, params[got[k]].shape).handle);
      });
      layer.attach(this);
    });
    if (penalties.length) net.setRegularizers(penalties);
    if (this.compiled) this.compileNative();
  }

  /**
   * A further application of a layer: native layers of the same kinds as its first
   * application's (`first`, in `specs`), each reading that one's weights.
   */
  private sharedLowering(layer: Layer, lowered: NativeLayerSpec[], first: [number, number], specs: NativeLayerSpec[]): NativeLayerSpec[] {
    const kinds = specs.slice(first[0], first[1]).map((spec) => spec.kind);
    if (lowered.length !== kinds.length || lowered.some((spec, m) => spec.kind !== kinds[m])) {
      throw new ValueError(`${layer.name}: its applications compute differently (native layers ${kinds.join(', ')} and ` +
        `${lowered.map((spec) => spec.kind).join(', ')}), so they cannot share its weights`);
    }
    return lowered.map((spec, m) => ({ ...spec, sharesParamsWith: first[0] + m }));
  }

  /** @internal */
  get net(): NativeNet {
    this.build();
    return this.built!.net;
  }

  /** (None, ...) of each output. */
  get outputShapes(): (number | null)[][] {
    this.build();
    return this.built!.outputShapes.map((s) => [null, ...s]);
  }

  /** (None, ...) of the output; for a model with several outputs, one per output. */
  get outputShape(): (number | null)[] | (number | null)[][] {
    this.build();
    const shapes = this.built!.outputShapes.map((s) => [null, ...s]);
    return shapes.length === 1 ? shapes[0] : shapes;
  }

  countParams(): number {
    this.build();
    return this.layers.reduce((n, l, i) => n + countWeights(l.weightSpecs(this.built!.layerShapes[i].input)), 0);
  }

  /** Summary rows: Sequential models leave their input layer out, as Keras does. */
  protected summaryRows(): SummaryRow[] {
    this.build();
    return this.layers.flatMap((layer, i) => layer instanceof InputLayer ? [] : [this.summaryRow(i)]);
  }

  protected summaryRow(i: number): SummaryRow {
    const layer = this.layers[i];
    const shapes = this.built!.layerShapes[i];
    return {
      name: layer.name,
      className: layer.className,
      outputShape: [null, ...shapes.output],
      params: countWeights(layer.weightSpecs(shapes.input)),
      trainableParams: layer.trainable ? countWeights(layer.weightSpecs(shapes.input).filter((w) => w.trainable)) : 0,
    };
  }

  /** Prints Keras's summary table (or hands each line to printFn). */
  summary(lineLength?: number, positions?: number[], printFn: (line: string) => void = console.log): void {
    formatSummary(this.name, this.summaryRows(), printFn, lineLength, positions);
  }

  /** True while fit, fitDataset or trainOnBatch runs (tfjs's isTraining). */
  get isTraining(): boolean {
    return this.training !== null;
  }

  /**
   * @internal Claims the model for a training call. Training calls run one at a time (their
   * steps would interleave); predict, evaluate, save and get/setWeights may run beside one and
   * see the weights between two of its steps.
   */
  beginTraining(op: string): void {
    if (this.training !== null) {
      throw new BusyError(`${this.name}.${op}: the model is training (${this.training} is running); it trains one call at a time: await that one first, or train another model`);
    }
    this.training = op;
  }

  compile(args: CompileArgs): void {
    if (!args || typeof args !== 'object') throw new ValueError(`${this.name}.compile: expected { optimizer, loss, metrics }`);
    if (this.training !== null) throw new BusyError(`${this.name}.compile: the model is training (${this.training} is running); compile it before or after`);
    if (args.device !== undefined && args.device !== 'cpu' && args.device !== 'cuda' && args.device !== 'auto') {
      throw new ValueError(`${this.name}.compile: unknown device ${describeValue(args.device)} (expected 'cpu', 'cuda' or 'auto')`);
    }
    const device = args.device ?? (defaultDevice() === 'cuda' ? 'auto' : 'cpu');
    const loss = getLoss(args.loss);
    const optimizer = getOptimizer(args.optimizer);
    let accuracyName: string | null = null;
    const userMetrics: Compiled['userMetrics'] = [];
    const metrics: Metric[] = [];
    const sparse = loss.name === 'sparseCategoricalCrossentropy';
    for (const m of args.metrics ?? []) {
      if (m === 'accuracy' || m === 'acc') {
        accuracyName = m;
        continue;
      }
      if (typeof m === 'function') {
        userMetrics.push({ name: m.name || `metric_${userMetrics.length}`, fn: m as MetricFn });
        continue;
      }
      const metric = metricOf(m);
      if (!metric) {
        throw new ValueError(`${this.name}.compile: unknown metric ${describeValue(m)} (use 'accuracy', 'top_k_categorical_accuracy', 'sparse_top_k_categorical_accuracy', 'precision', 'recall', 'auc', a ck.metrics object or a function)`);
      }
      // The step reads targets in the loss's layout: class ids with the sparse loss, else one value per output.
      const wantsSparse = metric.targets === 'classIds';
      if (metric.targets !== 'either' && wantsSparse !== sparse) {
        throw new ValueError(`${this.name}.compile: ${metric.name} needs ${wantsSparse ? 'class-id targets (loss sparseCategoricalCrossentropy)' : 'one target per output value'}, but the loss is ${loss.name}${sparse && metric.className === 'TopKCategoricalAccuracy' ? '; use sparse_top_k_categorical_accuracy' : ''}`);
      }
      if (metrics.some((x) => x.name === metric.name)) throw new ValueError(`${this.name}.compile: two metrics are named '${metric.name}' (give one a name)`);
      metrics.push(metric);
    }
    this.compiled = { optimizer, loss, accuracyName, metrics, userMetrics, device };
    this.build();
    this.compileNative();
  }

  private compileNative(): void {
    const c = this.compiled!;
    const net = this.built!.net;
    const config = { kind: c.optimizer.kind, ...c.optimizer.getConfig(), learningRate: c.optimizer.learningRate };
    if (c.device === 'auto') {
      try {
        net.setDevice(native.cudaStatus().available ? 'cuda' : 'cpu');
      } catch (e) {
        if (!(e instanceof DeviceError)) throw e;
        net.setDevice('cpu');  // a layer CUDA cannot run yet
      }
    } else {
      try {
        net.setDevice(c.device);
      } catch (e) {
        if (e instanceof DeviceError) throw new DeviceError(`${this.name}.compile: ${e.message}`);
        throw e;
      }
    }
    const { name, fromLogits, labelSmoothing, delta } = c.loss;
    net.compile({ name, fromLogits, labelSmoothing, delta }, config, c.accuracyName !== null, c.metrics.map((m) => m.native));
  }

  /** Where the model runs: 'cpu' until compiled onto 'cuda' (see CompileArgs.device). */
  get device(): 'cpu' | 'cuda' {
    return this.built ? this.built.net.device() : 'cpu';
  }

  /** The learning rate fit uses now (schedules change it between epochs). */
  get learningRate(): number {
    this.requireCompiled('learningRate');
    return this.compiled!.optimizer.learningRate;
  }

  set learningRate(lr: number) {
    const { optimizer } = this.requireCompiled('learningRate');
    if (optimizer.schedule) {
      throw new ValueError(`${this.name}.learningRate: the optimizer's learning rate follows a ${optimizer.schedule.className} schedule; it cannot be set (compile with a number to set it)`);
    }
    this.net.setLearningRate(lr);
    this.compiled!.optimizer.learningRate = lr;
  }

  /** @internal */
  requireCompiled(op: string): Compiled {
    if (!this.compiled) throw new ValueError(`${this.name}.${op}: compile the model first (model.compile({ optimizer, loss }))`);
    return this.compiled;
  }

  /** @internal The model's inputs as a list: x is a tensor, or one tensor per input. */
  checkInputs(x: unknown, op: string): { xs: Tensor[]; n: number } {
    const where = `${this.name}.${op}`;
    const want = this.graph().inputShapes;
    // A JS array of tensors is one per input; any other array is a mistaken x.
    const list = Array.isArray(x) && x.length > 0 && x.every((t) => t instanceof Tensor) ? x : [x];
    if (list.length !== want.length) {
      throw new ValueError(`${where}: the model takes ${want.length} input(s), got ${list.length} tensor(s)`);
    }
    const xs = list.map((t, i) => checkTensor(t, where, want.length > 1 ? `x[${i}]` : 'x'));
    xs.forEach((t, i) => {
      if (t.rank !== want[i].length + 1 || want[i].some((d, k) => t.shape[k + 1] !== d)) {
        throw new ShapeError(`${where}: the model takes input (None, ${want[i].join(', ')}), got [${t.shape.join(',')}]`);
      }
      if (t.shape[0] !== xs[0].shape[0]) {
        throw new ShapeError(`${where}: every input needs the same number of examples, got [${xs[0].shape.join(',')}] and [${t.shape.join(',')}]`);
      }
    });
    return { xs, n: xs[0].shape[0] };
  }

  /** @internal Checks x against the model's single input and returns the number of examples. */
  checkInput(x: unknown, op: string): number {
    return this.checkInputs(x, op).n;
  }

  // ---- weights ----

  getLayerWeights(layer: Layer): Tensor[] {
    const i = this.layers.indexOf(layer);
    if (i < 0 || !this.built) return [];
    const specs = layer.weightSpecs(this.built.layerShapes[i].input);
    return this.built.paramIndices[i].map((p, k) => asShape(new Tensor(this.built!.net.getParam(p)), specs[k].shape));
  }

  /** A weight in the shape the executor holds it in (a Conv1D kernel [K, in, out] is Conv2D's [1, K, in, out]). */
  private nativeWeight(t: Tensor, param: number): Tensor {
    return asShape(t, this.built!.net.params()[param].shape);
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
      this.built!.net.setParam(indices[k], this.nativeWeight(t, indices[k]).handle);
    });
  }

  setLayerTrainable(layer: Layer, trainable: boolean): void {
    const i = this.layers.indexOf(layer);
    if (i < 0 || !this.built) return;
    this.built.nodeRange.forEach(([a, b], j) => {
      if (this.built!.nodeLayer[j] !== i) return;
      for (let n = a; n < b; n++) this.built!.net.setTrainable(n, trainable);
    });
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

/** t, or a view of it in `shape` (the same number of values). */
function asShape(t: Tensor, shape: readonly number[]): Tensor {
  return t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i]) ? t : t.reshape([...shape]);
}
