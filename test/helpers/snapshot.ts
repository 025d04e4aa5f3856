/** Snapshots of a tensor's user-visible state, to check that a failed op left it alone. */
import { expect } from 'vitest';
import type * as torch from '../../src/index.ts';

export interface Snap {
  shape: number[];
  /** joined into one string: comparing big tensors element by element in expect() is slow */
  values: string;
  version: number;
  grad: string | null;
  gradFn: string | null;
  requiresGrad: boolean;
}

/** The storage version counter (PyTorch's t._version): bumped by every in-place write. */
export function versionOf(t: torch.Tensor): number {
  return (t as unknown as { _storage: { version: number } })._storage.version;
}

export function snap(t: torch.Tensor): Snap {
  return {
    shape: [...t.shape],
    values: Array.prototype.join.call(t.toArraySync(), ','),
    version: versionOf(t),
    grad: t.grad ? Array.prototype.join.call(t.grad.toArraySync(), ',') : null,
    gradFn: t.gradFn?.name ?? null,
    requiresGrad: t.requiresGrad,
  };
}

/** Runs `fn`, expects it to throw a message matching every pattern, and the tensors to be unchanged. */
export function expectThrowsUnchanged(fn: () => unknown, patterns: (string | RegExp)[], tensors: torch.Tensor[]): string {
  const before = tensors.map(snap);
  let message: string | null = null;
  try {
    fn();
  } catch (e) {
    message = (e as Error).message;
  }
  expect(message, 'expected an error').not.toBeNull();
  for (const p of patterns) {
    if (typeof p === 'string') expect(message).toContain(p);
    else expect(message).toMatch(p);
  }
  tensors.forEach((t, i) => expect(snap(t), `tensor ${i} changed by a failed op`).toEqual(before[i]));
  return message!;
}
