/**
 * Device memory of tensors that die inside one library call (an optimizer step's
 * intermediates, the gradients flowing through backward) goes back to the pool when the call
 * ends, instead of when V8 gets round to collecting them. Finalizers only run between tasks:
 * a training loop that reads a value every 1000 steps piled up 5 MB of dead buffers per step
 * on webgpu until the driver crashed (SIGSEGV near step 900). A freed storage refuses further
 * use with an error, so a tensor kept by mistake fails loudly instead of reading reused memory.
 */
import type { Storage } from '../runtime/backend.ts';
import type { Tensor } from './tensor.ts';

let scope: Storage[] | null = null;

/** Called for every storage an eager op allocates. */
export function noteAllocation(s: Storage): void {
  scope?.push(s);
}

/** Runs fn; afterwards frees what it allocated except the storages of `keep()`'s tensors. Nested calls join the outer one. */
export function withTemporaries<R>(fn: () => R, keep: () => Iterable<Tensor | null | undefined>): R {
  if (scope) return fn();
  const mine: Storage[] = [];
  scope = mine;
  let r: R;
  try {
    r = fn();
  } finally {
    scope = null;
  }
  if (!mine.length) return r;
  const kept = new Set<Storage>();
  for (const t of keep()) if (t) kept.add(t._storage);
  for (const s of mine) if (!kept.has(s)) s.backend.release?.(s);
  // end the batch here: the next step's kernels then sit at the same places in their batch,
  // so their cached bind groups (keyed by the params' slot) are found again
  for (const b of new Set(mine.map((s) => s.backend))) {
    b.flush?.();
    b.safePoint?.();
  }
  return r;
}
