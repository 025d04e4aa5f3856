/**
 * Where a rendered kernel lives: alone in its own shader (module-scope names as they are,
 * bindings from 0, a `@compute` entry point `main`), or as one part of a pack (names
 * prefixed, bindings renumbered, the entry point a plain function that the pack's entry
 * point calls with the builtins rebuilt for the part's own grid). Generators write every
 * module-scope name through `ns.name`, so a pack never has to rename code after the fact.
 */
export type StorageAccess = 'read' | 'read_write';

export interface Builtin {
  /** the WGSL builtin, e.g. 'global_invocation_id' */
  kind: string;
  /** the parameter name the kernel uses */
  name: string;
  type: string;
}

/** What the runtime and the packer need of a rendered kernel, declared by its generator. */
export interface WgslLayout {
  /** group-0 storage bindings 0..n-1 */
  storage: StorageAccess[];
  /** uniform bindings n.. (one params buffer per kernel, several in a pack) */
  uniforms: number;
  workgroupSize: [number, number, number];
  /** bytes of workgroup memory declared */
  workgroupBytes: number;
  /** the entry point's builtins (a pack rebuilds them for each part) */
  builtins: Builtin[];
}

export interface Namespace {
  /** prefix of module-scope names ('' alone) */
  prefix: string;
  /** the binding number of storage binding i and of uniform binding i */
  storage(i: number): number;
  uniform(i: number): number;
  /** 'compute': a `@compute` entry point; 'function': a plain function `<prefix>main` */
  entry: 'compute' | 'function';
}

/**
 * The directive of a kernel that reads its builtin `subgroup_invocation_id` (the subgroup
 * matmul variants). A directive opens the module, so a kernel alone writes it, and a pack or
 * a folded grid writes it once above its parts (usesSubgroups).
 */
export const SUBGROUPS_ENABLE = 'enable subgroups;';

/** Whether a rendered kernel uses subgroup builtins, so its module needs SUBGROUPS_ENABLE and its caller passes the builtin. */
export const usesSubgroups = (layout: WgslLayout): boolean => layout.builtins.some((b) => b.kind === 'subgroup_invocation_id');

/** A kernel alone in its shader: storage 0..n-1, then its params at n. */
export const standalone = (storageCount: number): Namespace => ({
  prefix: '',
  storage: (i) => i,
  uniform: (i) => storageCount + i,
  entry: 'compute',
});

/** The entry point's opening lines: `@compute @workgroup_size(..)` and `fn main(@builtin(..) ..)`, or a plain function. */
export function entryPoint(ns: Namespace, size: string, builtins: Builtin[]): string[] {
  if (ns.entry === 'function') return [`fn ${ns.prefix}main(${builtins.map((b) => `${b.name}: ${b.type}`).join(', ')}) {`];
  return [`@compute @workgroup_size(${size})`, `fn main(${builtins.map((b) => `@builtin(${b.kind}) ${b.name}: ${b.type}`).join(', ')}) {`];
}
