// Keras's preprocessing layers that run inside a model: Rescaling (y = x * scale + offset, the
// native rescaling kind).
import { describeValue, ValueError } from '../errors';
import { Layer, LayerArgs, NativeLayerSpec, Shape } from './layer';

export interface RescalingArgs extends LayerArgs {
  /** The factor each input value is multiplied by (Keras's scale: 1 / 255 maps bytes to [0, 1]). */
  scale: number;
  /** Added after the scaling (default 0). */
  offset?: number;
}

function finiteNumber(v: unknown, where: string, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new ValueError(`${where}: ${what} must be a finite number, got ${describeValue(v)}`);
  }
  return v;
}

/** Keras Rescaling: y = x * scale + offset over every value. */
export class Rescaling extends Layer {
  readonly className = 'Rescaling';
  readonly scale: number;
  readonly offset: number;

  constructor(args: RescalingArgs) {
    super(args, 'rescaling', { scale: 'number', offset: 'number' });
    this.scale = finiteNumber(args?.scale, this.name, 'scale');
    this.offset = finiteNumber(args.offset ?? 0, this.name, 'offset');
  }

  computeOutputShape(inputShape: Shape): Shape {
    return inputShape;
  }

  lower(): NativeLayerSpec[] {
    return [{ kind: 'rescaling', name: this.name, factor: this.scale, offset: this.offset }];
  }

  getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), scale: this.scale, offset: this.offset };
  }
}
