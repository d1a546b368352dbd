// The default thread count is the CPUs this process may run on: the affinity mask (taskset),
// capped by a cgroup CPU quota (a container's CPU limit); CONVKIT_THREADS overrides both, and
// `convkit info --json` says which set it. Each case runs a child process placed accordingly.
import { afterAll, describe, expect, test } from '@jest/globals';
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const cli = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
const cpus = os.availableParallelism();

/** `convkit info --json`'s cpu entry, run through `prefix` (e.g. taskset) with `env`. */
function cpuInfo(prefix: string[], env: NodeJS.ProcessEnv = {}): { threads: number; threadsFrom: string } {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (!('CONVKIT_THREADS' in env)) delete childEnv.CONVKIT_THREADS;
  const [cmd, ...args] = [...prefix, process.execPath, cli, 'info', '--json'];
  const { threads, threadsFrom } = JSON.parse(execFileSync(cmd, args, { env: childEnv, encoding: 'utf8' })).cpu;
  return { threads, threadsFrom };
}

const hasTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0;

/** A cgroup limited to one CPU that this (root) process can move a child into, or why not. */
function oneCpuCgroup(): { procs: string; remove: () => void } | string {
  const name = `convkit-test-${process.pid}`;
  const v1 = '/sys/fs/cgroup/cpu';
  const v2 = '/sys/fs/cgroup';
  try {
    if (fs.existsSync(path.join(v1, 'cpu.cfs_quota_us'))) {
      const dir = path.join(v1, name);
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'cpu.cfs_period_us'), '100000');
      fs.writeFileSync(path.join(dir, 'cpu.cfs_quota_us'), '100000');
      return { procs: path.join(dir, 'cgroup.procs'), remove: () => fs.rmdirSync(dir) };
    }
    if (fs.readFileSync(path.join(v2, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('cpu')) {
      const dir = path.join(v2, name);
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'cpu.max'), '100000 100000');
      return { procs: path.join(dir, 'cgroup.procs'), remove: () => fs.rmdirSync(dir) };
    }
    return 'no cgroup CPU controller here';
  } catch (e) {
    return `cannot make a cgroup here (${(e as Error).message})`;
  }
}

describe('default thread count', () => {
  test('CONVKIT_THREADS wins', () => {
    expect(cpuInfo([], { CONVKIT_THREADS: '3' })).toEqual({ threads: 3, threadsFrom: 'CONVKIT_THREADS' });
  });

  const tasksetWhy = !hasTaskset ? 'taskset is not installed' : cpus < 2 ? 'this machine has one CPU' : '';
  (tasksetWhy ? test.skip : test)(`taskset -c 0: one thread, from the affinity mask${tasksetWhy ? ` (skipped: ${tasksetWhy})` : ''}`, () => {
    expect(cpuInfo(['taskset', '-c', '0'])).toEqual({ threads: 1, threadsFrom: 'CPU affinity mask' });
  });

  const cgroup = cpus >= 2 ? oneCpuCgroup() : 'this machine has one CPU';
  afterAll(() => {
    if (typeof cgroup !== 'string') cgroup.remove();
  });
  (typeof cgroup === 'string' ? test.skip : test)(
    `a cgroup quota of one CPU: one thread, from the quota${typeof cgroup === 'string' ? ` (skipped: ${cgroup})` : ''}`,
    () => {
      if (typeof cgroup === 'string') return;
      // the shell moves itself into the cgroup, then becomes node
      expect(cpuInfo(['sh', '-c', `echo $$ > ${cgroup.procs} && exec "$0" "$@"`])).toEqual({ threads: 1, threadsFrom: 'cgroup CPU quota' });
    },
  );

  test('otherwise: every CPU the process may use (fewer only under a cgroup quota)', () => {
    const info = cpuInfo([]);
    if (info.threadsFrom === 'cgroup CPU quota') expect(info.threads).toBeLessThan(cpus);
    else expect(info).toEqual({ threads: Math.min(cpus, 256), threadsFrom: expect.stringMatching(/^CPU (count|affinity mask)$/) });
  });
});
