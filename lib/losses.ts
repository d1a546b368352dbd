// Loss names (tfjs camelCase and Keras snake_case) and what 'accuracy' means with each.
import { describeValue, ValueError } from './errors';

export type LossName = 'categoricalCrossentropy' | 'sparseCategoricalCrossentropy' | 'binaryCrossentropy' | 'meanSquaredError';

const aliases: Record<string, LossName> = {
  categoricalCrossentropy: 'categoricalCrossentropy',
  categorical_crossentropy: 'categoricalCrossentropy',
  sparseCategoricalCrossentropy: 'sparseCategoricalCrossentropy',
  sparse_categorical_crossentropy: 'sparseCategoricalCrossentropy',
  binaryCrossentropy: 'binaryCrossentropy',
  binary_crossentropy: 'binaryCrossentropy',
  meanSquaredError: 'meanSquaredError',
  mean_squared_error: 'meanSquaredError',
  mse: 'meanSquaredError',
};

export function getLoss(v: unknown): LossName {
  const name = typeof v === 'string' ? aliases[v] : undefined;
  if (!name) {
    throw new ValueError(`compile: unknown loss ${describeValue(v)} (known: ${Object.keys(aliases).join(', ')})`);
  }
  return name;
}
