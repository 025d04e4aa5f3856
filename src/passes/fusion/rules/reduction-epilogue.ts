/**
 * [reduction-epilogue] elementwise work on an operand reduction fused into a matmul (a
 * bias's optimizer update on its gradient) runs in the same matmul, once per row or
 * column, by the invocations that hold the reduced value.
 */
import { numel } from '../../../ir/shape.ts';
import type { Rule } from '../driver.ts';
import { kernelNodes, type Kernel } from '../groups.ts';

export const reductionEpilogue: Rule<number> = {
  name: 'reduction-epilogue',
  doc: "a 1-d elementwise kernel that reads only graph inputs and one matmul's operand reduction (or work on it there) runs in that matmul, once per reduced value",
  apply(st, ki) {
    const k = st.kernels[ki];
    if (!k || k.kind !== 'elementwise' || k.shape.length !== 1) return null;
    const ids = new Set(k.nodes);
    let host = -1;
    let reduced = -1;
    for (const id of k.nodes) {
      for (const i of st.node(id).inputs) {
        const b = st.baseOf(i);
        if (ids.has(b) || st.node(b).op === 'scalar' || st.node(b).op === 'input') continue;
        const pk = st.kernelOf.get(b);
        const m = pk === undefined ? null : st.kernels[pk];
        // the reduced value, or work on it already fused there
        const r = m && m.kind === 'matmul' ? m.reductions.find((x) => x.node === b || x.epilogue.includes(b)) : undefined;
        if (!r) return null; // reads another kernel's value
        if ((host !== -1 && host !== pk) || (reduced !== -1 && reduced !== r.node)) return null;
        host = pk!;
        reduced = r.node;
      }
    }
    if (host < 0) return null;
    const m = st.kernels[host] as Extract<Kernel, { kind: 'matmul' }>;
    const r = m.reductions.find((x) => x.node === reduced)!;
    if (numel(st.node(reduced).shape) !== k.shape[0]) return null;
    const what = `kernel ${ki} (${k.nodes.map((id) => st.nodeTag(id)).join(', ')})`;
    const why = st.overBindings([...kernelNodes(m), ...k.nodes]);
    if (why) return { refused: `did not fuse ${what} into matmul kernel ${host}: ${why}` };
    r.epilogue.push(...k.nodes);
    st.absorb(ki, host, k.nodes);
    return { fired: `fused ${what} into matmul kernel ${host}: it runs once per ${r.operand === 'A' ? 'row' : 'column'} on the ${st.node(reduced).op} there` };
  },
};
