// The fuzzer's past findings (../regressions.js), case `seed` of the list, with the base model
// folder of the model target as their fixture.
'use strict';
const path = require('path');
const { REGRESSIONS } = require('../regressions');
const { makeBaseModel } = require('./model');

module.exports = {
  name: 'regression',
  setup: ({ ck, tmp }) => makeBaseModel(ck, path.join(tmp, 'regression-model')),
  async run(rng, ctx) {
    const r = REGRESSIONS[ctx.seed];
    if (!r) throw new Error(`no regression case ${ctx.seed}`);
    ctx.note(r.name);
    await r.run(ctx);
    return r.name;
  },
};
