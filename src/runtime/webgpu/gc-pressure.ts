/**
 * GPU buffers return to the pool when their tensors are garbage-collected, but V8 sees
 * only small JS objects and collects rarely while device memory piles up (hundreds of MB
 * within a few hundred eager steps). So the backend tells this module how much device
 * memory it handed out; past a threshold it asks V8 for a collection, after which the
 * finalizers give the dead tensors' buffers back to the pool.
 */
import { gcFunction } from '../../platform/gc.ts';

let collect: (() => void) | null | undefined;

function collector(): (() => void) | null {
  if (collect === undefined) collect = gcFunction();
  return collect;
}

export class GcPressure {
  private sinceCollect = 0;
  /** bytes handed out between two collections (a full collection of a small JS heap costs ~1-3 ms) */
  constructor(private readonly everyBytes = 32 * 1024 * 1024) {}

  /** Counts an allocation; collects once `everyBytes` more device memory has been handed out. */
  allocated(bytes: number): void {
    this.sinceCollect += bytes;
    if (this.sinceCollect < this.everyBytes) return;
    this.sinceCollect = 0;
    collector()?.();
  }
}
