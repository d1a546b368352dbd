// convkit export MODEL --onnx FILE: a trained model folder (a run's output, or any model folder
// convkit or TensorFlow.js wrote) as an ONNX file for onnxruntime, TensorRT or OpenVINO, with
// the class names from the run's metadata.
import * as fs from 'fs';
import * as path from 'path';
import * as ck from '../index';
import { CliError, formatCount, loadModelFolder, modelDir, output } from './common';

const dims = (d: (number | string)[]) => `[${d.join(', ')}]`;

export async function exportModel(modelPath: string, opts: { onnx: string; nchw: boolean; json: boolean }): Promise<void> {
  const out = output(opts.json);
  const dir = modelDir(modelPath);
  const target = path.resolve(opts.onnx);
  if (!fs.existsSync(path.dirname(target))) throw new CliError(`--onnx ${opts.onnx}: the folder ${path.dirname(target)} does not exist`);
  if (fs.existsSync(target) && fs.statSync(target).isDirectory()) throw new CliError(`--onnx ${opts.onnx} is a folder; give a file name (e.g. model.onnx)`);
  const model = await loadModelFolder(dir);
  let result: ck.io.OnnxExportResult;
  try {
    result = await ck.io.toOnnx(model, target, { layout: opts.nchw ? 'nchw' : 'nhwc' });
  } catch (e) {
    if (e instanceof ck.ConvkitError) throw new CliError(`cannot export ${dir}: ${e.message.replace(/^toOnnx: /, '')}`);
    throw e;
  }
  const classNames = model.userDefinedMetadata?.classNames;
  const classes = Array.isArray(classNames) ? classNames.length : 0;
  out.emit({
    type: 'export', model: dir, format: 'onnx', file: result.path, bytes: result.bytes, opset: result.opset,
    layout: opts.nchw ? 'NCHW' : 'NHWC', inputs: result.inputs, outputs: result.outputs, classNames: classNames ?? null,
  });
  out.info(`wrote ${result.path} (ONNX opset ${result.opset}, ${formatCount(result.bytes)} bytes)`);
  for (const i of result.inputs) out.info(`  input  ${i.name} ${dims(i.dims)}${i.dims.length === 4 ? (opts.nchw ? ' NCHW' : ' NHWC') : ''}`);
  for (const o of result.outputs) out.info(`  output ${o.name} ${dims(o.dims)}`);
  if (classes) out.info(`  ${classes} class names in metadata_props.classNames`);
}
