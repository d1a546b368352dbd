// loadModel reads each weights file after checking its size: a file that grows or shrinks in
// between (another process writing it) is a FormatError, never a short or overlong buffer (found by
// mutation testing, docs/testing.md). The change is simulated through a pass-through mock of
// fs.readFileSync, in a file of its own so the mock touches no other test.
import { describe, expect, jest, test } from '@jest/globals';
import * as path from 'path';
import * as ck from '../lib';
import { tmpDir } from '../test-support/helpers';

/** Bytes to add to (or, negative, cut from) the next reads of `file`. */
const change = { file: '', bytes: 0 };

jest.mock('fs', () => {
  const real = jest.requireActual<typeof import('fs')>('fs');
  return {
    ...real,
    readFileSync: (file: import('fs').PathOrFileDescriptor, options?: unknown) => {
      const b = real.readFileSync(file, options as never);
      if (file !== change.file || change.bytes === 0) return b;
      const buf = b as Buffer;
      return change.bytes > 0 ? Buffer.concat([buf, Buffer.alloc(change.bytes)]) : buf.subarray(0, buf.length + change.bytes);
    },
  };
});

describe('weights files that change while being read', () => {
  test.each([['grows', 4], ['shrinks', -4]])('a file that %s between the size check and the read', async (_label, bytes) => {
    const dir = path.join(tmpDir('convkit-io-reads-'), 'm');
    const m = ck.sequential([ck.layers.input({ shape: [2] }), ck.layers.dense({ units: 2 })]);
    m.build();
    await m.save(dir);
    change.file = path.join(dir, 'weights.bin');
    change.bytes = bytes;
    try {
      await expect(ck.loadModel(dir)).rejects.toThrow(new ck.FormatError('loadModel: weights files changed while reading'));
    } finally {
      change.bytes = 0;
    }
    expect((await ck.loadModel(dir)).getWeights()).toHaveLength(2);
  });
});
