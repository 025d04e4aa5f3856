/** Pages cannot ask for a collection (except where a flag exposes gc()): finalizers run when the browser collects. */
export function gcFunction(): (() => void) | null {
  const g = (globalThis as { gc?: () => void }).gc;
  return typeof g === 'function' ? g : null;
}

/** A FinalizationRegistry whose dead entries can be cleaned up inside the running task, where the engine offers that. */
export type SweepableRegistry<T> = FinalizationRegistry<T> & { cleanupSome?: () => void };

/** Browsers offer no `cleanupSome`: a plain registry (a page's loop yields to the browser to render anyway). */
export function sweepableRegistry<T>(cleanup: (held: T) => void): SweepableRegistry<T> {
  return new FinalizationRegistry<T>(cleanup);
}
