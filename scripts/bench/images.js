// P1, the image pipeline benchmark, for `npm run bench`: a folder of JPEGs that look like photos
// (made here with sharp, once, then reused), and convkit's streaming input pipeline over it
// (ck.data.imageFolderDataset -> shuffle(500) -> batch(32) -> prefetch(2)), in images/s per pass.
//   node scripts/bench/images.js N [PARENT]   makes PARENT/convkit-bench-p1-N (N images, 10 classes) and prints its path
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const ck = require('../../dist');
const { median } = require('./workloads');

const WIDTH = 200;
const HEIGHT = 160;
const CLASSES = 10;
const VERSION = 1;  // bump when the pictures change, so cached folders are made again

/** A seeded generator of floats in [0, 1). */
function lcg(seed) {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
}

/**
 * One 200x160 RGB picture of class `label`: a smooth gradient between four random corner
 * colours, a low-frequency ripple, 3-6 soft-edged ellipses and rectangles (the class picks the
 * hue of the first and how many are ellipses) and sensor-like noise: no flat areas, so JPEG
 * sizes and decode times are those of photos rather than of solid colours.
 */
function picture(label, seed) {
  const rnd = lcg(seed * 7919 + label * 104729 + 1);
  const px = new Uint8Array(WIDTH * HEIGHT * 3);
  const corner = () => [rnd() * 255, rnd() * 255, rnd() * 255];
  const [c00, c10, c01, c11] = [corner(), corner(), corner(), corner()];
  const fx = 0.02 + rnd() * 0.08;
  const fy = 0.02 + rnd() * 0.08;
  const phase = rnd() * 6.28;
  const shapes = [];
  const count = 3 + Math.floor(rnd() * 4);
  for (let k = 0; k < count; k++) {
    const hue = k === 0 ? label / CLASSES : rnd();
    const colour = [0, 1, 2].map((j) => 127.5 + 127.5 * Math.cos(6.2832 * (hue + j / 3)));
    shapes.push({
      ellipse: k < 1 + (label % 4), cx: rnd() * WIDTH, cy: rnd() * HEIGHT,
      rx: 10 + rnd() * 50, ry: 10 + rnd() * 40, alpha: 0.5 + rnd() * 0.45, colour,
    });
  }
  for (let y = 0; y < HEIGHT; y++) {
    const v = y / (HEIGHT - 1);
    for (let x = 0; x < WIDTH; x++) {
      const u = x / (WIDTH - 1);
      const ripple = 18 * Math.sin(fx * x + phase) * Math.cos(fy * y);
      const rgb = [0, 1, 2].map((j) => (1 - u) * (1 - v) * c00[j] + u * (1 - v) * c10[j] + (1 - u) * v * c01[j] + u * v * c11[j] + ripple);
      for (const s of shapes) {
        const dx = (x - s.cx) / s.rx;
        const dy = (y - s.cy) / s.ry;
        const d = s.ellipse ? Math.sqrt(dx * dx + dy * dy) : Math.max(Math.abs(dx), Math.abs(dy));
        const cover = s.alpha * Math.min(1, Math.max(0, (1 - d) * 8));  // a soft edge
        if (cover > 0) for (let j = 0; j < 3; j++) rgb[j] += cover * (s.colour[j] - rgb[j]);
      }
      const noise = (rnd() + rnd() + rnd() - 1.5) * 14;
      const o = (y * WIDTH + x) * 3;
      for (let j = 0; j < 3; j++) px[o + j] = Math.max(0, Math.min(255, Math.round(rgb[j] + noise + (rnd() - 0.5) * 6)));
    }
  }
  return px;
}

/**
 * The folder of `n` JPEGs (200x160, quality 85, 10 classes in c0..c9), convkit-bench-p1-<n> under
 * `parent` (default: the temp folder): made once and reused while its marker says the same count
 * and version. A folder of that name that this script did not make is left alone (an error).
 */
async function imageFolder(n, parent = os.tmpdir()) {
  const dir = path.join(parent, `convkit-bench-p1-${n}`);
  const marker = path.join(dir, '.made.json');
  const want = JSON.stringify({ n, width: WIDTH, height: HEIGHT, classes: CLASSES, version: VERSION });
  if (fs.existsSync(marker) && fs.readFileSync(marker, 'utf8') === want) return dir;
  if (fs.existsSync(dir) && !fs.existsSync(marker)) throw new Error(`${dir} exists and was not made by the bench (no .made.json): move it away or pick another --p1-dir`);
  const sharp = require('sharp');
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  for (let c = 0; c < CLASSES; c++) fs.mkdirSync(path.join(tmp, `c${c}`), { recursive: true });
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const label = i % CLASSES;
      const raw = picture(label, i);
      await sharp(Buffer.from(raw.buffer), { raw: { width: WIDTH, height: HEIGHT, channels: 3 } })
        .jpeg({ quality: 85 }).toFile(path.join(tmp, `c${label}`, `img${String(i).padStart(5, '0')}.jpg`));
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  fs.writeFileSync(path.join(tmp, '.made.json'), want);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(tmp, dir);
  return dir;
}

/**
 * P1 through convkit: imageFolderDataset(dir, 96x96x3).train.shuffle(500).batch(32).prefetch(2),
 * every batch's tensors read and released; images/s of each pass (the iterator made inside the
 * pass, as fitDataset's epoch makes it), the median of `passes` after `warm` untimed passes.
 */
async function pipelineRate(dir, { warm = 1, passes = 3 } = {}) {
  const { train, classNames } = ck.data.imageFolderDataset(dir, { imageSize: [96, 96], channels: 3, seed: 1 });
  const ds = train.shuffle(500, 1).batch(32).prefetch(2);
  const rates = [];
  let n = 0;
  for (let p = 0; p < warm + passes; p++) {
    const t0 = process.hrtime.bigint();
    n = 0;
    for await (const b of ds) {
      const [size, h, w, c] = b.xs.shape;
      if (h !== 96 || w !== 96 || c !== 3 || b.ys.shape[1] !== classNames.length) throw new Error(`P1: a batch of shape [${b.xs.shape}] / [${b.ys.shape}]`);
      n += size;
      b.xs.dispose();
      b.ys.dispose();
    }
    if (p >= warm) rates.push(n / (Number(process.hrtime.bigint() - t0) / 1e9));
  }
  return { p1: median(rates), images: n, classes: classNames.length };
}

module.exports = { imageFolder, pipelineRate, picture, WIDTH, HEIGHT, CLASSES };

if (require.main === module) {
  const n = Number(process.argv[2] || 2000);
  imageFolder(n, process.argv[3]).then((dir) => console.log(dir), (e) => {
    console.error(`images: ${e.stack || e}`);
    process.exit(1);
  });
}
