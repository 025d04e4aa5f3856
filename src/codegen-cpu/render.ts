/**
 * Kernel IR -> CPU. The cpu target renders the same `Kernel` values the WGSL renderer
 * renders (src/passes/kernel-build.ts builds them for both), into a few steps over typed
 * arrays:
 * - elementwise body: one generated JavaScript loop (js-kernels.ts), and, where its ops and
 *   operands allow and it is large enough to pay, the same body as a Wasm SIMD kernel
 *   (wasm/expr-simd.ts) that runs instead;
 * - reduce body (prologue, combine, epilogue): one generated loop nest;
 * - matmul body: each operand's prologue as a loop into scratch, the product through the
 *   Wasm SIMD GEMM, then its epilogue (bias, ReLU, masks, a weight's whole optimizer update,
 *   written in place) as a Wasm SIMD kernel on the product in the Wasm memory or one loop
 *   over the output, and each operand reduction (a bias
 *   gradient, a max over the rows of op(A), ...) with its consumers as a reduction and a
 *   loop over the rows or columns;
 * - index body (slice, sliceScatter, gather, scatterAdd, im2col, col2im): one generated loop
 *   reading its operands through their strides (index-js.ts, window-js.ts); a convolution's
 *   patch-matrix operand of a matmul is the same im2col loop into scratch.
 * A step names its arrays by the kernel's bindings (or scratch of its own), never by what
 * the IR around the kernel looks like; nothing reads generated code back.
 */
import type { DType } from '../ir/dtype.ts';
import type { Attrs } from '../ir/registry.ts';
import type { WindowMap } from '../ir/window.ts';
import type { ElementwiseBody, ExprNode, IndexBody, Kernel, KernelOutput, MatmulBody, Ref, ReduceBody, TensorInput } from '../passes/kernel-ir.ts';
import { compileJs, elementwiseJs, reduceJs, type JsKernel } from './js-kernels.ts';
import { renderBatchedMatmul } from './render-bmm.ts';
import { rowJs } from './row-js.ts';
import { indexJs } from './index-js.ts';
import { im2colLines } from './window-js.ts';
import { numel, stridesOf } from '../ir/shape.ts';
import { envVar } from '../platform/env.ts';
import { simdKernelOf, type SimdKernel } from './wasm/expr-simd.ts';

/** Where a step's array lives: one of the kernel's bindings, or scratch the kernel owns. */
export type Slot = { binding: number } | { scratch: number };

/** A generated JavaScript loop, and the same body as a Wasm SIMD kernel where it has one (the loop then runs only where that cannot). */
export interface JsStep {
  kind: 'js';
  fn: JsKernel;
  source: string;
  /** the body's inputs in order (null: an in-place input, read through the output it overwrites) */
  ins: (Slot | null)[];
  outs: Slot[];
  simd?: SimdKernel;
}

export type CpuStep =
  | JsStep
  | {
      kind: 'matmul';
      a: Slot;
      transA: boolean;
      b: Slot;
      transB: boolean;
      out: Slot;
      M: number;
      K: number;
      N: number;
      batch: MatmulBody['batch'];
      /** a batched body (bmm) of two levels: `count` outer steps, each `batch.count / count` matrices at batch's strides */
      outer?: { count: number; strideA: number; strideB: number; strideC: number };
      /**
       * the epilogue as a Wasm SIMD kernel run on the product where the GEMM leaves it (its
       * input `acc` reads it; `out` receives it only where it is C itself), or as `js.fn`
       * after the product where the kernel cannot run
       */
      epilogue?: { js: JsStep & { simd: SimdKernel }; acc: number; storeC: boolean };
    }
  /** a registry op run by the eager cpu kernel (an index op with no generated loop: a gather whose index is not the output's shape), on contiguous inputs */
  | { kind: 'op'; op: IndexBody['op']; attrs: Attrs; ins: { slot: Slot; shape: number[]; dtype: DType }[]; out: { slot: Slot; shape: number[]; dtype: DType } };

export interface CpuKernel {
  name: string;
  /** the kernel IR this was rendered from (what graphs() shows; the steps below compute it) */
  kernel: Kernel;
  kind: Kernel['body']['kind'];
  /** the generated JavaScript of every step, with a comment for the Wasm matmul */
  source: string;
  steps: CpuStep[];
  /** arrays only its own steps use (prologue results, a product its epilogue consumes, row sums) */
  scratch: { dtype: DType; size: number }[];
}


/** Strides that read a tensor of `shape` in its own row-major order (size-1 dims never step). */
const isRowMajor = (shape: readonly number[], strides: readonly number[]) => {
  const rm = stridesOf(shape);
  return strides.every((s, d) => shape[d] === 1 || s === rm[d]);
};

/** What an expression node says it computes, for the comment above a loop. */
export const origins = (nodes: ExprNode[]) =>
  nodes
    .filter((n) => n.origin)
    .map((n) => `${n.origin!.ids.map((id) => `%${id}`).join(' ')} ${n.op}`)
    .join(', ');

const shapeText = (s: readonly number[]) => `[${s.join(', ')}]`;

export function jsStep(source: string, ins: (Slot | null)[], outs: Slot[]): JsStep {
  return { kind: 'js', fn: compileJs(source), source, ins, outs };
}

/** Elementwise kernels below this many elements stay JavaScript: copying into the Wasm memory and the call cost more than the loop. */
const SIMD_MIN_ELEMENTS = 1024;

/** The body as a Wasm SIMD kernel, unless WGTORCH_WASM_EPILOGUE=0 turns them off (to measure what they save) or it has none. */
function simdOf(body: ElementwiseBody): SimdKernel | null {
  if (envVar('WGTORCH_WASM_EPILOGUE') === '0') return null;
  return simdKernelOf(body);
}

export function renderCpuKernel(k: Kernel): CpuKernel {
  const b = k.body;
  const steps: CpuStep[] = [];
  const scratch: CpuKernel['scratch'] = [];
  const newScratch = (dtype: DType, size: number): Slot => ({ scratch: scratch.push({ dtype, size }) - 1 });
  const readSlots = k.bindings.flatMap((x, i) => (x.access === 'read' ? [{ binding: i }] : []));
  const writeSlots = k.bindings.flatMap((x, i) => (x.access === 'write' ? [{ binding: i }] : []));
  switch (b.kind) {
    case 'elementwise': {
      // bindings: the inputs that are not aliases, in order, then the outputs
      let r = 0;
      const ins = b.inputs.map((t) => (t.access === 'alias' ? null : readSlots[r++]!));
      const header = [`elementwise: ${origins(b.nodes)} over ${shapeText(b.shape)}`];
      const step = jsStep(elementwiseJs(b, b.shape, b.inputs.map((t) => (t.access === 'strided' || t.access === 'gather' ? t.strides! : null)), header), ins, writeSlots);
      // a body that only moves values (copies) is a memcpy-like loop already: through the Wasm memory it would move them twice more
      const computes = b.nodes.some((n) => n.op !== 'copy' && !(n.op === 'cast' && n.attrs.dtype === 'float32'));
      const simd = computes && numel(b.shape) >= SIMD_MIN_ELEMENTS ? simdOf(b) : null;
      if (simd) step.simd = simd;
      steps.push(step);
      break;
    }
    case 'reduce': {
      const header = [`reduce ${b.combine}: ${origins([...b.prologue, ...b.epilogue])} over ${shapeText(b.reduced)} for each of ${shapeText(b.kept)}`];
      steps.push(jsStep(reduceJs(b, b.kept, b.reduced, b.inputs.map((t) => t.strides!), header), readSlots, writeSlots));
      break;
    }
    case 'row': {
      const header = [`row: ${b.steps.length} steps over ${shapeText(b.reduced)} for each of ${shapeText(b.kept)}; ${origins(b.nodes)}`];
      steps.push(jsStep(rowJs(b, header), readSlots, writeSlots));
      break;
    }
    case 'index':
      renderIndex(k, b, steps, newScratch, readSlots, writeSlots[0]!);
      break;
    case 'matmul':
      renderMatmul(k, b, steps, newScratch);
      break;
    case 'pack':
      throw new Error(`internal compiler error: the cpu target runs no packs (kernel ${k.name}); it fuses without a binding limit`);
    default: {
      // a new body kind must get a cpu rendering here, not silently no steps
      const unknown: never = b;
      throw new Error(`internal compiler error: kernel ${k.name}: the cpu target cannot render a ${(unknown as { kind: string }).kind} body`);
    }
  }
  const source = steps
    .map((st) => {
      const simdNote = (x: SimdKernel) => `// runs as a Wasm SIMD kernel over [${x.rows}, ${x.cols}] (f32x4, rounding every op to float32); this loop where it cannot\n`;
      if (st.kind === 'js') return (st.simd ? simdNote(st.simd) : '') + st.source;
      const at = (s: Slot) => ('binding' in s ? `%${k.bindings[s.binding]!.value}` : `scratch${s.scratch}`);
      if (st.kind === 'matmul') {
        const batch = st.batch.count > 1 ? ` x${st.batch.count}` : '';
        const mm = `// wasm simd matmul: ${at(st.out)} = ${at(st.a)}${st.transA ? '^T' : ''} @ ${at(st.b)}${st.transB ? '^T' : ''} (${st.M} x ${st.K} x ${st.N})${batch}`;
        return st.epilogue ? `${mm}, then its epilogue in the Wasm memory:\n\n${simdNote(st.epilogue.js.simd)}${st.epilogue.js.source}` : mm;
      }
      return `// eager cpu kernel: ${at(st.out.slot)} = ${st.op}(${st.ins.map((x) => at(x.slot)).join(', ')})`;
    })
    .join('\n\n');
  return { name: k.name, kernel: k, kind: b.kind, source, steps, scratch };
}

/**
 * An operand read through a convolution's index map: the patch matrix, once, into scratch for
 * the Wasm GEMM (which copies every operand into its own memory anyway), by one generated loop
 * over the window (window-js.ts) reading the source through its strides.
 */
function windowOperand(k: Kernel, which: 'A' | 'B', w: WindowMap, src: Slot, shape: [number, number], steps: CpuStep[], newScratch: (d: DType, n: number) => Slot): Slot {
  const out = newScratch('float32', numel(shape));
  const at = 'binding' in src ? `%${k.bindings[src.binding]!.value}` : `scratch${src.scratch}`;
  const header = [`// operand ${which}: the patch matrix ${shapeText(shape)} of ${at} ${shapeText(w.src)} through strides ${shapeText(w.strides)}`];
  steps.push(jsStep([...header, 'const in0 = ins[0];', 'const out0 = outs[0];', ...im2colLines(w, 'in0', 'out0')].join('\n'), [src], [out]));
  return out;
}

/** The operands of an eager kernel: each bound buffer, or a row-major copy of it into scratch where it is read through strides. */
function renderOperands(k: Kernel, op: string, xs: { shape: number[]; strides: number[] }[], slots: Slot[], dtypes: DType[], steps: CpuStep[], newScratch: (d: DType, n: number) => Slot) {
  return xs.map((x, i) => {
    const dtype = dtypes[i]!;
    if (isRowMajor(x.shape, x.strides)) return { slot: slots[i]!, shape: x.shape, dtype };
    const copy: ElementwiseBody = {
      kind: 'elementwise',
      shape: [...x.shape],
      inputs: [{ dtype, access: 'strided', strides: [...x.strides] }],
      scalars: 0,
      nodes: [{ op: 'copy', args: [{ kind: 'input', index: 0 }], attrs: {} }],
      outputs: [{ ref: { kind: 'node', index: 0 }, dtype }],
    };
    const slot = newScratch(dtype, numel(x.shape));
    const at = slots[i]!;
    const header = [`operand ${i} of ${op}: ${'binding' in at ? `%${k.bindings[at.binding]!.value}` : `scratch${at.scratch}`} through strides ${shapeText(x.strides)}`];
    steps.push(jsStep(elementwiseJs(copy, x.shape, [x.strides], header), [at], [slot]));
    return { slot, shape: x.shape, dtype };
  });
}

/**
 * An index op as one loop over its operands where they lie (index-js.ts), else (im2col,
 * col2im) the eager kernel after strided copies of the operands that are views.
 */
function renderIndex(k: Kernel, b: IndexBody, steps: CpuStep[], newScratch: (d: DType, n: number) => Slot, readSlots: Slot[], out: Slot): void {
  const loop = indexJs(b, [`${b.op}: ${b.inputs.map((x) => `${shapeText(x.shape)} through strides ${shapeText(x.strides)}`).join(', ')} into ${shapeText(b.shape)}`]);
  if (loop) {
    steps.push({ kind: 'js', fn: loop.fn, source: loop.source, ins: readSlots, outs: [out] });
    return;
  }
  const dtypes = b.inputs.map((_, i) => k.bindings[(readSlots[i] as { binding: number }).binding]!.dtype);
  const ins = renderOperands(k, b.op, b.inputs, readSlots, dtypes, steps, newScratch);
  steps.push({ kind: 'op', op: b.op, attrs: b.attrs, ins, out: { slot: out, shape: b.shape, dtype: b.dtype } });
}

/**
 * A matmul body's expression list as an elementwise body over `shape`: `acc` becomes a read
 * of the accumulator array, the body's inputs the loads they stand for.
 */
export function accBody(
  b: MatmulBody,
  nodes: ExprNode[],
  outputs: KernelOutput[],
  shape: number[],
  /** input i of the matmul body as a tensor input of the loop (alias: which loop output) */
  load: (i: number) => TensorInput,
  /** the accumulator's dtype, when the loop reads one */
  acc: DType | null,
): { body: ElementwiseBody; inputOf: (i: number) => number } {
  const inputs: TensorInput[] = [];
  const origin: (number | 'acc')[] = [];
  const inputIndex = (key: number | 'acc', t: () => TensorInput) => {
    let j = origin.indexOf(key);
    if (j < 0) {
      origin.push(key);
      j = inputs.push(t()) - 1;
    }
    return j;
  };
  const ref = (r: Ref): Ref => {
    if (r.kind === 'acc') return { kind: 'input', index: inputIndex('acc', () => ({ dtype: acc!, access: 'direct' })) };
    if (r.kind === 'input') return { kind: 'input', index: inputIndex(r.index, () => load(r.index)) };
    if (r.kind === 'element') throw new Error('internal compiler error: a matmul epilogue reads no loaded element');
    return r;
  };
  const body: ElementwiseBody = {
    kind: 'elementwise',
    shape,
    inputs,
    scalars: b.scalars,
    nodes: nodes.map((n) => ({ ...n, args: n.args.map(ref) })),
    outputs: outputs.map((o) => ({ ...o, ref: ref(o.ref) })),
  };
  return { body, inputOf: (i) => origin.indexOf(i) };
}

/** A loop input read at (row, col) through `strides` over `shape` (direct where that is row-major). */
export const stridedInput = (dtype: DType, shape: number[], strides: number[]): TensorInput =>
  isRowMajor(shape, strides) ? { dtype, access: 'direct' } : { dtype, access: 'strided', strides };

/**
 * A matmul body's epilogue as one loop over `shape` (the output's [M, N], led by batch
 * levels for a batched body), reading the product from `acc`. C's own store is skipped
 * where C already holds the product the epilogue only passes on.
 */
export function renderEpilogue(
  k: Kernel,
  b: MatmulBody,
  steps: CpuStep[],
  acc: Slot,
  readsOldC: boolean,
  shape: number[],
  /** a (row, col) input's strides over `shape` */
  rowcolStrides: (x: Extract<MatmulBody['inputs'][number], { at: 'rowcol' }>) => number[],
  /** what the loop runs over, for its comment */
  over: string,
  /** the product's step: a 2-D epilogue that compiles to Wasm SIMD runs inside it, on the product in the Wasm memory */
  product?: Extract<CpuStep, { kind: 'matmul' }>,
): void {
  const readBinding = (r: number) => 3 + r;
  const outBinding = (j: number) => (j === 0 ? 2 : 3 + b.reads.length + j - 1);
  const stores = b.outputs.map((o, j) => ({ o, j })).filter(({ o, j }) => !(j === 0 && o.ref.kind === 'acc' && !readsOldC));
  if (!stores.length) return;
  const loopOut = (j: number) => stores.findIndex((s) => s.j === j);
  const { body, inputOf } = accBody(
    b,
    b.epilogue,
    stores.map((s) => s.o),
    shape,
    (i) => {
      const x = b.inputs[i]!;
      if (x.at === 'alias') {
        if (x.region !== 'epilogue' || loopOut(x.output) < 0) throw new Error(`internal compiler error: kernel ${k.name}: an epilogue reads the old value of an output it does not write`);
        return { dtype: b.outputs[x.output]!.dtype, access: 'alias', aliasOf: loopOut(x.output) };
      }
      if (x.at === 'rowcol') return stridedInput(b.reads[x.read]!.dtype, shape, rowcolStrides(x));
      if (x.at === 'element') return { dtype: b.reads[x.read]!.dtype, access: 'strided', strides: shape.map(() => 0) };
      throw new Error(`internal compiler error: a matmul epilogue reads a ${x.at} input`);
    },
    'float32',
  );
  const ins = body.inputs.map((t, j) => {
    if (t.access === 'alias') return null;
    const i = b.inputs.findIndex((_, q) => inputOf(q) === j);
    if (i < 0) return acc;
    return { binding: readBinding((b.inputs[i] as { read: number }).read) };
  });
  const header = [`matmul epilogue: ${origins(b.epilogue) || 'the product'} over ${over}`];
  const step = jsStep(elementwiseJs(body, shape, body.inputs.map((t) => t.strides ?? null), header), ins, stores.map((s) => ({ binding: outBinding(s.j) })));
  const simd = product && product.batch.count === 1 ? simdOf(body) : null;
  if (simd) product!.epilogue = { js: { ...step, simd }, acc: ins.indexOf(acc), storeC: !readsOldC };
  else steps.push(step);
}

/**
 * A matmul operand prologue's refs as those of an elementwise body over the operand: its
 * element is input 0 (already in `inputs`), each element input of the matmul an input of its
 * own, read from its binding at stride 0 over the body's `rank` dims (added to `inputs` and
 * `slots` on first use).
 */
export function prologueRef(b: MatmulBody, inputs: TensorInput[], slots: Slot[], rank: number): (r: Ref) => Ref {
  const inputAt = new Map<number, number>();
  return (r) => {
    if (r.kind === 'element') return { kind: 'input', index: 0 };
    if (r.kind !== 'input') return r;
    const x = b.inputs[r.index]!;
    if (x.at !== 'element') throw new Error(`internal compiler error: a matmul prologue reads a ${x.at} input`);
    if (!inputAt.has(r.index)) {
      inputAt.set(r.index, inputs.push({ dtype: b.reads[x.read]!.dtype, access: 'strided', strides: new Array(rank).fill(0) }) - 1);
      slots.push({ binding: 3 + x.read });
    }
    return { kind: 'input', index: inputAt.get(r.index)! };
  };
}

function renderMatmul(k: Kernel, b: MatmulBody, steps: CpuStep[], newScratch: (d: DType, n: number) => Slot): void {
  if (b.batched) return renderBatchedMatmul(k, b, steps, newScratch);
  const { M, N, K, batch } = b;
  if (batch.count > 1 && (b.epilogue.length || b.reductions.length || b.outputs.length > 1 || b.prologueA.length || b.prologueB.length)) {
    throw new Error(`internal compiler error: kernel ${k.name}: the cpu target fuses nothing into a batched matmul yet`);
  }
  const readBinding = (r: number) => 3 + r;
  const redBinding = (q: number, j: number) => 3 + b.reads.length + b.outputs.length - 1 + b.reductions.slice(0, q).reduce((t, r) => t + r.outputs.length, 0) + j;
  const dtypeOfRead = (r: number) => b.reads[r]!.dtype;

  // ---- prologues: the operand's elements through the prologue, into scratch of its layout
  const operand = (which: 'A' | 'B'): Slot => {
    const nodes = which === 'A' ? b.prologueA : b.prologueB;
    const slot: Slot = { binding: which === 'A' ? 0 : 1 };
    const window = which === 'A' ? b.windowA : b.windowB;
    if (window) return windowOperand(k, which, window, slot, which === 'A' ? [M, K] : [K, N], steps, newScratch);
    if (!nodes.length) return slot;
    const stride = which === 'A' ? batch.strideA : batch.strideB;
    const size = (batch.count - 1) * stride + (which === 'A' ? M * K : K * N);
    const inputs: TensorInput[] = [{ dtype: 'float32', access: 'direct' }];
    const slots: Slot[] = [slot];
    const ref = prologueRef(b, inputs, slots, 1);
    const body: ElementwiseBody = {
      kind: 'elementwise',
      shape: [size],
      inputs,
      scalars: b.scalars,
      nodes: nodes.map((n) => ({ ...n, args: n.args.map(ref) })),
      outputs: [{ ref: { kind: 'node', index: nodes.length - 1 }, dtype: 'float32' }],
    };
    const out = newScratch('float32', size);
    const header = [`matmul prologue ${which}: ${origins(nodes)} over each of ${size} elements of %${k.bindings[which === 'A' ? 0 : 1]!.value}`];
    steps.push(jsStep(elementwiseJs(body, body.shape, inputs.map((t) => t.strides ?? null), header), slots, [out]));
    return out;
  };
  const A = operand('A');
  const B = operand('B');

  // ---- the product: into C, unless the epilogue still reads C's old value there (in place)
  const readsOldC = b.inputs.some((x) => x.at === 'alias' && x.region === 'epilogue' && x.output === 0);
  const acc: Slot = readsOldC ? newScratch('float32', batch.count * M * N) : { binding: 2 };
  const product: Extract<CpuStep, { kind: 'matmul' }> = { kind: 'matmul', a: A, transA: b.transA, b: B, transB: b.transB, out: acc, M, K, N, batch };
  steps.push(product);

  // ---- the epilogue, once per (row, col); C already holds a product it only passes on
  renderEpilogue(k, b, steps, acc, readsOldC, [M, N], (x) => [...x.strides], shapeText([M, N]), product);

  // ---- once per row of op(A) / column of op(B): the operand reductions (of the operand after
  // its prologue, as the matmul reads it), then what consumes them
  b.reductions.forEach((r, q) => {
    const onA = r.operand === 'A';
    const L = onA ? M : N;
    const values = newScratch('float32', L);
    // op(A)[i, k] and op(B)[k, i] as (line i, k) strides over the stored operand
    const strides = onA ? (b.transA ? [1, M] : [K, 1]) : b.transB ? [K, 1] : [1, N];
    const red: ReduceBody = {
      kind: 'reduce',
      combine: r.combine,
      kept: [L],
      reduced: [K],
      inputs: [{ dtype: 'float32', access: 'strided', strides }],
      scalars: 0,
      prologue: [],
      value: { kind: 'input', index: 0 },
      epilogue: [],
      outputs: [{ ref: { kind: 'acc' }, dtype: 'float32' }],
    };
    steps.push(jsStep(reduceJs(red, [L], [K], [strides], [`${r.combine} along K of op(${r.operand}) over [${L}, ${K}]`]), [onA ? A : B], [values]));
    const { body, inputOf } = accBody(
      b,
      r.epilogue,
      r.outputs,
      [L],
      (i) => {
        const x = b.inputs[i]!;
        if (x.at === 'alias') {
          if (x.region !== q) throw new Error(`internal compiler error: kernel ${k.name}: operand reduction ${q} reads the old value of another region's output`);
          return { dtype: r.outputs[x.output]!.dtype, access: 'alias', aliasOf: x.output };
        }
        if (x.at === 'line') return stridedInput(dtypeOfRead(x.read), [L], [...x.strides]);
        if (x.at === 'element') return { dtype: dtypeOfRead(x.read), access: 'strided', strides: [0] };
        throw new Error(`internal compiler error: an operand reduction's epilogue reads a ${x.at} input`);
      },
      'float32',
    );
    const ins = body.inputs.map((t, j) => {
      if (t.access === 'alias') return null;
      const i = b.inputs.findIndex((_, p) => inputOf(p) === j);
      if (i < 0) return values;
      return { binding: readBinding((b.inputs[i] as { read: number }).read) };
    });
    const header = [`${r.combine} of op(${r.operand}) consumed: ${origins(r.epilogue) || 'the values'} over [${L}]`];
    steps.push(jsStep(elementwiseJs(body, body.shape, body.inputs.map((t) => t.strides ?? null), header), ins, r.outputs.map((_, j) => ({ binding: redBinding(q, j) }))));
  });
}
