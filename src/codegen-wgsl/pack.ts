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
 * workgroup memory within the device's limits.
 */
import { WGSL_PRELUDE } from '../ir/scalar-lang.ts';
import { parseBindings, workgroupSize } from './bindings.ts';
import type { LoweredKernel } from './lower.ts';

interface Builtin {
  kind: string;
  name: string;
  type: string;
}

/** What packing needs to know of one kernel's WGSL. */
export interface KernelShape {
  invocations: number;
  workgroupSize: [number, number, number];
  storage: number;
  uniforms: number;
  workgroupBytes: number;
}

// comments, numbers (so that `1e5` or `0x7fu` never yield an identifier), identifiers, single characters
const TOKEN = /\/\/[^\n]*|\/\*[\s\S]*?\*\/|\d[\w.]*|[A-Za-z_][A-Za-z0-9_]*|\S/g;

export function kernelShape(code: string): KernelShape {
  const size = workgroupSize(code);
  const { storage, uniforms } = parseBindings(code, 'pack');
  let workgroupBytes = 0;
  for (const m of code.matchAll(/var\s*<\s*workgroup\s*>\s*\w+\s*:\s*array\s*<\s*(vec4\s*<\s*f32\s*>|f32|u32|i32)\s*,\s*(\d+)\s*>/g)) {
    workgroupBytes += (m[1]!.startsWith('vec4') ? 16 : 4) * Number(m[2]);
  }
  if (/var\s*<\s*workgroup\s*>/.test(code) && workgroupBytes === 0) workgroupBytes = Infinity; // unknown layout: never pack
  return { invocations: size[0] * size[1] * size[2], workgroupSize: size, storage: storage.length, uniforms, workgroupBytes };
}

/** The virtual grid of a kernel inside a pack: its own dispatch, unfolded (no 65535 limit applies). */
export function kernelGrid(k: LoweredKernel): [number, number, number] {
  return Array.isArray(k.workgroups) ? [...k.workgroups] : [k.workgroups, 1, 1];
}

const PRELUDE_NAMES = new Set(moduleNames(WGSL_PRELUDE));

/** Names declared at module scope: functions, structs, vars, consts, overrides, aliases. */
function moduleNames(code: string): string[] {
  const names: string[] = [];
  let depth = 0;
  let expectName = false;
  let angle = 0;
  for (const m of code.matchAll(TOKEN)) {
    const t = m[0];
    if (t.startsWith('//') || t.startsWith('/*')) continue;
    if (t === '{') depth++;
    else if (t === '}') depth--;
    if (depth !== 0) continue;
    if (expectName) {
      // `var<storage, read> name`: skip the address space in angle brackets
      if (t === '<') angle++;
      else if (t === '>') angle--;
      else if (angle === 0 && /^[A-Za-z_]/.test(t)) {
        names.push(t);
        expectName = false;
      }
      continue;
    }
    if (['fn', 'struct', 'var', 'const', 'override', 'alias'].includes(t)) expectName = true;
  }
  return names;
}

/**
 * Renames this kernel's module-scope names with a prefix (member accesses and struct
 * field names stay), drops the shared prelude, and renumbers its bindings.
 */
function namespace(code: string, prefix: string, binding: (b: number) => number): string {
  const own = new Set(moduleNames(code).filter((n) => !PRELUDE_NAMES.has(n)));
  const body = code.split(WGSL_PRELUDE).join('');
  let out = '';
  let last = 0;
  let prev = '';
  let structDepth = -1;
  let depth = 0;
  let pendingStruct = false;
  const tokens = [...body.matchAll(TOKEN)].filter((m) => !m[0].startsWith('//') && !m[0].startsWith('/*'));
  tokens.forEach((m, i) => {
    const t = m[0];
    if (t === 'struct') pendingStruct = true;
    if (t === '{') {
      if (pendingStruct) structDepth = depth;
      pendingStruct = false;
      depth++;
    } else if (t === '}') {
      depth--;
      if (depth === structDepth) structDepth = -1;
    }
    const next = tokens[i + 1]?.[0];
    const isField = structDepth >= 0 && depth === structDepth + 1 && next === ':';
    if (own.has(t) && prev !== '.' && !isField) {
      out += body.slice(last, m.index) + prefix + t;
      last = m.index! + t.length;
    }
    prev = t;
  });
  out += body.slice(last);
  return out.replace(/@binding\s*\(\s*(\d+)\s*\)/g, (_, b: string) => `@binding(${binding(Number(b))})`);
}

/** Turns `@compute @workgroup_size(..) fn <prefix>main(@builtin(x) a: T, ..)` into a plain function; returns its builtins. */
function plainEntry(code: string, prefix: string): { code: string; builtins: Builtin[] } {
  const m = new RegExp(`@compute\\s*@workgroup_size\\s*\\([^)]*\\)\\s*fn\\s+${prefix}main\\s*\\(`).exec(code);
  if (!m) throw new Error(`pack: no compute entry point 'main' in kernel ${prefix}`);
  // the parameter list, up to its balancing parenthesis
  let depth = 1;
  let end = m.index + m[0].length;
  for (; depth > 0 && end < code.length; end++) depth += code[end] === '(' ? 1 : code[end] === ')' ? -1 : 0;
  const list = code.slice(m.index + m[0].length, end - 1);
  const builtins: Builtin[] = [];
  for (const p of list.matchAll(/@builtin\s*\(\s*(\w+)\s*\)\s*(\w+)\s*:\s*([\w<>]+)/g)) builtins.push({ kind: p[1]!, name: p[2]!, type: p[3]! });
  const params = builtins.map((b) => `${b.name}: ${b.type}`).join(', ');
  return { code: code.slice(0, m.index) + `fn ${prefix}main(${params})` + code.slice(end), builtins };
}

function builtinValue(kind: string, size: [number, number, number], grid: [number, number, number]): string {
  const v = (a: number[]) => `vec3<u32>(${a.map((x) => `${x}u`).join(', ')})`;
  switch (kind) {
    case 'workgroup_id': return 'wid';
    case 'local_invocation_id': return 'lid';
    case 'local_invocation_index': return 'li';
    case 'global_invocation_id': return `wid * ${v(size)} + lid`;
    case 'num_workgroups': return v(grid);
    default: throw new Error(`pack: builtin ${kind} is not supported in a packed kernel`);
  }
}

/**
 * One kernel running `parts` side by side. Bindings: every part's storage buffers in part
 * order, then every part's params uniform; the executor binds them in that order.
 */
export function packKernels(parts: LoweredKernel[]): LoweredKernel {
  if (parts.length < 2) throw new Error('pack: needs two kernels or more');
  const shapes = parts.map((k) => kernelShape(k.code));
  const S = shapes[0]!.invocations;
  if (shapes.some((s) => s.invocations !== S)) throw new Error('pack: kernels differ in workgroup size');
  const storageTotal = shapes.reduce((s, x) => s + x.storage, 0);
  const grids = parts.map(kernelGrid);
  const counts = grids.map((g) => g[0] * g[1] * g[2]);

  const texts: string[] = [];
  const runs: string[] = [];
  let storageAt = 0;
  let uniformAt = storageTotal;
  parts.forEach((k, i) => {
    const prefix = `p${i}_`;
    const sh = shapes[i]!;
    const sBase = storageAt;
    const uBase = uniformAt;
    const renamed = namespace(k.code, prefix, (b) => (b < sh.storage ? sBase + b : uBase + (b - sh.storage)));
    storageAt += sh.storage;
    uniformAt += sh.uniforms;
    const { code, builtins } = plainEntry(renamed, prefix);
    texts.push(`// ---- part ${i}: ${k.name}\n${code.trim()}`);
    const [X, Y] = sh.workgroupSize;
    const [gx, gy] = grids[i]!;
    const args = builtins.map((b) => builtinValue(b.kind, sh.workgroupSize, grids[i]!)).join(', ');
    runs.push(
      [
        `fn ${prefix}run(f: u32, li: u32) {`,
        `  let wid = vec3<u32>(f % ${gx}u, (f / ${gx}u) % ${gy}u, f / ${gx * gy}u);`,
        `  let lid = vec3<u32>(li % ${X}u, (li / ${X}u) % ${Y}u, li / ${X * Y}u);`,
        `  ${prefix}main(${args});`,
        '}',
      ].join('\n'),
    );
  });

  const entry: string[] = [
    `@compute @workgroup_size(${S})`,
    'fn main(@builtin(workgroup_id) pk_wid: vec3<u32>, @builtin(local_invocation_index) pk_li: u32, @builtin(num_workgroups) pk_n: vec3<u32>) {',
    '  let pk_f = pk_wid.x + (pk_wid.y + pk_wid.z * pk_n.y) * pk_n.x;',
  ];
  let start = 0;
  counts.forEach((c, i) => {
    // the workgroup's range, a uniform value: barriers inside the parts stay legal
    entry.push(`  if (pk_f < ${start + c}u) { p${i}_run(pk_f - ${start}u, pk_li); return; }`);
    start += c;
  });
  entry.push('}');

  const names = parts.map((k) => k.name);
  const code = [
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
    n += k.scalars.length;
  }
  return {
    name: `pack(${names.join(' + ')})`,
    kind: 'pack',
    code,
    nodes: parts.flatMap((k) => k.nodes),
    scopes: [...new Set(parts.flatMap((k) => k.scopes))],
    reads: parts.flatMap((k) => k.reads),
    writes: parts.flatMap((k) => k.writes),
    order: parts.flatMap((k) => k.order ?? [...k.reads, ...k.writes]),
    scalars: parts.flatMap((k) => k.scalars),
    params: (values) => parts.flatMap((k, i) => (shapes[i]!.uniforms ? [k.params(values.slice(scalarsAt[i], scalarsAt[i]! + k.scalars.length)) as Uint32Array] : [])),
    workgroups: start,
    bytes: parts.reduce((s, k) => s + k.bytes, 0),
    flops: parts.reduce((s, k) => s + k.flops, 0),
    parts,
  };
}
