/**
 * The fusion rewrite driver (src/passes/fusion/driver.ts): rule sets of named rules run to
 * a fixpoint, every firing and refusal logged under the rule's name, and the seed's rules
 * (placement, then rewrites of the kernels) reaching the decisions they are named for.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { optimize } from '../src/compile/optimize.ts';
import { fuse, RULE_SETS, runRuleSet, type Rule, type RuleSet } from '../src/passes/fusion.ts';
import { FusionState } from '../src/passes/fusion/state.ts';

const linearRelu = () => {
  torch.manualSeed(1);
  return optimize(torch.trace((x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) => x.matmul(w.t()).add(b).relu(), torch.randn(8, 12), torch.randn(16, 12), torch.randn(16)).graph);
};

describe('fusion driver', () => {
  it('runs a rule set to a fixpoint and logs each firing and refusal once, under the rule name', () => {
    const st = new FusionState(linearRelu(), { maxBindings: 8 });
    const seen: number[] = [];
    // a counter rule: fires on each site until the site has been seen twice
    const twice: Rule<number> = {
      name: 'twice',
      doc: 'test rule',
      apply: (_st, site) => {
        if (site > 1) return null;
        const n = seen.filter((s) => s === site).length;
        seen.push(site);
        return n < 2 ? { fired: `saw ${site}` } : { refused: `site ${site} already seen twice` };
      },
    };
    const never: Rule<number> = { name: 'never', doc: 'test rule', apply: () => ({ refused: ['no', 'still no'] }) };
    const set: RuleSet<number> = { name: 'toy', sites: () => [0, 1, 2], settled: () => false, order: 'rule', rules: [twice, never] };
    const fired = runRuleSet(st, set);
    expect(fired).toBe(4);
    // two sweeps fire (each site twice), the third fires nothing and ends the run
    expect(seen).toEqual([0, 1, 0, 1, 0, 1]);
    expect(st.log).toEqual(['[twice] saw 0', '[twice] saw 1', '[never] no', '[never] still no', '[twice] site 0 already seen twice', '[twice] site 1 already seen twice']);
  });

  it("'site' order stops at the rule that settles a site; a rule set that never settles is an error", () => {
    const st = new FusionState(linearRelu(), { maxBindings: 8 });
    const calls: string[] = [];
    const settle: Rule<number> = { name: 'settle', doc: 'test rule', apply: (_st, s) => (calls.push(`settle ${s}`), s === 0 ? (done.add(s), { fired: null }) : null) };
    const after: Rule<number> = { name: 'after', doc: 'test rule', apply: (_st, s) => (calls.push(`after ${s}`), done.add(s), { fired: `placed ${s}` }) };
    const done = new Set<number>();
    runRuleSet(st, { name: 'toy', sites: () => [0, 1], settled: (_st, s) => done.has(s), order: 'site', rules: [settle, after] });
    expect(calls).toEqual(['settle 0', 'settle 1', 'after 1']);
    // a routine placement (fired: null) writes no line
    expect(st.log).toEqual(['[after] placed 1']);
    const forever: Rule<number> = { name: 'forever', doc: 'test rule', apply: () => ({ fired: 'again' }) };
    expect(() => runRuleSet(st, { name: 'loop', sites: () => [0], settled: () => false, order: 'rule', rules: [forever] })).toThrow(/fusion rule set loop did not settle/);
  });

  it('the rule sets are named values with documented rules, in the order they run', () => {
    expect(RULE_SETS.map((s) => s.name)).toEqual(['rows', 'placement', 'kernels', 'loads']);
    const names = RULE_SETS.flatMap((s) => s.rules.map((r) => r.name));
    expect(names).toEqual(['row-groups', 'row', 'view', 'view-copy', 'seed', 'float', 'join', 'hoist', 'pull-inputs', 'recompute-prologue', 'operand-reduction', 'reduction-epilogue', 'reduce-prologue', 'window-operand', 'gather-load', 'window-load', 'window-recompute', 'recompute-inputs']);
    for (const s of RULE_SETS) for (const r of s.rules) expect(r.doc.length, r.name).toBeGreaterThan(20);
  });

  it("each kernel rule's case: its name in the log where it fires, and the kernels it leaves", () => {
    torch.manualSeed(2);
    // a Linear layer's backward with its bias gradient and an SGD update of the bias
    const t = torch.trace(
      (x: torch.Tensor, g: torch.Tensor, b: torch.Tensor, y: torch.Tensor) => {
        const gz = g.relu().mul(2);
        return [gz.t().matmul(x), b.sub(gz.sum(0)), x.sub(y).pow(2).sum()];
      },
      torch.randn(8, 12), torch.randn(8, 16), torch.randn(16), torch.randn(8, 12),
    );
    const s = fuse(optimize(t.graph), { maxBindings: 16 });
    const fired = (rule: string) => s.log.filter((l) => l.startsWith(`[${rule}] `) && !l.includes('did not'));
    expect(fired('recompute-prologue').length, s.log.join('\n')).toBeGreaterThan(0);
    expect(fired('operand-reduction').length, s.log.join('\n')).toBe(1);
    expect(fired('reduction-epilogue').length, s.log.join('\n')).toBe(1);
    expect(fired('reduce-prologue').length, s.log.join('\n')).toBe(1);
    const mm = s.kernels.filter((k) => k.kind === 'matmul');
    expect(mm.some((k) => k.kind === 'matmul' && k.reductions.length === 1 && k.reductions[0]!.operand === 'A' && k.reductions[0]!.epilogue.length > 0)).toBe(true);
    // with 4 bindings the bias update cannot ride along: the refusal names the rule and the limit
    const tight = fuse(optimize(t.graph), { maxBindings: 4 });
    expect(tight.log.some((l) => /^\[(operand-reduction|reduction-epilogue)\] did not fuse .*4 storage buffers/.test(l)), tight.log.join('\n')).toBe(true);
  });
  it('[hoist] an elementwise node joins an earlier elementwise kernel once the later kernel computing its other input moves before it', async () => {
    torch.manualSeed(3);
    const w = torch.randn([]);
    const y = torch.randn(8, 12);
    // e is written (returned), so e + r either joins e's kernel or costs a third kernel
    const independent = (w: torch.Tensor, y: torch.Tensor) => {
      const e = w.exp();
      const r = y.pow(2).sum();
      return [e, e.add(r)];
    };
    const s = fuse(optimize(torch.trace(independent, w, y).graph), { maxBindings: 16 });
    expect(s.log.some((l) => /^\[hoist\] moved kernels .* before elementwise kernel .* and fused %\d+ add into it$/.test(l)), s.log.join('\n')).toBe(true);
    expect(s.kernels.map((k) => k.kind)).toEqual(['reduce', 'elementwise']);
    const fast = torch.compile(independent);
    const [ge, gs] = fast(w, y);
    const [we, ws] = independent(w, y);
    expect(await ge!.item()).toBeCloseTo(await we!.item(), 5);
    expect(await gs!.item()).toBeCloseTo(await ws!.item(), 4);
    // a reduction that reads e cannot run before e's kernel: the add stays a kernel of its own
    const dependent = (w: torch.Tensor, y: torch.Tensor) => {
      const e = w.exp();
      const r = y.mul(e).sum();
      return [e, e.add(r)];
    };
    // (without row kernels, which would take y * e, its sum and the add as one row kernel)
    const d = fuse(optimize(torch.trace(dependent, w, y).graph), { maxBindings: 16, rowKernels: false });
    expect(d.log.some((l) => /^\[hoist\] did not move the producers of %\d+ add's inputs before elementwise kernel \d+: they depend on it$/.test(l)), d.log.join('\n')).toBe(true);
    expect(d.kernels.length).toBe(3);
  });
});
