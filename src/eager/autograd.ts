/**
 * The autograd engine: a graph of backward nodes built as ops run, walked in
 * reverse topological order by backward(). Gradient rules come from the op registry
 * (or a custom Function's backward), so the same engine running on traced tensors
 * records the backward graph for the compiler.
 */
import { WgtorchError } from '../ir/errors.ts';
import type { Attrs, GT, OpDef } from '../ir/registry.ts';
import { fmtShape, sameShape } from '../ir/shape.ts';
import type { Storage } from '../runtime/backend.ts';
import { noGrad } from './grad-mode.ts';
import { withTemporaries } from './temporaries.ts';
import type { Tensor } from './tensor.ts';

/** Where a gradient flows to: the node that produced an input, or the leaf tensor itself. */
export type Edge = { node: Node; leaf?: undefined } | { node?: undefined; leaf: Tensor } | null;

interface SavedCheck {
  tensor: Tensor;
  version: number;
  /** 'output 0 of MulBackward' or 'a leaf' for the message. */
  origin: string;
}

export abstract class Node {
  /** The tensor whose grad is kept by retainGrad(), if any. */
  retainTarget: Tensor | null = null;
  private freed = false;
  private readonly hasSaved: boolean;
  constructor(
    readonly name: string,
    readonly next: Edge[],
    readonly inputShapes: (readonly number[] | null)[],
    protected saved: SavedCheck[],
  ) {
    this.hasSaved = saved.length > 0;
  }

  /** Grads for each input, not yet reduced to the input shapes. */
  protected abstract compute(g: Tensor): (Tensor | null)[];
  protected abstract release(): void;

  apply(g: Tensor): (Tensor | null)[] {
    if (this.freed && this.hasSaved) {
      throw new WgtorchError(
        `${this.name}: trying to backward through the graph a second time (or directly access saved tensors after they have already been freed).` +
          ' Saved intermediate values of the graph are freed when you call .backward() or autograd.grad().' +
          ' Fix: specify { retainGraph: true } if you need to backward through the graph a second time or access saved tensors after calling backward.',
      );
    }
    for (const s of this.saved) {
      if (s.tensor._storage.version !== s.version) {
        throw new WgtorchError(
          `one of the variables needed for gradient computation has been modified by an inplace operation: ` +
            `[${s.tensor.dtype} ${fmtShape(s.tensor.shape)}], which is ${s.origin}, is at version ${s.tensor._storage.version}; ` +
            `expected version ${s.version} instead (needed by ${this.name}).` +
            ' Fix: use the out-of-place op (e.g. x.add(1) instead of x.add_(1)), or clone() the tensor before modifying it.',
        );
      }
    }
    return this.compute(g);
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.saved = [];
    this.release();
  }
}

function checkOf(t: Tensor): SavedCheck {
  return {
    tensor: t,
    version: t._storage.version,
    origin: t.gradFn ? `output 0 of ${t.gradFn.name}` : 'a leaf tensor',
  };
}

export function edgeOf(t: Tensor | number): Edge {
  if (typeof t === 'number' || !t.requiresGrad) return null;
  return t.gradFn ? { node: t.gradFn } : { leaf: t };
}

/** Each op's backward node name, made once (a trace makes a node per op on every call). */
const backwardNames = new Map<string, string>();
function backwardName(op: string): string {
  let name = backwardNames.get(op);
  if (name === undefined) backwardNames.set(op, (name = op[0].toUpperCase() + op.slice(1) + 'Backward'));
  return name;
}

/** The backward node of a registry op: its gradient rule, with the inputs it declared it saves. */
export class OpNode extends Node {
  private inputs: (GT | number)[] | null;
  private out: Tensor | null;
  constructor(
    private readonly op: OpDef,
    inputs: (Tensor | number)[],
    out: Tensor,
    private readonly attrs: Attrs,
  ) {
    const savesIn = op.saves?.inputs ?? [];
    const saved: SavedCheck[] = [];
    const kept = inputs.map((x, i) => {
      if (typeof x === 'number') return x;
      if (savesIn.includes(i)) {
        saved.push(checkOf(x));
        return x;
      }
      return { shape: x.shape } as unknown as GT; // only the shape is needed
    });
    // out.gradFn is not set yet (it is this node): name the origin explicitly
    if (op.saves?.out) saved.push({ ...checkOf(out), origin: `output 0 of ${backwardName(op.name)}` });
    super(
      backwardName(op.name),
      inputs.map(edgeOf),
      inputs.map((x) => (typeof x === 'number' ? null : x.shape)),
      saved,
    );
    this.inputs = kept;
    this.out = op.saves?.out ? out : null;
  }

  protected compute(g: Tensor): (Tensor | null)[] {
    const out = (this.out ?? { shape: g.shape }) as unknown as GT;
    const needsGrad = this.next.map((e) => e !== null);
    return this.op.grad!(g as unknown as GT, { inputs: this.inputs!, needsGrad, out, attrs: this.attrs }) as unknown as (
      | Tensor
      | null
    )[];
  }

  protected release(): void {
    this.inputs = this.inputs!.map((x) => (typeof x === 'number' ? x : ({ shape: x.shape } as unknown as GT)));
    this.out = null;
  }
}

/** Hooks for the tracer: it sees gradients land in leaves, and which ops belong to backward. */
export const gradHooks: {
  onLeafGrad: ((leaf: Tensor) => void) | null;
  aroundBackward: (<R>(run: () => R) => R) | null;
} = { onLeafGrad: null, aroundBackward: null };

export interface BackwardOptions {
  retainGraph?: boolean;
}

/**
 * Runs backward from `roots` seeded with `grads`. With `capture`, gradients for those
 * tensors are returned instead of accumulated into leaves (autograd.grad).
 */
export function runBackward(
  roots: Tensor[],
  grads: Tensor[],
  opts: BackwardOptions & { capture?: Tensor[]; allowUnused?: boolean } = {},
): Map<Tensor, Tensor> {
  // the gradients flowing between nodes die with the pass: their memory is freed at its end
  const touched: Tensor[] = [];
  let captured = new Map<Tensor, Tensor>();
  const kept = () => [...touched.map((t) => t.grad), ...captured.values()];
  const run = () => noGrad(() => withTemporaries(() => (captured = backwardPass(roots, grads, opts, touched)), kept));
  return gradHooks.aroundBackward ? gradHooks.aroundBackward(run) : run();
}

function backwardPass(
  roots: Tensor[],
  grads: Tensor[],
  opts: BackwardOptions & { capture?: Tensor[]; allowUnused?: boolean },
  touched: Tensor[],
): Map<Tensor, Tensor> {
  {
    const captured = new Map<Tensor, Tensor>();
    const captureNodes = new Map<Node, Tensor>();
    const captureLeaves = new Set<Tensor>();
    for (const t of opts.capture ?? []) {
      if (t.gradFn) captureNodes.set(t.gradFn, t);
      else captureLeaves.add(t);
    }
    // count dependencies of every node reachable from the roots
    const deps = new Map<Node, number>();
    const stack: Node[] = [];
    for (const r of roots) {
      if (r.gradFn && !deps.has(r.gradFn)) {
        deps.set(r.gradFn, 0);
        stack.push(r.gradFn);
      }
    }
    while (stack.length) {
      const n = stack.pop()!;
      for (const e of n.next) {
        if (!e?.node) continue;
        const c = deps.get(e.node);
        if (c === undefined) {
          deps.set(e.node, 1);
          stack.push(e.node);
        } else deps.set(e.node, c + 1);
      }
    }
    const handedOut = new Set<Storage>();
    const buffers = new Map<Node, Tensor>();
    const toLeaf = (leaf: Tensor, g: Tensor) => {
      if (captureLeaves.has(leaf)) {
        const prev = captured.get(leaf);
        captured.set(leaf, prev ? prev.add(g) : g);
        return;
      }
      if (opts.capture) return;
      accumulateGrad(leaf, g, handedOut);
      touched.push(leaf);
    };
    const ready: Node[] = [];
    roots.forEach((r, i) => {
      const g = grads[i];
      handedOut.add(g._storage);
      if (r.gradFn) {
        const prev = buffers.get(r.gradFn);
        buffers.set(r.gradFn, prev ? prev.add(g) : g);
      } else if (r.requiresGrad) toLeaf(r, g);
    });
    for (const [n, c] of deps) if (c === 0) ready.push(n);
    while (ready.length) {
      const node = ready.pop()!;
      const g = buffers.get(node)!;
      buffers.delete(node);
      const cap = captureNodes.get(node);
      if (cap) captured.set(cap, g);
      if (node.retainTarget) {
        const t = node.retainTarget;
        t.grad = t.grad ? t.grad.add(g) : g.detach();
        handedOut.add(g._storage);
        touched.push(t);
      }
      const inGrads = g ? node.apply(g) : [];
      node.next.forEach((e, i) => {
        if (!e) return;
        let gi = inGrads[i];
        if (gi) {
          const shape = node.inputShapes[i]!;
          if (!sameShape(gi.shape, shape)) gi = gi.sumToSize(shape);
          if (e.leaf) toLeaf(e.leaf, gi);
          else {
            const prev = buffers.get(e.node);
            buffers.set(e.node, prev ? prev.add(gi) : gi);
          }
        }
        if (e.node) {
          const c = deps.get(e.node)! - 1;
          deps.set(e.node, c);
          if (c === 0) {
            if (buffers.has(e.node)) ready.push(e.node);
            else zeroFlow(e.node, deps, ready, buffers);
          }
        }
      });
      if (!opts.retainGraph) node.free();
    }
    return captured;
  }
}

/** A node that received no gradient still has to release its dependents. */
function zeroFlow(node: Node, deps: Map<Node, number>, ready: Node[], buffers: Map<Node, Tensor>): void {
  for (const e of node.next) {
    if (!e?.node) continue;
    const c = deps.get(e.node)! - 1;
    deps.set(e.node, c);
    if (c === 0) {
      if (buffers.has(e.node)) ready.push(e.node);
      else zeroFlow(e.node, deps, ready, buffers);
    }
  }
}

function accumulateGrad(leaf: Tensor, g: Tensor, handedOut: Set<Storage>): void {
  if (leaf.grad) {
    leaf.grad.add_(g);
  } else {
    // a gradient buffer that some other tensor also holds must not be shared: .grad is mutated in place later
    const own = handedOut.has(g._storage) ? g.clone() : g.detach();
    handedOut.add(own._storage);
    leaf.grad = own;
  }
  gradHooks.onLeafGrad?.(leaf);
}
