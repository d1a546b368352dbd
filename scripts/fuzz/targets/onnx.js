// ONNX files made hostile for ck.io.loadOnnx: valid graphs (the committed PyTorch fixtures and
// small convkit exports) decoded with the official schema and damaged — op types swapped,
// attributes retyped or given extreme values, inputs dangling or turned into cycles, dims and
// initializer data changed, nodes dropped or duplicated — and raw bytes truncated, bit-flipped,
// extended or replaced. What imports must predict.
'use strict';
const fs = require('fs');
const path = require('path');

const OPS = ['Conv', 'Relu', 'Clip', 'MaxPool', 'AveragePool', 'Add', 'Mul', 'Sub', 'Div', 'Gemm', 'MatMul', 'Flatten',
  'Reshape', 'Squeeze', 'Unsqueeze', 'Transpose', 'Concat', 'Pad', 'Resize', 'Softmax', 'BatchNormalization',
  'GlobalAveragePool', 'HardSwish', 'HardSigmoid', 'Selu', 'Softplus', 'Identity', 'Slice', 'Gather', 'Loop', ''];

async function setup({ root, ck }) {
  const onnx = require(require.resolve('onnx-proto', { paths: [root] })).onnx;
  const fixtures = path.join(root, 'test', 'fixtures', 'onnx');
  const files = fs.existsSync(fixtures) ? fs.readdirSync(fixtures).filter((f) => f.endsWith('.onnx')).map((f) => fs.readFileSync(path.join(fixtures, f))) : [];
  const L = ck.layers;
  const models = [
    ck.sequential([L.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu6' }), L.maxPooling2d({ poolSize: 2 }), L.flatten(), L.dense({ units: 3, activation: 'softmax' })]),
    ck.sequential([L.depthwiseConv2d({ inputShape: [6, 6, 2], kernelSize: 3, strides: 2, padding: 'same', activation: 'hardSwish' }), L.batchNormalization({}), L.globalAveragePooling2d({}), L.dense({ units: 2 })]),
  ];
  for (const [i, m] of models.entries()) {
    const file = path.join(require('os').tmpdir(), `convkit-fuzz-onnx-${process.pid}-${i}.onnx`);
    await ck.io.toOnnx(m, file);
    files.push(fs.readFileSync(file));
    fs.rmSync(file, { force: true });
  }
  return { onnx, files };
}

function damageGraph(rng, onnx, bytes) {
  const model = onnx.ModelProto.decode(bytes);
  const g = model.graph;
  const steps = rng.int(1, 4);
  for (let s = 0; s < steps; s++) {
    const kind = rng.int(0, 8);
    const node = g.node.length ? g.node[rng.int(0, g.node.length - 1)] : null;
    if (kind === 0 && node) node.opType = rng.pick(OPS);
    else if (kind === 1 && node && node.attribute.length) {
      const a = node.attribute[rng.int(0, node.attribute.length - 1)];
      if (rng.chance(0.5)) a.type = rng.int(0, 12);
      else if (a.ints && a.ints.length) a.ints[rng.int(0, a.ints.length - 1)] = rng.pick([0, -1, 2 ** 31 - 1, -(2 ** 31), 65536, 3]);
      else a.f = rng.pick([NaN, Infinity, -1, 0, 1e30]);
    } else if (kind === 2 && node && node.input.length) {
      node.input[rng.int(0, node.input.length - 1)] = rng.chance(0.5) ? 'nowhere' : (node.output[0] ?? '');
    } else if (kind === 3 && g.initializer.length) {
      const t = g.initializer[rng.int(0, g.initializer.length - 1)];
      if (rng.chance(0.5) && t.dims.length) t.dims[rng.int(0, t.dims.length - 1)] = rng.pick([0, 1, -3, 2 ** 31, 7]);
      else if (t.rawData && t.rawData.length) t.rawData = t.rawData.subarray(0, rng.int(0, t.rawData.length));
      else t.dataType = rng.int(0, 16);
    } else if (kind === 4 && node) g.node.splice(g.node.indexOf(node), 1);
    else if (kind === 5 && node) g.node.push(onnx.NodeProto.create({ ...node, name: `${node.name}_again` }));
    else if (kind === 6 && g.input.length) {
      const dims = g.input[0].type?.tensorType?.shape?.dim ?? [];
      if (dims.length) dims[rng.int(0, dims.length - 1)].dimValue = rng.pick([0, 1, 100000, -1]);
    } else if (kind === 7 && model.opsetImport.length) model.opsetImport[0].version = rng.pick([1, 6, 13, 22, 99]);
    else if (g.output.length) g.output[0].name = rng.chance(0.5) ? 'nowhere' : (g.input[0]?.name ?? '');
  }
  return Buffer.from(onnx.ModelProto.encode(model).finish());
}

function damageBytes(rng, bytes) {
  const b = Buffer.from(bytes);
  const kind = rng.int(0, 3);
  if (kind === 0) return b.subarray(0, rng.int(0, b.length));
  if (kind === 1) {
    for (let i = 0; i < rng.int(1, 20); i++) b[rng.int(0, b.length - 1)] = rng.int(0, 255);
    return b;
  }
  if (kind === 2) return Buffer.concat([b, rng.bytes(rng.int(1, 64))]);
  return rng.bytes(rng.int(0, 256));
}

module.exports = {
  name: 'onnx',
  prepares: true,
  setup,
  async run(rng, ctx) {
    const { onnx, files } = ctx.fixture;
    const source = rng.int(0, files.length - 1);
    const graphDamage = rng.chance(0.7);
    const bytes = graphDamage ? damageGraph(rng, onnx, files[source]) : damageBytes(rng, files[source]);
    const file = path.join(ctx.dir, 'model.onnx');
    fs.writeFileSync(file, bytes);
    ctx.detail = `onnx source ${source} ${graphDamage ? 'graph' : 'bytes'} ${bytes.length} bytes`;
    ctx.begin();
    const model = await ctx.ck.io.loadOnnx(file);
    const shape = model.inputs[0].shape.slice(1);
    const size = shape.reduce((a, d) => a * d, 1);
    if (size > 1 << 20) return `${ctx.detail} -> imported, input [${shape}] too large to run`;
    const x = ctx.ck.tensor(Float32Array.from({ length: 2 * size }, () => rng.float() * 2 - 1), [2, ...shape]);
    const y = model.predict(x);
    await (Array.isArray(y) ? y[0] : y).data();
    return `${ctx.detail} -> imported [${shape}]`;
  },
};
