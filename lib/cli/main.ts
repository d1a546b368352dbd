#!/usr/bin/env node
// The `convkit` command: train, predict, evaluate, export, import, summary, info. A user's mistake (a bad
// option, a missing folder, an image that cannot be read) ends with one line on stderr and exit
// code 1 (2 for usage errors); only an unexpected failure prints a stack trace.
import { Command, CommanderError, Option } from 'commander';
import * as ck from '../index';
import { CliError, parseAugment, parseChannels, parseFloatOpt, parseImageSize, parseIntOpt, parsePrecision } from './common';
import { evaluate } from './evaluate';
import { exportModel } from './export';
import { importModel } from './import';
import { info, summary } from './info';
import { predict } from './predict';
import { train } from './train';

function parseShape(value: string): [number, number, number] {
  const m = /^(\d+)x(\d+)x(\d+)$/.exec(value.trim());
  if (!m) throw new CliError(`--input-shape must be HEIGHTxWIDTHxCHANNELS (e.g. 28x28x1), got '${value}'`, 2);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

function program(): Command {
  const cmd = new Command('convkit')
    .description('Train and run convolutional image classifiers on convkit\'s native kernels.')
    .version(ck.version, '-V, --version')
    .exitOverride()
    .showSuggestionAfterError()
    .configureOutput({ outputError: (str, write) => write(`convkit: ${str.replace(/^error: /, 'error: ')}`) });

  cmd.command('train')
    .description('train a CNN on MNIST, Fashion-MNIST or a folder of images (DIR/<class>/*.png|jpg|jpeg|webp)')
    .argument('[source]', "'mnist', 'fashion-mnist' or an image folder (write ./mnist for a folder named mnist); not with --resume")
    .option('--epochs <n>', 'epochs (default: 3 for datasets, 10 for a folder)', parseIntOpt('--epochs', 1, 100000))
    .option('--batch-size <n>', 'batch size (default: 100 for datasets, 32 for a folder)', parseIntOpt('--batch-size', 1, 1 << 20))
    .option('--optimizer <name>', 'adam, sgd, rmsprop, adamw, adagrad or nadam', 'adam')
    .option('--lr <rate>', 'learning rate (default: the optimizer\'s Keras default: 1e-3 for adam, 1e-2 for sgd)', parseFloatOpt('--lr', 0, 1e6))
    .option('--validation-split <f>', 'fraction held out for validation (default: 0.1 for datasets, 0.2 for a folder)', parseFloatOpt('--validation-split', 0, 1, { inclusiveMax: false }))
    .option('--augment <list>', 'random augmentations each epoch: flip,crop,zoom,brightness (name=amount to set one, e.g. crop=0.15)', parseAugment)
    .option('--image-size <WxH>', 'image folder: resize images to WIDTHxHEIGHT (default 32x32)', parseImageSize)
    .option('--channels <n>', 'image folder: 1 (greyscale) or 3 (RGB, default)', parseChannels)
    .option('--device <device>', 'auto, cpu or cuda', 'auto')
    .option('--precision <p>', "the GPU's convolutions and dense layers: fp32, or tf32 / bf16 on tensor cores (sm_80+); the CPU always computes in fp32", parsePrecision, 'fp32')
    .option('--seed <n>', 'seed for weights, shuffling, the split and augmentation (default: random, printed)', parseIntOpt('--seed', 0, 2 ** 31 - 1))
    .option('--model <spec.json>', 'a Keras / TensorFlow.js layers config (a model.json or {class_name: "Sequential", config: {layers}})')
    .option('--base <model>', "transfer learning: a trained model folder whose layers before its classifier (last Dense) become the base of a new model with a head sized to the data's classes")
    .option('--freeze-base', 'with --base: keep the base\'s weights fixed and train only the new head')
    .option('--out <dir>', 'output folder (default: runs/<name>-<timestamp>)')
    .option('--threads <n>', 'CPU threads for the kernels (default: one per core)', parseIntOpt('--threads', 1, 1024))
    .option('--json', 'print one JSON object per epoch and a final one, and nothing else, on stdout')
    .option('--resume <dir>', "carry on a run from its output folder's last checkpoint (written after every epoch) with its data and settings; --epochs sets a new total")
    .option('--tensorboard <dir>', 'write TensorBoard event files (scalars per epoch, the model graph) to this folder: tensorboard --logdir <dir>')
    .option('--distributed', 'data-parallel over the processes of an MPI job: mpirun -np N convkit train ... --distributed (--batch-size is the global batch; rank 0 prints and writes)')
    .addOption(new Option('--train-limit <n>', 'use only the first N training images (quick runs, tests)').argParser(parseIntOpt('--train-limit', 1)).hideHelp())
    .addOption(new Option('--test-limit <n>', 'use only the first N test images (quick runs, tests)').argParser(parseIntOpt('--test-limit', 1)).hideHelp())
    .action(async (source: string | undefined, o, command: Command) => {
      if (o.resume !== undefined) {
        // a resumed run keeps its data and settings: only the total epochs, threads, device, precision, output format and processes may change
        const fixed = Object.keys(o).filter((k) => !['resume', 'epochs', 'threads', 'device', 'precision', 'json', 'distributed'].includes(k) && command.getOptionValueSource(k) === 'cli');
        if (source !== undefined) throw new CliError(`--resume takes the data from the run; leave out '${source}'`, 2);
        if (fixed.length) throw new CliError(`--resume keeps the run's settings; --${fixed[0].replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} cannot change (only --epochs, --threads, --device, --precision, --json and --distributed can)`, 2);
      } else if (source === undefined) {
        throw new CliError("missing required argument 'source' (mnist, fashion-mnist or an image folder), or --resume DIR", 2);
      }
      await train(source, { ...o, json: Boolean(o.json) });
    });

  cmd.command('predict')
    .description('classify images with a trained model (top-k classes and probabilities)')
    .argument('<model>', 'a model folder (model.json + weights.bin), as `convkit train` writes')
    .argument('<images...>', 'image files (png, jpg, webp, ...)')
    .option('--top <k>', 'how many classes to show per image', parseIntOpt('--top', 1, 1000), 3)
    .option('--json', 'print one JSON object and nothing else on stdout')
    .action(async (model: string, images: string[], o) => {
      await predict(model, images, { top: o.top, json: Boolean(o.json) });
    });

  cmd.command('evaluate')
    .description("a trained model's loss and accuracy on a dataset's test split or an image folder")
    .argument('<model>', 'a model folder')
    .argument('<source>', "'mnist', 'fashion-mnist' or an image folder (DIR/<class>/*.png|jpg|jpeg|webp)")
    .option('--batch-size <n>', 'batch size', parseIntOpt('--batch-size', 1, 1 << 20), 100)
    .option('--json', 'print one JSON object and nothing else on stdout')
    .addOption(new Option('--test-limit <n>', 'use only the first N test images').argParser(parseIntOpt('--test-limit', 1)).hideHelp())
    .action(async (model: string, source: string, o) => {
      await evaluate(model, source, { json: Boolean(o.json), batchSize: o.batchSize, testLimit: o.testLimit });
    });

  cmd.command('export')
    .description('write a trained model as an ONNX file (opset 13) for onnxruntime, TensorRT or OpenVINO')
    .argument('<model>', 'a model folder (a run\'s --out, or any model.json + weights.bin)')
    .requiredOption('--onnx <file>', 'the ONNX file to write (e.g. model.onnx)')
    .option('--nchw', 'take and give images as [batch, channels, height, width] (default: NHWC, as convkit)')
    .option('--json', 'print one JSON object and nothing else on stdout')
    .action(async (model: string, o) => {
      await exportModel(model, { onnx: o.onnx, nchw: Boolean(o.nchw), json: Boolean(o.json) });
    });

  cmd.command('import')
    .description('read an ONNX model (PyTorch\'s torch.onnx.export, or convkit export) into a convkit model folder; it takes NHWC images')
    .argument('<file>', 'the ONNX file (e.g. resnet18.onnx)')
    .argument('<out>', 'the model folder to write (new, or empty)')
    .option('--json', 'print one JSON object and nothing else on stdout')
    .action(async (file: string, outDir: string, o) => {
      await importModel(file, outDir, { json: Boolean(o.json) });
    });

  cmd.command('summary')
    .description("a model's layers, output shapes and parameter counts (Keras's table)")
    .argument('<model>', 'a model folder, a model.json or a JSON model spec')
    .option('--input-shape <HxWxC>', 'input shape for a spec whose first layer declares none', parseShape)
    .option('--json', 'print one JSON object and nothing else on stdout')
    .action(async (target: string, o) => {
      await summary(target, { json: Boolean(o.json), inputShape: o.inputShape });
    });

  cmd.command('info')
    .description('version, CPU kernels (ISA) and threads in use, CUDA, installed datasets')
    .option('--json', 'print one JSON object and nothing else on stdout')
    .action((o) => info({ json: Boolean(o.json) }));

  return cmd;
}

function fail(message: string, code: number): void {
  process.stderr.write(`convkit: error: ${message}\n`);
  process.exitCode = code;
}

export async function main(argv: string[] = process.argv): Promise<void> {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  try {
    await program().parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander has printed the message (or the help, or the version).
      process.exitCode = e.exitCode === 0 ? 0 : 2;
    } else if (e instanceof CliError) {
      fail(e.message, e.exitCode);
    } else if (e instanceof ck.ConvkitError) {
      fail(e.message, 1);
    } else {
      process.stderr.write(`convkit: unexpected error (please report it):\n${(e as Error)?.stack ?? String(e)}\n`);
      process.exitCode = 70;
    }
  }
}

if (require.main === module) void main();
