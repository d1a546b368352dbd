// Every finding of the fuzzer, kept as a named case with the input that showed it, and what
// convkit must do with it now: 'ok' (a clean result) or the ConvkitError class it throws.
// test/fuzz.test.ts runs each in a fuzz worker (a crash or hang is then reported, not fatal);
// `npm run fuzz -- --regressions` does the same from the shell.
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

/** A model folder with no weights (a manifest that declares 0 bytes) whose weights.bin is `make`. */
function weightlessModel(dir, make) {
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify({
    modelTopology: { class_name: 'Sequential', config: { name: 'm', layers: [
      { class_name: 'InputLayer', config: { batch_input_shape: [null, 4], name: 'in' } },
      { class_name: 'ReLU', config: { name: 'r' } },
    ] } },
    format: 'layers-model',
    weightsManifest: [{ paths: ['weights.bin'], weights: [] }],
  }));
  make(path.join(dir, 'weights.bin'));
}

/** The base model's folder copied into `dir`, with model.json changed by `edit`. */
function editedModel(base, dir, edit) {
  fs.copyFileSync(path.join(base, 'weights.bin'), path.join(dir, 'weights.bin'));
  const json = JSON.parse(fs.readFileSync(path.join(base, 'model.json'), 'utf8'));
  edit(json);
  delete json.convkitSave;  // as a tool other than convkit would write it
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
}

const png = async (root) => {
  const sharp = require(require.resolve('sharp', { paths: [root] }));
  return sharp(Buffer.alloc(48, 200), { raw: { width: 4, height: 4, channels: 3 } }).png().toBuffer();
};

const REGRESSIONS = [
  {
    name: 'ck.tensor of an array that contains itself (was: a hang)',
    expect: 'ShapeError',
    run: ({ ck }) => {
      const a = [];
      a.push(a);
      ck.tensor(a);
    },
  },
  {
    name: 'ck.tensor of arrays nested 100,000 deep (was: RangeError, stack overflow)',
    expect: 'ShapeError',
    run: ({ ck }) => {
      let v = [1];
      for (let i = 0; i < 100000; i++) v = [v];
      ck.tensor(v);
    },
  },
  {
    name: 'an op option holding a BigInt (was: TypeError from the error message)',
    expect: 'ValueError',
    run: ({ ck }) => ck.ops.conv2d(ck.ones([1, 4, 4, 1]), ck.ones([2, 2, 1, 1]), { strides: 10n }),
  },
  {
    name: 'an op option holding an object with no prototype (was: TypeError)',
    expect: 'ValueError',
    run: ({ ck }) => ck.ops.leakyRelu(ck.ones([2]), { alpha: Object.create(null) }),
  },
  {
    name: 'a layer option that contains itself (was: TypeError from JSON.stringify)',
    expect: 'ValueError',
    run: ({ ck }) => {
      const k = [1, 2];
      k.push(k);
      ck.layers.conv2d({ filters: 2, kernelSize: k });
    },
  },
  {
    name: 'an input layer whose batchInputShape is not an array (was: TypeError)',
    expect: 'ShapeError',
    run: ({ ck }) => ck.layers.inputLayer({ batchInputShape: 7 }),
  },
  {
    name: 'a layer whose batchInputShape is a number (was: TypeError)',
    expect: 'ShapeError',
    run: ({ ck }) => ck.layers.dense({ units: 2, batchInputShape: 2 ** 31 }),
  },
  {
    name: 'batchNormalization with a Symbol for epsilon (was: TypeError)',
    expect: 'ValueError',
    run: ({ ck }) => ck.layers.batchNormalization({ epsilon: Symbol('e') }),
  },
  {
    name: 'a layer named by arrays nested 100,000 deep (was: RangeError printing the name in an error)',
    expect: 'ValueError',
    run: ({ ck }) => {
      let v = [1];
      for (let i = 0; i < 100000; i++) v = [v];
      ck.layers.add({ name: v });
    },
  },
  {
    name: 'a forged Tensor (Object.create(Tensor.prototype)) as an op argument (was: TypeError)',
    expect: 'DTypeError',
    run: ({ ck }) => ck.ops.relu(Object.create(ck.Tensor.prototype)),
  },
  {
    name: 'toCategorical with 2^40 classes (was: RangeError asking for a 4 TB array)',
    expect: 'ShapeError',
    run: ({ ck }) => ck.toCategorical([0, 1, 2, 3], 2 ** 40),
  },
  {
    name: 'toCategorical of an array that contains itself (was: RangeError)',
    expect: 'ValueError',
    run: ({ ck }) => {
      const a = [0];
      a.push(a);
      ck.toCategorical(a);
    },
  },
  {
    name: 'toCategorical(null) (was: TypeError)',
    expect: 'DTypeError',
    run: ({ ck }) => ck.toCategorical(null),
  },
  {
    name: 'decodeImage of bytes that are not an image (was: sharp\'s plain Error)',
    expect: 'FormatError',
    run: ({ ck }) => ck.data.decodeImage(Buffer.from('not an image'), { imageSize: [4, 4], channels: 3 }),
  },
  {
    name: 'decodeImage with imageSize [1e9, 1e9] (was: sharp\'s plain Error)',
    expect: 'ValueError',
    run: async ({ ck, root }) => ck.data.decodeImage(await png(root), { imageSize: [1e9, 1e9], channels: 3 }),
  },
  {
    name: 'an image whose header declares 8388616x8 pixels (was: libvips warnings on stderr, then its error)',
    expect: 'FormatError',
    run: async ({ ck, root }) => {
      const bytes = Buffer.from(await png(root));
      bytes.writeUInt32BE(8388616, 16);
      bytes.writeUInt32BE(8, 20);
      bytes.writeUInt32BE(require('zlib').crc32(bytes.subarray(12, 29)) >>> 0, 29);
      return ck.data.decodeImage(bytes, { imageSize: [4, 4], channels: 3 });
    },
  },
  {
    name: 'loadImage of a FIFO named like an image (was: a hang)',
    expect: 'FormatError',
    run: ({ ck, dir }) => {
      const file = path.join(dir, 'x.png');
      spawnSync('mkfifo', [file]);
      return ck.data.loadImage(file, { imageSize: [4, 4] });
    },
  },
  {
    name: 'an image folder holding a link to a FIFO among its images (was: a hang)',
    expect: 'ok',
    run: async ({ ck, dir, root }) => {
      for (const c of ['a', 'b']) {
        fs.mkdirSync(path.join(dir, c));
        fs.writeFileSync(path.join(dir, c, '1.png'), await png(root));
      }
      spawnSync('mkfifo', [path.join(dir, 'fifo')]);
      fs.symlinkSync(path.join(dir, 'fifo'), path.join(dir, 'a', '2.png'));
      const r = await ck.data.imageFolder(dir, { imageSize: [4, 4], onWarning: () => {} });
      if (r.train.files.length !== 2 || r.skipped.length !== 1) throw new Error(`expected 2 images and 1 skipped, got ${r.train.files.length} and ${r.skipped.length}`);
    },
  },
  {
    name: 'a tensor over a Float32Array that was then transferred and collected (was: use after free)',
    expect: 'ValueError',
    run: async ({ ck }) => {
      const data = new Float32Array(64).fill(1);
      const t = ck.tensor(data, [64]);
      (() => structuredClone(data.buffer, { transfer: [data.buffer] }))();
      global.gc?.();
      await ck.ops.relu(t).data();
    },
  },
  {
    name: 'loadModel with weights.bin replaced by a folder (was: EISDIR, a plain Error)',
    expect: 'FormatError',
    run: ({ ck, dir, fixture }) => {
      editedModel(fixture, dir, () => {});
      fs.rmSync(path.join(dir, 'weights.bin'));
      fs.mkdirSync(path.join(dir, 'weights.bin'));
      return ck.loadModel(`file://${dir}`);
    },
  },
  {
    name: 'loadModel of a weightless model whose weights.bin is a FIFO (was: a hang)',
    expect: 'FormatError',
    run: ({ ck, dir }) => {
      weightlessModel(dir, (f) => spawnSync('mkfifo', [f]));
      return ck.loadModel(`file://${dir}`);
    },
  },
  {
    name: 'loadModel of a weight whose dtype is arrays nested 5,000 deep (was: RangeError printing it)',
    expect: 'FormatError',
    run: ({ ck, dir, fixture }) => {
      editedModel(fixture, dir, (j) => {
        j.weightsManifest[0].weights[0].dtype = 'DEEP';
      });
      const file = path.join(dir, 'model.json');
      fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('"DEEP"', `${'['.repeat(5000)}"float16"${']'.repeat(5000)}`));
      return ck.loadModel(`file://${dir}`);
    },
  },
  {
    name: 'loadModel with an optimizer class_name that is not a string (was: TypeError)',
    expect: 'FormatError',  // a checkpoint's optimizer state without an optimizer convkit can rebuild
    run: ({ ck, dir, fixture }) => {
      editedModel(fixture, dir, (j) => {
        j.trainingConfig.optimizer_config = { class_name: 7, config: { learning_rate: 'fast' } };
      });
      return ck.loadModel(`file://${dir}`);
    },
  },
  {
    name: 'loadModel of a model.json whose dense layer needs 4 GB of weights (was: allocated before the weights were checked)',
    expect: 'FormatError',
    run: async ({ ck, dir, fixture }) => {
      editedModel(fixture, dir, (j) => {
        j.modelTopology.config.layers.find((l) => l.class_name === 'Dense').config.units = 2 ** 24;
      });
      const before = ck.memory().hostPeakBytes;
      try {
        await ck.loadModel(`file://${dir}`);
      } finally {
        if (ck.memory().hostPeakBytes > before + (64 << 20)) throw new Error('loadModel allocated before it checked the sizes');
      }
    },
  },
  {
    name: 'training a model whose output has rank 3 with mean squared error (was: heap overflow of the per-row losses)',
    expect: 'ok',
    run: async ({ ck }) => {
      const model = ck.sequential([ck.layers.input({ shape: [3, 8, 2] }), ck.layers.reLU()]);
      model.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
      const x = Float32Array.from({ length: 4 * 48 }, (_, i) => ((i * 7) % 11) - 5);
      const h = await model.fit(ck.tensor(x, [4, 3, 8, 2]), ck.tensor(x.slice(), [4, 3, 8, 2]), { epochs: 1, batchSize: 4, verbose: 0 });
      // relu(x) - x is -x where x < 0: the loss is the mean of those squares.
      const want = x.reduce((s, v) => s + (v < 0 ? v * v : 0), 0) / x.length;
      const got = h.history.loss[0];
      if (!(Math.abs(got - want) <= 1e-5 * want)) throw new Error(`loss ${got}, expected ${want}`);
    },
  },
  {
    name: 'concatenating a tensor with itself (was: a heap overflow, the executor sized the output for one copy)',
    expect: 'ok',
    run: async ({ ck }) => {
      const a = ck.input({ shape: [5, 1, 2] });
      const model = ck.model({ inputs: a, outputs: ck.layers.concatenate().apply([a, a]) });
      const x = Float32Array.from({ length: 20 }, (_, i) => i);
      const y = await model.predict(ck.tensor(x, [2, 5, 1, 2])).data();
      const want = Array.from({ length: 10 }, (_, r) => [x[2 * r], x[2 * r + 1], x[2 * r], x[2 * r + 1]]).flat();
      if (y.length !== 40 || want.some((v, i) => v !== y[i])) throw new Error(`got ${Array.from(y)}`);
    },
  },
];

module.exports = { REGRESSIONS };
