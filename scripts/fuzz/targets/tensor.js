// Tensor creation and movement from hostile values and shapes: ck.tensor (typed arrays, nested
// arrays that are ragged, deep or contain themselves), fill/zeros/ones with huge, negative or
// fractional shapes, reshape, to(device), array(), toCategorical, and tensors whose wrapped
// Float32Array has been transferred away.
'use strict';
const { hostileNumber, hostileShape, hostileValue, nested, cyclic } = require('../values');

function values(rng) {
  switch (rng.int(0, 9)) {
    case 0: return new Float32Array(rng.int(0, 24)).map(() => rng.float());
    case 1: return Array.from({ length: rng.int(0, 6) }, () => hostileNumber(rng));
    case 2: return Array.from({ length: rng.int(1, 3) }, () => Array.from({ length: rng.int(1, 3) }, () => rng.float()));
    case 3: return [[1, 2], [3]];
    case 4: return nested(rng.pick([9, 40, 5000, 100000]), 1);
    case 5: return cyclic(rng);
    case 6: return new (rng.pick([Int8Array, Uint8Array, Int32Array, Float64Array, Uint8ClampedArray, BigInt64Array]))(rng.int(0, 8));
    case 7: return new DataView(new ArrayBuffer(8));
    case 8: return new Float32Array(new SharedArrayBuffer(16));
    default: return hostileValue(rng);
  }
}

module.exports = {
  name: 'tensor',
  async run(rng, ctx) {
    const { ck } = ctx;
    const what = rng.pick(['tensor', 'fill', 'reshape', 'to', 'array', 'toCategorical', 'transferred']);
    ctx.note(what);
    switch (what) {
      case 'tensor': {
        const v = values(rng);
        const t = rng.chance(0.5) ? ck.tensor(v) : ck.tensor(v, rng.chance(0.5) ? hostileShape(rng) : [rng.int(0, 4), rng.int(0, 4)]);
        await t.data();
        return `tensor -> [${t.shape}]`;
      }
      case 'fill': {
        let shape = rng.chance(0.7) ? hostileShape(rng) : [rng.int(0, 5)];
        // A valid shape of up to 2^31-1 elements may legitimately be allocated: keep to shapes
        // that are small or that convkit must refuse before allocating.
        const valid = Array.isArray(shape) && shape.length <= 8 && shape.every((d) => Number.isInteger(d) && d >= 0);
        if (valid && shape.reduce((a, b) => a * b, 1) > 1 << 22) shape = [...shape, 2 ** 31];
        const fn = rng.pick(['zeros', 'ones', 'fill']);
        const t = fn === 'fill' ? ck.fill(shape, rng.chance(0.5) ? hostileNumber(rng) : 1) : ck[fn](shape);
        t.dataSync();
        return `${fn}(${JSON.stringify(shape)})`;
      }
      case 'reshape': {
        const t = ck.ones([rng.int(1, 4), rng.int(1, 4)]);
        if (rng.chance(0.1)) t.dispose();
        const shape = rng.chance(0.6) ? hostileShape(rng) : [-1, rng.int(1, 4)];
        await t.reshape(shape).data();
        return `reshape(${JSON.stringify(shape)})`;
      }
      case 'to': {
        const t = ck.ones([2]);
        if (rng.chance(0.2)) t.dispose();
        const dev = rng.pick(['cpu', 'cuda', 'gpu', hostileValue(rng)]);
        await t.to(dev).data();
        return `to(${String(dev)})`;
      }
      case 'array': {
        const t = ck.tensor(new Float32Array(rng.int(0, 12)), undefined);
        const r = await (rng.chance(0.5) ? t.reshape([-1, 1]) : t).array();
        return `array -> ${Array.isArray(r) ? r.length : typeof r}`;
      }
      case 'toCategorical': {
        const labels = rng.chance(0.5) ? ck.tensor(Float32Array.from({ length: rng.int(0, 6) }, () => (rng.chance(0.8) ? rng.int(0, 4) : hostileNumber(rng)))) : values(rng);
        const n = rng.chance(0.5) ? undefined : rng.chance(0.5) ? rng.int(1, 6) : hostileNumber(rng);
        const t = ck.toCategorical(labels, n);
        await t.data();
        return `toCategorical(${n}) -> [${t.shape}]`;
      }
      default: {
        // The Float32Array a tensor wraps is transferred (its buffer detached); the storage
        // it moved to may then be collected. Ops on the tensor must refuse it.
        const data = new Float32Array(rng.int(1, 64)).fill(1);
        const t = ck.tensor(data, [data.length]);
        const moved = [structuredClone(data.buffer, { transfer: [data.buffer] })];
        if (rng.chance(0.5)) new Float32Array(moved[0]).fill(2);
        else {
          moved.pop();  // the new owner of the tensor's memory is garbage: it is freed
          if (global.gc) global.gc();
        }
        const op = rng.pick(['relu', 'sgdUpdate', 'dataSync', 'reshape']);
        if (op === 'dataSync') t.dataSync();
        else if (op === 'reshape') await t.reshape([-1]).data();
        else if (op === 'relu') await ck.ops.relu(t).data();
        else {
          ck.ops.sgdUpdate(t, ck.ones([data.length]), { learningRate: 0.5 });
          await ck.ones([1]).data();
        }
        return `transferred, then ${op}`;
      }
    }
  },
};
