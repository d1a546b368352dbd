// Fixtures for the CLI tests: a small generated image folder (synthetic shapes drawn as SVG and
// encoded by sharp), and a runner for the built CLI (node dist/cli/main.js).
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';

export const ROOT = path.join(__dirname, '..');
export const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI with the given arguments (never a TTY: plain lines, no live bar). */
export function runCli(args: string[], opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: opts.cwd ?? ROOT,
      env: { ...process.env, CONVKIT_THREADS: process.env.CONVKIT_THREADS ?? '2', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 110000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export function tmpDir(prefix = 'convkit-cli-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Deterministic numbers in [0, 1). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

export const SHAPE_CLASSES = ['circle', 'hstripes', 'vstripes'];

/** An SVG of one class: a filled circle, horizontal or vertical stripes, randomly placed and coloured. */
function shapeSvg(cls: string, size: number, rnd: () => number): string {
  const hue = Math.floor(rnd() * 360);
  const bg = `hsl(${(hue + 180) % 360}, 40%, ${20 + Math.floor(rnd() * 20)}%)`;
  const fg = `hsl(${hue}, 80%, ${60 + Math.floor(rnd() * 20)}%)`;
  const s = size;
  let body = '';
  if (cls === 'circle') {
    const r = s * (0.22 + rnd() * 0.12);
    const cx = r + rnd() * (s - 2 * r);
    const cy = r + rnd() * (s - 2 * r);
    body = `<circle cx="${cx}" cy="${cy}" r="${r}" fill="${fg}"/>`;
  } else {
    const n = 3 + Math.floor(rnd() * 2);
    const band = s / (2 * n);
    const off = rnd() * band;
    for (let i = 0; i < n; i++) {
      const at = off + i * 2 * band;
      body += cls === 'hstripes' ? `<rect x="0" y="${at}" width="${s}" height="${band}" fill="${fg}"/>` : `<rect x="${at}" y="0" width="${band}" height="${s}" fill="${fg}"/>`;
    }
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${s}" height="${s}"><rect width="${s}" height="${s}" fill="${bg}"/>${body}</svg>`;
}

export interface FolderSpec {
  perClass?: number;
  size?: number;
  classes?: string[];
  seed?: number;
}

/**
 * dir/<class>/*.png: `perClass` images of each class, `size` x `size`. One image in five is a
 * JPEG of another size and one in seven is greyscale, so loading must convert.
 */
export async function makeShapeFolder(dir: string, spec: FolderSpec = {}): Promise<string> {
  const perClass = spec.perClass ?? 30;
  const size = spec.size ?? 32;
  const rnd = lcg(spec.seed ?? 7);
  for (const cls of spec.classes ?? SHAPE_CLASSES) {
    fs.mkdirSync(path.join(dir, cls), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const odd = i % 5 === 4;
      const s = odd ? size + 16 : size;
      let img = sharp(Buffer.from(shapeSvg(cls, s, rnd)));
      if (i % 7 === 6) img = img.grayscale();
      const file = path.join(dir, cls, `${cls}_${String(i).padStart(3, '0')}.${odd ? 'jpg' : 'png'}`);
      await (odd ? img.jpeg({ quality: 90 }) : img.png()).toFile(file);
    }
  }
  return dir;
}

/** A file with an image's extension that is not an image. */
export function writeCorrupt(file: string): void {
  fs.writeFileSync(file, Buffer.from('this is not a PNG file, just text with a .png name\n'));
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** The CLI tests run dist/: rebuild it (tsc) when lib/ is newer. */
export function ensureBuilt(): void {
  const built = fs.existsSync(CLI) ? fs.statSync(CLI).mtimeMs : 0;
  if (built >= newestMtime(path.join(ROOT, 'lib'))) return;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { execFileSync } = require('child_process') as typeof import('child_process');
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(ROOT, 'tsconfig.json')], { stdio: 'inherit' });
}

/** Every stdout line parsed as JSON (fails on any line that is not). */
export function jsonLines(stdout: string): Record<string, any>[] {
  return stdout.split('\n').filter((l) => l.length > 0).map((l) => {
    try {
      return JSON.parse(l);
    } catch {
      throw new Error(`stdout line is not JSON: ${l.slice(0, 200)}`);
    }
  });
}

export async function pngSize(file: string): Promise<{ format?: string; width?: number; height?: number }> {
  const m = await sharp(file).metadata();
  return { format: m.format, width: m.width, height: m.height };
}

/** Expected size of a tileGrid: n tiles of th x tw at `scale`, 2 px gaps, about square. */
export function gridSize(n: number, th: number, tw: number, scale: number): { width: number; height: number } {
  const cols = Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / cols);
  return { width: cols * tw * scale + (cols + 1) * 2, height: rows * th * scale + (rows + 1) * 2 };
}
