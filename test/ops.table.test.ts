// The op table (scripts/op-table.js) run two ways on the CPU (scripts/gpu-parity.js runs it a
// third, against CUDA):
//   - ISA parity: every case under each vector ISA this CPU has against the scalar reference
//     kernels, within the case's tolerance (bitwise where it says exact);
//   - gradients: every case with an `fd` entry against central finite differences of its forward
//     op, in float64 over the float32 outputs, at sampled elements of each input it
//     differentiates. Where the two step sizes disagree beyond rounding the element sits on a
//     kink (ReLU at 0, a max switching) and is not used; at least half must be usable.
import { afterAll, describe, expect, test } from '@jest/globals';
import * as ck from '../lib';

interface Input { data: Float32Array; shape: number[] }
type Outputs = ck.Tensor | Record<string, ck.Tensor>;
interface OpCase {
  name: string;
  inputs: Input[];
  run(...tensors: ck.Tensor[]): Outputs;
  tol: { atol?: number; rtol?: number; exact?: boolean };
  fd?: { forward?(...tensors: ck.Tensor[]): ck.Tensor; output?: string; dy?: number; wrt: Record<string, number> };
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const table = require('../scripts/op-table.js') as {
  opCases(lib: typeof ck, opts?: { seed?: number; quick?: boolean }): OpCase[];
  compare(what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: OpCase['tol']): void;
  Rng: new (seed: number) => { int(lo: number, hi: number): number };
};

const cases = table.opCases(ck);
const asMap = (o: Outputs): Record<string, ck.Tensor> => (o instanceof ck.Tensor ? { out: o } : o);
const tensorsOf = (c: OpCase): ck.Tensor[] => c.inputs.map(({ data, shape }) => ck.tensor(data.slice(), shape));

/** What a case computes, as plain arrays (in-place cases return the tensors they update). */
function outputsOf(c: OpCase): Record<string, Float32Array> {
  const out = asMap(c.run(...tensorsOf(c)));
  return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, t.dataSync()]));
}

const defaultIsa = ck.devices()[0].isa as ck.Isa;
const vectorIsas = (['avx2', 'avx512', 'neon'] as ck.Isa[]).filter((isa) => {
  try {
    ck.setIsa(isa);
    return true;
  } catch {
    return false;
  }
});
ck.setIsa(defaultIsa);
afterAll(() => ck.setIsa(defaultIsa));

describe(`ISA parity: ${vectorIsas.join(', ') || 'no vector ISA on this CPU'} against the scalar kernels`, () => {
  test('this CPU has a vector ISA to compare (x86-64 and aarch64 builds always have one)', () => {
    expect(vectorIsas.length).toBeGreaterThan(0);
  });
  for (const c of cases) {
    test(c.name, () => {
      ck.setIsa('scalar');
      const want = outputsOf(c);
      for (const isa of vectorIsas) {
        ck.setIsa(isa);
        const got = outputsOf(c);
        expect(Object.keys(got)).toEqual(Object.keys(want));
        for (const key of Object.keys(want)) table.compare(`${c.name} ${key} (${isa})`, got[key], want[key], c.tol);
      }
      ck.setIsa(defaultIsa);
    });
  }
});

/** L(inputs) in float64, and the sum of the magnitudes of its terms (what rounding scales with). */
function objective(c: OpCase, tensors: ck.Tensor[]): { value: number; magnitude: number } {
  const fd = c.fd!;
  if (fd.output) {
    const losses = asMap(c.run(...tensors))[fd.output].dataSync();
    let value = 0, magnitude = 0;
    for (const l of losses) {
      value += l / losses.length;
      magnitude += Math.abs(l) / losses.length;
    }
    return { value, magnitude };
  }
  const y = fd.forward!(...tensors).dataSync();
  const dy = c.inputs[fd.dy ?? 0].data;
  expect(y.length).toBe(dy.length);
  let value = 0, magnitude = 0;
  for (let i = 0; i < y.length; i++) {
    value += dy[i] * y[i];
    magnitude += Math.abs(dy[i] * y[i]);
  }
  return { value, magnitude };
}

const SAMPLES = 6;
const gradientCases = cases.filter((c) => c.fd);

describe('gradients against finite differences of the forward op', () => {
  test('the table differentiates every gradient op of ck.ops', () => {
    const gradOps = Object.keys(ck.ops).filter((k) => k.endsWith('Grad'));
    const covered = new Set(gradientCases.map((c) => c.name.split(' ')[0]));
    expect(gradOps.filter((k) => !covered.has(k))).toEqual([]);
  });
  for (const c of gradientCases) {
    test(c.name, () => {
      const analytic = outputsOf(c);
      const rng = new table.Rng(c.name.length * 7919 + c.inputs.length);
      let checked = 0, sampled = 0;
      for (const [key, k] of Object.entries(c.fd!.wrt)) {
        const base = c.inputs[k].data;
        const grad = analytic[key];
        expect(grad.length).toBe(base.length);
        for (let s = 0; s < Math.min(SAMPLES, base.length); s++) {
          const j = rng.int(0, base.length - 1);
          const x = base[j];
          // Central differences at steps h and h/2, over the perturbations float32 really makes.
          const estimate = (h: number) => {
            const at = (v: number) => {
              const tensors = tensorsOf(c);
              const data = tensors[k].dataSync().slice();
              data[j] = v;
              tensors[k] = ck.tensor(data, c.inputs[k].shape);
              return objective(c, tensors);
            };
            const up = Math.fround(x + h), down = Math.fround(x - h);
            const a = at(up), b = at(down);
            return { slope: (a.value - b.value) / (up - down), noise: 2e-6 * Math.max(a.magnitude, b.magnitude, 1e-3) / (up - down) };
          };
          const h = Math.max(1e-4, Math.min(1e-2, Math.abs(x) / 32));  // small beside x: log(p) near p = 0
          const wide = estimate(h), narrow = estimate(h / 2);
          const tol = 4 * narrow.noise + 2e-3 * (1 + Math.abs(grad[j]));
          sampled++;
          if (Math.abs(wide.slope - narrow.slope) > tol) continue;  // a kink within h of x
          checked++;
          if (!(Math.abs(grad[j] - narrow.slope) <= tol)) {
            throw new Error(`${c.name}: ${key}[${j}] = ${grad[j]}, finite differences ${narrow.slope} (tolerance ${tol.toExponential(2)})`);
          }
        }
      }
      expect(checked).toBeGreaterThanOrEqual(Math.ceil(sampled / 2));
    });
  }
});
