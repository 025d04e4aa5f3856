/**
 * A function that runs a full garbage collection, or null. In Node without
 * --expose-gc, v8 enables gc() for this isolate and a fresh vm context hands it out.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export function gcFunction(): (() => void) | null {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === 'function') return g;
  try {
    setFlagsFromString('--expose-gc');
    const fn = runInNewContext('gc') as (() => void) | undefined;
    return typeof fn === 'function' ? fn : null;
  } catch {
    return null;
  }
}
