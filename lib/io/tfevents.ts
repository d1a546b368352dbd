// TensorBoard's event files, as TensorFlow writes them: a file of records (TFRecord framing:
// little-endian uint64 length, the masked CRC-32C of those 8 bytes, the payload, the masked
// CRC-32C of the payload), each payload an `Event` protobuf. The messages are encoded by
// protobufjs from the fields of TensorFlow's event.proto, summary.proto, tensor.proto and
// tensor_shape.proto (only the fields written here are declared; their numbers are the schema's).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as protobuf from 'protobufjs';
import { IOError } from '../errors';

const schema = protobuf.Root.fromJSON({
  nested: {
    tensorboard: {
      nested: {
        Event: {
          fields: {
            wallTime: { type: 'double', id: 1 },
            step: { type: 'int64', id: 2 },
            fileVersion: { type: 'string', id: 3 },
            summary: { type: 'Summary', id: 5 },
          },
        },
        Summary: {
          fields: { value: { rule: 'repeated', type: 'SummaryValue', id: 1 } },
        },
        SummaryValue: {
          fields: {
            tag: { type: 'string', id: 1 },
            simpleValue: { type: 'float', id: 2 },
            histo: { type: 'HistogramProto', id: 5 },
            tensor: { type: 'TensorProto', id: 8 },
            metadata: { type: 'SummaryMetadata', id: 9 },
          },
        },
        SummaryMetadata: {
          fields: { pluginData: { type: 'PluginData', id: 1 } },
        },
        PluginData: {
          fields: { pluginName: { type: 'string', id: 1 }, content: { type: 'bytes', id: 2 } },
        },
        HistogramProto: {
          fields: {
            min: { type: 'double', id: 1 },
            max: { type: 'double', id: 2 },
            num: { type: 'double', id: 3 },
            sum: { type: 'double', id: 4 },
            sumSquares: { type: 'double', id: 5 },
            bucketLimit: { rule: 'repeated', type: 'double', id: 6, options: { packed: true } },
            bucket: { rule: 'repeated', type: 'double', id: 7, options: { packed: true } },
          },
        },
        TensorProto: {
          fields: {
            dtype: { type: 'int32', id: 1 },
            tensorShape: { type: 'TensorShapeProto', id: 2 },
            stringVal: { rule: 'repeated', type: 'bytes', id: 8 },
          },
        },
        TensorShapeProto: { fields: {} },
      },
    },
  },
});
const EventType = schema.lookupType('tensorboard.Event');
const DT_STRING = 7;  // TensorFlow's DataType enum

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven.
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** TFRecord's masked CRC: rotated right by 15 bits plus a constant, so CRCs of CRCs stay strong. */
function maskedCrc32c(bytes: Uint8Array): number {
  const c = crc32c(bytes);
  return (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;
}

function record(payload: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + payload.length + 4);
  out.writeBigUInt64LE(BigInt(payload.length), 0);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(payload, 12);
  out.writeUInt32LE(maskedCrc32c(payload), 12 + payload.length);
  return out;
}

/** Counts of values in `buckets` equal-width buckets over [min, max], as tf.summary.histogram makes them. */
export interface Histogram {
  min: number;
  max: number;
  num: number;
  sum: number;
  sumSquares: number;
  bucketLimit: number[];
  bucket: number[];
}

/** The histogram of the finite values of `values` (NaN and infinities are left out of every field). */
export function histogramOf(values: ArrayLike<number>, buckets = 30): Histogram {
  let min = Infinity, max = -Infinity, num = 0, sum = 0, sumSquares = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) continue;
    if (v < min) min = v;
    if (v > max) max = v;
    num++;
    sum += v;
    sumSquares += v * v;
  }
  if (num === 0) return { min: 0, max: 0, num: 0, sum: 0, sumSquares: 0, bucketLimit: [], bucket: [] };
  if (min === max) return { min, max, num, sum, sumSquares, bucketLimit: [max], bucket: [num] };
  const width = (max - min) / buckets;
  const bucket = new Array<number>(buckets).fill(0);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isFinite(v)) bucket[Math.min(buckets - 1, Math.floor((v - min) / width))]++;
  }
  const bucketLimit = bucket.map((_, k) => (k === buckets - 1 ? max : min + (k + 1) * width));
  return { min, max, num, sum, sumSquares, bucketLimit, bucket };
}

let filesOpened = 0;

/**
 * One TensorBoard event file in `dir` (created if missing), named as TensorFlow names them so
 * TensorBoard finds it; every event is written through to the file at once.
 */
export class EventFileWriter {
  readonly file: string;
  private fd: number | null;

  constructor(dir: string, op: string) {
    const name = `events.out.tfevents.${Math.floor(Date.now() / 1000)}.${os.hostname()}.${process.pid}.${filesOpened++}.v2`;
    this.file = path.join(dir, name);
    try {
      fs.mkdirSync(dir, { recursive: true });
      this.fd = fs.openSync(this.file, 'w');
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new IOError(`${op}: cannot write the event file '${this.file}': ${err.message}`, err.code, this.file);
    }
    this.write({ fileVersion: 'brain.Event:2' }, 0);
  }

  private write(fields: Record<string, unknown>, step: number): void {
    if (this.fd === null) return;
    const event = EventType.fromObject({ wallTime: Date.now() / 1000, step, ...fields });
    fs.writeSync(this.fd, record(EventType.encode(event).finish()));
  }

  scalar(tag: string, value: number, step: number): void {
    this.write({ summary: { value: [{ tag, simpleValue: value }] } }, step);
  }

  histogram(tag: string, h: Histogram, step: number): void {
    this.write({ summary: { value: [{ tag, histo: h }] } }, step);
  }

  /** A model's Keras JSON config under the tag TensorBoard's graph dashboard reads ('keras'). */
  kerasModel(config: unknown, step: number): void {
    const json = Buffer.from(JSON.stringify(config));
    const metadata = { pluginData: { pluginName: 'graph_keras_model', content: Buffer.from('1') } };
    const tensor = { dtype: DT_STRING, tensorShape: {}, stringVal: [json] };
    this.write({ summary: { value: [{ tag: 'keras', metadata, tensor }] } }, step);
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}
