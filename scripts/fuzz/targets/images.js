// Images made hostile for ck.data.loadImage / decodeImage / imageFolder / imageFolderDataset:
// valid PNG, JPEG, WebP, GIF and SVG files truncated or bit-flipped, headers that declare huge
// dimensions (with and without fixed-up checksums), SVGs with huge sizes or entity expansion,
// non-images with image extensions, and folders, FIFOs and devices named like images.
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const { spawnSync } = require('child_process');
const { hostileValue } = require('../values');

async function samples(root) {
  // sharp is convkit's own dependency: resolve it from the package.
  const sharp = require(require.resolve('sharp', { paths: [root] }));
  const raw = Buffer.alloc(8 * 8 * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 37) & 0xff;
  const img = () => sharp(raw, { raw: { width: 8, height: 8, channels: 3 } });
  return {
    png: await img().png().toBuffer(),
    grey: await img().grayscale().png().toBuffer(),
    alpha: await img().ensureAlpha(0.5).png().toBuffer(),
    jpeg: await img().jpeg().toBuffer(),
    webp: await img().webp().toBuffer(),
    gif: await img().gif().toBuffer(),
    svg: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8" fill="red"/></svg>'),
  };
}

/** PNG: IHDR width and height at bytes 16..23, its CRC at 29..32. */
function pngDims(buf, w, h, fixCrc) {
  const out = Buffer.from(buf);
  out.writeUInt32BE(w >>> 0, 16);
  out.writeUInt32BE(h >>> 0, 20);
  if (fixCrc) out.writeUInt32BE(zlib.crc32(out.subarray(12, 29)) >>> 0, 29);
  return out;
}

/** JPEG: the first SOFn segment's height and width. */
function jpegDims(buf, w, h) {
  const out = Buffer.from(buf);
  for (let i = 2; i + 9 < out.length; i++) {
    if (out[i] === 0xff && out[i + 1] >= 0xc0 && out[i + 1] <= 0xc2) {
      out.writeUInt16BE(h & 0xffff, i + 5);
      out.writeUInt16BE(w & 0xffff, i + 7);
      break;
    }
  }
  return out;
}

function hostileImage(rng, s) {
  const kind = rng.weighted({ valid: 3, truncate: 4, flip: 4, pngDims: 3, jpegDims: 2, svg: 2, junk: 2, empty: 1 });
  const base = s[rng.pick(['png', 'grey', 'alpha', 'jpeg', 'webp', 'gif'])];
  const big = () => rng.pick([0, 1, 65535, 65536, 100000, 0x7fffffff, 0xffffffff, 30000]);
  switch (kind) {
    case 'valid': return [kind, base];
    case 'truncate': return [kind, base.subarray(0, rng.int(0, base.length - 1))];
    case 'flip': {
      const out = Buffer.from(base);
      for (let i = rng.int(1, 8); i > 0; i--) out[rng.int(0, out.length - 1)] ^= 1 << rng.int(0, 7);
      return [kind, out];
    }
    case 'pngDims': return [kind, pngDims(s.png, big(), big(), rng.chance(0.7))];
    case 'jpegDims': return [kind, jpegDims(s.jpeg, big(), big())];
    case 'svg': return [kind, Buffer.from(rng.pick([
      '<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="100000"><rect width="10" height="10"/></svg>',
      '<svg xmlns="http://www.w3.org/2000/svg" width="-5" height="NaN"/>',
      '<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">]><svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><text>&e;&e;&e;&e;</text></svg>',
      '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="8" height="8"><image xlink:href="file:///etc/passwd" width="8" height="8"/></svg>',
      '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8">',
    ]))];
    case 'junk': return [kind, rng.chance(0.5) ? rng.bytes(rng.int(1, 300)) : Buffer.from('not an image\n')];
    default: return [kind, Buffer.alloc(0)];
  }
}

function options(rng) {
  if (rng.chance(0.1)) return hostileValue(rng);
  const o = { imageSize: [rng.int(1, 12), rng.int(1, 12)], channels: rng.pick([1, 3]) };
  if (rng.chance(0.15)) o.imageSize = rng.pick([[0, 4], [4096, 4097], [2.5, 3], [NaN, 4], [4], 'big', [1e9, 1e9], hostileValue(rng)]);
  if (rng.chance(0.1)) o.channels = rng.pick([0, 2, 4, 1.5, '3', NaN]);
  return o;
}

/** Writes a hostile image at `file`, or something else by that name. */
function place(rng, s, file) {
  const special = rng.chance(0.08) ? rng.int(0, 2) : -1;
  if (special === 0) fs.mkdirSync(file);
  else if (special === 1) spawnSync('mkfifo', [file]);
  else if (special === 2) fs.symlinkSync(rng.pick(['/dev/zero', '/dev/urandom', '/nonexistent']), file);
  else {
    const [kind, bytes] = hostileImage(rng, s);
    fs.writeFileSync(file, bytes);
    return kind;
  }
  return `special ${special}`;
}

module.exports = {
  name: 'images',
  prepares: true,
  hostileImage,
  samples,
  setup: ({ root }) => samples(root),
  async run(rng, ctx) {
    const { ck, dir, fixture: s } = ctx;
    const ext = rng.pick(['.png', '.jpg', '.jpeg', '.webp', '.PNG']);
    const api = rng.weighted({ loadImage: 4, decodeBuffer: 2, imageFolder: 3, imageFolderDataset: 2 });
    if (api === 'loadImage' || api === 'decodeBuffer') {
      const file = path.join(dir, `img${ext}`);
      ctx.detail = `${api} ${place(rng, s, file)}`;
      const opts = options(rng);
      const isFile = fs.existsSync(file) && fs.statSync(file).isFile();
      ctx.begin();
      if (api === 'decodeBuffer') {
        const input = isFile ? fs.readFileSync(file) : file;
        const px = await ck.data.decodeImage(input, opts);
        return `${ctx.detail} -> ${px.length} bytes`;
      }
      const t = await ck.data.loadImage(file, opts);
      await t.data();
      return `${ctx.detail} -> [${t.shape}]`;
    }
    const kinds = [];
    for (const cls of ['a', 'b']) {
      fs.mkdirSync(path.join(dir, cls));
      for (let i = rng.int(1, 3); i > 0; i--) kinds.push(place(rng, s, path.join(dir, cls, `${i}${ext}`)));
    }
    ctx.detail = `${api} ${kinds.join(',')}`;
    const opts = { ...options(rng), validationSplit: rng.chance(0.7) ? 0 : rng.pick([0.5, 0.99, 1, -1, NaN]), onWarning: () => {} };
    ctx.begin();
    if (api === 'imageFolder') {
      const r = await ck.data.imageFolder(dir, opts);
      await r.train.images.data();
      return `${ctx.detail} -> ${r.train.files.length} images`;
    }
    const r = ck.data.imageFolderDataset(dir, opts);
    let n = 0;
    for await (const el of r.train) {
      await el.xs.data();
      n++;
    }
    return `${ctx.detail} -> ${n} elements`;
  },
};
