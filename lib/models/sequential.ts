// Sequential: a model that is a chain of layers, each reading the one before.
import { ConvkitError, ValueError } from '../errors';
import { InputLayer } from '../layers/core';
import { Layer, Shape } from '../layers/layer';
import { ModelGraph, uniqueModelName } from './base';
import { LayersModel } from './layers-model';

export class Sequential extends LayersModel {
  /** One example's shape at the end of the chain so far; null while unknown. */
  private chainShape: Shape | null = null;

  constructor(args: { layers?: Layer[]; name?: string } = {}) {
    super(args.name ?? uniqueModelName('sequential'));
    for (const layer of args.layers ?? []) this.add(layer);
  }

  /** Appends a layer (the model is rebuilt, keeping the weights it had). */
  add(layer: Layer): void {
    if (!(layer instanceof Layer)) throw new ValueError(`${this.name}.add: expected a layer, got ${typeof layer}`);
    if (this.layers.includes(layer)) throw new ValueError(`${this.name}.add: layer ${layer.name} is already in the model`);
    if (layer instanceof InputLayer && this.layers.length > 0) {
      throw new ValueError(`${this.name}.add: an input layer must come first`);
    }
    if (layer.multiInput) throw new ValueError(`${this.name}.add: ${layer.name} merges several inputs; use the functional API (ck.model)`);
    const saved = this.built ? this.layers.map((l) => this.getLayerWeights(l)) : null;
    this.layers.push(layer);
    // As in tfjs, a layer added once the model's input shape is known is built at once: it
    // knows its shapes (inputShape, outputShape, countParams, getWeights) before the model
    // builds. A shape that does not fit is left for build() to report.
    if (this.layers.length === 1) this.chainShape = layer.declaredInputShape ?? null;
    if (this.chainShape) {
      try {
        const output = layer.computeOutputShape(this.chainShape);
        layer.setBuiltShapes(this.chainShape, output, this);
        this.chainShape = output;
      } catch (e) {
        if (!(e instanceof ConvkitError)) throw e;
        this.chainShape = null;
      }
    }
    if (this.built) {
      this.built = undefined;
      this.build();
      saved!.forEach((w, i) => w.length && this.layers[i].setWeights(w));
    }
  }

  /** A chain: the first layer's inputShape, each layer reading the one before. */
  protected graph(): ModelGraph {
    const first = this.layers[0];
    if (!first?.declaredInputShape) {
      throw new ValueError(`${this.name}: the first layer needs an inputShape (or start with ck.layers.input({ shape }))`);
    }
    return {
      inputShapes: [first.declaredInputShape],
      nodes: this.layers.map((_, j) => ({ inputs: [j] })),
      outputs: [this.layers.length],
    };
  }

  protected inputLayers(): Layer[] {
    return this.layers[0] instanceof InputLayer ? [this.layers[0]] : [];
  }

  topology(layerJson: (layer: Layer) => { class_name: string; config: unknown }): { class_name: string; config: unknown } {
    return { class_name: 'Sequential', config: { name: this.name, layers: this.layers.map(layerJson) } };
  }
}

/** ck.sequential([...layers]) as in tfjs. */
export function sequential(layers: Layer[] = [], args: { name?: string } = {}): Sequential {
  if (!Array.isArray(layers)) throw new ValueError(`sequential: expected an array of layers`);
  return new Sequential({ layers, name: args.name });
}
