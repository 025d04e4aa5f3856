/** What torch.trace returns: the recorded graph, printable by phase. */
import type { Graph } from '../ir/graph.ts';
import { graphHash } from '../ir/hash.ts';
import { printGraph } from '../ir/printer.ts';
import { verifyGraph } from '../ir/verify.ts';
import type { TracedProgram } from './program.ts';

const inspectSymbol = Symbol.for('nodejs.util.inspect.custom');

export class TracedGraph {
  readonly graph: Graph;
  constructor(readonly program: TracedProgram) {
    this.graph = program.graph;
  }
  get hash(): string {
    return graphHash(this.graph);
  }
  /** Forward values the backward reads. */
  get saved(): number[] {
    return this.graph.outputs.filter((o) => o.role === 'saved').map((o) => o.id);
  }
  hasPhase(p: 'forward' | 'backward' | 'update'): boolean {
    return this.graph.nodes.some((n) => n.phase === p && n.op !== 'input');
  }
  get forward(): string {
    return printGraph(this.graph, {
      title: 'forward',
      only: (n) => n.phase === 'forward',
      outputs: (o) => (o.role === 'output' || o.role === 'saved') && this.graph.node(o.id).phase === 'forward',
    });
  }
  get backward(): string | null {
    if (!this.hasPhase('backward')) return null;
    return printGraph(this.graph, {
      title: 'backward',
      only: (n) => n.phase === 'backward',
      outputs: (o) => this.graph.node(o.id).phase === 'backward' && o.role !== 'saved',
    });
  }
  get update(): string | null {
    if (!this.hasPhase('update')) return null;
    return printGraph(this.graph, {
      title: 'update',
      only: (n) => n.phase === 'update',
      outputs: (o) => this.graph.node(o.id).phase === 'update',
    });
  }
  verify(): void {
    verifyGraph(this.graph);
  }
  toString(): string {
    return [this.forward, this.backward, this.update].filter((s) => s !== null).join('\n\n');
  }
  [inspectSymbol](): string {
    return this.toString();
  }
}
