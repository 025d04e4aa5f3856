/**
 * Fusion: groups the nodes of a graph into kernels by running the rule sets of
 * rules/index.ts through the rewrite driver (driver.ts), then decides which values reach
 * memory. Every decision, and why a pair did not fuse, is in the `fusion` log under the
 * name of the rule that made it.
 */
import type { Graph } from '../../ir/graph.ts';
import { runRuleSet } from './driver.ts';
import { kernelNodes, type FusionOptions, type Kernel, type Schedule } from './groups.ts';
import { RULE_SETS } from './rules/index.ts';
import { FusionState } from './state.ts';

export function fuse(g: Graph, opts: FusionOptions): Schedule {
  const st = new FusionState(g, opts);
  for (const set of RULE_SETS) runRuleSet(st, set);
  const final = st.kernels.filter((k): k is Kernel => k !== null);
  // A value reaches memory when the graph returns it, or when a kernel that reads it
  // does not compute it itself (prologues are recomputed copies).
  const computedIn = final.map((k) => new Set(kernelNodes(k)));
  const writes = new Set<number>();
  for (const n of g.nodes) {
    if (n.op === 'input' || n.op === 'scalar' || st.views.has(n.id)) continue;
    if (st.outputs.has(n.id)) writes.add(n.id);
    for (const c of st.consumersThroughViews(n.id)) {
      if (computedIn.some((set) => set.has(c) && !set.has(n.id))) writes.add(n.id);
    }
  }
  for (const o of st.outputs) if (st.views.has(o)) writes.add(st.views.get(o)!.base);
  return { graph: g, kernels: final, views: st.views, writes, log: st.log };
}
