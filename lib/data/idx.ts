// IDX files (the MNIST format): a big-endian header (magic, dims) then uint8 data. Files are
// hostile until checked: the header must match the file's size before anything is allocated.
import * as fs from 'fs';
import { FormatError } from '../errors';

export interface IdxArray {
  shape: number[];
  data: Uint8Array;
}

const UINT8 = 0x08;

export function readIdx(file: string, maxBytes = 1 << 30): IdxArray {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new FormatError(`IDX: ${file} does not exist`);
  }
  if (!stat.isFile() || stat.size < 4 || stat.size > maxBytes) throw new FormatError(`IDX: ${file} is not an IDX file of sane size (${stat.size} bytes)`);
  const buf = fs.readFileSync(file);
  if (buf[0] !== 0 || buf[1] !== 0 || buf[2] !== UINT8) {
    throw new FormatError(`IDX: ${file} has magic ${buf.subarray(0, 4).toString('hex')}; expected unsigned bytes (0x000008NN)`);
  }
  const rank = buf[3];
  if (rank < 1 || rank > 4 || buf.length < 4 + 4 * rank) throw new FormatError(`IDX: ${file} has an invalid rank ${rank}`);
  const shape: number[] = [];
  let count = 1;
  for (let i = 0; i < rank; i++) {
    const d = buf.readUInt32BE(4 + 4 * i);
    shape.push(d);
    count *= d;
  }
  const header = 4 + 4 * rank;
  if (count !== buf.length - header) {
    throw new FormatError(`IDX: ${file} declares shape [${shape.join(',')}] (${count} bytes) but holds ${buf.length - header}`);
  }
  return { shape, data: new Uint8Array(buf.buffer, buf.byteOffset + header, count) };
}
