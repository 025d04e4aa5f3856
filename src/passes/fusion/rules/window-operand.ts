/**
 * [window-operand] an `im2col` (a convolution's patch matrix, src/ir/window.ts) whose only
 * readers are matmul operands is not computed by a kernel of its own: each of those matmuls
 * reads the im2col's source through the convolution's index map as it loads the operand, so
 * the patch matrix ([N*Ho*Wo, C*kh*kw], about kh*kw times its source) is never written. A
 * convolution's product, its weight gradient and its input gradient (the transposed map)
 * are each one matmul kernel over the conv's input or output gradient.
 */
import { matmulLayout } from '../../views.ts';
import type { Rule } from '../driver.ts';
import type { Kernel } from '../groups.ts';

type MatmulGroup = Extract<Kernel, { kind: 'matmul' }>;

export const windowOperand: Rule<number> = {
  name: 'window-operand',
  doc: 'an im2col read only as plain matmul operands is loaded through its index map inside those matmuls instead of written',
  apply(st, ki) {
    const k = st.kernels[ki];
    if (!k || k.kind !== 'index' || st.node(k.node).op !== 'im2col') return null;
    const id = k.node;
    const kept = (why: string) => ({ refused: `kept %${id} im2col as a kernel of its own: ${why}` });
    if (st.outputs.has(id)) return kept('the graph returns it');
    const src = st.node(id).inputs[0];
    if (st.node(st.baseOf(src)).dtype !== 'float32') return kept('its source is not float32 (the matmul template loads f32)');
    const uses: { m: MatmulGroup; mi: number; slot: 'A' | 'B' }[] = [];
    for (const c of st.consumersThroughViews(id)) {
      const mi = st.kernelOf.get(c);
      const m = mi === undefined ? null : st.kernels[mi];
      if (!m || m.kind !== 'matmul' || m.node !== c) return kept(`${st.nodeTag(c)} reads it, not a matmul operand`);
      const mm = st.node(c);
      for (const [slot, operand] of [['A', mm.inputs[0]], ['B', mm.inputs[1]]] as const) {
        if (st.baseOf(operand) !== id) continue;
        const v = st.views.get(operand);
        // the map gives element (row, k) of a plain operand; a transposed read would need it swapped
        if (v && matmulLayout(v, st.node(id).shape) !== 'plain') return kept(`matmul %${c} reads it transposed`);
        if ((slot === 'A' ? m.prologueA : m.prologueB).length) return kept(`matmul %${c} has a prologue on operand ${slot}`);
        if (m.reductions.some((r) => r.operand === slot)) return kept(`matmul %${c} reduces operand ${slot} as it loads it`);
        if (!uses.some((u) => u.mi === mi && u.slot === slot)) uses.push({ m, mi: mi!, slot });
      }
    }
    if (!uses.length) return kept('nothing reads it');
    for (const u of uses) {
      if (u.slot === 'A') u.m.windowA = id;
      else u.m.windowB = id;
    }
    st.absorb(ki, uses[0].mi, [id]);
    return { fired: `read %${id} im2col inside ${uses.map((u) => `matmul kernel ${u.mi} (operand ${u.slot})`).join(', ')} through its index map instead of writing it` };
  },
};
