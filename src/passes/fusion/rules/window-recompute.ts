/**
 * [window-recompute] an elementwise kernel whose one output is read only through the window
 * loads of one row kernel (a pool after BatchNorm-apply + ReLU in eval mode, where they are a
 * kernel of their own) is not a kernel: the row kernel recomputes its expression at each
 * element it loads, reading the elementwise kernel's inputs through the pool's index map
 * (WindowMap `planes`: each channel of the [N, C, H, W] iteration space an image of its own,
 * so a per-channel vector is read at stride 0 over the pixels), and the activation is never
 * written. Only for windows that never read outside the source (no padding): a padded
 * position must read the fill, not the expression of a fill.
 */
import { numel, sameShape, stridesOf } from '../../../ir/shape.ts';
import type { Rule } from '../driver.ts';

export const windowRecompute: Rule<number> = {
  name: 'window-recompute',
  doc: 'an elementwise kernel read only through one row kernel\'s window loads (no padding) is recomputed there per loaded element instead of written',
  apply(st, ki) {
    const k = st.kernels[ki];
    if (!k || k.kind !== 'elementwise' || k.gathers?.length || k.shape.length !== 4) return null;
    const inside = new Set(k.nodes);
    const leaving = k.nodes.filter((id) => st.outputs.has(id) || st.consumersThroughViews(id).some((c) => !inside.has(c)));
    if (leaving.length !== 1) return null;
    const out = leaving[0]!;
    const readers = st.consumersThroughViews(out).filter((c) => !inside.has(c));
    if (!readers.length || !readers.every((c) => st.node(c).op === 'im2col')) return null;
    const kept = (why: string) => ({ refused: `kept ${st.nodeTag(out)} in kernel ${ki}: ${why}` });
    if (st.outputs.has(out)) return kept('the graph returns it');
    if (!sameShape(st.node(out).shape, k.shape) || st.node(out).dtype !== 'float32') return kept('it is not the float32 value of the kernel\'s iteration space');
    const rowKernels = new Set(readers.map((c) => st.kernelOf.get(c)));
    if (rowKernels.size !== 1) return kept('more than one kernel reads its windows');
    const ri = [...rowKernels][0]!;
    const r = ri === undefined ? null : st.kernels[ri];
    if (!r || r.kind !== 'row' || readers.some((c) => !r.windows?.includes(c))) return kept('an im2col of it is not loaded inside a row kernel ([window-load])');
    const [N, C, H, W] = k.shape;
    for (const c of readers) {
      const w = st.node(c);
      const v = st.views.get(w.inputs[0]);
      // each channel an image: the pool's [N * C, 1, H, W] planes of the contiguous [N, C, H, W] value
      const planes = v ? v.base === out && sameShape(v.shape, [N * C, 1, H, W]) && sameShape(v.strides, stridesOf([N * C, 1, H, W])) : false;
      if (!planes) return kept(`${st.nodeTag(c)} does not read it as one image per channel`);
      if (w.attrs.transposed === true || (w.attrs.padding as number[]).some((p) => p !== 0)) return kept(`${st.nodeTag(c)} reads padding (the fill is no value of the expression)`);
    }
    const over = st.overBindings([...k.nodes.filter((id) => id !== out), ...rowNodes(r)]);
    if (over) return kept(over);
    r.windowSources = [...(r.windowSources ?? []), ...k.nodes];
    st.absorb(ki, ri, k.nodes);
    return { fired: `recomputed kernel ${ki} (${numel(k.shape)} elements of ${st.nodeTag(out)}) inside row kernel ${ri}'s window loads instead of writing it` };
  },
};

const rowNodes = (r: { nodes: number[]; windows?: number[]; gathers?: number[]; sources?: number[]; windowSources?: number[] }) => [
  ...(r.windowSources ?? []),
  ...(r.windows ?? []),
  ...(r.gathers ?? []),
  ...(r.sources ?? []),
  ...r.nodes,
];
