/**
 * What a static replay (`compile(f, { mode: 'static' })`) froze, and the checks that keep it
 * honest. A replay skips the trace, so JavaScript the function runs does not run again: the
 * replay is only exact while everything the trace read is as it was. What wgtorch can see
 * is guarded on every call (a failed guard re-traces):
 * - grad mode, and each argument's shape, dtype, device and requiresGrad (the cache key);
 * - every tensor the trace read: its storage (a replaced or moved tensor), requiresGrad;
 * - every module it called: `training`, and its own numbers, strings, booleans and tensors;
 * - every optimizer it stepped: the options of its parameter groups (a changed lr).
 * What it cannot see (numbers the function computes afresh each call: Adam's step count, a
 * random mask, a counter in a closure) shows as a second trace that differs from the first:
 * each key is traced twice before it replays, and a key whose traces differ is traced on
 * every call from then on (exactly the default mode), with a warning that says why.
 */
import { Tensor } from '../eager/tensor.ts';
import { graphHash } from '../ir/hash.ts';
import { Module } from '../nn/module.ts';
import type { TracedProgram } from '../trace/program.ts';

type Snapshot = [object, string, unknown][];

function primitiveOrTensor(v: unknown): boolean {
  return typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean' || v === null || v instanceof Tensor;
}

function snapshotOf(p: TracedProgram): Snapshot {
  const out: Snapshot = [];
  for (const c of p.tracer.captures) {
    out.push([c.tensor, '_storage', c.storage]);
    out.push([c.tensor, 'requiresGrad', c.tensor.requiresGrad]);
  }
  for (const m of p.tracer.modules) {
    out.push([m, 'training', m.training]);
    for (const [k, v] of Object.entries(m)) if (primitiveOrTensor(v) && !(v instanceof Module)) out.push([m, k, v]);
  }
  for (const o of p.tracer.optimizers) {
    const groups = (o as { paramGroups: Record<string, unknown>[] }).paramGroups;
    groups.forEach((g, i) => {
      const { params: _p, ...opts } = g;
      out.push([o, `paramGroups[${i}]`, JSON.stringify(opts)]);
    });
  }
  return out;
}

function current(obj: object, key: string): unknown {
  const m = /^paramGroups\[(\d+)\]$/.exec(key);
  if (m) {
    const g = (obj as { paramGroups: Record<string, unknown>[] }).paramGroups[Number(m[1])];
    if (!g) return undefined;
    const { params: _p, ...opts } = g;
    return JSON.stringify(opts);
  }
  return (obj as Record<string, unknown>)[key];
}

function describe(obj: object, key: string): string {
  if (obj instanceof Tensor) return `a tensor of shape [${obj.shape.join(', ')}] read by the function (${key === '_storage' ? 'replaced or moved' : key})`;
  if (obj instanceof Module) return `${obj.constructor.name}.${key}`;
  return `${obj.constructor.name}.${key}`;
}

export class StaticGuard {
  private readonly snapshot: Snapshot;
  constructor(readonly program: TracedProgram) {
    this.snapshot = snapshotOf(program);
  }

  /** Why a replay would not be exact now, or null. */
  stale(): string | null {
    for (const [obj, key, v] of this.snapshot) if (current(obj, key) !== v) return `${describe(obj, key)} changed`;
    return null;
  }

  /** Why a second trace of the same key differs from the first (a value the function computes each call), or null. */
  static differs(a: TracedProgram, b: TracedProgram): string | null {
    if (graphHash(a.graph) !== graphHash(b.graph)) return 'the traced graph changed (a closure number, an attribute, or control flow)';
    const sa = a.tracer.scalars;
    const sb = b.tracer.scalars;
    for (let i = 0; i < sa.length; i++) {
      if (!Object.is(sa[i]!.value, sb[i]!.value)) {
        const n = a.graph.node(sa[i]!.id);
        const user = a.graph.nodes.find((x) => x.inputs.includes(n.id));
        return `a number changed between calls (${sa[i]!.value} then ${sb[i]!.value}${user ? `, used by ${user.op}${user.scope ? ` in ${user.scope}` : ''}` : ''}; e.g. an optimizer's step count or learning rate)`;
      }
    }
    const ca = a.tracer.captures;
    const cb = b.tracer.captures;
    for (let i = 0; i < ca.length; i++) {
      if (ca[i]!.storage !== cb[i]!.storage) return `the function creates a new tensor of shape [${ca[i]!.tensor.shape.join(', ')}] each call (e.g. a random mask)`;
    }
    return null;
  }
}
