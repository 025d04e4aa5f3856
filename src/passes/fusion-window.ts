/**
 * Fusion rule [window-operand]: an `im2col` (a convolution's patch matrix, src/ir/window.ts)
 * whose only readers are matmul operands is not computed by a kernel of its own: each of
 * those matmuls reads its source through the convolution's index map as it loads the
 * operand, so the patch matrix ([N*Ho*Wo, C*kh*kw], kh*kw times the input) is never
 * written. The forward conv's product, its weight gradient and its input gradient (the
 * transposed map) are each one matmul kernel over the conv's input or output gradient.
 */
import type { Graph } from '../ir/graph.ts';
import type { Kernel } from './fusion.ts';
import { matmulLayout, type View } from './views.ts';

export interface WindowRuleContext {
  g: Graph;
  kernels: (Kernel | null)[];
  kernelOf: Map<number, number>;
  views: Map<number, View>;
  outputs: Set<number>;
  consumersThroughViews: (id: number) => number[];
  note: (rule: string, message: string) => void;
}

type MatmulGroup = Extract<Kernel, { kind: 'matmul' }>;

export function fuseWindowOperands(cx: WindowRuleContext): void {
  const { g, kernels, kernelOf, views } = cx;
  kernels.forEach((k, ki) => {
    if (!k || k.kind !== 'index' || g.node(k.node).op !== 'im2col') return;
    const id = k.node;
    const why = (reason: string) => cx.note('window-operand', `kept %${id} im2col as a kernel of its own: ${reason}`);
    if (cx.outputs.has(id)) return why('the graph returns it');
    const src = g.node(id).inputs[0];
    if (g.node(views.get(src)?.base ?? src).dtype !== 'float32') return why('its source is not float32');
    const uses: { m: MatmulGroup; mi: number; slot: 'A' | 'B' }[] = [];
    for (const c of cx.consumersThroughViews(id)) {
      const mi = kernelOf.get(c);
      const m = mi === undefined ? null : kernels[mi];
      if (!m || m.kind !== 'matmul' || m.node !== c) return why(`%${c} ${g.node(c).op} reads it, not a matmul`);
      const mm = g.node(c);
      for (const [slot, operand] of [['A', mm.inputs[0]], ['B', mm.inputs[1]]] as const) {
        const v = views.get(operand);
        if ((v?.base ?? operand) !== id) continue;
        // the map gives op(A)(row, k) of a plain operand; a transposed use would need the swapped map
        if (v && matmulLayout(v, g.node(id).shape) !== 'plain') return why(`matmul %${c} reads it transposed`);
        if ((slot === 'A' ? m.prologueA : m.prologueB).length) return why(`matmul %${c} has a prologue on operand ${slot}`);
        if (slot === 'A' && m.rowSumA !== null) return why(`matmul %${c} sums the rows of operand A`);
        if (!uses.some((u) => u.mi === mi && u.slot === slot)) uses.push({ m, mi: mi!, slot });
      }
    }
    if (!uses.length) return why('nothing reads it');
    for (const u of uses) {
      if (u.slot === 'A') u.m.windowA = id;
      else u.m.windowB = id;
      kernelOf.set(id, u.mi);
    }
    kernels[ki] = null;
    cx.note('window-operand', `read %${id} im2col inside ${uses.map((u) => `matmul kernel ${u.mi} (operand ${u.slot})`).join(', ')} through its index map instead of writing it`);
  });
}
