// @tensorflow/tfjs as a test reference: getting it ready quietly, and moving models between a
// folder and tfjs (which has no file:// handler without tfjs-node): the artifacts of a folder
// convkit wrote, and a tfjs save laid out as file:// does.
import { jest } from '@jest/globals';
import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as path from 'path';

/** tfjs on its pure-JS CPU backend, ready, without its once-per-process greeting on the console. */
export async function tfjsReady(): Promise<void> {
  const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
  const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
  await tf.setBackend('cpu');
  await tf.ready();
  tf.tensor([0]).dispose();
  warn.mockRestore();
  log.mockRestore();
}

/** The tfjs layers-format artifacts of a folder convkit wrote, for tf.loadLayersModel. */
export function readArtifacts(dir: string): tf.io.ModelArtifacts {
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const bin = fs.readFileSync(path.join(dir, json.weightsManifest[0].paths[0]));
  return {
    modelTopology: json.modelTopology,
    weightSpecs: json.weightsManifest.flatMap((g: { weights: tf.io.WeightsManifestEntry[] }) => g.weights),
    weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength),
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy,
  };
}

/** Saves a tfjs model as model.json + weights.bin, the way tfjs's file:// handler lays them out. */
export async function saveTfjs(model: tf.LayersModel, dir: string): Promise<void> {
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    const data = artifacts.weightData!;
    const bytes = Buffer.from(Array.isArray(data) ? tf.io.concatenateArrayBuffers(data) : data);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'weights.bin'), bytes);
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify({
      modelTopology: artifacts.modelTopology,
      format: artifacts.format ?? 'layers-model',
      generatedBy: artifacts.generatedBy,
      convertedBy: artifacts.convertedBy ?? null,
      weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
    }));
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: bytes.length } };
  }));
}

