/**
 * What fusion produces: groups of IR nodes, one per kernel, and the schedule that holds
 * them. kernel-build.ts turns each group into a kernel IR value (src/passes/kernel-ir.ts).
 */
import type { Graph } from '../../ir/graph.ts';
import type { View } from '../views.ts';

export type Kernel =
  | {
      kind: 'elementwise';
      shape: number[];
      nodes: number[];
      /** gather nodes read as loads of their source here instead of from memory (rules/gather-load.ts) */
      gathers?: number[];
    }
  | { kind: 'reduce'; node: number; prologue: number[]; epilogue: number[] }
  | {
      kind: 'matmul';
      node: number;
      prologueA: number[];
      prologueB: number[];
      epilogue: number[];
      /** reductions along K of an operand as the matmul loads it, and their elementwise consumers (see OperandReduction) */
      reductions: OperandReduction[];
      /** an im2col read through its index map as operand A / B instead of from memory (rules/window-operand.ts) */
      windowA?: number;
      windowB?: number;
    }
  /** reductions read back over their rows, chained, with the elementwise work around them (rules/row.ts) */
  | {
      kind: 'row';
      shape: number[];
      dims: number[];
      nodes: number[];
      /** gather nodes its per-element expressions load from their source (rules/gather-load.ts) */
      gathers?: number[];
      /** im2col nodes it reads through their index map instead of from memory (rules/window-load.ts) */
      windows?: number[];
      /** elementwise nodes producing a window's source, recomputed at each element it loads (rules/window-recompute.ts) */
      windowSources?: number[];
      /** aranges it reads, recomputed from its element index instead of read from memory (like prologues) */
      sources?: number[];
      /** elementwise nodes over graph inputs it computes where it reads them instead of loading their values (rules/recompute-inputs.ts) */
      recomputed?: number[];
      /** the nodes of `nodes` computed once over all rows: reductions of per-row values over every row and what follows them (row-totals.ts) */
      total?: number[];
      /** the nodes of `nodes` computed over all rows before them, from graph inputs (row-pretotals.ts) */
      pre?: number[];
    }
  /** an index primitive (slice, gather, ... see codegen-wgsl/indexing.ts): its own kernel, reading its inputs through their views */
  | { kind: 'index'; node: number }
  /** a movement node that must exist in memory: node's elements read from base through strides, in row-major order of shape */
  | { kind: 'copy'; node: number; base: number; shape: number[]; strides: number[] };

/**
 * A reduction node whose input is a matmul operand's source, reduced along K: one value per
 * row of op(A) or per column of op(B), computed from the elements the matmul loads (after
 * that operand's prologue); `epilogue` are elementwise consumers of it run once per value
 * (a bias gradient is such a sum over op(A) = the output gradient transposed, and its
 * optimizer update the epilogue).
 */
export interface OperandReduction {
  operand: 'A' | 'B';
  node: number;
  epilogue: number[];
}

export interface Schedule {
  graph: Graph;
  kernels: Kernel[];
  views: Map<number, View>;
  /** values a kernel writes to memory (read by another kernel, or an output of the graph) */
  writes: Set<number>;
  log: string[];
}

export interface FusionOptions {
  /** storage buffers one kernel may bind (the device's maxStorageBuffersPerShaderStage) */
  maxBindings: number;
  /**
   * In-place updates the plan means to make: value -> the graph input whose buffer it is
   * written over. A kernel that computes the value reads the input's old value in the
   * output's own buffer, so that read costs no binding of its own.
   */
  inPlace?: Map<number, number>;
  /** make row kernels (default true; the plans turn it off for WGTORCH_ROW_KERNELS=0, to measure what they save) */
  rowKernels?: boolean;
  /**
   * The binding-limit rule (passes/binding-arena.ts): small buffers a kernel binds may share one
   * arena buffer, so a group counts its arena-eligible buffers as one binding.
   */
  arena?: { eligible: (dtype: string, elements: number) => boolean };
}

export const kernelNodes = (k: Kernel): number[] => {
  switch (k.kind) {
    case 'elementwise': return [...(k.gathers ?? []), ...k.nodes];
    case 'reduce': return [...k.prologue, k.node, ...k.epilogue];
    case 'matmul': return [...windowsOf(k), ...k.prologueA, ...k.prologueB, k.node, ...k.epilogue, ...k.reductions.flatMap((r) => [r.node, ...r.epilogue])];
    case 'copy': return [k.node];
    case 'index': return [k.node];
    case 'row': return [...(k.gathers ?? []), ...(k.windowSources ?? []), ...(k.windows ?? []), ...(k.sources ?? []), ...(k.recomputed ?? []), ...k.nodes];
  }
};

/** The im2col nodes a matmul reads through their index map (recomputed there, like prologues). */
export const windowsOf = (k: Extract<Kernel, { kind: 'matmul' }>): number[] =>
  [...new Set([k.windowA, k.windowB].filter((w): w is number => w !== undefined))];

/** Nodes a kernel computes and may write (its prologues are recomputed copies of other kernels' nodes). */
export function ownedNodes(k: Kernel): number[] {
  switch (k.kind) {
    case 'elementwise': return k.nodes;
    case 'reduce': return [...k.prologue, k.node, ...k.epilogue];
    case 'matmul': return [k.node, ...k.epilogue, ...k.reductions.flatMap((r) => [r.node, ...r.epilogue])];
    case 'copy': return [k.node];
    case 'index': return [k.node];
    case 'row': return k.nodes;
  }
}
