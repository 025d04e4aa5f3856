/**
 * The kernel IR: what the fusion pass decided, as values. Every fused kernel is one
 * `Kernel`: its body (an elementwise expression DAG, a reduction, a matmul with prologue
 * and epilogue expression trees, or a pack of independent kernels), the buffers it binds,
 * the scalars it reads and the IR nodes (and module paths) it covers. Backend-neutral:
 * sizes and strides are numbers, expressions are registry ops over refs. Renderers
 * (src/codegen-wgsl for WGSL, src/codegen-cpu for the CPU) turn a kernel into code; the
 * scheduler, packer, pipeline cache, dumps and logs read this, never generated code.
 * Eager kernels are bodies too (one op each), without a Kernel around them.
 */
import type { DType } from '../ir/dtype.ts';
import type { Attrs } from '../ir/registry.ts';
import type { ReduceOp } from '../ir/reductions.ts';
import type { WindowMap } from '../ir/window.ts';

/** A value inside a kernel body. */
export type Ref =
  /** a tensor operand of the body, by index into its `inputs` */
  | { kind: 'input'; index: number }
  /** a uniform scalar, by index into the kernel's `scalars` */
  | { kind: 'scalar'; index: number }
  /** an earlier expression node of the same list */
  | { kind: 'node'; index: number }
  /** the reduced value (reduction epilogue), the product (matmul epilogue) or a line's reduced value (matmul operand reduction) */
  | { kind: 'acc' }
  /** the operand element being loaded, inside a matmul prologue */
  | { kind: 'element' }
  /**
   * a row kernel's per-row value: the result of its step `index`; an index past its `steps`
   * names step `index - steps.length` of its `total` (one value for the whole kernel)
   */
  | { kind: 'stat'; index: number }
  /**
   * a recomputed arange's element inside a row kernel: start + step * (sum over dims of
   * i_d * strides[d]), i over the kernel's iteration space (kept dims, then reduced dims),
   * instead of a load of the arange from memory
   */
  | { kind: 'index'; strides: number[]; start: number; step: number };

/** One registry op applied to refs: the expression trees of every body are lists of these. */
export interface ExprNode {
  op: string;
  args: Ref[];
  attrs: Attrs;
  /** the value's dtype, where known: a kernel whose values are all integers computes in i32 */
  dtype?: DType;
  /** IR node ids this expression stands for, and their module path: kept as comments and in the line map. */
  origin?: { ids: number[]; scope?: string };
}

/** How an elementwise or reduction body reads a tensor. */
export interface TensorInput {
  dtype: DType;
  /**
   * direct: element i of a tensor shaped like the iteration space;
   * strided: read through `strides` over the iteration space (broadcasts, permutes);
   * alias: the buffer of output `aliasOf` itself (an in-place update reads the old value where it writes the new);
   * gather: a gather's element read from its source: `strides` over the iteration space for
   * every dim but the gathered one, plus the index value (input `gather.index`, read as it
   * is) times `gather.dimStride`; an index outside [0, gather.size) reads NaN;
   * window (row kernels over an im2col's [rows, cols], reducing the cols): element (row, col) of
   * the patch matrix, read from the bound buffer through `window` (src/ir/window.ts; `strides`
   * unused), the map's fill where it reads outside the source.
   */
  access: 'direct' | 'strided' | 'alias' | 'gather' | 'window';
  gather?: { index: number; dimStride: number; size: number };
  window?: WindowMap;
  /** 'strided': one stride per dim of the iteration space (a reduction's: kept dims, then reduced dims) */
  strides?: number[];
  /** 'alias': which output's buffer holds the value (default 0) */
  aliasOf?: number;
}

/** A value the kernel writes to memory: an expression of the body, stored as `dtype`. */
export interface KernelOutput {
  ref: Ref;
  dtype: DType;
}

export interface ElementwiseBody {
  kind: 'elementwise';
  /** the iteration space: one invocation per element, row-major */
  shape: number[];
  inputs: TensorInput[];
  scalars: number;
  /** the scalars are known to be integers (eager kernels are keyed by it): comparisons with them may compute in i32 */
  integerScalars?: boolean;
  nodes: ExprNode[];
  outputs: KernelOutput[];
  /** WebGPU: each invocation step loads and stores 4 consecutive elements as one vec4 (passes/vector-loads.ts sets it where every access allows) */
  vec?: 4;
}

/** How a reduction combines: a reduction declared in src/ir/reductions.ts (its identity and pairwise rule). */
export type Combine = ReduceOp;

export interface ReduceBody {
  kind: 'reduce';
  combine: Combine;
  /** sizes of the kept dims (one output per element) and of the reduced dims */
  kept: number[];
  reduced: number[];
  /** every input strided over (kept dims, then reduced dims) */
  inputs: TensorInput[];
  scalars: number;
  /** elementwise producers, recomputed per reduced element */
  prologue: ExprNode[];
  /** what is combined: an input, or a prologue node */
  value: Ref;
  /** elementwise consumers of the reduced value ({ kind: 'acc' }), once per output; they read scalars only */
  epilogue: ExprNode[];
  outputs: KernelOutput[];
  /** invocations per output on WebGPU, as a row kernel's `lanes` (absent: 64, one output per workgroup) */
  lanes?: number;
  /** WebGPU: each invocation computes 4 consecutive outputs of the innermost kept dim, reading them as vec4 (passes/vector-loads.ts; `lanes` then unused) */
  vec?: 4;
}

/** What a row kernel's reduction step computes: a value reduction of src/ir/reductions.ts, or argmax's index. */
export type RowCombine = 'sum' | 'max' | 'argmax';

/**
 * One step of a row kernel, computed once per row (per kept index) in order: a reduction over
 * the row of per-element expressions, or an expression of earlier steps' values.
 */
export type RowStep =
  /**
   * combine(value) over the reduced elements; `nodes` run per element and read inputs, scalars,
   * earlier steps. argmax: the index along the row (its one reduced dim) of the first maximum,
   * NaN winning, as the reduce kernel's (a max pool's window index beside its value)
   */
  | { kind: 'reduce'; combine: RowCombine; nodes: ExprNode[]; value: Ref }
  /** one op over earlier steps, scalars and inputs that are constant along the row */
  | { kind: 'map'; node: ExprNode };

/**
 * What a row kernel writes: an element of the row (`nodes`' values), one value per row (a
 * step's), or one value for the whole kernel (a `total` step's, at element 0).
 */
export interface RowOutput {
  ref: Ref;
  dtype: DType;
  per: 'element' | 'row' | 'total';
  /** 'element': where element (kept, reduced) is stored, strides over kept dims then reduced dims; 'row': at the kept index */
  strides?: number[];
}

/**
 * Reductions whose results are read back over the same rows, chained (softmax, logSoftmax,
 * layerNorm and their gradients; sibling column sums over one space): one kernel per call,
 * one row (kept index) per workgroup on WebGPU. The steps run in order, each reduction a pass
 * over the row that recomputes the per-element expressions it needs; then `nodes`, per
 * element, make the element outputs. No intermediate of the chain is written unless returned.
 */
export interface RowBody {
  kind: 'row';
  /** sizes of the kept dims (one row each) and of the reduced dims (a row's elements) */
  kept: number[];
  reduced: number[];
  /** every input strided over (kept dims, then reduced dims); an input read by a 'map' step has reduced strides 0 */
  inputs: TensorInput[];
  scalars: number;
  steps: RowStep[];
  /** per element, after every step: reads inputs, scalars and steps ({ kind: 'stat' }) */
  nodes: ExprNode[];
  outputs: RowOutput[];
  /**
   * Invocations that share one row on WebGPU (a power of two up to the workgroup's 64; absent:
   * 64, one row per workgroup). Short rows take fewer lanes and several rows per workgroup, down
   * to one lane walking its row alone, without workgroup memory or barriers (passes/row-lanes.ts
   * chooses). Not with `total` (that kernel has a mapping of its own); the cpu target runs each
   * row in one loop whatever it says.
   */
  lanes?: number;
  /**
   * WebGPU: groups of four read and written as vec4 (passes/vector-loads.ts): four consecutive
   * elements of the row per lane step; with `total`, four consecutive rows per invocation step
   */
  vec?: 4;
  /**
   * Per-row values reduced over every row within the same kernel (crossEntropy's mean over
   * the rows and its count of the targets that count): its steps run after the rows, their
   * values are stats numbered after `steps` (stat steps.length + t is total step t). A
   * 'reduce' total combines its value (a per-row step's result, or an input constant along the
   * row) over the rows; a 'map' total reads only totals, scalars and one-element inputs. On
   * WebGPU such a kernel is one workgroup, one row per invocation (kernel-build-row bounds its size).
   */
  total?: RowTotalStep[];
  /**
   * Only with `total`: values over every row computed BEFORE the rows, from inputs alone, which
   * the rows then read (crossEntropy's count of the targets that count, whose 1/count each row's
   * gradient needs in a whole step). Their stats are numbered after the totals (stat
   * steps.length + total.length + p is pre step p). A 'reduce' step combines, over the rows, a
   * per-row expression (`nodes`, reading inputs constant along the row, scalars and earlier pre
   * stats); a 'map' step reads only pre stats, scalars and one-element inputs.
   */
  pre?: RowPreStep[];
}

export type RowTotalStep = { kind: 'reduce'; combine: 'sum' | 'max'; value: Ref } | { kind: 'map'; node: ExprNode };
export type RowPreStep = { kind: 'reduce'; combine: 'sum' | 'max'; nodes: ExprNode[]; value: Ref } | { kind: 'map'; node: ExprNode };

/**
 * An extra tensor a matmul's prologue or epilogue reads. `read` is its binding among the
 * body's `reads`; several inputs may share one binding (one buffer read through two views).
 */
export type MatmulInput =
  /** a one-element tensor (a prologue's operand) */
  | { at: 'element'; read: number }
  /**
   * element (row, col) at row * strides[0] + col * strides[1] (an epilogue operand); in a
   * batched product plus, for matrix z, (z / inner) * batch[0] + (z % inner) * batch[1]
   * (0 where it broadcasts: a [T, T] mask read for every matrix of [B, heads, T, T] scores)
   */
  | { at: 'rowcol'; read: number; strides: [number, number]; batch?: [number, number] }
  /** element i of a reduced line (row i of op(A), column i of op(B)) at i * strides[0] (an operand reduction's epilogue operand) */
  | { at: 'line'; read: number; strides: [number] }
  /** the old value of an in-place update, in the buffer of `output` (of the epilogue, or of operand reduction `region`) */
  | { at: 'alias'; region: 'epilogue' | number; output: number };

/**
 * A reduction along K of an operand the matmul loads anyway (after its prologue): one value
 * per row of op(A) (M of them) or per column of op(B) (N), with elementwise work on it run
 * once per row or column (acc is the reduced value). A bias gradient is the sum over the
 * rows of the transposed output gradient; its optimizer update rides along as the epilogue.
 */
export interface OperandReduction {
  operand: 'A' | 'B';
  /** a value reduction of src/ir/reductions.ts (a fold, or a select without index) */
  combine: ReduceOp;
  epilogue: ExprNode[];
  outputs: KernelOutput[];
}

/**
 * C[M, N] = op(A) @ op(B) over `batch` matrices, with the elementwise work fused around it:
 * a prologue per operand (applied to every loaded element), an epilogue per output
 * element, and reductions of the loaded operands along K with their own epilogues, once
 * per row of op(A) or column of op(B) (a bias gradient and its optimizer update ride
 * along a weight gradient).
 */
export interface MatmulBody {
  kind: 'matmul';
  M: number;
  N: number;
  K: number;
  /** matrices per call and element strides between them (0 broadcasts an operand) */
  batch: { count: number; strideA: number; strideB: number; strideC: number };
  /**
   * A batched product (the bmm primitive): matrices in two levels, z = zo * inner + zi at
   * zo * outer + zi * stride (the strides above), rows of A and B `lda`/`ldb` elements apart
   * as stored (a strided view read in place). C and every output are contiguous [count, M, N].
   */
  batched?: { inner: number; outerA: number; outerB: number; outerC: number; lda: number; ldb: number };
  transA: boolean;
  transB: boolean;
  prologueA: ExprNode[];
  prologueB: ExprNode[];
  /**
   * An operand read through a convolution's index map (an im2col never written): op(A)(row, k)
   * is element (row, k) of the map over the bound buffer (then transA is false), likewise B.
   */
  windowA?: WindowMap;
  windowB?: WindowMap;
  /** per (row, col): acc is the product; inputs index `inputs` */
  epilogue: ExprNode[];
  /** the values written per element; outputs[0] is C itself (its buffer is binding 2) */
  outputs: KernelOutput[];
  /** reductions along K of op(A) (per row) or op(B) (per column), at most one per operand */
  reductions: OperandReduction[];
  inputs: MatmulInput[];
  /** the extra buffers read (bindings 3.., after A, B and C) */
  reads: { dtype: DType }[];
  scalars: number;
}

/**
 * An index primitive: slice (a strided read), sliceScatter (a source written over a
 * strided slice of a base), gather along a dim, scatterAdd (gather's gradient, computed
 * from the destination side); attrs are the op's.
 */
export interface IndexBody {
  kind: 'index';
  op: 'slice' | 'sliceScatter' | 'gather' | 'scatterAdd' | 'im2col' | 'col2im' | 'col2imAt';
  /** the output shape */
  shape: number[];
  dtype: DType;
  attrs: Attrs;
  /** each input as read: the data, then the index (gather, scatterAdd, col2imAt) or the slice's source (sliceScatter) */
  inputs: { shape: number[]; strides: number[] }[];
}

/** Independent kernels run as one (one dispatch on WebGPU): no part reads what another writes. */
export interface PackBody {
  kind: 'pack';
  parts: Kernel[];
}

export type KernelBody = ElementwiseBody | ReduceBody | RowBody | MatmulBody | IndexBody | PackBody;

/** A buffer the kernel binds: the IR value it holds, and whether the kernel writes it. */
export interface Binding {
  value: number;
  dtype: DType;
  access: 'read' | 'write';
}

export interface Kernel {
  name: string;
  body: KernelBody;
  /**
   * The buffers bound, in order. elementwise/reduce: inputs that are not aliases, then
   * outputs; matmul: A, B, C, reads, outputs[1..], each reduction's outputs; pack: its parts' in order.
   */
  bindings: Binding[];
  /** IR scalar nodes whose values the body's scalar refs read, in order */
  scalars: number[];
  /**
   * Bindings served by one shared float32 buffer (the device's binding limit, see
   * passes/binding-arena.ts): `members` index `bindings`; member i lives at element `offsets[i]`
   * of an arena of `elements` floats, bound once (read_write) where the first member would be.
   * The plan copies members' values in before the dispatch and written ones out after.
   * Absent: every binding is a buffer of its own (always, on the cpu target).
   */
  arena?: Arena;
  /** IR nodes computed here (prologues are recomputed copies of other kernels' nodes), and their module paths */
  covers: { nodes: number[]; scopes: string[] };
  /** bytes read and written and floating-point operations per call (estimates for stats) */
  bytes: number;
  flops: number;
}

export interface Arena {
  members: number[];
  offsets: number[];
  elements: number;
}

export const reads = (k: Kernel): number[] => k.bindings.filter((b) => b.access === 'read').map((b) => b.value);
export const writes = (k: Kernel): number[] => k.bindings.filter((b) => b.access === 'write').map((b) => b.value);

/** The kernels a kernel stands for: itself, or a pack's parts. */
export const partsOf = (k: Kernel): Kernel[] => (k.body.kind === 'pack' ? k.body.parts : [k]);

/** Storage buffers the kernel binds on a device: its bindings, an arena's members counting once (a pack: its parts' sum). */
export const boundBuffers = (k: Kernel): number =>
  partsOf(k).reduce((s, p) => s + p.bindings.length - (p.arena?.members.length ? p.arena.members.length - 1 : 0), 0);

// ------------------------------------------------------------------ printed form

const shapeText = (s: readonly number[]) => `[${s.join(', ')}]`;
const lanesText = (lanes: number | undefined) => (lanes === undefined ? '' : `, ${lanes} lane${lanes === 1 ? '' : 's'} each`);

function refText(r: Ref, inputs: (i: number) => string): string {
  switch (r.kind) {
    case 'input': return inputs(r.index);
    case 'scalar': return `$${r.index}`;
    case 'node': return `v${r.index}`;
    case 'acc': return 'acc';
    case 'element': return 'x';
    case 'stat': return `r${r.index}`;
    case 'index': return `arange(${r.start} + ${r.step} * index ${shapeText(r.strides)})`;
  }
}

function exprLines(nodes: ExprNode[], inputs: (i: number) => string, indent: string, prefix = 'v'): string[] {
  return nodes.map((n, i) => {
    const args = n.args.map((a) => (a.kind === 'node' ? `${prefix}${a.index}` : refText(a, inputs)));
    const attrs = Object.keys(n.attrs).length ? ` ${JSON.stringify(n.attrs)}` : '';
    const from = n.origin ? `  # ${n.origin.ids.map((id) => `%${id}`).join(' ')}${n.origin.scope ? ` (${n.origin.scope})` : ''}` : '';
    return `${indent}${prefix}${i} = ${n.op}(${args.join(', ')})${attrs}${from}`;
  });
}

const outText = (o: KernelOutput, prefix = 'v') => (o.ref.kind === 'node' ? `${prefix}${o.ref.index}` : refText(o.ref, (i) => `in${i}`));

function tensorInputText(t: TensorInput, i: number, bound: (i: number) => string): string {
  if (t.access === 'alias') return `in${i} = old value of out${t.aliasOf ?? 0} (in place)`;
  if (t.access === 'gather') return `in${i} = ${bound(i)} ${t.dtype} strides ${shapeText(t.strides ?? [])} gathered at in${t.gather!.index} * ${t.gather!.dimStride} (size ${t.gather!.size})`;
  if (t.access === 'window') {
    const w = t.window!;
    const planes = w.planes ? ` (images ${w.planes.channels} planes each, at strides ${shapeText([w.planes.outer, w.planes.inner])})` : '';
    return `in${i} = ${bound(i)} ${t.dtype} read through im2col of ${shapeText(w.src)} strides ${shapeText(w.strides)}${planes}: kernel ${shapeText(w.kernel)} stride ${shapeText(w.stride)} padding ${shapeText(w.padding)} dilation ${shapeText(w.dilation)}, rows over ${shapeText(w.rows)}, fill ${w.fill}`;
  }
  return `in${i} = ${bound(i)} ${t.dtype}${t.access === 'strided' ? ` strides ${shapeText(t.strides ?? [])}` : ''}`;
}

/**
 * The kernel as text that reads like the IR: what it computes over which iteration space,
 * from which buffers (IR values %id), with the IR nodes each expression stands for.
 */
export function printKernel(k: Kernel, opOf?: (id: number) => string): string {
  const lines: string[] = [];
  const b = k.body;
  const readVals = k.bindings.filter((x) => x.access === 'read');
  const writeVals = k.bindings.filter((x) => x.access === 'write');
  const val = (x: Binding | undefined) => (x ? `%${x.value}` : '?');
  const scalars = k.scalars.length ? `  scalars ${k.scalars.map((s, i) => `$${i}=%${s}`).join(', ')}` : '';
  switch (b.kind) {
    case 'elementwise':
    case 'reduce': {
      // bindings: the non-alias inputs in order, then the outputs
      const boundAt: number[] = [];
      let r = 0;
      b.inputs.forEach((t, i) => (boundAt[i] = t.access === 'alias' ? -1 : r++));
      const bound = (i: number) => val(readVals[boundAt[i]!]);
      if (b.kind === 'elementwise') lines.push(`kernel ${k.name}: elementwise over ${shapeText(b.shape)}${scalars}`);
      else lines.push(`kernel ${k.name}: reduce ${b.combine} over ${shapeText(b.reduced)} for each of ${shapeText(b.kept)}${lanesText(b.lanes)}${scalars}`);
      b.inputs.forEach((t, i) => lines.push(`  ${tensorInputText(t, i, bound)}`));
      const inName = (i: number) => `in${i}`;
      if (b.kind === 'elementwise') lines.push(...exprLines(b.nodes, inName, '  '));
      else {
        if (b.prologue.length) lines.push('  prologue (each reduced element):', ...exprLines(b.prologue, inName, '    ', 'p'));
        lines.push(`  acc = ${b.combine}(${b.value.kind === 'node' ? `p${b.value.index}` : refText(b.value, inName)})`);
        if (b.epilogue.length) lines.push('  epilogue (each output):', ...exprLines(b.epilogue, inName, '    ', 'e'));
      }
      b.outputs.forEach((o, j) => lines.push(`  out${j} ${val(writeVals[j])} ${o.dtype} = ${outText(o, b.kind === 'reduce' ? 'e' : 'v')}`));
      break;
    }
    case 'matmul': {
      const [A, B, C] = k.bindings;
      const bt = b.batched;
      const outer = bt && bt.inner !== b.batch.count ? `; ${b.batch.count / bt.inner} x ${bt.inner}, outer strides ${bt.outerA}, ${bt.outerB}, ${bt.outerC}` : '';
      const lds = bt ? `; lda ${bt.lda}, ldb ${bt.ldb}` : '';
      const batch = b.batch.count > 1 || bt ? ` x${b.batch.count} (batch strides ${b.batch.strideA}, ${b.batch.strideB}, ${b.batch.strideC}${outer}${lds})` : '';
      lines.push(
        `kernel ${k.name}: matmul [${b.M}, ${b.N}] = ${val(A)}${b.transA ? '^T' : ''} @ ${val(B)}${b.transB ? '^T' : ''}, K ${b.K}${batch}${scalars}`,
      );
      const extra = k.bindings.slice(3, 3 + b.reads.length);
      const inName = (i: number) => {
        const x = b.inputs[i]!;
        if (x.at === 'alias') return `old(${x.region === 'epilogue' ? 'out' : `red${x.region}.out`}${x.output})`;
        const buf = val(extra[x.read]);
        const z = x.at === 'rowcol' && x.batch ? `zo*${x.batch[0]} + zi*${x.batch[1]} + ` : '';
        return x.at === 'element' ? `${buf}[0]` : x.at === 'line' ? `${buf}[i*${x.strides[0]}]` : `${buf}[${z}row*${x.strides[0]} + col*${x.strides[1]}]`;
      };
      for (const [which, w] of [['A', b.windowA], ['B', b.windowB]] as const) {
        if (!w) continue;
        const pairs = `kernel ${shapeText(w.kernel)} stride ${shapeText(w.stride)} padding ${shapeText(w.padding)} dilation ${shapeText(w.dilation)}`;
        lines.push(`  ${which} read through im2col${w.transposed ? ' (transposed)' : ''} of ${shapeText(w.src)} strides ${shapeText(w.strides)}: ${pairs}, rows over ${shapeText(w.rows)}`);
      }
      if (b.prologueA.length) lines.push('  prologue A (each loaded x):', ...exprLines(b.prologueA, inName, '    ', 'a'));
      if (b.prologueB.length) lines.push('  prologue B (each loaded x):', ...exprLines(b.prologueB, inName, '    ', 'b'));
      if (b.epilogue.length) lines.push('  epilogue (each row, col; acc = the product):', ...exprLines(b.epilogue, inName, '    ', 'e'));
      b.outputs.forEach((o, j) => lines.push(`  out${j} ${val(j === 0 ? C : writeVals[j])} ${o.dtype} = ${outText(o, 'e')}`));
      let redWrites = writeVals.slice(b.outputs.length);
      b.reductions.forEach((r, q) => {
        const line = r.operand === 'A' ? `row i of ${val(A)}${b.transA ? '^T' : ''}` : `column i of ${val(B)}${b.transB ? '^T' : ''}`;
        lines.push(`  red${q} (each i; acc = ${r.combine} over K of ${line}):`, ...exprLines(r.epilogue, inName, '    ', 'r'));
        r.outputs.forEach((o, j) => lines.push(`  red${q}.out${j} ${val(redWrites[j])} ${o.dtype} = ${outText(o, 'r')}`));
        redWrites = redWrites.slice(r.outputs.length);
      });
      break;
    }
    case 'row': {
      lines.push(`kernel ${k.name}: row over ${shapeText(b.reduced)} for each of ${shapeText(b.kept)}${lanesText(b.lanes)}${scalars}`);
      b.inputs.forEach((t, i) => lines.push(`  ${tensorInputText(t, i, (j) => val(readVals[j]))}`));
      const inName = (i: number) => `in${i}`;
      (b.pre ?? []).forEach((st, p) => {
        const s = b.steps.length + (b.total ?? []).length + p;
        if (st.kind === 'map') {
          lines.push(...exprLines([st.node], inName, '  ', 'r').map((l) => l.replace(/^  r0 =/, `  r${s} =`)));
          return;
        }
        const v = st.value.kind === 'node' ? `p${st.value.index}` : refText(st.value, inName);
        if (st.nodes.length) lines.push(`  each row, before the rows (pre ${p}):`, ...exprLines(st.nodes, inName, '    ', 'p'));
        lines.push(`  r${s} = ${st.combine}(${v}) over the rows, before them`);
      });
      b.steps.forEach((st, s) => {
        if (st.kind === 'map') {
          lines.push(...exprLines([st.node], inName, '  ', 'r').map((l) => l.replace(/^  r0 =/, `  r${s} =`)));
          return;
        }
        const v = st.value.kind === 'node' ? `e${st.value.index}` : refText(st.value, inName);
        if (st.nodes.length) lines.push(`  each element of the row (step ${s}):`, ...exprLines(st.nodes, inName, '    ', 'e'));
        lines.push(`  r${s} = ${st.combine}(${v}) over the row`);
      });
      if (b.nodes.length) lines.push('  each element:', ...exprLines(b.nodes, inName, '    ', 'v'));
      (b.total ?? []).forEach((st, t) => {
        const s = b.steps.length + t;
        if (st.kind === 'map') lines.push(...exprLines([st.node], inName, '  ', 'r').map((l) => l.replace(/^  r0 =/, `  r${s} =`)));
        else lines.push(`  r${s} = ${st.combine}(${refText(st.value, inName)}) over the rows`);
      });
      const per = (o: RowOutput) => (o.per === 'row' ? ' (one per row)' : o.per === 'total' ? ' (one in all)' : ` strides ${shapeText(o.strides ?? [])}`);
      b.outputs.forEach((o, j) => lines.push(`  out${j} ${val(writeVals[j])} ${o.dtype} = ${outText(o)}${per(o)}`));
      break;
    }
    case 'index':
      lines.push(`kernel ${k.name}: ${b.op} into [${b.shape.join(', ')}] ${b.dtype} ${JSON.stringify(b.attrs)}`);
      b.inputs.forEach((x, i) => lines.push(`  in${i} = ${val(readVals[i])} shape ${shapeText(x.shape)} strides ${shapeText(x.strides)}`));
      lines.push(`  out0 ${val(writeVals[0])}`);
      break;
    case 'pack':
      lines.push(`kernel ${k.name}: pack of ${b.parts.length} independent kernels`);
      for (const p of b.parts) lines.push(...printKernel(p, opOf).split('\n').map((l) => `  ${l}`));
      return lines.join('\n');
  }
  if (k.arena) {
    const a = k.arena;
    lines.push(`  arena of ${a.elements} floats, bound once: ${a.members.map((m, i) => `%${k.bindings[m]!.value} at ${a.offsets[i]}`).join(', ')}`);
  }
  lines.push(`  covers ${k.covers.nodes.map((id) => `%${id}${opOf ? ` ${opOf(id)}` : ''}`).join(', ')}${k.covers.scopes.length ? ` from ${k.covers.scopes.join(', ')}` : ''}`);
  return lines.join('\n');
}
