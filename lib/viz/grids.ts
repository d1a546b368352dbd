// Image grids from raw pixels (sharp encodes them): a conv layer's filters as tiles, a layer's
// activations (feature maps) as tiles. Each tile is scaled to its own min..max and enlarged
// with nearest-neighbour sampling so that single weights stay visible as squares.
import { sharp } from '../sharp';
import { ValueError } from '../errors';
import { checkTensor, Tensor } from '../tensor';

export interface Tile {
  /** h * w * channels values, any range (each tile is normalized to its own min..max). */
  data: ArrayLike<number>;
  height: number;
  width: number;
  channels: 1 | 3;
}

export interface GridOptions {
  /** Columns of tiles (default: about square). */
  columns?: number;
  /** Each tile's pixels are drawn as scale x scale squares (default: to about 64 px). */
  scale?: number;
  /** Pixels between tiles (default 2), drawn in `background` (0..255 grey, default 255). */
  gap?: number;
  background?: number;
}

function normalize(t: Tile): Uint8Array {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < t.data.length; i++) {
    const v = t.data[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const range = hi - lo;
  const out = new Uint8Array(t.data.length);
  for (let i = 0; i < t.data.length; i++) out[i] = range > 0 ? Math.round((255 * (t.data[i] - lo)) / range) : 0;
  return out;
}

/** Tiles (all of one size) in a grid, as PNG bytes (RGB). */
export async function tileGrid(tiles: Tile[], opts: GridOptions = {}): Promise<Buffer> {
  if (!Array.isArray(tiles) || tiles.length === 0) throw new ValueError('tileGrid: no tiles');
  const { height: th, width: tw } = tiles[0];
  if (tiles.some((t) => t.height !== th || t.width !== tw || t.data.length !== th * tw * t.channels)) {
    throw new ValueError('tileGrid: tiles must all have the same size and height * width * channels values');
  }
  const cols = Math.max(1, Math.min(tiles.length, opts.columns ?? Math.ceil(Math.sqrt(tiles.length))));
  const rows = Math.ceil(tiles.length / cols);
  const scale = Math.max(1, Math.round(opts.scale ?? Math.max(1, Math.round(64 / Math.max(th, tw)))));
  const gap = opts.gap ?? 2;
  const W = cols * tw * scale + (cols + 1) * gap;
  const H = rows * th * scale + (rows + 1) * gap;
  const img = new Uint8Array(W * H * 3).fill(opts.background ?? 255);
  tiles.forEach((t, k) => {
    const px = normalize(t);
    const x0 = gap + (k % cols) * (tw * scale + gap);
    const y0 = gap + Math.floor(k / cols) * (th * scale + gap);
    for (let y = 0; y < th * scale; y++) {
      for (let x = 0; x < tw * scale; x++) {
        const src = (Math.floor(y / scale) * tw + Math.floor(x / scale)) * t.channels;
        const dst = ((y0 + y) * W + x0 + x) * 3;
        for (let ch = 0; ch < 3; ch++) img[dst + ch] = px[src + (t.channels === 3 ? ch : 0)];
      }
    }
  });
  return sharp(img, { raw: { width: W, height: H, channels: 3 } }).png().toBuffer();
}

/**
 * The filters of a conv2d kernel [kh, kw, in, out] as tiles: RGB when in = 3 (first layers on
 * colour images), otherwise the mean over the input channels in grey.
 */
export function filterTiles(kernel: Tensor): Tile[] {
  const k = checkTensor(kernel, 'filterTiles', 'kernel');
  if (k.rank !== 4) throw new ValueError(`filterTiles: expected a conv2d kernel [kh, kw, in, out], got [${k.shape.join(',')}]`);
  const [kh, kw, cin, cout] = k.shape;
  const w = k.dataSync();
  const rgb = cin === 3;
  return Array.from({ length: cout }, (_, o) => {
    const data = new Float32Array(kh * kw * (rgb ? 3 : 1));
    for (let y = 0; y < kh; y++) {
      for (let x = 0; x < kw; x++) {
        for (let i = 0; i < cin; i++) {
          const v = w[((y * kw + x) * cin + i) * cout + o];
          if (rgb) data[(y * kw + x) * 3 + i] = v;
          else data[y * kw + x] += v / cin;
        }
      }
    }
    return { data, height: kh, width: kw, channels: rgb ? 3 : 1 };
  });
}

/** The channels of one example's activations [1, h, w, c] (or [h, w, c]) as grey tiles. */
export function featureMapTiles(activations: Tensor): Tile[] {
  const a = checkTensor(activations, 'featureMapTiles', 'activations');
  const shape = a.rank === 4 ? a.shape.slice(1) : a.shape;
  if (shape.length !== 3 || (a.rank === 4 && a.shape[0] < 1)) throw new ValueError(`featureMapTiles: expected activations [1, h, w, c], got [${a.shape.join(',')}]`);
  const [h, w, c] = shape;
  const v = a.dataSync();
  return Array.from({ length: c }, (_, ch) => {
    const data = new Float32Array(h * w);
    for (let p = 0; p < h * w; p++) data[p] = v[p * c + ch];
    return { data, height: h, width: w, channels: 1 as const };
  });
}
