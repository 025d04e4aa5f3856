/**
 * Kernel IR -> WGSL. Each kernel renders to its code and the layout its generator declares
 * (bindings, uniforms, workgroup size and memory, builtins), its grid and a params
 * function; the runtime and the packer read those, never the code. A pack renders every
 * part again inside one shader, under a namespace of its own (pack.ts).
 */
import type { Kernel, KernelBody } from '../passes/kernel-ir.ts';
import { elementwiseParams, elementwiseWGSL, elementwiseWorkgroups } from './elementwise.ts';
import { arenaVectorizes } from './elementwise-vec4.ts';
import { matmulDispatch, type MatmulVariant, type MatmulVariantName } from './matmul.ts';
import type { Namespace, WgslLayout } from './namespace.ts';
import { indexBodyParams, indexSpecOf, indexWGSL, INDEX_WORKGROUP } from './indexing.ts';
import { reduceParams, reduceWGSL, reduceWorkgroups } from './reduce.ts';
import { matmulKernelParams, matmulKernelWGSL } from './render-matmul.ts';
import { rowWGSL, rowWorkgroups } from './render-row.ts';
import { rowParams } from './row-params.ts';
import { rowTotalWGSL } from './render-row-total.ts';

export interface MatmulProblem {
  transA: boolean;
  transB: boolean;
  M: number;
  N: number;
  K: number;
}

/** A kernel of the kernel IR rendered to WGSL. */
export interface WgslKernel {
  /** what it computes: the kernel IR it was rendered from */
  kernel: Kernel;
  name: string;
  kind: KernelBody['kind'];
  code: string;
  /** declared by the generator that wrote `code` */
  layout: WgslLayout;
  /** total workgroups (the executor folds them into a 2-D grid) or an explicit grid */
  workgroups: number | [number, number, number];
  /** the params uniform(s) for the current values of the kernel's scalars */
  params(scalarValues: readonly number[]): Uint32Array | Uint32Array[];
  /** a matmul kernel: its problem and the template variant it was rendered with */
  matmul?: { problem: MatmulProblem; variant: string; template: MatmulVariant };
  /** a pack: its parts as rendered alone */
  parts?: WgslKernel[];
}

export interface RenderOptions {
  /** the matmul variant for a problem (the autotuner's choice); the default when absent */
  matmulVariant?: (p: MatmulProblem) => MatmulVariantName;
}

export const matmulProblem = (k: Kernel): MatmulProblem | null =>
  k.body.kind === 'matmul' ? { transA: k.body.transA, transB: k.body.transB, M: k.body.M, N: k.body.N, K: k.body.K } : null;

/** The code and layout of a non-pack kernel, alone or as a part of a pack (`ns`). */
export function renderCode(k: Kernel, variant: MatmulVariant | MatmulVariantName | undefined, ns?: Namespace): { code: string; layout: WgslLayout; variant?: MatmulVariant } {
  const b = renderedBody(k);
  switch (b.kind) {
    case 'elementwise': return elementwiseWGSL(b, ns, k.arena);
    case 'reduce': return reduceWGSL(b, ns, k.arena);
    case 'row':
      if (k.arena) throw new Error('internal compiler error: a row kernel has no arena');
      return b.total ? rowTotalWGSL(b, ns) : rowWGSL(b, ns);
    case 'index':
      if (k.arena) throw new Error('internal compiler error: an index kernel has no arena');
      return indexWGSL(indexSpecOf(b), ns);
    case 'matmul': {
      return matmulKernelWGSL(b, variant, ns, k.arena);
    }
    case 'pack': throw new Error('internal compiler error: render a pack with packKernels');
  }
}

/**
 * the body as rendered: an elementwise kernel reads its arena as vec4 where every member
 * starts a group of four (binding-arena.ts aligns them so); a reduction with an arena keeps the
 * scalar mapping (passes/vector-loads.ts)
 */
export function renderedBody(k: Kernel): KernelBody {
  const b = k.body;
  if (!k.arena || !((b.kind === 'elementwise' || b.kind === 'reduce' || b.kind === 'row') && b.vec)) return b;
  return b.kind === 'elementwise' && arenaVectorizes(k.arena) ? b : { ...b, vec: undefined };
}

export function renderKernel(k: Kernel, opts: RenderOptions = {}): WgslKernel {
  const b = renderedBody(k);
  const problem = matmulProblem(k);
  const requested = problem ? opts.matmulVariant?.(problem) : undefined;
  const { code, layout, variant } = renderCode(k, requested, undefined);
  const base = { kernel: k, name: k.name, kind: b.kind, code, layout };
  switch (b.kind) {
    case 'elementwise':
      return { ...base, workgroups: elementwiseWorkgroups(b), params: (v) => elementwiseParams(b, v) };
    case 'reduce':
      return { ...base, workgroups: reduceWorkgroups(b), params: (v) => reduceParams(b, v) };
    case 'row':
      // totals over the rows: one workgroup walks them all (render-row-total.ts)
      if (b.total) return { ...base, workgroups: 1, params: (v) => rowParams(b, v) };
      return { ...base, workgroups: rowWorkgroups(b), params: (v) => rowParams(b, v) };
    case 'index':
      return { ...base, workgroups: Math.ceil(b.shape.reduce((p, d) => p * d, 1) / INDEX_WORKGROUP), params: () => indexBodyParams(b) };
    case 'matmul':
      return {
        ...base,
        workgroups: matmulDispatch(b.M, b.N, variant!, b.batch.count),
        params: (v) => matmulKernelParams(b, v),
        matmul: { problem: problem!, variant: variant!.name, template: variant! },
      };
    case 'pack': throw new Error('internal compiler error: render a pack with packKernels');
  }
}
