/**
 * A row group (row-fusion.ts) as kernel IR: a `RowBody`. Each reduction of the group is a step
 * whose per-element expressions are the element-class nodes it needs, recomputed (a pass over
 * the row each); each per-row node is a `map` step; the element outputs are computed once more
 * in the final pass. Every tensor read is strided over (kept dims, then reduced dims).
 */
import type { IRNode } from '../ir/graph.ts';
import { numel, sameShape, stridesOf } from '../ir/shape.ts';
import type { Binding, ExprNode, Kernel, Ref, RowBody, RowCombine, RowOutput, RowPreStep, RowStep, RowTotalStep, TensorInput } from './kernel-ir.ts';
import type { BuildContext } from './kernel-build.ts';
import { windowMap } from '../ir/window.ts';
import type { Kernel as Group } from './fusion.ts';
import { gatherLoad } from './gather-load.ts';
import { rowLanes } from './row-lanes.ts';
import { broadcastView } from './views.ts';

/** the fusion's row kernel (fusion/groups.ts): its nodes, the space they reduce, what it loads or recomputes */
export type RowGroupKernel = Extract<Group, { kind: 'row' }>;

export function buildRowKernel(cx: BuildContext, k: RowGroupKernel, index: number): Kernel {
  const { g } = cx;
  const node = (id: number) => g.node(id);
  const baseOf = (id: number) => cx.views.get(id)?.base ?? id;
  const viewOf = (id: number) => cx.views.get(id) ?? { base: id, shape: node(id).shape, strides: stridesOf(node(id).shape) };
  const { shape, dims } = k;
  const keptDims = shape.map((_, d) => d).filter((d) => !dims.includes(d));
  const keptShape = keptDims.map((d) => shape[d]);
  const order = (st: number[]) => [...keptDims.map((d) => st[d]), ...dims.map((d) => st[d])];
  const members = new Set(k.nodes);
  const sources = new Set(k.sources ?? []);
  /** elementwise nodes over graph inputs computed here where they are read (rules/recompute-inputs.ts) */
  const fromInputs = new Set(k.recomputed ?? []);
  const totalIds = new Set(k.total ?? []);
  const preIds = new Set(k.pre ?? []);
  const isReduce = (n: IRNode) => n.op === 'sum' || n.op === 'max' || n.op === 'argmax';
  const isElement = (id: number) => !totalIds.has(id) && !preIds.has(id) && !isReduce(node(id)) && sameShape(node(id).shape, shape);

  const gathered = new Set(k.gathers ?? []);
  const loaded = [...gathered, ...(k.windowSources ?? []), ...(k.windows ?? [])];
  const windowed = new Set(k.windows ?? []);
  const recomputed = new Set(k.windowSources ?? []);
  const inputs: { base: number; strides: number[]; dtype: TensorInput['dtype']; gather?: TensorInput['gather']; window?: TensorInput['window'] }[] = [];
  const scalars: number[] = [];
  const scalarRef = (id: number): Ref => {
    let s = scalars.indexOf(id);
    if (s < 0) s = scalars.push(id) - 1;
    return { kind: 'scalar', index: s };
  };
  /** a tensor read from outside, with its strides over (kept, reduced) */
  const inputRef = (base: number, strides: number[]): Ref => {
    if (sources.has(base)) {
      const a = node(base).attrs;
      return { kind: 'index', strides, start: a.start as number, step: a.step as number };
    }
    const key = JSON.stringify(strides);
    let i = inputs.findIndex((t) => !t.gather && !t.window && t.base === base && JSON.stringify(t.strides) === key);
    if (i < 0) i = inputs.push({ base, strides, dtype: node(base).dtype }) - 1;
    return { kind: 'input', index: i };
  };
  /** a gather's element over the row space, loaded from its source at the index read beside it */
  const gatherRef = (i: number): Ref => {
    const gl = gatherLoad(g, cx.views, baseOf(i), viewOf(i), shape);
    if (!gl) throw new Error(`internal compiler error: gather %${baseOf(i)} is not readable as a load over [${shape.join(', ')}]`);
    const ix = inputRef(gl.index.base, order(gl.index.strides)) as { kind: 'input'; index: number };
    const gather = { index: ix.index, dimStride: gl.dimStride, size: gl.size };
    const strides = order(gl.source.strides);
    const key = JSON.stringify({ strides, gather });
    let at = inputs.findIndex((t) => t.base === gl.source.base && t.gather && JSON.stringify({ strides: t.strides, gather: t.gather }) === key);
    if (at < 0) at = inputs.push({ base: gl.source.base, strides, dtype: node(gl.source.base).dtype, gather }) - 1;
    return { kind: 'input', index: at };
  };
  /** element (row, col) of an im2col over [rows, cols], loaded from its source through the index map */
  const windowRef = (id: number): Ref => {
    const src = viewOf(node(id).inputs[0]);
    const window = windowMap(node(id).attrs, src.shape, src.strides);
    const key = JSON.stringify(window);
    let at = inputs.findIndex((t) => t.base === src.base && t.window && JSON.stringify(t.window) === key);
    if (at < 0) at = inputs.push({ base: src.base, strides: [0, 0], dtype: node(src.base).dtype, window }) - 1;
    return { kind: 'input', index: at };
  };
  /**
   * element (row, col) of an im2col whose source is recomputed here (rules/window-recompute.ts):
   * the source's elementwise nodes pushed into `nodes`, each tensor they read loaded through
   * the pool's map with the channels of their [N, C, H, W] space split off as `planes`
   */
  const windowExpr = (im2col: number, nodes: ExprNode[], memo: Map<string, number>): Ref => {
    const src = viewOf(node(im2col).inputs[0]);
    if (!recomputed.has(src.base)) return windowRef(im2col);
    const attrs = node(im2col).attrs;
    const visit = (id: number): number => {
      const key = `${im2col}:${id}`;
      const at = memo.get(key);
      if (at !== undefined) return at;
      const n = node(id);
      const [, C] = n.shape;
      const args = n.inputs.map((i): Ref => {
        const b = baseOf(i);
        if (node(b).op === 'scalar') return scalarRef(b);
        if (recomputed.has(b)) return { kind: 'node', index: visit(b) };
        const st = broadcastView(viewOf(i), n.shape);
        const window = { ...windowMap(attrs, src.shape, [0, 0, st[2], st[3]]), planes: { channels: C, outer: st[0], inner: st[1] } };
        const wk = JSON.stringify(window);
        let t = inputs.findIndex((x) => x.base === b && x.window && JSON.stringify(x.window) === wk);
        if (t < 0) t = inputs.push({ base: b, strides: [0, 0], dtype: node(b).dtype, window }) - 1;
        return { kind: 'input', index: t };
      });
      memo.set(key, nodes.length);
      nodes.push({ op: n.op, args, attrs: n.attrs, dtype: n.dtype, origin: { ids: [id], scope: n.scope } });
      return nodes.length - 1;
    };
    return { kind: 'node', index: visit(src.base) };
  };
  /** strides over `shape` of input i as a row-class consumer reads it: along its own row */
  const rowStrides = (consumer: IRNode, i: number): number[] => {
    const v = viewOf(i);
    if (consumer.shape.length === shape.length) return broadcastView(v, consumer.shape).map((s, d) => (dims.includes(d) ? 0 : s));
    const kst = broadcastView(v, keptShape);
    const out = shape.map(() => 0);
    keptDims.forEach((d, j) => (out[d] = kst[j]));
    return out;
  };

  const steps: RowStep[] = [];
  const stepOf = new Map<number, number>();
  /** per-element expressions: the element members a value needs, in graph order */
  const elementList = () => {
    const nodes: ExprNode[] = [];
    const inside = new Map<number, number>();
    const recomputedAt = new Map<string, number>();
    const ref = (i: number): Ref => {
      const b = baseOf(i);
      if (node(b).op === 'scalar') return scalarRef(b);
      if (members.has(b)) {
        if (isElement(b)) return { kind: 'node', index: visit(b) };
        const s = stepOf.get(b);
        if (s === undefined) throw new Error(`internal compiler error: row value %${b} read before its step`);
        return { kind: 'stat', index: s };
      }
      if (gathered.has(b)) return gatherRef(i);
      if (windowed.has(b)) return windowExpr(b, nodes, recomputedAt);
      // read as itself (no view between), so computing it at this element's index gives what would be loaded
      if (fromInputs.has(i)) return { kind: 'node', index: visit(i) };
      return inputRef(b, order(broadcastView(viewOf(i), shape)));
    };
    const visit = (id: number): number => {
      const at = inside.get(id);
      if (at !== undefined) return at;
      const n = node(id);
      const args = n.inputs.map(ref);
      inside.set(id, nodes.length);
      nodes.push({ op: n.op, args, attrs: n.attrs, dtype: n.dtype, origin: { ids: [id], scope: n.scope } });
      return nodes.length - 1;
    };
    return { nodes, ref, inside };
  };

  const total: RowTotalStep[] = [];
  /** a total step's value: a stat numbered after the per-row steps */
  const totalOf = new Map<number, number>();
  const totalRef = (consumer: IRNode, i: number): Ref => {
    const b = baseOf(i);
    if (node(b).op === 'scalar') return scalarRef(b);
    if (totalOf.has(b)) return { kind: 'stat', index: steps.length + totalOf.get(b)! };
    if (members.has(b)) return { kind: 'stat', index: stepOf.get(b)! };
    return inputRef(b, order(rowStrides(consumer, i)));
  };
  /** a recomputed node read once per row: a map step of its own, before the step that reads it */
  const rowStat = (id: number): number => {
    const at = stepOf.get(id);
    if (at !== undefined) return at;
    const n = node(id);
    const args = n.inputs.map((i): Ref => {
      const b = baseOf(i);
      if (node(b).op === 'scalar') return scalarRef(b);
      if (fromInputs.has(i)) return { kind: 'stat', index: rowStat(i) };
      return inputRef(b, order(rowStrides(n, i)));
    });
    steps.push({ kind: 'map', node: { op: n.op, args, attrs: n.attrs, dtype: n.dtype, origin: { ids: [id], scope: n.scope } } });
    stepOf.set(id, steps.length - 1);
    return steps.length - 1;
  };
  // before the rows, from inputs alone (row-pretotals.ts): stats numbered after the totals, known once those are
  const pre: RowPreStep[] = [];
  const PRE = 1 << 30;
  const isPerRowExpr = (i: number) => members.has(i) && !cx.views.has(i) && !isReduce(node(i)) && sameShape(node(i).shape, keptShape) && numel(node(i).shape) > 1;
  for (const id of k.pre ?? []) {
    const n = node(id);
    if (numel(n.shape) !== 1) continue; // a per-row value only the pre pass reads: computed inside its reduction
    if (isReduce(n)) {
      const exprs: ExprNode[] = [];
      const at = new Map<number, number>();
      const ref = (consumer: IRNode, i: number): Ref => {
        const b = baseOf(i);
        if (node(b).op === 'scalar') return scalarRef(b);
        if (isPerRowExpr(i)) {
          if (!at.has(i)) {
            const m = node(i);
            const args = m.inputs.map((x) => ref(m, x));
            at.set(i, exprs.length);
            exprs.push({ op: m.op, args, attrs: m.attrs, dtype: m.dtype, origin: { ids: [i], scope: m.scope } });
          }
          return { kind: 'node', index: at.get(i)! };
        }
        return inputRef(b, order(rowStrides(consumer, i)));
      };
      const value = ref(n, n.inputs[0]!);
      pre.push({ kind: 'reduce', combine: n.op as 'sum' | 'max', nodes: exprs, value });
    } else {
      const args = n.inputs.map((i): Ref => {
        const b = baseOf(i);
        if (node(b).op === 'scalar') return scalarRef(b);
        if (stepOf.has(b)) return { kind: 'stat', index: stepOf.get(b)! };
        return inputRef(b, shape.map(() => 0));
      });
      pre.push({ kind: 'map', node: { op: n.op, args, attrs: n.attrs, dtype: n.dtype, origin: { ids: [id], scope: n.scope } } });
    }
    stepOf.set(id, PRE + pre.length - 1);
  }
  for (const id of k.nodes) {
    const n = node(id);
    if (totalIds.has(id) || preIds.has(id)) continue;
    if (isReduce(n)) {
      const list = elementList();
      const value = list.ref(n.inputs[0]);
      steps.push({ kind: 'reduce', combine: n.op as RowCombine, nodes: list.nodes, value });
      stepOf.set(id, steps.length - 1);
    } else if (!isElement(id)) {
      const args = n.inputs.map((i): Ref => {
        const b = baseOf(i);
        if (node(b).op === 'scalar') return scalarRef(b);
        if (members.has(b)) return { kind: 'stat', index: stepOf.get(b)! };
        if (fromInputs.has(i)) return { kind: 'stat', index: rowStat(i) };
        if (gathered.has(b) || windowed.has(b)) throw new Error(`internal compiler error: per-row node %${id} reads %${b}, which is loaded per element`);
        return inputRef(b, order(rowStrides(n, i)));
      });
      steps.push({ kind: 'map', node: { op: n.op, args, attrs: n.attrs, dtype: n.dtype, origin: { ids: [id], scope: n.scope } } });
      stepOf.set(id, steps.length - 1);
    }
  }

  // after every row: the totals over the rows, in graph order
  for (const id of k.nodes) {
    if (!totalIds.has(id)) continue;
    const n = node(id);
    if (isReduce(n)) total.push({ kind: 'reduce', combine: n.op as 'sum' | 'max', value: totalRef(n, n.inputs[0]) });
    else total.push({ kind: 'map', node: { op: n.op, args: n.inputs.map((i) => totalRef(n, i)), attrs: n.attrs, dtype: n.dtype, origin: { ids: [id], scope: n.scope } } });
    totalOf.set(id, total.length - 1);
  }

  const written = k.nodes.filter((id) => cx.writes.has(id));
  const final = elementList();
  const outputs: RowOutput[] = written.map((id) => {
    if (preIds.has(id)) return { ref: { kind: 'stat', index: stepOf.get(id)! }, dtype: node(id).dtype, per: 'total' };
    if (totalOf.has(id)) return { ref: { kind: 'stat', index: steps.length + totalOf.get(id)! }, dtype: node(id).dtype, per: 'total' };
    if (isElement(id)) return { ref: final.ref(id), dtype: node(id).dtype, per: 'element', strides: order(stridesOf(shape)) };
    return { ref: { kind: 'stat', index: stepOf.get(id)! }, dtype: node(id).dtype, per: 'row' };
  });
  if (pre.length) {
    if (!total.length) throw new Error(`internal compiler error: row kernel ${index} computes values before its rows but has no totals`);
    const first = steps.length + total.length;
    const fix = (r: Ref) => {
      if (r.kind === 'stat' && r.index >= PRE) r.index = first + r.index - PRE;
    };
    const fixNodes = (ns: ExprNode[]) => ns.forEach((e) => e.args.forEach(fix));
    for (const st of [...steps, ...total, ...pre]) {
      if (st.kind === 'map') fixNodes([st.node]);
      else if ('nodes' in st) {
        fixNodes(st.nodes);
        fix(st.value);
      } else fix(st.value);
    }
    fixNodes(final.nodes);
    outputs.forEach((o) => fix(o.ref));
  }
  const body: RowBody = {
    kind: 'row',
    kept: keptShape,
    reduced: dims.map((d) => shape[d]),
    inputs: inputs.map((t): TensorInput =>
      t.gather
        ? { dtype: t.dtype, access: 'gather', strides: t.strides, gather: t.gather }
        : t.window
          ? { dtype: t.dtype, access: 'window', strides: t.strides, window: t.window }
          : { dtype: t.dtype, access: 'strided', strides: t.strides },
    ),
    scalars: scalars.length,
    steps,
    nodes: final.nodes,
    outputs,
    // (a kernel with totals is one workgroup walking whole rows: render-row-total.ts)
    ...(total.length ? { total } : { lanes: rowLanes(keptShape, dims.map((d) => shape[d]!)) }),
    ...(pre.length ? { pre } : {}),
  };
  const readBinding = (id: number): Binding => ({ value: id, dtype: node(id).dtype, access: 'read' });
  const writeBinding = (id: number): Binding => ({ value: id, dtype: node(id).dtype, access: 'write' });
  const reductions = k.nodes.filter((id) => isReduce(node(id))).map((id) => node(id).op);
  const scopes = [...new Set([...loaded, ...k.nodes].map((id) => node(id).scope).filter((s): s is string => !!s))];
  const elements = numel(shape);
  return {
    name: `k${index}_row_${reductions.join('_')}${total.length ? '_total' : ''}`,
    body,
    bindings: [...inputs.map((t) => readBinding(t.base)), ...written.map(writeBinding)],
    scalars,
    covers: { nodes: [...loaded, ...sources, ...fromInputs, ...k.nodes], scopes },
    bytes: 4 * (inputs.reduce((s, t) => s + numel(node(t.base).shape), 0) + written.reduce((s, id) => s + numel(node(id).shape), 0)),
    flops: elements * (steps.reduce((s, st) => s + (st.kind === 'reduce' ? st.nodes.length + 1 : 0), 0) + final.nodes.length),
  };
}
