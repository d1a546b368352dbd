// The pictures `convkit train` leaves in its output folder: training curves and the confusion
// matrix (Vega-Lite specs beside their PNGs), the first conv layer's filters and its feature maps
// for one test image (raw pixels to PNG).
import * as path from 'path';
import * as ck from '../index';
import { writeFileAtomic } from './common';

export interface ReportFiles {
  curves?: string;
  curvesSpec?: string;
  confusion?: string;
  confusionSpec?: string;
  filters?: string;
  featureMaps?: string;
}

async function writeChart(dir: string, name: string, spec: ck.VegaLiteSpec): Promise<{ png: string; spec: string }> {
  const specFile = path.join(dir, `${name}.vl.json`);
  const png = path.join(dir, `${name}.png`);
  writeFileAtomic(specFile, `${JSON.stringify(spec, null, 2)}\n`);
  writeFileAtomic(png, await ck.viz.renderPng(spec));
  return { png, spec: specFile };
}

export async function writeCurves(dir: string, history: Record<string, number[]>, title: string): Promise<Partial<ReportFiles>> {
  const { png, spec } = await writeChart(dir, 'curves', ck.viz.curvesSpec(history, { title }));
  return { curves: png, curvesSpec: spec };
}

export async function writeConfusion(dir: string, matrix: number[][], classNames: string[], title?: string): Promise<Partial<ReportFiles>> {
  const { png, spec } = await writeChart(dir, 'confusion', ck.viz.confusionSpec(matrix, classNames, title ? { title } : {}));
  return { confusion: png, confusionSpec: spec };
}

/** filters.png and feature-maps.png for the first Conv2D layer (nothing when there is none). */
export async function writeConvPictures(dir: string, model: ck.LayersModel, example: ck.Tensor): Promise<Partial<ReportFiles>> {
  const index = model.layers.findIndex((l) => l.className === 'Conv2D');
  if (index < 0) return {};
  const layer = model.layers[index];
  const [kernel] = layer.getWeights();
  const files: Partial<ReportFiles> = {};
  files.filters = path.join(dir, 'filters.png');
  const filterTiles = ck.viz.filterTiles(kernel);
  writeFileAtomic(files.filters, await ck.viz.tileGrid(filterTiles, { scale: Math.max(4, Math.round(48 / kernel.shape[0])) }));

  const maps = model.layerOutput(example, index);
  const mapTiles = ck.viz.featureMapTiles(maps);
  const [, h, w, c] = example.shape;
  // The input image first (its centre, when the layer's 'valid' padding made the maps smaller),
  // then one tile per channel of the layer's output.
  const [, mh, mw] = maps.shape;
  const inputTile: ck.Tile[] = [];
  if (mh <= h && mw <= w && (c === 1 || c === 3)) {
    const px = await example.data();
    const top = Math.floor((h - mh) / 2);
    const left = Math.floor((w - mw) / 2);
    const data = new Float32Array(mh * mw * c);
    for (let y = 0; y < mh; y++) data.set(px.subarray(((top + y) * w + left) * c, ((top + y) * w + left + mw) * c), y * mw * c);
    inputTile.push({ data, height: mh, width: mw, channels: c });
  }
  files.featureMaps = path.join(dir, 'feature-maps.png');
  writeFileAtomic(files.featureMaps, await ck.viz.tileGrid([...inputTile, ...mapTiles], { scale: Math.max(1, Math.round(96 / Math.max(mh, mw))) }));
  return files;
}
