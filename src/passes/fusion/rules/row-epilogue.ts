/**
 * [row-epilogue] elementwise work on a column sum fused into a matmul (the bias's optimizer
 * update) runs in the same matmul, once per row, by the invocations that hold the sum.
 */
import { numel } from '../../../ir/shape.ts';
import type { Rule } from '../driver.ts';
import { kernelNodes, type Kernel } from '../groups.ts';

export const rowEpilogue: Rule<number> = {
  name: 'row-epilogue',
  doc: "a 1-d elementwise kernel that reads only graph inputs and one matmul's fused row sum runs in that matmul, once per row",
  apply(st, ki) {
    const k = st.kernels[ki];
    if (!k || k.kind !== 'elementwise' || k.shape.length !== 1) return null;
    const ids = new Set(k.nodes);
    let host = -1;
    for (const id of k.nodes) {
      for (const i of st.node(id).inputs) {
        const b = st.baseOf(i);
        if (ids.has(b) || st.node(b).op === 'scalar' || st.node(b).op === 'input') continue;
        const pk = st.kernelOf.get(b);
        const m = pk === undefined ? null : st.kernels[pk];
        if (m && m.kind === 'matmul' && m.rowSumA === b) host = host === -1 || host === pk ? pk! : -2;
        else return null; // reads another kernel's value
      }
    }
    if (host < 0) return null;
    const m = st.kernels[host] as Extract<Kernel, { kind: 'matmul' }>;
    if (numel(st.node(m.node).shape.slice(0, 1)) !== k.shape[0]) return null;
    const what = `kernel ${ki} (${k.nodes.map((id) => st.nodeTag(id)).join(', ')})`;
    const why = st.overBindings([...kernelNodes(m), ...k.nodes]);
    if (why) return { refused: `did not fuse ${what} into matmul kernel ${host}: ${why}` };
    m.rowEpilogue.push(...k.nodes);
    st.absorb(ki, host, k.nodes);
    return { fired: `fused ${what} into matmul kernel ${host}: it runs once per row on the column sum there` };
  },
};
