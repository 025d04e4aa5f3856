/**
 * The eager cpu Adam/AdamW update as one loop (src/optim/fused-cpu.ts) against the same
 * update as tensor ops: same bits for parameters and state, every option, several steps, and
 * the tensor ops still run where the loop must not (a compiled step, a webgpu-less fallback).
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { setFusedCpuUpdates } from '../src/optim/fused-cpu.ts';

type Opts = { lr?: number; betas?: [number, number]; eps?: number; weightDecay?: number; amsgrad?: boolean; maximize?: boolean };

/** Runs `steps` steps of L = sum(c * p^2 + d * p) (and a ragged second parameter) and returns every value. */
function run(kind: 'Adam' | 'AdamW', opts: Opts, fused: boolean, steps = 6): { params: number[][]; state: number[][]; versions: number[] } {
  setFusedCpuUpdates(fused);
  torch.manualSeed(3);
  const p1 = torch.randn(37, 11).requiresGrad_();
  const p2 = torch.randn(5).requiresGrad_();
  const c = torch.randn(37, 11).abs(), d = torch.randn(37, 11), e = torch.randn(5);
  const opt = kind === 'Adam' ? new torch.optim.Adam([p1, p2], opts) : new torch.optim.AdamW([p1, p2], opts);
  for (let s = 0; s < steps; s++) {
    opt.zeroGrad();
    const loss = c.mul(p1).mul(p1).add(d.mul(p1)).sum().add(p2.mul(p2).mul(e).sum());
    loss.backward();
    // make some gradients and moments zero, negative zero and tiny, where rounding shows
    if (s === 2) torch.noGrad(() => p1.grad!.mul_(0));
    opt.step();
  }
  const state = opt.stateDict().state;
  const vals = (t: torch.Tensor) => Array.from(t.toArraySync() as Float32Array);
  const stTensors = Object.values(state).flatMap((st) => Object.values(st).filter((v): v is torch.Tensor => v instanceof torch.Tensor));
  return {
    params: [vals(p1), vals(p2)],
    state: stTensors.map(vals),
    versions: [p1, p2, ...stTensors].map((t) => t._storage.version),
  };
}

describe('fused eager cpu Adam', () => {
  afterEach(() => setFusedCpuUpdates(true));

  const cases: ['Adam' | 'AdamW', Opts][] = [
    ['Adam', { lr: 1e-2 }],
    ['Adam', { lr: 3e-3, betas: [0.8, 0.95], eps: 1e-6, weightDecay: 0.1 }],
    ['Adam', { lr: 1e-2, amsgrad: true }],
    ['Adam', { lr: 1e-2, maximize: true, weightDecay: 0.05 }],
    ['Adam', { lr: 1e-2, betas: [0, 0], eps: 0 }],
    ['AdamW', { lr: 1e-2 }],
    ['AdamW', { lr: 1e-2, weightDecay: 0.3, amsgrad: true, maximize: true }],
  ];
  for (const [kind, opts] of cases) {
    it(`${kind} ${JSON.stringify(opts)}: the same bits as the tensor ops (parameters, state, versions)`, () => {
      const fused = run(kind, opts, true);
      const ops = run(kind, opts, false);
      expect(fused.params.flat().some((x) => x !== 0)).toBe(true);
      // Object.is: -0 and NaN compare as bits do
      const same = (a: number[][], b: number[][]) => a.every((r, i) => r.length === b[i].length && r.every((x, j) => Object.is(x, b[i][j])));
      expect(same(fused.params, ops.params), 'parameters').toBe(true);
      expect(same(fused.state, ops.state), 'state').toBe(true);
      expect(fused.versions).toEqual(ops.versions);
    });
  }

  it('is what eager runs: one loop, no tensor op per element-wise step', () => {
    // counts the ops the update dispatches through the cpu backend
    const p = torch.randn(64, 32).requiresGrad_();
    const opt = new torch.optim.Adam([p], { lr: 1e-3 });
    p.sum().backward();
    opt.step(); // creates the state (two zero tensors)
    const cpu = (p._storage as unknown as { backend: { exec: (...a: unknown[]) => void } }).backend;
    const exec = cpu.exec;
    let ops = 0;
    cpu.exec = (...a: unknown[]) => (ops++, exec.apply(cpu, a));
    try {
      opt.step();
      expect(ops).toBe(0);
      setFusedCpuUpdates(false);
      opt.step();
      expect(ops).toBeGreaterThan(5);
    } finally {
      cpu.exec = exec;
    }
  });

  it('leaves a compiled step to the tensor ops (traced), which agree with the eager loop', async () => {
    const make = () => {
      torch.manualSeed(5);
      const model = new torch.nn.Sequential(new torch.nn.Linear(20, 16), new torch.nn.ReLU(), new torch.nn.Linear(16, 3));
      return { model, opt: new torch.optim.Adam(model.parameters(), { lr: 1e-2 }) };
    };
    torch.manualSeed(9);
    const x = torch.randn(8, 20), y = torch.randn(8, 3);
    const eager = make(), compiled = make();
    const body = (m: torch.nn.Module, o: torch.optim.Optimizer<object>) => () => {
      const loss = torch.nn.functional.mseLoss(m.forward(x) as torch.Tensor, y);
      o.zeroGrad();
      loss.backward();
      o.step();
      return loss;
    };
    const eagerStep = body(eager.model, eager.opt);
    const fastStep = torch.compile(body(compiled.model, compiled.opt));
    const before = compiled.model.parameters().map((t) => Array.from(t.toArraySync() as Float32Array));
    for (let s = 0; s < 4; s++) {
      const a = await eagerStep().item();
      const b = await fastStep().item();
      // fused matmul epilogues round differently from eager ops: float32 rounding apart
      expect(Math.abs(b - a)).toBeLessThanOrEqual(1e-5 * Math.abs(a));
    }
    const pe = eager.model.parameters().map((t) => Array.from(t.toArraySync() as Float32Array));
    const pc = compiled.model.parameters().map((t) => Array.from(t.toArraySync() as Float32Array));
    pc.forEach((c, i) => c.forEach((v, j) => {
      expect(v).not.toBe(before[i][j]); // the compiled step updated every parameter
      expect(Math.abs(v - pe[i][j])).toBeLessThanOrEqual(1e-5);
    }));
  });
});
