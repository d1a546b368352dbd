// ck.viz: pictures of training and of models, as files that need no browser to make.
import { confusionSpec, curvesSpec, renderPng, renderSvg } from './charts';
import { featureMapTiles, filterTiles, tileGrid } from './grids';

export type { HistoryLike, VegaLiteSpec } from './charts';
export type { GridOptions, Tile } from './grids';

/** Counts [true class][predicted class] from class ids. */
export function confusionMatrix(labels: ArrayLike<number>, predictions: ArrayLike<number>, numClasses: number): number[][] {
  const m = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < labels.length; i++) {
    const t = labels[i];
    const p = predictions[i];
    if (t >= 0 && t < numClasses && p >= 0 && p < numClasses) m[t][p]++;
  }
  return m;
}

export const viz = { curvesSpec, confusionSpec, renderSvg, renderPng, tileGrid, filterTiles, featureMapTiles, confusionMatrix };
