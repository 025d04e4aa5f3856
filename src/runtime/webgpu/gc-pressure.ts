/**
 * GPU buffers return to the pool when their tensors are garbage-collected, but V8 sees
 * only small JS objects and collects rarely while device memory piles up (hundreds of MB
 * within a few hundred eager steps). So the backend tells this module how much device
 * memory it handed out, and the context how many bind groups it created; past a threshold
 * it asks V8 for a collection, after which the finalizers give the dead tensors' buffers
 * back to the pool.
 *
 * Finalizers run between tasks, so a loop that never awaits gets nothing back however
 * often it collects (measured on the README model's eager Adam loop: ~15 buffers and ~50
 * bind groups kept per step, until lavapipe crashed near 65,536 bind groups, step ~1100).
 * Bind groups cannot be destroyed, and Dawn frees one only in a finalizer that also waits
 * for a task boundary; what keeps them bounded is the context's cache finding them again,
 * which needs each step to get the same buffers back. So where library calls end (backward,
 * optimizer.step: the eager layer holds only tensors there, no raw buffer that a release
 * could hand out again under it) and several have ended within one task, this module
 * collects and runs the registries' finalizers in the task (`cleanupSome`, where the engine
 * has it), every `period` call ends: a period doubles while it stays light (a full collection
 * costs milliseconds) and is then fixed, so the pool sees the same releases every time round
 * and the bind groups of one period are found again in the next.
 */
import { gcFunction, type SweepableRegistry } from '../../platform/gc.ts';

let collect: (() => void) | null | undefined;

function collector(): (() => void) | null {
  if (collect === undefined) collect = gcFunction();
  return collect;
}

/** library calls ended within one task before it counts as a loop that never yields */
const SYNC_LOOP_CALLS = 2;
/** such a loop reclaims every `period` call ends, doubled from the first to the last while a period stays light */
const FIRST_PERIOD = 2;
const LAST_PERIOD = 64;

export class GcPressure {
  private bytesSince = 0;
  private groupsSince = 0;
  private callsInTask = 0;
  private tick: ReturnType<typeof setTimeout> | null = null;
  /** call ends between two reclaims in a loop that never yields; fixed once grown, so the pool sees one rhythm */
  private period = FIRST_PERIOD;
  private sinceReclaim = { calls: 0, bytes: 0, dispatches: 0 };
  private readonly registries: SweepableRegistry<never>[] = [];

  constructor(
    /** bytes handed out between two collections */
    private readonly everyBytes = 32 * 1024 * 1024,
    /** bind groups created between two collections */
    private readonly everyBindGroups = 2048,
    /** dispatches one reclaim period may hold: the context's bind-group cache must keep a period's bind groups */
    private readonly periodDispatches = 2048,
  ) {}

  /** A registry whose dead entries a reclaim finalizes in the running task. */
  sweeps<T>(registry: SweepableRegistry<T>): SweepableRegistry<T> {
    this.registries.push(registry as SweepableRegistry<never>);
    return registry;
  }

  /** Counts an allocation; collects once `everyBytes` more device memory has been handed out. */
  allocated(bytes: number): void {
    this.bytesSince += bytes;
    this.sinceReclaim.bytes += bytes;
    if (this.bytesSince >= this.everyBytes) this.collect();
  }

  /** Counts a bind group created; collects once `everyBindGroups` more were. */
  boundGroup(): void {
    if (++this.groupsSince >= this.everyBindGroups) this.collect();
  }

  dispatched(): void {
    this.sinceReclaim.dispatches++;
  }

  /** library calls that ended since the last task boundary */
  get callsWithoutYield(): number {
    return this.callsInTask;
  }

  /** call ends between two reclaims (in a loop that never yields) */
  get reclaimPeriod(): number {
    return this.period;
  }

  /**
   * A library call ended (see the module comment for why only there). Returns whether it
   * reclaimed, so the caller can settle what came back.
   */
  callEnded(): boolean {
    this.tick ??= setTimeout(() => {
      this.tick = null;
      this.callsInTask = 0;
      this.sinceReclaim = { calls: 0, bytes: 0, dispatches: 0 };
    }, 0);
    if (++this.callsInTask < SYNC_LOOP_CALLS || ++this.sinceReclaim.calls < this.period) return false;
    // a full collection costs milliseconds: while a period hands out little memory and few
    // dispatches, the next one is twice as long
    const { bytes, dispatches } = this.sinceReclaim;
    if (this.period < LAST_PERIOD && bytes * 2 <= this.everyBytes && dispatches * 2 <= this.periodDispatches) this.period *= 2;
    this.sinceReclaim = { calls: 0, bytes: 0, dispatches: 0 };
    if (!this.collect()) return false;
    for (const r of this.registries) r.cleanupSome?.();
    return true;
  }

  private collect(): boolean {
    this.bytesSince = this.groupsSince = 0;
    const gc = collector();
    if (!gc) return false;
    gc();
    return true;
  }
}
