/** A compiled graph on the CPU: the optimised graph run by the reference interpreter (no fusion yet). */
import type { Graph } from '../ir/graph.ts';
import { getBackend, type Storage } from '../runtime/backend.ts';
import { interpret } from '../runtime/interpreter.ts';
import { constantOr, type PlanStats } from './gpu-plan.ts';

export class CpuPlan {
  constructor(readonly graph: Graph) {}
  get stats(): PlanStats {
    const n = this.graph.nodes.filter((x) => x.op !== 'input' && x.op !== 'scalar').length;
    return { kernels: n, fusedKernels: n, matmuls: [], dispatches: 0, bytesMoved: 0, flops: 0 };
  }
  run(inputs: (id: number) => Storage, scalars: (id: number) => number, _targets?: Map<number, Storage>): Map<number, Storage> {
    const values = interpret(this.graph, (n) => (n.op === 'scalar' ? constantOr(this.graph, n.id, scalars) : inputs(n.id)), getBackend('cpu'));
    const out = new Map<number, Storage>();
    for (const o of this.graph.outputs) out.set(o.id, values.get(o.id) as Storage);
    return out;
  }
}
