/** The pass pipeline: each pass is Graph -> Graph and keeps results equal to its input graph. */
import type { Graph } from '../ir/graph.ts';
import { verifyGraph } from '../ir/verify.ts';
import { simplify } from '../passes/algebra.ts';
import { cse } from '../passes/cse.ts';
import { dce } from '../passes/dce.ts';
import { sinkViews } from '../passes/sink-views.ts';
import { carryScatterSelectNotes, scatterSelect } from '../passes/scatter-select.ts';

export function optimize(g: Graph): Graph {
  let out = dce(g);
  out = simplify(out);
  out = sinkViews(out);
  const selected = scatterSelect(out);
  out = dce(selected);
  out = cse(out);
  out = dce(out);
  carryScatterSelectNotes(selected, out);
  verifyGraph(out);
  return out;
}
