// Which addon file lib/native.ts loads: node-gyp-build's choice (local build, else the prebuild
// for this platform and architecture), never a glibc prebuild on a musl host (simulated here: the
// C library is a parameter), and a DeviceError that says how to build when nothing fits.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ConvkitError, DeviceError } from '../lib/errors';
import { addonFile, hostLibc } from '../lib/native';

const tuple = `${process.platform}-${process.arch}`;
let pkg: string;

/** A package directory holding empty files at the given paths (resolving never loads them). */
function makePackage(files: string[]): string {
  const dir = fs.mkdtempSync(path.join(pkg, 'p-'));
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'convkit', version: '0.0.0' }));
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), '');
  }
  return dir;
}

beforeAll(() => {
  pkg = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-loader-'));
});
afterAll(() => fs.rmSync(pkg, { recursive: true, force: true }));

describe('hostLibc', () => {
  test('a report naming a glibc runtime is glibc; one without it is musl', () => {
    expect(hostLibc('linux', () => ({ header: { glibcVersionRuntime: '2.36' } }))).toBe('glibc');
    expect(hostLibc('linux', () => ({ header: { osName: 'Linux' } }))).toBe('musl');
  });

  test('off Linux there is no libc to tell, and the report is not made', () => {
    const report = jest.fn(() => ({ header: {} }));
    expect(hostLibc('darwin', report)).toBeNull();
    expect(hostLibc('win32', report)).toBeNull();
    expect(report).not.toHaveBeenCalled();
  });

  test('on this machine it agrees with getconf GNU_LIBC_VERSION (glibc answers, musl has no such name)', () => {
    if (process.platform !== 'linux') {
      expect(hostLibc()).toBeNull();
      return;
    }
    const getconf = spawnSync('getconf', ['GNU_LIBC_VERSION'], { encoding: 'utf8' });
    const glibc = getconf.status === 0 && getconf.stdout.startsWith('glibc');
    expect(hostLibc()).toBe(glibc ? 'glibc' : 'musl');
  });
});

describe('addonFile', () => {
  const glibcPrebuild = path.join('prebuilds', tuple, 'convkit.glibc.node');
  const otherArch = path.join('prebuilds', `${process.platform}-${process.arch === 'arm64' ? 'x64' : 'arm64'}`, 'convkit.glibc.node');

  test('on glibc the prebuild for this platform and architecture is chosen, not another architecture\'s', () => {
    const dir = makePackage([otherArch, glibcPrebuild]);
    expect(addonFile(dir, () => 'glibc')).toBe(path.join(dir, glibcPrebuild));
  });

  test('on musl the glibc prebuild is refused with a DeviceError that gives the source build', () => {
    const dir = makePackage([glibcPrebuild]);
    const load = () => addonFile(dir, () => 'musl');
    expect(load).toThrow(DeviceError);
    expect(load).toThrow(ConvkitError);
    expect(load).toThrow(`the prebuilt addon ${glibcPrebuild} is built against glibc and this Node runs on musl (${tuple})`);
    expect(load).toThrow('apk add build-base cmake python3');
  });

  test('a prebuild without a libc tag counts as glibc on musl', () => {
    const untagged = path.join('prebuilds', tuple, 'convkit.node');
    expect(() => addonFile(makePackage([untagged]), () => 'musl')).toThrow(DeviceError);
  });

  test('on musl a source build in build/Release wins, and the C library is not asked', () => {
    const dir = makePackage([glibcPrebuild, path.join('build', 'Release', 'convkit.node')]);
    const libc = jest.fn(() => 'musl' as const);
    expect(addonFile(dir, libc)).toBe(path.join(dir, 'build', 'Release', 'convkit.node'));
    expect(libc).not.toHaveBeenCalled();
  });

  test('on musl a prebuild tagged musl is taken', () => {
    const musl = path.join('prebuilds', tuple, 'convkit.musl.node');
    const dir = makePackage([musl]);
    expect(addonFile(dir, () => 'musl', () => path.join(dir, musl))).toBe(path.join(dir, musl));
  });

  test('no build and no prebuild for this architecture is a DeviceError naming the target and the way out', () => {
    const dir = makePackage([otherArch]);
    const load = () => addonFile(dir, () => 'glibc');
    expect(load).toThrow(DeviceError);
    expect(load).toThrow(`convkit: no native addon for ${tuple} in ${dir}`);
    expect(load).toThrow('No native build was found');
    expect(load).toThrow('npm rebuild convkit');
  });
});
