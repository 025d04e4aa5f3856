/**
 * [gather-load] a gather (an embedding lookup, `indexSelect`, `t.index(intTensor)`) whose only
 * readers are elementwise kernels or the per-element expressions of row kernels is not a kernel
 * of its own: each reader loads the gathered element from the gather's source at the index it
 * reads beside it (src/passes/gather-load.ts), so the gathered tensor is never written (a GPT's
 * token and position embeddings, their add and the first layerNorm are one row kernel). The
 * index checks (check_index) run around the kernels as before; an index out of range reads NaN
 * on the device, as the gather kernel does. It runs last, after every rule that moves
 * elementwise kernels into others.
 */
import { sameShape } from '../../../ir/shape.ts';
import { gatherLoad } from '../../gather-load.ts';
import type { Rule } from '../driver.ts';
import { kernelNodes, type Kernel } from '../groups.ts';
import type { FusionState } from '../state.ts';

type Reader = Extract<Kernel, { kind: 'elementwise' | 'row' }>;

/**
 * The iteration space over which reader node `c` of kernel `ck` reads its inputs as elements, or
 * null where it reads them otherwise: an elementwise kernel's shape; a row kernel's element space
 * for its element nodes and its reductions over that space (a per-row node reads its inputs once
 * per row, which a gathered load does not serve).
 */
function elementSpace(st: FusionState, ck: Kernel, c: number): number[] | null {
  if (ck.kind === 'elementwise') return ck.nodes.includes(c) ? ck.shape : null;
  // (a row kernel with totals walks whole rows in one workgroup on WebGPU, which loads plain inputs only)
  if (ck.kind !== 'row' || ck.total || !ck.nodes.includes(c)) return null;
  const n = st.node(c);
  const reducesTheSpace = (n.op === 'sum' || n.op === 'max') && sameShape(st.node(n.inputs[0]).shape, ck.shape);
  return reducesTheSpace || (!['sum', 'max'].includes(n.op) && sameShape(n.shape, ck.shape)) ? ck.shape : null;
}

export const gatherLoadRule: Rule<number> = {
  name: 'gather-load',
  doc: 'a gather read only by elementwise kernels or row kernels\' per-element expressions (along its coordinates) is loaded from its source inside them instead of written',
  apply(st, ki) {
    const k = st.kernels[ki];
    if (!k || k.kind !== 'index' || st.node(k.node).op !== 'gather') return null;
    const id = k.node;
    const kept = (why: string) => ({ refused: `kept %${id} gather as a kernel of its own: ${why}` });
    if (st.outputs.has(id)) return kept('the graph returns it');
    if (st.node(id).dtype !== 'float32') return kept(`it gathers ${st.node(id).dtype} values`);
    const readers = new Map<number, Reader>();
    for (const c of st.consumersThroughViews(id)) {
      const ci = st.kernelOf.get(c);
      const ck = ci === undefined ? null : st.kernels[ci];
      const space = ck ? elementSpace(st, ck, c) : null;
      if (!ck || !space) return kept(`${st.nodeTag(c)} reads it outside an elementwise kernel or a row kernel's per-element expressions`);
      for (const i of st.node(c).inputs) {
        if (st.baseOf(i) !== id) continue;
        const v = st.views.get(i) ?? { base: id, shape: st.node(id).shape, strides: st.node(id).shape.map((_, d, s) => s.slice(d + 1).reduce((a, b) => a * b, 1)) };
        if (!gatherLoad(st.g, st.views, id, v, space)) return kept(`${st.nodeTag(c)} reads it through a view that does not move along its coordinates`);
      }
      readers.set(ci!, ck as Reader);
    }
    if (!readers.size) return kept('nothing reads it');
    for (const [ci, ck] of readers) {
      // the reader binds the source and the index instead of the gathered tensor: one more buffer
      const n = st.bindingsOf(kernelNodes(ck)) + 1;
      if (n > st.opts.maxBindings) return kept(`kernel ${ci} would bind more than the device's ${st.opts.maxBindings} storage buffers`);
    }
    for (const ck of readers.values()) ck.gathers = [...(ck.gathers ?? []), id];
    st.absorb(ki, [...readers.keys()][0]!, [id]);
    return { fired: `loaded %${id} gather inside ${[...readers.keys()].map((r) => `kernel ${r}${readers.get(r)!.kind === 'row' ? ' (a row kernel)' : ''}`).join(', ')} from its source instead of writing it` };
  },
};
