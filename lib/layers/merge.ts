// Merge layers of the functional API (tfjs/Keras names): add, multiply, average take inputs of
// one shape (multiply also an input [..., C] and a gate of its C channels, broadcast over the
// other axes); concatenate joins them along the last axis.
import { describeValue, ShapeError, ValueError } from '../errors';
import { Layer, LayerArgs, NativeLayerSpec, Shape } from './layer';

const show = (s: Shape) => `(None, ${s.join(', ')})`;

abstract class Merge extends Layer {
  readonly multiInput = true;
  protected abstract readonly nativeKind: string;

  computeOutputShape(inputShapes: Shape): Shape {
    const shapes = inputShapes as unknown as Shape[];
    if (!Array.isArray(shapes[0]) || shapes.length < 2) throw new ValueError(`${this.name}: a merge layer needs at least 2 inputs`);
    for (const s of shapes) {
      if (s.length !== shapes[0].length || s.some((d, i) => d !== shapes[0][i])) {
        throw new ShapeError(`${this.name}: inputs must have the same shape, got ${shapes.map(show).join(' and ')}`);
      }
    }
    return shapes[0];
  }

  lower(): NativeLayerSpec[] {
    return [{ kind: this.nativeKind, name: this.name }];
  }
}

export class Add extends Merge {
  readonly className = 'Add';
  protected readonly nativeKind = 'add';

  constructor(args: LayerArgs = {}) {
    super(args, 'add', {});
  }
}

/**
 * Product of its inputs. Two inputs may differ in shape when one is a gate of C values, [C] or
 * [1, ..., 1, C], and the other [..., C]: the gate is broadcast over the other axes, as Keras
 * broadcasts (expanding the lower-rank input at axis 1), which is the squeeze-and-excitation
 * product of an image [H, W, C] and its channel weights.
 */
export class Multiply extends Merge {
  readonly className = 'Multiply';
  protected readonly nativeKind = 'multiply';

  constructor(args: LayerArgs = {}) {
    super(args, 'multiply', {});
  }

  computeOutputShape(inputShapes: Shape): Shape {
    const shapes = inputShapes as unknown as Shape[];
    if (shapes.length !== 2 || !Array.isArray(shapes[0]) || !Array.isArray(shapes[1])) return super.computeOutputShape(inputShapes);
    const [a, b] = shapes;
    if (a.length === b.length && a.every((d, i) => d === b[i])) return a;
    const gates = (g: Shape, x: Shape) =>
      g.length <= x.length && g[g.length - 1] === x[x.length - 1] && g.slice(0, -1).every((d) => d === 1) && x.slice(0, -1).some((d) => d !== 1);
    if (gates(a, b)) return b;
    if (gates(b, a)) return a;
    throw new ShapeError(
      `${this.name}: inputs ${show(a)} and ${show(b)} do not broadcast: Multiply takes inputs of one shape, or an input (None, ..., C) and a gate of its C channels (None, C) or (None, 1, ..., 1, C)`,
    );
  }
}

export class Average extends Merge {
  readonly className = 'Average';
  protected readonly nativeKind = 'average';

  constructor(args: LayerArgs = {}) {
    super(args, 'average', {});
  }
}

export class Concatenate extends Merge {
  readonly className = 'Concatenate';
  protected readonly nativeKind = 'concatenate';

  constructor(args: LayerArgs & { axis?: number } = {}) {
    super(args, 'concatenate', { axis: 'integer' });
    if (args.axis !== undefined && args.axis !== -1) {
      throw new ValueError(`${this.name}: only axis -1 (the last axis, channels) is supported, got ${describeValue(args.axis)}`);
    }
  }

  computeOutputShape(inputShapes: Shape): Shape {
    const shapes = inputShapes as unknown as Shape[];
    if (!Array.isArray(shapes[0]) || shapes.length < 2) throw new ValueError(`${this.name}: a merge layer needs at least 2 inputs`);
    const lead = shapes[0].slice(0, -1);
    for (const s of shapes) {
      if (s.length !== shapes[0].length || s.slice(0, -1).some((d, i) => d !== lead[i])) {
        throw new ShapeError(`${this.name}: inputs must match in all but the last axis, got ${shapes.map(show).join(' and ')}`);
      }
    }
    return [...lead, shapes.reduce((n, s) => n + s[s.length - 1], 0)];
  }

  getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), axis: -1 };
  }
}
