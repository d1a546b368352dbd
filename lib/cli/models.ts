// The models `convkit train` builds: the seeds' CNN for 28x28 digits, a small VGG-style CNN sized
// to an image folder's images, or a Keras / TensorFlow.js layers config given with --model.
import * as fs from 'fs';
import * as ck from '../index';
import { CliError } from './common';

/** The seeds' MNIST CNN (62,346 parameters for 10 classes). */
export function seedsCnn(shape: [number, number, number], classes: number): ck.Sequential {
  return ck.sequential([
    ck.layers.input({ shape }),
    ck.layers.conv2d({ filters: 32, kernelSize: 5, activation: 'relu' }),
    ck.layers.maxPooling2d({ poolSize: 2 }),
    ck.layers.conv2d({ filters: 64, kernelSize: 5, activation: 'relu' }),
    ck.layers.maxPooling2d({ poolSize: 2 }),
    ck.layers.flatten(),
    ck.layers.dense({ units: classes, activation: 'softmax' }),
  ], { name: 'convkit_cnn' });
}

/**
 * A small VGG-style CNN: blocks of [conv3x3 relu, conv3x3 relu, maxpool 2] with 16, 32, 64, ...
 * filters, halving the image until it is under 8 pixels (at most 5 blocks), then flatten (or
 * global average pooling when the last feature map is large) and a dense softmax.
 */
export function vggCnn(shape: [number, number, number], classes: number): ck.Sequential {
  const [h, w] = shape;
  const layers: ck.Layer[] = [ck.layers.input({ shape })];
  let size = Math.min(h, w);
  let hh = h;
  let ww = w;
  let filters = 16;
  let blocks = 0;
  while ((blocks === 0 || size >= 8) && blocks < 5) {
    layers.push(ck.layers.conv2d({ filters, kernelSize: 3, padding: 'same', activation: 'relu' }));
    layers.push(ck.layers.conv2d({ filters, kernelSize: 3, padding: 'same', activation: 'relu' }));
    if (size >= 2) {
      layers.push(ck.layers.maxPooling2d({ poolSize: 2 }));
      size = Math.floor(size / 2);
      hh = Math.floor(hh / 2);
      ww = Math.floor(ww / 2);
    }
    blocks++;
    if (size < 8) break;
    filters *= 2;
  }
  layers.push(hh * ww * filters <= 4096 ? ck.layers.flatten() : ck.layers.globalAveragePooling2d());
  layers.push(ck.layers.dense({ units: classes, activation: 'softmax' }));
  return ck.sequential(layers, { name: 'convkit_vgg' });
}

/**
 * A model from a JSON spec file: a model.json (its modelTopology) or a Sequential topology
 * { class_name: 'Sequential', config: { layers: [...] } }. A spec whose first layer declares no
 * input shape takes the data's.
 */
export function specModel(file: string, shape: [number, number, number] | null, where = `--model ${file}`, hint = ''): ck.LayersModel {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new CliError(`${where} cannot be read (expected a JSON model spec)`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CliError(`${where} is not valid JSON (${(e as Error).message})`);
  }
  let model: ck.LayersModel;
  try {
    model = ck.modelFromJSON(json);
    if (!model.layers[0]?.inputShape) {
      if (!shape) throw new CliError(`${where}: the first layer declares no input shape (add batch_input_shape, e.g. [null, 28, 28, 1]${hint})`);
      model = ck.sequential([ck.layers.input({ shape }), ...model.layers], { name: model.name });
    }
    model.build();
  } catch (e) {
    if (e instanceof CliError) throw e;
    if (e instanceof ck.ConvkitError) throw new CliError(`${where}: ${e.message.replace(/^model\.json: /, '')}`);
    throw e;
  }
  return model;
}

/** Checks that a model takes the data's images and has one output per class. */
export function checkModelFits(model: ck.LayersModel, shape: [number, number, number], classes: number, where: string): void {
  const input = model.inputShape;
  if (input.length !== 3 || input.some((d, i) => d !== shape[i])) {
    throw new CliError(`${where}: the model takes input (None, ${input.join(', ')}) but the images are (None, ${shape.join(', ')}); set --image-size/--channels or the spec's input shape to match`);
  }
  const outs = model.outputShapes;
  if (outs.length !== 1) throw new CliError(`${where}: the model has ${outs.length} outputs; it needs one, with ${classes} units (softmax)`);
  const out = outs[0];
  if (out.length !== 2 || out[1] !== classes) {
    throw new CliError(`${where}: the model outputs (None, ${out.slice(1).join(', ')}) but the data has ${classes} classes; the last layer needs ${classes} units (softmax)`);
  }
}
