/**
 * Workarounds for reported runtime bugs, in one place so they are easy to drop once fixed.
 *
 * WaitEstimator (src/runtime/webgpu/context.ts) learns its ns-per-cost rate from every
 * wait, dividing the measured time by the batch's cost: one slow wait of a tiny batch
 * (cost 1 taking 3 ms: a thread wake-up, a GC pause) sets the rate to ~8e5 ns/unit, and
 * the rate then feeds on its own sleeps (the slept time counts as busy time). Reads then
 * sleep for seconds: single waits of 11-62 s were measured in test/webgpu-ops.test.ts
 * (267 s instead of ~20 s), and the memory test timed out at 120 s. Tests of values and
 * memory do not depend on how the runtime waits, so they turn the sleeping off. (It is off
 * by default since the waits poll gently (runtime/webgpu/gentle-poll.ts); this keeps these
 * tests off it whatever the default.)
 */
import * as torch from '../../src/index.ts';

export function disableWaitSleep(): void {
  torch.webgpu.context().waiter.sleepFraction = 0;
}
