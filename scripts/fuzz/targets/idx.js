// IDX files (the MNIST format) and Fashion-MNIST class files made hostile: bad magic and type
// bytes, ranks 0 to 255, dims up to 2^32-1 whose product overflows, truncated and extended
// data, empty files, folders, FIFOs and devices in place of files.
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

function idxBytes(rng) {
  const rank = rng.chance(0.8) ? rng.int(1, 4) : rng.pick([0, 5, 8, 255]);
  let dims = Array.from({ length: Math.min(rank, 8) }, () => rng.int(1, 6));
  if (rng.chance(0.3)) dims[rng.int(0, dims.length - 1)] = rng.pick([0, 0xffffffff, 0x80000000, 65536, 60000]);
  if (rng.chance(0.1)) dims = dims.map(() => 0xffffffff);
  const count = dims.reduce((a, b) => a * b, 1);
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = rng.chance(0.85) ? 0x08 : rng.pick([0x09, 0x0b, 0x0c, 0x0d, 0x0e, 0xff]);
  header[3] = rank;
  if (rng.chance(0.1)) header[rng.int(0, 1)] = rng.int(1, 255);
  dims.forEach((d, i) => header.writeUInt32BE(d >>> 0, 4 + 4 * i));
  let data = rng.bytes(Math.min(count, 4096));
  if (rng.chance(0.3)) data = data.subarray(0, rng.int(0, data.length));
  else if (rng.chance(0.2)) data = Buffer.concat([data, rng.bytes(rng.int(1, 9))]);
  let out = Buffer.concat([header, data]);
  if (rng.chance(0.15)) out = out.subarray(0, rng.int(0, Math.min(out.length, 12)));
  return out;
}

function fashionBytes(rng) {
  const row = () => `[${Array.from({ length: rng.chance(0.9) ? 784 : rng.int(0, 800) }, () => (rng.chance(0.99) ? rng.int(0, 255) : rng.pick([256, -1, 1e9, '1.5', '"x"']))).join(',')}]`;
  let text = `{"data": [${Array.from({ length: rng.int(0, 3) }, row).join(',')}]}`;
  if (rng.chance(0.3)) text = text.slice(0, rng.int(0, text.length));
  if (rng.chance(0.2)) text = text.replace('[', '['.repeat(rng.pick([3, 1000])));
  if (rng.chance(0.1)) text = ']'.repeat(5) + text;
  return Buffer.from(text);
}

module.exports = {
  name: 'idx',
  prepares: true,
  async run(rng, ctx) {
    const { dir, lib } = ctx;
    const { readIdx } = require(path.join(lib, 'data', 'idx'));
    const { parseFashionClass } = require(path.join(lib, 'data', 'datasets'));
    const file = path.join(dir, 'data-idx3-ubyte');
    const special = rng.chance(0.1) ? rng.int(0, 3) : -1;
    if (special === 0) fs.mkdirSync(file);
    else if (special === 1) spawnSync('mkfifo', [file]);
    else if (special === 2) fs.symlinkSync(rng.pick(['/dev/zero', '/dev/urandom', '/proc/self/mem']), file);
    else if (special === 3) {
      fs.writeFileSync(file, idxBytes(rng));
      fs.truncateSync(file, rng.pick([2 ** 31, 2 ** 33]));  // sparse
    } else fs.writeFileSync(file, idxBytes(rng));
    ctx.detail = `idx special ${special}`;
    ctx.begin();
    if (rng.chance(0.2)) {
      const rows = parseFashionClass(fashionBytes(rng), 'fuzz.json');
      return `fashion rows ${rows.length}`;
    }
    const r = readIdx(file);
    // What a dataset loader does with it: pixels to floats.
    if (r.data.length <= 1 << 20) ctx.ck.tensor(Float32Array.from(r.data, (v) => v / 255), [r.data.length]).dataSync();
    return `idx [${r.shape}]`;
  },
};
