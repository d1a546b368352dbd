// Layer configs for every ck.layers factory: mostly valid options with one or two hostile ones
// (NaN, infinities, negative, fractional or huge sizes, wrong types, unknown names), then a model
// around the layer: build, summary, predict, and sometimes compile and one epoch of fit.
'use strict';
const { hostileNumber, hostileShape, hostileValue, show } = require('../values');

const small = (rng) => rng.int(1, 6);
const pair = (rng) => (rng.chance(0.5) ? rng.int(1, 3) : [rng.int(1, 3), rng.int(1, 3)]);
const GOOD = {
  filters: small, units: small, kernelSize: pair, poolSize: pair, strides: pair, dilationRate: pair,
  padding: (r) => r.pick(['valid', 'same']),
  activation: (r) => r.pick(['linear', 'relu', 'sigmoid', 'tanh', 'softmax', 'elu']),
  useBias: (r) => r.chance(0.5), center: (r) => r.chance(0.5), scale: (r) => r.chance(0.5),
  trainable: (r) => r.chance(0.8),
  kernelInitializer: (r) => r.pick(['glorotUniform', 'heNormal', 'zeros', { className: 'RandomNormal', config: { stddev: 0.1 } }]),
  biasInitializer: (r) => r.pick(['zeros', 'ones']),
  rate: (r) => r.float() * 0.9, alpha: (r) => r.float(), momentum: (r) => r.float(), epsilon: (r) => 1e-3,
  axis: () => -1, name: (r) => `layer_${r.int(0, 1e6)}`, dataFormat: () => 'channelsLast', seed: (r) => r.int(0, 99),
  inputShape: (r) => [r.int(1, 8), r.int(1, 8), r.int(1, 3)], shape: (r) => [r.int(1, 8), r.int(1, 8), r.int(1, 3)],
  inputDim: small, maxValue: () => null, noiseShape: () => null, keepDims: () => false,
  gammaInitializer: () => 'ones', betaInitializer: () => 'zeros', movingMeanInitializer: () => 'zeros', movingVarianceInitializer: () => 'ones',
  batchInputShape: (r) => [null, r.int(1, 8), r.int(1, 3)], depthMultiplier: small,
};
// The options each factory takes (others get a random subset of every known option).
const KEYS = {
  conv2d: ['filters', 'kernelSize', 'strides', 'padding', 'dilationRate', 'activation', 'useBias', 'kernelInitializer', 'biasInitializer', 'dataFormat'],
  dense: ['units', 'activation', 'useBias', 'kernelInitializer', 'biasInitializer', 'inputDim'],
  dropout: ['rate', 'noiseShape', 'seed'],
  activation: ['activation'],
  leakyReLU: ['alpha'],
  reLU: ['maxValue'],
  softmax: ['axis'],
  maxPooling2d: ['poolSize', 'strides', 'padding', 'dataFormat'],
  averagePooling2d: ['poolSize', 'strides', 'padding', 'dataFormat'],
  globalAveragePooling2d: ['dataFormat', 'keepDims'],
  globalMaxPooling2d: ['dataFormat', 'keepDims'],
  batchNormalization: ['axis', 'momentum', 'epsilon', 'center', 'scale', 'gammaInitializer', 'betaInitializer', 'movingMeanInitializer', 'movingVarianceInitializer'],
  input: ['shape'],
  inputLayer: ['inputShape', 'batchInputShape'],
  flatten: [],
};
const COMMON = ['name', 'trainable', 'inputShape'];

function config(rng, factory) {
  const keys = KEYS[factory] ?? Object.keys(GOOD).filter(() => rng.chance(0.3));
  const c = {};
  for (const k of keys) if (rng.chance(0.85)) c[k] = GOOD[k](rng);
  for (const k of COMMON) if (rng.chance(0.1)) c[k] = GOOD[k](rng);
  const bad = rng.weighted({ 0: 3, 1: 5, 2: 2 });
  for (let i = 0; i < Number(bad); i++) {
    const k = rng.chance(0.9) && keys.length ? rng.pick(keys) : rng.pick(Object.keys(GOOD));
    c[k] = rng.chance(0.4) ? hostileNumber(rng) : /shape/i.test(k) ? hostileShape(rng) : hostileValue(rng);
  }
  return rng.chance(0.03) ? hostileValue(rng) : c;
}

function inputShape(rng) {
  if (rng.chance(0.05)) return hostileShape(rng);
  return rng.chance(0.7) ? [rng.int(1, 10), rng.int(1, 10), rng.int(1, 3)] : [rng.int(1, 16)];
}

module.exports = {
  name: 'layers',
  async run(rng, ctx) {
    const { ck } = ctx;
    const factories = Object.keys(ck.layers).filter((k) => typeof ck.layers[k] === 'function');
    const factory = rng.pick(factories);
    const cfg = config(rng, factory);
    ctx.note(`${factory}(${show(cfg)})`);
    const layer = ck.layers[factory](cfg);
    const shape = inputShape(rng);
    ctx.note(`${ctx.detail} on ${show(shape)}`);
    const layers = factory === 'input' || factory === 'inputLayer' ? [layer] : [ck.layers.input({ shape }), layer];
    if (rng.chance(0.3)) {
      const extra = rng.pick(factories.filter((f) => f !== 'input' && f !== 'inputLayer'));
      layers.push(ck.layers[extra](config(rng, extra)));
    }
    if (rng.chance(0.5)) layers.push(ck.layers.flatten(), ck.layers.dense({ units: rng.int(1, 3), activation: 'softmax' }));
    const model = ck.sequential(layers);
    model.summary(undefined, undefined, () => {});
    const inShape = model.inputShape;
    const outShape = model.outputShape.slice(1);
    const n = rng.int(1, 4);
    const size = inShape.reduce((a, b) => a * b, 1);
    const x = ck.tensor(Float32Array.from({ length: n * size }, () => rng.float()), [n, ...inShape]);
    await model.predict(x, { batchSize: rng.pick([1, 2, 32]) }).data();
    if (rng.chance(0.3)) {
      const loss = rng.pick(['meanSquaredError', 'categoricalCrossentropy', 'binaryCrossentropy', 'sparseCategoricalCrossentropy']);
      model.compile({ optimizer: rng.pick(['sgd', 'adam', 'rmsprop']), loss, metrics: ['accuracy'] });
      const classes = outShape[outShape.length - 1];
      const ySize = outShape.reduce((a, b) => a * b, 1);
      const y = loss === 'sparseCategoricalCrossentropy'
        ? ck.tensor(Float32Array.from({ length: n * (ySize / classes) }, () => rng.int(0, classes - 1)), [n, ...outShape.slice(0, -1)])
        : ck.tensor(Float32Array.from({ length: n * ySize }, () => (rng.chance(0.5) ? 1 : 0)), [n, ...outShape]);
      await model.fit(x, y, { epochs: 1, batchSize: 2, verbose: 0 });
    }
    return ctx.detail;
  },
};
