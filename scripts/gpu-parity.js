#!/usr/bin/env node
// CPU-vs-GPU parity of every op and gradient of ck.ops through the public API (the cases of
// scripts/op-table.js: random shapes, odd sizes, 1x1 images), plus the device semantics of CUDA tensors: to() round trips, data() /
// dataSync(), mixed-device errors, memory figures and out-of-memory recovery. Without a usable
// GPU it checks instead that ck.devices() lists no CUDA device and that to('cuda') throws a
// DeviceError giving the reason.
//
// Used two ways: test/cuda.ops.test.ts runs each case as a jest test, and on a GPU host without
// jest (see docs/gpu.md):
//   CONVKIT_ADDON=build-gpu/Release/convkit.node node scripts/gpu-parity.js [--quick] [--no-oom]
// which loads ../dist and prints "N passed, N failed".
'use strict';

// ---- numbers ----

const { compare, opCases, Rng } = require('./op-table');

// ---- cases ----

/**
 * The parity and semantics cases: [{ name, run: async () => void }] (run throws on a mismatch).
 * Needs a usable CUDA device.
 */
function buildCases(ck, { seed = 1234, quick = false, oom = true } = {}) {
  const rng = new Rng(seed + 1);
  const cases = [];
  const add = (name, run) => cases.push({ name, run });

  // One op on CPU tensors and on copies of them on the GPU; the tensors compared are what fn
  // returns (a Tensor, an object of Tensors, or in-place state).
  const parity = (name, inputs, fn, tol = {}) => add(name, async () => {
    const cpu = inputs.map(({ data, shape }) => ck.tensor(data.slice(), shape).to('cpu'));
    const gpu = cpu.map((t) => t.to('cuda'));
    for (const t of gpu) if (t.device !== 'cuda') throw new Error(`${name}: to('cuda') gave a ${t.device} tensor`);
    const outC = fn(...cpu);
    const outG = fn(...gpu);
    const asMap = (o) => (o instanceof ck.Tensor ? { out: o } : o);
    const mc = asMap(outC);
    const mg = asMap(outG);
    for (const key of Object.keys(mc)) {
      const tc = mc[key];
      const tg = mg[key];
      if (!(tg instanceof ck.Tensor)) throw new Error(`${name}: ${key} missing on the GPU`);
      if (tg.device !== 'cuda') throw new Error(`${name}: ${key} is on ${tg.device}, expected cuda`);
      if (tg.shape.join() !== tc.shape.join()) throw new Error(`${name}: ${key} shape [${tg.shape}] vs [${tc.shape}]`);
      const t = typeof tol === 'function' ? tol(key) : tol;
      compare(`${name}: ${key}`, await tg.data(), await tc.data(), t);
    }
    for (const t of [...cpu, ...gpu]) t.dispose();
  });

  for (const c of opCases(ck, { seed, quick })) parity(c.name, c.inputs, c.run, c.tol);
  add('activations on an empty tensor', async () => {
    const x = ck.tensor(new Float32Array(0), [0, 3]).to('cuda');
    const y = ck.ops.relu(x);
    if (y.device !== 'cuda' || y.shape.join() !== '0,3' || (await y.data()).length !== 0) throw new Error('bad empty relu');
  });

  // ---- device semantics ----
  add("to('cuda') and back is exact; data() and dataSync() agree", async () => {
    const values = rng.floats(12345, -1e6, 1e6);
    const x = ck.tensor(values, [12345]).to('cpu');
    const g = x.to('cuda');
    if (g.device !== 'cuda' || g.to('cuda') !== g) throw new Error('to(cuda) of a cuda tensor should be itself');
    const back = g.to('cpu');
    if (back.device !== 'cpu') throw new Error('to(cpu) gave a cuda tensor');
    compare('round trip', await back.data(), values, { exact: true });
    compare('data()', await g.data(), values, { exact: true });
    compare('dataSync()', g.dataSync(), values, { exact: true });
    // A CPU op on the copy, then back to the GPU: the copies order after the ops that make them.
    const r = ck.ops.relu(back).to('cuda');
    compare('relu round trip', await r.data(), values.map((v) => Math.max(v, 0)), { exact: true });
  });
  add('to() copies the values as of the call, before later in-place updates on either side', async () => {
    const values = rng.floats(4099);
    const x = ck.tensor(values.slice(), [4099]).to('cpu');
    const g = x.to('cuda');
    ck.ops.sgdUpdate(x, ck.ones([4099]).to('cpu'), { learningRate: 1 });  // x -= 1 on the CPU
    const c = g.to('cpu');
    ck.ops.sgdUpdate(g, ck.ones([4099]).to('cuda'), { learningRate: 1 });  // g -= 1 on the GPU
    compare('uploaded', await c.data(), values, { exact: true });
    compare('updated on the GPU', await g.data(), await x.data(), { exact: true });
  });
  add('a chain of ops stays on the GPU and matches the CPU', async () => {
    const x = ck.tensor(rng.floats(2 * 9 * 9 * 3), [2, 9, 9, 3]).to('cpu');
    const w = ck.tensor(rng.floats(3 * 3 * 3 * 8), [3, 3, 3, 8]).to('cpu');
    const k = ck.tensor(rng.floats(4 * 4 * 8 * 10), [4 * 4 * 8, 10]).to('cpu');
    const run = (xx, ww, kk) => ck.ops.softmax(ck.ops.dense(ck.ops.maxPool2d(ck.ops.conv2d(xx, ww, { padding: 'same', activation: 'relu' })).reshape([2, -1]), kk));
    const c = run(x, w, k);
    const g = run(x.to('cuda'), w.to('cuda'), k.to('cuda'));
    if (g.device !== 'cuda') throw new Error(`chain ended on ${g.device}`);
    compare('chain', await g.data(), await c.data(), { atol: 1e-5, rtol: 1e-4 });
  });
  add('mixed devices: DeviceError naming the op and the devices', async () => {
    const a = ck.ones([2, 3]).to('cpu');
    const b = a.to('cuda');
    const expectDeviceError = (fn, ...parts) => {
      try {
        fn();
      } catch (e) {
        if (!(e instanceof ck.DeviceError)) throw new Error(`expected DeviceError, got ${e && e.name}: ${e && e.message}`);
        for (const p of parts) if (!e.message.includes(p)) throw new Error(`message "${e.message}" lacks "${p}"`);
        return;
      }
      throw new Error('no error thrown');
    };
    expectDeviceError(() => ck.ops.mul(a, b), 'mul', 'a on cpu', 'b on cuda');
    expectDeviceError(() => ck.ops.dense(b, ck.ones([3, 2]).to('cpu')), 'dense', 'x on cuda', 'kernel on cpu');
    expectDeviceError(() => ck.ops.sgdUpdate(b, a), 'sgdUpdate', 'weights on cuda', 'gradient on cpu');
    expectDeviceError(() => ck.ops.concatenate([a, b]), 'concatenate', 'tensor 0 on cpu', 'tensor 1 on cuda');
    expectDeviceError(() => ck.ops.add(b, a), 'add', 'a on cuda', 'b on cpu');
    // The process is fine afterwards.
    compare('after', await ck.ops.mul(b, b).data(), new Float32Array(6).fill(1), { exact: true });
  });
  add('memory(): device bytes of live tensors, cached after dispose, emptyCache()', async () => {
    const bytes = 4 << 20;
    let last = '';
    for (let attempt = 0; attempt < 5; attempt++) {  // a GC finalizer may free other tensors meanwhile
      const before = ck.memory();
      const t = ck.ops.relu(ck.zeros([bytes / 4]).to('cuda'));
      await t.data();
      const live = ck.memory();
      t.dispose();
      const after = ck.memory();
      const grew = live.deviceBytes - before.deviceBytes;
      last = `live +${grew}, allocations +${live.deviceAllocations - before.deviceAllocations}, cached after dispose +${after.deviceCachedBytes - live.deviceCachedBytes}`;
      if (grew >= 2 * bytes && after.deviceCachedBytes >= live.deviceCachedBytes + bytes && after.deviceBytes <= live.deviceBytes - bytes &&
          live.devicePeakBytes >= live.deviceBytes) break;
      if (attempt === 4) throw new Error(`memory figures off: ${last}`);
    }
    ck.emptyCache();
    if (ck.memory().deviceCachedBytes !== 0) throw new Error('emptyCache() left cached bytes');
  });
  add('a model on the CPU refuses CUDA inputs with a DeviceError naming both devices', async () => {
    const model = ck.sequential([ck.layers.input({ shape: [3] }), ck.layers.dense({ units: 2 })]);
    try {
      model.predict(ck.ones([4, 3]).to('cuda'));
    } catch (e) {
      if (e instanceof ck.DeviceError && /cuda tensor but the model is on the cpu/.test(e.message)) return;
      throw e;
    }
    throw new Error('predict on a CUDA tensor did not throw');
  });
  if (oom) {
    add('out of device memory: DeviceError, and the process stays usable', async () => {
      const block = ck.zeros([1 << 28]).to('cuda');  // 1 GiB
      const held = [];
      let error = null;
      try {
        for (let i = 0; i < 4096; i++) held.push(ck.ops.relu(block));
      } catch (e) {
        error = e;
      }
      const n = held.length;
      for (const t of held) t.dispose();
      if (!(error instanceof ck.DeviceError) || !/out of memory/.test(error.message) || !/relu/.test(error.message)) {
        throw new Error(`expected an out-of-memory DeviceError from relu, got ${error && error.name}: ${error && error.message}`);
      }
      // The freed blocks are reused, and work still runs.
      const again = ck.ops.relu(block);
      compare('after OOM', (await ck.ops.mul(again, again).data()).subarray(0, 16), new Float32Array(16), { exact: true });
      again.dispose();
      block.dispose();
      ck.emptyCache();
      return `${n} x 1 GiB allocated before: ${error.message}`;
    });
  }
  return cases;
}

/** Without a usable GPU: the checks that CUDA reports itself unavailable, with a reason. */
function noCudaChecks(ck) {
  const status = ck.cudaStatus();
  const problems = [];
  if (status.available) problems.push('cudaStatus().available is true');
  if (typeof status.reason !== 'string' || status.reason.length === 0) problems.push('no reason given');
  if (status.devices.length !== 0) problems.push('cudaStatus() lists devices');
  const devices = ck.devices();
  if (devices.some((d) => d.type === 'cuda') || devices.length !== 1 || devices[0].type !== 'cpu') {
    problems.push(`devices() is ${JSON.stringify(devices)}`);
  }
  try {
    ck.ones([2]).to('cuda');
    problems.push("to('cuda') did not throw");
  } catch (e) {
    if (!(e instanceof ck.DeviceError)) problems.push(`to('cuda') threw ${e && e.name}`);
    else if (!e.message.includes(status.reason)) problems.push(`to('cuda') message "${e.message}" lacks the reason`);
  }
  return { reason: status.reason, problems };
}

module.exports = { buildCases, noCudaChecks, compare, Rng };

if (require.main === module) {
  (async () => {
    const path = require('path');
    const ck = require(path.join(__dirname, '..', 'dist'));
    const quick = process.argv.includes('--quick');
    const oom = !process.argv.includes('--no-oom');
    const status = ck.cudaStatus();
    console.log(`devices: ${JSON.stringify(ck.devices())}`);
    if (!status.available) {
      const { reason, problems } = noCudaChecks(ck);
      console.log(`CUDA unavailable (${reason}): checked that it says so`);
      problems.forEach((p) => console.log(`FAIL ${p}`));
      console.log(`${problems.length ? 0 : 1} passed, ${problems.length} failed`);
      process.exit(problems.length ? 1 : 0);
    }
    let passed = 0;
    let failed = 0;
    const t0 = Date.now();
    for (const c of buildCases(ck, { quick, oom })) {
      try {
        const note = await c.run();
        passed++;
        if (note) console.log(`ok   ${c.name}: ${note}`);
      } catch (e) {
        failed++;
        console.log(`FAIL ${c.name}: ${e && e.message}`);
      }
    }
    console.log(`memory: ${JSON.stringify(ck.memory())}`);
    console.log(`${passed} passed, ${failed} failed (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    process.exit(failed ? 1 : 0);
  })().catch((e) => {
    console.error(e);
    process.exit(2);
  });
}
