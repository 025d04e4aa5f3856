import { afterEach, describe, expect, it } from 'vitest';
import { pausedPolls, pollGently } from '../src/runtime/webgpu/gentle-poll.ts';
import { getGPU, isAvailable } from '../src/runtime/webgpu/context.ts';

const available = await isAvailable();
type SI = (fn: (...a: unknown[]) => void, ...args: unknown[]) => unknown;
const g = globalThis as unknown as { setImmediate: SI };
const realSetImmediate = g.setImmediate;

/** A stand-in global setImmediate that records what it is given, then defers as Node does. */
function recordingSetImmediate(): { fn: SI; seen: unknown[] } {
  const seen: unknown[] = [];
  const fn: SI = (cb, ...args) => {
    seen.push(cb);
    return realSetImmediate(cb, ...args);
  };
  return { fn, seen };
}

afterEach(() => {
  g.setImmediate = realSetImmediate;
});

describe('gentle polling (Dawn-node polls through the global setImmediate)', () => {
  it('pauses native callbacks only, and restores the global after the wait, also when it rejects', async () => {
    const rec = recordingSetImmediate();
    g.setImmediate = rec.fn;
    const jsCallback = () => {};
    let nativeRanAfter = -1;
    const t0 = performance.now();
    const native = function (this: unknown) {
      nativeRanAfter = performance.now() - t0;
    }.bind(null); // a bound function reads as [native code], as Dawn's Napi callback does
    await pollGently(
      () =>
        new Promise<void>((resolve) => {
          g.setImmediate(jsCallback);
          g.setImmediate(native);
          g.setImmediate(resolve as () => void);
        }),
      5,
    );
    await new Promise((r) => realSetImmediate(r));
    expect(rec.seen[0]).toBe(jsCallback); // passed through untouched
    expect(rec.seen[1]).not.toBe(native); // wrapped: paused first
    expect(nativeRanAfter).toBeGreaterThanOrEqual(4);
    expect(g.setImmediate).toBe(rec.fn);
    await expect(pollGently(() => Promise.reject(new Error('lost')), 1)).rejects.toThrow('lost');
    expect(g.setImmediate).toBe(rec.fn);
  });

  it('the pause grows with the time waited (5% of it, at most 1 ms)', async () => {
    let ranAfter = -1;
    await pollGently(async () => {
      await new Promise((r) => setTimeout(r, 40)); // a wait already 40 ms long: a 1 ms pause, not 0.01
      const t0 = performance.now();
      await new Promise<void>((resolve) =>
        g.setImmediate(
          function () {
            ranAfter = performance.now() - t0;
            resolve();
          }.bind(null),
        ),
      );
    }, 0.01);
    expect(ranAfter).toBeGreaterThanOrEqual(0.9);
  });

  it('overlapping waits share one installation; a pause of 0 installs nothing', async () => {
    const rec = recordingSetImmediate();
    g.setImmediate = rec.fn;
    let releaseOuter!: () => void;
    const outer = pollGently(() => new Promise<void>((r) => (releaseOuter = r)), 1);
    const installed = g.setImmediate;
    expect(installed).not.toBe(rec.fn);
    await pollGently(async () => expect(g.setImmediate).toBe(installed), 1);
    expect(g.setImmediate).toBe(installed); // the outer wait still runs
    releaseOuter();
    await outer;
    expect(g.setImmediate).toBe(rec.fn);
    await pollGently(async () => expect(g.setImmediate).toBe(rec.fn), 0);
  });

  it.runIf(available)("a readback's polls by Dawn go through the pause (Dawn still looks the global up)", async () => {
    const ctx = await getGPU();
    const buf = ctx.upload(new Float32Array([1, 2, 3, 4]));
    const before = pausedPolls();
    const pause = ctx.waiter.pollPauseMs;
    ctx.waiter.pollPauseMs = 0.05;
    try {
      expect([...new Float32Array(await ctx.read(buf, 16))]).toEqual([1, 2, 3, 4]);
    } finally {
      ctx.waiter.pollPauseMs = pause;
      ctx.pool.release(buf);
    }
    expect(pausedPolls()).toBeGreaterThan(before);
    expect(g.setImmediate).toBe(realSetImmediate);
  });
});
