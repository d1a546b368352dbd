// Helpers for the reliability tests: child processes (the built CLI or small scripts over dist/)
// that can be killed at chosen moments or run under resource limits, a seeded source of
// random moments, and the long-run switch (CONVKIT_LONG=1, `npm run test:long`).
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { CLI, ROOT } from './cli-fixtures';

/** `npm run test:long` sets CONVKIT_LONG=1: the same tests, many more rounds. */
export const LONG = process.env.CONVKIT_LONG === '1';

export const CHILDREN = path.join(__dirname, 'children');

/** Deterministic uniform numbers in [0, 1) (so a failing sequence of kill times can be replayed). */
export function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

export interface Child {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (null when killed) and signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once stdout holds a line matching `re` (rejects if the child exits first). */
  line(re: RegExp): Promise<string>;
}

export interface ChildOptions {
  env?: Record<string, string>;
  /** Resource limits set with the shell's ulimit before node starts: file size and address space in KiB. */
  limits?: { fileKiB?: number; memoryKiB?: number };
  /** Options for node itself (e.g. --expose-gc). */
  nodeOptions?: string[];
}

/** Runs `node <script> <args>` (a script path, or the CLI when script is 'cli'). */
export function startNode(script: string, args: string[], opts: ChildOptions = {}): Child {
  const file = script === 'cli' ? CLI : script;
  const node = [...(opts.nodeOptions ?? []), file];
  const env = { ...process.env, CONVKIT_THREADS: process.env.CONVKIT_THREADS ?? '2', ...opts.env };
  let proc: ChildProcess;
  if (opts.limits) {
    // bash's ulimit counts both limits in KiB
    const set = [opts.limits.fileKiB !== undefined ? `ulimit -f ${opts.limits.fileKiB}` : '', opts.limits.memoryKiB !== undefined ? `ulimit -v ${opts.limits.memoryKiB}` : '']
      .filter(Boolean).join(' && ');
    proc = spawn('bash', ['-c', `${set} && exec "$0" "$@"`, process.execPath, ...node, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  } else {
    proc = spawn(process.execPath, [...node, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  }
  let out = '';
  let err = '';
  const waiters: { re: RegExp; resolve: (l: string) => void; reject: (e: Error) => void }[] = [];
  const check = () => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      const hit = out.split('\n').find((l) => waiters[i].re.test(l));
      if (hit !== undefined) waiters.splice(i, 1)[0].resolve(hit);
    }
  };
  proc.stdout!.on('data', (d) => {
    out += d;
    check();
  });
  proc.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on('close', (code, signal) => {
      for (const w of waiters.splice(0)) w.reject(new Error(`child exited (${code ?? signal}) before printing ${w.re}; stderr: ${err.slice(-2000)}`));
      resolve({ code, signal });
    });
  });
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    exited,
    line: (re) => new Promise((resolve, reject) => {
      waiters.push({ re, resolve, reject });
      check();
      if (proc.exitCode !== null || proc.signalCode !== null) {
        const i = waiters.findIndex((w) => w.re === re);
        if (i >= 0) waiters.splice(i, 1)[0].reject(new Error(`child already exited; stderr: ${err.slice(-2000)}`));
      }
    }),
  };
}

/** Runs a child to its end; throws with its stderr unless it exits 0. */
export async function runToEnd(script: string, args: string[], opts: ChildOptions = {}): Promise<{ stdout: string; stderr: string }> {
  const c = startNode(script, args, opts);
  const { code, signal } = await c.exited;
  if (code !== 0) throw new Error(`${path.basename(script)} ${args.join(' ')} exited with ${code ?? signal}: ${c.stderr().slice(-3000)}`);
  return { stdout: c.stdout(), stderr: c.stderr() };
}

/** SIGKILLs the child after `ms` (if it is still running); resolves with whether the kill landed. */
export async function killAfter(child: Child, ms: number): Promise<boolean> {
  const timer = new Promise<'timer'>((r) => setTimeout(() => r('timer'), ms));
  const first = await Promise.race([timer, child.exited.then(() => 'exited' as const)]);
  if (first === 'exited') return false;
  child.proc.kill('SIGKILL');
  const { signal } = await child.exited;
  return signal === 'SIGKILL';
}

/** Names in a folder that a finished save would not leave (temporaries, a journal). */
export function leftovers(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n !== 'model.json' && n !== 'weights.bin' && n !== 'checkpoint');
}
