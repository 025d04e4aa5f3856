/** Pages cannot ask for a collection (except where a flag exposes gc()): finalizers run when the browser collects. */
export function gcFunction(): (() => void) | null {
  const g = (globalThis as { gc?: () => void }).gc;
  return typeof g === 'function' ? g : null;
}
