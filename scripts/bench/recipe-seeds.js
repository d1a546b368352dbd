#!/usr/bin/env node
// Runs the seeds' MNIST recipe (SGD lr 0.01, batch 100, 10 epochs; `-- --adam` for Adam) for a
// range of seeds, one run after another, through convkit (mnist-recipe.js), PyTorch with Keras's
// initial weights (torch_recipe.py) or convkit with the draws taken apart (`split`:
// recipe-split.js, after torch_draws.py has written the seed's PyTorch draws when the arguments
// ask for them), and writes a JSON of each seed's test accuracy and per-epoch training losses
// (BENCHMARKS.md, "The seeds' MNIST recipe"). recipe_stats.py compares two files.
//   node scripts/bench/recipe-seeds.js --impl convkit|torch|split [--seeds 1-10] [--out FILE] [-- extra args]
// Arguments after `--` go to the recipe script of each run (split: `--init torch --order
// convkit`, `--fit-seed-offset K` for fit seed = seed + K). Seeds already in FILE are kept and
// skipped, so an interrupted sweep resumes where it stopped.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

function arg(argv, name, fallback) {
  const at = argv.indexOf(name);
  return at >= 0 ? argv[at + 1] : fallback;
}

function seedsOf(spec) {
  const out = [];
  for (const part of spec.split(',')) {
    const [a, b] = part.split('-').map(Number);
    for (let s = a; s <= (b ?? a); s++) out.push(s);
  }
  if (!out.length || out.some((s) => !Number.isSafeInteger(s) || s < 0)) throw new Error(`--seeds: bad range '${spec}'`);
  return out;
}

function main() {
  const all = process.argv.slice(2);
  const dash = all.indexOf('--');
  const argv = dash >= 0 ? all.slice(0, dash) : all;
  const extra = dash >= 0 ? all.slice(dash + 1) : [];
  const impl = arg(argv, '--impl', 'convkit');
  if (!['convkit', 'torch', 'split'].includes(impl)) throw new Error(`--impl must be convkit, torch or split, got '${impl}'`);
  const seeds = seedsOf(arg(argv, '--seeds', '1-10'));
  const out = arg(argv, '--out', `recipe-${impl}.json`);
  const result = fs.existsSync(out) ? JSON.parse(fs.readFileSync(out, 'utf8'))
    : { impl: impl === 'split' ? `convkit ${extra.join(' ')}` : impl, recipe: extra.includes('--adam') ? 'Adam lr 1e-3, batch 100, 3 epochs' : 'SGD lr 0.01, batch 100, 10 epochs', extra, runs: {} };
  for (const seed of seeds) {
    if (result.runs[seed]) continue;
    const [cmd, script] = { convkit: [process.execPath, 'mnist-recipe.js'], torch: ['/usr/bin/python3', 'torch_recipe.py'], split: [process.execPath, 'recipe-split.js'] }[impl];
    let args = extra;
    if (impl === 'split') {
      const offsetAt = extra.indexOf('--fit-seed-offset');
      if (offsetAt >= 0) args = [...extra.slice(0, offsetAt), '--fit-seed', String(seed + Number(extra[offsetAt + 1])), ...extra.slice(offsetAt + 2)];
      if (extra.includes('torch')) {
        const draws = path.join(os.tmpdir(), `torch-draws-${seed}`);
        const made = spawnSync('/usr/bin/python3', [path.join(__dirname, 'torch_draws.py'), '--seed', String(seed), '--out', draws], { encoding: 'utf8' });
        if (made.status !== 0) throw new Error(`torch_draws.py seed ${seed} failed (exit ${made.status}):\n${made.stderr}`);
        args = [...args, '--draws', draws];
      }
    }
    const start = Date.now();
    const run = spawnSync(cmd, [path.join(__dirname, script), '--seed', String(seed), ...args], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`${impl} seed ${seed} failed (exit ${run.status}):\n${run.stderr}`);
    const losses = [...run.stdout.matchAll(/^epoch \d+: loss ([\d.]+)/gm)].map((m) => Number(m[1]));
    // convkit prints the test accuracy once at the end; torch_recipe.py after every epoch.
    const accs = [...run.stdout.matchAll(/test accuracy ([\d.]+)%/g)].map((m) => Number(m[1]));
    if (!losses.length || !accs.length) throw new Error(`${impl} seed ${seed}: no loss or accuracy in its output:\n${run.stdout}`);
    result.runs[seed] = { testAccuracy: accs.at(-1), finalLoss: losses.at(-1), losses, seconds: (Date.now() - start) / 1000 };
    fs.writeFileSync(out, JSON.stringify(result, null, 1) + '\n');
    console.log(`${impl} seed ${seed}: test accuracy ${accs.at(-1).toFixed(2)}%, final loss ${losses.at(-1).toFixed(4)} (${result.runs[seed].seconds.toFixed(0)} s)`);
  }
}

try {
  main();
} catch (e) {
  console.error(e.message);
  process.exit(1);
}
