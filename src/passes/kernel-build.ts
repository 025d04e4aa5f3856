/**
 * From a fusion schedule to the kernel IR: for each group of IR nodes, the expression
 * nodes of its body, the operands it reads (directly, through strides, or in place), the
 * buffers it binds (reads, then writes) and the scalars it reads. No target code here.
 */
import { asReduceOp } from '../ir/reductions.ts';
import type { Graph, IRNode } from '../ir/graph.ts';
import { numel, sameShape, stridesOf } from '../ir/shape.ts';
import { isInt32Number } from '../ir/hash.ts';
import { windowMap } from '../ir/window.ts';
import { gatherLoad } from './gather-load.ts';
import type { Kernel as Group, Schedule } from './fusion.ts';
import { buildRowKernel } from './kernel-build-row.ts';
import { rowLanes } from './row-lanes.ts';
import type { Binding, ElementwiseBody, ExprNode, IndexBody, Kernel, KernelOutput, MatmulBody, MatmulInput, OperandReduction, ReduceBody, Ref, TensorInput } from './kernel-ir.ts';
import { batchLayout, operandBatchStrides } from '../ir/matmul-batch.ts';
import { batchedOperand, broadcastView, matmulLayout, type View } from './views.ts';

/** What building a kernel needs besides its group. */
export interface BuildContext {
  g: Graph;
  views: Map<number, View>;
  writes: Set<number>;
  /**
   * In-place updates: graph input id -> the value written over it. The kernel computing that
   * value writes straight into the input's buffer, and reads the input's old value there.
   */
  inPlace: Map<number, number>;
}

export function buildKernels(s: Schedule, inPlace: Map<number, number>): Kernel[] {
  const cx: BuildContext = { g: s.graph, views: s.views, writes: s.writes, inPlace };
  return s.kernels.map((k, i) => buildKernel(cx, k, i));
}

export function buildKernel(cx: BuildContext, k: Group, index: number): Kernel {
  switch (k.kind) {
    case 'elementwise': return buildElementwise(cx, k.nodes, k.shape, index, new Set(k.gathers ?? []));
    case 'copy': return buildCopy(cx, k, index);
    case 'reduce': return buildReduce(cx, k, index);
    case 'matmul': return buildMatmul(cx, k, index);
    case 'index': return buildIndex(cx, k, index);
    case 'row': return buildRowKernel(cx, k, index);
  }
}

/** An index primitive (slice, sliceScatter, gather, scatterAdd): its inputs bound as the views they are. */
function buildIndex(cx: BuildContext, k: Extract<Group, { kind: 'index' }>, index: number): Kernel {
  const { g } = cx;
  const n = g.node(k.node);
  const view = (id: number) => cx.views.get(id) ?? { base: id, shape: g.node(id).shape, strides: stridesOf(g.node(id).shape) };
  const views = n.inputs.map(view);
  const readBinding = (id: number): Binding => ({ value: id, dtype: g.node(id).dtype, access: 'read' });
  const readIds = views.map((v) => v.base);
  return {
    name: `k${index}_${n.op}`,
    body: {
      kind: 'index',
      op: n.op as IndexBody['op'],
      shape: [...n.shape],
      dtype: n.dtype,
      attrs: n.attrs,
      inputs: n.inputs.map((id, k) => ({ shape: [...g.node(id).shape], strides: [...views[k].strides] })),
    },
    bindings: [...readIds.map(readBinding), writeOf(g, k.node)],
    scalars: [],
    covers: { nodes: [k.node], scopes: scopesOf(g, [k.node]) },
    bytes: 4 * (numel(n.shape) + readIds.reduce((s, id) => s + numel(g.node(id).shape), 0)),
    flops: 0,
  };
}

/** One tensor a body reads: its buffer (base), and how (strides null: at the body's own index). */
export interface Operand {
  base: number;
  strides: number[] | null;
  access: TensorInput['access'];
  dtype: IRNode['dtype'];
  aliasOf?: number;
  gather?: TensorInput['gather'];
}

export const tensorInput = (t: Operand): TensorInput =>
  t.access === 'strided'
    ? { dtype: t.dtype, access: 'strided', strides: t.strides! }
    : t.access === 'gather'
      ? { dtype: t.dtype, access: 'gather', strides: t.strides!, gather: t.gather }
      : t.access === 'alias'
        ? { dtype: t.dtype, access: 'alias', aliasOf: t.aliasOf }
        : { dtype: t.dtype, access: 'direct' };

/** Collects a body's tensor inputs (deduplicated by base and strides) and scalar refs. */
export class Operands {
  readonly tensors: Operand[] = [];
  readonly scalars: number[] = [];
  constructor(
    private readonly cx: BuildContext,
    private readonly shape: readonly number[],
    /** values this kernel writes, in output order (for in-place reads) */
    private readonly written: number[] = [],
    /** gather nodes read as loads of their source (rule [gather-load]) */
    private readonly gathered: ReadonlySet<number> = new Set(),
  ) {}
  scalar(id: number): Ref {
    let s = this.scalars.indexOf(id);
    if (s < 0) s = this.scalars.push(id) - 1;
    return { kind: 'scalar', index: s };
  }
  ref(id: number, inside: Map<number, number>): Ref {
    const n = this.cx.g.node(id);
    if (inside.has(id)) return { kind: 'node', index: inside.get(id)! };
    if (n.op === 'scalar') return this.scalar(id);
    const v = this.cx.views.get(id) ?? { base: id, shape: n.shape, strides: stridesOf(n.shape) };
    if (this.cx.g.node(v.base).op === 'scalar') return this.ref(v.base, inside);
    if (this.gathered.has(v.base)) return this.gatherRef(v);
    const strides = broadcastView(v, this.shape);
    // the stride of a size-1 dim is never used: [1, n] read with any stride there is read in order
    const rowMajor = stridesOf(this.shape);
    const direct = sameShape(v.shape, this.shape) && strides.every((st, d) => this.shape[d] === 1 || st === rowMajor[d]);
    const dtype = this.cx.g.node(v.base).dtype;
    const over = this.cx.inPlace.get(v.base);
    if (over !== undefined && this.written.includes(over)) {
      if (!direct) throw new Error(`internal compiler error: in-place input %${v.base} read through a view`);
      let k = this.tensors.findIndex((t) => t.base === v.base);
      if (k < 0) k = this.tensors.push({ base: v.base, strides: null, access: 'alias', dtype, aliasOf: this.written.indexOf(over) }) - 1;
      return { kind: 'input', index: k };
    }
    const key = direct ? null : strides;
    let k = this.tensors.findIndex((t) => t.base === v.base && JSON.stringify(t.strides) === JSON.stringify(key));
    if (k < 0) k = this.tensors.push({ base: v.base, strides: key, access: direct ? 'direct' : 'strided', dtype }) - 1;
    return { kind: 'input', index: k };
  }
  /** A gather's element, loaded from its source at the index read beside it. */
  private gatherRef(v: View): Ref {
    const gl = gatherLoad(this.cx.g, this.cx.views, v.base, v, this.shape);
    if (!gl) throw new Error(`internal compiler error: gather %${v.base} is not readable as a load over [${this.shape.join(', ')}]`);
    const same = (a: number[] | null, b: number[]) => a !== null && a.length === b.length && a.every((x, i) => x === b[i]);
    let ik = this.tensors.findIndex((t) => t.access === 'strided' && t.base === gl.index.base && same(t.strides, gl.index.strides));
    if (ik < 0) ik = this.tensors.push({ base: gl.index.base, strides: gl.index.strides, access: 'strided', dtype: this.cx.g.node(gl.index.base).dtype }) - 1;
    const gather = { index: ik, dimStride: gl.dimStride, size: gl.size };
    let k = this.tensors.findIndex((t) => t.access === 'gather' && t.base === gl.source.base && same(t.strides, gl.source.strides) && JSON.stringify(t.gather) === JSON.stringify(gather));
    if (k < 0) k = this.tensors.push({ base: gl.source.base, strides: gl.source.strides, access: 'gather', dtype: this.cx.g.node(gl.source.base).dtype, gather }) - 1;
    return { kind: 'input', index: k };
  }
  /** the buffers read: every input but the aliases */
  reads(): Binding[] {
    return this.tensors.filter((t) => t.access !== 'alias').map((t) => ({ value: t.base, dtype: t.dtype, access: 'read' as const }));
  }
}

export function exprNodes(cx: BuildContext, ids: number[], ops: Operands, inside: Map<number, number>, extra?: (id: number) => Ref | null): ExprNode[] {
  const out: ExprNode[] = [];
  for (const id of ids) {
    const n = cx.g.node(id);
    out.push({ op: n.op, args: n.inputs.map((i) => extra?.(i) ?? ops.ref(i, inside)), attrs: n.attrs, dtype: n.dtype, origin: { ids: [id], scope: n.scope } });
    inside.set(id, inside.size);
  }
  return out;
}

const scopesOf = (g: Graph, ids: number[]) => [...new Set(ids.map((i) => g.node(i).scope).filter((s): s is string => !!s))];
const bytesOf = (g: Graph, ids: number[]) => ids.reduce((s, i) => s + 4 * numel(g.node(i).shape), 0);
const writeOf = (g: Graph, id: number): Binding => ({ value: id, dtype: g.node(id).dtype, access: 'write' });
const opNames = (g: Graph, ids: number[]) => ids.map((i) => g.node(i).op).join('_');

function buildElementwise(cx: BuildContext, ids: number[], shape: number[], index: number, gathered: ReadonlySet<number> = new Set()): Kernel {
  const { g } = cx;
  const written = ids.filter((id) => cx.writes.has(id));
  const ops = new Operands(cx, shape, written, gathered);
  const inside = new Map<number, number>();
  const nodes = exprNodes(cx, ids, ops, inside);
  const body: ElementwiseBody = {
    kind: 'elementwise',
    shape: [...shape],
    inputs: ops.tensors.map(tensorInput),
    scalars: ops.scalars.length,
    nodes,
    outputs: written.map((id) => ({ ref: { kind: 'node', index: inside.get(id)! }, dtype: g.node(id).dtype })),
  };
  // the numbers' integrality is in the compile key (src/ir/hash.ts): an int32 comparison with one computes in i32
  if (ops.scalars.length && ops.scalars.every((id) => isInt32Number(g.node(id).attrs.value))) body.integerScalars = true;
  return {
    name: `k${index}_${opNames(g, ids).slice(0, 60)}`,
    body,
    bindings: [...ops.reads(), ...written.map((id) => writeOf(g, id))],
    scalars: ops.scalars,
    covers: { nodes: [...gathered, ...ids], scopes: scopesOf(g, [...gathered, ...ids]) },
    bytes: bytesOf(g, [...ops.tensors.map((t) => t.base), ...written]),
    flops: numel(shape) * ids.length,
  };
}

/** A movement node that must be in memory: its elements read from the base through strides. */
function buildCopy(cx: BuildContext, k: Extract<Group, { kind: 'copy' }>, index: number): Kernel {
  const n = cx.g.node(k.node);
  // a view of a scalar (an expanded constant returned as is) has no buffer to read: its value is a uniform
  const fromScalar = cx.g.node(k.base).op === 'scalar';
  const body: ElementwiseBody = {
    kind: 'elementwise',
    shape: [...k.shape],
    inputs: fromScalar ? [] : [{ dtype: n.dtype, access: 'strided', strides: [...k.strides] }],
    scalars: fromScalar ? 1 : 0,
    nodes: [{ op: 'copy', args: [fromScalar ? { kind: 'scalar', index: 0 } : { kind: 'input', index: 0 }], attrs: {}, origin: { ids: [k.node], scope: n.scope } }],
    outputs: [{ ref: { kind: 'node', index: 0 }, dtype: n.dtype }],
  };
  return {
    name: `k${index}_copy`,
    body,
    bindings: [...(fromScalar ? [] : [{ value: k.base, dtype: cx.g.node(k.base).dtype, access: 'read' as const }]), writeOf(cx.g, k.node)],
    scalars: fromScalar ? [k.base] : [],
    covers: { nodes: [k.node], scopes: scopesOf(cx.g, [k.node]) },
    bytes: (fromScalar ? 4 : 8) * numel(n.shape),
    flops: 0,
  };
}

function buildReduce(cx: BuildContext, k: Extract<Group, { kind: 'reduce' }>, index: number): Kernel {
  const { g } = cx;
  const r = g.node(k.node);
  const src = r.inputs[0];
  const inShape = g.node(src).shape;
  const dims = r.attrs.dims as number[];
  const kept = inShape.map((_, i) => i).filter((i) => !dims.includes(i));
  const ops = new Operands(cx, inShape);
  const inside = new Map<number, number>();
  const prologue = exprNodes(cx, k.prologue, ops, inside);
  const value = ops.ref(src, inside);
  // the epilogue sees the reduced value as 'acc'; its other operands are scalars
  const epiInside = new Map<number, number>();
  const epilogue = exprNodes(cx, k.epilogue, ops, epiInside, (i) => (i === k.node ? { kind: 'acc' } : null));
  const written = [k.node, ...k.epilogue].filter((id) => cx.writes.has(id));
  const body: ReduceBody = {
    kind: 'reduce',
    combine: asReduceOp(r.op),
    kept: kept.map((d) => inShape[d]),
    reduced: dims.map((d) => inShape[d]),
    inputs: ops.tensors.map((t) => {
      const s = t.strides ?? stridesOf(inShape);
      return { dtype: t.dtype, access: 'strided', strides: [...kept.map((d) => s[d]), ...dims.map((d) => s[d])] };
    }),
    scalars: ops.scalars.length,
    prologue,
    value,
    epilogue,
    outputs: written.map((id) => ({
      ref: (id === k.node ? { kind: 'acc' } : { kind: 'node', index: epiInside.get(id)! }) as Ref,
      dtype: g.node(id).dtype,
    })),
    lanes: rowLanes(kept.map((d) => inShape[d]!), dims.map((d) => inShape[d]!)),
  };
  const ids = [...k.prologue, k.node, ...k.epilogue];
  return {
    name: `k${index}_${opNames(g, ids).slice(0, 60)}`,
    body,
    bindings: [...ops.reads(), ...written.map((id) => writeOf(g, id))],
    scalars: ops.scalars,
    covers: { nodes: ids, scopes: scopesOf(g, ids) },
    bytes: bytesOf(g, [...ops.tensors.map((t) => t.base), ...written]),
    flops: numel(inShape) * (1 + k.prologue.length),
  };
}

/**
 * A fused matmul: prologues per operand (recomputed elementwise producers, applied to every
 * loaded element; they read the element, scalars and one-element tensors), an epilogue per
 * output element (operands read at (row, col) through strides), and optionally the row
 * reductions of op(A) or op(B) along K with their own consumers, once per row or column.
 */
function buildMatmul(cx: BuildContext, k: Extract<Group, { kind: 'matmul' }>, index: number): Kernel {
  const { g } = cx;
  const mm = g.node(k.node);
  const batched = mm.op === 'bmm';
  const batchShape = mm.shape.slice(0, -2);
  const [M, N] = mm.shape.slice(-2);
  const K = g.node(mm.inputs[0]).shape.at(-1)!;
  const scalars: number[] = [];
  const scalarRef = (id: number): Ref => {
    let s = scalars.indexOf(id);
    if (s < 0) s = scalars.push(id) - 1;
    return { kind: 'scalar', index: s };
  };
  // extra read buffers in binding order, and the inputs that index them
  const reads: number[] = [];
  const readOf = (id: number) => {
    let r = reads.indexOf(id);
    if (r < 0) r = reads.push(id) - 1;
    return r;
  };
  const inputs: MatmulInput[] = [];
  /** a batched product's epilogue operands: their strides per batch dim, made levels below */
  const batchDimsOf = new Map<number, number[]>();
  const keys: string[] = [];
  const inputRef = (x: MatmulInput, batchDims?: number[]): Ref => {
    const key = JSON.stringify([x, batchDims ?? null]);
    let i = keys.indexOf(key);
    if (i < 0) {
      i = inputs.push(x) - 1;
      keys.push(key);
      if (batchDims) batchDimsOf.set(i, batchDims);
    }
    return { kind: 'input', index: i };
  };
  const viewOf = (id: number) => cx.views.get(id) ?? { base: id, shape: g.node(id).shape, strides: stridesOf(g.node(id).shape) };

  const operand = (id: number, prologue: number[], window: number | undefined) => {
    if (window !== undefined) {
      // read through the conv's index map from the im2col's source (a view of it is read with its strides)
      const w = g.node(window);
      const src = viewOf(w.inputs[0]);
      return { base: src.base, trans: false, nodes: [] as ExprNode[], window: windowMap(w.attrs, src.shape, src.strides), ld: 0, batchStrides: [] as number[] };
    }
    const v = viewOf(id);
    const bo = batched ? batchedOperand(v, batchShape) : null;
    const layout = batched ? (bo ? (bo.trans ? 'transposed' : 'plain') : null) : matmulLayout(v, g.node(v.base).shape);
    if (!layout) throw new Error(`matmul operand %${id} is neither plain nor transposed`);
    const ld = bo?.ld ?? 0;
    const batchStrides = bo?.batch ?? [];
    if (!prologue.length) return { base: v.base, trans: layout === 'transposed', nodes: [] as ExprNode[], window: undefined, ld, batchStrides };
    // the prologue reads one tensor shaped like its result (the element), plus scalars and one-element tensors
    const inside = new Map<number, number>();
    let src = -1;
    const refOf = (i: number): Ref => {
      if (inside.has(i)) return { kind: 'node', index: inside.get(i)! };
      const base = cx.views.get(i)?.base ?? i;
      if (g.node(base).op === 'scalar') return scalarRef(base);
      if (numel(g.node(base).shape) === 1) return inputRef({ at: 'element', read: readOf(base) });
      src = base;
      return { kind: 'element' };
    };
    const nodes: ExprNode[] = prologue.map((pid) => {
      const n = g.node(pid);
      const e: ExprNode = { op: n.op, args: n.inputs.map(refOf), attrs: n.attrs, origin: { ids: [pid], scope: n.scope } };
      inside.set(pid, inside.size);
      return e;
    });
    return { base: src, trans: layout === 'transposed', nodes, window: undefined, ld, batchStrides };
  };
  const A = operand(mm.inputs[0], k.prologueA, k.windowA);
  const B = operand(mm.inputs[1], k.prologueB, k.windowB);

  // ---- epilogue: C holds the first float value written (the matmul itself if need be)
  let written = [k.node, ...k.epilogue].filter((id) => cx.writes.has(id));
  const firstFloat = written.find((id) => g.node(id).dtype === 'float32');
  written = firstFloat === undefined ? [k.node, ...written] : [firstFloat, ...written.filter((id) => id !== firstFloat)];
  const overOf = (base: number) => cx.inPlace.get(base);
  const epiInside = new Map<number, number>();
  const epilogue: ExprNode[] = k.epilogue.map((id) => {
    const n: IRNode = g.node(id);
    const args: Ref[] = n.inputs.map((i) => {
      if (i === k.node) return { kind: 'acc' };
      if (epiInside.has(i)) return { kind: 'node', index: epiInside.get(i)! };
      const v = viewOf(i);
      if (g.node(v.base).op === 'scalar') return scalarRef(v.base);
      const over = overOf(v.base);
      if (batched) {
        const full = broadcastView(v, mm.shape);
        if (over !== undefined && written.includes(over)) {
          if (!sameShape(full, stridesOf(mm.shape))) throw new Error(`internal compiler error: in-place input %${v.base} read through a view`);
          return inputRef({ at: 'alias', region: 'epilogue', output: written.indexOf(over) });
        }
        return inputRef({ at: 'rowcol', read: readOf(v.base), strides: [full.at(-2)!, full.at(-1)!] }, full.slice(0, -2));
      }
      if (over !== undefined && written.includes(over)) {
        const [sr, scol] = broadcastView(v, [M, N]);
        // (the stride of a size-1 dim is never used: a [1, n] or [m, 1] tensor is read in order whatever it says)
        if ((sr !== N && M !== 1) || (scol !== 1 && N !== 1)) throw new Error(`internal compiler error: in-place input %${v.base} read through a view`);
        return inputRef({ at: 'alias', region: 'epilogue', output: written.indexOf(over) });
      }
      const [sr, scol] = broadcastView(v, [M, N]);
      return inputRef({ at: 'rowcol', read: readOf(v.base), strides: [sr, scol] });
    });
    epiInside.set(id, epiInside.size);
    return { op: n.op, args, attrs: n.attrs, origin: { ids: [id], scope: n.scope } };
  });
  const outputs: KernelOutput[] = written.map((id) => ({ ref: id === k.node ? { kind: 'acc' } : { kind: 'node', index: epiInside.get(id)! }, dtype: g.node(id).dtype }));

  // ---- once per row of op(A) or column of op(B): the operand reductions and what consumes them
  const reductions: OperandReduction[] = [];
  const reductionWrites: number[] = [];
  k.reductions.forEach((red, q) => {
    // a reduction whose value only its epilogue reads is still written when the epilogue writes nothing of its own
    const redWritten = [red.node, ...red.epilogue].filter((id) => cx.writes.has(id) || (id === red.node && !red.epilogue.length));
    const inside = new Map<number, number>();
    const lines = red.operand === 'A' ? M : N;
    const nodes: ExprNode[] = red.epilogue.map((id) => {
      const n = g.node(id);
      const args: Ref[] = n.inputs.map((i) => {
        const v = viewOf(i);
        if (v.base === red.node) return { kind: 'acc' };
        if (inside.has(i)) return { kind: 'node', index: inside.get(i)! };
        if (g.node(v.base).op === 'scalar') return scalarRef(v.base);
        const over = overOf(v.base);
        if (over !== undefined && redWritten.includes(over)) return inputRef({ at: 'alias', region: q, output: redWritten.indexOf(over) });
        const [sl] = broadcastView(v, [lines]);
        return inputRef({ at: 'line', read: readOf(v.base), strides: [sl] });
      });
      inside.set(id, inside.size);
      return { op: n.op, args, attrs: n.attrs, origin: { ids: [id], scope: n.scope } };
    });
    reductions.push({
      operand: red.operand,
      combine: asReduceOp(g.node(red.node).op),
      epilogue: nodes,
      outputs: redWritten.map((id) => ({ ref: (id === red.node ? { kind: 'acc' } : { kind: 'node', index: inside.get(id)! }) as Ref, dtype: g.node(id).dtype })),
    });
    reductionWrites.push(...redWritten);
  });

  // ---- a batched product's matrices: at most two levels (bmm has at most two batch dims)
  let batch = { count: 1, strideA: M * K, strideB: K * N, strideC: M * N };
  let batchedLayout: MatmulBody['batched'];
  if (batched) {
    const dimLists = [...batchDimsOf.values()];
    const layout = batchLayout(batchShape, [A.batchStrides, B.batchStrides, operandBatchStrides(mm.shape, batchShape), ...dimLists]);
    if (layout.levels.length > 2) throw new Error(`internal compiler error: bmm %${k.node} has ${layout.levels.length} batch levels`);
    const inner = layout.levels.at(-1);
    const outer = layout.levels.length === 2 ? layout.levels[0] : null;
    const at = (lvl: typeof inner | null, j: number) => lvl?.strides[j] ?? 0;
    batch = { count: layout.count, strideA: at(inner, 0), strideB: at(inner, 1), strideC: inner ? at(inner, 2) : M * N };
    batchedLayout = { inner: inner?.size ?? 1, outerA: at(outer, 0), outerB: at(outer, 1), outerC: at(outer, 2), lda: A.ld, ldb: B.ld };
    [...batchDimsOf.keys()].forEach((i, j) => {
      const x = inputs[i] as Extract<MatmulInput, { at: 'rowcol' }>;
      x.batch = [at(outer, 3 + j), at(inner, 3 + j)];
    });
  }

  const windows = [...new Set([k.windowA, k.windowB].filter((w): w is number => w !== undefined))];
  const covered = [...windows, ...k.prologueA, ...k.prologueB, k.node, ...k.epilogue, ...k.reductions.flatMap((r) => [r.node, ...r.epilogue])];
  const readBinding = (id: number): Binding => ({ value: id, dtype: g.node(id).dtype, access: 'read' });
  const redName = k.reductions.map((r) => `_${g.node(r.node).op}${r.operand}${r.epilogue.length ? `_${opNames(g, r.epilogue).slice(0, 20)}` : ''}`).join('');
  const name = `k${index}_mm${A.trans ? 'T' : 'N'}${B.trans ? 'T' : 'N'}${A.window ? '_im2colA' : ''}${B.window ? '_im2colB' : ''}${k.epilogue.length ? '_' + opNames(g, k.epilogue).slice(0, 40) : ''}${redName}`;
  return {
    name,
    body: {
      kind: 'matmul',
      M,
      N,
      K,
      batch,
      ...(batchedLayout ? { batched: batchedLayout } : {}),
      transA: A.trans,
      transB: B.trans,
      prologueA: A.nodes,
      prologueB: B.nodes,
      ...(A.window ? { windowA: A.window } : {}),
      ...(B.window ? { windowB: B.window } : {}),
      epilogue,
      outputs,
      reductions,
      inputs,
      reads: reads.map((id) => ({ dtype: g.node(id).dtype })),
      scalars: scalars.length,
    },
    bindings: [readBinding(A.base), readBinding(B.base), writeOf(g, written[0]), ...reads.map(readBinding), ...written.slice(1).map((id) => writeOf(g, id)), ...reductionWrites.map((id) => writeOf(g, id))],
    scalars,
    covers: { nodes: covered, scopes: scopesOf(g, covered) },
    // a windowed operand is read from its source (each element about kh*kw times, mostly from cache)
    bytes: 4 * batch.count * ((A.window ? numel(g.node(A.base).shape) : M * K) + (B.window ? numel(g.node(B.base).shape) : K * N) + M * N * written.length),
    flops: 2 * M * N * K * batch.count,
  };
}
