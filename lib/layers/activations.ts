// Activation names (tfjs/Keras) and how each lowers onto the executor: relu fuses into the
// conv/dense epilogue; the others become their own native layer. Configs are written with the
// Keras name (`activationConfigName`) and read with either the tfjs or the Keras spelling.
import { describeValue, ValueError } from '../errors';
import { NativeLayerSpec } from './layer';

/**
 * gelu is the exact x * Phi(x) (Keras's default, tfjs's 'gelu'); gelu_new its tanh approximation
 * (tfjs's name; Keras's `gelu(approximate=True)`). hardSigmoid is Keras 3's relu6(x + 3) / 6.
 */
export type ActivationIdentifier =
  | 'linear' | 'relu' | 'relu6' | 'sigmoid' | 'tanh' | 'softmax' | 'elu'
  | 'gelu' | 'gelu_new' | 'swish' | 'hardSwish' | 'hardSigmoid' | 'softplus' | 'selu' | 'mish';

/** Each identifier's native activation (`kind: 'activation'`), for those that lower to one. */
const nativeName: Partial<Record<ActivationIdentifier, string>> = {
  relu: 'relu', sigmoid: 'sigmoid', tanh: 'tanh', elu: 'elu', gelu: 'gelu', gelu_new: 'geluTanh', swish: 'swish',
  hardSwish: 'hardSwish', hardSigmoid: 'hardSigmoid', softplus: 'softplus', selu: 'selu', mish: 'mish',
};
const known: ActivationIdentifier[] = ['linear', 'relu', 'relu6', 'sigmoid', 'tanh', 'softmax', 'elu', 'gelu', 'gelu_new',
  'swish', 'hardSwish', 'hardSigmoid', 'softplus', 'selu', 'mish'];

/** Keras's spellings (and SiLU, swish's other name) of the identifiers whose tfjs name differs. */
const aliases: Record<string, ActivationIdentifier> = {
  silu: 'swish', hard_silu: 'hardSwish', hard_swish: 'hardSwish', hardSilu: 'hardSwish', hard_sigmoid: 'hardSigmoid',
};

/** The name a saved config carries: Keras's, which tfjs reads too where it has the activation. */
const configName: Partial<Record<ActivationIdentifier, string>> = { hardSwish: 'hard_silu', hardSigmoid: 'hard_sigmoid' };

export function checkActivation(v: unknown, where: string): ActivationIdentifier {
  if (v === undefined || v === null) return 'linear';
  if (typeof v === 'string' && Object.prototype.hasOwnProperty.call(aliases, v)) return aliases[v];
  if (typeof v !== 'string' || !known.includes(v as ActivationIdentifier)) {
    throw new ValueError(`${where}: unknown activation ${describeValue(v)} (known: ${known.join(', ')}; also ${Object.keys(aliases).join(', ')})`);
  }
  return v as ActivationIdentifier;
}

export function activationConfigName(act: ActivationIdentifier): string {
  return configName[act] ?? act;
}

/** The native layer computing `act` on its own (none for 'linear'). */
export function activationLayer(act: ActivationIdentifier, name: string, alpha = 0): NativeLayerSpec[] {
  if (act === 'linear') return [];
  if (act === 'softmax') return [{ kind: 'softmax', name }];
  if (act === 'relu6') return [{ kind: 'activation', name, activation: 'clippedRelu', alpha: 6 }];
  return [{ kind: 'activation', name, activation: nativeName[act] as string, alpha: act === 'elu' ? 1 : alpha }];
}

/** A conv/dense layer followed by its activation: relu fused, others appended. */
export function withActivation(main: NativeLayerSpec, act: ActivationIdentifier): NativeLayerSpec[] {
  if (act === 'relu') return [{ ...main, activation: 'relu' }];
  return [main, ...activationLayer(act, `${main.name}/${act}`)];
}
