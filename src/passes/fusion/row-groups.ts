/**
 * The row rule: reductions whose results are read back over the same rows, chained, become one
 * row kernel (kernel IR `RowBody`). softmax is max, sub, exp, sum, div: two reductions over the
 * last dim and elementwise work that reads their results broadcast along the row; layerNorm,
 * logSoftmax, crossEntropy's row part and the gradients of all of them have the same shape. The
 * rule looks for that shape in the graph, not for op names, so a softmax the user writes by hand
 * matches too.
 *
 * A row space is an element shape and the dims reduced over it. Its nodes are of two classes:
 * `element` (shaped like the space) and `row` (one value per kept index: the reduced shape, with
 * or without keepdim). A group grows from a seed reduction:
 * - down: consumers of its values that are elementwise in either class, or reductions over the
 *   same space, as long as what else they read does not depend on the group;
 * - up: producers of the same kinds that read nothing depending on the group, except elementwise
 *   ones on a matmul's result of their own shape (they belong in its epilogue, which writes that
 *   tensor anyway; a 3-D residual add on a 2-D product's view cannot go there, so it comes here).
 * argmax is a reduction too (max(dim) computes its values as a max over the element at the index
 * it returns, so its argmax, that max and the gradient's masks are one row kernel: a max pool).
 * A group is kept when it has two reductions, or one whose result a per-element node reads back
 * (otherwise the reduction rules do as well), or one over a pool's windows (window-rows.ts); sibling groups over one space that do not depend on
 * each other merge (layerNorm's weight and bias gradients: two column sums in one kernel).
 */
import type { Graph, IRNode } from '../../ir/graph.ts';
import { getOp } from '../../ir/registry.ts';
import { numel, sameShape, stridesOf } from '../../ir/shape.ts';
import { broadcastView, isMovement, type View } from '../views.ts';
import { mergeRowTotals } from './row-totals.ts';
import { mergeRowPreTotals } from './row-pretotals.ts';
import { readsWindows } from './window-rows.ts';

export interface RowGroup {
  /** the element shape and the dims reduced over it (sorted) */
  shape: number[];
  dims: number[];
  /** group nodes in graph order */
  nodes: number[];
  /** the nodes computed once over all rows (row-totals.ts) */
  total?: number[];
  /** the nodes computed over all rows before the rows, from graph inputs (row-pretotals.ts) */
  pre?: number[];
}

export interface RowFusionOptions {
  maxBindings: number;
  /** values written over graph inputs in place: left to the other rules */
  inPlace?: Map<number, number>;
  note(rule: string, message: string): void;
}

type Cls = 'element' | 'row';

/**
 * Each node's place in the graph's order, and its readers that compute (views looked through;
 * a returned view counts as a reader outside, -1): what the row-group and row-total searches walk.
 */
export function graphReaders(g: Graph, views: Map<number, View>): { pos: Map<number, number>; readersOf: (id: number) => number[] } {
  const pos = new Map<number, number>();
  g.nodes.forEach((n, i) => pos.set(n.id, i));
  const consumers = new Map<number, number[]>();
  for (const n of g.nodes) for (const i of n.inputs) consumers.set(i, [...(consumers.get(i) ?? []), n.id]);
  const outputs = new Set(g.outputs.map((o) => o.id));
  const readersOf = (id: number): number[] => {
    const out: number[] = [];
    const visit = (v: number) => {
      for (const c of consumers.get(v) ?? []) {
        if (views.has(c)) {
          if (outputs.has(c)) out.push(-1);
          visit(c);
        } else out.push(c);
      }
    };
    visit(id);
    return out;
  };
  return { pos, readersOf };
}

export function findRowGroups(g: Graph, views: Map<number, View>, opts: RowFusionOptions): RowGroup[] {
  const node = (id: number) => g.node(id);
  const baseOf = (id: number) => views.get(id)?.base ?? id;
  const viewOf = (id: number): View => views.get(id) ?? { base: id, shape: node(id).shape, strides: stridesOf(node(id).shape) };
  const { pos, readersOf } = graphReaders(g, views);
  const outputs = new Set(g.outputs.map((o) => o.id));
  /** the registry kind of a node's op ('input' and 'scalar' are no registry ops) */
  const kindOf = (id: number): string => {
    const op = node(id).op;
    return op === 'input' || op === 'scalar' ? op : getOp(op).kind;
  };
  const inPlaceValues = new Set(opts.inPlace?.keys() ?? []);
  /** what matmuls read as their A operand (a column sum of it rides along the matmul: the row-sum rule) */
  const matmulReads = new Set<number>();
  for (const n of g.nodes) if (kindOf(n.id) === 'matmul' && n.inputs.length) matmulReads.add(baseOf(n.inputs[0]));

  /**
   * sums and maxes of float32; and int32 sums of bools over fewer than 2^24 elements
   * (crossEntropy's count of the targets that count): a row kernel adds in f32, where every
   * partial count is then exact
   */
  const reducible = (n: IRNode) =>
    ((n.op === 'sum' || n.op === 'max') &&
      (n.dtype === 'float32' || (n.op === 'sum' && n.dtype === 'int32' && node(n.inputs[0]).dtype === 'bool' && numel(node(n.inputs[0]).shape) < 2 ** 24))) ||
    // argmax of float32 along one dim of fewer than 2^24 elements (its index is exact in f32): max(dim)'s
    // index beside its value, a max pool's window position
    (n.op === 'argmax' && node(n.inputs[0]).dtype === 'float32' && (n.attrs.dims as number[]).length === 1 && node(n.inputs[0]).shape[(n.attrs.dims as number[])[0]] < 2 ** 24);
  /** every candidate group's nodes, node -> group index (a group is placed as one kernel) */
  const groupOf = new Map<number, number>();
  const groups: (RowGroup | null)[] = [];

  /** whether `from` depends on a node of group `gi` (other groups count as one node each, as they will run as one kernel) */
  function dependsOn(from: number, members: Set<number>, minPos: number): boolean {
    const seen = new Set<number>();
    const seenGroups = new Set<number>();
    const stack = [from];
    while (stack.length) {
      const x = stack.pop()!;
      if (members.has(x)) return true;
      if (seen.has(x)) continue;
      seen.add(x);
      const h = groupOf.get(x);
      if (h !== undefined && groups[h] && !members.has(groups[h]!.nodes[0])) {
        if (seenGroups.has(h)) continue;
        seenGroups.add(h);
        for (const m of groups[h]!.nodes) for (const i of node(m).inputs) stack.push(i);
        continue;
      }
      if ((pos.get(x) ?? 0) < minPos) continue;
      for (const i of node(x).inputs) stack.push(i);
    }
    return false;
  }

  function grow(seed: IRNode): RowGroup {
    const src = node(seed.inputs[0]);
    const shape = [...src.shape];
    const dims = [...(seed.attrs.dims as number[])].sort((a, b) => a - b);
    const keptShape = shape.filter((_, d) => !dims.includes(d));
    const keepShape = shape.map((s, d) => (dims.includes(d) ? 1 : s));
    const keptStrides = stridesOf(keptShape);
    const keptDims = shape.map((_, d) => d).filter((d) => !dims.includes(d));
    const clsOf = (s: readonly number[]): Cls | null =>
      sameShape(s, shape) ? 'element' : sameShape(s, keptShape) || sameShape(s, keepShape) ? 'row' : null;
    const isSpaceReduce = (n: IRNode) =>
      reducible(n) &&
      sameShape(node(n.inputs[0]).shape, shape) &&
      sameShape([...(n.attrs.dims as number[])].sort((a, b) => a - b), dims);
    const isRowElementwise = (n: IRNode) =>
      n.op !== 'input' &&
      n.op !== 'scalar' &&
      !isMovement(n.op) &&
      getOp(n.op).kind === 'elementwise' &&
      !!getOp(n.op).formula &&
      n.dtype !== 'int32' &&
      clsOf(n.shape) !== null;
    const members = new Set<number>([seed.id]);
    const clsOfMember = (id: number): Cls => (isSpaceReduce(node(id)) ? 'row' : clsOf(node(id).shape)!);
    /** a read that reaches `b` (a member of class row) at the consumer's own row */
    const readsOwnRow = (consumer: IRNode, i: number): boolean => {
      const st = fullStrides(consumer, i);
      return keptDims.every((d, k) => shape[d] === 1 || st[d] === keptStrides[k]) && dims.every((d) => st[d] === 0);
    };
    /** strides over `shape` of input i as `consumer` reads it (a row-class consumer reads it along its own row) */
    const fullStrides = (consumer: IRNode, i: number): number[] => {
      const v = viewOf(i);
      if (clsOfMember(consumer.id) === 'element' || isSpaceReduce(consumer)) return broadcastView(v, shape);
      if (consumer.shape.length === shape.length) return broadcastView(v, consumer.shape).map((s, d) => (dims.includes(d) ? 0 : s));
      const k = broadcastView(v, keptShape);
      const out = shape.map(() => 0);
      keptDims.forEach((d, j) => (out[d] = k[j]));
      return out;
    };
    /** whether n's reads fit the row kernel, with `extra` taken as members too */
    const readsFit = (n: IRNode, inGroup: (id: number) => boolean): boolean => {
      const c = isSpaceReduce(n) ? 'reduce' : clsOf(n.shape);
      return n.inputs.every((i) => {
        const b = baseOf(i);
        if (node(b).op === 'scalar') return true;
        if (!inGroup(b)) return !dependsOn(i, members, minPos());
        const bc = clsOfMember(b);
        if (bc === 'element') return c !== 'row' && !views.has(i) && sameShape(node(i).shape, shape);
        return readsOwnRow(n, i);
      });
    };
    const minPos = () => Math.min(...[...members].map((m) => pos.get(m)!));
    const can = (n: IRNode) => !groupOf.has(n.id) && !members.has(n.id) && !inPlaceValues.has(n.id);
    /** adds n unless that makes something the group reads depend on the group (it would run before its input) */
    const tryAdd = (id: number): boolean => {
      members.add(id);
      const lo = minPos();
      const ok = [...members].every((m) => node(m).inputs.every((i) => members.has(baseOf(i)) || members.has(i) || !dependsOn(i, members, lo)));
      if (!ok) members.delete(id);
      return ok;
    };
    let changed = true;
    while (changed) {
      changed = false;
      for (const m of [...members].sort((a, b) => pos.get(a)! - pos.get(b)!)) {
        // down
        for (const c of readersOf(m)) {
          if (c < 0) continue;
          const cn = node(c);
          if (!can(cn)) continue;
          if (!isRowElementwise(cn) && !isSpaceReduce(cn)) continue;
          if (!readsFit(cn, (id) => members.has(id))) continue;
          if (tryAdd(c)) changed = true;
        }
        // up
        for (const i of node(m).inputs) {
          const b = baseOf(i);
          const bn = node(b);
          if (!can(bn) || (!isRowElementwise(bn) && !isSpaceReduce(bn))) continue;
          // work on a matmul's result of its own shape joins that matmul's epilogue instead, unless
          // the product is written anyway for another reader (softmax's gradient reads g and g * y):
          // there the epilogue would write a second tensor of that shape, which the row recomputes
          const epilogueWork = (x: number) =>
            kindOf(baseOf(x)) === 'matmul' && sameShape(node(baseOf(x)).shape, bn.shape) && readersOf(baseOf(x)).every((c) => c === bn.id);
          if (bn.inputs.some(epilogueWork)) continue;
          if (!readsFit(node(m), (id) => members.has(id) || id === b)) continue;
          if (!readsFit(bn, (id) => members.has(id))) continue;
          if (tryAdd(b)) changed = true;
        }
      }
    }
    const nodes = [...members].sort((a, b) => pos.get(a)! - pos.get(b)!);
    return { shape, dims, nodes };
  }

  const reductions = (grp: RowGroup) => grp.nodes.filter((id) => kindOf(id) === 'reduce').length;
  const broadcastsBack = (grp: RowGroup) => {
    const set = new Set(grp.nodes);
    return grp.nodes.some((id) => {
      const n = node(id);
      if (kindOf(id) === 'reduce' || !sameShape(n.shape, grp.shape)) return false;
      return n.inputs.some((i) => set.has(baseOf(i)) && !sameShape(node(baseOf(i)).shape, grp.shape));
    });
  };
  const wanted = (grp: RowGroup) => reductions(grp) >= 2 || broadcastsBack(grp);
  // first the groups that are row kernels on their own (a lone reduction grown first must not
  // take the producers a softmax after it needs), then lone reductions, which may merge
  for (const alone of [true, false]) {
    for (const n of g.nodes) {
      if (!reducible(n) || groupOf.has(n.id) || inPlaceValues.has(n.id)) continue;
      const src = node(n.inputs[0]);
      const dims = n.attrs.dims as number[];
      if (!dims.length || numel(dims.map((d) => src.shape[d])) < 2) continue;
      if (src.shape.length === 2 && dims.length === 1 && dims[0] === 0 && matmulReads.has(baseOf(n.inputs[0]))) continue;
      const grp = grow(n);
      if (alone && !wanted(grp)) continue;
      const gi = groups.push(grp) - 1;
      for (const id of grp.nodes) groupOf.set(id, gi);
    }
  }

  const bindings = (grp: RowGroup) => {
    const set = new Set(grp.nodes);
    const reads = new Set<number>();
    for (const id of grp.nodes) for (const i of node(id).inputs) if (!set.has(baseOf(i)) && node(baseOf(i)).op !== 'scalar') reads.add(baseOf(i));
    const writes = grp.nodes.filter((id) => outputs.has(id) || readersOf(id).some((c) => c < 0 || !set.has(c))).length;
    return reads.size + writes;
  };
  const externalInputs = (grp: RowGroup) => {
    const set = new Set(grp.nodes);
    return grp.nodes.flatMap((id) => node(id).inputs.filter((i) => !set.has(i) && !set.has(baseOf(i))));
  };
  const drop = (gi: number) => {
    for (const id of groups[gi]!.nodes) groupOf.delete(id);
    groups[gi] = null;
  };

  // siblings over one space that are not rows kernels alone (column sums) merge when independent
  for (let a = 0; a < groups.length; a++) {
    const A = groups[a];
    if (!A || wanted(A)) continue;
    for (let b = a + 1; b < groups.length; b++) {
      const B = groups[b];
      if (!B || wanted(B) || !sameShape(A.shape, B.shape) || !sameShape(A.dims, B.dims)) continue;
      const merged: RowGroup = { shape: A.shape, dims: A.dims, nodes: [...A.nodes, ...B.nodes].sort((x, y) => pos.get(x)! - pos.get(y)!) };
      if (bindings(merged) > opts.maxBindings) continue;
      const set = new Set(merged.nodes);
      const minPos = pos.get(merged.nodes[0])!;
      // as one kernel: nothing it reads may depend on it
      groups[b] = null;
      groups[a] = merged;
      const cyclic = externalInputs(merged).some((i) => dependsOn(i, set, minPos));
      if (cyclic) {
        groups[a] = A;
        groups[b] = B;
        continue;
      }
      for (const id of B.nodes) groupOf.set(id, a);
      opts.note('row', `merged the independent reductions ${B.nodes.filter((id) => kindOf(id) === 'reduce').map((id) => `%${id}`).join(', ')} into the row kernel of ${A.nodes.filter((id) => kindOf(id) === 'reduce').map((id) => `%${id}`).join(', ')}: one pass per kept index over the same space`);
      break;
    }
  }

  for (let gi = 0; gi < groups.length; gi++) {
    const grp = groups[gi];
    if (!grp) continue;
    const tag = grp.nodes.filter((id) => kindOf(id) === 'reduce').map((id) => `%${id} ${node(id).op}`).join(', ');
    // a lone reduction over a pool's windows only after the sibling merge (a max pool's argmax joins its max)
    if (!wanted(grp) && !readsWindows(g, grp)) {
      drop(gi);
      continue;
    }
    if (bindings(grp) > opts.maxBindings) {
      opts.note('row', `did not make a row kernel of ${tag}: it would bind more than the device's ${opts.maxBindings} storage buffers`);
      drop(gi);
      continue;
    }
    const set = new Set(grp.nodes);
    if (externalInputs(grp).some((i) => dependsOn(i, set, pos.get(grp.nodes[0])!))) {
      opts.note('row', `did not make a row kernel of ${tag}: a value it reads depends on it`);
      drop(gi);
      continue;
    }
    opts.note('row', `one row kernel over [${grp.shape}] reducing dims [${grp.dims}]: ${grp.nodes.map((id) => `%${id} ${node(id).op}`).join(', ')}`);
  }
  return mergeRowPreTotals(g, views, mergeRowTotals(g, views, groups.filter((x): x is RowGroup => x !== null), opts), opts);
}

/**
 * The graph's nodes in an order where each row group's nodes are adjacent (after everything
 * the group reads, before everything that reads it), otherwise as in the graph.
 */
export function orderWithRowGroups(g: Graph, groups: RowGroup[]): IRNode[] {
  const groupOf = new Map<number, RowGroup>();
  for (const grp of groups) for (const id of grp.nodes) groupOf.set(id, grp);
  const done = new Set<number>();
  const out: IRNode[] = [];
  const emit = (id: number) => {
    if (done.has(id)) return;
    const grp = groupOf.get(id);
    if (!grp) {
      done.add(id);
      for (const i of g.node(id).inputs) emit(i);
      out.push(g.node(id));
      return;
    }
    for (const m of grp.nodes) done.add(m);
    for (const m of grp.nodes) for (const i of g.node(m).inputs) if (!groupOf.has(i) || groupOf.get(i) !== grp) emit(i);
    for (const m of grp.nodes) out.push(g.node(m));
  };
  for (const n of g.nodes) emit(n.id);
  return out;
}
