// The harness checking itself (test/fuzz.test.ts; never drawn by a run unless named): a case
// that aborts the process, one that hangs, one that throws a plain Error and one that passes,
// by seed modulo 4, so the test can see each reported with its seed.
'use strict';

module.exports = {
  name: 'selftest',
  timeoutMs: 2000,
  async run(rng, ctx) {
    switch (Number(ctx.seed % 4)) {
      case 0: process.abort(); break;
      case 1: await new Promise(() => setInterval(() => {}, 1000)); break;  // alive, never done
      case 2: throw new TypeError('selftest: not a ConvkitError');
      default: return 'selftest: clean';
    }
  },
};
