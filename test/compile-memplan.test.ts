/**
 * The static memory plan of compiled WebGPU graphs (src/compile/gpu-memory.ts): a warm
 * compiled whole step binds the same buffers every call, so it creates no bind group and no
 * buffer except those of the outputs it hands out (the loss, the gradients); its results stay
 * equal to eager mode's over several steps, also the results of earlier calls the user still
 * holds; the plan's buffers do not grow per call and go back to the pool when it is released.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import type { GpuPlan } from '../src/compile/gpu-plan.ts';
import { assignSlots, memplanCapBytes, PlanLru } from '../src/compile/gpu-memory.ts';
import { gcFunction } from '../src/platform/gc.ts';
import { relDiff } from './helpers/compile-util.ts';
import { webgpuAvailable } from './helpers/devices.ts';
import { golden, input, makeOptimizer, makeSequential } from './helpers/golden.ts';

type Tensor = torch.Tensor;
const STEPS = 6;
const WARM = 2;

interface Run {
  model: torch.nn.Module;
  step: () => Tensor;
}

/** The seed model (golden inputs) with Adam, one whole training step. */
function seedAdam(): Run {
  const model = makeSequential('webgpu');
  const x = input('x', 'webgpu');
  const y = input('y', 'webgpu');
  const lossFn = new torch.nn.MSELoss({ reduction: 'sum' });
  const opt = makeOptimizer(golden.b, model.parameters());
  return {
    model,
    step: () => {
      const loss = lossFn(model(x), y);
      opt.zeroGrad();
      loss.backward();
      opt.step();
      return loss;
    },
  };
}

/** A deeper MLP (five Linear layers, Tanh and ReLU) with Adam: many kernels, many intermediates. */
function deepMlp(): Run {
  torch.manualSeed(7);
  const widths = [32, 48, 40, 48, 24, 8];
  const layers: torch.nn.Module[] = [];
  widths.slice(1).forEach((w, i) => {
    layers.push(new torch.nn.Linear(widths[i]!, w));
    if (i < widths.length - 2) layers.push(i % 2 ? new torch.nn.ReLU() : new torch.nn.Tanh());
  });
  const model = new torch.nn.Sequential(...layers).to('webgpu');
  const x = torch.randn(16, widths[0]!).to('webgpu');
  const y = torch.randn(16, widths.at(-1)!).to('webgpu');
  const opt = new torch.optim.Adam(model.parameters(), { lr: 1e-2 });
  return {
    model,
    step: () => {
      const loss = torch.nn.functional.mseLoss(model(x), y);
      opt.zeroGrad();
      loss.backward();
      opt.step();
      return loss;
    },
  };
}

const planOf = (fn: unknown): GpuPlan => {
  const graphs = (fn as torch.Compiled<() => Tensor>).graphs();
  expect(graphs).toHaveLength(1);
  return graphs[0]!.plans.forward as GpuPlan;
};

/**
 * What a call may still create: a buffer for each output the plan computes into a fresh
 * storage (not written in place), and a bind group for each dispatch that binds one.
 */
function freshOutputs(plan: GpuPlan): { buffers: number; dispatches: number } {
  const baseOf = (id: number) => plan.schedule.views.get(id)?.base ?? id;
  const written = new Set(plan.kernels.flatMap((k) => k.kernel.bindings.filter((b) => b.access === 'write').map((b) => b.value)));
  const fresh = new Set(plan.graph.outputs.map((o) => baseOf(o.id)).filter((id) => written.has(id) && !plan.inPlace.has(id)));
  return { buffers: fresh.size, dispatches: plan.kernels.filter((k) => k.kernel.bindings.some((b) => fresh.has(b.value))).length };
}

const read = async (t: Tensor | null | undefined) => (t ? Float32Array.from(await t.toArray()) : null);

describe.skipIf(!webgpuAvailable)('static memory plan of a compiled webgpu step', () => {
  describe.each([
    ['seed model + Adam', seedAdam],
    ['five-layer MLP + Adam', deepMlp],
  ] as const)('%s', (_name, make) => {
    it(`warm calls create no buffer or bind group but their outputs', and ${STEPS} steps equal eager, held results too`, async () => {
      const eager = make();
      const eagerLosses: number[] = [];
      const eagerGrads: (Float32Array | null)[][] = [];
      for (let i = 0; i < STEPS; i++) {
        eagerLosses.push(await eager.step().item());
        eagerGrads.push(await Promise.all(eager.model.parameters().map((p) => read(p.grad))));
      }

      const ctx = torch.webgpu.context();
      const run = make();
      const fast = torch.compile(run.step);
      const held: Tensor[] = [];
      const heldGrads: (Tensor | null)[][] = [];
      const created: { buffers: number; bindGroups: number; live: number }[] = [];
      let planned = 0;
      for (let i = 0; i < STEPS; i++) {
        const before = { buffers: ctx.pool.stats().created, bindGroups: ctx.bindGroupsCreated, live: ctx.pool.stats().liveBuffers };
        held.push(fast());
        heldGrads.push(run.model.parameters().map((p) => p.grad));
        ctx.flush();
        created.push({
          buffers: ctx.pool.stats().created - before.buffers,
          bindGroups: ctx.bindGroupsCreated - before.bindGroups,
          live: ctx.pool.stats().liveBuffers - before.live,
        });
        if (i === 0) planned = planOf(fast).plannedBytes;
        // a warm call does not re-plan: the plan's buffers stay what the first call made
        expect(planOf(fast).plannedBytes, `planned bytes after call ${i}`).toBe(planned);
        await ctx.sync();
      }
      const plan = planOf(fast);
      const bound = freshOutputs(plan);
      const seen = JSON.stringify(created);
      for (const c of created.slice(WARM)) {
        expect(c.buffers, `buffers created per warm call (outputs: ${bound.buffers}): ${seen}`).toBeLessThanOrEqual(bound.buffers);
        expect(c.live, `live buffers added per warm call (every result is held): ${seen}`).toBeLessThanOrEqual(bound.buffers);
        expect(c.bindGroups, `bind groups created per warm call (${bound.dispatches} dispatches bind an output): ${seen}`).toBeLessThanOrEqual(bound.dispatches);
      }
      expect(planned, 'the plan holds intermediates of its own').toBeGreaterThan(0);

      // every call's loss and gradients, read only now that later calls have run
      for (let i = 0; i < STEPS; i++) {
        const got = await held[i]!.item();
        expect(Math.abs(got - eagerLosses[i]!), `loss of call ${i}: ${got} vs eager ${eagerLosses[i]}`).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(eagerLosses[i]!)));
        const grads = await Promise.all(heldGrads[i]!.map(read));
        grads.forEach((g, j) => {
          const d = relDiff(g!, eagerGrads[i]![j]!);
          expect(d.rel, `gradient ${j} of call ${i}: ${d.detail}`).toBeLessThanOrEqual(1e-4);
        });
      }
    }, 120_000);
  });

  it('without the plan (WGTORCH_MEMPLAN=0) the same warm step creates bind groups for its intermediates every call', async () => {
    // the contrast that shows the bound above is tight enough to catch a plan that stopped planning
    const ctx = torch.webgpu.context();
    process.env.WGTORCH_MEMPLAN = '0';
    let fast: () => Tensor;
    try {
      fast = torch.compile(deepMlp().step);
      await fast().item(); // the plan is built (reading the variable) at the first call
    } finally {
      delete process.env.WGTORCH_MEMPLAN;
    }
    const plan = planOf(fast);
    const held: Tensor[] = [];
    let bindGroups = 0;
    for (let i = 0; i < 4; i++) {
      const b0 = ctx.bindGroupsCreated;
      held.push(fast());
      ctx.flush();
      if (i >= WARM) bindGroups += ctx.bindGroupsCreated - b0;
      await ctx.sync();
    }
    expect(plan.plannedBytes).toBe(0);
    expect(bindGroups / 2, 'bind groups per warm call without the plan').toBeGreaterThan(freshOutputs(plan).dispatches);
  }, 120_000);

  it("a profile replays every dispatch on the plan's own buffers, which stay as planned", async () => {
    const fast = torch.compile(deepMlp().step);
    for (let i = 0; i < 2; i++) await fast().item();
    const plan = planOf(fast);
    const bytes = plan.plannedBytes;
    const ctx = torch.webgpu.context();
    const c0 = ctx.pool.stats().created;
    const times = await fast.profile();
    expect(times.map((t) => t.name)).toEqual(plan.kernels.map((k) => k.name));
    for (const t of times) expect(Number.isFinite(t.ms) && t.ms >= 0, `${t.name}: ${t.ms} ms`).toBe(true);
    expect(plan.plannedBytes).toBe(bytes);
    // its recorded call takes new buffers only for the fresh outputs (replays bind new params slots, so new bind groups)
    expect(ctx.pool.stats().created - c0).toBeLessThanOrEqual(freshOutputs(plan).buffers);
    expect(Number.isFinite(await fast().item())).toBe(true);
  }, 120_000);

  it("releasing the plan gives its buffers back to the pool; the next call plans again and stays right; a dropped plan's buffers come back at collection", async () => {
    const ctx = torch.webgpu.context();
    const eager = deepMlp();
    const want: number[] = [];
    for (let i = 0; i < 3; i++) want.push(await eager.step().item());
    const run = deepMlp();
    const fast = torch.compile(run.step);
    const got = [await fast().item()];
    const plan = planOf(fast);
    const bytes = plan.plannedBytes;
    expect(bytes, 'the plan holds intermediates of its own').toBeGreaterThan(0);
    const live = ctx.pool.stats().liveBytes;
    plan.releaseMemory();
    expect(plan.plannedBytes).toBe(0);
    expect(live - ctx.pool.stats().liveBytes, 'live bytes given back').toBeGreaterThanOrEqual(bytes);
    got.push(await fast().item(), await fast().item());
    expect(plan.plannedBytes).toBe(bytes);
    got.forEach((l, i) => expect(Math.abs(l - want[i]!), `loss ${i}: ${l} vs ${want[i]}`).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(want[i]!))));

    const gc = gcFunction();
    if (!gc) return;
    // a compiled function no one holds any more: its plan's buffers return when it is collected
    const dropped = await (async () => {
      const f = torch.compile(deepMlp().step);
      await f().item();
      return planOf(f).plannedBytes;
    })();
    expect(dropped).toBeGreaterThan(0);
    const liveBefore = ctx.pool.stats().liveBytes;
    for (let i = 0; i < 5 && liveBefore - ctx.pool.stats().liveBytes < dropped; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 20)); // finalizers run between tasks
    }
    expect(liveBefore - ctx.pool.stats().liveBytes, 'live bytes given back by the dropped plan').toBeGreaterThanOrEqual(dropped);
  }, 120_000);
});

describe.skipIf(!webgpuAvailable)('index checks of values known when tracing', () => {
  it('positions from arange within the embedding are checked once when traced: the compiled call dispatches no check and no gate, and equals eager', async () => {
    torch.manualSeed(3);
    const emb = new torch.nn.Embedding(8, 4).to('webgpu');
    const x = torch.randn(6, 4).to('webgpu');
    const f = (t: Tensor) => emb(torch.arange(6, { device: 'webgpu' })).mul(t).sum();
    const want = await f(x).item();
    const fast = torch.compile(f);
    await fast(x).item();
    const ctx = torch.webgpu.context();
    const d0 = ctx.dispatches;
    const got = await fast(x).item();
    expect(Math.abs(got - want)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(want)));
    expect(ctx.dispatches - d0, 'only the plan\'s own dispatches').toBe(planOf(fast).stats.dispatches);
  });

  it('positions from arange past the embedding still fail the compiled call as in eager mode', async () => {
    const emb = new torch.nn.Embedding(4, 3).to('webgpu');
    const f = () => emb(torch.arange(5, { device: 'webgpu' })).sum();
    let eager = '';
    try {
      await f().item();
    } catch (e) {
      eager = (e as Error).message;
    }
    expect(eager).toMatch(/out of bounds/);
    await expect(torch.compile(f)().item()).rejects.toThrow(/out of bounds/);
  });
});

describe('memory plan bookkeeping', () => {
  it('slots by liveness: a value takes a free slot of its size class after the last reader of the one before, never one bound by the same kernel', () => {
    // kernel 0 writes 1 and 2, kernel 1 reads 1 and writes 3, kernel 2 reads 2 and 3 and writes 4, kernel 3 reads 4 and writes 5 (larger)
    const writes = [[1, 2], [3], [4], [5]];
    const lastUse = new Map([[1, 1], [2, 2], [3, 2], [4, 3], [5, 3]]);
    const bytes = (id: number) => (id === 5 ? 4096 : 400);
    const { slotOf, slotBytes } = assignSlots(writes, lastUse, bytes);
    expect(slotOf.get(1)).not.toBe(slotOf.get(2));
    expect(slotOf.get(3), 'kernel 1 reads 1 while writing 3').not.toBe(slotOf.get(1));
    expect(new Set([slotOf.get(2), slotOf.get(3)]).size).toBe(2);
    expect(slotOf.get(4), 'value 1 died after kernel 1: its slot serves 4').toBe(slotOf.get(1));
    expect(slotBytes[slotOf.get(5)!], 'another size class gets a slot of its own').toBe(4096);
    expect(slotBytes).toHaveLength(4);
  });

  it('past the cap, the plans run least recently give their buffers back, the one running keeps its own', () => {
    const plan = (name: string, bytes: number) => {
      const p = { name, plannedBytes: bytes, released: 0, releaseMemory: () => {
        p.released++;
        p.plannedBytes = 0;
        lru.dropped(p);
      } };
      return p;
    };
    const lru = new PlanLru<ReturnType<typeof plan>>(100);
    const a = plan('a', 60);
    const b = plan('b', 30);
    const c = plan('c', 50);
    lru.ran(a);
    lru.ran(b);
    expect([a.released, b.released]).toEqual([0, 0]);
    lru.ran(a); // a is now the most recent
    lru.ran(c); // 140 > 100: b, the least recent, goes first, and 110 is still over: then a
    expect([a.released, b.released, c.released]).toEqual([1, 1, 0]);
    const big = plan('big', 500);
    lru.ran(big); // over the cap alone: it keeps its own (c goes)
    expect([big.released, c.released]).toEqual([0, 1]);
  });

  it('the cap: WGTORCH_MEMPLAN_MAX_MB in MiB (default 1024); a value that is no number is an error naming the variable', () => {
    expect(memplanCapBytes(undefined)).toBe(1024 * 2 ** 20);
    expect(memplanCapBytes('')).toBe(1024 * 2 ** 20);
    expect(memplanCapBytes('64')).toBe(64 * 2 ** 20);
    expect(memplanCapBytes('0')).toBe(0);
    for (const bad of ['abc', '-1', 'Infinity', '12MB']) expect(() => memplanCapBytes(bad), bad).toThrow(/WGTORCH_MEMPLAN_MAX_MB.*Fix:/);
  });
});
