/**
 * Grids over the device's workgroups-per-dimension limit in compiled graphs (issue 14, item
 * 14). A kernel with an explicit grid over the limit (matmul rows or batch) is folded
 * (src/codegen-wgsl/fold.ts); a linear count is folded by the executor. The first tests
 * lower the limit (a backend view reporting a few workgroups per dimension) so that every
 * kernel kind runs folded on small shapes; the last run the real limit at full size.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { optimize } from '../src/compile/optimize.ts';
import { takeChecks } from '../src/compile/checks.ts';
import { deviceError, interpretOutputs, interpreterBinding, relDiff, runGpuPlan } from './helpers/compile-util.ts';
import { webgpuAvailable } from './helpers/devices.ts';
import { disableWaitSleep } from './helpers/webgpu-workarounds.ts';

type T = torch.Tensor;
if (webgpuAvailable) disableWaitSleep();

describe.skipIf(!webgpuAvailable)('compiled grids folded past the per-dimension workgroup limit', () => {
  const cases: [string, (...a: T[]) => T[], () => T[]][] = [
    ['matmul rows (with a fused epilogue) and a 3-D batch', (a, w, x, y) => [a.matmul(w).relu().add(1), x.matmul(y)], () => [torch.randn(1100, 12), torch.randn(12, 8), torch.randn(40, 3, 2), torch.randn(40, 2, 5)]],
    ['a transposed matmul (a weight gradient) and an unaligned one', (a, b, c, d) => [a.t().matmul(b), c.matmul(d)], () => [torch.randn(64, 1100), torch.randn(64, 36), torch.randn(1100, 7), torch.randn(7, 3)]],
    ['elementwise and reductions', (a, b) => [a.mul(2).sin().add(b), a.sum(1), a.max(0).values, b.sum()], () => [torch.randn(61, 50), torch.randn(61, 50)]],
    ['index kernels: gather, slice, cat', (a, i) => [a.gather(1, i), a.narrow(1, 3, 37), torch.cat([a, a.mul(2)], 0)], () => [torch.randn(200, 45), torch.randint(0, 45, [200, 7])]],
  ];
  it.each(cases)('%s: every kernel folded equals the unfolded plan and the interpreter', async (_name, fn, make) => {
    torch.manualSeed(5);
    const args = make();
    const t = torch.trace(fn, ...args);
    const g = optimize(takeChecks(t.graph).graph); // as compile does: index checks leave the graph
    const bind = interpreterBinding(t.program);
    const want = await interpretOutputs(g, bind);
    const plain = await runGpuPlan(g, bind, { pack: false });
    const folded = await runGpuPlan(g, bind, { pack: false, maxWorkgroupsPerDimension: 32 });
    expect(await deviceError()).toBeNull();
    // the grids that were explicit and over 32 per dimension became linear counts
    const explicit = plain.plan.kernels.filter((k) => Array.isArray(k.workgroups) && k.workgroups.some((d) => d > 32));
    if (_name.startsWith('matmul') || _name.startsWith('a transposed')) expect(explicit.length).toBeGreaterThan(0);
    expect(folded.plan.kernels.every((k) => !Array.isArray(k.workgroups) || k.workgroups.every((d) => d <= 32))).toBe(true);
    want.forEach((w, i) => {
      expect(relDiff(folded.outputs[i]!, plain.outputs[i]!).rel, `output ${i} vs unfolded`).toBe(0);
      expect(relDiff(folded.outputs[i]!, w).rel, `output ${i} vs interpreter`).toBeLessThan(1e-5);
    });
  });

  it('a pack whose parts have folded grids', async () => {
    torch.manualSeed(6);
    const t = torch.trace((a: T, b: T, w: T) => [a.sum(1), b.mul(2).add(1), a.matmul(w)], torch.randn(37, 45), torch.randn(3000), torch.randn(45, 19));
    const g = optimize(t.graph);
    const bind = interpreterBinding(t.program);
    const plain = await runGpuPlan(g, bind);
    const folded = await runGpuPlan(g, bind, { maxWorkgroupsPerDimension: 10 });
    expect(await deviceError()).toBeNull();
    expect(folded.plan.kernels.some((k) => k.parts)).toBe(true);
    plain.outputs.forEach((p, i) => expect(relDiff(folded.outputs[i]!, p).rel, `output ${i}`).toBe(0));
  });

  // mm [4480000, 4] x [4, 4] compiled: test/bad-input-regressions.test.ts, item 14

  it('a whole training step on x [2200000, 4]: forward and input-gradient matmuls (68,750 row tiles), equal to eager', async () => {
    // The layer is frozen: its weight gradient would be a 2.2M-long sum, whose float32
    // rounding differs between eager and compiled kernels (not what this test is about).
    const run = async (compiled: boolean) => {
      torch.manualSeed(8);
      const lin = new torch.nn.Linear(4, 3).to('webgpu');
      for (const p of lin.parameters()) p.requiresGrad = false;
      const x = torch.randn(2200000, 4, { device: 'webgpu', requiresGrad: true });
      const opt = new torch.optim.SGD([x], { lr: 1e5 });
      const body = () => {
        opt.zeroGrad();
        const loss = lin.forward(x).relu().sum();
        loss.backward();
        opt.step();
        return loss;
      };
      const loss = await (compiled ? torch.compile(body) : body)().item();
      return { loss, x: Float32Array.from(await x.toArray()) };
    };
    const eager = await run(false);
    const compiled = await run(true);
    expect(Math.abs(compiled.loss - eager.loss)).toBeLessThan(1e-5 * Math.abs(eager.loss));
    expect(relDiff(compiled.x, eager.x).rel).toBe(0);
  });
});
