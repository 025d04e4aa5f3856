/**
 * Lowering a fusion schedule to CPU kernels. Each kernel group becomes a few steps over typed
 * arrays, described by the same backend-neutral kernel descriptions the WGSL target reads
 * (the kernel IR's ElementwiseBody and ReduceBody, a matmul problem):
 * - elementwise group: one generated JavaScript loop (js-kernels.ts);
 * - reduction with its prologue and epilogue: one generated loop nest;
 * - matmul: its operand prologues as loops into scratch, the product through the Wasm SIMD
 *   kernel, then its epilogue (bias, ReLU, masks, a weight's whole optimizer update, written in
 *   place) as one loop over the output, and a fused column sum and its per-row update as a
 *   reduction and a loop over the rows;
 * - copy (a view that must be in memory): a strided loop;
 * - an index op (slice, gather, ...): the eager cpu kernel, on strided copies of view operands.
 * Nothing reads generated code back: the steps carry what the executor binds.
 */
import type { Graph } from '../ir/graph.ts';
import { numel, stridesOf } from '../ir/shape.ts';
import type { Kernel, Schedule } from '../passes/fusion.ts';
import { matmulLayout } from '../passes/views.ts';
import { buildKernel, exprNodes, Operands, tensorInput, type LowerContext } from '../passes/kernel-build.ts';
import type { ElementwiseBody, Kernel as KernelIR, Ref, ReduceBody } from '../passes/kernel-ir.ts';
import { compileJs, elementwiseJs, reduceJs, type JsKernel } from './js-kernels.ts';

export type CpuStep =
  | {
      kind: 'js';
      fn: JsKernel;
      source: string;
      /** value ids bound as the kernel's inputs (null: read through an output it overwrites) */
      ins: (number | null)[];
      outs: number[];
      /** scalar node ids, in the kernel's order */
      scalars: number[];
    }
  | { kind: 'matmul'; a: number; transA: boolean; b: number; transB: boolean; out: number; M: number; K: number; N: number }
  /** a registry op run by the eager cpu kernel (index ops), on contiguous inputs */
  | { kind: 'op'; node: number; ins: number[] };

export interface CpuKernel {
  name: string;
  /** the kernel IR of this group (what graphs() shows; the steps below compute it) */
  kernel: KernelIR;
  kind: Kernel['kind'];
  /** the generated JavaScript of every step, with a comment for the Wasm matmul */
  source: string;
  nodes: number[];
  scopes: string[];
  steps: CpuStep[];
  /** values the kernel writes to memory for others (or the caller) */
  writes: number[];
  /** values only its own steps read (scratch) */
  temps: number[];
  flops: number;
  bytes: number;
}

const scopesOf = (g: Graph, ids: number[]) => [...new Set(ids.map((i) => g.node(i).scope).filter((s): s is string => !!s))];

function jsStep(source: string, ins: (number | null)[], outs: number[], scalars: number[]): CpuStep {
  return { kind: 'js', fn: compileJs(source), source, ins, outs, scalars };
}

/** An elementwise loop over `shape` computing `ids` and writing `written`. */
function elementwiseStep(cx: LowerContext, ids: number[], shape: number[], written: number[], what: string): CpuStep {
  const ops = new Operands(cx, shape, written);
  const inside = new Map<number, number>();
  const nodes = exprNodes(cx, ids, ops, inside);
  const spec: ElementwiseBody = {
    kind: 'elementwise',
    shape: [...shape],
    inputs: ops.tensors.map(tensorInput),
    scalars: ops.scalars.length,
    nodes,
    outputs: written.map((id) => ({ ref: { kind: 'node', index: inside.get(id)! } as Ref, dtype: cx.g.node(id).dtype })),
  };
  const header = [`${what}: ${ids.map((i) => `%${i} ${cx.g.node(i).op}`).join(', ')} over [${shape.join(', ')}]`];
  const source = elementwiseJs(spec, shape, ops.tensors.map((t) => t.strides), header);
  return jsStep(source, ops.tensors.map((t) => (t.access === 'alias' ? null : t.base)), written, ops.scalars);
}

function reduceStep(cx: LowerContext, node: number, prologue: number[], epilogue: number[], written: number[]): CpuStep {
  const g = cx.g;
  const r = g.node(node);
  const src = r.inputs[0];
  const inShape = g.node(src).shape;
  const dims = r.attrs.dims as number[];
  const kept = inShape.map((_, i) => i).filter((i) => !dims.includes(i));
  const ops = new Operands(cx, inShape);
  const inside = new Map<number, number>();
  const pro = exprNodes(cx, prologue, ops, inside);
  const value = ops.ref(src, inside);
  const epiInside = new Map<number, number>();
  const epi = exprNodes(cx, epilogue, ops, epiInside, (i) => (i === node ? { kind: 'acc' } : null));
  const strides = ops.tensors.map((t) => {
    const s = t.strides ?? stridesOf(inShape);
    return [...kept.map((d) => s[d]), ...dims.map((d) => s[d])];
  });
  const spec: ReduceBody = {
    kind: 'reduce',
    combine: r.op as ReduceBody['combine'],
    kept: kept.map((d) => inShape[d]),
    reduced: dims.map((d) => inShape[d]),
    inputs: ops.tensors.map((t, k) => ({ dtype: t.dtype, access: 'strided' as const, strides: strides[k] })),
    scalars: ops.scalars.length,
    prologue: pro,
    value,
    epilogue: epi,
    outputs: written.map((id) => ({ ref: (id === node ? { kind: 'acc' } : { kind: 'node', index: epiInside.get(id)! }) as Ref, dtype: g.node(id).dtype })),
  };
  const ids = [...prologue, node, ...epilogue];
  const header = [`reduce: ${ids.map((i) => `%${i} ${g.node(i).op}`).join(', ')} over [${inShape.join(', ')}] dims [${dims.join(', ')}]`];
  const source = reduceJs(spec, kept.map((d) => inShape[d]), dims.map((d) => inShape[d]), strides, header);
  return jsStep(source, ops.tensors.map((t) => t.base), written, ops.scalars);
}

export function lowerCpuKernel(cx: LowerContext, s: Schedule, k: Kernel, index: number): CpuKernel {
  const g = cx.g;
  const writesOf = (ids: number[]) => ids.filter((id) => s.writes.has(id));
  const steps: CpuStep[] = [];
  const temps: number[] = [];
  let ids: number[];
  let writes: number[];
  let flops = 0;
  switch (k.kind) {
    case 'elementwise': {
      ids = k.nodes;
      writes = writesOf(ids);
      steps.push(elementwiseStep(cx, ids, k.shape, writes, 'elementwise'));
      flops = numel(k.shape) * ids.length;
      break;
    }
    case 'copy': {
      ids = [k.node];
      writes = [k.node];
      const n = g.node(k.node);
      const base = g.node(k.base);
      const spec: ElementwiseBody = {
        kind: 'elementwise',
        shape: [...k.shape],
        inputs: base.op === 'scalar' ? [] : [{ dtype: base.dtype, access: 'strided', strides: [...k.strides] }],
        scalars: base.op === 'scalar' ? 1 : 0,
        nodes: [{ op: 'copy', args: [base.op === 'scalar' ? { kind: 'scalar', index: 0 } : { kind: 'input', index: 0 }], attrs: {}, origin: { ids: [k.node], scope: n.scope } }],
        outputs: [{ ref: { kind: 'node', index: 0 }, dtype: n.dtype }],
      };
      const source = elementwiseJs(spec, k.shape, [k.strides], [`copy: %${k.node} from %${k.base} through strides [${k.strides.join(', ')}]`]);
      steps.push(base.op === 'scalar' ? jsStep(source, [], writes, [k.base]) : jsStep(source, [k.base], writes, []));
      break;
    }
    case 'reduce': {
      ids = [...k.prologue, k.node, ...k.epilogue];
      writes = writesOf([k.node, ...k.epilogue]);
      steps.push(reduceStep(cx, k.node, k.prologue, k.epilogue, writes));
      flops = numel(g.node(g.node(k.node).inputs[0]).shape) * (1 + k.prologue.length);
      break;
    }
    case 'index': {
      ids = [k.node];
      writes = [k.node];
      steps.push(...indexSteps(cx, s, k.node, temps));
      break;
    }
    case 'matmul': {
      const mm = g.node(k.node);
      const [M, N] = mm.shape;
      const K = g.node(mm.inputs[0]).shape[1];
      ids = [...new Set([k.windowA, k.windowB].filter((w): w is number => w !== undefined)), ...k.prologueA, ...k.prologueB, k.node, ...k.epilogue, ...(k.rowSumA === null ? [] : [k.rowSumA]), ...k.rowEpilogue];
      writes = writesOf([k.node, ...k.epilogue, ...(k.rowSumA === null ? [] : [k.rowSumA]), ...k.rowEpilogue]);
      const operand = (id: number, prologue: number[], window: number | undefined) => {
        if (window !== undefined) {
          // the patch matrix, once, into scratch for the Wasm GEMM (whose operands are copied into its memory anyway)
          if (!temps.includes(window)) {
            steps.push(...indexSteps(cx, s, window, temps));
            temps.push(window);
          }
          return { base: window, trans: false };
        }
        const v = s.views.get(id) ?? { base: id, shape: g.node(id).shape, strides: stridesOf(g.node(id).shape) };
        const layout = matmulLayout(v, g.node(v.base).shape);
        if (!layout) throw new Error(`internal compiler error: matmul operand %${id} is neither plain nor transposed`);
        if (prologue.length) {
          // the recomputed producers, once, into scratch shaped like their result
          const tail = prologue[prologue.length - 1];
          steps.push(elementwiseStep(cx, prologue, g.node(tail).shape, [tail], 'matmul prologue'));
          if (!temps.includes(tail)) temps.push(tail);
        }
        return { base: v.base, trans: layout === 'transposed' };
      };
      const A = operand(mm.inputs[0], k.prologueA, k.windowA);
      const B = operand(mm.inputs[1], k.prologueB, k.windowB);
      if (!writes.includes(k.node)) temps.push(k.node);
      steps.push({ kind: 'matmul', a: A.base, transA: A.trans, b: B.base, transB: B.trans, out: k.node, M, K, N });
      if (k.epilogue.length) steps.push(elementwiseStep(cx, k.epilogue, [M, N], writesOf(k.epilogue), 'matmul epilogue'));
      if (k.rowSumA !== null) {
        const rs = k.rowSumA;
        if (!writes.includes(rs)) temps.push(rs);
        steps.push(reduceStep(cx, rs, k.prologueA, [], [rs]));
        if (k.rowEpilogue.length) steps.push(elementwiseStep(cx, k.rowEpilogue, g.node(k.rowEpilogue[0]).shape, writesOf(k.rowEpilogue), 'row update'));
      }
      flops = 2 * M * N * K + M * N * k.epilogue.length;
      break;
    }
  }
  const name = `k${index}_${k.kind === 'matmul' ? `mm${stepLayout(steps)}_` : ''}${ids
    .filter((i) => k.kind !== 'matmul' || i !== k.node)
    .map((i) => g.node(i).op)
    .join('_')}`.slice(0, 72);
  const source = steps
    .map((st) =>
      st.kind === 'js'
        ? st.source
        : st.kind === 'matmul'
          ? `// wasm simd matmul: %${st.out} = %${st.a}${st.transA ? '^T' : ''} @ %${st.b}${st.transB ? '^T' : ''} (${st.M} x ${st.K} x ${st.N})`
          : `// eager cpu kernel: %${st.node} = ${g.node(st.node).op}(${st.ins.map((i) => `%${i}`).join(', ')})`,
    )
    .join('\n\n');
  const touched = (st: CpuStep): number[] =>
    st.kind === 'js' ? [...st.ins.filter((i): i is number => i !== null), ...st.outs] : st.kind === 'matmul' ? [st.a, st.b, st.out] : [...st.ins, st.node];
  const bytes = 4 * [...new Set(steps.flatMap(touched))].reduce((t, id) => t + numel(g.node(id).shape), 0);
  return { name, kernel: buildKernel(cx, k, index), kind: k.kind, source, nodes: ids, scopes: scopesOf(g, ids), steps, writes, temps, flops, bytes };
}

/** An index op by the eager cpu kernel, after strided copies (scratch, pushed to temps) of the inputs that are views. */
function indexSteps(cx: LowerContext, s: Schedule, node: number, temps: number[]): CpuStep[] {
  const g = cx.g;
  const n = g.node(node);
  const steps: CpuStep[] = [];
  for (const i of n.inputs) {
    const v = s.views.get(i);
    if (!v) continue;
    const src = g.node(v.base);
    const spec: ElementwiseBody = {
      kind: 'elementwise',
      shape: [...v.shape],
      inputs: src.op === 'scalar' ? [] : [{ dtype: src.dtype, access: 'strided', strides: [...v.strides] }],
      scalars: src.op === 'scalar' ? 1 : 0,
      nodes: [{ op: 'copy', args: [src.op === 'scalar' ? { kind: 'scalar', index: 0 } : { kind: 'input', index: 0 }], attrs: {}, origin: { ids: [i] } }],
      outputs: [{ ref: { kind: 'node', index: 0 }, dtype: g.node(i).dtype }],
    };
    const source = elementwiseJs(spec, v.shape, [v.strides], [`operand of ${n.op}: %${i} from %${v.base} through strides [${v.strides.join(', ')}]`]);
    steps.push(src.op === 'scalar' ? jsStep(source, [], [i], [v.base]) : jsStep(source, [v.base], [i], []));
    if (!temps.includes(i)) temps.push(i);
  }
  steps.push({ kind: 'op', node, ins: n.inputs });
  return steps;
}

function stepLayout(steps: CpuStep[]): string {
  const m = steps.find((s) => s.kind === 'matmul');
  return m && m.kind === 'matmul' ? `${m.transA ? 'T' : 'N'}${m.transB ? 'T' : 'N'}` : '';
}
