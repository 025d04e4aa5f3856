/**
 * State that outlives one call (optimizer buffers) is created through here, so that
 * when a tracer is recording it is still made as real device memory rather than as a
 * value of the graph being traced. The tracer installs `suspend`.
 */
import { noGrad } from './grad-mode.ts';
import type { Tensor } from './tensor.ts';

export const persistentHooks: { suspend: (<R>(fn: () => R) => R) | null } = { suspend: null };

export function persistent(make: () => Tensor): Tensor {
  const run = persistentHooks.suspend ?? (<R>(f: () => R) => f());
  return run(() => noGrad(make));
}

/** The tracer learns which optimizers a traced call stepped (a static replay guards on their options). */
export const observers: { optimizerStep: ((optimizer: object) => void) | null } = { optimizerStep: null };
