// lib/'s modules form layers with no import cycle (type-only imports included): layers/ below
// io/ below models/, io/load.ts above them (docs/architecture.md). And no lib module is loaded
// by require() or import() inside the code, the way round a cycle that once held io/, models/
// and layers/ together. Imports are read with the TypeScript compiler API, not run.
import { afterAll, describe, expect, test } from '@jest/globals';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ts from 'typescript';

const LIB = path.join(__dirname, '..', 'lib');

interface ModuleImport {
  /** The imported module, relative to the root. */
  target: string;
  /** How: an import or export statement (type-only too), an import('...') type, or a load at run time. */
  kind: 'static' | 'require' | 'import()';
  line: number;
  specifier: string;
}

function moduleFiles(root: string, dir = root): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return moduleFiles(root, p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [path.relative(root, p)] : [];
  });
}

/** The module a relative specifier names, as TypeScript resolves it (x.ts or x/index.ts), or null. */
function resolveModule(root: string, from: string, specifier: string): string | null {
  if (!specifier.startsWith('.')) return null;
  const base = path.resolve(root, path.dirname(from), specifier);
  for (const file of [`${base}.ts`, path.join(base, 'index.ts')]) {
    if (fs.existsSync(file) && !path.relative(root, file).startsWith('..')) return path.relative(root, file);
  }
  return null;
}

/** Every module of the root that `file` imports, however it names it. */
function moduleImports(root: string, file: string): ModuleImport[] {
  const source = ts.createSourceFile(file, fs.readFileSync(path.join(root, file), 'utf8'), ts.ScriptTarget.ES2022, true);
  const found: ModuleImport[] = [];
  const add = (literal: ts.Node | undefined, kind: ModuleImport['kind']) => {
    if (!literal || !ts.isStringLiteralLike(literal)) return;
    const target = resolveModule(root, file, literal.text);
    const line = source.getLineAndCharacterOfPosition(literal.getStart()).line + 1;
    if (target) found.push({ target, kind, line, specifier: literal.text });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node.moduleSpecifier, 'static');
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node.moduleReference.expression, 'static');
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal, 'static');
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) add(node.arguments[0], 'import()');
    else if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'require') {
      add(node.arguments[0], 'require');
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

function importGraph(root: string): Map<string, ModuleImport[]> {
  return new Map(moduleFiles(root).sort().map((f) => [f, moduleImports(root, f)]));
}

/**
 * One cycle per strongly connected set of modules (Tarjan), written 'a.ts -> b.ts -> a.ts' from
 * the set's first module by name, followed by the whole set where the cycle leaves some out.
 */
function importCycles(graph: Map<string, ModuleImport[]>): string[] {
  const next = (f: string) => [...new Set((graph.get(f) ?? []).map((i) => i.target))];
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const components: string[][] = [];
  const connect = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    for (const w of next(v)) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (stack.includes(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component = stack.splice(stack.indexOf(v));
      if (component.length > 1 || next(v).includes(v)) components.push(component.sort());
    }
  };
  for (const f of graph.keys()) if (!index.has(f)) connect(f);
  // The shortest way from the component's first module back to itself, inside the component.
  return components.map((component) => {
    const start = component[0];
    const cameFrom = new Map<string, string>();
    const queue = [start];
    while (queue.length > 0 && !cameFrom.has(start)) {
      const v = queue.shift()!;
      for (const w of next(v)) {
        if (component.includes(w) && !cameFrom.has(w)) {
          cameFrom.set(w, v);
          queue.push(w);
        }
      }
    }
    const cycle = [start];
    for (let v = cameFrom.get(start)!; v !== start; v = cameFrom.get(v)!) cycle.unshift(v);
    const way = [start, ...cycle].join(' -> ');
    return cycle.length < component.length ? `${way} (one of the cycles tying ${component.join(', ')})` : way;
  }).sort();
}

/** Modules of the root loaded by require() or import() rather than imported: 'file:line require(x)'. */
function lateLoads(graph: Map<string, ModuleImport[]>): string[] {
  return [...graph].flatMap(([file, imports]) => imports
    .filter((i) => i.kind !== 'static')
    .map((i) => `${file}:${i.line} ${i.kind === 'require' ? 'require' : 'import'}('${i.specifier}')`));
}

describe('lib/ module graph', () => {
  const graph = importGraph(LIB);

  test('has no import cycle, type-only imports included', () => {
    expect(importCycles(graph)).toEqual([]);
  });

  test('loads none of its modules by require() or import(): each is imported at the top', () => {
    expect(lateLoads(graph)).toEqual([]);
  });

  test('is read in full: the package entry imports each folder, models import io to save, io/load imports models', () => {
    const targets = (f: string) => graph.get(f)!.map((i) => i.target);
    expect(targets('index.ts')).toEqual(expect.arrayContaining(['layers/index.ts', 'models/sequential.ts', 'io/load.ts', 'data/index.ts']));
    expect(targets('models/layers-model.ts')).toContain('io/files.ts');
    expect(targets('io/load.ts')).toEqual(expect.arrayContaining(['models/sequential.ts', 'models/functional.ts']));
  });
});

describe('the checker, on modules written for it', () => {
  const roots: string[] = [];
  afterAll(() => roots.forEach((r) => fs.rmSync(r, { recursive: true, force: true })));
  const graphOf = (files: Record<string, string>) => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-imports-'));
    roots.push(root);
    for (const [file, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
      fs.writeFileSync(path.join(root, file), text);
    }
    return importGraph(root);
  };
  // One cycle whose every step names its module another way: an import, an export-from of a
  // folder's index, a type-only import and an import('...') type.
  const cycle = {
    'a.ts': "import { c } from './b';\nexport interface X { n: number }\nexport const a = c;\n",
    'b.ts': "export { c } from './sub';\n",
    'sub/index.ts': "import type { A } from '../d';\nexport const c: A | 1 = 1;\n",
    'd.ts': "export type A = import('./a').X;\n",
  };
  const chord = { 'e.ts': "import './a';\nimport './d';\n", 'b.ts': "import './e';\nexport { c } from './sub';\n" };

  test('finds each cycle, whichever way each step names its module', () => {
    expect(importCycles(graphOf({ ...cycle, 'self.ts': "import * as me from './self';\nexport const self = me;\n" })))
      .toEqual(['a.ts -> b.ts -> sub/index.ts -> d.ts -> a.ts', 'self.ts -> self.ts']);
  });

  test('names every module of a set tied by several cycles', () => {
    expect(importCycles(graphOf({ ...cycle, ...chord }))).toEqual([
      'a.ts -> b.ts -> e.ts -> a.ts (one of the cycles tying a.ts, b.ts, d.ts, e.ts, sub/index.ts)']);
  });

  test('finds no cycle once one step is gone', () => {
    expect(importCycles(graphOf({ ...cycle, 'd.ts': 'export type A = number;\n' }))).toEqual([]);
  });

  test('finds the modules loaded by require() and import(), and only those', () => {
    expect(lateLoads(graphOf({
      'a.ts': 'export const a = 1;\n',
      'late.ts': "import * as fs from 'fs';\nexport function f() {\n  return [require('./a'), require('fs'), require('../package.json'), fs];\n}\n" +
        "export const g = () => import('./a');\n",
    }))).toEqual(["late.ts:3 require('./a')", "late.ts:5 import('./a')"]);
  });
});
