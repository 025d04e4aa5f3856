/**
 * The static memory plan of a compiled WebGPU graph (as XLA's and TVM's): the intermediates
 * that never leave a call get buffers of the plan's own, assigned once by liveness and kept
 * between calls, so every call binds the same buffers and finds its bind groups cached.
 *
 * Reuse is safe without fences for the reason the buffer pool's is (buffer-pool.ts): all work
 * goes through one queue in recording order, so the next call's writes into a slot run after
 * this call's reads of it, and inside a call a slot is handed to a later value only after the
 * last kernel that reads its earlier one.
 */
import { sizeClass, type BufferPool } from '../runtime/webgpu/buffer-pool.ts';
import { sweepableRegistry } from '../platform/gc.ts';
import { WgtorchError } from '../ir/errors.ts';
import type { GpuStorage } from '../runtime/webgpu/backend.ts';

/** Which slot holds each planned value, and the bytes each slot must hold (the most of its values; one size class of the pool). */
export interface SlotAssignment {
  slotOf: Map<number, number>;
  slotBytes: number[];
}

/**
 * Assigns slots by liveness: `writes[i]` are the planned values kernel i writes, `lastUse` the
 * last kernel that binds each value. A value takes a free slot of its size class, else a new
 * one; its slot is free again after its last kernel. Values bound by one kernel never share.
 */
export function assignSlots(writes: readonly (readonly number[])[], lastUse: ReadonlyMap<number, number>, bytesOf: (id: number) => number): SlotAssignment {
  const slotOf = new Map<number, number>();
  const slotBytes: number[] = [];
  const slotClass: number[] = [];
  const free = new Map<number, number[]>();
  const endsAt = new Map<number, number[]>();
  writes.forEach((ws, i) => {
    for (const w of ws) {
      if (slotOf.has(w)) continue; // written again (a later kernel of a split group): same slot
      const need = bytesOf(w);
      const cls = sizeClass(need);
      let slot = free.get(cls)?.pop();
      if (slot === undefined) {
        slot = slotBytes.length;
        slotBytes.push(need);
        slotClass.push(cls);
      } else slotBytes[slot] = Math.max(slotBytes[slot]!, need);
      slotOf.set(w, slot);
      const end = Math.max(i, lastUse.get(w) ?? i);
      let list = endsAt.get(end);
      if (!list) endsAt.set(end, (list = []));
      list.push(w);
    }
    for (const w of endsAt.get(i) ?? []) {
      const slot = slotOf.get(w)!;
      const cls = slotClass[slot]!;
      let list = free.get(cls);
      if (!list) free.set(cls, (list = []));
      list.push(slot);
    }
  });
  return { slotOf, slotBytes };
}

/**
 * The buffers a plan keeps between calls: one per slot of its assignment, taken from the
 * device's pool (so memory stats count them as live), and the spare buffer of each renamed
 * in-place update (the one its tensor held before the last call).
 */
export class PlanBuffers {
  readonly slots: GPUBuffer[];
  /** renamed update value -> a storage of the plan's own holding the spare buffer */
  readonly spares = new Map<number, GpuStorage>();
  private released = false;

  constructor(
    private readonly pool: BufferPool,
    slotBytes: readonly number[],
  ) {
    this.slots = slotBytes.map((b) => pool.acquire(b));
  }

  get bytes(): number {
    let n = 0;
    for (const b of this.slots) n += b.size;
    for (const s of this.spares.values()) n += s.buffer.size;
    return n;
  }

  /** Gives the buffers back to the pool (work already recorded still runs on them first: queue order). */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const b of this.slots) this.pool.release(b);
    for (const s of this.spares.values()) this.pool.release(s.buffer);
    this.spares.clear();
  }
}

/** A plan dropped without releasing its buffers (its compiled function collected) gives them back. */
export const buffersOfDroppedPlans = sweepableRegistry<PlanBuffers>((b) => b.release());

/**
 * The cap of PlanLru in bytes from WGTORCH_MEMPLAN_MAX_MB (MiB; default 1024). A value that is
 * no number would make every comparison with the cap false and every other plan give its
 * buffers back on each run, so it is an error instead.
 */
export function memplanCapBytes(value: string | undefined): number {
  if (value === undefined || value.trim() === '') return 1024 * 2 ** 20;
  const mb = Number(value);
  if (!Number.isFinite(mb) || mb < 0) {
    throw new WgtorchError(`WGTORCH_MEMPLAN_MAX_MB='${value}': expected a number of MiB >= 0 (the bytes compiled webgpu plans keep between calls). Fix: set it to e.g. 1024, or unset it.`);
  }
  return mb * 2 ** 20;
}

/**
 * The plans holding buffers, least recently run first, and the bytes they hold: past the cap
 * (WGTORCH_MEMPLAN_MAX_MB, default 1024), the plans run least recently give theirs back (and
 * plan again at their next run), so a function compiled for many shapes or paths does not
 * keep every graph's intermediates.
 */
export class PlanLru<P extends { plannedBytes: number; releaseMemory(): void }> {
  /** weak: a plan no one else holds is collected, and buffersOfDroppedPlans gives its buffers back */
  private readonly order = new Set<WeakRef<P>>();
  private readonly refs = new WeakMap<P, WeakRef<P>>();
  constructor(readonly maxBytes: number) {}

  /** `plan` just ran holding buffers: it becomes the most recent, and older plans release past the cap. */
  ran(plan: P): void {
    let ref = this.refs.get(plan);
    if (!ref) this.refs.set(plan, (ref = new WeakRef(plan)));
    this.order.delete(ref);
    this.order.add(ref);
    let total = 0;
    for (const r of this.order) {
      const p = r.deref();
      if (p) total += p.plannedBytes;
      else this.order.delete(r);
    }
    for (const r of this.order) {
      if (total <= this.maxBytes || r === ref) break;
      const p = r.deref();
      this.order.delete(r);
      if (!p) continue;
      total -= p.plannedBytes;
      p.releaseMemory();
    }
  }

  /** `plan` released its buffers. */
  dropped(plan: P): void {
    const ref = this.refs.get(plan);
    if (ref) this.order.delete(ref);
  }
}
