// Saves one model into one folder over and over; save number v sets every weight to v and
// records { version: v } in model.json, then prints v. The reliability tests kill it mid-save
// and read the folder beside it: a whole save must always be there, never a mix of two.
// usage: node save-loop.js DIR FIRST_VERSION [COUNT]
'use strict';
const ck = require('../../dist');

const [dir, first, count] = process.argv.slice(2);
ck.setSeed(1);
const model = ck.sequential([
  ck.layers.input({ shape: [256] }),
  ck.layers.dense({ units: 512, activation: 'relu' }),
  ck.layers.dense({ units: 10, activation: 'softmax' }),
]);
model.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy' });

(async () => {
  const end = count === undefined ? Infinity : Number(first) + Number(count);
  for (let v = Number(first); v < end; v++) {
    model.setWeights(model.getWeights().map((w) => ck.fill(w.shape, v)));
    await model.save(`file://${dir}`, { includeOptimizer: true, metadata: { version: v } });
    process.stdout.write(`${v}\n`);
  }
})().catch((e) => {
  process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
