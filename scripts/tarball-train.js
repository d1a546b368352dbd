// The tarball test's training, run in a project where the packed tarball was installed with
// --ignore-scripts (by `node scripts/arm64.js tarball` with the arm64 Node under qemu-aarch64,
// and by the release workflow on each platform's runner): convkit must load its
// prebuilds/<tuple>/ addon, read a folder of PNGs through sharp and train a small CNN on them,
// the loss finite and at least halved, the easy two-class set fitted. Exits non-zero otherwise; prints one JSON line
// ({ where, isa, loss, accuracy }) for a caller that compares kernel sets (CONVKIT_ISA).
//   node tarball-train.js <tuple, e.g. linux-arm64>
'use strict';
const fs = require('fs');
const { createRequire } = require('module');
const os = require('os');
const path = require('path');

// From the project in the working directory, as its own code would require convkit.
const projectRequire = createRequire(path.join(process.cwd(), 'package.json'));
const ck = projectRequire('convkit');
const packageDir = path.dirname(projectRequire.resolve('convkit/package.json'));
const where = path.relative(packageDir, projectRequire('node-gyp-build').resolve(packageDir));
const tuple = process.argv[2];
if (!where.startsWith(path.join('prebuilds', tuple) + path.sep)) {
  throw new Error(`convkit loaded ${where}, not its prebuilds/${tuple}/ addon`);
}

const MIN_LOSS_DROP = 0.5;
const MIN_ACCURACY = 0.9;

// 64 8x8 grey PNGs in two class folders: a bright top half ('top') or a bright bottom half
// ('bottom'), under noise from a fixed LCG so every run sees the same pixels. Written and decoded
// by sharp (the image pipeline, with sharp's binary for this platform), read back exactly.
const n = 64, side = 8;
let state = 12345;
const noise = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32) * 128;
const sharp = projectRequire('sharp');
const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-tarball-'));
const written = new Map();

async function writeImages() {
  for (let i = 0; i < n; ++i) {
    const label = i % 2 ? 'bottom' : 'top';
    const px = Buffer.alloc(side * side);
    for (let y = 0; y < side; ++y) {
      const bright = (y < side / 2) === (label === 'top');
      for (let x = 0; x < side; ++x) px[y * side + x] = (bright ? 127 : 0) + Math.floor(noise());
    }
    const file = path.join(folder, label, `${i}.png`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    await sharp(px, { raw: { width: side, height: side, channels: 1 } }).png().toFile(file);
    written.set(file, px);
  }
}

async function main() {
  await writeImages();
  const { classNames, train } = await ck.data.imageFolder(folder, { imageSize: [side, side], channels: 1, seed: 1 });
  const images = await train.images.data();
  train.files.forEach((file, i) => {
    const px = written.get(file);
    for (let j = 0; j < px.length; ++j) {
      if (images[i * px.length + j] !== Math.fround(px[j] / 255)) throw new Error(`imageFolder decoded ${file} wrongly at pixel ${j}`);
    }
  });
  if (train.files.length !== n || classNames.join() !== 'bottom,top') throw new Error(`imageFolder read ${train.files.length} images of ${classNames}`);

  ck.setSeed(7);
  const model = ck.sequential([
    ck.layers.input({ shape: [side, side, 1] }),
    ck.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu' }),
    ck.layers.maxPooling2d({ poolSize: 2 }),
    ck.layers.flatten(),
    ck.layers.dense({ units: 2, activation: 'softmax' }),
  ]);
  model.compile({ optimizer: ck.optimizers.adam({ learningRate: 0.01 }), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  const history = await model.fit(train.images, ck.toCategorical(train.labels, 2), { epochs: 6, batchSize: 16, seed: 3, verbose: 0 });
  const { loss, accuracy } = history.history;
  const isa = ck.devices()[0].isa;
  if (!loss.every(Number.isFinite)) throw new Error(`${isa}: a loss is not finite: ${loss}`);
  if (!(loss.at(-1) < MIN_LOSS_DROP * loss[0])) throw new Error(`${isa}: the loss went from ${loss[0]} to ${loss.at(-1)}, not below half`);
  if (!(accuracy.at(-1) >= MIN_ACCURACY)) throw new Error(`${isa}: accuracy ${accuracy.at(-1)} < ${MIN_ACCURACY}`);
  console.log(JSON.stringify({ where, isa, loss, accuracy }));
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
}).finally(() => fs.rmSync(folder, { recursive: true, force: true }));
