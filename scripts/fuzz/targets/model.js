// Saved models made hostile: a valid model folder (model.json with topology, weights manifest,
// training config and optimizer state; weights.bin) copied and damaged — JSON values replaced
// by NaN-like, huge, negative, fractional or wrongly typed ones, keys dropped, unknown layer
// classes, deep or self-referencing structures, weights paths that leave the folder, model.json
// text truncated or spliced, weights files truncated, extended, swapped for folders, FIFOs,
// devices or links — then loaded with ck.loadModel; what loads must predict and train.
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { hostileNumber, hostileValue, nested } = require('../values');

/** Saves the base model every case starts from (also used by the cli target). */
async function makeBaseModel(ck, dir) {
  ck.setSeed(1);
  const model = ck.sequential([
    ck.layers.input({ shape: [8, 8, 3] }),
    ck.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', padding: 'same' }),
    ck.layers.batchNormalization(),
    ck.layers.maxPooling2d({ poolSize: 2 }),
    ck.layers.flatten(),
    ck.layers.dropout({ rate: 0.1 }),
    ck.layers.dense({ units: 3, activation: 'softmax' }),
  ]);
  model.compile({ optimizer: ck.optimizers.adam({ learningRate: 0.01 }), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  const x = ck.tensor(Float32Array.from({ length: 4 * 192 }, (_, i) => (i % 7) / 7), [4, 8, 8, 3]);
  await model.fit(x, ck.toCategorical([0, 1, 2, 0], 3), { epochs: 1, batchSize: 2, verbose: 0 });
  await model.save(`file://${dir}`, { includeOptimizer: true, metadata: { classNames: ['a', 'b', 'c'], imageSize: [8, 8], channels: 3 } });
  return dir;
}

/** Every [parent, key] pair in a JSON tree. */
function slots(root) {
  const out = [];
  const seen = new Set();
  const walk = (v, depth) => {
    if (depth > 40 || !v || typeof v !== 'object' || seen.has(v)) return;
    seen.add(v);
    for (const k of Object.keys(v)) {
      out.push([v, Array.isArray(v) ? Number(k) : k]);
      walk(v[k], depth + 1);
    }
  };
  walk(root, 0);
  return out;
}

const PATHS = ['../../etc/passwd', '/etc/passwd', '..', '.', '', 'sub/weights.bin', 'weights.bin/', './weights.bin', 'weights.bin\u0000.txt',
  '..\\weights.bin', 'C:\\weights.bin', 'x'.repeat(300), '~/weights.bin', 'file:///etc/passwd', 'weights.bin%00', '%2e%2e/x'];
const LAYER_CLASSES = ['Conv2D', 'Dense', 'Lambda', 'Bidirectional', 'Functional', 'Sequential', 'InputLayer', 'Flatten', 'MaxPooling2D',
  'BatchNormalization', 'DepthwiseConv2D', 'Add', 'Concatenate', '__proto__', 'constructor', 'toString', ''];

// Mutations may have replaced any entry with a number or null: only objects take properties.
const isObject = (v) => v !== null && typeof v === 'object';

/** One change to the parsed model.json. */
function mutateJson(rng, json) {
  const kind = rng.weighted({ value: 10, delete: 3, dims: 5, paths: 3, dtype: 2, klass: 3, deep: 1, cycle: 2, dupe: 2, metadata: 2, optimizer: 2 });
  const all = slots(json);
  const [parent, key] = all.length ? rng.pick(all) : [json, 'modelTopology'];
  const layers = json?.modelTopology?.config?.layers;
  const manifest = Array.isArray(json?.weightsManifest) ? json.weightsManifest : [];
  const weights = manifest.flatMap((g) => (Array.isArray(g?.weights) ? g.weights : []));
  switch (kind) {
    case 'value': parent[key] = rng.chance(0.5) ? hostileNumber(rng) : hostileValue(rng); break;
    case 'delete': if (Array.isArray(parent)) parent.splice(key, 1); else delete parent[key]; break;
    case 'dims': {
      // A layer size or a weight shape entry: huge, negative, fractional, NaN-like.
      const numeric = all.filter(([p, k]) => typeof p[k] === 'number');
      if (numeric.length) {
        const [p, k] = rng.pick(numeric);
        p[k] = rng.pick([hostileNumber(rng), 2 ** 31, 2 ** 24, 1 << 20, 65536, -1, 0, 1.5, 1e300, p[k] * 1000, p[k] + 1]);
      }
      break;
    }
    case 'paths': for (const g of manifest) if (g && Array.isArray(g.paths)) g.paths[rng.int(0, g.paths.length)] = rng.pick(PATHS); break;
    case 'dtype': if (weights.some(isObject)) rng.pick(weights.filter(isObject)).dtype = rng.pick(['int32', 'float16', 'string', 'bool', 'uint8', 7, null, 'float64']); break;
    case 'klass': if (Array.isArray(layers) && layers.some(isObject)) rng.pick(layers.filter(isObject)).class_name = rng.pick(LAYER_CLASSES); break;
    case 'deep': parent[key] = nested(rng.pick([33, 200, 5000]), rng.chance(0.5) ? {} : 1); break;
    case 'cycle': {
      // JSON cannot hold a cycle; what looks like one: layers that name each other as inputs.
      // (an earlier mutation may have left a layer that is not an object)
      const objects = Array.isArray(layers) ? layers.filter(isObject) : [];
      if (objects.length) {
        const l = rng.pick(objects);
        const name = l?.config?.name ?? 'x';
        l.inbound_nodes = [[[name, 0, 0, {}]]];
        if (rng.chance(0.5)) json.modelTopology.class_name = rng.pick(['Model', 'Functional']);
        if (rng.chance(0.5) && json.modelTopology.config) {
          json.modelTopology.config.input_layers = [[name, 0, 0]];
          json.modelTopology.config.output_layers = [[name, 0, 0]];
        }
      }
      break;
    }
    case 'dupe': if (Array.isArray(layers) && layers.length) layers.splice(rng.int(0, layers.length), 0, JSON.parse(jsonText(rng.pick(layers), new Set()))); break;
    case 'metadata': json.userDefinedMetadata = { convkitOptimizer: { iterations: hostileNumber(rng), slots: hostileNumber(rng) }, classNames: hostileValue(rng), imageSize: hostileValue(rng), channels: hostileValue(rng) }; break;
    default: if (json.trainingConfig) json.trainingConfig.optimizer_config = rng.chance(0.5) ? hostileValue(rng) : { class_name: rng.pick(['Adam', 'SGD', 'RMSprop', 'Nadam', 7, null]), config: { learning_rate: hostileNumber(rng), beta_1: hostileNumber(rng), momentum: hostileNumber(rng) } };
  }
  return `json:${kind}${typeof key === 'string' ? `(${key})` : ''}`;
}

/** One change to model.json's text. */
function mutateText(rng, text) {
  const k = rng.int(0, 7);
  return [`text:${k}`, mutateText0(rng, text, k)];
}

function mutateText0(rng, text, k) {
  switch (k) {
    case 0: return text.slice(0, rng.int(0, text.length));
    case 1: {
      const at = rng.int(0, text.length);
      return text.slice(0, at) + rng.bytes(rng.int(1, 8)).toString('latin1') + text.slice(at);
    }
    case 2: return text.replace(/-?\d+(\.\d+)?/, rng.pick(['1e999', '-1e999', 'NaN', '0x10', '1e-999', '99999999999999999999999', '-0']));
    case 3: return '\ufeff' + text;
    case 4: return '['.repeat(rng.pick([1000, 200000])) + text;
    case 5: return text.replace('"modelTopology"', '"modelTopology":{},"modelTopology"');
    case 6: return text.replace('"config"', '"__proto__":{"layers":[]},"config"');
    default: return text + rng.pick(['', '}', ',', '\u0000', ' '.repeat(10)]);
  }
}

/** One change to the files of the model folder. */
function mutateFiles(rng, dir) {
  const weights = path.join(dir, 'weights.bin');
  const size = fs.statSync(weights).size;
  const k = rng.int(0, 11);
  switch (k) {
    case 0: fs.truncateSync(weights, rng.int(0, size - 1)); break;
    case 1: fs.appendFileSync(weights, rng.bytes(rng.pick([1, 3, 4, 16, 4096]))); break;
    case 2: {
      // NaN, infinities and denormals in the weights: a clean load; predict and fit must not crash.
      const fd = fs.openSync(weights, 'r+');
      for (let i = rng.int(1, 20); i > 0; i--) fs.writeSync(fd, rng.pick([Buffer.from([0, 0, 0xc0, 0x7f]), Buffer.from([0, 0, 0x80, 0x7f]), Buffer.from([1, 0, 0, 0]), rng.bytes(4)]), 0, 4, 4 * rng.int(0, size / 4 - 1));
      fs.closeSync(fd);
      break;
    }
    case 3: fs.rmSync(weights); fs.mkdirSync(weights); break;
    case 4: fs.rmSync(weights); fs.symlinkSync(rng.pick(['/dev/zero', '/dev/urandom', '/etc/passwd', '/proc/self/mem', '/nonexistent', weights]), weights); break;
    case 5: fs.rmSync(weights); spawnSync('mkfifo', [weights]); break;
    case 6: fs.truncateSync(weights, rng.pick([size * 1000, 2 ** 33 + 4, 9 * 2 ** 30])); break;  // sparse: large but cheap
    case 7: fs.rmSync(weights); break;
    case 8: {
      const json = path.join(dir, 'model.json');
      fs.rmSync(json);
      if (rng.chance(0.5)) fs.mkdirSync(json);
      else if (rng.chance(0.5)) spawnSync('mkfifo', [json]);
      else fs.symlinkSync(rng.pick(['/dev/zero', '/dev/urandom', '/etc/passwd']), json);
      break;
    }
    case 9: fs.truncateSync(path.join(dir, 'model.json'), 65 * 2 ** 20); break;
    case 10: fs.writeFileSync(weights, ''); break;
    default: fs.writeFileSync(weights, rng.bytes(size));
  }
  return `files:${k}`;
}

/**
 * JSON text of a mutated tree: chains of one-element arrays (nesting 100,000 deep) written
 * without recursion, cycles and values JSON lacks written as strings.
 */
function jsonText(v, path) {
  if (typeof v === 'bigint' || typeof v === 'symbol' || typeof v === 'function') return JSON.stringify(String(v));
  if (v === undefined || (typeof v === 'number' && !Number.isFinite(v))) return 'null';
  if (!v || typeof v !== 'object') return JSON.stringify(v);
  if (path.has(v)) return '"<cycle>"';
  let depth = 0;
  let leaf = v;
  while (Array.isArray(leaf) && leaf.length === 1 && !path.has(leaf[0])) {
    leaf = leaf[0];
    depth++;
  }
  if (depth > 1) return '['.repeat(depth) + jsonText(leaf, path) + ']'.repeat(depth);
  path.add(v);
  // Array.from visits a sparse array's holes (as undefined, so null), which map would skip.
  const body = Array.isArray(v) ? `[${Array.from(v, (x) => jsonText(x, path)).join(',')}]`
    : `{${Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => `${JSON.stringify(k)}:${jsonText(x, path)}`).join(',')}}`;
  path.delete(v);
  return body;
}

/** Writes a damaged copy of the base model into `dir`. */
function damagedCopy(rng, base, dir) {
  fs.copyFileSync(path.join(base, 'weights.bin'), path.join(dir, 'weights.bin'));
  let text = fs.readFileSync(path.join(base, 'model.json'), 'utf8');
  const what = rng.weighted({ json: 12, text: 3, files: 5, both: 2 });
  const done = [];
  if (what === 'json' || what === 'both') {
    const json = JSON.parse(text);
    for (let i = rng.weighted({ 1: 6, 2: 3, 3: 1 }); i > 0; i--) done.push(mutateJson(rng, json));
    text = jsonText(json, new Set());
  }
  if (what === 'text') {
    let kind;
    [kind, text] = mutateText(rng, text);
    done.push(kind);
  }
  fs.writeFileSync(path.join(dir, 'model.json'), text);
  if (what === 'files' || what === 'both') done.push(mutateFiles(rng, dir));
  return done.join(' ');
}

/** Uses a loaded model the ways a user would: summary, predict, evaluate and fit. */
async function exercise(ck, rng, model) {
  model.summary(undefined, undefined, () => {});
  const shape = model.inputShape;
  const size = shape.reduce((a, b) => a * b, 1);
  if (!(size > 0 && size <= 1 << 16)) return;
  const x = ck.tensor(Float32Array.from({ length: 2 * size }, () => rng.float()), [2, ...shape]);
  const y = model.predict(x);
  await y.data();
  if (model.compiled && rng.chance(0.5)) {
    const out = model.outputShape.slice(1);
    const t = ck.tensor(Float32Array.from({ length: 2 * out.reduce((a, b) => a * b, 1) }, (_, i) => (i % out[out.length - 1] === 0 ? 1 : 0)), [2, ...out]);
    await model.fit(x, t, { epochs: 1, batchSize: 2, verbose: 0 });
  }
}

module.exports = {
  name: 'model',
  prepares: true,
  makeBaseModel,
  damagedCopy,
  async setup({ ck, tmp }) {
    return makeBaseModel(ck, path.join(tmp, 'base-model'));
  },
  async run(rng, ctx) {
    const { ck, dir, fixture } = ctx;
    ctx.detail = damagedCopy(rng, fixture, dir);
    ctx.begin();
    const model = await ck.loadModel(`file://${dir}`);
    await exercise(ck, rng, model);
    return ctx.detail;
  },
};
