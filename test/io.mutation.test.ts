// Saving and reading model files at the edges the other suites leave open (found by mutation
// testing, docs/testing.md). lib/io/topology.ts: each refusal of a hostile model.json with its
// own message, the limits at their exact ends (nesting depth, layer count, rank, dimension size),
// the class names Keras and tfjs write for functional models, a layer's own error. lib/io/files.ts:
// the URLs save and loadModel take, what model.json records (format, version, metadata, optimizer
// bookkeeping), the weights files checked against the manifest and the topology, and training
// configs loadModel can or cannot rebuild.
import { describe, expect, test } from '@jest/globals';
import * as fs from 'fs';
import * as path from 'path';
import * as ck from '../lib';
import { checkManifest, layersFromTopology, renameKeys, toCamel } from '../lib/io/topology';
import { tmpDir } from '../test-support/helpers';

const dense = (name: string, units = 2) => ({ class_name: 'Dense', config: { name, units } });
const sequential = (layers: unknown) => ({ class_name: 'Sequential', config: { name: 'seq', layers } });
const input = { class_name: 'InputLayer', config: { name: 'in', batch_input_shape: [null, 3] } };

/** A functional topology (in -> d) under `className`, with the layer entries Keras writes. */
function functional(className: string) {
  return {
    class_name: className,
    config: {
      name: 'f',
      layers: [
        { class_name: 'InputLayer', name: 'in', config: { name: 'in', batch_input_shape: [null, 3] }, inbound_nodes: [] },
        { class_name: 'Dense', name: 'd', config: { name: 'd', units: 2 }, inbound_nodes: [[['in', 0, 0, {}]]] },
      ],
      input_layers: [['in', 0, 0]],
      output_layers: [['d', 0, 0]],
    },
  };
}

/** `depth` objects nested around a number: the number sits at depth `depth`. */
function nested(depth: number, wrap: (v: unknown) => unknown = (v) => ({ a: v })): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = wrap(v);
  return v;
}

describe('renameKeys: deep renaming bounded at 32 levels', () => {
  test('a value 32 levels down is renamed; 33 levels is a FormatError, in objects and in arrays', () => {
    expect(JSON.stringify(renameKeys(nested(32, (v) => ({ a_b: v })), toCamel))).toBe(JSON.stringify(nested(32, (v) => ({ aB: v }))));
    expect(() => renameKeys(nested(33), toCamel)).toThrow(new ck.FormatError('model.json: nesting is too deep'));
    expect(renameKeys(nested(32, (v) => [v]), toCamel)).toEqual(nested(32, (v) => [v]));
    expect(() => renameKeys(nested(33, (v) => [v]), toCamel)).toThrow('model.json: nesting is too deep');
  });
});

describe('layersFromTopology: what a model topology may be', () => {
  test('functional models load under tfjs\'s class name Model and Keras\'s Functional', () => {
    for (const className of ['Model', 'Functional']) {
      const t = layersFromTopology(functional(className));
      expect(t.layers.map((l) => l.className)).toEqual(['InputLayer', 'Dense']);
      expect(t.functional!.inbound).toEqual([[], [[['in', 0, 0, {}]]]]);
      expect(ck.modelFromJSON(functional(className))).toBeInstanceOf(ck.Functional);
    }
  });

  test('Sequential layers as {layers} or as the older bare list', () => {
    expect(layersFromTopology(sequential([input, dense('d')])).layers.map((l) => l.name)).toEqual(['in', 'd']);
    expect(layersFromTopology({ class_name: 'Sequential', config: [input, dense('d')] }).layers.map((l) => l.name)).toEqual(['in', 'd']);
  });

  const refused: Array<[string, unknown, string]> = [
    ['a topology that is not an object', 'Sequential', 'model.json: modelTopology must be an object'],
    ['an array topology', [dense('d')], 'model.json: modelTopology must be an object'],
    ['another class of model', { class_name: 'Graph', config: { layers: [dense('d')] } }, 'model.json: only Sequential and functional models can be loaded, got class_name "Graph"'],
    ['a functional topology with a list config', { class_name: 'Functional', config: [dense('d')] }, 'model.json: a functional topology needs a config object'],
    ['no layers', sequential([]), 'model.json: the topology has no layers'],
    ['layers that are not a list', sequential({ 0: dense('d') }), 'model.json: the topology has no layers'],
    ['a layer that is not an object', sequential([dense('a'), 'Dense']), 'model.json: layer 1 must be {class_name, config}'],
    ['a layer whose class_name is not a string', sequential([dense('a'), { class_name: 7, config: {} }]), 'model.json: layer 1 must be {class_name, config}'],
    ['a layer without a config object', sequential([{ class_name: 'Dense', config: 'units=2' }]), 'model.json: layer 0 must be {class_name, config}'],
  ];
  test.each(refused)('%s is a FormatError saying so', (_label, topology, message) => {
    expect(() => layersFromTopology(topology)).toThrow(ck.FormatError);
    expect(() => layersFromTopology(topology)).toThrow(message);
  });

  test('at most 10000 layers: 10001 is refused by count, 10000 goes on to the layers themselves', () => {
    expect(() => layersFromTopology(sequential(new Array(10001).fill(0)))).toThrow('model.json: too many layers (10001)');
    expect(() => layersFromTopology(sequential(new Array(10000).fill(0)))).toThrow('model.json: layer 0 must be {class_name, config}');
  });

  test('a layer\'s own refusal is a FormatError naming the layer; an unknown class keeps its own message', () => {
    const bad = () => layersFromTopology(sequential([input, { class_name: 'Dense', config: { name: 'bad', units: -1 } }]));
    expect(bad).toThrow(ck.FormatError);
    expect(bad).toThrow(/^model\.json: layer 1 \(Dense\): bad: units must be a positive integer, got -1$/);
    const unknown = () => layersFromTopology(sequential([{ class_name: 'Bogus', config: {} }]));
    expect(unknown).toThrow(ck.FormatError);
    expect(unknown).toThrow(/^unknown layer class 'Bogus' \(supported: /);
  });
});

describe('checkManifest: the weights manifest before anything is read', () => {
  const topology = sequential([input, dense('d')]);
  const manifest = (weights: unknown[], paths: unknown[] = ['weights.bin']) => ({ modelTopology: topology, weightsManifest: [{ paths, weights }] });
  const weight = (extra: Record<string, unknown> = {}) => ({ name: 'd/kernel', shape: [3, 2], dtype: 'float32', ...extra });

  test('dtype may be left out; a dimension may be 0 or up to 2^31 - 1; up to rank 8', () => {
    const ok = [
      manifest([{ name: 'w', shape: [3, 2] }]),
      manifest([weight({ shape: [0] })]),
      manifest([weight({ shape: [2 ** 31 - 1] })]),
      manifest([weight({ shape: [1, 1, 1, 1, 1, 1, 1, 1] })]),
      manifest([]),
    ];
    for (const json of ok) expect(checkManifest(json)).toBe(json);
  });

  const refused: Array<[string, unknown, string]> = [
    ['not an object', [topology], 'model.json: not a JSON object'],
    ['a modelTopology that is a string', { modelTopology: 'Sequential', weightsManifest: [] }, 'model.json: no modelTopology (is this a TensorFlow.js layers model?)'],
    ['no weightsManifest array', { modelTopology: topology, weightsManifest: {} }, 'model.json: weightsManifest must be an array'],
    ['a group that is not an object', { modelTopology: topology, weightsManifest: [['weights.bin']] }, 'model.json: each weightsManifest entry needs paths and weights arrays'],
    ['a group without paths', { modelTopology: topology, weightsManifest: [{ weights: [] }] }, 'model.json: each weightsManifest entry needs paths and weights arrays'],
    ['a group without weights', { modelTopology: topology, weightsManifest: [{ paths: [] }] }, 'model.json: each weightsManifest entry needs paths and weights arrays'],
    ['a path that is not a string', manifest([], [3]), 'model.json: weights path 3 must be a plain file name inside the model folder'],
    ['an empty path', manifest([], ['']), 'model.json: weights path "" must be a plain file name inside the model folder'],
    ['a path up and out', manifest([], ['../w.bin']), 'must be a plain file name inside the model folder'],
    ['an absolute path', manifest([], ['/etc/w.bin']), 'model.json: weights path "/etc/w.bin" must be a plain file name'],
    ['a Windows path', manifest([], ['sub\\w.bin']), 'must be a plain file name inside the model folder'],
    ['a NUL in a path', manifest([], ['w.bin\0.txt']), 'must be a plain file name inside the model folder'],
    ['a weight that is not an object', manifest(['d/kernel']), 'model.json: each weight needs a name and a shape'],
    ['a weight without a name', manifest([{ shape: [1] }]), 'model.json: each weight needs a name and a shape'],
    ['a weight without a shape', manifest([{ name: 'w' }]), 'model.json: each weight needs a name and a shape'],
    ['an int32 weight', manifest([weight({ dtype: 'int32' })]), 'model.json: weight d/kernel has dtype "int32"; only float32 is supported'],
    ['a quantized weight', manifest([weight({ quantization: { dtype: 'uint8', scale: 1, min: 0 } })]), 'model.json: weight d/kernel is quantized; only float32 is supported'],
    ['rank 9', manifest([weight({ shape: [1, 1, 1, 1, 1, 1, 1, 1, 1] })]), 'model.json: weight d/kernel has an invalid shape'],
    ['a negative dimension', manifest([weight({ shape: [3, -1] })]), 'model.json: weight d/kernel has an invalid shape'],
    ['a dimension of 2^31', manifest([weight({ shape: [2 ** 31] })]), 'model.json: weight d/kernel has an invalid shape'],
    ['a fractional dimension', manifest([weight({ shape: [1.5] })]), 'model.json: weight d/kernel has an invalid shape'],
  ];
  test.each(refused)('%s is a FormatError saying so', (_label, json, message) => {
    expect(() => checkManifest(json)).toThrow(ck.FormatError);
    expect(() => checkManifest(json)).toThrow(message);
  });
});

describe('save and loadModel (lib/io/files.ts)', () => {
  const root = tmpDir('convkit-io-mutation-');
  let n = 0;
  const newDir = () => path.join(root, `m${n++}`);
  const readJson = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));

  /** input [3] -> dense `name` (3 units, bias as asked). */
  function small(name = 'a', useBias = true) {
    const m = ck.sequential([ck.layers.input({ shape: [3] }), ck.layers.dense({ units: 3, useBias, name })]);
    m.build();
    return m;
  }

  /** A folder as TensorFlow.js writes it (no convkitSave record): `layers` dense 3 -> 3 without bias, the manifest and values given. */
  function writeFolder(dir: string, layers: string[], weights: { name: string; shape: number[]; group?: string }[], extra: Record<string, unknown> = {}) {
    fs.mkdirSync(dir, { recursive: true });
    const topology = {
      class_name: 'Sequential',
      config: { name: 'written', layers: [{ class_name: 'InputLayer', config: { name: 'in', batch_input_shape: [null, 3] } },
        ...layers.map((l) => ({ class_name: 'Dense', config: { name: l, units: 3, use_bias: false } }))] },
    };
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ modelTopology: topology, weightsManifest: [{ paths: ['weights.bin'], weights }], ...extra }));
    const count = weights.reduce((k, w) => k + w.shape.reduce((a, b) => a * b, 1), 0);
    fs.writeFileSync(path.join(dir, 'weights.bin'), count < 1e6 ? Buffer.from(new Float32Array(count).fill(0.5).buffer) : '');
  }

  test('URLs: file://, or a plain path; anything else is a ValueError naming the call', async () => {
    const m = small();
    const plain = newDir();
    await m.save(plain);
    expect((await ck.loadModel(plain)).layers.map((l) => l.name)).toEqual(['input', 'a']);
    const dir = newDir();
    await m.save(`file://${dir}`);
    expect(fs.existsSync(path.join(dir, 'model.json'))).toBe(true);
    await expect(m.save('')).rejects.toThrow(new ck.ValueError("save: expected a 'file://' path"));
    await expect(m.save(5 as never)).rejects.toThrow("save: expected a 'file://' path");
    await expect(ck.loadModel('')).rejects.toThrow(new ck.ValueError("loadModel: expected a 'file://' path"));
    await expect(ck.loadModel('http://example.com/model.json')).rejects.toThrow(new ck.ValueError("loadModel: only 'file://' URLs are supported, got http://example.com/model.json"));
    await expect(m.save('file://')).rejects.toThrow(new ck.ValueError("save: only 'file://' URLs are supported, got file://"));
  });

  test('model.json says what wrote it, in the TensorFlow.js layers format, with convkit\'s package version', async () => {
    const dir = newDir();
    await small().save(dir);
    const json = readJson(dir);
    const version = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')).version;
    expect(json.format).toBe('layers-model');
    expect(json.generatedBy).toBe(`convkit ${version}`);
    expect(json.convertedBy).toBeNull();
    expect(json.modelTopology.keras_version).toBe(`convkit ${version}`);
    expect(json.modelTopology.backend).toBe('convkit');
    expect('userDefinedMetadata' in json).toBe(false);
    expect('trainingConfig' in json).toBe(false);
  });

  test('metadata is kept as given, less the keys convkit writes itself; an empty one is not written', async () => {
    const dir = newDir();
    await small().save(dir, { metadata: { classes: ['x', 'y'], convkitOptimizer: { iterations: 9, slots: 9 }, convkitCheckpoint: { epoch: 9 } } });
    expect(readJson(dir).userDefinedMetadata).toEqual({ classes: ['x', 'y'] });
    const empty = newDir();
    await small().save(empty, { metadata: { convkitCheckpoint: { epoch: 1 } } });
    expect('userDefinedMetadata' in readJson(empty)).toBe(false);
  });

  test('includeOptimizer records the step count and the slots; a checkpoint record is kept beside them', async () => {
    const m = small();
    m.compile({ optimizer: ck.optimizers.sgd({ momentum: 0.5 }), loss: 'meanSquaredError' });
    const x = ck.tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    const y = ck.tensor([1, 0, 1, 0, 1, 0], [2, 3]);
    for (let i = 0; i < 3; i++) await m.trainOnBatch(x, y);
    const dir = newDir();
    const saveModel = (await import('../lib/io/files')).saveModel;
    await saveModel(m, dir, { includeOptimizer: true, checkpoint: { epoch: 2 } });
    const json = readJson(dir);
    const slots = json.weightsManifest[0].weights.filter((w: { group?: string }) => w.group === 'optimizer');
    expect(slots.length).toBeGreaterThan(0);
    expect(json.userDefinedMetadata).toEqual({ convkitOptimizer: { iterations: 3, slots: slots.length }, convkitCheckpoint: { epoch: 2 } });
    expect(json.trainingConfig).toEqual({ loss: 'meanSquaredError', metrics: [], optimizer_config: { class_name: 'SGD', config: { learningRate: 0.01, momentum: 0.5, nesterov: false } } });
  });

  test('the manifest may declare up to 8 GiB of weights: past that it is refused before any file is read', async () => {
    const at = newDir();
    writeFolder(at, ['a'], [{ name: 'a/kernel', shape: [2 ** 30, 2] }]);
    await expect(ck.loadModel(at)).rejects.toThrow(new ck.FormatError('loadModel: the weights files hold 0 bytes but the manifest declares 8589934592'));
    const over = newDir();
    writeFolder(over, ['a'], [{ name: 'a/kernel', shape: [2 ** 30, 2] }, { name: 'b', shape: [1] }]);
    await expect(ck.loadModel(over)).rejects.toThrow(new ck.FormatError('loadModel: the manifest declares 8589934596 bytes of weights'));
  });

  test('weights files: inside the folder, and regular files', async () => {
    const sub = newDir();
    writeFolder(sub, ['a'], [{ name: 'a/kernel', shape: [3, 3] }]);
    const json = readJson(sub);
    json.weightsManifest[0].paths = ['sub/weights.bin'];
    fs.writeFileSync(path.join(sub, 'model.json'), JSON.stringify(json));
    await expect(ck.loadModel(sub)).rejects.toThrow(new ck.FormatError('loadModel: weights path sub/weights.bin leaves the model folder'));

    const folder = newDir();
    writeFolder(folder, ['a'], [{ name: 'a/kernel', shape: [0] }]);
    fs.rmSync(path.join(folder, 'weights.bin'));
    fs.mkdirSync(path.join(folder, 'weights.bin'));
    await expect(ck.loadModel(folder)).rejects.toThrow(new ck.FormatError('loadModel: weights file weights.bin is not a regular file'));

  });

  test('weights against the topology: the values must cover the layers, each weight its shape, and all be used', async () => {
    const few = newDir();
    writeFolder(few, ['a'], [{ name: 'a/kernel', shape: [2, 3] }, { name: 'slot', shape: [3], group: 'optimizer' }]);
    await expect(ck.loadModel(few)).rejects.toThrow(new ck.FormatError('written: the layers need 9 weight values but the weights files hold 6'));

    const shape = newDir();
    writeFolder(shape, ['a'], [{ name: 'x', shape: [9] }]);
    await expect(ck.loadModel(shape)).rejects.toThrow(new ck.FormatError('loadModel: weight x has shape [9] but a needs kernel [3,3]'));

    // the same leading dimension, another rank (bias on, so the values still cover the layer)
    const rank = newDir();
    writeFolder(rank, ['a'], [{ name: 'a/kernel', shape: [3] }, { name: 'a/bias', shape: [9] }]);
    const rankJson = readJson(rank);
    rankJson.modelTopology.config.layers[1].config.use_bias = true;
    fs.writeFileSync(path.join(rank, 'model.json'), JSON.stringify(rankJson));
    await expect(ck.loadModel(rank)).rejects.toThrow(new ck.FormatError('loadModel: weight a/kernel has shape [3] but a needs kernel [3,3]'));

    // a takes a/kernel by name, b the next by position (a/kernel again), c finds none left
    const missing = newDir();
    writeFolder(missing, ['a', 'b', 'c'], [{ name: 'big', shape: [18] }, { name: 'a/kernel', shape: [3, 3] }]);
    await expect(ck.loadModel(missing)).rejects.toThrow(new ck.FormatError('loadModel: no weights for c/kernel'));

    const extra = newDir();
    writeFolder(extra, ['a'], [{ name: 'a/kernel', shape: [3, 3] }, { name: 'z', shape: [1] }]);
    await expect(ck.loadModel(extra)).rejects.toThrow(new ck.FormatError('loadModel: the file has 2 weights but the topology uses 1'));

    const ok = newDir();
    writeFolder(ok, ['a', 'b'], [{ name: 'p', shape: [3, 3] }, { name: 'q', shape: [3, 3] }]);
    const loaded = await ck.loadModel(ok);
    expect(Array.from(loaded.getWeights()[1].dataSync())).toEqual(new Array(9).fill(0.5));
  });

  test('a topology the model builder refuses is a FormatError naming model.json', async () => {
    const dir = newDir();
    writeFolder(dir, ['a'], []);
    const json = readJson(dir);
    json.modelTopology.config.layers[1] = { class_name: 'Conv2D', config: { name: 'c', filters: 1, kernel_size: [3, 3] } };
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
    await expect(ck.loadModel(dir)).rejects.toThrow(ck.FormatError);
    await expect(ck.loadModel(dir)).rejects.toThrow(`loadModel: ${dir}/model.json: `);
  });

  describe('training configs', () => {
    async function checkpointFolder() {
      const m = small();
      m.compile({ optimizer: 'adam', loss: 'meanSquaredError' });
      await m.trainOnBatch(ck.tensor([1, 2, 3], [1, 3]), ck.tensor([0, 1, 0], [1, 3]));
      const dir = newDir();
      await m.save(dir, { includeOptimizer: true });
      return dir;
    }
    const rewrite = (dir: string, edit: (json: Record<string, any>) => void) => {
      const json = readJson(dir);
      edit(json);
      delete json.convkitSave;   // hand-edited: no longer convkit's own save
      fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
    };

    test('a loss without an optimizer config compiles with SGD\'s defaults; metrics that are not a list are none', async () => {
      const dir = newDir();
      writeFolder(dir, ['a'], [{ name: 'a/kernel', shape: [3, 3] }], { trainingConfig: { loss: 'meanSquaredError', metrics: 'accuracy' } });
      const m = await ck.loadModel(dir);
      expect(m.compiled!.optimizer.getConfig()).toEqual(ck.optimizers.sgd().getConfig());
      expect(m.compiled!.accuracyName).toBeNull();
    });

    test('an optimizer convkit cannot rebuild: a checkpoint with its state is refused; without the state the model loads uncompiled', async () => {
      const dir = await checkpointFolder();
      rewrite(dir, (j) => { j.trainingConfig.optimizer_config.class_name = 'Adadelta'; });
      await expect(ck.loadModel(dir)).rejects.toThrow(new ck.FormatError(
        "loadModel: the file holds optimizer state, but its training config cannot be rebuilt: loadModel: optimizer 'Adadelta' is not one convkit has (known: SGD, Adam, AdamW, RMSprop, Adagrad, Nadam)"));
      const stateless = await checkpointFolder();
      rewrite(stateless, (j) => {
        j.trainingConfig.optimizer_config.class_name = 'Adadelta';
        delete j.userDefinedMetadata.convkitOptimizer;
      });
      const m = await ck.loadModel(stateless);
      expect(m.compiled).toBeUndefined();
    });
  });

  describe('modelFromJSON', () => {
    const topology = sequential([input, dense('d')]);
    test('takes a model.json or a topology', () => {
      expect(ck.modelFromJSON({ modelTopology: topology }).layers.map((l) => l.name)).toEqual(['in', 'd']);
      expect(ck.modelFromJSON(topology).layers.map((l) => l.name)).toEqual(['in', 'd']);
    });
    /** A functional chain input -> `n` relu activations, the first reading `first`. */
    const chain = (n: number, first = 'in') => {
      const layers: unknown[] = [{ class_name: 'InputLayer', name: 'in', config: { name: 'in', batch_input_shape: [null, 3] }, inbound_nodes: [] }];
      for (let i = 0; i < n; i++) {
        layers.push({ class_name: 'Activation', name: `a${i}`, config: { name: `a${i}`, activation: 'relu' }, inbound_nodes: [[[i === 0 ? first : `a${i - 1}`, 0, 0, {}]]] });
      }
      return { class_name: 'Functional', config: { name: 'f', layers, input_layers: [['in', 0, 0]], output_layers: [[`a${n - 1}`, 0, 0]] } };
    };

    test('a functional graph\'s own FormatError comes through as it is', () => {
      expect(() => ck.modelFromJSON(chain(2, 'nope'))).toThrow(new ck.FormatError('model.json: an inbound node of a0 ["nope",0,0,{}] does not name a layer of the model'));
    });

    test('a graph too deep to connect is a FormatError, never a RangeError (stack overflow)', () => {
      // Connecting recurses through each layer's inbound node: on V8's default stack (about 1 MB on
      // every 64-bit platform) 3,000 levels load and 5,000 overflow, so 9,999 always overflows.
      expect(() => ck.modelFromJSON(chain(9999))).toThrow(new ck.FormatError('model.json: the layer graph is too deep'));
    });

    test.each([null, undefined, [topology], 'Sequential', 5])('%p is a FormatError', (v) => {
      expect(() => ck.modelFromJSON(v)).toThrow(new ck.FormatError('modelFromJSON: expected a JSON object (a model.json or a Sequential topology)'));
    });
  });
});
