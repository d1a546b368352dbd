// docs/design.md's "Benchmark workloads", shared by the bench scripts: W1 (the seeds' MNIST CNN)
// and W2 (a CIFAR-shaped CNN), the real models W3 (ResNet-20), W4 (MobileNetV2 at 96x96) and W5
// (MobileNetV2 at 224x224, ImageNet-sized), a FLOP counter over a model's layers, deterministic
// inputs, the median of a list of timings, and the training and inference rates measured through
// the public API on either device.
'use strict';
const ck = require('../../dist');

/** W1: the seeds' CNN on 28x28x1 (62,346 parameters). */
function w1() {
  return ck.sequential([
    ck.layers.input({ shape: [28, 28, 1] }),
    ck.layers.conv2d({ filters: 32, kernelSize: 5, activation: 'relu' }),
    ck.layers.maxPooling2d({ poolSize: 2 }),
    ck.layers.conv2d({ filters: 64, kernelSize: 5, activation: 'relu' }),
    ck.layers.maxPooling2d({ poolSize: 2 }),
    ck.layers.flatten(),
    ck.layers.dense({ units: 10, activation: 'softmax' }),
  ]);
}

/** W2: two blocks of two 3x3 'same' convolutions on 32x32x3. */
function w2() {
  const conv = (filters) => ck.layers.conv2d({ filters, kernelSize: 3, padding: 'same', activation: 'relu' });
  return ck.sequential([
    ck.layers.input({ shape: [32, 32, 3] }), conv(32), conv(32), ck.layers.maxPooling2d({ poolSize: 2 }),
    conv(64), conv(64), ck.layers.maxPooling2d({ poolSize: 2 }), ck.layers.flatten(),
    ck.layers.dense({ units: 10, activation: 'softmax' }),
  ]);
}

/** W3: ResNet-20 v1 (ck.applications.resNet20) on 32x32x3, 10 classes (274,442 parameters). */
const w3 = () => ck.applications.resNet20({ inputShape: [32, 32, 3], classes: 10 });

/** W4: MobileNetV2 alpha 1 on 96x96x3, 10 classes (2,236,682 trainable parameters). */
const w4 = () => ck.applications.mobileNetV2({ alpha: 1, inputShape: [96, 96, 3], classes: 10 });

/** W5: MobileNetV2 alpha 1 on 224x224x3, 1000 classes (ImageNet's shape; 3,504,872 trainable). */
const w5 = () => ck.applications.mobileNetV2({ alpha: 1, inputShape: [224, 224, 3], classes: 1000 });

/**
 * FLOP per image of `model`, counted from its layers' shapes (a multiply-add counts 2; biases,
 * batch norm, activations, pooling and adds are left out, as the W1/W2 figures leave them):
 * conv 2*P*Q*K*R*S*C/groups, depthwise 2*P*Q*C*m*R*S, separable both, dense 2*in*out per row.
 * Training is 3x forward (forward, data gradient, filter gradient) less the data gradient of the
 * layers that read the model's input, which is never computed. Also the parameter counts.
 */
function flops(model) {
  model.build();
  // The layers that read the model's input: a Functional model's take it from an InputLayer; a
  // Sequential model's first layer after its input layer does.
  const firstLayer = model.layers.find((l) => l.className !== 'InputLayer');
  const readsInput = (layer) => {
    const node = layer.inboundNodes?.[0];
    return node && node.inputs.length ? node.inputs.some((t) => t.sourceLayer.className === 'InputLayer') : layer === firstLayer;
  };
  let fwd = 0;
  let firstData = 0;
  let params = 0;
  let trainable = 0;
  for (const layer of model.layers) {
    const inShape = layer.inputShape;
    if (layer.className === 'InputLayer' || !inShape) continue;
    const specs = layer.weightSpecs(inShape.slice(1));
    for (const w of specs) {
      const size = w.shape.reduce((a, b) => a * b, 1);
      params += size;
      if (w.trainable && layer.trainable) trainable += size;
    }
    const out = layer.outputShape;
    const pq = (out.length === 4 ? out[1] * out[2] : 1);
    const c = inShape[inShape.length - 1];
    const rs = layer.kernelSize ? layer.kernelSize[0] * layer.kernelSize[1] : 1;
    let f = 0;
    switch (layer.className) {
      case 'Conv2D': f = 2 * pq * out[3] * rs * c / (layer.groups || 1); break;
      case 'DepthwiseConv2D': f = 2 * pq * c * layer.depthMultiplier * rs; break;
      case 'SeparableConv2D': f = 2 * pq * c * layer.depthMultiplier * rs + 2 * pq * c * layer.depthMultiplier * out[3]; break;
      case 'Dense': f = 2 * (inShape.slice(1, -1).reduce((a, b) => a * b, 1)) * c * layer.units; break;
      default:
        if (/Conv|Dense|LSTM|GRU/.test(layer.className)) throw new Error(`flops: no FLOP rule for ${layer.className} (${layer.name})`);
    }
    fwd += f;
    if (readsInput(layer)) firstData += f;
  }
  return { fwd, train: 3 * fwd - firstData, params, trainable };
}

/** A tensor of `shape` filled from a seeded LCG in [0, 1). */
function random(shape, seed) {
  let s = seed >>> 0;
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
  return ck.tensor(data, shape);
}

const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Training images/s through model.fit (SGD lr 0.01, sparse labels) on `device`, the data held on
 * `dataOn` ('cuda': already on the GPU, as a PyTorch loop's tensors): the median epoch after a
 * warm-up epoch (which plans the buffers and, on CUDA, captures the step graphs).
 */
async function trainRate(make, shape, batch, n, { device = 'cpu', epochs = 4, dataOn = 'cpu' } = {}) {
  const model = make();
  model.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.01 }), loss: 'sparseCategoricalCrossentropy', device });
  const x = random([n, ...shape], 1).to(dataOn);
  const y = ck.tensor(Float32Array.from({ length: n }, (_, i) => i % 10), [n]).to(dataOn);
  const times = [];
  let t0 = 0n;
  await model.fit(x, y, {
    epochs, batchSize: batch, verbose: 0, seed: 1,
    callbacks: { onEpochBegin: () => { t0 = process.hrtime.bigint(); }, onEpochEnd: () => { times.push(Number(process.hrtime.bigint() - t0) / 1e9); } },
  });
  return n / median(times.slice(1));
}

/**
 * Inference images/s (W1's images unless `shape` says) at `batch` over n images held on
 * `dataOn`, the predictions read back to the host: the median of 3 runs after a warm-up.
 */
async function inferRate(model, batch, n, { dataOn = 'cpu', shape = [28, 28, 1] } = {}) {
  const x = random([n, ...shape], 2).to(dataOn);
  await model.predict(x, { batchSize: batch }).data();  // warm-up (plans the buffers)
  const rates = [];
  for (let r = 0; r < 3; r++) {
    const t0 = process.hrtime.bigint();
    await model.predict(x, { batchSize: batch }).data();
    rates.push(n / (Number(process.hrtime.bigint() - t0) / 1e9));
  }
  return median(rates);
}

/** Median ms of a batch-1 predictOnBatch (W1's image unless `shape` says) read back to the host, after `warm` untimed runs. */
async function latencyMs(model, { warm = 50, timed = 250, shape = [28, 28, 1] } = {}) {
  const x = random([1, ...shape], 3);
  const lat = [];
  for (let i = 0; i < warm + timed; i++) {
    const t0 = process.hrtime.bigint();
    await model.predictOnBatch(x).data();
    lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return median(lat.slice(warm));
}

/**
 * Images/s of predictOnBatch on one batch of `batch` images of `shape`, read back to the host:
 * the median of `reps` runs of `batches` calls, after `warm` untimed calls.
 */
async function batchRate(model, shape, batch, { batches = 10, reps = 3, warm = 2 } = {}) {
  const x = random([batch, ...shape], 4);
  for (let i = 0; i < warm; i++) await model.predictOnBatch(x).data();
  const rates = [];
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < batches; i++) await model.predictOnBatch(x).data();
    rates.push((batch * batches) / (Number(process.hrtime.bigint() - t0) / 1e9));
  }
  return median(rates);
}

module.exports = { w1, w2, w3, w4, w5, flops, random, median, trainRate, inferRate, latencyMs, batchRate };
