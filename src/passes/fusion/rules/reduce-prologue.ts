/** [reduce-prologue] a reduction absorbs the elementwise producer chain read only by it. */
import type { Rule } from '../driver.ts';
import { kernelNodes } from '../groups.ts';
import { tailReaders } from './unwritten.ts';

export const reducePrologue: Rule<number> = {
  name: 'reduce-prologue',
  doc: 'an elementwise kernel whose only reader is a reduction (of its last value) becomes that reduction\'s prologue',
  apply(st, ki) {
    const found = tailReaders(st, ki);
    if (!found || found.readers.length !== 1) return null;
    const { k, tail } = found;
    const ext = found.readers.map((c) => ({ from: tail, c }));
    const rk = st.kernelOf.get(ext[0].c);
    if (rk === undefined) return null;
    const r = st.kernels[rk];
    if (!r || r.kind !== 'reduce' || r.node !== ext[0].c || r.prologue.length || st.node(r.node).inputs[0] !== tail) return null;
    const why = st.overBindings([...kernelNodes(r), ...k.nodes]);
    if (why) return { refused: `did not fuse kernel ${ki} into reduction %${r.node}: ${why}` };
    if (k.nodes.some((id) => st.node(id).op === 'arange')) {
      return { refused: `did not fuse kernel ${ki} into reduction %${r.node}: arange needs the index of its own elements` };
    }
    r.prologue.push(...k.nodes);
    st.absorb(ki, rk, k.nodes);
    return { fired: `fused kernel ${ki} (${k.nodes.map((id) => st.nodeTag(id)).join(', ')}) into reduction %${r.node} as its prologue` };
  },
};
