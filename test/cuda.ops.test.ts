// CUDA tensors through the public API. With a usable GPU: CPU-vs-GPU parity of every op and
// gradient (random shapes, odd sizes, 1x1 images) and the device semantics (to() round trips,
// data()/dataSync(), mixed-device DeviceErrors, memory figures, out-of-memory recovery), from
// scripts/gpu-parity.js (which also runs them without jest on a GPU host). Without one (this
// machine, CI): that ck.devices() lists no CUDA device and to('cuda') throws a DeviceError giving
// ck.cudaStatus()'s reason, and every parity case is listed as skipped under a title giving that
// reason. The shapes of ck.devices() and ck.memory() are checked either way.
import { afterEach, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as ck from '../lib';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const parity = require('../scripts/gpu-parity.js') as {
  buildCases(lib: typeof ck, opts?: { quick?: boolean; oom?: boolean }): { name: string; run(): Promise<unknown> }[];
  noCudaChecks(lib: typeof ck): { reason: string; problems: string[] };
};

const status = ck.cudaStatus();

describe('devices() and memory()', () => {
  test('devices(): the CPU first, then one entry per CUDA GPU', () => {
    const devices = ck.devices();
    expect(devices[0]).toEqual({ type: 'cpu', isa: expect.stringMatching(/^(scalar|avx2|avx512|neon)$/), threads: expect.any(Number) });
    const gpus = devices.slice(1) as ck.CudaDevice[];
    expect(gpus.length).toBe(status.devices.length);
    gpus.forEach((d, i) => {
      expect(d).toEqual({
        type: 'cuda', index: i, name: expect.any(String), memoryBytes: expect.any(Number),
        computeCapability: expect.stringMatching(/^\d+\.\d+$/), multiprocessors: expect.any(Number),
      });
      expect(d.memoryBytes).toBeGreaterThan(0);
    });
  });

  test('cudaStatus(): available with devices, or unavailable with a reason', () => {
    expect(typeof status.available).toBe('boolean');
    if (status.available) {
      expect(status.reason).toBeNull();
      expect(status.devices.length).toBeGreaterThan(0);
    } else {
      expect(status.reason).toEqual(expect.any(String));
      expect(status.reason!.length).toBeGreaterThan(0);
      expect(status.devices).toEqual([]);
    }
  });

  test('memory(): host and device figures, all non-negative numbers', () => {
    const m = ck.memory();
    for (const key of ['hostBytes', 'hostAllocations', 'hostPeakBytes', 'deviceBytes', 'deviceAllocations',
      'deviceCachedBytes', 'devicePeakBytes', 'pinnedCachedBytes'] as const) {
      expect(typeof m[key]).toBe('number');
      expect(m[key]).toBeGreaterThanOrEqual(0);
    }
    if (!status.available) {
      expect([m.deviceBytes, m.deviceAllocations, m.deviceCachedBytes, m.devicePeakBytes, m.pinnedCachedBytes]).toEqual([0, 0, 0, 0, 0]);
    }
  });

  test('tensors made here are on the default device (cpu unless CONVKIT_DEVICE says otherwise)', () => {
    expect(ck.defaultDevice()).toBe(process.env.CONVKIT_DEVICE === 'cuda' ? 'cuda' : 'cpu');
    expect(ck.zeros([2]).to('cpu').device).toBe('cpu');
  });
});

describe('why CUDA is unavailable, in words a user can act on', () => {
  // The CUDA runtime calls a machine without the NVIDIA driver "driver version is insufficient".
  const noDriverHere = !status.available && !fs.existsSync('/proc/driver/nvidia/version');
  const driverSkip = noDriverHere ? '' : ` (skipped: ${status.available ? 'CUDA is available here' : 'this machine has an NVIDIA driver'})`;
  (noDriverHere ? test : test.skip)(`no NVIDIA driver on this machine: "no NVIDIA driver or GPU found", the runtime's text as detail${driverSkip}`, () => {
    expect(status.reason).toMatch(/^no NVIDIA driver or GPU found \(CUDA runtime: .+\)$/);
  });

  // The emulator plays a machine without a driver, and one with an old driver (CK_EMU_DRIVER).
  const emulated = status.devices[0]?.name === 'convkit CUDA emulator (host)';
  const reasonUnder = (driver: string): string => execFileSync(process.execPath, ['-e',
    "process.stdout.write(String(require('./dist').cudaStatus().reason))"], {
    cwd: path.join(__dirname, '..'), env: { ...process.env, CK_EMU_DRIVER: driver }, encoding: 'utf8',
  });
  (emulated ? test : test.skip)(`emulated: no driver, and a driver older than the runtime${emulated ? '' : ' (skipped: not the CUDA emulator\'s addon)'}`, () => {
    expect(reasonUnder('none')).toBe('no NVIDIA driver or GPU found (CUDA runtime: CUDA driver version is insufficient for CUDA runtime version)');
    expect(reasonUnder('old')).toBe('the NVIDIA driver supports CUDA 11.8, older than the CUDA 13.0 convkit was built with: update the driver (CUDA runtime: CUDA driver version is insufficient for CUDA runtime version)');
  });
});

// The parity cases are registered with or without a GPU (buildCases needs none: its probes run on
// the CPU), so a run without CUDA lists each as skipped, under a title that says why.
// CONVKIT_GPU_PARITY_OOM=0 (scripts/cuda-emu.js) leaves out filling the device's memory.
const parityCases = parity.buildCases(ck, { oom: process.env.CONVKIT_GPU_PARITY_OOM !== '0' });
const gpuNames = status.devices.map((d) => d.name).join(', ');
describe(status.available ? `CUDA parity on ${gpuNames}` : `CUDA parity (skipped: no usable CUDA device here: ${status.reason})`, () => {
  for (const c of parityCases) {
    (status.available ? test : test.skip)(c.name, async () => {
      await c.run();
    });
  }
});

(status.available ? describe.skip : describe)(status.available
  ? `without CUDA (skipped: CUDA is available here, on ${gpuNames})`
  : `no usable CUDA device here (${status.reason}): GPU parity not run`, () => {
  const saved = process.env.CONVKIT_DEVICE;
  afterEach(() => {
    if (saved === undefined) delete process.env.CONVKIT_DEVICE;
    else process.env.CONVKIT_DEVICE = saved;
  });

  test("devices() lists no CUDA device and to('cuda') throws DeviceError with the reason", () => {
    const { problems } = parity.noCudaChecks(ck);
    expect(problems).toEqual([]);
    expect(() => ck.ones([2]).to('cuda')).toThrow(ck.DeviceError);
    expect(() => ck.ones([2]).to('cuda')).toThrow(`to('cuda'): CUDA is unavailable: ${status.reason}`);
  });

  test('CONVKIT_DEVICE=cuda makes tensor()/zeros() throw DeviceError with the reason; cpu is the default', () => {
    process.env.CONVKIT_DEVICE = 'cuda';
    expect(() => ck.tensor([1, 2, 3])).toThrow(ck.DeviceError);
    expect(() => ck.zeros([2, 2])).toThrow(`fill: CONVKIT_DEVICE=cuda, but to('cuda'): CUDA is unavailable: ${status.reason}`);
    process.env.CONVKIT_DEVICE = 'cpu';
    expect(ck.tensor([1, 2, 3]).device).toBe('cpu');
    process.env.CONVKIT_DEVICE = 'tpu';
    expect(() => ck.tensor([1])).toThrow(ck.ValueError);
  });
});
