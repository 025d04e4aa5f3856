/**
 * The graph a re-trace is expected to repeat: the traced graph of a compiled call, which the
 * next call's trace checks node by node instead of building a graph and hashing it. A node
 * matches when it agrees with the expected one on everything the structural hash keys
 * (src/ir/hash.ts): op, inputs, attrs, dtype and shape, the phase, and for a number that an
 * int32 or bool op takes whether it is an int32 (other numbers are bound per call); the graph
 * outputs (role and value, in order) and the device of every input must agree too. So a trace
 * that matches to the end has the hash and cache key of the expected graph, and the first
 * node that does not is where the tracer starts building a graph of its own.
 */
import type { DType } from '../ir/dtype.ts';
import { Graph, type IRNode, type OutputRole, type Phase } from '../ir/graph.ts';
import { intOperandScalars, isInt32Number } from '../ir/hash.ts';
import type { AttrValue, Attrs } from '../ir/registry.ts';
import type { Device } from '../runtime/backend.ts';

/** Whether a scalar node's int32-ness is keyed, and if so what it was. */
const NOT_KEYED = 0;
const KEYED_INT = 1;
const KEYED_FLOAT = 2;

export class TraceExpectation {
  /** A copy of the expected graph: passes and plans never reach it. */
  readonly graph: Graph;
  /** By node id: whether (and how) the int32-ness of a scalar's value is part of the key. */
  private readonly intScalars: Int8Array;
  /** The outputs a trace records itself (all but 'saved', which follow from the nodes). */
  readonly recorded: number;

  constructor(
    source: Graph,
    readonly device: Device,
  ) {
    const g = new Graph();
    source.nodes.forEach((n, i) => {
      if (n.id !== i) throw new Error(`trace expectation: graph node ids are not dense (%${n.id} at ${i})`);
      g.add({ ...n, inputs: [...n.inputs], attrs: copyAttrs(n.attrs), shape: [...n.shape] });
    });
    for (const o of source.outputs) g.addOutput(o.id, o.role, o.label, o.key);
    this.graph = g;
    this.recorded = g.outputs.filter((o) => o.role !== 'saved').length;
    if (g.outputs.slice(this.recorded).some((o) => o.role !== 'saved')) throw new Error("trace expectation: 'saved' outputs must come last");
    this.intScalars = new Int8Array(g.nodes.length);
    for (const i of intOperandScalars(g)) this.intScalars[i] = isInt32Number(g.node(i).attrs.value) ? KEYED_INT : KEYED_FLOAT;
  }

  get length(): number {
    return this.graph.nodes.length;
  }

  /** Whether node `id` of a new trace, as given, is the expected node `id`. */
  matches(id: number, op: string, inputs: readonly number[], attrs: Attrs, shape: readonly number[], dtype: DType, phase: Phase): boolean {
    const nodes = this.graph.nodes;
    if (id >= nodes.length) return false;
    const e: IRNode = nodes[id];
    if (e.op !== op || e.dtype !== dtype || e.phase !== phase) return false;
    if (!sameNumbers(e.inputs, inputs) || !sameNumbers(e.shape, shape)) return false;
    if (op === 'scalar') return this.matchesScalar(id, attrs.value as number, phase);
    return sameAttrs(e.attrs, attrs);
  }

  /** matches() for a lifted number: a scalar node of this phase whose value's int32-ness, where keyed, is the same. */
  matchesScalar(id: number, value: number, phase: Phase): boolean {
    const nodes = this.graph.nodes;
    if (id >= nodes.length) return false;
    const e = nodes[id];
    if (e.op !== 'scalar' || e.phase !== phase) return false;
    const keyed = this.intScalars[id];
    return keyed === NOT_KEYED || (isInt32Number(value) ? KEYED_INT : KEYED_FLOAT) === keyed;
  }

  /** Whether a trace's own outputs, in order, are the expected graph's. */
  matchesOutputs(outputs: readonly { id: number; role: OutputRole }[]): boolean {
    if (outputs.length !== this.recorded) return false;
    const expected = this.graph.outputs;
    for (let i = 0; i < outputs.length; i++) {
      if (expected[i].id !== outputs[i].id || expected[i].role !== outputs[i].role) return false;
    }
    return true;
  }
}

function sameNumbers(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Equal as the hash sees them: the same keys with equal values (numbers compared with ===, as -0 and 0 hash alike). */
function sameAttrs(a: Attrs, b: Attrs): boolean {
  let keys = 0;
  for (const k in a) {
    keys++;
    const u: AttrValue | undefined = a[k];
    const v: AttrValue | undefined = b[k];
    if (u === v) continue;
    if (!Array.isArray(u) || !Array.isArray(v) || !sameNumbers(u, v)) return false;
  }
  for (const _ in b) keys--;
  return keys === 0;
}

export function copyAttrs(a: Attrs): Attrs {
  const out: Record<string, AttrValue> = {};
  for (const k in a) {
    const v = a[k];
    out[k] = Array.isArray(v) ? [...v] : v;
  }
  return out;
}
