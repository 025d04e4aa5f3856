/**
 * Which captured input holds the old value of each tensor a traced call writes in place. A
 * compiled plan writes each new value straight into that input's buffer, so two calls whose
 * graphs are equal node for node but that write the new values into the other tensors (a
 * branch swapping which of two captured tensors gets which result) need plans of their own:
 * the graph's hash does not see it, so it joins the cache key and the repeat check.
 */
import type { TracedProgram } from '../trace/program.ts';

/** By mutation output, in order: the captured input node holding the tensor's old value, or null (a tensor the call never read). */
export function mutationSources(program: Pick<TracedProgram, 'mutated' | 'tracer'>): (number | null)[] {
  if (!program.mutated.length) return [];
  const captured = new Map<unknown, number>();
  for (const c of program.tracer.captures) if (!captured.has(c.storage)) captured.set(c.storage, c.id);
  return program.mutated.map((m) => captured.get(m.storage) ?? null);
}

/** The part of the cache key the sources add ('' without in-place writes, so such graphs keep their hash as key). */
export function mutationKey(sources: readonly (number | null)[]): string {
  return sources.length ? `|in-place ${sources.map((s) => (s === null ? '-' : s)).join(',')}` : '';
}
