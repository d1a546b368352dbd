// `convkit predict MODEL IMAGE...` on damaged model folders and hostile images, in its own
// process (under the same address-space limit): it must answer with results (exit 0) or one
// error line (exit 1, or 2 for usage), never a stack trace ("unexpected error", exit 70), a
// signal or a hang.
'use strict';
const fs = require('fs');
const path = require('path');
const { spawn } = require('child_process');
const model = require('./model');
const images = require('./images');

function runCli(cli, args, timeoutMs) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CONVKIT_THREADS: '1' } });
    let stderr = '';
    child.stdout.on('data', () => {});
    child.stderr.on('data', (d) => {
      stderr = (stderr + d).slice(-4000);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr });
    });
  });
}

module.exports = {
  name: 'cli',
  prepares: true,
  timeoutMs: 60000,
  async setup(env) {
    return { model: await model.makeBaseModel(env.ck, path.join(env.tmp, 'cli-model')), images: await images.samples(env.root) };
  },
  async run(rng, ctx) {
    const { dir, fixture } = ctx;
    const modelDir = path.join(dir, 'model');
    fs.mkdirSync(modelDir);
    const what = [];
    if (rng.chance(0.6)) what.push(model.damagedCopy(rng, fixture.model, modelDir));
    else for (const f of ['model.json', 'weights.bin']) fs.copyFileSync(path.join(fixture.model, f), path.join(modelDir, f));
    const files = [];
    for (let i = rng.int(1, 3); i > 0; i--) {
      const file = path.join(dir, `img${i}${rng.pick(['.png', '.jpg', '.webp'])}`);
      const [kind, bytes] = images.hostileImage(rng, fixture.images);
      fs.writeFileSync(file, bytes);
      files.push(file);
      what.push(kind);
    }
    const args = ['predict', rng.chance(0.8) ? modelDir : path.join(modelDir, 'model.json'), ...files];
    if (rng.chance(0.3)) args.push('--top', rng.pick(['1', '0', '-3', '99999999999', 'x']));
    if (rng.chance(0.3)) args.push('--json');
    ctx.detail = `predict ${what.join(' ')}`;
    ctx.begin();
    const r = await runCli(path.join(ctx.lib, 'cli', 'main.js'), args, 50000);
    if (r.signal || ![0, 1, 2].includes(r.code)) {
      // Not a ConvkitError: the harness reports it as a finding, with the CLI's own words.
      throw new Error(`convkit predict ended with ${r.signal ?? `exit code ${r.code}`}: ${r.stderr.slice(-1500)}`);
    }
    if (r.code !== 0) {
      if (!/^convkit: error: [^\n]+\n$/.test(r.stderr) && r.code === 1) throw new Error(`convkit predict failed without one error line: ${r.stderr.slice(-1500)}`);
      throw new ctx.ck.ConvkitError(r.stderr.trim());
    }
    return `${ctx.detail} -> ok`;
  },
};
