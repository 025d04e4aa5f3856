/**
 * The compiler passes one at a time (issue 5): dce, cse, simplify and fusion (through
 * GpuPlan) each keep the results of the unoptimised graph as the reference interpreter
 * computes them, on traced forward + backward graphs; plus what each pass changes, and
 * the binding limit of fusion.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { optimize } from '../src/compile/optimize.ts';
import type { Graph, IRNode } from '../src/ir/graph.ts';
import { verifyGraph } from '../src/ir/verify.ts';
import { simplify } from '../src/passes/algebra.ts';
import { cse } from '../src/passes/cse.ts';
import { dce } from '../src/passes/dce.ts';
import type { TracedGraph } from '../src/trace/traced-graph.ts';
import { bindingsOf, deviceError, interpretOutputs, interpreterBinding, relDiff, runGpuPlan, TwoLayerNet, type PlanRun } from './helpers/compile-util.ts';
import { webgpuAvailable } from './helpers/devices.ts';

/** cpu passes reorder nothing numerically (at most a transposed matmul); GPU kernels sum in another order */
const PASS_TOL = 1e-6;
const GPU_TOL = 1e-5;

interface Case {
  name: string;
  trace: () => TracedGraph;
}

const randn = (...shape: number[]) => torch.randn(shape, { requiresGrad: true });

const cases: Case[] = [
  {
    name: 'TwoLayerNet + MSELoss(sum), forward and backward',
    trace: () => {
      torch.manualSeed(1);
      const m = new TwoLayerNet(20, 12, 3);
      const lossFn = new torch.nn.MSELoss({ reduction: 'sum' });
      return torch.trace((x: torch.Tensor, y: torch.Tensor) => lossFn(m(x), y), torch.randn(16, 20), torch.randn(16, 3), { backward: true });
    },
  },
  {
    name: 'Sequential(Linear, Tanh, Linear, Sigmoid) + MSELoss(mean), forward and backward',
    trace: () => {
      torch.manualSeed(2);
      const m = new torch.nn.Sequential(new torch.nn.Linear(9, 7), new torch.nn.Tanh(), new torch.nn.Linear(7, 4), new torch.nn.Sigmoid());
      const lossFn = new torch.nn.MSELoss();
      return torch.trace((x: torch.Tensor, y: torch.Tensor) => lossFn(m(x), y), torch.randn(5, 9), torch.randn(5, 4), { backward: true });
    },
  },
  {
    name: 'duplicated subexpressions',
    trace: () => {
      torch.manualSeed(3);
      return torch.trace(
        (a: torch.Tensor, b: torch.Tensor) => {
          const e1 = a.mul(b).exp();
          const e2 = a.mul(b).exp();
          return e1.add(e2).mul(a).sum();
        },
        randn(6, 5),
        randn(6, 5),
        { backward: true },
      );
    },
  },
  {
    name: 'permute of mm',
    trace: () => {
      torch.manualSeed(4);
      return torch.trace((a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) => a.mm(b).t().mul(c).sum(), randn(6, 5), randn(5, 4), randn(4, 6), {
        backward: true,
      });
    },
  },
  {
    name: 'an unused value',
    trace: () => {
      torch.manualSeed(5);
      return torch.trace(
        (a: torch.Tensor) => {
          void a.exp(); // computed, never used
          return a.mul(2).tanh().sum();
        },
        randn(3, 4),
        { backward: true },
      );
    },
  },
  {
    name: 'broadcasting, views and a keepdim reduction',
    trace: () => {
      torch.manualSeed(6);
      return torch.trace(
        (a: torch.Tensor, b: torch.Tensor) => a.sub(a.mean(1, true)).mul(b).reshape([4, 3, 2]).permute([2, 0, 1]).pow(2).sum([0, 2]),
        randn(4, 6),
        randn(6),
        { backward: true },
      );
    },
  },
];

const seedsOf = (t: TracedGraph): torch.Tensor[] =>
  t.graph.nodes.filter((n) => n.op === 'input' && n.phase === 'backward').map((n) => torch.ones(n.shape));

function expectOutputsClose(got: Float32Array[], want: Float32Array[], tol: number, what: string, skip: Set<number> = new Set()) {
  expect(got.length, `${what}: outputs`).toBe(want.length);
  got.forEach((g, i) => {
    if (skip.has(i)) return;
    const d = relDiff(g, want[i]);
    expect(d.rel, `${what}, output ${i}: ${d.detail}`).toBeLessThanOrEqual(tol);
  });
}

const count = (g: Graph, pred: (n: IRNode) => boolean) => g.nodes.filter(pred).length;

describe('each pass alone keeps the results of the reference interpreter', () => {
  const passes: [string, (g: Graph) => Graph][] = [
    ['dce', dce],
    ['cse', cse],
    ['simplify', simplify],
    ['the whole pipeline (optimize)', optimize],
  ];
  for (const c of cases) {
    describe(c.name, () => {
      it.each(passes)('%s', async (_name, pass) => {
        const t = c.trace();
        const bind = interpreterBinding(t.program, seedsOf(t));
        const want = await interpretOutputs(t.graph, bind);
        const g = pass(t.graph);
        expect(() => verifyGraph(g)).not.toThrow();
        expect(g.outputs.map((o) => o.role)).toEqual(t.graph.outputs.map((o) => o.role));
        expectOutputsClose(await interpretOutputs(g, bind), want, PASS_TOL, _name);
      });
    });
  }
});

describe('what each pass changes', () => {
  it('cse merges a duplicated subexpression', () => {
    const t = cases.find((c) => c.name === 'duplicated subexpressions')!.trace();
    const fwd = (n: IRNode) => n.phase === 'forward';
    const [a, b] = t.program.tracer.args.map((x) => x.id);
    const isAB = (n: IRNode) => fwd(n) && n.op === 'mul' && n.inputs[0] === a && n.inputs[1] === b;
    expect(count(t.graph, isAB)).toBe(2);
    expect(count(t.graph, (n) => fwd(n) && n.op === 'exp')).toBe(2);
    const g = cse(t.graph);
    expect(count(g, isAB)).toBe(1);
    expect(count(g, (n) => fwd(n) && n.op === 'exp')).toBe(1);
    expect(g.nodes.length).toBeLessThan(t.graph.nodes.length);
  });

  it('cse never merges scalars (their values are bound per call)', () => {
    const t = torch.trace((a: torch.Tensor) => a.mul(2).add(a.mul(3)), torch.randn(3));
    const g = cse(t.graph);
    expect(count(g, (n) => n.op === 'scalar')).toBe(count(t.graph, (n) => n.op === 'scalar'));
    expect(count(g, (n) => n.op === 'mul')).toBe(2);
  });

  it('dce removes an unused node and keeps every input', () => {
    const t = cases.find((c) => c.name === 'an unused value')!.trace();
    expect(count(t.graph, (n) => n.op === 'exp')).toBe(1);
    const g = dce(t.graph);
    expect(count(g, (n) => n.op === 'exp')).toBe(0);
    expect(g.inputs.map((n) => n.id)).toEqual(t.graph.inputs.map((n) => n.id));
  });

  it('simplify turns permute(mm(a, b)) into mm(b^T, a^T)', () => {
    const t = cases.find((c) => c.name === 'permute of mm')!.trace();
    const [a, b] = t.program.tracer.args.map((x) => x.id);
    // the forward's mul(permute(mm(a, b)), c): what feeds the mul
    const fed = (g: Graph) => g.node(g.nodes.find((n) => n.op === 'mul' && n.phase === 'forward')!.inputs[0]);
    const before = fed(t.graph);
    expect(before.op).toBe('permute');
    expect(t.graph.node(before.inputs[0]).op).toBe('mm');
    const g = dce(simplify(t.graph));
    const mm = fed(g);
    expect(mm.op).toBe('mm');
    expect(mm.shape).toEqual([4, 6]);
    expect(g.nodes.some((n) => n.op === 'permute' && g.node(n.inputs[0]).op === 'mm' && n.phase === 'forward'), 'no permute of an mm is left').toBe(false);
    const [x, y] = mm.inputs.map((id) => g.node(id));
    expect(x.op).toBe('permute');
    expect(x.inputs).toEqual([b]);
    expect(y.op).toBe('permute');
    expect(y.inputs).toEqual([a]);
  });
});

/** Output indices whose value is a view (permute/expand/strided reshape) in the plan's schedule. */
const viewOutputs = (plan: PlanRun['plan']): Set<number> =>
  new Set(plan.graph.outputs.map((o, i) => (plan.schedule.views.has(o.id) ? i : -1)).filter((i) => i >= 0));

/** Cases whose optimised graph, fused with maxBindings 4, would have a kernel over the limit (none now). */
const OVER_LIMIT_AT_4 = new Set<string>();

describe.skipIf(!webgpuAvailable)('fusion through GpuPlan on webgpu', () => {
  for (const c of cases) {

    it(`${c.name}: fused kernels equal the reference interpreter (raw graph, and after optimize)`, async () => {
      const t = c.trace();
      const bind = interpreterBinding(t.program, seedsOf(t));
      const want = await interpretOutputs(t.graph, bind);
      const raw = await runGpuPlan(t.graph, bind);
      expect(await deviceError()).toBeNull();
      expectOutputsClose(raw.outputs, want, GPU_TOL, 'fused raw graph', viewOutputs(raw.plan));
      const opt = await runGpuPlan(optimize(t.graph), bind);
      expect(await deviceError()).toBeNull();
      expectOutputsClose(opt.outputs, want, GPU_TOL, 'fused optimised graph', viewOutputs(opt.plan));
      expect(opt.plan.kernels.length).toBeLessThanOrEqual(raw.plan.kernels.length);
    });
  }


  it('every output, views included, equals the reference (TwoLayerNet forward + backward, raw graph)', async () => {
    const t = cases[0].trace();
    const bind = interpreterBinding(t.program, seedsOf(t));
    const want = await interpretOutputs(t.graph, bind);
    const raw = await runGpuPlan(t.graph, bind);
    expect(viewOutputs(raw.plan).size).toBeGreaterThan(0);
    expectOutputsClose(raw.outputs, want, GPU_TOL, 'fused raw graph');
  });

  it('a reduction followed by an add of another reduction (reduction epilogue with a second operand)', async () => {
    const t = torch.trace((a: torch.Tensor) => a.mul(2).sum().add(a.mul(3).sum()), torch.randn(6, 5));
    const bind = interpreterBinding(t.program);
    const want = await interpretOutputs(t.graph, bind);
    let err: Error | null = null;
    let got: Float32Array[] = [];
    try {
      got = (await runGpuPlan(optimize(t.graph), bind)).outputs;
    } catch (e) {
      err = e as Error;
    }
    err ??= await deviceError();
    expect(err?.message ?? null).toBeNull();
    expectOutputsClose(got, want, GPU_TOL, 'sum + sum');
  });

  describe('a small binding limit (maxBindings 4)', () => {
    it('a matmul with an elementwise tail over four more inputs splits within the limit, results unchanged, and the log says why', async () => {
      torch.manualSeed(8);
      const xs = [torch.randn(5, 3), torch.randn(3, 7), ...Array.from({ length: 4 }, () => torch.randn(5, 7))];
      const t = torch.trace(
        (a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, d: torch.Tensor, e: torch.Tensor, f: torch.Tensor) => a.mm(b).add(c).mul(d).sub(e).add(f).tanh(),
        ...xs,
      );
      const bind = interpreterBinding(t.program);
      const want = await interpretOutputs(t.graph, bind);
      // without binding arenas the tail is split off
      const limited = await runGpuPlan(t.graph, bind, { maxBindings: 4, arena: false });
      expect(await deviceError()).toBeNull();
      expectOutputsClose(limited.outputs, want, GPU_TOL, 'maxBindings 4');
      for (const k of limited.plan.kernels) expect(bindingsOf(k), `${k.name} binds`).toBeLessThanOrEqual(4);
      expect(limited.plan.kernels.length).toBeGreaterThan(1);
      // with them (the default) the four small tail operands share one binding and the matmul keeps its tail
      const arena = await runGpuPlan(t.graph, bind, { maxBindings: 4 });
      expectOutputsClose(arena.outputs, want, GPU_TOL, 'maxBindings 4 with an arena');
      expect(arena.plan.kernels.length).toBe(1);
      for (const k of arena.plan.kernels) expect(bindingsOf(k), `${k.name} binds`).toBeLessThanOrEqual(4);
      const why = limited.plan.schedule.log.filter((l) => /did not fuse/.test(l));
      expect(why.join('\n')).toMatch(/did not fuse %\d+ \w+ into kernel \d+ \(matmul\): it would bind more than the device's 4 storage buffers/);
      expect(why.join('\n')).toMatch(/did not fuse %\d+ \w+ into kernel \d+ \(elementwise\): it would bind more than the device's 4 storage buffers/);
      // with the device's own limit it fuses further
      const full = await runGpuPlan(t.graph, bind);
      expect(full.plan.kernels.length).toBeLessThan(limited.plan.kernels.length);
      expectOutputsClose(full.outputs, want, GPU_TOL, 'device limit');
    });

    it('an elementwise chain over five graph inputs stays within the limit', async () => {
      torch.manualSeed(7);
      const xs = Array.from({ length: 5 }, () => torch.randn(5, 7));
      const t = torch.trace((a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, d: torch.Tensor, e: torch.Tensor) => a.add(b).mul(c).sub(d).add(e).tanh(), ...xs);
      const bind = interpreterBinding(t.program);
      const want = await interpretOutputs(t.graph, bind);
      const limited = await runGpuPlan(t.graph, bind, { maxBindings: 4 });
      expect(await deviceError()).toBeNull();
      expectOutputsClose(limited.outputs, want, GPU_TOL, 'maxBindings 4');
      for (const k of limited.plan.kernels) expect(bindingsOf(k), `${k.name} binds`).toBeLessThanOrEqual(4);
    });

    for (const c of cases) {
      const test = OVER_LIMIT_AT_4.has(c.name) ? it.fails : it;
      test(`${c.name}: every kernel within the limit, results unchanged`, async () => {
        const t = c.trace();
        const bind = interpreterBinding(t.program, seedsOf(t));
        const want = await interpretOutputs(t.graph, bind);
        const limited = await runGpuPlan(optimize(t.graph), bind, { maxBindings: 4 });
        expect(await deviceError()).toBeNull();
        for (const k of limited.plan.kernels) expect(bindingsOf(k), `${k.name} binds`).toBeLessThanOrEqual(4);
        expectOutputsClose(limited.outputs, want, GPU_TOL, 'maxBindings 4', viewOutputs(limited.plan));
      });
    }
  });
});
