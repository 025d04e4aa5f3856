/**
 * Lowering a fusion schedule to kernels: for each kernel group, the ExprNodes of its
 * IR nodes, the buffers it binds (reads, then writes), its params and its grid. The
 * text comes from the elementwise / reduce / matmul generators; `assemble` adds the
 * header that names the IR nodes and module paths the kernel came from.
 */
import type { Graph, IRNode } from '../ir/graph.ts';
import { numel, sameShape, stridesOf } from '../ir/shape.ts';
import type { Kernel, Schedule } from '../passes/fusion.ts';
import { broadcastView, type View } from '../passes/views.ts';
import { elementwiseParams, elementwiseWGSL, EW_WORKGROUP } from './elementwise.ts';
import type { ElementwiseSpec, ExprNode, KernelInput, Ref } from './kernel-spec.ts';
import { lowerIndex } from './lower-index.ts';
import { lowerMatmul } from './lower-matmul.ts';
import type { MatmulVariantName } from './matmul.ts';
import { reduceParams, reduceWGSL } from './reduce.ts';

export interface LoweredKernel {
  name: string;
  kind: Kernel['kind'] | 'pack';
  code: string;
  /** IR nodes computed here, and the module paths they came from */
  nodes: number[];
  scopes: string[];
  /** IR values bound as storage buffers: reads first, then writes (unless `order` says otherwise) */
  reads: number[];
  writes: number[];
  order?: number[];
  /** scalar IR nodes whose current values go into the params */
  scalars: number[];
  params(scalarValues: number[]): Uint32Array | Uint32Array[];
  /** total workgroups (the executor folds them into a 2-D grid) or an explicit grid */
  workgroups: number | [number, number, number];
  /** bytes read and written per call */
  bytes: number;
  flops: number;
  /** a matmul kernel: its problem and the template variant it was generated with */
  matmul?: { problem: MatmulProblem; variant: string };
  /** a pack: the independent kernels this one dispatch runs (codegen-wgsl/pack.ts) */
  parts?: LoweredKernel[];
}

export interface LowerContext {
  g: Graph;
  views: Map<number, View>;
  writes: Set<number>;
  /**
   * In-place updates: graph input id -> the value written over it. The kernel computing that
   * value writes straight into the input's buffer, and reads the input's old value there.
   */
  inPlace: Map<number, number>;
  /** the matmul variant for a problem (the autotuner's choice); the default when absent */
  matmulVariant?: (p: MatmulProblem) => MatmulVariantName;
}

export interface MatmulProblem {
  transA: boolean;
  transB: boolean;
  M: number;
  N: number;
  K: number;
}

/** Collects a kernel's tensor inputs (deduplicated by base and strides) and scalar refs. */
export class Operands {
  readonly tensors: { base: number; strides: number[] | null; access: KernelInput['access']; dtype: IRNode['dtype']; aliasOf?: number }[] = [];
  readonly scalars: number[] = [];
  constructor(
    private readonly cx: LowerContext,
    private readonly shape: readonly number[],
    /** values this kernel writes, in output order (for in-place reads) */
    private readonly written: number[] = [],
  ) {}
  ref(id: number, inside: Map<number, number>): Ref {
    const n = this.cx.g.node(id);
    if (inside.has(id)) return { kind: 'node', index: inside.get(id)! };
    if (n.op === 'scalar') {
      let s = this.scalars.indexOf(id);
      if (s < 0) s = this.scalars.push(id) - 1;
      return { kind: 'scalar', index: s };
    }
    const v = this.cx.views.get(id) ?? { base: id, shape: n.shape, strides: stridesOf(n.shape) };
    if (this.cx.g.node(v.base).op === 'scalar') return this.ref(v.base, inside);
    const strides = broadcastView(v, this.shape);
    // the stride of a size-1 dim is never used: [1, n] read with any stride there is read in order
    const rowMajor = stridesOf(this.shape);
    const direct = sameShape(v.shape, this.shape) && strides.every((st, d) => this.shape[d] === 1 || st === rowMajor[d]);
    const over = this.cx.inPlace.get(v.base);
    if (over !== undefined && this.written.includes(over)) {
      if (!direct) throw new Error(`internal compiler error: in-place input %${v.base} read through a view`);
      let k = this.tensors.findIndex((t) => t.base === v.base);
      if (k < 0) k = this.tensors.push({ base: v.base, strides: null, access: 'alias', dtype: this.cx.g.node(v.base).dtype, aliasOf: this.written.indexOf(over) }) - 1;
      return { kind: 'input', index: k };
    }
    const key = direct ? null : strides;
    let k = this.tensors.findIndex((t) => t.base === v.base && JSON.stringify(t.strides) === JSON.stringify(key));
    if (k < 0) k = this.tensors.push({ base: v.base, strides: key, access: direct ? 'direct' : 'strided', dtype: this.cx.g.node(v.base).dtype }) - 1;
    return { kind: 'input', index: k };
  }
}

export function exprNodes(cx: LowerContext, ids: number[], ops: Operands, inside: Map<number, number>, extra?: (id: number) => Ref | null): ExprNode[] {
  const out: ExprNode[] = [];
  for (const id of ids) {
    const n = cx.g.node(id);
    out.push({
      op: n.op,
      args: n.inputs.map((i) => extra?.(i) ?? ops.ref(i, inside)),
      attrs: n.attrs,
      dtype: n.dtype,
      origin: { ids: [id], scope: n.scope },
    });
    inside.set(id, inside.size);
  }
  return out;
}

const scopesOf = (cx: LowerContext, ids: number[]) => [...new Set(ids.map((i) => cx.g.node(i).scope).filter((s): s is string => !!s))];
const bytesOfIds = (cx: LowerContext, ids: number[]) => ids.reduce((s, i) => s + 4 * numel(cx.g.node(i).shape), 0);

export function lowerKernel(cx: LowerContext, k: Kernel, index: number): LoweredKernel {
  switch (k.kind) {
    case 'elementwise': return lowerElementwise(cx, k.nodes, k.shape, index);
    case 'copy': return lowerCopy(cx, k, index);
    case 'reduce': return lowerReduce(cx, k, index);
    case 'matmul': return lowerMatmul(cx, k, index);
    case 'index': return lowerIndex(cx, k, index);
  }
}

function lowerElementwise(cx: LowerContext, ids: number[], shape: number[], index: number): LoweredKernel {
  const written = ids.filter((id) => cx.writes.has(id));
  const ops = new Operands(cx, shape, written);
  const inside = new Map<number, number>();
  const nodes = exprNodes(cx, ids, ops, inside);
  const spec: ElementwiseSpec = {
    kind: 'elementwise',
    rank: shape.length,
    inputs: ops.tensors.map((t) => ({ dtype: t.dtype, access: t.access, aliasOf: t.aliasOf })),
    scalars: ops.scalars.length,
    nodes,
    outputs: written.map((id) => ({ ref: { kind: 'node', index: inside.get(id)! }, dtype: cx.g.node(id).dtype })),
  };
  const { code } = elementwiseWGSL(spec);
  const strides = ops.tensors.map((t) => t.strides);
  return {
    name: `k${index}_${ids.map((i) => cx.g.node(i).op).join('_').slice(0, 60)}`,
    kind: 'elementwise',
    code,
    nodes: ids,
    scopes: scopesOf(cx, ids),
    reads: ops.tensors.filter((t) => t.access !== 'alias').map((t) => t.base),
    writes: written,
    scalars: ops.scalars,
    params: (values) => elementwiseParams(spec, shape, strides, values),
    workgroups: Math.ceil(numel(shape) / EW_WORKGROUP),
    bytes: bytesOfIds(cx, [...ops.tensors.map((t) => t.base), ...written]),
    flops: numel(shape) * ids.length,
  };
}

/** A movement node that must be in memory: its elements read from the base through strides. */
function lowerCopy(cx: LowerContext, k: Extract<Kernel, { kind: 'copy' }>, index: number): LoweredKernel {
  const n = cx.g.node(k.node);
  const spec: ElementwiseSpec = {
    kind: 'elementwise',
    rank: k.shape.length,
    inputs: [{ dtype: n.dtype, access: 'strided' }],
    scalars: 0,
    nodes: [{ op: 'copy', args: [{ kind: 'input', index: 0 }], attrs: {}, origin: { ids: [k.node], scope: n.scope } }],
    outputs: [{ ref: { kind: 'node', index: 0 }, dtype: n.dtype }],
  };
  const { code } = elementwiseWGSL(spec);
  return {
    name: `k${index}_copy`,
    kind: 'copy',
    code,
    nodes: [k.node],
    scopes: scopesOf(cx, [k.node]),
    reads: [k.base],
    writes: [k.node],
    scalars: [],
    params: () => elementwiseParams(spec, k.shape, [k.strides], []),
    workgroups: Math.ceil(numel(n.shape) / EW_WORKGROUP),
    bytes: 8 * numel(n.shape),
    flops: 0,
  };
}

function lowerReduce(cx: LowerContext, k: Extract<Kernel, { kind: 'reduce' }>, index: number): LoweredKernel {
  const r = cx.g.node(k.node);
  const src = r.inputs[0];
  const inShape = cx.g.node(src).shape;
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
  const spec = {
    kind: 'reduce' as const,
    op: r.op as 'sum' | 'max' | 'argmax',
    keptRank: kept.length,
    redRank: dims.length,
    inputs: ops.tensors.map((t) => ({ dtype: t.dtype, access: 'strided' as const })),
    scalars: ops.scalars.length,
    prologue,
    value,
    epilogue,
    results: written.map((id) => ({
      ref: (id === k.node ? { kind: 'acc' } : { kind: 'node', index: epiInside.get(id)! }) as Ref,
      dtype: cx.g.node(id).dtype,
    })),
  };
  const { code } = reduceWGSL(spec);
  const strides = ops.tensors.map((t) => {
    const s = t.strides ?? stridesOf(inShape);
    return [...kept.map((d) => s[d]), ...dims.map((d) => s[d])];
  });
  const ids = [...k.prologue, k.node, ...k.epilogue];
  const nOut = numel(r.shape);
  return {
    name: `k${index}_${ids.map((i) => cx.g.node(i).op).join('_').slice(0, 60)}`,
    kind: 'reduce',
    code,
    nodes: ids,
    scopes: scopesOf(cx, ids),
    reads: ops.tensors.map((t) => t.base),
    writes: written,
    scalars: ops.scalars,
    params: (values) => reduceParams(spec, kept.map((d) => inShape[d]), dims.map((d) => inShape[d]), strides, values),
    workgroups: nOut,
    bytes: bytesOfIds(cx, [...ops.tensors.map((t) => t.base), ...written]),
    flops: numel(inShape) * (1 + k.prologue.length),
  };
}

