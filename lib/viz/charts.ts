// Charts as Vega-Lite specs, compiled by vega-lite and rendered to SVG by vega's headless View
// in Node (no browser, no canvas), then rasterized to PNG by sharp (librsvg). The specs are
// plain JSON: keep them beside the PNGs so they can be opened in the Vega editor.
import { sharp } from '../sharp';
import { ValueError } from '../errors';

export type VegaLiteSpec = Record<string, unknown>;

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

// vega and vega-lite are ES modules; TypeScript's CommonJS output would turn import() into
// require(), so the dynamic import is kept as written.
const importEsm = new Function('specifier', 'return import(specifier)') as (s: string) => Promise<any>;

/** Per-epoch training history in Keras's shape: { loss: [...], val_loss: [...], accuracy: [...] }. */
export type HistoryLike = Record<string, number[]>;

/** Training and validation loss and accuracy per epoch, one panel per metric. */
export function curvesSpec(history: HistoryLike, opts: { title?: string } = {}): VegaLiteSpec {
  if (!history || typeof history !== 'object') throw new ValueError('curvesSpec: expected a history { loss: [...], ... }');
  const values: { epoch: number; metric: string; split: string; value: number }[] = [];
  for (const [key, series] of Object.entries(history)) {
    if (!Array.isArray(series)) continue;
    const validation = key.startsWith('val_');
    const metric = validation ? key.slice(4) : key;
    if (metric !== 'loss' && metric !== 'accuracy' && metric !== 'acc') continue;
    series.forEach((value, i) => {
      if (Number.isFinite(value)) values.push({ epoch: i + 1, metric: metric === 'acc' ? 'accuracy' : metric, split: validation ? 'validation' : 'training', value });
    });
  }
  const epochs = Math.max(1, ...values.map((v) => v.epoch));
  return {
    $schema: SCHEMA,
    title: opts.title ?? 'Training curves',
    background: 'white',
    data: { values },
    facet: { column: { field: 'metric', type: 'nominal', title: null, sort: ['loss', 'accuracy'], header: { labelFontSize: 13 } } },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 300,
      height: 220,
      layer: [
        {
          mark: { type: 'line', point: true },
          encoding: {
            x: { field: 'epoch', type: 'quantitative', title: 'epoch', scale: { domain: [1, Math.max(2, epochs)] }, axis: { tickMinStep: 1, format: 'd' } },
            y: { field: 'value', type: 'quantitative', title: null, scale: { zero: false } },
            color: { field: 'split', type: 'nominal', title: null, scale: { domain: ['training', 'validation'], range: ['#1f77b4', '#ff7f0e'] } },
            tooltip: [{ field: 'split' }, { field: 'epoch' }, { field: 'value', format: '.4f' }],
          },
        },
      ],
    },
  };
}

/** A confusion matrix heat map: rows true class, columns predicted class, counts in the cells. */
export function confusionSpec(matrix: number[][], classNames: string[], opts: { title?: string } = {}): VegaLiteSpec {
  const k = classNames.length;
  if (!Array.isArray(matrix) || matrix.length !== k || matrix.some((r) => !Array.isArray(r) || r.length !== k)) {
    throw new ValueError(`confusionSpec: expected a ${k}x${k} matrix for ${k} classes`);
  }
  const values = matrix.flatMap((row, t) => {
    const total = row.reduce((a, b) => a + b, 0);
    return row.map((count, p) => ({ actual: classNames[t], predicted: classNames[p], count, rate: total ? count / total : 0 }));
  });
  const correct = matrix.reduce((a, r, i) => a + r[i], 0);
  const total = matrix.reduce((a, r) => a + r.reduce((x, y) => x + y, 0), 0);
  const cell = Math.max(22, Math.min(80, Math.floor(480 / Math.max(1, k))));
  return {
    $schema: SCHEMA,
    title: { fontSize: 13, text: opts.title ?? `Confusion matrix (accuracy ${total ? ((100 * correct) / total).toFixed(2) : '0'}%, ${total} images)` },
    background: 'white',
    data: { values },
    width: cell * k,
    height: cell * k,
    encoding: {
      x: { field: 'predicted', type: 'ordinal', sort: classNames, title: 'predicted class', axis: { labelAngle: -40 } },
      y: { field: 'actual', type: 'ordinal', sort: classNames, title: 'true class' },
    },
    layer: [
      {
        mark: 'rect',
        encoding: {
          color: { field: 'rate', type: 'quantitative', title: 'share of row', scale: { scheme: 'blues', domain: [0, 1] } },
          tooltip: [{ field: 'actual' }, { field: 'predicted' }, { field: 'count' }],
        },
      },
      {
        mark: { type: 'text', fontSize: k > 12 ? 8 : 11 },
        encoding: {
          text: { field: 'count', type: 'quantitative' },
          color: { condition: { test: 'datum.rate > 0.5', value: 'white' }, value: 'black' },
        },
      },
    ],
  };
}

/** Compiles a Vega-Lite spec and renders it to SVG with vega's headless view. */
export async function renderSvg(spec: VegaLiteSpec): Promise<string> {
  const vl = await importEsm('vega-lite');
  const vega = await importEsm('vega');
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logLevel: vega.Error });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** A Vega-Lite spec as PNG bytes (SVG from vega, rasterized by sharp at `scale` times its size). */
export async function renderPng(spec: VegaLiteSpec, opts: { scale?: number } = {}): Promise<Buffer> {
  const svg = await renderSvg(spec);
  const density = 72 * (opts.scale ?? 2);
  return sharp(Buffer.from(svg), { density }).flatten({ background: '#ffffff' }).png().toBuffer();
}
