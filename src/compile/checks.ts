/**
 * Value checks of a compiled graph (check_index nodes: class targets, indices). They leave
 * the graph before fusion: each use of a check reads the checked value directly, and the
 * value becomes a 'check' output. At run time a check of a graph input runs before any kernel
 * (on the cpu and for values still known on the host, it throws before anything changed);
 * a check of a computed value runs on its result right after the plan, on the device where
 * that value lives (cpu: at once, before the call's writes land; webgpu: reported at the next
 * readback).
 */
import { Graph } from '../ir/graph.ts';
import { getOp, type Attrs } from '../ir/registry.ts';
import type { Storage } from '../runtime/backend.ts';

export interface GraphCheck {
  /** index into the 'check' outputs (their key) */
  index: number;
  attrs: Attrs;
  shape: number[];
}

export function takeChecks(g: Graph): { graph: Graph; checks: GraphCheck[] } {
  if (!g.nodes.some((n) => n.op === 'check_index')) return { graph: g, checks: [] };
  const out = new Graph();
  const replace = new Map<number, number>();
  const r = (id: number) => replace.get(id) ?? id;
  const checks: { value: number; check: GraphCheck }[] = [];
  for (const n of g.nodes) {
    const inputs = n.inputs.map(r);
    if (n.op === 'check_index') {
      replace.set(n.id, inputs[0]);
      checks.push({ value: inputs[0], check: { index: checks.length, attrs: n.attrs, shape: [...n.shape] } });
      continue;
    }
    out.put({ ...n, inputs });
  }
  for (const o of g.outputs) out.addOutput(r(o.id), o.role, o.label, o.key);
  for (const c of checks) out.addOutput(c.value, 'check', c.check.attrs.op as string, c.check.index);
  return { graph: out, checks: checks.map((c) => c.check) };
}

/** Where each check's value is in an (optimised) graph, and whether it is an input. */
function checkValues(g: Graph, checks: GraphCheck[]): { check: GraphCheck; id: number; isInput: boolean }[] {
  return checks.map((check) => {
    const o = g.outputs.find((x) => x.role === 'check' && x.key === check.index)!;
    return { check, id: o.id, isInput: g.node(o.id).op === 'input' };
  });
}

const CHECK = () => getOp('check_index');

/** Checks of graph inputs: before the plan runs. */
export function checkInputs(g: Graph, checks: GraphCheck[], bind: (id: number) => Storage): void {
  for (const c of checkValues(g, checks)) {
    if (!c.isInput) continue;
    const s = bind(c.id);
    s.backend.check(CHECK(), { storage: s, shape: c.check.shape, dtype: 'int32' }, c.check.attrs);
  }
}

/** Checks of computed values: on the plan's results, before they are handed out. */
export function checkResults(g: Graph, checks: GraphCheck[], out: Map<number, Storage>): void {
  for (const c of checkValues(g, checks)) {
    if (c.isInput) continue;
    const s = out.get(c.id)!;
    s.backend.check(CHECK(), { storage: s, shape: c.check.shape, dtype: 'int32' }, c.check.attrs);
  }
}
