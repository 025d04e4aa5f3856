/**
 * Grid folding for a kernel whose own grid needs more workgroups in a dimension than the
 * device allows (a matmul over 4.5M rows wants 70,000 row tiles; a batch over 65,535). The
 * kernel is rendered again with a plain-function entry point and called from an entry
 * point that takes a linear workgroup number from a folded 2-D/3-D dispatch and rebuilds
 * the kernel's builtins for its own, unfolded grid (as a pack does for each part). The
 * kernel IR is unchanged: folding is how it is dispatched, not what it computes.
 */
import { WGSL_PRELUDE } from '../ir/scalar-lang.ts';
import { SUBGROUPS_ENABLE, usesSubgroups, type Builtin, type WgslLayout } from './namespace.ts';
import { builtinValue, kernelGrid } from './pack.ts';
import { renderCode, type WgslKernel } from './render.ts';

/** Whether a kernel's grid fits the device as it is (a linear count is folded by the executor). */
export function gridFits(k: WgslKernel, maxPerDim: number): boolean {
  return !Array.isArray(k.workgroups) || k.workgroups.every((d) => d <= maxPerDim);
}

/** The same kernel, dispatched as a linear count of workgroups the executor folds into (x, y, z). */
export function foldGrid(k: WgslKernel): WgslKernel {
  if (k.kind === 'pack') throw new Error('internal compiler error: a pack folds its grid already');
  const prefix = 'f_';
  const storage = k.layout.storage.length;
  const { code, layout } = renderCode(k.kernel, k.matmul?.template, { prefix, storage: (b) => b, uniform: (b) => storage + b, entry: 'function' });
  const folded = foldedEntry(k.name, code, layout, kernelGrid(k), prefix);
  return { ...k, code: folded.code, layout: folded.layout, workgroups: folded.count };
}

/**
 * A shader whose entry point runs `code` (a kernel rendered with a plain-function entry
 * point `<prefix>main` taking `layout`'s builtins) over its own `grid`, from a linear count of
 * workgroups folded into a 2-D/3-D dispatch (workgroupGrid) of any shape.
 */
export function foldedEntry(name: string, code: string, layout: WgslLayout, grid: [number, number, number], prefix: string): { code: string; layout: WgslLayout; count: number } {
  const [gx, gy, gz] = grid;
  const count = gx * gy * gz;
  if (count > 0xffffffff) throw new Error(`internal compiler error: kernel ${name}: ${count} workgroups do not fit a u32`);
  const size = layout.workgroupSize;
  const [X, Y] = size;
  const S = size[0] * size[1] * size[2];
  const args = layout.builtins.map((b: Builtin) => builtinValue(b.kind, size, grid)).join(', ');
  const sg = usesSubgroups(layout);
  const text = [
    ...(sg ? [SUBGROUPS_ENABLE] : []),
    `// ${name}: its ${gx} x ${gy} x ${gz} workgroups folded into a linear count (device limit per dimension)`,
    WGSL_PRELUDE,
    code.trim(),
    '',
    `@compute @workgroup_size(${S})`,
    `fn main(@builtin(workgroup_id) fw: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(num_workgroups) fnwg: vec3<u32>${sg ? ', @builtin(subgroup_invocation_id) sl: u32' : ''}) {`,
    '  let f = fw.x + (fw.y + fw.z * fnwg.y) * fnwg.x;',
    // a whole workgroup leaves together: barriers inside the kernel stay in uniform control flow
    `  if (f >= ${count}u) { return; }`,
    `  let wid = vec3<u32>(f % ${gx}u, (f / ${gx}u) % ${gy}u, f / ${gx * gy}u);`,
    `  let lid = vec3<u32>(li % ${X}u, (li / ${X}u) % ${Y}u, li / ${X * Y}u);`,
    `  ${prefix}main(${args});`,
    '}',
    '',
  ].join('\n');
  const folded: WgslLayout = {
    ...layout,
    workgroupSize: [S, 1, 1],
    builtins: [
      { kind: 'workgroup_id', name: 'fw', type: 'vec3<u32>' },
      { kind: 'local_invocation_index', name: 'li', type: 'u32' },
      { kind: 'num_workgroups', name: 'fnwg', type: 'vec3<u32>' },
      ...(sg ? [{ kind: 'subgroup_invocation_id', name: 'sl', type: 'u32' }] : []),
    ],
  };
  return { code: text, layout: folded, count };
}
