// lib/models at the edges the other suites leave open (found by mutation testing,
// docs/testing.md). fit's progress output (progress.ts), which they switch off with verbose: 0:
// Keras's bar, the logs' number format, the time and per-step units at their boundaries, the TTY
// redraw throttle (Date.now stubbed). summary's table (summary.ts) cell by cell, the column
// widths written out here by hand. fitDataset and evaluateDataset (dataset-fit.ts): argument
// errors, batchesPerEpoch, what callbacks are given, stopping, example-weighted means.
import { afterEach, describe, expect, jest, test } from '@jest/globals';
import * as ck from '../lib';
import { Callback, Logs } from '../lib/callbacks';
import { bar, formatLogs, ProgressLogger } from '../lib/models/progress';
import { formatSummary, SummaryRow } from '../lib/models/summary';

afterEach(() => {
  jest.restoreAllMocks();
});

const dots = (n: number) => '.'.repeat(n);
const eqs = (n: number) => '='.repeat(n);

describe('bar: Keras\'s [==>....]', () => {
  test.each([
    [0, 10, 30, `[${dots(30)}]`],
    [1, 10, 30, `[==>${dots(27)}]`],
    [1, 100, 30, `[${dots(30)}]`],
    [5, 10, 30, `[${eqs(14)}>${dots(15)}]`],
    [9, 10, 30, `[${eqs(26)}>${dots(3)}]`],
    [10, 10, 30, `[${eqs(30)}]`],
    [12, 10, 30, `[${eqs(30)}]`],
    [3, 0, 30, `[${eqs(30)}]`],
    [1, 3, 10, `[==>${dots(7)}]`],
  ])('bar(%i, %i, %i)', (done, total, width, expected) => {
    expect(bar(done, total, width)).toBe(expected);
  });

  test('the default width is 30', () => {
    expect(bar(1, 2)).toBe(`[${eqs(14)}>${dots(15)}]`);
  });
});

describe('formatLogs', () => {
  test('numbers only, without batch and size; 4 decimals, or 4 in exponent form below 1e-3 (0 stays fixed)', () => {
    expect(formatLogs({ loss: 0.92218, batch: 3, size: 32, acc: 0.5, lr: 1e-5, tiny: -0.0005, zero: 0, edge: 0.001, big: -12.5, name: 'x' as never }))
      .toBe(' - loss: 0.9222 - acc: 0.5000 - lr: 1.0000e-5 - tiny: -5.0000e-4 - zero: 0.0000 - edge: 0.0010 - big: -12.5000');
    expect(formatLogs({})).toBe('');
  });
});

/** A stream that records what is written; `isTTY` as given. */
function stream(isTTY: boolean) {
  const writes: string[] = [];
  return { out: { isTTY, write: (s: string) => writes.push(s) }, writes };
}

function clock(start: number) {
  let now = start;
  jest.spyOn(Date, 'now').mockImplementation(() => now);
  return { set: (t: number) => { now = t; } };
}

describe('ProgressLogger', () => {
  test('not a TTY: "Epoch i/n", then one line per epoch with the time, the time per step and the logs', async () => {
    const c = clock(50_000);
    const { out, writes } = stream(false);
    const p = new ProgressLogger(3, 5, out);
    await p.onEpochBegin(1);
    c.set(50_100);
    await p.onBatchEnd(0, { loss: 1 });
    c.set(52_500);
    await p.onEpochEnd(1, { loss: 0.5, accuracy: 0.75 });
    expect(writes).toEqual(['Epoch 2/3\n', `5/5 [${eqs(30)}] - 3s 500ms/step - loss: 0.5000 - accuracy: 0.7500\n`]);
  });

  const timed: Array<[number, number, string]> = [
    // [steps, elapsed ms, time and per-step text]
    [1, 59_400, '59s 59s/step'],
    [1, 60_000, '1:00 60s/step'],
    [2, 3_599_000, '59:59 1800s/step'],
    [4, 3_600_000, '1:00:00 900s/step'],
    [5, 3_725_000, '1:02:05 745s/step'],
    [2, 2_000, '2s 1s/step'],
    [2, 2_999, '3s 1s/step'],
    [1000, 1_000, '1s 1ms/step'],
    [1000, 999, '1s 999us/step'],
    [2000, 500, '1s 250us/step'],
    [0, 1_400, '1s 1s/step'],
  ];
  test.each(timed)('%i steps in %i ms: %s', async (steps, ms, text) => {
    const c = clock(1_000_000);
    const { out, writes } = stream(false);
    const p = new ProgressLogger(1, steps, out);
    await p.onEpochBegin(0);
    c.set(1_000_000 + ms);
    await p.onEpochEnd(0, {});
    expect(writes[1]).toBe(`${steps}/${steps} ${bar(steps, steps)} - ${text}\n`);
  });

  test('a TTY: the bar is redrawn in place at most every 100 ms, the last batch always; ETA from the pace so far', async () => {
    const c = clock(10_000);
    const { out, writes } = stream(true);
    const p = new ProgressLogger(2, 20, out);
    await p.onEpochBegin(0);
    c.set(11_000);
    await p.onBatchEnd(0, { loss: 2 });         // first draw: 1 step in 1 s, 19 to go
    c.set(11_050);
    await p.onBatchEnd(1, { loss: 2 });         // 50 ms later: skipped
    c.set(11_099);
    await p.onBatchEnd(2, { loss: 2 });         // 99 ms: skipped
    c.set(11_100);
    await p.onBatchEnd(3, { loss: 1.5 });       // 100 ms: drawn
    c.set(11_120);
    await p.onBatchEnd(19, { loss: 1 });        // the last batch: drawn despite 20 ms
    c.set(12_000);
    await p.onEpochEnd(0, { loss: 1 });
    expect(writes).toEqual([
      'Epoch 1/2\n',
      `\r 1/20 ${bar(1, 20)} - ETA: 19s - loss: 2.0000\x1b[K`,
      `\r 4/20 ${bar(4, 20)} - ETA: 4s - loss: 1.5000\x1b[K`,
      `\r20/20 ${bar(20, 20)} - ETA: 0s - loss: 1.0000\x1b[K`,
      `\r20/20 ${bar(20, 20)} - 2s 100ms/step - loss: 1.0000\x1b[K\n`,
    ]);
  });

  test('the throttle starts over each epoch', async () => {
    const c = clock(5_000);
    const { out, writes } = stream(true);
    const p = new ProgressLogger(2, 10, out);
    await p.onEpochBegin(0);
    c.set(5_500);
    await p.onBatchEnd(0);
    await p.onEpochEnd(0);
    await p.onEpochBegin(1);
    await p.onBatchEnd(0);                      // same instant, new epoch: drawn
    expect(writes.filter((w) => w.includes('ETA'))).toHaveLength(2);
  });
});

describe('formatSummary: Keras\'s table', () => {
  /** Cells padded to the given column widths, the line's end trimmed (as Keras prints them). */
  const cols = (widths: number[], cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('').trimEnd();
  const print = (name: string, rows: SummaryRow[], lineLength?: number, positions?: number[]) => {
    const lines: string[] = [];
    formatSummary(name, rows, (l) => lines.push(l), lineLength, positions);
    return lines;
  };
  const dense = (name: string, units: number, params: number, trainable = params): SummaryRow =>
    ({ name, className: 'Dense', outputShape: [null, units], params, trainableParams: trainable });

  test('Sequential: 65 wide, columns 29 / 26 / 10, a blank line between rows, totals with thousands separators', () => {
    const w = [29, 26, 10];
    expect(print('m', [dense('dense', 10, 10250), dense('frozen', 2, 2222, 0)])).toEqual([
      'Model: "m"',
      '_'.repeat(65),
      cols(w, [' Layer (type)', 'Output Shape', 'Param #']),
      '='.repeat(65),
      cols(w, [' dense (Dense)', '(None, 10)', '10250']),
      '',
      cols(w, [' frozen (Dense)', '(None, 2)', '2222']),
      '='.repeat(65),
      'Total params: 12,472',
      'Trainable params: 10,250',
      'Non-trainable params: 2,222',
      '_'.repeat(65),
    ]);
  });

  test('functional: 98 wide, columns 32 / 21 / 12 / 33, an input layer\'s shape as a list, the inbound tensors as a Python list', () => {
    const w = [32, 21, 12, 33];
    const rows: SummaryRow[] = [
      { name: 'in', className: 'InputLayer', outputShape: [null, 3], params: 0, trainableParams: 0, connectedTo: [] },
      { ...dense('d', 3, 12), connectedTo: ['in[0][0]'] },
      { name: 'sum', className: 'Add', outputShape: [null, 3], params: 0, trainableParams: 0, connectedTo: ['d[0][0]', 'in[0][0]'] },
    ];
    expect(print('f', rows)).toEqual([
      'Model: "f"',
      '_'.repeat(98),
      cols(w, [' Layer (type)', 'Output Shape', 'Param #', 'Connected to']),
      '='.repeat(98),
      cols(w, [' in (InputLayer)', '[(None, 3)]', '0', '[]']),
      '',
      cols(w, [' d (Dense)', '(None, 3)', '12', "['in[0][0]']"]),
      '',
      cols(w, [' sum (Add)', '(None, 3)', '0', "['d[0][0]', 'in[0][0]']"]),
      '='.repeat(98),
      'Total params: 12',
      'Trainable params: 12',
      'Non-trainable params: 0',
      '_'.repeat(98),
    ]);
  });

  test('a cell longer than its column less one wraps onto the next lines; one exactly that long does not', () => {
    const w = [29, 26, 10];
    const long = ' a_layer_name_that_is_far_too_long_for_it (Dense)';
    const lines = print('m', [{ ...dense('a_layer_name_that_is_far_too_long_for_it', 4, 20) }]);
    expect(lines.slice(4, 7)).toEqual([
      cols(w, [long.slice(0, 28), '(None, 4)', '20']),
      long.slice(28, 56),
      '='.repeat(65),
    ]);
    const exact = print('m', [{ ...dense('nineteen_chars_long', 4, 20) }]);   // ' nineteen_chars_long (Dense)': 28 characters
    expect(exact.slice(4, 6)).toEqual([cols(w, [' nineteen_chars_long (Dense)', '(None, 4)', '20']), '='.repeat(65)]);
  });

  test('lineLength and positions: fractions of the line, or absolute columns', () => {
    expect(print('m', [dense('d', 1, 3)], 60, [0.5, 0.75, 1]).slice(1, 5)).toEqual([
      '_'.repeat(60), cols([30, 15, 15], [' Layer (type)', 'Output Shape', 'Param #']), '='.repeat(60), cols([30, 15, 15], [' d (Dense)', '(None, 1)', '3']),
    ]);
    expect(print('m', [dense('d', 1, 3)], 50, [18, 36, 50]).slice(2, 5)).toEqual([
      cols([18, 18, 14], [' Layer (type)', 'Output Shape', 'Param #']), '='.repeat(50), cols([18, 18, 14], [' d (Dense)', '(None, 1)', '3']),
    ]);
  });

  test('a Sequential table keeps its three columns when given four positions (Keras uses the first three)', () => {
    const w = [32, 21, 12];   // 98 x 0.33, 0.55, 0.67
    expect(print('m', [dense('d', 1, 3)], 98, [0.33, 0.55, 0.67, 1]).slice(2, 5)).toEqual([
      cols(w, [' Layer (type)', 'Output Shape', 'Param #']), '='.repeat(98), cols(w, [' d (Dense)', '(None, 1)', '3']),
    ]);
  });
});

describe('fitDataset and evaluateDataset', () => {
  const x = ck.tensor([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [5, 2]);
  const y = ck.tensor([1, 0, 1, 0, 1], [5, 1]);
  const rows = (from: number, to: number) => ({
    xs: ck.tensor(Array.from(x.dataSync()).slice(from * 2, to * 2), [to - from, 2]),
    ys: ck.tensor(Array.from(y.dataSync()).slice(from, to), [to - from, 1]),
  });
  /** Batches of 2, 2 and 1 rows of x, y. */
  const batches = () => ck.data.array([rows(0, 2), rows(2, 4), rows(4, 5)]);
  function model(compile = true) {
    const m = ck.sequential([ck.layers.input({ shape: [2] }), ck.layers.dense({ units: 1 })], { name: 'dsm' });
    m.build();
    m.setWeights([ck.tensor([0.1, -0.2], [2, 1]), ck.tensor([0.05], [1])]);
    if (compile) m.compile({ optimizer: ck.optimizers.sgd({ learningRate: 0.01 }), loss: 'meanSquaredError' });
    return m;
  }

  class Recorder extends Callback {
    events: string[] = [];
    seen: Record<string, unknown> = {};
    async onTrainBegin() { this.seen = { ...this.params }; this.events.push('trainBegin'); }
    async onEpochBegin(e: number) { this.events.push(`epochBegin ${e}`); }
    async onBatchBegin(b: number, logs?: Logs) { this.events.push(`batchBegin ${b} ${JSON.stringify(logs)}`); }
    async onBatchEnd(b: number, logs?: Logs) { this.events.push(`batchEnd ${b} ${Object.keys(logs ?? {}).join(',')} size=${logs?.size}`); }
    async onEpochEnd(e: number) { this.events.push(`epochEnd ${e}`); }
    async onTrainEnd() { this.events.push('trainEnd'); }
  }

  afterEach(() => {
    jest.restoreAllMocks();
  });

  test('argument errors name the model and the call', async () => {
    await expect(model(false).fitDataset(batches(), { verbose: 0 })).rejects.toThrow(new ck.ValueError('dsm.fitDataset: compile the model first (model.compile({ optimizer, loss }))'));
    for (const epochs of [0, -1, 1.5]) {
      await expect(model().fitDataset(batches(), { epochs, verbose: 0 })).rejects.toThrow(new ck.ValueError(`dsm.fitDataset: epochs must be a positive integer, got ${epochs}`));
    }
    await expect(model().fitDataset(ck.data.array([]), { verbose: 0 })).rejects.toThrow(new ck.ValueError('dsm.fitDataset: the dataset gave no batches in epoch 1'));
    await expect(model().fitDataset(ck.data.array([]), { verbose: 0, initialEpoch: 2, epochs: 4 })).rejects.toThrow('dsm.fitDataset: the dataset gave no batches in epoch 3');
    await expect(model().evaluateDataset(ck.data.array([]))).rejects.toThrow(new ck.ValueError('dsm.evaluateDataset: the dataset is empty'));
    await expect(model().evaluateDataset(ck.data.array([1]) as never)).rejects.toThrow('dsm.evaluateDataset: dataset elements must be { xs, ys } batches of tensors (use dataset.batch(n))');
  });

  test('callbacks: params (steps from the dataset\'s size), each batch\'s index and size, running logs', async () => {
    const r = new Recorder();
    await model().fitDataset(batches(), { epochs: 1, verbose: 0, callbacks: r });
    expect(r.seen).toEqual({ epochs: 1, steps: 3, samples: null });
    expect(r.events).toEqual([
      'trainBegin', 'epochBegin 0',
      'batchBegin 0 {"batch":0,"size":2}', 'batchEnd 0 batch,size,loss size=2',
      'batchBegin 1 {"batch":1,"size":2}', 'batchEnd 1 batch,size,loss size=2',
      'batchBegin 2 {"batch":2,"size":1}', 'batchEnd 2 batch,size,loss size=1',
      'epochEnd 0', 'trainEnd',
    ]);
  });

  test('batchesPerEpoch: that many batches per epoch, read on through the source; steps are unknown (0) without it or a size', async () => {
    const r = new Recorder();
    await model().fitDataset(batches().repeat(), { epochs: 2, batchesPerEpoch: 2, verbose: 0, callbacks: r });
    expect(r.seen).toEqual({ epochs: 2, steps: 2, samples: null });
    expect(r.events.filter((e) => e.startsWith('batchEnd')).map((e) => e.split(' ')[1])).toEqual(['0', '1', '0', '1']);
    const unsized = new Recorder();
    await model().fitDataset(ck.data.generator(function* () { yield rows(0, 2); }), { verbose: 0, callbacks: unsized });
    expect(unsized.seen).toEqual({ epochs: 1, steps: 0, samples: null });
  });

  test('the epoch loss is the example-weighted mean of the batches\' losses', async () => {
    const losses: number[] = [];
    const m = model();
    const h = await m.fitDataset(batches(), { verbose: 0, callbacks: { onBatchEnd: async (_b, logs) => { losses.push(logs!.loss); } } });
    // the running mean after batch 3 is the epoch's loss; batch losses were (2 l0 + 2 l1 + 1 l2) / 5
    expect(h.history.loss[0]).toBeCloseTo(losses[2], 6);
    expect(losses[0]).not.toBeCloseTo(losses[2], 6);
  });

  test('stopTraining set during a batch, or the signal aborted, ends the epoch after that batch', async () => {
    const r = new Recorder();
    const m = model();
    const h = await m.fitDataset(batches(), { epochs: 3, verbose: 0, callbacks: [r, { onBatchEnd: async (b) => { if (b === 1) m.stopTraining = true; } }] });
    expect(h.epoch).toEqual([0]);
    expect(r.events.filter((e) => e.startsWith('batchEnd'))).toHaveLength(2);
    const ac = new AbortController();
    const aborted = model();
    const h2 = await aborted.fitDataset(batches(), { epochs: 3, verbose: 0, signal: ac.signal, callbacks: { onBatchEnd: async (b) => { if (b === 0) ac.abort(); } } });
    expect(h2.epoch).toEqual([0]);
    expect(aborted.stopTraining).toBe(true);
  });

  test('evaluateDataset: the example-weighted mean over the batches equals evaluate over all rows; `batches` limits them', async () => {
    const m = model();
    const [all] = await m.evaluate(x, y);
    const [byBatches] = await m.evaluateDataset(batches());
    expect(byBatches).toBeCloseTo(all, 6);
    const [first] = await m.evaluateDataset(batches(), { batches: 1 });
    const [firstRows] = await m.evaluate(rows(0, 2).xs, rows(0, 2).ys);
    expect(first).toBeCloseTo(firstRows, 6);
    expect(first).not.toBeCloseTo(all, 3);
  });

  test('validationData as [x, y] tensors gives val_loss, as evaluate computes it after the epoch', async () => {
    const m = model();
    const h = await m.fitDataset(batches(), { verbose: 0, validationData: [x, y] });
    const [after] = await m.evaluate(x, y);
    expect(h.history.val_loss[0]).toBeCloseTo(after, 6);
  });

  test('on a TTY, verbose 1 draws the live bar (redrawn in place) and verbose 2 prints only one line per epoch, as Keras does', async () => {
    const out: string[] = [];
    jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => { out.push(String(s)); return true; });
    const wasTTY = Object.getOwnPropertyDescriptor(process.stdout, 'isTTY');
    Object.defineProperty(process.stdout, 'isTTY', { value: true, configurable: true, writable: true });
    try {
      await model().fitDataset(batches(), { epochs: 1, verbose: 1 });
      expect(out[0]).toBe('Epoch 1/1\n');
      expect(out[out.length - 2]).toMatch(new RegExp(`^\\r3/3 \\[${'='.repeat(30)}\\] - ETA: 0s - loss: \\d\\.\\d{4}\\x1b\\[K$`));
      expect(out[out.length - 1]).toMatch(new RegExp(`^\\r3/3 \\[${'='.repeat(30)}\\] - \\d+s \\d+(us|ms)/step - loss: \\d\\.\\d{4}\\x1b\\[K\\n$`));
      out.length = 0;
      await model().fitDataset(batches(), { epochs: 1, verbose: 2 });
      expect(out).toHaveLength(2);
      expect(out[0]).toBe('Epoch 1/1\n');
      expect(out[1]).toMatch(new RegExp(`^3/3 \\[${'='.repeat(30)}\\] - \\d+s \\d+(us|ms)/step - loss: \\d\\.\\d{4}\\n$`));
    } finally {
      if (wasTTY) Object.defineProperty(process.stdout, 'isTTY', wasTTY);
      else delete (process.stdout as { isTTY?: boolean }).isTTY;
    }
  });

  test('verbose: 1 (the default) and 2 print the progress to stdout, 0 prints nothing', async () => {
    const out: string[] = [];
    jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => { out.push(String(s)); return true; });
    await model().fitDataset(batches(), { epochs: 2, verbose: 0 });
    expect(out).toEqual([]);
    await model().fitDataset(batches(), { epochs: 2 });
    expect(out.filter((l) => l.startsWith('Epoch '))).toEqual(['Epoch 1/2\n', 'Epoch 2/2\n']);
    out.length = 0;
    await model().fitDataset(batches(), { epochs: 1, verbose: 2 });
    expect(out[0]).toBe('Epoch 1/1\n');
    expect(out[1]).toMatch(new RegExp(`^3/3 \\[${'='.repeat(30)}\\] - \\d+s \\d+(us|ms)/step - loss: \\d\\.\\d{4}\\n$`));
  });
});
