// Transfer learning on real MNIST, as the seeds' tutorials end: pretrain the seeds' CNN on digits
// 0-4, then learn digits 5-9 from a few labelled images by putting a new head on the pretrained
// convolutional base. Three models per draw of labelled images, all with the same epochs,
// optimizer, batches, initial head and seed, measured on every test image of digits 5-9:
//   scratch     the seeds' CNN freshly initialized, all layers trained;
//   transfer    the pretrained base frozen (layer.trainable = false), only a new head trained;
//   fine-tune   the pretrained base and a new head, all layers trained.
//
//   npm run build:ts && node examples/transfer-mnist.js [--labelled 500,100,50] [--draws 3]
//     [--pretrain-epochs 2] [--steps 500] [--seed 1]
//
// Every model trains about --steps batches of 32 (so 32 epochs of 500 images, 160 of 100): the
// smaller sets get as many updates, and each model is trained to convergence.
//
// In your own project: const ck = require('convkit');
const ck = require('..');

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
};
const LABELLED = String(opt('labelled', '500')).split(',').map(Number);
const DRAWS = Number(opt('draws', 3));
const PRETRAIN_EPOCHS = Number(opt('pretrain-epochs', 2));
const STEPS = Number(opt('steps', 500));
const SEED = Number(opt('seed', 1));
const BATCH = 32;
const LR = 1e-3;

// The seeds' CNN without its classifier: conv 32 5x5 relu, max-pool, conv 64 5x5 relu, max-pool,
// flatten (1,024 features per image).
function convBase() {
  return [
    ck.layers.conv2d({ filters: 32, kernelSize: 5, activation: 'relu' }),
    ck.layers.maxPooling2d({ poolSize: 2 }),
    ck.layers.conv2d({ filters: 64, kernelSize: 5, activation: 'relu' }),
    ck.layers.maxPooling2d({ poolSize: 2 }),
    ck.layers.flatten(),
  ];
}

/** The seeds' CNN over `base` with a new dense softmax head, compiled with Adam. */
function cnn(base, classes) {
  const model = ck.sequential([ck.layers.input({ shape: [28, 28, 1] }), ...base, ck.layers.dense({ units: classes, activation: 'softmax' })]);
  model.compile({ optimizer: ck.optimizers.adam({ learningRate: LR }), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  return model;
}

/**
 * The pretrained model's base under a new 5-class head. A model's weights live in its own
 * executor, so the base is rebuilt and the pretrained weights copied into it layer by layer
 * (pretrained.layers[0] is its input layer); `freeze` makes the base non-trainable.
 */
function fromPretrained(pretrained, freeze) {
  const base = convBase();
  const model = cnn(base, 5);
  base.forEach((layer, i) => {
    layer.setWeights(pretrained.layers[i + 1].getWeights());
    layer.trainable = !freeze;
  });
  return model;
}

/** The images whose label passes `keep`, relabelled by `relabel`. */
function select(split, keep, relabel = (d) => d) {
  const labels = split.labels.dataSync();
  const rows = [];
  for (let i = 0; i < labels.length; i++) if (keep(labels[i])) rows.push(i);
  return pick(split.images.dataSync(), labels, rows, relabel);
}

function pick(images, labels, rows, relabel = (d) => d) {
  const x = new Float32Array(rows.length * 784);
  const y = new Float32Array(rows.length);
  rows.forEach((r, i) => {
    x.set(images.subarray(r * 784, (r + 1) * 784), i * 784);
    y[i] = relabel(labels[r]);
  });
  return { x: ck.tensor(x, [rows.length, 28, 28, 1]), labels: y };
}

/** `n` of `count` rows, drawn by a seeded Fisher-Yates shuffle (an LCG, independent of convkit). */
function sample(count, n, seed) {
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
  const rows = Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [rows[i], rows[j]] = [rows[j], rows[i]];
  }
  return rows.slice(0, n).sort((a, b) => a - b);
}

async function accuracy(model, data) {
  const [, acc] = await model.evaluate(data.x, ck.toCategorical(data.labels, 5), { batchSize: 500 });
  return acc;
}

const pct = (v) => `${(100 * v).toFixed(2)}%`;
const mean = (v) => v.reduce((a, b) => a + b, 0) / v.length;

async function main() {
  const t0 = performance.now();
  ck.setSeed(SEED);
  const { train, test } = await ck.datasets.mnist();
  const low = select(train, (d) => d <= 4);
  const lowTest = select(test, (d) => d <= 4);
  const high = select(train, (d) => d >= 5, (d) => d - 5);
  const highTest = select(test, (d) => d >= 5, (d) => d - 5);
  const info = ck.devices()[0];
  console.log(`convkit ${ck.version}, CPU ${info.isa}, ${info.threads} threads`);

  // 1. Pretrain the seeds' CNN on digits 0-4 (all 30,596 training images).
  const pretrained = cnn(convBase(), 5);
  const tPre = performance.now();
  await pretrained.fit(low.x, ck.toCategorical(low.labels, 5), { epochs: PRETRAIN_EPOCHS, batchSize: 100, seed: SEED, verbose: 0 });
  console.log(`Pretrained on ${low.labels.length} images of digits 0-4, ${PRETRAIN_EPOCHS} epochs, batch 100 ` +
    `(${((performance.now() - tPre) / 1000).toFixed(1)} s): ${pct(await accuracy(pretrained, lowTest))} on their ${lowTest.labels.length} test images`);
  console.log(`Digits 5-9: each model trains about ${STEPS} steps (epochs x labelled images / ${BATCH}), Adam lr ${LR}, batch ${BATCH}; ` +
    `test accuracy on all ${highTest.labels.length} test images of 5-9\n`);

  // 2. Per size and draw of labelled 5-9 images: scratch, transfer (head only), fine-tune.
  console.log('labelled  epochs  draw   scratch  transfer  fine-tune');
  for (const n of LABELLED) {
    const epochs = Math.max(1, Math.round((STEPS * BATCH) / n));
    const acc = { scratch: [], transfer: [], fineTune: [] };
    for (let draw = 0; draw < DRAWS; draw++) {
      const seed = SEED + draw;
      const labelled = pick(high.x.dataSync(), high.labels, sample(high.labels.length, n, seed));
      const y = ck.toCategorical(labelled.labels, 5);
      const fitArgs = { epochs, batchSize: BATCH, seed, verbose: 0 };
      const makers = { scratch: () => cnn(convBase(), 5), transfer: () => fromPretrained(pretrained, true), fineTune: () => fromPretrained(pretrained, false) };
      for (const [name, make] of Object.entries(makers)) {
        ck.setSeed(seed);  // every model of a draw starts from the same initial head
        const model = make();
        await model.fit(labelled.x, y, fitArgs);
        acc[name].push(await accuracy(model, highTest));
      }
      console.log(`${String(n).padStart(8)}  ${String(epochs).padStart(6)}  ${String(draw + 1).padStart(4)}  ${pct(acc.scratch[draw]).padStart(8)}  ${pct(acc.transfer[draw]).padStart(8)}  ${pct(acc.fineTune[draw]).padStart(9)}`);
    }
    console.log(`${String(n).padStart(8)}  ${String(epochs).padStart(6)}  mean  ${pct(mean(acc.scratch)).padStart(8)}  ${pct(mean(acc.transfer)).padStart(8)}  ${pct(mean(acc.fineTune)).padStart(9)}` +
      `   transfer - scratch: ${(100 * (mean(acc.transfer) - mean(acc.scratch))).toFixed(2)} points\n`);
  }
  console.log(`Total ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
