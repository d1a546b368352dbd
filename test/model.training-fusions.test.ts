// Training runs a batch norm's ReLU / ReLU6 inside it (one pass forward, the activation's backward
// folded into the batch norm's). The fusion must not change a single bit: the same training with
// CONVKIT_TRAINING_FUSIONS=0 (every layer apart) gives the same history and weights.
import { describe, expect, test } from '@jest/globals';
import { execFileSync } from 'child_process';
import * as path from 'path';

const script = path.join(__dirname, '..', 'test-support', 'children', 'fusion-train.js');

function train(fusions: boolean, optimizer: string): { history: Record<string, number[]>; weights: string[] } {
  const env: NodeJS.ProcessEnv = { ...process.env, CONVKIT_THREADS: '2' };
  if (fusions) delete env.CONVKIT_TRAINING_FUSIONS;
  else env.CONVKIT_TRAINING_FUSIONS = '0';
  return JSON.parse(execFileSync(process.execPath, [script, optimizer], { env, encoding: 'utf8' }));
}

describe('batch norm + ReLU / ReLU6 fused in training', () => {
  test.each(['sgd', 'adam'])('%s: bitwise the same history and weights as the layers apart', (optimizer) => {
    const fused = train(true, optimizer);
    const apart = train(false, optimizer);
    expect(fused.history).toEqual(apart.history);
    expect(fused.weights).toEqual(apart.weights);
    expect(fused.history.loss[1]).toBeLessThan(fused.history.loss[0]);  // it trained
  });
});
