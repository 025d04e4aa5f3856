/**
 * The device's binding limit as one rule: before a kernel is split (or a pack refused)
 * because it binds more storage buffers than the device offers per shader stage, small
 * float32 buffers it reads or writes are served by one arena: a single read_write buffer
 * holding each of them at an element offset (Kernel.arena). The renderer reads and writes
 * them there; the plan copies their values in before the dispatch and the written ones out
 * after (copies are not dispatches, and for values this small they cost next to nothing).
 * One read_write binding serves reads and writes alike, which WebGPU requires: a buffer may
 * not be bound both read-only and writable in one dispatch.
 *
 * Never a member: a matmul's A, B and C (the template streams them as vec4 arrays), an
 * index or row kernel's buffers, anything not float32, anything larger than ARENA_MAX_ELEMENTS
 * (copying it each call would cost more than the dispatch it saves).
 */
import type { Graph } from '../ir/graph.ts';
import { getOp } from '../ir/registry.ts';
import { numel } from '../ir/shape.ts';
import type { Arena, Kernel } from './kernel-ir.ts';

/** the largest value an arena holds, in elements (256 KiB of floats) */
export const ARENA_MAX_ELEMENTS = 1 << 16;

/** member offsets are rounded up to this many elements (16 bytes) */
const ALIGN = 4;

/** Whether a value of this dtype and size may live in an arena (fusion asks this of IR values). */
export const arenaEligible = (dtype: string, elements: number): boolean => dtype === 'float32' && elements > 0 && elements <= ARENA_MAX_ELEMENTS;

/** Binding indices of `k` an arena may hold. */
export function arenaCandidates(k: Kernel, sizeOf: (value: number) => number): number[] {
  const b = k.body;
  if (b.kind !== 'elementwise' && b.kind !== 'reduce' && b.kind !== 'matmul') return [];
  const first = b.kind === 'matmul' ? 3 : 0;
  const out: number[] = [];
  k.bindings.forEach((x, i) => {
    if (i >= first && arenaEligible(x.dtype, sizeOf(x.value))) out.push(i);
  });
  return out;
}

/** The fewest storage buffers `k` can bind: all its candidates in one arena. */
export function minStorage(k: Kernel, sizeOf: (value: number) => number): number {
  const c = arenaCandidates(k, sizeOf).length;
  return k.bindings.length - (c > 1 ? c - 1 : 0);
}

/**
 * `k` binding at most `budget` storage buffers: unchanged if it already does, else with an
 * arena of its smallest candidates (as few as reach the budget); null if no arena reaches it.
 */
export function withArena(k: Kernel, budget: number, sizeOf: (value: number) => number): Kernel | null {
  if (k.arena) throw new Error(`internal compiler error: ${k.name} has an arena already`);
  const n = k.bindings.length;
  if (n <= budget) return k;
  const need = n - budget + 1;
  const candidates = arenaCandidates(k, sizeOf);
  if (candidates.length < need || need < 2) return null;
  const members = [...candidates].sort((a, b) => sizeOf(k.bindings[a]!.value) - sizeOf(k.bindings[b]!.value) || a - b).slice(0, need).sort((a, b) => a - b);
  const offsets: number[] = [];
  let elements = 0;
  for (const m of members) {
    offsets.push(elements);
    elements += Math.ceil(sizeOf(k.bindings[m]!.value) / ALIGN) * ALIGN;
  }
  const arena: Arena = { members, offsets, elements };
  return { ...k, arena };
}

/**
 * The storage buffers a fusion group of IR nodes `ids` binds once an arena holds what it
 * may: its reads and writes that cannot be members, plus one arena. A matmul's operands and
 * its first float32 result written (its C) cannot; nor can anything of an index kernel.
 */
export function arenaBindingCount(
  g: Graph,
  ids: readonly number[],
  reads: readonly number[],
  written: readonly number[],
  baseOf: (id: number) => number,
  eligible: (dtype: string, elements: number) => boolean,
): number {
  const kindOf = (id: number) => getOp(g.node(id).op).kind;
  if (ids.some((id) => kindOf(id) === 'index')) return reads.length + written.length;
  const hard = new Set<number>();
  const mmAt = ids.findIndex((id) => kindOf(id) === 'matmul');
  if (mmAt >= 0) {
    for (const i of g.node(ids[mmAt]!).inputs) hard.add(baseOf(i));
    // a prologue's source tensor is the operand itself
    for (const id of ids.slice(0, mmAt)) for (const i of g.node(id).inputs) if (numel(g.node(baseOf(i)).shape) > 1) hard.add(baseOf(i));
    const c = ids.slice(mmAt).find((id) => written.includes(id) && g.node(id).dtype === 'float32');
    hard.add(c ?? ids[mmAt]!);
  }
  let own = 0;
  let shared = 0;
  for (const id of [...reads, ...written]) {
    const n = g.node(id);
    if (!hard.has(id) && eligible(n.dtype, numel(n.shape))) shared++;
    else own++;
  }
  return own + Math.min(shared, 1);
}
