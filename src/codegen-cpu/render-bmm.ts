/**
 * A batched matmul body (the bmm primitive) on the CPU: the Wasm GEMM once per matrix, at
 * the element offsets the body's two batch levels give (0 steps where an operand is
 * broadcast, so nothing is expanded). The GEMM reads dense matrices, so an operand whose
 * rows are further apart than a row (attention's heads of a [B, T, C] tensor) or that has
 * a prologue is first written densely into scratch, one matrix per matrix of the batch.
 * The epilogue is one loop over [outer, inner, M, N], reading its operands through their
 * batch strides (a [T, T] mask at stride 0 over [B, heads]).
 */
import type { DType } from '../ir/dtype.ts';
import type { ElementwiseBody, Kernel, MatmulBody, Ref, TensorInput } from '../passes/kernel-ir.ts';
import { elementwiseJs } from './js-kernels.ts';
import { jsStep, origins, prologueRef, renderEpilogue, type CpuStep, type Slot } from './render.ts';

export function renderBatchedMatmul(k: Kernel, b: MatmulBody, steps: CpuStep[], newScratch: (d: DType, n: number) => Slot): void {
  const { M, N, K, batch } = b;
  const bt = b.batched!;
  if (b.reductions.length || b.windowA || b.windowB) throw new Error(`internal compiler error: kernel ${k.name}: a batched matmul takes no operand reductions or windows`);
  const inner = bt.inner;
  const outer = batch.count / inner;

  // ---- operands: read in place at their offsets, or written densely into scratch first
  /** the operand's slot and its (outer, inner) matrix strides there */
  const operand = (which: 'A' | 'B'): { slot: Slot; so: number; si: number } => {
    const nodes = which === 'A' ? b.prologueA : b.prologueB;
    const trans = which === 'A' ? b.transA : b.transB;
    const ld = which === 'A' ? bt.lda : bt.ldb;
    const [so, si] = which === 'A' ? [bt.outerA, batch.strideA] : [bt.outerB, batch.strideB];
    // the matrix as stored: rows x cols, rows ld apart
    const [rows, cols] = which === 'A' ? (trans ? [K, M] : [M, K]) : trans ? [N, K] : [K, N];
    const slot: Slot = { binding: which === 'A' ? 0 : 1 };
    if (!nodes.length && (ld === cols || rows === 1)) return { slot, so, si };
    const shape = [outer, inner, rows, cols];
    const inputs: TensorInput[] = [{ dtype: 'float32', access: 'strided', strides: [so, si, ld, 1] }];
    const slots: Slot[] = [slot];
    const ref = prologueRef(b, inputs, slots, 4);
    const body: ElementwiseBody = {
      kind: 'elementwise',
      shape,
      inputs,
      scalars: b.scalars,
      nodes: nodes.length ? nodes.map((n) => ({ ...n, args: n.args.map(ref) })) : [{ op: 'copy', args: [{ kind: 'input', index: 0 }], attrs: {} }],
      outputs: [{ ref: { kind: 'node', index: Math.max(nodes.length, 1) - 1 }, dtype: 'float32' }],
    };
    const out = newScratch('float32', batch.count * rows * cols);
    const what = nodes.length ? `matmul prologue ${which}: ${origins(nodes)}` : `dense copy of operand ${which}`;
    const header = [`${what} over ${batch.count} matrices [${rows}, ${cols}] of %${k.bindings[which === 'A' ? 0 : 1]!.value}`];
    steps.push(jsStep(elementwiseJs(body, shape, inputs.map((t) => t.strides ?? null), header), slots, [out]));
    return { slot: out, so: inner * rows * cols, si: rows * cols };
  };
  const A = operand('A');
  const B = operand('B');

  // ---- the product, into C (contiguous [count, M, N]) unless the epilogue reads C's old value there
  const readsOldC = b.inputs.some((x) => x.at === 'alias' && x.region === 'epilogue' && x.output === 0);
  const acc: Slot = readsOldC ? newScratch('float32', batch.count * M * N) : { binding: 2 };
  const stepBatch = { count: batch.count, strideA: A.si, strideB: B.si, strideC: M * N };
  const stepOuter = outer > 1 ? { outer: { count: outer, strideA: A.so, strideB: B.so, strideC: inner * M * N } } : {};
  steps.push({ kind: 'matmul', a: A.slot, transA: b.transA, b: B.slot, transB: b.transB, out: acc, M, K, N, batch: stepBatch, ...stepOuter });

  // ---- the epilogue over [outer, inner, M, N]
  renderEpilogue(k, b, steps, acc, readsOldC, [outer, inner, M, N], (x) => [...(x.batch ?? [0, 0]), ...x.strides], `${batch.count} matrices [${M}, ${N}]`);
}
