/**
 * The graph being fused, as the rules see it: the kernels formed so far (a fused-away
 * kernel leaves a null so indices stay stable), which kernel computes each node, the views,
 * the nodes still waiting for a consumer to pull them in, and the questions every rule
 * asks (what a set of nodes would bind, who reads a value, ...). Rules change the
 * schedule only through this object.
 */
import type { Graph, IRNode } from '../../ir/graph.ts';
import { getOp } from '../../ir/registry.ts';
import { sameShape } from '../../ir/shape.ts';
import type { RowGroup } from './row-groups.ts';
import { resolveViews, type View } from '../views.ts';
import { kernelNodes, type FusionOptions, type Kernel } from './groups.ts';
import { arenaBindingCount } from '../binding-arena.ts';
import { scatterSelectNotes } from '../scatter-select.ts';

export class FusionState {
  readonly views: Map<number, View>;
  readonly kernels: (Kernel | null)[] = [];
  /** node -> index of the kernel that computes it (prologue copies do not count) */
  readonly kernelOf = new Map<number, number>();
  /** elementwise nodes that read only graph inputs, waiting for a consumer's kernel to pull them in */
  readonly floating = new Set<number>();
  /** nodes the placement rules have decided on (a view, a kernel, or waiting) */
  readonly placed = new Set<number>();
  /** row groups (the rows rule set): node -> its group; each group is placed as one kernel */
  readonly rowGroupOf = new Map<number, RowGroup>();
  /** the order placement visits nodes in: the graph's, with each row group's nodes adjacent (null until the rows set ran) */
  order: IRNode[] | null = null;
  readonly consumers = new Map<number, number[]>();
  readonly outputs: Set<number>;
  readonly log: string[] = [];
  private readonly logged = new Set<string>();
  /** graph inputs overwritten in place -> the value written over them */
  private readonly overwrittenBy: Map<number, number>;

  constructor(readonly g: Graph, readonly opts: FusionOptions) {
    this.views = resolveViews(g);
    for (const n of g.nodes) for (const i of n.inputs) this.consumers.set(i, [...(this.consumers.get(i) ?? []), n.id]);
    this.outputs = new Set(g.outputs.map((o) => o.id));
    this.overwrittenBy = new Map([...(opts.inPlace ?? [])].map(([v, c]) => [c, v] as const));
    // the rewrites of the graph before fusion that belong to its story (passes/scatter-select.ts)
    for (const line of scatterSelectNotes(g)) this.note(line.slice(1, line.indexOf(']')), line.slice(line.indexOf(']') + 2));
  }

  /** a decision of one fusion rule, fired or refused, under the rule's name (each line once) */
  note(rule: string, message: string): void {
    const line = `[${rule}] ${message}`;
    if (this.logged.has(line)) return;
    this.logged.add(line);
    this.log.push(line);
  }

  node(id: number): IRNode {
    return this.g.node(id);
  }
  nodeTag(id: number): string {
    return `%${id} ${this.node(id).op}`;
  }
  /** the value read when a node consumes `id`: itself, or the base of the view it is */
  baseOf(id: number): number {
    return this.views.get(id)?.base ?? id;
  }
  /** read at the consumer's own index: no view in between, same shape (or a scalar) */
  isDirect(consumer: IRNode, id: number): boolean {
    return !this.views.has(id) && (this.node(id).op === 'scalar' || sameShape(this.node(id).shape, consumer.shape));
  }
  isElementwise(n: IRNode): boolean {
    return n.op !== 'input' && n.op !== 'scalar' && getOp(n.op).kind === 'elementwise';
  }

  add(k: Kernel): number {
    this.kernels.push(k);
    const idx = this.kernels.length - 1;
    for (const id of kernelNodes(k)) this.kernelOf.set(id, idx);
    return idx;
  }
  /** moves the nodes of kernel `from` into kernel `into` (their kernelOf), and drops `from` */
  absorb(from: number, into: number, ids: number[]): void {
    for (const id of ids) this.kernelOf.set(id, into);
    this.kernels[from] = null;
  }
  /** turns a view into a value of its own, written by a strided copy */
  materialize(id: number): void {
    const v = this.views.get(id)!;
    this.views.delete(id);
    this.add({ kind: 'copy', node: id, base: v.base, shape: [...v.shape], strides: [...v.strides] });
  }
  /** kernel index that produces the memory `id` reads, or -1 for graph inputs */
  producer(id: number): number {
    const b = this.baseOf(id);
    const n = this.node(b);
    if (n.op === 'input' || n.op === 'scalar') return -1;
    return this.kernelOf.get(b) ?? -1;
  }

  /** Storage buffers a kernel computing `ids` binds: what it reads from outside, and what leaves it. */
  bindingsOf(ids: number[]): number {
    const inside = new Set(ids);
    const reads = new Set<number>();
    for (const id of ids) {
      for (const i of this.node(id).inputs) {
        const b = this.baseOf(i);
        if (inside.has(b) || this.node(b).op === 'scalar') continue;
        // the old value of an in-place update, read in the buffer its new value is written to
        if (inside.has(this.overwrittenBy.get(b) ?? -1)) continue;
        reads.add(b);
      }
    }
    const written: number[] = [];
    for (const id of ids) {
      if (this.outputs.has(id) || this.consumersThroughViews(id).some((c) => !inside.has(c))) written.push(id);
    }
    if (!this.opts.arena) return reads.size + written.length;
    return arenaBindingCount(this.g, ids, [...reads], written, (id) => this.baseOf(id), this.opts.arena.eligible);
  }
  /** the binding limit's refusal, or null when `ids` fit in one kernel */
  overBindings(ids: number[]): string | null {
    return this.bindingsOf(ids) > this.opts.maxBindings ? `it would bind more than the device's ${this.opts.maxBindings} storage buffers` : null;
  }

  /** the nodes that read `id`, looking through views (a returned view counts as a reader) */
  consumersThroughViews(id: number): number[] {
    const out: number[] = [];
    const visit = (v: number) => {
      for (const c of this.consumers.get(v) ?? []) {
        if (this.views.has(c)) {
          if (this.outputs.has(c)) out.push(c);
          visit(c);
        } else out.push(c);
      }
    };
    visit(id);
    return out;
  }
  /** n's only reader is a reduction of it (which can recompute n as its prologue) */
  feedsOnlyReduction(n: IRNode): boolean {
    const cs = this.consumers.get(n.id) ?? [];
    return !this.outputs.has(n.id) && cs.length === 1 && getOp(this.node(cs[0]).op).kind === 'reduce' && this.node(cs[0]).inputs[0] === n.id;
  }
  /** the floating producers of n, recursively, producers first */
  floatingChain(n: IRNode): number[] {
    const out: number[] = [];
    const visit = (m: IRNode) => {
      for (const i of m.inputs) {
        if (!this.floating.has(i) || out.includes(i)) continue;
        visit(this.node(i));
        out.push(i);
      }
    };
    visit(n);
    return out;
  }
  /** Puts the floating producers of n (recursively) into kernel k, before n. */
  pullFloating(n: IRNode, k: Kernel, ki: number): void {
    for (const i of n.inputs) {
      if (!this.floating.has(i) || kernelNodes(k).includes(i)) continue;
      this.pullFloating(this.node(i), k, ki);
      if (k.kind === 'elementwise') k.nodes.push(i);
      else if (k.kind === 'matmul' || k.kind === 'reduce') k.epilogue.push(i);
      this.kernelOf.set(i, ki);
      this.note('pull-inputs', `pulled ${this.nodeTag(i)} (it reads only graph inputs) into kernel ${ki}`);
    }
  }
  /** a new elementwise kernel for n, with the floating producers it reads */
  ownKernel(n: IRNode): number {
    const k: Kernel = { kind: 'elementwise', shape: n.shape, nodes: [] };
    const ki = this.add(k);
    this.pullFloating(n, k, ki);
    k.nodes.push(n.id);
    this.kernelOf.set(n.id, ki);
    return ki;
  }
}
