// A model folder (model.json + weights.bin) changes as a whole or not at all: a save killed at
// any moment, or a machine that loses power, leaves either the previous model or the new one,
// and a reader never pairs one save's model.json with another's weights.
//
// model.json records the size and SHA-256 of its weights (`convkitSave`). A save writes both
// files to temporary names and fsyncs them, renames the new model.json to model.json.next (the
// journal), renames the weights over weights.bin, then model.json.next over model.json, fsyncing
// the folder after each rename so they reach the disk in that order. A reader whose model.json
// does not match weights.bin takes model.json.next when that one matches (a save stopped between
// its last two renames), and otherwise reads again (a save running beside it), then gives up
// with a FormatError.
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { threadId } from 'worker_threads';
import { FormatError, IOError } from '../errors';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';
export const JOURNAL = 'model.json.next';

/** What model.json records about its weights file. */
export interface SaveStamp {
  weightsBytes: number;
  weightsSha256: string;
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

const TMP = /^\.(model\.json|weights\.bin)\.(\d+)-(\d+)-\d+\.tmp$/;
let tmpCounter = 0;

function tmpName(dir: string, file: string): string {
  return path.join(dir, `.${file}.${process.pid}-${threadId}-${tmpCounter++}.tmp`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes temporary files left by saves that were killed (not those of saves still running). */
async function removeStaleTemps(dir: string): Promise<void> {
  for (const name of await fs.promises.readdir(dir)) {
    const m = TMP.exec(name);
    if (!m) continue;
    const pid = Number(m[2]);
    const mine = pid === process.pid && Number(m[3]) === threadId;
    if (mine || (pid !== process.pid && !alive(pid))) await fs.promises.rm(path.join(dir, name), { force: true });
  }
}

async function writeDurable(file: string, data: Uint8Array | string): Promise<void> {
  const fh = await fs.promises.open(file, 'wx');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Makes the folder's entries (renames, new files) durable. */
async function syncDir(dir: string): Promise<void> {
  let fh: fs.promises.FileHandle | undefined;
  try {
    fh = await fs.promises.open(dir, 'r');
    await fh.sync();
  } catch (e) {
    // Some systems (Windows) cannot open or fsync a folder; the renames are still atomic there.
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'EACCES') throw e;
  } finally {
    await fh?.close();
  }
}

// Saves to one folder from this thread run one after another (a checkpoint and a user's save).
const folderQueues = new Map<string, Promise<unknown>>();

function serialised<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const before = folderQueues.get(dir) ?? Promise.resolve();
  const run = before.then(fn, fn);
  const settled = run.then(() => undefined, () => undefined);
  folderQueues.set(dir, settled);
  void settled.then(() => {
    if (folderQueues.get(dir) === settled) folderQueues.delete(dir);
  });
  return run;
}

function ioError(op: string, e: unknown, file: string, dir: string, committed: boolean): IOError {
  const err = e as NodeJS.ErrnoException;
  const why = err.code === 'ENOSPC' ? 'the disk is full'
    : err.code === 'EFBIG' ? 'the file is larger than allowed (file size limit)'
      : err.code === 'EACCES' || err.code === 'EPERM' ? 'permission denied'
        : err.code === 'EROFS' ? 'the file system is read-only'
          : err.message;
  const state = committed ? `${dir} holds the new model` : `the model previously in ${dir} is unchanged`;
  return new IOError(`${op}: cannot write ${file}: ${why} (${err.code ?? 'error'}); ${state}`, err.code, file);
}

/**
 * Writes `json` (which must carry this weights' stamp as convkitSave) and `weights` into `dir`
 * as one atomic change. Throws IOError naming the file and the system's reason.
 */
export function commitModelFolder(dir: string, json: string, weights: Uint8Array, op = 'save'): Promise<void> {
  return serialised(dir, async () => {
    let target = dir;
    const temps: string[] = [];
    let committed = false;
    try {
      const existed = fs.existsSync(dir);
      await fs.promises.mkdir(dir, { recursive: true });
      if (!existed) await syncDir(path.dirname(dir));
      await removeStaleTemps(dir);
      const weightsTmp = tmpName(dir, WEIGHTS_BIN);
      const jsonTmp = tmpName(dir, MODEL_JSON);
      temps.push(weightsTmp, jsonTmp);
      target = path.join(dir, WEIGHTS_BIN);
      await writeDurable(weightsTmp, weights);
      target = path.join(dir, MODEL_JSON);
      await writeDurable(jsonTmp, json);
      target = path.join(dir, JOURNAL);
      await fs.promises.rename(jsonTmp, path.join(dir, JOURNAL));
      await syncDir(dir);
      target = path.join(dir, WEIGHTS_BIN);
      await fs.promises.rename(weightsTmp, path.join(dir, WEIGHTS_BIN));
      committed = true;  // from here a reader rolls forward to this save
      await syncDir(dir);
      target = path.join(dir, MODEL_JSON);
      await fs.promises.rename(path.join(dir, JOURNAL), path.join(dir, MODEL_JSON));
      await syncDir(dir);
    } catch (e) {
      await Promise.all(temps.map((t) => fs.promises.rm(t, { force: true }).catch(() => undefined)));
      throw ioError(op, e, target, dir, committed);
    }
  });
}

function readJson(file: string, maxBytes: number, required: boolean): unknown {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    return undefined;
  }
  if (!stat.isFile() || stat.size > maxBytes) {
    if (required) throw new FormatError(`loadModel: ${file} is not a model.json of sane size`);
    return undefined;
  }
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    if (required) throw new FormatError(`loadModel: ${file} is not valid JSON (${(e as Error).message})`);
    return undefined;
  }
}

function stampOf(json: unknown): SaveStamp | null {
  const s = (json as { convkitSave?: Partial<SaveStamp> } | null)?.convkitSave;
  if (!s || typeof s !== 'object' || typeof s.weightsSha256 !== 'string' || !Number.isSafeInteger(s.weightsBytes)) return null;
  return s as SaveStamp;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Reads a model folder consistently: `check` validates a parsed model.json and `readWeights`
 * reads the weights it names (both throw FormatError). Returns a model.json whose recorded
 * weights digest matches the weights read (or one with no digest, as TensorFlow.js writes).
 */
export async function readModelFolder<J>(dir: string, maxJsonBytes: number, check: (json: unknown) => J,
  readWeights: (json: J) => Uint8Array): Promise<{ json: J; weights: Uint8Array }> {
  const file = path.join(dir, MODEL_JSON);
  const journalFile = path.join(dir, JOURNAL);
  let failure: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    if (attempt > 0) await sleep(20 * attempt);
    const currentRaw = readJson(file, maxJsonBytes, true);
    let current: { json: J; weights?: Uint8Array; error?: unknown } | null = null;
    const stamp = stampOf(currentRaw);
    if (currentRaw !== undefined) {
      current = { json: check(currentRaw) };
      try {
        current.weights = readWeights(current.json);
      } catch (e) {
        current.error = e;
      }
      if (stamp && current.weights && matches(stamp, current.weights)) return { json: current.json, weights: current.weights };
    }
    // A save stopped between its last two renames: its journal copy matches the weights on disk.
    const journalRaw = readJson(journalFile, maxJsonBytes, false);
    if (journalRaw !== undefined && stampOf(journalRaw)) {
      try {
        const json = check(journalRaw);
        const weights = readWeights(json);
        if (matches(stampOf(journalRaw)!, weights)) return { json, weights };
      } catch {
        // an invalid journal is the debris of a save that never committed
      }
    }
    if (current && !stamp) {
      // written by TensorFlow.js or another tool: nothing to check the weights against
      if (current.error) throw current.error;
      return { json: current.json, weights: current.weights! };
    }
    if (!current && journalRaw === undefined) {
      throw new FormatError(`loadModel: ${file} does not exist (a model folder holds model.json and its weights)`);
    }
    // a save may be running beside this read: look again before calling the folder corrupt
    failure = current?.error ?? new FormatError(`loadModel: ${dir}: ${current ? 'the weights do not match the SHA-256 that model.json records'
      : `${file} does not exist`}: the folder is corrupt or was changed by something other than a convkit save`);
  }
  throw failure;
}

function matches(stamp: SaveStamp, weights: Uint8Array): boolean {
  return weights.length === stamp.weightsBytes && sha256(weights) === stamp.weightsSha256;
}
