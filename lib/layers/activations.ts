// Activation names (tfjs/Keras) and how each lowers onto the executor: relu fuses into the
// conv/dense epilogue; the others become their own native layer.
import { describeValue, ValueError } from '../errors';
import { NativeLayerSpec } from './layer';

export type ActivationIdentifier = 'linear' | 'relu' | 'relu6' | 'sigmoid' | 'tanh' | 'softmax' | 'elu';
const known: ActivationIdentifier[] = ['linear', 'relu', 'relu6', 'sigmoid', 'tanh', 'softmax', 'elu'];

export function checkActivation(v: unknown, where: string): ActivationIdentifier {
  if (v === undefined || v === null) return 'linear';
  if (typeof v !== 'string' || !known.includes(v as ActivationIdentifier)) {
    throw new ValueError(`${where}: unknown activation ${describeValue(v)} (known: ${known.join(', ')})`);
  }
  return v as ActivationIdentifier;
}

/** The native layer computing `act` on its own (none for 'linear'). */
export function activationLayer(act: ActivationIdentifier, name: string, alpha = 0): NativeLayerSpec[] {
  if (act === 'linear') return [];
  if (act === 'softmax') return [{ kind: 'softmax', name }];
  if (act === 'relu6') return [{ kind: 'activation', name, activation: 'clippedRelu', alpha: 6 }];
  return [{ kind: 'activation', name, activation: act, alpha: act === 'elu' ? 1 : alpha }];
}

/** A conv/dense layer followed by its activation: relu fused, others appended. */
export function withActivation(main: NativeLayerSpec, act: ActivationIdentifier): NativeLayerSpec[] {
  if (act === 'relu') return [{ ...main, activation: 'relu' }];
  return [main, ...activationLayer(act, `${main.name}/${act}`)];
}
