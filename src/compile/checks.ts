/**
 * Value checks of a compiled graph (check_index nodes: class targets, indices). They leave
 * the graph before fusion: each use of a check reads the checked value directly, and the
 * value becomes a 'check' output. At run time a check of a graph input runs before any kernel
 * (on the cpu and for values still known on the host, it throws before anything changed);
 * a check of a computed value runs right after the kernel that computed it, on the device
 * where that value lives (cpu: it throws before any later kernel writes; webgpu: reported at
 * the next readback, with every later dispatch gated on its flag so that nothing after it
 * writes).
 */
import { Graph, type IRNode } from '../ir/graph.ts';
import { findBadIndex, indexCheckAttrs } from '../ir/value-checks.ts';
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
      // a value known when tracing (positions from arange) that passes needs no check at run time,
      // which on webgpu would gate every later dispatch of the call (dispatch-gate.ts)
      if (passesWhenTraced(out.node(inputs[0]), n.attrs)) continue;
      checks.push({ value: inputs[0], check: { index: checks.length, attrs: n.attrs, shape: [...n.shape] } });
      continue;
    }
    out.put({ ...n, inputs });
  }
  for (const o of g.outputs) out.addOutput(r(o.id), o.role, o.label, o.key);
  for (const c of checks) out.addOutput(c.value, 'check', c.check.attrs.op as string, c.check.index);
  return { graph: out, checks: checks.map((c) => c.check) };
}

function passesWhenTraced(v: IRNode, attrs: Attrs): boolean {
  if (v.op !== 'arange' || v.inputs.length || v.dtype !== 'int32') return false;
  const { start, step, n } = v.attrs as { start: number; step: number; n: number };
  const values = Int32Array.from({ length: n }, (_, i) => start + i * step);
  return findBadIndex(indexCheckAttrs(attrs), values, n, v.shape) === null;
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

/**
 * Checks of computed values as soon as a kernel of the plan has written them (`afterKernel`,
 * called by the plan's run after each kernel): on webgpu every later dispatch is then gated
 * on the check's flag, so a bad value stops the in-place updates that follow it.
 */
export function checkWhenWritten(g: Graph, checks: GraphCheck[]): { afterKernel: (valueOf: (id: number) => Storage | undefined) => void; done: Set<number> } {
  const waiting = checkValues(g, checks).filter((c) => !c.isInput);
  const done = new Set<number>();
  return {
    done,
    afterKernel: (valueOf) => {
      for (const c of waiting) {
        if (done.has(c.check.index)) continue;
        const s = valueOf(c.id);
        if (!s) continue;
        s.backend.check(CHECK(), { storage: s, shape: c.check.shape, dtype: 'int32' }, c.check.attrs);
        done.add(c.check.index);
      }
    },
  };
}

/** Checks of computed values: on the plan's results, before they are handed out (but those already `done`). */
export function checkResults(g: Graph, checks: GraphCheck[], out: Map<number, Storage>, done?: Set<number>): void {
  for (const c of checkValues(g, checks)) {
    if (c.isInput || done?.has(c.check.index)) continue;
    const s = out.get(c.id)!;
    s.backend.check(CHECK(), { storage: s, shape: c.check.shape, dtype: 'int32' }, c.check.attrs);
  }
}
