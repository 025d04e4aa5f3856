/**
 * Tracing a whole call: the user's function runs on traced arguments, then (when
 * asked) the backward graph is recorded by running the autograd engine on the traced
 * outputs, with the same gradient rules eager mode uses. The result is one graph
 * whose outputs say what each value is for: a returned value, a gradient, a write
 * into a real tensor, or an activation saved for backward.
 */
import { runBackward } from '../eager/autograd.ts';
import { isGradEnabled } from '../eager/grad-mode.ts';
import { Tensor } from '../eager/tensor.ts';
import type { Graph, OutputRole } from '../ir/graph.ts';
import type { Module } from '../nn/module.ts';
import type { Storage } from '../runtime/backend.ts';
import type { TraceExpectation } from './expectation.ts';
import { TraceStorage } from './trace-storage.ts';
import { Tracer } from './tracer.ts';

export interface TraceOptions {
  /**
   * Also record the backward of the outputs: gradients for every leaf that requires grad.
   * 'auto': only when grad mode is on, an output requires grad, and fn did not call backward itself.
   */
  backward?: boolean | 'auto';
  /** Names of parameters (by storage) for inputs and grads. */
  names?: Map<Storage, string>;
  rootModule?: Module | null;
  /**
   * The graph this trace is expected to repeat (a compiled call's): while it does, no graph is
   * built; `repeated` says whether it did to the end (the program's graph is then that graph).
   */
  expect?: TraceExpectation | null;
}

export interface TracedProgram {
  graph: Graph;
  tracer: Tracer;
  /** What the function returned, with traced tensors in it. */
  result: unknown;
  /** The traced tensors of `result`, in the order of the 'output' outputs. */
  outputs: Tensor[];
  /** Leaves whose gradient is a 'grad' output, in that order. */
  gradTargets: Tensor[];
  /** The real tensors written in place, in the order of the 'mutation' outputs. */
  mutated: { storage: Storage; tensor: Tensor }[];
  /** Whether the backward graph was derived symbolically (true) or recorded from backward() calls in fn. */
  symbolicBackward: boolean;
  /** The traced stand-in of each argument. */
  tracedArgs: Tensor[];
  /** Whether the trace repeated `opts.expect` to the end: `graph` is then the expected graph. */
  repeated: boolean;
}

export function flattenTensors(x: unknown, out: Tensor[] = []): Tensor[] {
  if (x instanceof Tensor) out.push(x);
  else if (Array.isArray(x)) for (const v of x) flattenTensors(v, out);
  else if (x && typeof x === 'object' && Object.getPrototypeOf(x) === Object.prototype) {
    for (const v of Object.values(x)) flattenTensors(v, out);
  }
  return out;
}

const isTraced = (t: Tensor) => t._storage instanceof TraceStorage;

export function traceProgram(fn: (...args: Tensor[]) => unknown, args: Tensor[], opts: TraceOptions = {}): TracedProgram {
  const names = opts.names ?? new Map<Storage, string>();
  const tracer = new Tracer(names, opts.rootModule ?? null, opts.expect ?? null);
  let result: unknown;
  let outputs: Tensor[] = [];
  const gradTargets: Tensor[] = [];
  let symbolic = opts.backward === true;
  const symbolicGrads = new Map<Tensor, Tensor>();
  let traced: Tensor[] = [];
  tracer.run(() => {
    traced = args.map((a, i) => tracer.arg(a, `arg${i}`));
    result = fn(...traced);
    outputs = flattenTensors(result);
    if (opts.backward === 'auto') symbolic = tracer.phase === 'forward' && isGradEnabled() && outputs.some((o) => o.requiresGrad);
    if (symbolic) {
      const diff = outputs.filter((o) => o.requiresGrad);
      if (diff.length) {
        const seeds = diff.map((o) => tracer.backwardSeed(o));
        const leaves = [
          ...traced.filter((t) => t.requiresGrad),
          ...tracer.captures.map((c) => c.tensor).filter((t) => t.requiresGrad && t.isLeaf),
        ];
        const got = runBackward(diff, seeds, { capture: leaves });
        for (const l of leaves) {
          const gl = got.get(l);
          if (gl) {
            symbolicGrads.set(l, gl);
            gradTargets.push(l);
          }
        }
      }
    }
  });
  const outs: { id: number; role: OutputRole; label: string }[] = [];
  outputs.forEach((o, i) => outs.push({ id: tracer.valueOf(o), role: 'output', label: String(i) }));
  if (symbolic) {
    for (const l of gradTargets) outs.push({ id: tracer.valueOf(symbolicGrads.get(l)!), role: 'grad', label: labelOf(l, tracer, names, args) });
  } else {
    // gradients that backward() calls inside fn left in real leaves' .grad
    for (const leaf of tracer.gradLeaves) {
      if (leaf.grad && isTraced(leaf.grad)) {
        gradTargets.push(leaf);
        outs.push({ id: tracer.valueOf(leaf.grad), role: 'grad', label: labelOf(leaf, tracer, names, args) });
      }
    }
  }
  const mutated = [...tracer.mutations].map(([storage, m]) => {
    outs.push({ id: m.id, role: 'mutation', label: names.get(storage) ?? 'captured' });
    return { storage, tensor: m.tensor };
  });
  const { graph: g, repeated } = tracer.complete(outs);
  // (a repeated graph has its saved values already: they follow from the nodes)
  if (!repeated) addSaved(g);
  return { graph: g, tracer, result, outputs, gradTargets, mutated, symbolicBackward: symbolic, tracedArgs: traced, repeated };
}

/** Forward values that backward reads: the activations a compiled forward must keep. */
function addSaved(g: Graph): void {
  const fwd = new Set(g.nodes.filter((n) => n.phase === 'forward').map((n) => n.id));
  const saved = new Set<number>();
  for (const n of g.nodes) {
    if (n.phase !== 'backward') continue;
    for (const i of n.inputs) if (fwd.has(i) && g.node(i).op !== 'scalar') saved.add(i);
  }
  for (const id of [...saved].sort((a, b) => a - b)) g.addOutput(id, 'saved', '');
}

function labelOf(t: Tensor, tracer: Tracer, names: Map<Storage, string>, args: Tensor[]): string {
  const a = tracer.args.find((x) => x.tensor === t);
  if (a) return tracer.inputName(a.id) ?? 'arg';
  const i = args.indexOf(t);
  if (i >= 0) return `arg${i}`;
  return names.get(t._storage) ?? 'captured';
}

/**
 * How a traced program's inputs get their values on a run: arguments and captured
 * tensors from the trace that produced it, scalars from that trace, and the incoming
 * gradients (`seeds`, by index of the backward's `grad_output` inputs).
 */
export function programInputs(p: TracedProgram, seeds: Tensor[] = []): Map<number, Storage | number> {
  const values = new Map<number, Storage | number>();
  let seed = 0;
  for (const a of p.tracer.args) {
    const n = p.graph.node(a.id);
    if (n.phase === 'backward') {
      const s = seeds[seed++];
      if (!s) throw new Error(`program input %${a.id} (grad_output) needs a seed gradient`);
      values.set(a.id, s._storage);
    } else values.set(a.id, a.tensor._storage);
  }
  for (const c of p.tracer.captures) values.set(c.id, c.storage);
  for (const s of p.tracer.scalars) values.set(s.id, s.value);
  return values;
}
