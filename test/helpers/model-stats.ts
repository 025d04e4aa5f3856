/**
 * Issue 12's measuring stick: what a compiled function's cached graphs cost
 * (fused kernels, kernels after packing, dispatches, per part), read from
 * graphs() stats, and a one-line summary for test output and the bench.
 */
import type * as torch from '../../src/index.ts';

export interface GraphCost {
  part: string;
  /** fused kernels before packing */
  fusedKernels: number;
  /** kernels after packing (a pack counts once) */
  kernels: number;
  dispatches: number;
  /** kernel names, packs as `pack(a + b)` */
  names: string[];
}

type Inspectable = { graphs(): torch.CompiledGraph[] };

export function graphCosts(fn: Inspectable): GraphCost[] {
  return fn.graphs().map((g) => ({
    part: g.plans.backward ? 'forward+backward' : 'step',
    fusedKernels: g.stats.fusedKernels,
    kernels: g.stats.kernels,
    dispatches: g.stats.dispatches,
    names: g.kernels.map((k) => (k.parts ? `pack(${k.parts.join(' + ')})` : k.name)),
  }));
}

/** Kernels whose name shows the op chain they fuse, counted by a predicate over that name. */
export function countKernels(fn: Inspectable, pred: (name: string) => boolean): number {
  let n = 0;
  for (const g of fn.graphs()) for (const k of g.kernels) for (const name of k.parts ?? [k.name]) if (pred(name)) n++;
  return n;
}

export function summary(fn: Inspectable): string {
  return graphCosts(fn)
    .map((c) => `${c.part}: ${c.fusedKernels} fused kernels, ${c.kernels} kernels, ${c.dispatches} dispatches`)
    .join('; ');
}
