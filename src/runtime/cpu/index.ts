/** torch.cpu: what the cpu backend has allocated (tests and benchmarks read it). */
import { cpuAllocations } from './backend.ts';

/** largestBuffer: bytes of the largest tensor storage an op allocated since the last resetCounters(). */
export function counters(): { largestBuffer: number } {
  return { ...cpuAllocations };
}
export function resetCounters(): void {
  cpuAllocations.largestBuffer = 0;
}
