// While a mapAsync or onSubmittedWorkDone is pending, Dawn for Node (the npm
// package `webgpu`) polls the device from a chain of setImmediate callbacks,
// one wgpuInstanceProcessEvents per turn of the event loop: the main thread
// spins at 100% of a core. Mesa's lavapipe runs the "GPU" work on the same
// cores (one worker per core), so on a 2-core machine the spin takes about a
// third of what the kernels could use. Dawn looks up `setImmediate` on the
// global object each time it schedules the next poll, so for the length of a
// wait we install a setImmediate that parks the thread briefly (Atomics.wait:
// no CPU) before running a native callback. Callbacks written in JavaScript,
// anyone else's, run as before (a bound function reads as native, so one
// scheduled during a wait runs up to a pause late).

/**
 * How long each of Dawn's polls waits first, in ms, at the start of a wait: short against a
 * step, long against one poll (~10 us). The pause then grows with the time waited so far
 * (POLL_PAUSE_GROWTH of it, at most POLL_PAUSE_MAX_MS), so a long wait costs next to no CPU
 * and finishes at most ~5% late, with no estimate of how long the GPU will take.
 */
export const POLL_PAUSE_MS = 0.05;
export const POLL_PAUSE_GROWTH = 0.05;
export const POLL_PAUSE_MAX_MS = 1;

type SetImmediate = (fn: (...a: unknown[]) => void, ...args: unknown[]) => unknown;

const g = globalThis as unknown as { setImmediate?: SetImmediate };
let active = 0;
let original: SetImmediate | null = null;
let parker: Int32Array | null = null;
let pauseMs = POLL_PAUSE_MS;
let waitStart = 0;
let paused = 0;

const nativeSource = /\{\s*\[native code\]\s*\}\s*$/;
const isNative = (fn: unknown): boolean => typeof fn === 'function' && nativeSource.test(Function.prototype.toString.call(fn));

function gentle(this: unknown, fn: (...a: unknown[]) => void, ...args: unknown[]): unknown {
  const orig = original!;
  if (!isNative(fn)) return orig.call(this, fn, ...args);
  return orig.call(this, () => {
    paused++;
    const grown = Math.min(POLL_PAUSE_MAX_MS, POLL_PAUSE_GROWTH * (performance.now() - waitStart));
    Atomics.wait(parker!, 0, 0, Math.max(pauseMs, grown));
    fn(...args);
  });
}

/** Native (Dawn's) callbacks run after a pause so far: a test sees that Dawn still schedules its polls through the global. */
export function pausedPolls(): number {
  return paused;
}

/** Whether this runtime polls through a global setImmediate that can be swapped (Node; not a browser). */
export function canPollGently(): boolean {
  return typeof g.setImmediate === 'function' && typeof SharedArrayBuffer === 'function' && typeof Atomics?.wait === 'function';
}

/**
 * Runs `wait` (a promise that Dawn resolves by polling) with the gentle
 * setImmediate installed (each poll paused `pause` ms or more, see POLL_PAUSE_MS; 0 spins as Dawn does),
 * and restores the original afterwards; nested and concurrent waits share one
 * installation.
 */
export async function pollGently<T>(wait: () => Promise<T>, pause = POLL_PAUSE_MS): Promise<T> {
  if (!canPollGently() || !(pause > 0)) return wait();
  pauseMs = pause;
  if (active++ === 0) {
    waitStart = performance.now();
    original = g.setImmediate!;
    parker ??= new Int32Array(new SharedArrayBuffer(4));
    g.setImmediate = gentle as SetImmediate;
  }
  try {
    return await wait();
  } finally {
    if (--active === 0) {
      g.setImmediate = original!;
      original = null;
    }
  }
}
