/**
 * Horizontal packing: independent kernels (no buffer one writes is read or written by
 * another) become one dispatch. Each kernel keeps its own WGSL, namespaced by a prefix
 * and turned into a plain function; one entry point hands out the dispatch's workgroups,
 * a range to each kernel, and rebuilds that kernel's builtins (its workgroup_id,
 * global_invocation_id, num_workgroups ...) for its own virtual grid. A pack saves the
 * per-dispatch cost and lets the driver run the kernels' workgroups side by side (on
 * lavapipe: a one-workgroup reduction no longer leaves the second core idle).
 *
 * Requirements the scheduler checks (packable): equal invocations per workgroup, so a
 * kernel with barriers still runs them in uniform control flow; the sum of bindings and of
 * workgroup memory within the device's limits. Every part is rendered again from its
 * kernel IR under a namespace (prefixed names, renumbered bindings, a plain function for
 * an entry point); nothing here reads generated code.
 */
import { WGSL_PRELUDE } from '../ir/scalar-lang.ts';
import type { Kernel } from '../passes/kernel-ir.ts';
import { SUBGROUPS_ENABLE, usesSubgroups, type Builtin, type WgslLayout } from './namespace.ts';
import { renderCode, type WgslKernel } from './render.ts';

/** What packing needs to know of one rendered kernel (from its layout). */
export interface KernelShape {
  invocations: number;
  workgroupSize: [number, number, number];
  storage: number;
  uniforms: number;
  workgroupBytes: number;
}

export function kernelShape(k: WgslKernel): KernelShape {
  const { workgroupSize: size, storage, uniforms, workgroupBytes } = k.layout;
  return { invocations: size[0] * size[1] * size[2], workgroupSize: size, storage: storage.length, uniforms, workgroupBytes };
}

/** The virtual grid of a kernel inside a pack: its own dispatch, unfolded (no 65535 limit applies). */
export function kernelGrid(k: WgslKernel): [number, number, number] {
  return Array.isArray(k.workgroups) ? [...k.workgroups] : [k.workgroups, 1, 1];
}

export function builtinValue(kind: string, size: [number, number, number], grid: [number, number, number]): string {
  const v = (a: number[]) => `vec3<u32>(${a.map((x) => `${x}u`).join(', ')})`;
  switch (kind) {
    case 'workgroup_id': return 'wid';
    case 'local_invocation_id': return 'lid';
    case 'local_invocation_index': return 'li';
    case 'global_invocation_id': return `wid * ${v(size)} + lid`;
    case 'num_workgroups': return v(grid);
    // the caller's own builtin, passed through (a pack's or folded grid's workgroup is the part's: its subgroups too)
    case 'subgroup_invocation_id': return 'sl';
    default: throw new Error(`pack: builtin ${kind} is not supported in a packed kernel`);
  }
}

/**
 * One kernel running `parts` side by side. Bindings: every part's storage buffers in part
 * order, then every part's params uniform; the executor binds them in that order.
 */
export function packKernels(parts: WgslKernel[]): WgslKernel {
  if (parts.length < 2) throw new Error('pack: needs two kernels or more');
  const shapes = parts.map(kernelShape);
  const S = shapes[0]!.invocations;
  if (shapes.some((s) => s.invocations !== S)) throw new Error('pack: kernels differ in workgroup size');
  const storageTotal = shapes.reduce((s, x) => s + x.storage, 0);
  const grids = parts.map(kernelGrid);
  const counts = grids.map((g) => g[0] * g[1] * g[2]);

  const texts: string[] = [];
  const runs: string[] = [];
  const sg = parts.some((k) => usesSubgroups(k.layout));
  let storageAt = 0;
  let uniformAt = storageTotal;
  parts.forEach((k, i) => {
    const prefix = `p${i}_`;
    const sh = shapes[i]!;
    const sBase = storageAt;
    const uBase = uniformAt;
    const { code, layout } = renderCode(k.kernel, k.matmul?.template, { prefix, storage: (b) => sBase + b, uniform: (b) => uBase + b, entry: 'function' });
    storageAt += sh.storage;
    uniformAt += sh.uniforms;
    texts.push(`// ---- part ${i}: ${k.name}\n${code.trim()}`);
    const [X, Y] = sh.workgroupSize;
    const [gx, gy] = grids[i]!;
    const args = layout.builtins.map((b: Builtin) => builtinValue(b.kind, sh.workgroupSize, grids[i]!)).join(', ');
    runs.push(
      [
        `fn ${prefix}run(f: u32, li: u32${sg ? ', sl: u32' : ''}) {`,
        `  let wid = vec3<u32>(f % ${gx}u, (f / ${gx}u) % ${gy}u, f / ${gx * gy}u);`,
        `  let lid = vec3<u32>(li % ${X}u, (li / ${X}u) % ${Y}u, li / ${X * Y}u);`,
        `  ${prefix}main(${args});`,
        '}',
      ].join('\n'),
    );
  });

  const entry: string[] = [
    `@compute @workgroup_size(${S})`,
    `fn main(@builtin(workgroup_id) pk_wid: vec3<u32>, @builtin(local_invocation_index) pk_li: u32, @builtin(num_workgroups) pk_n: vec3<u32>${sg ? ', @builtin(subgroup_invocation_id) pk_sl: u32' : ''}) {`,
    '  let pk_f = pk_wid.x + (pk_wid.y + pk_wid.z * pk_n.y) * pk_n.x;',
  ];
  let start = 0;
  counts.forEach((c, i) => {
    // the workgroup's range, a uniform value: barriers inside the parts stay legal
    entry.push(`  if (pk_f < ${start + c}u) { p${i}_run(pk_f - ${start}u, pk_li${sg ? ', pk_sl' : ''}); return; }`);
    start += c;
  });
  entry.push('}');

  const names = parts.map((k) => k.name);
  const code = [
    ...(sg ? [SUBGROUPS_ENABLE] : []),
    `// ${parts.length} independent kernels in one dispatch: ${names.join(', ')}`,
    `// workgroups ${counts.map((c, i) => `[${counts.slice(0, i).reduce((a, b) => a + b, 0)}, ${counts.slice(0, i + 1).reduce((a, b) => a + b, 0)}) ${names[i]}`).join('; ')}`,
    WGSL_PRELUDE,
    ...texts,
    '',
    ...runs,
    '',
    ...entry,
    '',
  ].join('\n');
  const scalarsAt: number[] = [];
  let n = 0;
  for (const k of parts) {
    scalarsAt.push(n);
    n += k.kernel.scalars.length;
  }
  const kernels = parts.map((p) => p.kernel);
  const kernel: Kernel = {
    name: `pack(${names.join(' + ')})`,
    body: { kind: 'pack', parts: kernels },
    bindings: kernels.flatMap((k) => k.bindings),
    scalars: kernels.flatMap((k) => k.scalars),
    covers: { nodes: kernels.flatMap((k) => k.covers.nodes), scopes: [...new Set(kernels.flatMap((k) => k.covers.scopes))] },
    bytes: kernels.reduce((s, k) => s + k.bytes, 0),
    flops: kernels.reduce((s, k) => s + k.flops, 0),
  };
  const layout: WgslLayout = {
    storage: parts.flatMap((k) => k.layout.storage),
    uniforms: shapes.reduce((s, x) => s + x.uniforms, 0),
    workgroupSize: [S, 1, 1],
    workgroupBytes: shapes.reduce((s, x) => s + x.workgroupBytes, 0),
    builtins: [
      { kind: 'workgroup_id', name: 'pk_wid', type: 'vec3<u32>' },
      { kind: 'local_invocation_index', name: 'pk_li', type: 'u32' },
      { kind: 'num_workgroups', name: 'pk_n', type: 'vec3<u32>' },
      ...(sg ? [{ kind: 'subgroup_invocation_id', name: 'pk_sl', type: 'u32' }] : []),
    ],
  };
  return {
    kernel,
    name: kernel.name,
    kind: 'pack',
    code,
    layout,
    params: (values) =>
      parts.flatMap((k, i) => (shapes[i]!.uniforms ? [k.params(values.slice(scalarsAt[i], scalarsAt[i]! + k.kernel.scalars.length)) as Uint32Array] : [])),
    workgroups: start,
    parts,
  };
}
