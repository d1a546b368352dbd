// ck.ops with bad arguments: every public op, called with argument lists built from its own
// template (tensors whose dims share letters, so most calls are nearly valid and reach the
// kernels), then damaged: a dim changed, a rank dropped, a tensor disposed or replaced by
// garbage, options with NaN, infinities, zero, negative or huge strides and windows. Outputs
// of calls that succeed are read back (so the kernels really ran), and sometimes the inputs
// are disposed while the op is still queued.
'use strict';
const { hostileNumber, hostileValue } = require('../values');

const IMG = ['N', 'H', 'W', 'C'];
const FILTER = ['R', 'S', 'C', 'K'];
const ANY = '*';  // a tensor of random rank over the letters A..D

// args: tensors by letters, 'dy:<op>' (the output of <op> with the same arguments: the shape a
// gradient wants) or ANY; opts: which options the op takes.
const TEMPLATES = {
  conv2d: { args: [IMG, FILTER], opts: 'conv' },
  conv2dGrad: { args: ['dy:conv2d', IMG, FILTER], opts: 'conv' },
  dense: { args: [['M', 'K'], ['K', 'U']], opts: 'dense' },
  denseGrad: { args: ['dy:dense', ['M', 'K'], ['K', 'U']] },
  maxPool2d: { args: [IMG], opts: 'pool' },
  maxPool2dGrad: { args: ['dy:maxPool2d', IMG], opts: 'pool' },
  avgPool2d: { args: [IMG], opts: 'pool' },
  avgPool2dGrad: { args: ['dy:avgPool2d', IMG], opts: 'pool' },
  globalAvgPool: { args: [IMG] },
  globalAvgPoolGrad: { args: ['dy:globalAvgPool', IMG] },
  globalMaxPool: { args: [IMG] },
  globalMaxPoolGrad: { args: ['dy:globalMaxPool', IMG] },
  relu: { args: [ANY] }, sigmoid: { args: [ANY] }, tanh: { args: [ANY] }, softmax: { args: [ANY] },
  reluGrad: { args: [ANY, ANY] }, sigmoidGrad: { args: [ANY, ANY] }, tanhGrad: { args: [ANY, ANY] },
  softmaxGrad: { args: [ANY, ANY] },
  leakyRelu: { args: [ANY], opts: 'alpha' }, elu: { args: [ANY], opts: 'alpha' },
  leakyReluGrad: { args: [ANY, ANY], opts: 'alpha' }, eluGrad: { args: [ANY, ANY], opts: 'alpha' },
  dropout: { args: [ANY], opts: 'dropout' },
  dropoutGrad: { args: [ANY, ANY] }, mul: { args: [ANY, ANY] },
  batchNorm: { args: [['B', 'C']], opts: 'bnInfer' },
  batchNormTrain: { args: [['B', 'C']], opts: 'bnTrain' },
  batchNormGrad: { args: [['B', 'C'], ['B', 'C']], opts: 'bnGrad' },
  softmaxCrossEntropy: { args: [['B', 'C'], 'labels'], opts: 'xent' },
  binaryCrossEntropy: { args: [['B', 'C'], ['B', 'C']], opts: 'bce' },
  meanSquaredError: { args: [['B', 'C'], ['B', 'C']] },
  sgdUpdate: { args: [['P'], ['P']], opts: 'sgd' },
  adamUpdate: { args: [['P'], ['P']], opts: 'adam' },
  rmspropUpdate: { args: [['P'], ['P']], opts: 'rmsprop' },
};

const rate = (rng) => rng.float() * 0.99;
const smallInt = (rng) => rng.int(1, 3);
const pairOf = (rng) => (rng.chance(0.5) ? smallInt(rng) : [smallInt(rng), smallInt(rng)]);
// Each option: [good value, or null to draw a tensor over these letters].
const OPTIONS = {
  conv: { strides: pairOf, padding: (r) => r.pick(['valid', 'same']), dilation: pairOf, dilations: pairOf, bias: ['K'], activation: (r) => r.pick(['linear', 'relu']) },
  dense: { bias: ['U'], activation: (r) => r.pick(['linear', 'relu']) },
  pool: { poolSize: pairOf, strides: pairOf, padding: (r) => r.pick(['valid', 'same']) },
  alpha: { alpha: (r) => r.float() * 2 },
  dropout: { rate, seed: (r) => r.int(0, 1e6) },
  bnInfer: { gamma: ['C'], beta: ['C'], mean: ['C'], variance: ['C'], epsilon: (r) => 1e-3 * r.int(1, 10) },
  bnTrain: { gamma: ['C'], beta: ['C'], movingMean: ['C'], movingVariance: ['C'], epsilon: (r) => 1e-3 * r.int(1, 10), momentum: rate },
  bnGrad: { mean: ['C'], invstd: ['C'], gamma: ['C'] },
  xent: { sparse: (r) => r.chance(0.5) },
  bce: { fromLogits: (r) => r.chance(0.5) },
  sgd: { learningRate: (r) => r.float(), momentum: rate, nesterov: (r) => r.chance(0.5), velocity: ['P'] },
  adam: { m: ['P'], v: ['P'], step: (r) => r.int(1, 100), learningRate: (r) => r.float() * 0.01, beta1: rate, beta2: rate, epsilon: (r) => 1e-7, weightDecay: (r) => r.float() * 0.1 },
  rmsprop: { ms: ['P'], momentumBuffer: ['P'], mg: ['P'], learningRate: (r) => r.float() * 0.01, rho: rate, momentum: rate, epsilon: (r) => 1e-7, centered: (r) => r.chance(0.5) },
};
// Every option name of every op, for options an op does not take.
const ALL_OPTION_NAMES = [...new Set(Object.values(OPTIONS).flatMap((o) => Object.keys(o)))];

// Dims are small so that every tensor, and every output an op can make from them, stays far
// below the worker's allocation limit: what exceeds it was allocated from unchecked sizes.
const MAX_CASE_ELEMENTS = 1 << 22;
function drawDims(rng) {
  const dims = {};
  for (const l of 'NHWCRSKMUBPABCD') {
    dims[l] = rng.weighted({ small: 80, zero: 3, one: 8, mid: 6, big: 3 }) === 'small' ? rng.int(1, 6)
      : rng.chance(0.5) ? rng.pick([0, 1]) : rng.chance(0.7) ? rng.int(7, 40) : rng.pick([256, 4096, 65536]);
  }
  let product = () => Object.values(dims).reduce((a, b) => a * Math.max(b, 1), 1);
  while (product() > MAX_CASE_ELEMENTS) {
    const biggest = Object.keys(dims).reduce((a, b) => (dims[a] >= dims[b] ? a : b));
    dims[biggest] = Math.max(1, dims[biggest] >> 4);
  }
  return dims;
}

function values(rng, n, kind) {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = kind === 'labels' ? rng.int(0, 6) : kind === 'positive' ? 0.1 + rng.float() : rng.float() * 4 - 2;
  if (n && rng.chance(0.1)) v[rng.int(0, n - 1)] = rng.pick([NaN, Infinity, -Infinity, 3e38, -0]);
  return v;
}

class OpCase {
  constructor(ck, rng) {
    this.ck = ck;
    this.rng = rng;
    this.dims = drawDims(rng);
    this.made = [];
  }

  tensorOf(shape, kind) {
    const n = shape.reduce((a, b) => a * b, 1);
    const t = this.ck.tensor(values(this.rng, n, kind), shape);
    this.made.push(t);
    return t;
  }

  /** A tensor over `letters`, sometimes with one dim changed, a dim dropped or added. */
  shaped(letters, kind) {
    const rng = this.rng;
    let shape = letters.map((l) => this.dims[l]);
    if (rng.chance(0.12)) shape[rng.int(0, shape.length - 1)] += rng.pick([-1, 1, 2]);
    if (rng.chance(0.05)) shape = shape.slice(1);
    if (rng.chance(0.05)) shape.push(rng.int(1, 3));
    shape = shape.map((d) => Math.max(d, 0));
    return this.tensorOf(shape, kind);
  }

  anyTensor() {
    const rank = this.rng.weighted({ 0: 1, 1: 4, 2: 6, 3: 3, 4: 3, 5: 1 });
    return this.shaped('ABCD'.slice(0, Number(rank)).split('').concat(Number(rank) > 4 ? ['A'] : []));
  }

  garbage() {
    const rng = this.rng;
    if (rng.chance(0.4)) {
      const t = this.anyTensor();
      t.dispose();
      return t;
    }
    return rng.chance(0.3) ? rng.pick([{ shape: [2, 2] }, new Float32Array(4), [[1, 2], [3, 4]], Object.create(this.ck.Tensor.prototype)])
      : hostileValue(rng);
  }

  arg(spec, op, args, opts) {
    const rng = this.rng;
    if (rng.chance(0.03)) return this.garbage();
    if (spec === ANY) return this.anyTensor();
    if (spec === 'labels') return opts.sparse === true ? this.shaped(['B'], 'labels') : this.shaped(['B', 'C']);
    if (typeof spec === 'string' && spec.startsWith('dy:')) {
      // The forward op's output shape, when the forward op takes these arguments.
      if (rng.chance(0.8)) {
        try {
          const y = this.ck.ops[spec.slice(3)](...args, opts);
          const shape = [...y.shape];
          y.dispose();
          return this.tensorOf(shape);
        } catch {
          // a typed error is what the gradient call will get too
        }
      }
      return this.anyTensor();
    }
    return this.shaped(spec);
  }

  options(kind) {
    const rng = this.rng;
    if (rng.chance(0.03)) return hostileValue(rng);
    const table = OPTIONS[kind] ?? {};
    const o = {};
    for (const [name, good] of Object.entries(table)) {
      if (rng.chance(0.4)) continue;
      if (rng.chance(0.15)) o[name] = rng.chance(0.3) ? this.garbage() : rng.chance(0.5) ? hostileNumber(rng) : rng.chance(0.5) ? [hostileNumber(rng), hostileNumber(rng)] : hostileValue(rng);
      else o[name] = Array.isArray(good) ? this.shaped(good, name === 'variance' || name === 'movingVariance' || name === 'v' ? 'positive' : undefined) : good(rng);
    }
    if (rng.chance(0.05)) o[rng.pick(ALL_OPTION_NAMES)] = hostileValue(rng);
    return o;
  }
}

/** Every Tensor inside an op's result (a tensor, or an object of them). */
function outputsOf(ck, r) {
  if (r instanceof ck.Tensor) return [r];
  if (r && typeof r === 'object') return Object.values(r).filter((t) => t instanceof ck.Tensor);
  return [];
}

module.exports = {
  name: 'ops',
  async run(rng, ctx) {
    const { ck } = ctx;
    const names = Object.keys(ck.ops).filter((k) => typeof ck.ops[k] === 'function' && k !== 'pair');
    const op = rng.pick(names);
    const c = new OpCase(ck, rng);
    const template = TEMPLATES[op] ?? { args: [ANY, ANY, ANY].slice(0, rng.int(0, 3)) };
    const opts = template.opts || rng.chance(0.1) ? c.options(template.opts) : undefined;
    // A gradient's dy comes last: it takes its shape from the other arguments.
    const isDy = (spec) => typeof spec === 'string' && spec.startsWith('dy:');
    const args = template.args.map((spec) => (isDy(spec) ? null : c.arg(spec, op, null, opts ?? {})));
    template.args.forEach((spec, i) => {
      if (isDy(spec)) args[i] = c.arg(spec, op, args.filter((_, j) => j !== i), opts ?? {});
    });
    if (opts !== undefined || rng.chance(0.1)) args.push(opts);
    if (rng.chance(0.05)) args.push(...Array.from({ length: rng.int(1, 3) }, () => hostileValue(rng)));
    if (rng.chance(0.05)) args.splice(rng.int(0, args.length), 1);
    const describe = (a) => {
      if (!(a instanceof ck.Tensor)) return typeof a;
      if (!a.handle) return 'a forged Tensor';
      return `[${a.shape}]${a.isDisposed ? ' disposed' : ''}`;
    };
    const detail = `${op}(${args.map(describe).join(', ')})`;
    ctx.note(detail);
    let result;
    try {
      result = ck.ops[op](...args);
    } finally {
      // Inputs freed while the op may still be queued: the op's task must keep its own references.
      if (rng.chance(0.15)) for (const t of c.made) t.dispose();
    }
    const outs = outputsOf(ck, result);
    // Read the outputs back: the kernels ran. In-place updates: read the weights.
    if (outs.length === 0 && args[0] instanceof ck.Tensor && !args[0].isDisposed) outs.push(args[0]);
    for (const t of outs) await t.data();
    for (const t of c.made) t.dispose();
    return detail;
  },
};
