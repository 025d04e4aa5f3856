/**
 * [recompute-prologue] an elementwise kernel whose values are read only by reductions and
 * matmul operands is recomputed inside each of them (as a prologue applied to every loaded
 * element) instead of written out.
 */
import { numel, sameShape } from '../../../ir/shape.ts';
import type { Rule } from '../driver.ts';
import { kernelNodes } from '../groups.ts';
import { tailReaders } from './unwritten.ts';

export const recomputePrologue: Rule<number> = {
  name: 'recompute-prologue',
  doc: 'an elementwise kernel loading one tensor of its shape, read only by matmul operands and reductions, becomes their prologue',
  apply(st, ki) {
    const found = tailReaders(st, ki);
    if (!found) return null;
    const { k, ids, tail } = found;
    const external = found.readers.map((c) => ({ from: tail, c }));
    // the loads it makes: one tensor of its own shape read directly, plus scalars and 0-d values
    const loads = new Set<number>();
    for (const id of k.nodes) {
      for (const i of st.node(id).inputs) {
        const b = st.baseOf(i);
        if (ids.has(b) || st.node(b).op === 'scalar') continue;
        if (numel(st.node(b).shape) === 1) continue;
        if (!sameShape(st.node(i).shape, k.shape) || st.views.has(i)) return null;
        loads.add(b);
      }
    }
    if (loads.size !== 1) return null;
    if (k.nodes.some((id) => st.node(id).op === 'arange')) {
      // arange's value is its element's index, which a reduction or matmul operand does not name
      return { refused: `did not recompute kernel ${ki} as a prologue: arange needs the index of its own elements` };
    }
    const uses: { kernel: number; slot: 'A' | 'B' | 'reduce' }[] = [];
    for (const { c } of external) {
      const ck = st.kernelOf.get(c);
      if (ck === undefined || !st.kernels[ck]) return null; // returned through a view: it must be in memory
      const ker = st.kernels[ck]!;
      if (ker.kind === 'matmul' && ker.node === c) {
        const mm = st.node(c);
        for (const [slot, operand] of [['A', mm.inputs[0]], ['B', mm.inputs[1]]] as const) {
          if (st.baseOf(operand) === tail && !uses.some((u) => u.kernel === ck && u.slot === slot)) uses.push({ kernel: ck, slot });
        }
      } else if (ker.kind === 'reduce' && ker.node === c && st.node(c).inputs[0] === tail && ker.prologue.length === 0) {
        uses.push({ kernel: ck, slot: 'reduce' });
      } else return null;
    }
    if (!uses.length) return null;
    const [loaded] = loads;
    if (st.node(loaded!).dtype !== 'float32' && uses.some((u) => u.slot !== 'reduce')) {
      // the matmul template binds its operands as f32: an int32 source would be read as raw bits
      return { refused: `did not recompute kernel ${ki} as a matmul prologue: it reads %${loaded} of dtype ${st.node(loaded!).dtype}` };
    }
    for (const u of uses) {
      const why = st.overBindings([...kernelNodes(st.kernels[u.kernel]!), ...k.nodes]);
      if (why) return { refused: `did not recompute kernel ${ki} in kernel ${u.kernel}: ${why}` };
    }
    for (const u of uses) {
      const ker = st.kernels[u.kernel]!;
      if (ker.kind === 'matmul') (u.slot === 'A' ? ker.prologueA : ker.prologueB).push(...k.nodes);
      else if (ker.kind === 'reduce') ker.prologue.push(...k.nodes);
    }
    // prologues are recomputed copies: kernelOf keeps pointing at the dropped kernel
    st.kernels[ki] = null;
    return {
      fired: `recomputed kernel ${ki} (${k.nodes.map((id) => st.nodeTag(id)).join(', ')}) as a prologue of ${uses.map((u) => `kernel ${u.kernel} ${u.slot}`).join(', ')} instead of writing it out`,
    };
  },
};
