// `convkit train --resume DIR --device cuda`: a run checkpointed on the CPU goes on on the GPU
// with its optimizer state and step count (the CUDA emulator's suite runs it: scripts/cuda-emu.js).
import { afterAll, beforeAll, expect, jest, test } from '@jest/globals';
import * as fs from 'fs';
import * as path from 'path';
import * as ck from '../lib';
import { ensureBuilt, jsonLines, makeShapeFolder, runCli, tmpDir } from '../test-support/cli-fixtures';

jest.setTimeout(600000);

const status = ck.cudaStatus();
let root: string;

async function train(args: string[]): Promise<Record<string, any>> {
  const r = await runCli(['train', ...args, '--json'], { timeoutMs: 590000 });
  if (r.code !== 0) throw new Error(`train ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  const lines = jsonLines(r.stdout);
  return lines[lines.length - 1];
}

/** The optimizer's step count saved in a run's checkpoint. */
const savedSteps = (run: string): number =>
  JSON.parse(fs.readFileSync(path.join(run, 'checkpoint', 'model.json'), 'utf8')).userDefinedMetadata.convkitOptimizer.iterations;

beforeAll(() => {
  ensureBuilt();
  root = tmpDir('convkit-cli-cuda-');
});

afterAll(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

(status.available ? test : test.skip)(
  `--resume DIR --device cuda trains on the GPU from the checkpoint's optimizer state${status.available ? '' : ` (skipped: CUDA is unavailable: ${status.reason})`}`,
  async () => {
    const folder = await makeShapeFolder(path.join(root, 'shapes'), { perClass: 6, size: 16 });
    const run = path.join(root, 'run');
    const first = await train([folder, '--epochs', '2', '--seed', '1', '--optimizer', 'adam', '--device', 'cpu', '--out', run]);
    expect(first.device.type).toBe('cpu');
    const stepsPerEpoch = savedSteps(run) / 2;
    expect(Number.isInteger(stepsPerEpoch) && stepsPerEpoch > 0).toBe(true);
    const again = await train(['--resume', run, '--epochs', '3', '--device', 'cuda']);
    expect(again.device.type).toBe('cuda');
    expect(again.resumedFrom).toBe(2);
    // the step count went on from the checkpoint's (a fresh optimizer would have counted one epoch)
    expect(savedSteps(run)).toBe(3 * stepsPerEpoch);
  },
);
