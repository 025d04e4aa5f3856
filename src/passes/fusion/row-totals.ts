/**
 * Totals of a row group: a reduction over every row of the group's per-row values
 * (crossEntropy's mean: the sum of the per-row losses, the count of the targets that count,
 * their quotient) runs inside the row kernel, which combines each row's value as it goes,
 * instead of as a second kernel over a [rows] tensor written by the first. Such a group is
 * another row group (or lone reductions) over the first one's kept shape reducing all of it;
 * it joins the first: its per-row elementwise nodes become per-row steps, its reductions and
 * what follows them the total. On WebGPU the kernel is then one workgroup (one row per
 * invocation), so only groups up to MAX_TOTAL_ELEMENTS take their totals in.
 */
import type { Graph, IRNode } from '../../ir/graph.ts';
import { getOp } from '../../ir/registry.ts';
import { numel, sameShape } from '../../ir/shape.ts';
import { isMovement, type View } from '../views.ts';
import { graphReaders, type RowGroup } from './row-groups.ts';

/**
 * elements of a row group that takes its totals in: one workgroup of 64 invocations walks them
 * all (a pass per reduction), 2048 elements each at most, which costs about what the dispatch it
 * saves does; the large GPT's loss [1024, 65] and its layerNorm gradients [1024, 128] fit
 */
export const MAX_TOTAL_ELEMENTS = 1 << 17;

export interface RowTotalOptions {
  maxBindings: number;
  note(rule: string, message: string): void;
}

export function mergeRowTotals(g: Graph, views: Map<number, View>, groups: RowGroup[], opts: RowTotalOptions): RowGroup[] {
  const node = (id: number) => g.node(id);
  const baseOf = (id: number) => views.get(id)?.base ?? id;
  const { pos, readersOf } = graphReaders(g, views);
  const outputs = new Set(g.outputs.map((o) => o.id));
  const live = groups.map((grp) => grp as RowGroup | null);
  const groupOf = new Map<number, number>();
  live.forEach((grp, gi) => grp!.nodes.forEach((id) => groupOf.set(id, gi)));
  const isReduceOver = (n: IRNode, space: number[]) =>
    (n.op === 'sum' || n.op === 'max') &&
    sameShape(node(n.inputs[0]).shape, space) &&
    !views.has(n.inputs[0]) &&
    sameShape([...(n.attrs.dims as number[])].sort((a, b) => a - b), space.map((_, d) => d)) &&
    (n.dtype === 'float32' || (n.op === 'sum' && n.dtype === 'int32' && node(n.inputs[0]).dtype === 'bool' && numel(space) < 2 ** 24));
  const isElementwise = (n: IRNode) =>
    n.op !== 'input' && n.op !== 'scalar' && !isMovement(n.op) && getOp(n.op).kind === 'elementwise' && !!getOp(n.op).formula && n.dtype !== 'int32';

  /** whether `from` is computed from a row group's values (other than those of `self`) */
  const fromOtherRows = (from: number, self: number[]): boolean => {
    const seen = new Set<number>();
    const stack = [from];
    while (stack.length) {
      const x = stack.pop()!;
      if (seen.has(x)) continue;
      seen.add(x);
      const h = groupOf.get(x);
      if (h !== undefined && live[h] && !self.includes(h)) return true;
      for (const i of node(x).inputs) stack.push(i);
    }
    return false;
  };
  /**
   * A one-element value from outside that a total may read: none computed from another row
   * kernel's values, which would chain this kernel after that one (clipGradNorm's sum of squared
   * norms, added parameter by parameter, made the row kernels that take the norms in a chain of
   * dispatches). A count another kernel takes of the targets alone (crossEntropy's mean) is read.
   */
  const outsideValue = (i: number, self: number[]) => numel(node(i).shape) === 1 && !fromOtherRows(baseOf(i), self);

  /** whether `from` depends on a node of `members` (another group counts as one node: it runs as one kernel) */
  const dependsOn = (from: number, members: Set<number>, self: number[]): boolean => {
    const seen = new Set<number>();
    const stack = [from];
    while (stack.length) {
      const x = stack.pop()!;
      if (members.has(x)) return true;
      if (seen.has(x)) continue;
      seen.add(x);
      const h = groupOf.get(x);
      if (h !== undefined && live[h] && !self.includes(h)) {
        for (const m of live[h]!.nodes) for (const i of node(m).inputs) stack.push(i);
        continue;
      }
      for (const i of node(x).inputs) stack.push(i);
    }
    return false;
  };

  for (let a = 0; a < live.length; a++) {
    const A = live[a];
    // (render-row-total.ts renders sums and maxes: an argmax row, a max pool's, keeps its totals apart)
    if (!A || numel(A.shape) > MAX_TOTAL_ELEMENTS || A.nodes.some((id) => node(id).op === 'argmax')) continue;
    const keptShape = A.shape.filter((_, d) => !A.dims.includes(d));
    if (numel(keptShape) < 2) continue;
    const inA = new Set(A.nodes);
    const perRow = new Set<number>();
    const total = new Set<number>();
    let absorbed = -1;
    // what the rows read already, and everything before it: a one-element value among them
    // costs a total no new order (crossEntropy's count in a whole step, computed before the rows for 1/count)
    const before = new Set<number>();
    const stack = A.nodes.flatMap((id) => node(id).inputs.map(baseOf).filter((x) => !inA.has(x)));
    while (stack.length) {
      const x = stack.pop()!;
      if (before.has(x)) continue;
      before.add(x);
      stack.push(...node(x).inputs.map(baseOf));
    }
    const isSource = (i: number) => (node(baseOf(i)).op === 'input' || node(baseOf(i)).op === 'scalar') && numel(node(i).shape) === 1;
    const readable = (i: number) => isSource(i) || (numel(node(i).shape) === 1 && before.has(baseOf(i)));
    // a group over the kept shape reducing all of it joins whole
    const b = live.findIndex(
      (B, i) => i !== a && !!B && sameShape(B.shape, keptShape) && B.dims.length === keptShape.length && B.nodes.some((id) => node(id).inputs.some((x) => inA.has(baseOf(x)))),
    );
    if (b >= 0) {
      const B = live[b]!;
      for (const id of B.nodes) (sameShape(node(id).shape, keptShape) && !isReduceOver(node(id), keptShape) ? perRow : total).add(id);
      absorbed = b;
    }
    const self = absorbed >= 0 ? [a, absorbed] : [a];
    const tailReadable = (i: number) =>
      readable(i) || (!inA.has(baseOf(i)) && !perRow.has(baseOf(i)) && outsideValue(i, self));
    // free reductions of per-row values over every row, and the elementwise work after them
    let grew = true;
    while (grew) {
      grew = false;
      for (const m of [...inA, ...perRow, ...total]) {
        for (const c of readersOf(m)) {
          if (c < 0 || groupOf.has(c) || perRow.has(c) || total.has(c)) continue;
          const cn = node(c);
          const fromRow = !total.has(m);
          if (fromRow && isReduceOver(cn, keptShape) && baseOf(cn.inputs[0]) === m) {
            total.add(c);
            grew = true;
          } else if (
            !fromRow &&
            isElementwise(cn) &&
            sameShape(cn.shape, node(m).shape) &&
            // a one-element value from outside, but none computed from another row kernel's values
            // unless the rows wait for it anyway: the whole kernel would wait for that one, and
            // clipGradNorm's running sum of squared norms (add(sum so far, this norm^2)) chained the
            // row kernels one after another, a dispatch each
            cn.inputs.every((i) => total.has(baseOf(i)) || tailReadable(i))
          ) {
            total.add(c);
            grew = true;
          }
        }
      }
    }
    if (!total.size) continue;
    const members = new Set([...inA, ...perRow, ...total]);
    const tag = [...total].filter((id) => node(id).op === 'sum' || node(id).op === 'max').map((id) => `%${id} ${node(id).op}`).join(', ');
    // per-row nodes read no total; a total reads only totals, per-row values, scalars and one-element values from outside
    const totalShape = (id: number) => numel(node(id).shape) === 1;
    const fits = [...perRow].every((id) => node(id).inputs.every((i) => !total.has(baseOf(i)))) &&
      [...total].every((id) => isReduceOver(node(id), keptShape) || (totalShape(id) && node(id).inputs.every((i) => (members.has(baseOf(i)) ? total.has(baseOf(i)) : tailReadable(i)))));
    if (!fits) {
      opts.note('row', `did not take ${tag} into the row kernel of [${A.shape}]: it is not a reduction of per-row values over every row`);
      continue;
    }
    const external = [...members].flatMap((id) => node(id).inputs.filter((i) => !members.has(baseOf(i))));
    if (external.some((i) => dependsOn(i, members, self))) {
      opts.note('row', `did not take ${tag} into the row kernel of [${A.shape}]: a value it reads depends on it`);
      continue;
    }
    const reads = new Set(external.map(baseOf).filter((x) => node(x).op !== 'scalar' && node(x).op !== 'arange'));
    const writes = [...members].filter((id) => outputs.has(id) || readersOf(id).some((c) => c < 0 || !members.has(c))).length;
    if (reads.size + writes > opts.maxBindings) {
      opts.note('row', `did not take ${tag} into the row kernel of [${A.shape}]: it would bind more than the device's ${opts.maxBindings} storage buffers`);
      continue;
    }
    const nodes = [...members].sort((x, y) => pos.get(x)! - pos.get(y)!);
    live[a] = { ...A, nodes, total: nodes.filter((id) => total.has(id)) };
    for (const id of members) groupOf.set(id, a);
    if (absorbed >= 0) live[absorbed] = null;
    opts.note('row', `took ${tag} (a reduction over all ${numel(keptShape)} rows) into the row kernel of [${A.shape}]: each row's value is combined as the rows go by, no [${keptShape}] tensor between two kernels`);
  }
  return live.filter((x): x is RowGroup => x !== null);
}
