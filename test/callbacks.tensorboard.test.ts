// ck.callbacks.tensorBoard's event files read back by a reader written here from the formats'
// specifications, independent of the writer: TFRecord framing checked with a bit-by-bit CRC-32C
// (the writer's is table-driven) and the Event / Summary / HistogramProto / TensorProto messages
// decoded from the protobuf wire format by hand (the writer encodes with protobufjs). What they
// hold is compared with fit's History, the model's weights and its saved topology.
import { describe, expect, test } from '@jest/globals';
import * as fs from 'fs';
import * as path from 'path';
import * as ck from '../lib';
import { ensureBuilt, jsonLines, runCli } from '../test-support/cli-fixtures';
import { randomArray, tmpDir } from '../test-support/helpers';

function crc32cBitwise(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of bytes) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0x82f63b78 & -(c & 1));
  }
  return (c ^ 0xffffffff) >>> 0;
}
const unmask = (m: number): number => {
  const r = (m - 0xa282ead8) >>> 0;
  return ((r >>> 17) | (r << 15)) >>> 0;
};

/** The payloads of a TFRecord file, each record's two CRCs checked. */
function records(file: string): Buffer[] {
  const buf = fs.readFileSync(file);
  const out: Buffer[] = [];
  for (let at = 0; at < buf.length;) {
    const length = Number(buf.readBigUInt64LE(at));
    expect(unmask(buf.readUInt32LE(at + 8))).toBe(crc32cBitwise(buf.subarray(at, at + 8)));
    const payload = buf.subarray(at + 12, at + 12 + length);
    expect(unmask(buf.readUInt32LE(at + 12 + length))).toBe(crc32cBitwise(payload));
    out.push(payload);
    at += 12 + length + 4;
  }
  return out;
}

type Field = { no: number; wire: number; value: bigint | Buffer };

/** A protobuf message's fields in order: varints as bigint, fixed32/fixed64/bytes as raw bytes. */
function fields(msg: Buffer): Field[] {
  const out: Field[] = [];
  let at = 0;
  const varint = (): bigint => {
    let v = 0n, shift = 0n;
    for (;;) {
      const b = msg[at++];
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
      shift += 7n;
    }
  };
  while (at < msg.length) {
    const key = Number(varint());
    const no = key >>> 3, wire = key & 7;
    if (wire === 0) out.push({ no, wire, value: varint() });
    else if (wire === 1) { out.push({ no, wire, value: msg.subarray(at, at + 8) }); at += 8; }
    else if (wire === 5) { out.push({ no, wire, value: msg.subarray(at, at + 4) }); at += 4; }
    else if (wire === 2) { const n = Number(varint()); out.push({ no, wire, value: msg.subarray(at, at + n) }); at += n; }
    else throw new Error(`wire type ${wire}`);
  }
  return out;
}
const one = (fs_: Field[], no: number): Field | undefined => fs_.find((f) => f.no === no);
const bytesOf = (f: Field | undefined): Buffer => (f ? (f.value as Buffer) : Buffer.alloc(0));
const doubleOf = (f: Field | undefined): number => (f ? (f.value as Buffer).readDoubleLE(0) : 0);
const packedDoubles = (f: Field | undefined): number[] => {
  const b = bytesOf(f);
  return Array.from({ length: b.length / 8 }, (_, i) => b.readDoubleLE(8 * i));
};

interface Value { tag: string; simple?: number; histo?: Record<string, number | number[]>; plugin?: string; strings?: string[]; dtype?: number }
interface Event { wallTime: number; step: number; fileVersion?: string; values: Value[] }

function decodeEvent(payload: Buffer): Event {
  const f = fields(payload);
  const step = one(f, 2);
  const event: Event = { wallTime: doubleOf(one(f, 1)), step: step ? Number(step.value as bigint) : 0, values: [] };
  const version = one(f, 3);
  if (version) event.fileVersion = bytesOf(version).toString();
  const summary = one(f, 5);
  if (!summary) return event;
  for (const v of fields(bytesOf(summary)).filter((x) => x.no === 1)) {
    const vf = fields(bytesOf(v));
    const value: Value = { tag: bytesOf(one(vf, 1)).toString() };
    const simple = one(vf, 2);
    if (simple) value.simple = (simple.value as Buffer).readFloatLE(0);
    const histo = one(vf, 5);
    if (histo) {
      const h = fields(bytesOf(histo));
      value.histo = {
        min: doubleOf(one(h, 1)), max: doubleOf(one(h, 2)), num: doubleOf(one(h, 3)), sum: doubleOf(one(h, 4)),
        sumSquares: doubleOf(one(h, 5)), bucketLimit: packedDoubles(one(h, 6)), bucket: packedDoubles(one(h, 7)),
      };
    }
    const meta = one(vf, 9);
    if (meta) value.plugin = bytesOf(one(fields(bytesOf(one(fields(bytesOf(meta)), 1))), 1)).toString();
    const tensor = one(vf, 8);
    if (tensor) {
      const t = fields(bytesOf(tensor));
      value.dtype = Number(one(t, 1)!.value as bigint);
      value.strings = t.filter((x) => x.no === 8).map((x) => bytesOf(x).toString());
    }
    event.values.push(value);
  }
  return event;
}

/** The events of the event files in dir (`files` of them, as TensorFlow names them), file after file. */
function eventsIn(dir: string, files = 1): Event[] {
  const names = fs.readdirSync(dir).filter((n) => /^events\.out\.tfevents\.\d+\..+\.\d+\.v2$/.test(n));
  expect(names.length).toBe(files);
  const perFile = names.map((n) => records(path.join(dir, n)).map(decodeEvent));
  return perFile.sort((a, b) => a[0].wallTime - b[0].wallTime).flat();
}

const scalars = (events: Event[], tag: string): Array<[number, number]> =>
  events.flatMap((e) => e.values.filter((v) => v.tag === tag).map((v): [number, number] => [e.step, v.simple!]));

const N = 24, IN = 6, OUT = 3, BATCH = 8;

function smallModel(): ck.LayersModel {
  const model = ck.sequential([
    ck.layers.dense({ units: 5, inputShape: [IN], activation: 'relu', name: 'hidden' }),
    ck.layers.dense({ units: OUT, activation: 'softmax', name: 'head' }),
  ]);
  model.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.1 }), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  return model;
}

describe('tensorBoard', () => {
  const x = ck.tensor(randomArray(N * IN, 7, -1, 1), [N, IN]);
  const labels = Array.from({ length: N }, (_, i) => i % OUT);
  const y = ck.toCategorical(ck.tensor(Float32Array.from(labels), [N]), OUT);

  test('epoch scalars in train/ and validation/, batch scalars, histograms and the Keras graph', async () => {
    const logDir = path.join(tmpDir('tensorboard'), 'run');
    const model = smallModel();
    const epochs = 3;
    const history = await model.fit(x, y, {
      epochs, batchSize: BATCH, validationSplit: 0.25, verbose: 0,
      callbacks: [ck.callbacks.tensorBoard(logDir, { histogramFreq: 1, updateFreq: 'batch' })],
    });
    const train = eventsIn(path.join(logDir, 'train'));
    const validation = eventsIn(path.join(logDir, 'validation'));
    for (const events of [train, validation]) {
      expect(events[0].fileVersion).toBe('brain.Event:2');
      for (const e of events) expect(Math.abs(e.wallTime - Date.now() / 1000)).toBeLessThan(600);
    }
    const f32 = (v: number) => Math.fround(v);
    expect(scalars(train, 'epoch_loss')).toEqual(history.history.loss.map((v, e) => [e, f32(v)]));
    expect(scalars(train, 'epoch_acc').length + scalars(train, 'epoch_accuracy').length).toBe(epochs);
    expect(scalars(validation, 'epoch_loss')).toEqual(history.history.val_loss.map((v, e) => [e, f32(v)]));
    expect(train.some((e) => e.values.some((v) => v.tag.startsWith('epoch_val_')))).toBe(false);

    // 18 training rows in batches of 8: 3 steps an epoch, numbered 1.. across the fit.
    expect(scalars(train, 'batch_loss').map(([s]) => s)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);

    // Each weight's histogram per epoch; the last epoch's against the trained weights.
    const weights = model.getWeights();
    const names = ['hidden/kernel', 'hidden/bias', 'head/kernel', 'head/bias'];
    names.forEach((name, k) => {
      const hs = train.flatMap((e) => e.values.filter((v) => v.tag === `${name}/histogram`).map((v) => ({ step: e.step, h: v.histo! })));
      expect(hs.map((h) => h.step)).toEqual([0, 1, 2]);
      const h = hs[2].h;
      const w = Array.from(weights[k].dataSync());
      expect(h.num).toBe(w.length);
      expect(h.min).toBe(Math.min(...w));
      expect(h.max).toBe(Math.max(...w));
      expect(h.sum).toBeCloseTo(w.reduce((a, b) => a + b, 0), 10);
      expect(h.sumSquares).toBeCloseTo(w.reduce((a, b) => a + b * b, 0), 10);
      const counts = h.bucket as number[], limits = h.bucketLimit as number[];
      expect(counts.reduce((a, b) => a + b, 0)).toBe(w.length);
      expect(limits[limits.length - 1]).toBe(h.max);
      // Bucket j holds the values in [limit[j-1], limit[j]) (the first from min, the last up to max
      // included), as tf.summary.histogram buckets them, counted by a plain scan; a value within
      // rounding of an edge may land on either side of it.
      const last = counts.length - 1;
      counts.forEach((c, j) => {
        const expected = w.filter((v) => (j === 0 || v >= limits[j - 1]) && (v < limits[j] || j === last)).length;
        expect(Math.abs(c - expected)).toBeLessThanOrEqual(1);
      });
    });

    const graph = train.flatMap((e) => e.values).filter((v) => v.tag === 'keras');
    expect(graph.length).toBe(1);
    expect(graph[0].plugin).toBe('graph_keras_model');
    expect(graph[0].dtype).toBe(7);  // DT_STRING
    const config = JSON.parse(graph[0].strings![0]);
    expect(config.class_name).toBe('Sequential');
    expect(config.config.layers.map((l: { config: { name: string } }) => l.config.name).filter((n: string) => n !== 'input_1' && !n.endsWith('_input'))).toEqual(['hidden', 'head']);
  });

  test('updateFreq N writes every Nth step; histogramFreq 0 and writeGraph false write neither', async () => {
    const logDir = path.join(tmpDir('tensorboard'), 'sparse');
    await smallModel().fit(x, y, {
      epochs: 2, batchSize: BATCH, verbose: 0,
      callbacks: [ck.callbacks.tensorBoard(logDir, { updateFreq: 2, writeGraph: false })],
    });
    const train = eventsIn(path.join(logDir, 'train'));
    expect(scalars(train, 'batch_loss').map(([s]) => s)).toEqual([2, 4, 6]);  // 24 rows: 3 steps an epoch
    expect(train.some((e) => e.values.some((v) => v.histo || v.tag === 'keras'))).toBe(false);
    expect(scalars(train, 'epoch_loss').map(([s]) => s)).toEqual([0, 1]);
  });

  const bad: Array<[string, () => unknown, RegExp]> = [
    ['an empty logDir', () => ck.callbacks.tensorBoard(''), /tensorBoard: logDir must be a non-empty string/],
    ['updateFreq 0', () => ck.callbacks.tensorBoard('x', { updateFreq: 0 }), /updateFreq must be 'epoch', 'batch' or an integer >= 1, got 0/],
    ['histogramFreq -1', () => ck.callbacks.tensorBoard('x', { histogramFreq: -1 }), /histogramFreq must be an integer >= 0, got -1/],
    ['a misspelled option', () => ck.callbacks.tensorBoard('x', { histogram_freq: 1 } as never), /unknown option 'histogram_freq'/],
  ];
  test.each(bad)('%s is a ValueError', (_label, call, message) => {
    expect(call).toThrow(ck.ValueError);
    expect(call).toThrow(message);
  });

  test('a logDir that cannot be created is an IOError naming the file', async () => {
    const blocker = path.join(tmpDir('tensorboard'), 'a-file');
    fs.writeFileSync(blocker, '');
    const cb = ck.callbacks.tensorBoard(path.join(blocker, 'logs'));
    await expect(cb.onTrainBegin()).rejects.toThrow(ck.IOError);
  });

  test('convkit train --tensorboard DIR, and --resume writing on into the same folder', async () => {
    ensureBuilt();
    const root = tmpDir('tensorboard-cli');
    const run = path.join(root, 'run'), logDir = path.join(root, 'tb');
    const first = await runCli(['train', 'mnist', '--train-limit', '300', '--test-limit', '50', '--epochs', '1', '--seed', '3', '--out', run, '--tensorboard', logDir, '--json']);
    expect(first.code).toBe(0);
    const second = await runCli(['train', '--resume', run, '--epochs', '2', '--json']);
    expect(second.code).toBe(0);
    const losses = [first, second].flatMap((r) => jsonLines(r.stdout).filter((l) => l.type === 'epoch').map((l) => l.loss as number));
    expect(losses.length).toBe(2);
    const train = eventsIn(path.join(logDir, 'train'), 2);
    expect(scalars(train, 'epoch_loss').map(([step]) => step)).toEqual([0, 1]);
    scalars(train, 'epoch_loss').forEach(([, v], e) => expect(v).toBeCloseTo(losses[e], 4));
    expect(train.filter((e) => e.values.some((v) => v.tag === 'keras')).length).toBe(2);
  });
});
