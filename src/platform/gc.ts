/**
 * Garbage collection on demand, for device memory that V8 cannot see: GPU buffers and bind
 * groups are held by small JS objects, and are only given back when those are collected
 * and their finalizers run.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * A function that runs a full garbage collection, or null. In Node without
 * --expose-gc, v8 enables gc() for this isolate and a fresh vm context hands it out.
 */
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

/** A FinalizationRegistry whose dead entries can be cleaned up inside the running task, where the engine offers that. */
export type SweepableRegistry<T> = FinalizationRegistry<T> & { cleanupSome?: () => void };

let Sweepable: FinalizationRegistryConstructor | null | undefined;

/**
 * A FinalizationRegistry with `cleanupSome`. Finalization callbacks otherwise run only
 * between tasks, so a loop that never awaits would never get a dead tensor's buffer back,
 * however often it collects. V8 has `cleanupSome` behind a flag that a context created after
 * setting it picks up (as gc() above); elsewhere this is a plain registry.
 */
export function sweepableRegistry<T>(cleanup: (held: T) => void): SweepableRegistry<T> {
  if (Sweepable === undefined) {
    try {
      setFlagsFromString('--harmony-weak-refs-with-cleanup-some');
      const FR = runInNewContext('FinalizationRegistry') as FinalizationRegistryConstructor;
      Sweepable = typeof (FR.prototype as SweepableRegistry<unknown>).cleanupSome === 'function' ? FR : null;
    } catch {
      Sweepable = null;
    }
  }
  return new (Sweepable ?? FinalizationRegistry)<T>(cleanup);
}
