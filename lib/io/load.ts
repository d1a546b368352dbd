// ck.loadModel('file://dir') and ck.modelFromJSON: models rebuilt from what files.ts reads (a
// saved folder, a model.json topology). The one io module above models/: models import io/ to
// save, so building a model from a file lives here, not in files.ts.
import { ConvkitError, FormatError } from '../errors';
import type { CompileArgs } from '../models/base';
import { functionalFromConfig } from '../models/functional';
import { LayersModel } from '../models/layers-model';
import { Sequential } from '../models/sequential';
import { native } from '../native';
import { optimizerFromConfig } from '../optimizers';
import { Tensor } from '../tensor';
import { readSavedWeights } from './files';
import { layersFromTopology } from './topology';

/** A Sequential or functional model from a topology (layers deserialized and connected). */
function modelFromTopology(topology: unknown): LayersModel {
  const { name, layers, functional } = layersFromTopology(topology);
  if (!functional) return new Sequential({ layers, name });
  try {
    return functionalFromConfig(functional, layers.map((layer, i) => ({ name: layer.name, layer, inbound: functional.inbound[i] })));
  } catch (e) {
    if (e instanceof RangeError) throw new FormatError('model.json: the layer graph is too deep');
    throw e;
  }
}

export async function loadModel(url: string): Promise<LayersModel> {
  const { dir, json, weights } = await readSavedWeights(url, 'loadModel');
  let model: LayersModel;
  try {
    model = modelFromTopology(json.modelTopology);
    // The weights files' real sizes bound what building the model may allocate.
    model.maxParams = json.weightsManifest.flatMap((g) => g.weights).filter((w) => w.group !== 'optimizer')
      .reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1), 0);
    model.build();
    model.maxParams = undefined;
  } catch (e) {
    // a topology the executor refuses (absurd sizes, layers that do not fit) is a bad file
    if (e instanceof ConvkitError && !(e instanceof FormatError)) throw new FormatError(`loadModel: ${dir}/model.json: ${e.message}`);
    throw e;
  }
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
  if (training && (typeof training.loss === 'string' || (typeof training.loss === 'object' && training.loss !== null))) {
    const opt = training.optimizer_config as { class_name?: string; config?: Record<string, unknown> } | undefined;
    const meta = json.userDefinedMetadata?.convkitOptimizer as { iterations?: number; slots?: number } | undefined;
    const slots = [...weights.values()].filter((w) => w.entry.group === 'optimizer');
    try {
      model.compile({ optimizer: optimizerFromConfig(opt?.class_name ?? 'SGD', opt?.config), loss: training.loss as CompileArgs['loss'], metrics: Array.isArray(training.metrics) ? training.metrics as CompileArgs['metrics'] : [] });
    } catch (e) {
      // A training config we cannot reproduce: the model still predicts (compile it yourself),
      // unless the file is a checkpoint whose optimizer state would then be silently dropped.
      if (meta && slots.length) {
        throw new FormatError(`loadModel: the file holds optimizer state, but its training config cannot be rebuilt: ${(e as Error).message}`);
      }
    }
    if (model.compiled && meta && slots.length) {
      model.net.setOptimizerState(slots.map((s) => native.fromArray(s.data, s.entry.shape)), Number(meta.iterations ?? 0));
    }
  }
  model.userDefinedMetadata = json.userDefinedMetadata;
  return model;
}

/**
 * A model (untrained, weights initialized) from a Keras / TensorFlow.js layers config: a
 * model.json object (its modelTopology is used) or a topology itself,
 * { class_name: 'Sequential', config: { layers: [...] } }. Like tf.models.modelFromJSON.
 */
export function modelFromJSON(json: unknown): LayersModel {
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new FormatError('modelFromJSON: expected a JSON object (a model.json or a Sequential topology)');
  const obj = json as Record<string, unknown>;
  return modelFromTopology(obj.modelTopology !== undefined ? obj.modelTopology : obj);
}
