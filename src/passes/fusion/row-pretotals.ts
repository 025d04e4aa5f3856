/**
 * Pre-totals of a row group with totals (row-totals.ts): a one-element value its rows read that
 * is a reduction over every row of a per-row expression of graph inputs alone, with elementwise
 * work on it (crossEntropy's count of the targets that count, `sum(targets.ne(ignoreIndex))`,
 * and 1/count, which each row's gradient reads in a whole step), joins the group and runs before
 * its rows: the kernel's one workgroup (WebGPU) or loop (cpu) walks the rows once to count, then
 * runs the rows. So crossEntropy's forward and backward in a step need no count kernel of their
 * own. The inputs are read on every call: nothing is folded from their contents.
 */
import type { Graph, IRNode } from '../../ir/graph.ts';
import { getOp } from '../../ir/registry.ts';
import { numel, sameShape } from '../../ir/shape.ts';
import { isMovement, type View } from '../views.ts';
import { isExactOp } from '../exact-ops.ts';
import { graphReaders, type RowFusionOptions, type RowGroup } from './row-groups.ts';

/** a per-row expression recomputed in the pre pass stays a handful of nodes */
const MAX_PER_ROW_NODES = 6;

export function mergeRowPreTotals(g: Graph, views: Map<number, View>, groups: RowGroup[], opts: RowFusionOptions): RowGroup[] {
  const node = (id: number) => g.node(id);
  const baseOf = (id: number) => views.get(id)?.base ?? id;
  const { pos, readersOf } = graphReaders(g, views);
  const outputs = new Set(g.outputs.map((o) => o.id));
  const overwritten = new Set(opts.inPlace?.values() ?? []);
  const grouped = new Set(groups.flatMap((grp) => grp.nodes));
  const isSource = (i: number) => {
    const b = node(baseOf(i));
    return b.op === 'scalar' || (b.op === 'input' && !overwritten.has(b.id));
  };
  const formula = (n: IRNode) => n.op !== 'input' && n.op !== 'scalar' && !isMovement(n.op) && getOp(n.op).kind === 'elementwise' && !!getOp(n.op).formula && n.op !== 'arange';

  return groups.map((A) => {
    if (!A.total?.length) return A;
    const kept = A.shape.filter((_, d) => !A.dims.includes(d));
    const inA = new Set(A.nodes);
    /** per-row expression nodes of graph inputs (shape `kept`), read as themselves */
    const perRow = new Set<number>();
    const isPerRow = (id: number, depth = 0): boolean => {
      if (perRow.has(id)) return true;
      const n = node(id);
      // (computed twice in the kernel, before the rows and in them: only ops that give the same bits, exact-ops.ts)
      if (depth > MAX_PER_ROW_NODES || grouped.has(id) || outputs.has(id) || views.has(id) || !formula(n) || !isExactOp(g, n) || !sameShape(n.shape, kept)) return false;
      if (!n.inputs.every((i) => isSource(i) || (!views.has(i) && isPerRow(i, depth + 1)))) return false;
      perRow.add(id);
      return true;
    };
    const pre = new Set<number>();
    /** a one-element value: a reduction over every row of a per-row expression, or elementwise work on such values */
    const isPre = (id: number): boolean => {
      if (pre.has(id)) return true;
      const n = node(id);
      if (grouped.has(id) || views.has(id) || numel(n.shape) !== 1) return false;
      if (n.op === 'sum' || n.op === 'max') {
        const src = n.inputs[0]!;
        const all = sameShape([...(n.attrs.dims as number[])].sort((a, b) => a - b), kept.map((_, d) => d));
        const dtypeOk = n.dtype === 'float32' || (n.op === 'sum' && n.dtype === 'int32' && node(src).dtype === 'bool' && numel(kept) < 2 ** 24);
        if (!all || !dtypeOk || views.has(src) || !isPerRow(src)) return false;
      } else if (!formula(n) || !n.inputs.every((i) => isSource(i) || (!views.has(i) && isPre(i)))) return false;
      pre.add(id);
      return true;
    };
    const wanted = [...new Set(A.nodes.flatMap((id) => node(id).inputs.map(baseOf)))].filter((x) => !inA.has(x) && numel(node(x).shape) === 1 && isPre(x));
    if (!wanted.length) return A;
    // what the pre pass needs of them, nothing else: a per-row value or a pre value someone else reads is written by no one
    const needed = new Set<number>();
    const visit = (id: number) => {
      if (needed.has(id) || !(pre.has(id) || perRow.has(id))) return;
      needed.add(id);
      node(id).inputs.forEach(visit);
    };
    wanted.forEach(visit);
    const members = new Set([...inA, ...needed]);
    const tag = wanted.map((x) => `%${x} ${node(x).op}`).join(', ');
    for (const id of needed) {
      const outside = readersOf(id).filter((c) => c < 0 || !members.has(c));
      if (perRow.has(id) && outside.length) {
        opts.note('row', `did not compute ${tag} before the rows of the row kernel of [${A.shape}]: %${id} ${node(id).op} is read elsewhere`);
        return A;
      }
    }
    const external = [...members].flatMap((id) => node(id).inputs.filter((i) => !members.has(baseOf(i))).map(baseOf));
    const reads = new Set(external.filter((x) => node(x).op !== 'scalar' && node(x).op !== 'arange'));
    const writes = [...members].filter((id) => outputs.has(id) || readersOf(id).some((c) => c < 0 || !members.has(c))).length;
    if (reads.size + writes > opts.maxBindings) {
      opts.note('row', `did not compute ${tag} before the rows of the row kernel of [${A.shape}]: it would bind more than the device's ${opts.maxBindings} storage buffers`);
      return A;
    }
    const nodes = [...members].sort((x, y) => pos.get(x)! - pos.get(y)!);
    // per-row values the rows read too are per-row members; the rest is computed in the pre pass only
    const preIds = nodes.filter((id) => pre.has(id) || (perRow.has(id) && !readersOf(id).some((c) => inA.has(c))));
    opts.note('row', `computed ${tag} (over all ${numel(kept)} rows, from graph inputs) before the rows of the row kernel of [${A.shape}], which read it: no kernel of its own`);
    return { ...A, nodes, pre: preIds };
  });
}
