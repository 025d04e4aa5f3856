/** One cached compiled graph and what `fast.graphs()` shows of it: IR before and after fusion, kernels, stats. */
import MagicString from 'magic-string';
import { nodeLine, printGraph } from '../ir/printer.ts';
import type { WgslKernel } from '../codegen-wgsl/render.ts';
import { printKernel, type Kernel } from '../passes/kernel-ir.ts';
import type { Storage } from '../runtime/backend.ts';
import type { TracedProgram } from '../trace/program.ts';
import type { Graph, Phase } from '../ir/graph.ts';
import type { CpuKernel } from '../codegen-cpu/render.ts';
import type { CpuPlan } from './cpu-plan.ts';
import type { GpuPlan, PlanStats } from './gpu-plan.ts';
import { kernelNodes, type Schedule } from '../passes/fusion.ts';

export type Plan = (GpuPlan | CpuPlan) & {
  run(inputs: (id: number) => Storage, scalars: (id: number) => number, targets?: Map<number, Storage>): Map<number, Storage>;
};

export interface KernelInfo {
  name: string;
  /** what the kernel computes, as a value (the kernel IR: body, bindings, scalars, the IR nodes it covers) */
  kernel: Kernel;
  /** the kernel IR printed: it reads like the IR */
  ir: string;
  /** the generated code with a header naming the IR nodes and module paths it came from: WGSL on webgpu, JavaScript on the cpu */
  source: string;
  language: 'wgsl' | 'js';
  /** the WGSL as compiled, with that header ('' for a cpu kernel: see `source`) */
  wgsl: string;
  /** IR node ids fused into this kernel */
  nodes: number[];
  scopes: string[];
  /** line number (1-based) of the WGSL -> IR node ids it computes */
  lineMap: Map<number, number[]>;
  /** a source map of the header + kernel assembly (magic-string) */
  sourceMap: string;
  part: 'forward' | 'backward';
  /** a pack: the names of the independent kernels this one dispatch runs */
  parts?: string[];
}

/** One IR node as data, for inspectors (the web demo): its printed line, phase and module path. */
export interface IRNodeInfo {
  id: number;
  op: string;
  phase: Phase;
  scope?: string;
  /** the node's line as the IR text prints it, without the module path */
  text: string;
}

export class CompiledGraph {
  calls = 0;
  compileMs = 0;
  constructor(
    readonly hash: string,
    readonly structure: string,
    readonly program: TracedProgram,
    readonly plans: { forward: Plan; backward: Plan | null },
    readonly device: 'cpu' | 'webgpu',
  ) {}

  /** The traced IR (forward, or the whole step). */
  get forwardIR(): string {
    return printGraph(this.program.graph, {
      title: this.plans.backward ? 'forward' : 'step',
      only: (n) => (this.plans.backward ? n.phase === 'forward' : true),
      outputs: (o) => (this.plans.backward ? o.role === 'output' || o.role === 'saved' : o.role !== 'saved'),
    });
  }
  get backwardIR(): string | null {
    return this.plans.backward ? printGraph(this.plans.backward.graph, { title: 'backward' }) : null;
  }
  /** The optimised IR with the kernel each node belongs to. */
  get fusedIR(): string {
    return [this.fused('forward'), this.plans.backward ? this.fused('backward') : null].filter(Boolean).join('\n\n');
  }
  private fused(part: 'forward' | 'backward'): string {
    const plan = part === 'forward' ? this.plans.forward : this.plans.backward!;
    const schedule = (plan as GpuPlan).schedule as Schedule | undefined;
    const text = printGraph(plan.graph, { title: `${part} (optimised)` });
    if (!schedule) return text;
    const kernelOf = new Map<number, string>();
    schedule.kernels.forEach((k, i) => kernelNodes(k).forEach((id) => kernelOf.set(id, kernelOf.has(id) ? `${kernelOf.get(id)},k${i}` : `k${i}`)));
    return text
      .split('\n')
      .map((line) => {
        const m = line.match(/^ {2}%(\d+):/);
        if (!m) return line;
        const id = Number(m[1]);
        const k = kernelOf.get(id) ?? (schedule.views.has(id) ? 'view' : '');
        return k ? `${line.padEnd(72)} [${k}]` : line;
      })
      .join('\n');
  }

  /**
   * The nodes of one graph: 'traced' as recorded (all phases of a whole step), or the
   * optimised 'forward'/'backward' graph whose ids `kernels[i].nodes` name (passes keep
   * ids, so a traced node that survives has the same id there).
   */
  irNodes(which: 'traced' | 'forward' | 'backward'): IRNodeInfo[] {
    const g = which === 'traced' ? this.program.graph : which === 'forward' ? this.plans.forward.graph : this.plans.backward?.graph;
    if (!g) return [];
    return g.nodes.map((n) => ({ id: n.id, op: n.op, phase: n.phase, ...(n.scope ? { scope: n.scope } : {}), text: nodeLine({ ...n, scope: undefined }) }));
  }

  get fusionLog(): string[] {
    const logs: string[] = [];
    for (const [part, plan] of [['forward', this.plans.forward], ['backward', this.plans.backward]] as const) {
      const s = (plan as GpuPlan | null)?.schedule;
      if (s) logs.push(...s.log.map((l) => `${part}: ${l}`));
    }
    return logs;
  }

  get kernels(): KernelInfo[] {
    const out: KernelInfo[] = [];
    for (const [part, plan] of [['forward', this.plans.forward], ['backward', this.plans.backward]] as const) {
      const ks = (plan as GpuPlan | CpuPlan | null)?.kernels as (WgslKernel | CpuKernel)[] | undefined;
      if (!ks) continue;
      for (const k of ks) out.push(kernelInfo(k, part, plan!.graph));
    }
    return out;
  }

  get stats(): PlanStats & { compileMs: number; calls: number } {
    const f = this.plans.forward.stats;
    const b = this.plans.backward?.stats;
    return {
      kernels: f.kernels + (b?.kernels ?? 0),
      fusedKernels: f.fusedKernels + (b?.fusedKernels ?? 0),
      matmuls: [...f.matmuls, ...(b?.matmuls ?? [])],
      dispatches: f.dispatches + (b?.dispatches ?? 0),
      bytesMoved: f.bytesMoved + (b?.bytesMoved ?? 0),
      flops: f.flops + (b?.flops ?? 0),
      compileMs: this.compileMs,
      calls: this.calls,
    };
  }

  toString(): string {
    return [this.forwardIR, this.backwardIR, this.fusedIR].filter(Boolean).join('\n\n');
  }
}

function kernelInfo(k: WgslKernel | CpuKernel, part: 'forward' | 'backward', g: Graph): KernelInfo {
  const language = 'code' in k ? 'wgsl' : 'js';
  const ms = new MagicString('code' in k ? k.code : k.source);
  const { nodes, scopes } = k.kernel.covers;
  const header = [
    `// ${part} kernel ${k.name}`,
    `// fuses ${nodes.map((id) => `%${id} ${g.node(id).op}`).join(', ')}`,
    ...(scopes.length ? [`// from ${scopes.join(', ')}`] : []),
    '',
  ].join('\n');
  ms.prepend(header + '\n');
  const text = ms.toString();
  const wgsl = language === 'wgsl' ? text : '';
  const lineMap = new Map<number, number[]>();
  text.split('\n').forEach((line, i) => {
    const ids = [...line.matchAll(/%(\d+)/g)].map((m) => Number(m[1]));
    if (ids.length && !line.startsWith('//')) lineMap.set(i + 1, ids);
  });
  const sourceMap = ms.generateMap({ source: `${k.name}.body.${language}`, hires: true, includeContent: false }).toString();
  const parts = 'parts' in k && k.parts ? { parts: k.parts.map((p) => p.name) } : {};
  return {
    name: k.name,
    kernel: k.kernel,
    ir: printKernel(k.kernel, (id) => g.node(id).op),
    source: text,
    language,
    wgsl,
    nodes,
    scopes,
    lineMap,
    sourceMap,
    part,
    ...parts,
  };
}
