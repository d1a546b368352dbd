// convkit import MODEL.onnx OUT_DIR: an ONNX model (PyTorch's torch.onnx.export, or convkit's
// own export) as a convkit model folder, which predict, evaluate, summary and ck.loadModel
// read. The folder's model takes NHWC images, as every convkit model does.
import * as fs from 'fs';
import * as path from 'path';
import * as ck from '../index';
import { CliError, formatCount, output } from './common';

const dims = (shape: (number | null)[]) => `[${shape.map((d) => d ?? 'batch').join(', ')}]`;

export async function importModel(file: string, outDir: string, opts: { json: boolean }): Promise<void> {
  const out = output(opts.json);
  if (!fs.existsSync(file)) throw new CliError(`${file} does not exist`);
  if (!fs.statSync(file).isFile()) throw new CliError(`${file} is not a file (give an .onnx file)`);
  const target = path.resolve(outDir);
  if (fs.existsSync(target) && (!fs.statSync(target).isDirectory() || fs.readdirSync(target).length > 0)) {
    throw new CliError(`${outDir} already exists and is not an empty folder; give a new folder for the model`);
  }
  let model: ck.Functional;
  try {
    model = await ck.io.loadOnnx(file);
  } catch (e) {
    if (e instanceof ck.ConvkitError) throw new CliError(`cannot import ${file}: ${e.message.replace(/^loadOnnx: /, '')}`);
    throw e;
  }
  await model.save(`file://${target}`);
  const classNames = model.userDefinedMetadata?.classNames ?? null;
  const shapes = (ts: ck.SymbolicTensor[]) => ts.map((t) => ({ name: t.sourceLayer.name, shape: [...t.shape] }));
  out.emit({
    type: 'import', file: path.resolve(file), out: target, layers: model.layers.length, params: model.countParams(),
    inputs: shapes(model.inputs), outputs: shapes(model.outputs), classNames,
  });
  out.info(`wrote ${target} (${model.layers.length} layers, ${formatCount(model.countParams())} parameters)`);
  for (const i of model.inputs) out.info(`  input  ${i.sourceLayer.name} ${dims(i.shape)}${i.shape.length === 4 ? ' NHWC' : ''}`);
  for (const o of model.outputs) out.info(`  output ${o.sourceLayer.name} ${dims(o.shape)}`);
  if (Array.isArray(classNames)) out.info(`  ${classNames.length} class names from metadata_props.classNames`);
}
