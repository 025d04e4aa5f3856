/** torch.trace(fn, ...inputs[, { backward }]): the IR of a function, without compiling it. */
import { Tensor } from '../eager/tensor.ts';
import { checkOptions } from '../eager/options.ts';
import { Module } from '../nn/module.ts';
import type { Storage } from '../runtime/backend.ts';
import { traceProgram } from './program.ts';
import { TracedGraph } from './traced-graph.ts';

export interface TraceApiOptions {
  backward?: boolean;
}

/** Parameter names of every module reachable from fn (when fn is a module) for readable inputs. */
export function parameterNames(root: unknown): Map<Storage, string> {
  const names = new Map<Storage, string>();
  if (root instanceof Module) for (const [n, p] of root.namedParameters()) names.set(p._storage, n);
  return names;
}

export function trace(fn: ((...args: Tensor[]) => unknown) | Module, ...rest: (Tensor | TraceApiOptions)[]): TracedGraph {
  let opts: TraceApiOptions = {};
  const last = rest[rest.length - 1];
  if (last !== undefined && !(last instanceof Tensor)) {
    opts = last;
    rest = rest.slice(0, -1);
  }
  checkOptions('trace', opts, ['backward']);
  const inputs = rest as Tensor[];
  const program = traceProgram(fn as (...a: Tensor[]) => unknown, inputs, {
    backward: opts.backward,
    names: parameterNames(fn),
    rootModule: fn instanceof Module ? fn : null,
  });
  return new TracedGraph(program);
}
