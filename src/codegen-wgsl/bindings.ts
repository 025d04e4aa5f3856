/**
 * What the runtime and the packer read back from a generated kernel's WGSL: its group-0
 * bindings (storage 0..n-1, then the params uniforms) and its workgroup size.
 */
export type StorageAccess = 'read' | 'read_write';

const DECL = /((?:@\s*\w+\s*\(\s*\d+\s*\)\s*)+)var\s*<\s*(storage|uniform)\s*(?:,\s*(read_write|read))?\s*>/g;

/** Reads the group-0 binding shape our kernels use: storage 0..n-1, then uniforms n.. (usually one, or none). */
export function parseBindings(wgsl: string, label: string): { storage: StorageAccess[]; hasParams: boolean; uniforms: number } {
  const found: { binding: number; kind: string; access: StorageAccess }[] = [];
  for (const m of wgsl.matchAll(DECL)) {
    const group = /@\s*group\s*\(\s*(\d+)/.exec(m[1]!);
    const binding = /@\s*binding\s*\(\s*(\d+)/.exec(m[1]!);
    if (!group || !binding) continue;
    if (group[1] !== '0') throw new Error(`${label}: only @group(0) is supported`);
    found.push({ binding: +binding[1]!, kind: m[2]!, access: (m[3] as StorageAccess | undefined) ?? 'read' });
  }
  found.sort((a, b) => a.binding - b.binding);
  found.forEach((b, i) => {
    if (b.binding !== i) throw new Error(`${label}: bindings must be numbered 0..n-1 without gaps`);
    if (b.kind === 'storage' && found.slice(0, i).some((x) => x.kind === 'uniform')) throw new Error(`${label}: the uniform params must be the last bindings`);
  });
  const uniforms = found.filter((b) => b.kind === 'uniform').length;
  return { storage: found.filter((b) => b.kind === 'storage').map((b) => b.access), hasParams: uniforms > 0, uniforms };
}

/** The literal @workgroup_size as [x, y, z]; [64, 1, 1] where it is not literal. */
export function workgroupSize(wgsl: string): [number, number, number] {
  const m = /@\s*workgroup_size\s*\(([^)]*)\)/.exec(wgsl);
  const dims = m?.[1]!.split(',').map((s) => Number.parseInt(s.trim(), 10)) ?? [];
  if (!dims.length || !dims.every((d) => d > 0)) return [64, 1, 1];
  return [dims[0]!, dims[1] ?? 1, dims[2] ?? 1];
}
