/**
 * The graph IR: plain nodes (id, op, inputs, attrs, shape, dtype), in definition
 * order. `input` nodes are the graph's parameters (user arguments, or device tensors
 * the traced code read: weights, optimizer state); `scalar` nodes are numbers the
 * traced code used, lifted so that a new value (a learning rate, Adam's step) reuses
 * the same compiled graph.
 */
import type { DType } from './dtype.ts';
import type { Attrs } from './registry.ts';

export type Phase = 'forward' | 'backward' | 'update';

export interface IRNode {
  id: number;
  /** A registry op, or 'input' / 'scalar'. */
  op: string;
  inputs: number[];
  attrs: Attrs;
  shape: number[];
  dtype: DType;
  /** Which part of a training step recorded it. */
  phase: Phase;
  /** Module path that produced it (`linear1`), where known. */
  scope?: string;
  /** For inputs: what it is (`x`, `0.weight`, `state`). */
  name?: string;
}

/** 'check': a value a check_index reads (src/compile/checks.ts). */
export type OutputRole = 'output' | 'grad' | 'mutation' | 'saved' | 'check';
export interface GraphOutput {
  id: number;
  role: OutputRole;
  /** What the output is for: the returned value's index, the parameter name, the mutated tensor. */
  label: string;
  /** The id the value had when it was traced: passes may replace the node, never this key. */
  key: number;
}

export class Graph {
  readonly nodes: IRNode[] = [];
  readonly outputs: GraphOutput[] = [];
  /** nodes by id (ids are small integers: a sparse array beats a Map on every call's trace) */
  private byId: IRNode[] = [];

  private nextId = 0;

  add(node: Omit<IRNode, 'id'>): IRNode {
    const n = node as IRNode;
    n.id = this.nextId;
    return this.put(n);
  }

  /** Adds a node keeping its id (passes keep ids, so bindings made at trace time stay valid). */
  put(node: IRNode): IRNode {
    if (this.byId[node.id]) throw new Error(`graph already has a node %${node.id}`);
    this.nodes.push(node);
    this.byId[node.id] = node;
    if (node.id >= this.nextId) this.nextId = node.id + 1;
    return node;
  }

  has(id: number): boolean {
    return this.byId[id] !== undefined;
  }

  node(id: number): IRNode {
    const n = this.byId[id];
    if (!n) throw new Error(`graph has no node %${id}`);
    return n;
  }

  get inputs(): IRNode[] {
    return this.nodes.filter((n) => n.op === 'input');
  }

  addOutput(id: number, role: OutputRole, label: string, key: number = id): void {
    this.outputs.push({ id, role, label, key });
  }

  /** Number of uses of each node (by other nodes and by outputs). */
  useCounts(): Map<number, number> {
    const uses = new Map<number, number>();
    for (const n of this.nodes) for (const i of n.inputs) uses.set(i, (uses.get(i) ?? 0) + 1);
    for (const o of this.outputs) uses.set(o.id, (uses.get(o.id) ?? 0) + 1);
    return uses;
  }

  /** A copy holding only `keep` (in order), with ids renumbered densely. */
  subgraph(keep: (n: IRNode) => boolean, outputs: GraphOutput[]): { graph: Graph; remap: Map<number, number> } {
    const g = new Graph();
    const remap = new Map<number, number>();
    for (const n of this.nodes) {
      if (!keep(n)) continue;
      const m = g.add({ ...n, inputs: n.inputs.map((i) => remap.get(i) ?? -1 - i) });
      remap.set(n.id, m.id);
    }
    for (const o of outputs) g.addOutput(remap.get(o.id)!, o.role, o.label, o.key);
    return { graph: g, remap };
  }
}
