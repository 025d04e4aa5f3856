/**
 * The storage bindings of a kernel as its generator declares them. Without an arena, one
 * binding per logical binding (the order of Kernel.bindings). With one (Kernel.arena, the
 * binding-limit rule of passes/binding-arena.ts), the members share a single read_write
 * `array<f32>` bound where the first member would be, each read and written at its element
 * offset, so the kernel fits a device with few storage buffers per stage. Generators declare
 * and index every storage buffer through this, so the offsets are rendered from the kernel
 * IR and nothing reads the code back.
 */
import type { Arena } from '../passes/kernel-ir.ts';
import type { Namespace, StorageAccess } from './namespace.ts';

export class StorageSlots {
  private readonly offsets = new Map<number, number>();
  private readonly first: number;

  constructor(
    /** logical bindings */
    readonly logical: number,
    readonly arena?: Arena,
  ) {
    arena?.members.forEach((m, i) => this.offsets.set(m, arena.offsets[i]!));
    this.first = arena?.members.length ? Math.min(...arena.members) : -1;
  }

  /** storage buffers actually bound */
  get count(): number {
    return this.logical - this.offsets.size + (this.offsets.size ? 1 : 0);
  }

  isMember(slot: number): boolean {
    return this.offsets.has(slot);
  }

  /** the binding index (before the namespace renumbers it) of a logical slot; members: the arena's */
  physical(slot: number): number {
    const at = this.offsets.has(slot) ? this.first : slot;
    let p = 0;
    for (let s = 0; s < at; s++) if (!this.offsets.has(s)) p++;
    return p + (this.first >= 0 && this.first < at ? 1 : 0);
  }

  arenaName(ns: Namespace): string {
    return `${ns.prefix}arena`;
  }

  /** The declaration of a logical slot: its own buffer, the arena (at its first member), or nothing (later members). */
  declare(ns: Namespace, slot: number, name: string, type: string, access: StorageAccess, arenaType = 'array<f32>'): string | null {
    if (!this.offsets.has(slot)) return `@group(0) @binding(${ns.storage(this.physical(slot))}) var<storage, ${access}> ${name}: ${type};`;
    if (slot !== this.first) return null;
    return `@group(0) @binding(${ns.storage(this.physical(slot))}) var<storage, read_write> ${this.arenaName(ns)}: ${arenaType};`;
  }

  /** a member's element offset in the arena; undefined for a slot with its own buffer */
  offset(slot: number): number | undefined {
    return this.offsets.get(slot);
  }

  /** Element `idx` (a u32 expression) of a logical slot's buffer. */
  at(ns: Namespace, slot: number, name: string, idx: string): string {
    const off = this.offsets.get(slot);
    return off === undefined ? `${name}[${idx}]` : `${this.arenaName(ns)}[${off}u + ${idx}]`;
  }

  /** The access of every bound buffer, in binding order, from the logical accesses. */
  access(logical: readonly StorageAccess[]): StorageAccess[] {
    const out: StorageAccess[] = [];
    logical.forEach((a, s) => {
      if (!this.offsets.has(s)) out.push(a);
      else if (s === this.first) out.push('read_write');
    });
    return out;
  }
}
