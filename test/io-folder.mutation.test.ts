// The atomic model folder (lib/io/folder.ts) in process, at the points the other suites reach only
// through child processes or not at all (found by mutation testing, docs/testing.md): the journal
// a reader rolls forward to, the digest check and its retries, the refusals of model.json, the
// IOError for each write failure (injected with jest.spyOn on fs.promises) and what a failed save
// leaves, the folder fsyncs, and which temporary files a save clears away.
import { afterEach, describe, expect, jest, test } from '@jest/globals';
import * as fs from 'fs';
import * as path from 'path';
import { threadId } from 'worker_threads';
import * as ck from '../lib';
import { commitModelFolder, JOURNAL, MODEL_JSON, readModelFolder, sha256, WEIGHTS_BIN } from '../lib/io/folder';
import { tmpDir } from '../test-support/helpers';

const root = tmpDir('convkit-folder-mutation-');
let dirs = 0;
const newDir = () => path.join(root, `m${dirs++}`);

interface Doc { payload: string; convkitSave?: unknown }

/** A model.json text carrying `payload` and the stamp of `weights`, as a save writes it. */
function jsonFor(payload: string, weights: Uint8Array): string {
  return JSON.stringify({ payload, convkitSave: { weightsBytes: weights.length, weightsSha256: sha256(weights) } });
}

const bytes = (s: string) => new Uint8Array(Buffer.from(s));

let readCalls = 0;
/** Reads `dir` as loadModel does, its weights from weights.bin, counting the weight reads. */
function read(dir: string, maxJsonBytes = 1 << 20, weights?: () => Uint8Array) {
  return readModelFolder<Doc>(dir, maxJsonBytes, (j) => j as Doc, () => {
    readCalls++;
    return weights ? weights() : new Uint8Array(fs.readFileSync(path.join(dir, WEIGHTS_BIN)));
  });
}

async function commit(dir: string, payload: string, weights = bytes(`weights of ${payload}`)) {
  await commitModelFolder(dir, jsonFor(payload, weights), weights);
}

const errno = (code: string | undefined, message = `${code}: simulated`) => Object.assign(new Error(message), { code });

afterEach(() => {
  jest.restoreAllMocks();
});

describe('commit and read', () => {
  test('a commit leaves exactly model.json and weights.bin, and reads back', async () => {
    const dir = newDir();
    await commit(dir, 'A');
    expect(fs.readdirSync(dir).sort()).toEqual([MODEL_JSON, WEIGHTS_BIN]);
    const r = await read(dir);
    expect(r.json.payload).toBe('A');
    expect(Buffer.from(r.weights).toString()).toBe('weights of A');
  });

  test('saves queued on one folder run one after another, also one started as an earlier one ends', async () => {
    const dir = newDir();
    const first = commit(dir, 'A');
    const second = commit(dir, 'B', bytes('x'.repeat(200000)));
    second.catch(() => undefined);   // awaited below; no unhandled rejection should `first` fail
    await first;
    await new Promise((r) => setImmediate(r));
    const third = commit(dir, 'C');
    await expect(Promise.all([second, third])).resolves.toBeDefined();
    expect((await read(dir)).json.payload).toBe('C');
    expect(fs.readdirSync(dir).sort()).toEqual([MODEL_JSON, WEIGHTS_BIN]);
  });

  test('each commit fsyncs the folder after each of its three renames (and the parent for a new folder), closing every handle', async () => {
    const realOpen = fs.promises.open.bind(fs.promises);
    const dirOpens: string[] = [];
    let open = 0;
    jest.spyOn(fs.promises, 'open').mockImplementation(async (...args: Parameters<typeof fs.promises.open>) => {
      const fh = await realOpen(...args);
      if (args[1] === 'r') dirOpens.push(String(args[0]));
      open++;
      const close = fh.close.bind(fh);
      fh.close = async () => { open--; return close(); };
      return fh;
    });
    const dir = newDir();
    await commit(dir, 'A');
    expect(dirOpens).toEqual([root, dir, dir, dir]);
    dirOpens.length = 0;
    await commit(dir, 'B');
    expect(dirOpens).toEqual([dir, dir, dir]);
    expect(open).toBe(0);
  });
});

describe('reading: the journal, the digest and retries', () => {
  test('a save stopped between its last two renames (new weights, its model.json still the journal) is rolled forward', async () => {
    const dir = newDir();
    await commit(dir, 'A');
    const b = bytes('weights of B, longer');
    fs.writeFileSync(path.join(dir, JOURNAL), jsonFor('B', b));
    fs.writeFileSync(path.join(dir, WEIGHTS_BIN), b);
    const r = await read(dir);
    expect(r.json.payload).toBe('B');
    expect(Buffer.from(r.weights).toString()).toBe('weights of B, longer');
  });

  test('the first save of a folder stopped there (no model.json yet) is rolled forward too', async () => {
    const dir = newDir();
    fs.mkdirSync(dir);
    const b = bytes('B');
    fs.writeFileSync(path.join(dir, JOURNAL), jsonFor('B', b));
    fs.writeFileSync(path.join(dir, WEIGHTS_BIN), b);
    expect((await read(dir)).json.payload).toBe('B');
  });

  test('a journal that does not match is debris: the current model is read', async () => {
    const dir = newDir();
    await commit(dir, 'A');
    fs.writeFileSync(path.join(dir, JOURNAL), jsonFor('B', bytes('other weights')));
    expect((await read(dir)).json.payload).toBe('A');
  });

  test('weights changed on disk: FormatError after 5 reads spaced 20, 40, 60, 80 ms', async () => {
    const dir = newDir();
    await commit(dir, 'A');
    const w = fs.readFileSync(path.join(dir, WEIGHTS_BIN));
    w[0] ^= 1;  // same length, other bytes
    fs.writeFileSync(path.join(dir, WEIGHTS_BIN), w);
    readCalls = 0;
    const t0 = Date.now();
    await expect(read(dir)).rejects.toThrow(new ck.FormatError(
      `loadModel: ${dir}: the weights do not match the SHA-256 that model.json records: the folder is corrupt or was changed by something other than a convkit save`));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    expect(readCalls).toBe(5);
  });

  test('weights of another length fail the same way; an unparsable journal beside them is passed over', async () => {
    const dir = newDir();
    await commit(dir, 'A');
    fs.appendFileSync(path.join(dir, WEIGHTS_BIN), 'x');
    fs.writeFileSync(path.join(dir, JOURNAL), '{ not json');
    await expect(read(dir)).rejects.toThrow(/the weights do not match the SHA-256 that model.json records/);
  });

  test('a journal without a convkitSave record is debris: each of the 5 reads reads the weights once, never for the journal', async () => {
    const dir = newDir();
    await commit(dir, 'A');
    fs.writeFileSync(path.join(dir, JOURNAL), JSON.stringify({ payload: 'unstamped' }));
    fs.appendFileSync(path.join(dir, WEIGHTS_BIN), 'x');
    readCalls = 0;
    await expect(read(dir)).rejects.toThrow(/the weights do not match the SHA-256 that model.json records/);
    expect(readCalls).toBe(5);
  });

  test('a journal that is not a file (a folder of that name) is passed over like any debris', async () => {
    const dir = newDir();
    await commit(dir, 'A');
    fs.mkdirSync(path.join(dir, JOURNAL));
    fs.appendFileSync(path.join(dir, WEIGHTS_BIN), 'x');
    await expect(read(dir)).rejects.toThrow(/the weights do not match the SHA-256 that model.json records/);
  });

  test('a read that meets a save half-way looks again and returns the save once it is whole', async () => {
    const dir = newDir();
    await commit(dir, 'A');
    const good = new Uint8Array(fs.readFileSync(path.join(dir, WEIGHTS_BIN)));
    let n = 0;
    readCalls = 0;
    const r = await read(dir, 1 << 20, () => (n++ === 0 ? bytes('half-written') : good));
    expect(r.json.payload).toBe('A');
    expect(readCalls).toBe(2);
  });

  test('no model.json and no journal: FormatError at once', async () => {
    const dir = newDir();
    fs.mkdirSync(dir);
    readCalls = 0;
    await expect(read(dir)).rejects.toThrow(new ck.FormatError(
      `loadModel: ${path.join(dir, MODEL_JSON)} does not exist (a model folder holds model.json and its weights)`));
    expect(readCalls).toBe(0);
  });

  test('no model.json and a journal that does not match: FormatError naming the missing file, after the retries', async () => {
    const dir = newDir();
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, JOURNAL), jsonFor('B', bytes('B')));
    fs.writeFileSync(path.join(dir, WEIGHTS_BIN), 'not B');
    await expect(read(dir)).rejects.toThrow(new ck.FormatError(
      `loadModel: ${dir}: ${path.join(dir, MODEL_JSON)} does not exist: the folder is corrupt or was changed by something other than a convkit save`));
  });

  test('model.json of up to maxJsonBytes is read; a larger one, or a folder in its place, is refused', async () => {
    const dir = newDir();
    await commit(dir, 'A');
    const size = fs.statSync(path.join(dir, MODEL_JSON)).size;
    expect((await read(dir, size)).json.payload).toBe('A');
    await expect(read(dir, size - 1)).rejects.toThrow(new ck.FormatError(`loadModel: ${path.join(dir, MODEL_JSON)} is not a model.json of sane size`));
    const odd = newDir();
    fs.mkdirSync(path.join(odd, MODEL_JSON), { recursive: true });
    await expect(read(odd)).rejects.toThrow(`loadModel: ${path.join(odd, MODEL_JSON)} is not a model.json of sane size`);
  });

  test('model.json that is not JSON is a FormatError with the parser\'s reason', async () => {
    const dir = newDir();
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, MODEL_JSON), '{"payload": ');
    fs.writeFileSync(path.join(dir, WEIGHTS_BIN), '');
    await expect(read(dir)).rejects.toThrow(/^loadModel: .*model\.json is not valid JSON \(.+\)$/);
  });

  test('without a complete convkitSave record (TensorFlow.js writes none) nothing is checked: the weights are read once', async () => {
    for (const convkitSave of [undefined, null, { weightsBytes: 3 }, { weightsSha256: 'abc' }]) {
      const dir = newDir();
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, MODEL_JSON), JSON.stringify({ payload: 'tfjs', convkitSave }));
      fs.writeFileSync(path.join(dir, WEIGHTS_BIN), 'any bytes');
      readCalls = 0;
      const r = await read(dir);
      expect(r.json.payload).toBe('tfjs');
      expect(Buffer.from(r.weights).toString()).toBe('any bytes');
      expect(readCalls).toBe(1);
    }
  });

  test('without a record, a failure to read the weights is that failure', async () => {
    const dir = newDir();
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, MODEL_JSON), JSON.stringify({ payload: 'tfjs' }));
    const missing = new ck.FormatError('loadModel: weights file weights.bin is missing');
    await expect(read(dir, 1 << 20, () => { throw missing; })).rejects.toBe(missing);
  });
});

describe('write failures: IOError naming the file and the reason, the previous model intact', () => {
  /** Makes the next exclusive create of `file`'s temporary fail with `err`. */
  function failTempWrite(file: string, err: Error) {
    const realOpen = fs.promises.open.bind(fs.promises);
    jest.spyOn(fs.promises, 'open').mockImplementation(async (...args: Parameters<typeof fs.promises.open>) => {
      if (args[1] === 'wx' && path.basename(String(args[0])).startsWith(`.${file}.`)) throw err;
      return realOpen(...args);
    });
  }

  const reasons: Array<[string | undefined, string]> = [
    ['ENOSPC', 'the disk is full (ENOSPC)'],
    ['EFBIG', 'the file is larger than allowed (file size limit) (EFBIG)'],
    ['EACCES', 'permission denied (EACCES)'],
    ['EPERM', 'permission denied (EPERM)'],
    ['EROFS', 'the file system is read-only (EROFS)'],
    ['EIO', 'EIO: simulated (EIO)'],
    [undefined, 'undefined: simulated (error)'],
  ];
  test.each(reasons)('%s', async (code, why) => {
    const dir = newDir();
    await commit(dir, 'A');
    failTempWrite(WEIGHTS_BIN, errno(code));
    const err = await commit(dir, 'B').then(() => null, (e: unknown) => e as ck.IOError);
    expect(err).toBeInstanceOf(ck.IOError);
    expect(err!.message).toBe(`save: cannot write ${path.join(dir, WEIGHTS_BIN)}: ${why}; the model previously in ${dir} is unchanged`);
    expect(err!.code).toBe(code);
    expect(err!.path).toBe(path.join(dir, WEIGHTS_BIN));
    jest.restoreAllMocks();
    expect(fs.readdirSync(dir).sort()).toEqual([MODEL_JSON, WEIGHTS_BIN]);
    expect((await read(dir)).json.payload).toBe('A');
  });

  test('a failure writing model.json names it and removes the weights already written', async () => {
    const dir = newDir();
    await commit(dir, 'A');
    failTempWrite(MODEL_JSON, errno('ENOSPC'));
    await expect(commitModelFolder(dir, jsonFor('B', bytes('b')), bytes('b'), 'checkpoint'))
      .rejects.toThrow(`checkpoint: cannot write ${path.join(dir, MODEL_JSON)}: the disk is full (ENOSPC); the model previously in ${dir} is unchanged`);
    jest.restoreAllMocks();
    expect(fs.readdirSync(dir).sort()).toEqual([MODEL_JSON, WEIGHTS_BIN]);
  });

  test('a failure after the weights are in place says the folder holds the new model, and a reader rolls forward to it', async () => {
    const dir = newDir();
    await commit(dir, 'A');
    const realRename = fs.promises.rename.bind(fs.promises);
    jest.spyOn(fs.promises, 'rename').mockImplementation(async (from, to) => {
      if (String(from).endsWith(JOURNAL)) throw errno('EIO');
      return realRename(from, to);
    });
    await expect(commit(dir, 'B')).rejects.toThrow(`save: cannot write ${path.join(dir, MODEL_JSON)}: EIO: simulated (EIO); ${dir} holds the new model`);
    jest.restoreAllMocks();
    expect((await read(dir)).json.payload).toBe('B');
  });

  test('a folder that cannot be fsynced (EISDIR, EPERM, EINVAL, EACCES: Windows and some file systems) does not fail the save; other errors do', async () => {
    const realOpen = fs.promises.open.bind(fs.promises);
    let code = '';
    jest.spyOn(fs.promises, 'open').mockImplementation(async (...args: Parameters<typeof fs.promises.open>) => {
      if (args[1] === 'r') throw errno(code);
      return realOpen(...args);
    });
    for (code of ['EISDIR', 'EPERM', 'EINVAL', 'EACCES']) {
      const dir = newDir();
      await commit(dir, code);
      expect((await read(dir)).json.payload).toBe(code);
    }
    code = 'EIO';
    const dir = newDir();
    await expect(commit(dir, 'A')).rejects.toThrow(ck.IOError);
  });
});

describe('temporary files a save clears away', () => {
  const DEAD = 99999999;   // beyond any pid_max: no such process
  const OTHER = 4242;      // reported alive below

  test('those of saves killed (dead pid) and this thread\'s own; not those of live processes, other threads, or other files', async () => {
    const realKill = process.kill.bind(process);
    jest.spyOn(process, 'kill').mockImplementation((pid: number, signal?: string | number) => {
      if (pid === DEAD) throw errno('ESRCH');
      if (pid === OTHER) throw errno('EPERM');   // another user's process: alive
      return realKill(pid, signal);
    });
    const dir = newDir();
    await commit(dir, 'A');
    const stale = [`.weights.bin.${DEAD}-0-17.tmp`, `.model.json.${DEAD}-12-3.tmp`, `.model.json.${process.pid}-${threadId}-123.tmp`];
    const kept = [
      `.weights.bin.${OTHER}-0-1.tmp`, `.weights.bin.${process.pid}-${threadId + 7}-0.tmp`, `.model.json.${process.ppid}-0-5.tmp`,
      `x.model.json.${DEAD}-0-1.tmp`, `.model.json.${DEAD}-0-1.tmp.keep`, `.model.json.${DEAD}-0-.tmp`, `.other.${DEAD}-0-1.tmp`, 'notes.txt',
    ];
    for (const f of [...stale, ...kept]) fs.writeFileSync(path.join(dir, f), 'debris');
    await commit(dir, 'B');
    expect(fs.readdirSync(dir).sort()).toEqual([MODEL_JSON, WEIGHTS_BIN, ...kept].sort());
  });

  test('a save whose own clean-up failed leaves a temporary that the next save from this thread recognises and clears', async () => {
    const dir = newDir();
    await commit(dir, 'A');
    const realOpen = fs.promises.open.bind(fs.promises);
    jest.spyOn(fs.promises, 'open').mockImplementation(async (...args: Parameters<typeof fs.promises.open>) => {
      if (args[1] === 'wx' && path.basename(String(args[0])).startsWith(`.${MODEL_JSON}.`)) throw errno('ENOSPC');
      return realOpen(...args);
    });
    jest.spyOn(fs.promises, 'rm').mockRejectedValue(errno('EBUSY'));
    await expect(commit(dir, 'B')).rejects.toThrow(ck.IOError);
    jest.restoreAllMocks();
    // the failed save left its weights temporary, named .weights.bin.<pid>-<thread>-<counter>.tmp
    const left = fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'));
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(new RegExp(`^\\.weights\\.bin\\.${process.pid}-${threadId}-\\d+\\.tmp$`));
    await commit(dir, 'C');
    expect(fs.readdirSync(dir).sort()).toEqual([MODEL_JSON, WEIGHTS_BIN]);
  });

  test('a stale temporary already gone when this save removes it (another save cleared it first) does not fail the save', async () => {
    const realKill = process.kill.bind(process);
    jest.spyOn(process, 'kill').mockImplementation((pid: number, signal?: string | number) => {
      if (pid === DEAD) throw errno('ESRCH');
      return realKill(pid, signal);
    });
    const realReaddir = fs.promises.readdir.bind(fs.promises) as (dir: string) => Promise<string[]>;
    jest.spyOn(fs.promises, 'readdir').mockImplementation((async (dir: string) =>
      [...await realReaddir(dir), `.weights.bin.${DEAD}-0-9.tmp`]) as never);
    const dir = newDir();
    await commit(dir, 'A');
    await commit(dir, 'B');
    jest.restoreAllMocks();
    expect((await read(dir)).json.payload).toBe('B');
    expect(fs.readdirSync(dir).sort()).toEqual([MODEL_JSON, WEIGHTS_BIN]);
  });
});
