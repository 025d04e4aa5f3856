/**
 * What the prologue rules ask of an elementwise kernel before they recompute it elsewhere:
 * it returns nothing from the graph, and only its last value is read outside it.
 */
import type { FusionState } from '../state.ts';
import type { Kernel } from '../groups.ts';

export interface TailReaders {
  k: Extract<Kernel, { kind: 'elementwise' }>;
  ids: Set<number>;
  tail: number;
  /** the nodes outside the kernel that read its tail (through views) */
  readers: number[];
}

/** Kernel `ki` if it is an elementwise kernel read outside only through its last value, else null. */
export function tailReaders(st: FusionState, ki: number): TailReaders | null {
  const k = st.kernels[ki];
  if (!k || k.kind !== 'elementwise') return null;
  const ids = new Set(k.nodes);
  if (k.nodes.some((id) => st.outputs.has(id))) return null;
  const tail = k.nodes[k.nodes.length - 1]!;
  const external = k.nodes.flatMap((id) => st.consumersThroughViews(id).filter((c) => !ids.has(c)).map((c) => ({ from: id, c })));
  if (external.some((e) => e.from !== tail)) return null;
  return { k, ids, tail, readers: external.map((e) => e.c) };
}
