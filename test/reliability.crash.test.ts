// Crashes lose nothing but the work since the last checkpoint: `convkit train` SIGKILLed at
// random moments always leaves a checkpoint that loads, and --resume ends with the weights of a
// run never interrupted; a save SIGKILLed mid-write leaves one whole save, never a mix of two;
// readers beside a writer see whole saves; a failed write (file size limit, disk full) is an
// IOError that leaves the previous checkpoint intact; running out of memory is a DeviceError
// and the process carries on. CONVKIT_LONG=1 (npm run test:long) runs many more kills.
import { afterAll, afterEach, beforeAll, describe, expect, jest, test } from '@jest/globals';
import * as fs from 'fs';
import * as path from 'path';
import * as ck from '../lib';
import { ensureBuilt, jsonLines, runCli, tmpDir } from '../test-support/cli-fixtures';
import { bitwiseEqual, tinyData, tinyModel, weightsOf } from '../test-support/helpers';
import { CHILDREN, killAfter, leftovers, LONG, runToEnd, seeded, startNode } from '../test-support/reliability';

jest.setTimeout(LONG ? 3600000 : 120000);

let root: string;

beforeAll(() => {
  ensureBuilt();
  root = tmpDir('convkit-crash-');
});

afterAll(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

afterEach(() => {
  jest.restoreAllMocks();
});

const hasSave = (dir: string) => fs.existsSync(path.join(dir, 'model.json')) || fs.existsSync(path.join(dir, 'model.json.next'));

describe('SIGKILL during `convkit train`', () => {
  // 540 training images in batches of 50: 11 optimizer steps per epoch, ~0.05 s per epoch here.
  const KILLS = LONG ? 100 : 10;
  const EPOCHS = LONG ? 1000 : 50;
  const STEPS = 11;
  const args = ['train', 'mnist', '--train-limit', '600', '--test-limit', '100', '--batch-size', '50', '--seed', '5', '--json', '--epochs', String(EPOCHS)];

  test(`killed ${KILLS} times at random moments: the last checkpoint always loads, and --resume ends with the weights of an uninterrupted run`, async () => {
    const ref = path.join(root, 'uninterrupted');
    const t0 = Date.now();
    const reference = startNode('cli', [...args, '--out', ref]);
    await reference.line(/"type":"epoch"/);
    const firstEpochAt = Date.now() - t0;
    expect((await reference.exited).code).toBe(0);
    const wall = Date.now() - t0;
    const lines = jsonLines(reference.stdout());
    const refLoss = lines.filter((l) => l.type === 'epoch').map((l) => l.loss as number);
    expect(refLoss).toHaveLength(EPOCHS);
    // a session's phases here: start-up, the epochs left, the results
    const epochMs = (lines.at(-1)!.trainSeconds * 1000) / EPOCHS;
    const startupMs = Math.max(0, firstEpochAt - epochMs);
    const resultsMs = Math.max(0, wall - startupMs - EPOCHS * epochMs);
    // kills fall from start-up to 1.6 * EPOCHS / KILLS epochs in (never past a session's end):
    // the sessions cover ~80% of the run on any machine, and a last one finishes it
    const windowMs = (k: number) => Math.min(0.9 * (startupMs + (EPOCHS - k) * epochMs + resultsMs), startupMs + (1.6 * EPOCHS / KILLS) * epochMs);

    const out = path.join(root, 'killed');
    const rnd = seeded(2024);
    let kills = 0;
    let sessions = 0;
    let completed = 0;
    let lastEpoch = 0;
    const killedAt: number[] = [];
    while (kills < KILLS) {
      const resume = hasSave(path.join(out, 'checkpoint'));
      const child = startNode('cli', resume ? ['train', '--resume', out, '--json'] : [...args, '--out', out]);
      sessions++;
      // any moment from start-up to the end: loading, training, checkpointing, writing the results
      if (await killAfter(child, 20 + rnd() * windowMs(lastEpoch))) {
        kills++;
      } else {
        expect((await child.exited).code).toBe(0);  // a session that outran its kill
        completed++;
      }
      const dir = path.join(out, 'checkpoint');
      if (!hasSave(dir)) {
        expect(lastEpoch).toBe(0);  // killed before the first checkpoint
        continue;
      }
      // the last checkpoint loads, whole: its epoch count, optimizer steps and history agree
      const model = await ck.loadModel(`file://${dir}`);
      const meta = model.userDefinedMetadata as Record<string, any>;
      const epoch = meta.convkitCheckpoint.epoch as number;
      expect(epoch).toBeGreaterThanOrEqual(lastEpoch);
      expect(meta.convkitOptimizer.iterations).toBe(epoch * STEPS);
      expect(meta.convkitTrain.log.history.loss).toEqual(refLoss.slice(0, epoch));
      lastEpoch = epoch;
      killedAt.push(epoch);
    }
    // a last session carries on to the end
    const end = await runCli(['train', '--resume', out, '--json'], { timeoutMs: LONG ? 600000 : 60000 });
    expect(end.stderr).toBe('');
    expect(end.code).toBe(0);
    // same training as the uninterrupted run, bit for bit: the model, its optimizer state, the history
    expect(fs.readFileSync(path.join(out, 'weights.bin')).equals(fs.readFileSync(path.join(ref, 'weights.bin')))).toBe(true);
    expect(fs.readFileSync(path.join(out, 'checkpoint', 'weights.bin')).equals(fs.readFileSync(path.join(ref, 'checkpoint', 'weights.bin')))).toBe(true);
    const history = JSON.parse(fs.readFileSync(path.join(out, 'history.json'), 'utf8'));
    expect(history.epoch).toEqual(Array.from({ length: EPOCHS }, (_, i) => i + 1));
    expect(history.history.loss).toEqual(refLoss);
    expect(leftovers(out)).not.toContain('model.json.next');
    expect(leftovers(path.join(out, 'checkpoint'))).toEqual([]);
    process.stdout.write(`convkit train: ${kills} SIGKILLs over ${sessions} sessions (${completed} ran to the end first); checkpoints after the kills at epochs ${killedAt.join(',')}; resumed to epoch ${EPOCHS} with identical weights\n`);
  });

  test('--resume refuses what it cannot honour: no checkpoint, changed settings, fewer epochs', async () => {
    const empty = path.join(root, 'no-run');
    fs.mkdirSync(empty);
    const none = await runCli(['train', '--resume', empty]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/--resume .*no-run: no usable checkpoint in .*checkpoint .*a run writes one after its first epoch/);
    const changed = await runCli(['train', '--resume', empty, '--batch-size', '10']);
    expect(changed.code).toBe(2);
    expect(changed.stderr).toMatch(/--resume keeps the run's settings; --batch-size cannot change/);
    const both = await runCli(['train', 'mnist', '--resume', empty]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--resume takes the data from the run; leave out 'mnist'/);

    const run = path.join(root, 'short-run');
    const first = await runCli(['train', 'mnist', '--train-limit', '200', '--test-limit', '50', '--epochs', '2', '--seed', '1', '--json', '--out', run]);
    expect(first.code).toBe(0);
    const fewer = await runCli(['train', '--resume', run, '--epochs', '1']);
    expect(fewer.code).toBe(2);
    expect(fewer.stderr).toMatch(/--epochs 1: the run in .*short-run has already trained 2 epochs/);
    // a finished run carried further: epochs 3 and 4, numbered on from the checkpoint
    const more = await runCli(['train', '--resume', run, '--epochs', '4', '--json']);
    expect(more.code).toBe(0);
    const lines = jsonLines(more.stdout);
    expect(lines.filter((l) => l.type === 'epoch').map((l) => l.epoch)).toEqual([3, 4]);
    expect(lines.at(-1)).toEqual(expect.objectContaining({ type: 'result', epochs: 4, resumedFrom: 2 }));
  });
});

describe('modelCheckpoint', () => {
  test('a checkpoint holds whole epochs with the optimizer state; loadModel + fit({ initialEpoch }) ends where an uninterrupted fit ends', async () => {
    const { x, labels } = tinyData(90, 7);
    const y = ck.toCategorical(labels, 3);
    const fresh = () => {
      ck.setSeed(8);
      const model = tinyModel({ dropout: 0.25 });
      model.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
      return model;
    };
    const args = { epochs: 5, batchSize: 16, seed: 3, verbose: 0 as const };
    const whole = fresh();
    const wholeHistory = await whole.fit(x, y, args);

    // stopped by an AbortSignal in epoch 3: the checkpoint keeps epoch 2, not the partial epoch
    const dir = path.join(root, 'library-checkpoint');
    const first = fresh();
    const controller = new AbortController();
    let epochNow = -1;
    await first.fit(x, y, {
      ...args, signal: controller.signal, callbacks: [
        ck.callbacks.modelCheckpoint({ filepath: dir, metadata: { purpose: 'test' } }),
        { onEpochBegin: (e) => { epochNow = e; }, onBatchEnd: (b) => { if (epochNow === 2 && b === 2) controller.abort(); } },
      ],
    });
    expect(controller.signal.aborted).toBe(true);
    const resumed = await ck.loadModel(`file://${dir}`);
    const meta = resumed.userDefinedMetadata as { purpose: string; convkitCheckpoint: ck.CheckpointState; convkitOptimizer: { iterations: number } };
    expect(meta.purpose).toBe('test');
    expect(meta.convkitCheckpoint).toEqual(expect.objectContaining({ epoch: 2, epochs: 5, batchSize: 16, steps: 6, seed: 3 }));
    expect(meta.convkitCheckpoint.logs.loss).toBe(wholeHistory.history.loss[1]);
    expect(meta.convkitOptimizer.iterations).toBe(2 * 6);
    const rest = await resumed.fit(x, y, { ...args, initialEpoch: meta.convkitCheckpoint.epoch });
    expect(rest.epoch).toEqual([2, 3, 4]);
    expect(rest.history.loss).toEqual(wholeHistory.history.loss.slice(2));
    expect(bitwiseEqual(weightsOf(resumed), weightsOf(whole))).toBe(true);
  });
});

describe('SIGKILL mid-save', () => {
  const KILLS = LONG ? 300 : 15;
  const script = path.join(CHILDREN, 'save-loop.js');

  /** The folder's model: its version, and whether every weight equals it (one whole save). */
  async function readVersion(dir: string): Promise<{ version: number; whole: boolean }> {
    const model = await ck.loadModel(`file://${dir}`);
    const version = (model.userDefinedMetadata as { version: number }).version;
    const whole = model.getWeights().every((w: ck.Tensor) => w.dataSync().every((v: number) => v === version));
    return { version, whole };
  }

  test(`killed ${KILLS} times while saving in a loop: the folder always holds one whole save`, async () => {
    const dir = path.join(root, 'save-loop');
    const rnd = seeded(7);
    let next = 0;
    let committedUnreported = 0;
    let debris = 0;
    for (let i = 0; i < KILLS; i++) {
      const child = startNode(script, [dir, String(next)]);
      await child.line(/^\d+$/);
      // a save takes a few ms here: most kills land inside one
      expect(await killAfter(child, rnd() * 25)).toBe(true);
      const printed = child.stdout().split('\n').filter(Boolean).map(Number);
      const last = printed.at(-1)!;
      const { version, whole } = await readVersion(dir);
      expect(whole).toBe(true);
      // the last reported save, or the one after it when the kill came between its commit and the print
      expect([last, last + 1]).toContain(version);
      if (version === last + 1) committedUnreported++;
      if (leftovers(dir).length) debris++;
      next = last + 2;
    }
    // the next save clears what killed saves left behind
    await runToEnd(script, [dir, String(next), '1']);
    expect(leftovers(dir)).toEqual([]);
    expect(await readVersion(dir)).toEqual({ version: next, whole: true });
    process.stdout.write(`mid-save: ${KILLS} SIGKILLs, ${committedUnreported} after a commit but before its report, ${debris} leaving temporaries; every read whole\n`);
  });

  test('a reader beside a writer never pairs one save\'s model.json with another\'s weights', async () => {
    const dir = path.join(root, 'read-beside');
    await runToEnd(script, [dir, '0', '1']);
    const writer = startNode(script, [dir, '1', LONG ? '20000' : '400']);
    let reads = 0;
    const seen = new Set<number>();
    while (writer.proc.exitCode === null) {
      const { version, whole } = await readVersion(dir);
      expect(whole).toBe(true);
      seen.add(version);
      reads++;
      await new Promise((r) => setImmediate(r));  // loadModel reads synchronously: let the exit event in
    }
    expect((await writer.exited).code).toBe(0);
    expect(reads).toBeGreaterThan(10);
    expect(seen.size).toBeGreaterThan(2);  // the reads did overlap the writes
  });

  test('a save stopped between its last two renames is rolled forward; a corrupt weights file is a FormatError', async () => {
    ck.setSeed(3);
    const a = path.join(root, 'journal-a');
    const b = path.join(root, 'journal-b');
    const model = tinyModel();
    model.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy' });
    await model.save(`file://${a}`, { metadata: { version: 'a' } });
    const aWeights = weightsOf(model);
    model.setWeights(model.getWeights().map((w) => ck.fill([...w.shape], 0.25)));
    await model.save(`file://${b}`, { metadata: { version: 'b' } });
    const version = async (dir: string) => ((await ck.loadModel(`file://${dir}`)).userDefinedMetadata as { version: string }).version;

    // the new model.json journalled, the weights not yet renamed: the old save stands
    fs.copyFileSync(path.join(b, 'model.json'), path.join(a, 'model.json.next'));
    expect(await version(a)).toBe('a');
    expect(bitwiseEqual(weightsOf(await ck.loadModel(`file://${a}`)), aWeights)).toBe(true);
    // the weights renamed, model.json not yet: the journal's save is the folder's model
    fs.copyFileSync(path.join(b, 'weights.bin'), path.join(a, 'weights.bin'));
    expect(await version(a)).toBe('b');
    // a first save into a new folder stopped at the same point
    const fresh = path.join(root, 'journal-fresh');
    fs.mkdirSync(fresh);
    fs.copyFileSync(path.join(b, 'model.json'), path.join(fresh, 'model.json.next'));
    fs.copyFileSync(path.join(b, 'weights.bin'), path.join(fresh, 'weights.bin'));
    expect(await version(fresh)).toBe('b');

    // one flipped byte: the recorded SHA-256 catches it
    const bin = fs.readFileSync(path.join(b, 'weights.bin'));
    bin[100] ^= 0x40;
    fs.writeFileSync(path.join(b, 'weights.bin'), bin);
    await expect(ck.loadModel(`file://${b}`)).rejects.toThrow(ck.FormatError);
    await expect(ck.loadModel(`file://${b}`)).rejects.toThrow(/the weights do not match the SHA-256 that model\.json records/);
  });
});

describe('write errors leave the previous checkpoint intact', () => {
  test('a file size limit (EFBIG, as a full disk would): IOError naming the file; the process carries on', async () => {
    ck.setSeed(4);
    const dir = path.join(root, 'limited');
    const model = ck.sequential([ck.layers.input({ shape: [64] }), ck.layers.dense({ units: 256, activation: 'relu' }), ck.layers.dense({ units: 4, activation: 'softmax' })]);
    model.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy' });
    await model.save(`file://${dir}`, { includeOptimizer: true, metadata: { version: 'old' } });
    const before = fs.readFileSync(path.join(dir, 'weights.bin'));
    const beforeJson = fs.readFileSync(path.join(dir, 'model.json'), 'utf8');
    expect(before.length).toBeGreaterThan(200 * 1024);

    // weights.bin is ~200 KiB; the child may write files of at most 64 KiB
    const { stdout } = await runToEnd(path.join(CHILDREN, 'save-limited.js'), [dir], { limits: { fileKiB: 64 } });
    const { error, predicted } = JSON.parse(stdout.trim());
    expect(error).toEqual(expect.objectContaining({ name: 'IOError', isConvkitError: true, isIOError: true, code: 'EFBIG', path: path.join(dir, 'weights.bin') }));
    expect(error.message).toMatch(/^save: cannot write .*weights\.bin: the file is larger than allowed \(file size limit\) \(EFBIG\); the model previously in .*limited is unchanged$/);
    expect(predicted).toBe(16);
    expect(fs.readFileSync(path.join(dir, 'weights.bin')).equals(before)).toBe(true);
    expect(fs.readFileSync(path.join(dir, 'model.json'), 'utf8')).toBe(beforeJson);
    expect(leftovers(dir)).toEqual([]);
    expect(((await ck.loadModel(`file://${dir}`)).userDefinedMetadata as { version: string }).version).toBe('old');
  });

  test('disk full during a modelCheckpoint save: fit rejects with IOError ENOSPC; the last good checkpoint loads', async () => {
    ck.setSeed(5);
    const dir = path.join(root, 'full-disk');
    const { x, labels } = tinyData(60, 5);
    const y = ck.toCategorical(labels, 3);
    const model = tinyModel();
    model.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy' });
    const perEpoch: Float32Array[][] = [];
    const realOpen = fs.promises.open;
    let fileHandles = 0;
    // the third save runs out of space after its first 1000 bytes of weights
    jest.spyOn(fs.promises, 'open').mockImplementation(async (...a: Parameters<typeof fs.promises.open>) => {
      const fh = await realOpen(...a);
      if (String(a[0]).includes('.weights.bin.') && ++fileHandles === 3) {
        fh.writeFile = async () => {
          await fh.write(new Uint8Array(1000));
          throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
        };
      }
      return fh;
    });
    const fit = model.fit(x, y, {
      epochs: 5, batchSize: 20, verbose: 0, seed: 1, callbacks: [
        { onEpochEnd: () => { perEpoch.push(weightsOf(model)); } },
        ck.callbacks.modelCheckpoint({ filepath: dir }),
      ],
    });
    await expect(fit).rejects.toThrow(ck.IOError);
    await expect(fit).rejects.toThrow(/^save: cannot write .*weights\.bin: the disk is full \(ENOSPC\); the model previously in .*full-disk is unchanged$/);
    jest.restoreAllMocks();
    expect(perEpoch).toHaveLength(3);
    const loaded = await ck.loadModel(`file://${dir}`);
    expect((loaded.userDefinedMetadata as { convkitCheckpoint: { epoch: number } }).convkitCheckpoint.epoch).toBe(2);
    expect(bitwiseEqual(weightsOf(loaded), perEpoch[1])).toBe(true);
    expect(leftovers(dir)).toEqual([]);
    // the model is still usable: it saves once there is room
    await model.save(`file://${dir}`);
    expect(bitwiseEqual(weightsOf(await ck.loadModel(`file://${dir}`)), weightsOf(model))).toBe(true);
  });
});

describe('out of memory', () => {
  test('a tensor and a batch far beyond memory (3 GiB address-space limit): DeviceError, the process carries on, nothing leaks', async () => {
    const { stdout } = await runToEnd(path.join(CHILDREN, 'oom.js'), [], { limits: { memoryKiB: 3 * 1024 * 1024 } });
    const lines = jsonLines(stdout);
    const by = Object.fromEntries(lines.map((l) => [l.what, l]));
    for (const what of ['tensor', 'fit', 'predict']) {
      expect(by[what]).toEqual(expect.objectContaining({ ok: false, name: 'DeviceError', isDeviceError: true }));
      expect(by[what].message).toMatch(/out of host memory allocating \d+ bytes/);
    }
    // inference runs the 4 GiB-of-activations batch in slices, within the limit
    expect(by['predict in slices']).toEqual({ what: 'predict in slices', ok: true });
    // trained, predicted and ran an op afterwards
    expect(by.after.loss).toHaveLength(2);
    expect(by.after.loss.every(Number.isFinite)).toBe(true);
    expect(by.after.predicted[0] + by.after.predicted[1]).toBeCloseTo(1, 5);
    expect(by.after.relu).toEqual([0, 2]);
    // the failed attempts (a 64 MiB input buffer was allocated before the 4 GiB one failed)
    // freed what they had: native memory is within 1 MiB of where it was
    expect(Math.abs(by.after.hostBytes - by.before.hostBytes)).toBeLessThan(1 << 20);
  });
});
