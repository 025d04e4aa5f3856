/**
 * One regression test per item of issue 14 (PyTorch's values for item 9 come from
 * scripts/edge-cases-reference.py, run with PyTorch 1.13) (silently wrong numbers, crashes and corrupted
 * state on bad input and at device limits), each on every device it concerns.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { testDevices, webgpuAvailable } from './helpers/devices.ts';
import { disableWaitSleep } from './helpers/webgpu-workarounds.ts';

const F = torch.nn.functional;
type T = torch.Tensor;
if (webgpuAvailable) disableWaitSleep();

async function arr(t: T): Promise<number[]> {
  return Array.from(await t.toArray());
}
async function rejects(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected a rejection');
}
function throws(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error');
}
function close(a: number[], b: number[], tol = 1e-5): void {
  expect(a.length).toBe(b.length);
  a.forEach((v, i) => {
    if (Number.isNaN(b[i]!)) expect(v, `element ${i}`).toBeNaN();
    else expect(Math.abs(v - b[i]!), `element ${i}: ${v} vs ${b[i]}`).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(b[i]!)));
  });
}

/** The first index where two long arrays differ by more than tol (relative), or -1 (expect() on 18M elements is too slow). */
function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>, tol = 0): number {
  if (a.length !== b.length) return -2;
  for (let i = 0; i < a.length; i++) if (!(Math.abs(a[i]! - b[i]!) <= tol * Math.max(1, Math.abs(b[i]!)))) return i;
  return -1;
}

class Net extends torch.nn.Module<[T], T> {
  l1 = new torch.nn.Linear(6, 8);
  drop = new torch.nn.Dropout(0.5);
  l2 = new torch.nn.Linear(8, 3);
  override forward(x: T): T {
    return this.l2(this.drop(this.l1(x).relu()));
  }
}

describe.each(testDevices())('issue 14 regressions on %s', (dev) => {
  it("1: mode 'static' gives the default mode's numbers: Adam's steps, a changed lr, eval(), requiresGrad, replaced tensors", async () => {
    const run = async (mode: 'default' | 'static') => {
      torch.manualSeed(3);
      const model = new Net().to(dev);
      (model.drop as { p: number }).p = 0; // deterministic until eval() is tested below
      const x = torch.randn(5, 6, { device: dev });
      const y = torch.randn(5, 3, { device: dev });
      const opt = new torch.optim.Adam(model.parameters(), { lr: 0.05 });
      const step = torch.compile(() => {
        const l = F.mseLoss(model(x), y);
        opt.zeroGrad();
        l.backward();
        opt.step();
        return l;
      }, { mode });
      const fwd = torch.compile((a: T) => model(a), { mode });
      const out: number[] = [];
      for (let t = 0; t < 4; t++) out.push(await step().item());
      opt.paramGroups[0]!.lr = 0.001;
      for (let t = 0; t < 2; t++) out.push(await step().item());
      out.push(...(await arr(fwd(x))), ...(await arr(fwd(x))), ...(await arr(fwd(x))));
      model.l2.bias!.requiresGrad = false;
      out.push(await step().item(), await step().item(), (model.l2.bias!.grad === null ? 1 : 0));
      model.l1.bias = new torch.nn.Parameter(torch.ones(8, { device: dev }));
      out.push(...(await arr(fwd(x))));
      (model.drop as { p: number }).p = 0.9;
      model.eval();
      out.push(...(await arr(fwd(x))));
      return out;
    };
    const warn = console.warn;
    const warned: string[] = [];
    console.warn = (m: string) => warned.push(m);
    try {
      close(await run('static'), await run('default'));
    } finally {
      console.warn = warn;
    }
    expect(warned.join('\n')).toMatch(/static.*a number changed between calls.*traced on every call/);
  });

  it('1: a closure number changed between calls is seen by static mode', async () => {
    let lo = 0;
    const f = torch.compile((a: T) => a.clamp({ min: lo }), { mode: 'static' });
    const x = torch.tensor([-1, 0.5, 2], { device: dev });
    const warn = console.warn;
    console.warn = () => {};
    try {
      expect(await arr(f(x))).toEqual([0, 0.5, 2]);
      lo = 1;
      expect(await arr(f(x))).toEqual([1, 1, 2]);
      lo = 0.25;
      expect(await arr(f(x))).toEqual([0.25, 0.5, 2]);
    } finally {
      console.warn = warn;
    }
  });

  it('18: a static compiled model moved to another device keeps working', async () => {
    torch.manualSeed(4);
    const model = new torch.nn.Linear(4, 2).to(dev);
    const fast = torch.compile(model, { mode: 'static' });
    const x = torch.randn(3, 4);
    for (let i = 0; i < 3; i++) await fast(x.to(dev)).toArray();
    const other = dev === 'cpu' && webgpuAvailable ? 'webgpu' : 'cpu';
    model.to(other);
    await Promise.all(model.parameters().map((p) => p.toArray())); // a move to the cpu arrives asynchronously
    close(await arr(fast(x.to(other))), await arr(model(x.to(other))));
  });

  it('2, 17: crossEntropy checks targets in every mode; a target computed on the device fails at the next readback, naming the op', async () => {
    const logits = torch.randn(4, 10, { device: dev });
    const bad = torch.tensor([1, 12, 3, -1], { dtype: 'int32', device: dev });
    const ce = torch.compile((a: T, b: T) => F.crossEntropy(a, b));
    for (const m of [throws(() => F.crossEntropy(logits, bad)), throws(() => ce(logits, bad))]) {
      expect(m).toContain('crossEntropy: target 12 is out of bounds for 10 classes');
      expect(m).toContain('Fix');
    }
    // 17: compiled crossEntropy of cpu tensors (it used to read the target inside the trace)
    const good = torch.tensor([1, 2, 3, 4], { dtype: 'int32', device: dev });
    expect(await ce(logits, good).item()).toBeCloseTo(await F.crossEntropy(logits, good).item(), 5);
    // a target the host does not know (computed on the device): checked there
    const onDevice = good.mul(3); // [3, 6, 9, 12]
    if (dev === 'cpu') expect(throws(() => F.crossEntropy(logits, onDevice))).toContain('target 12 is out of bounds for 10 classes (element 3');
    else {
      const msg = await rejects(F.crossEntropy(logits, onDevice).item());
      expect(msg).toMatch(/crossEntropy: target 12 is out of bounds for 10 classes \(first at element 3 of the target, shape \[4\]\)/);
      expect(await F.crossEntropy(logits, good).item()).toBeGreaterThan(0); // the flags were reset
      const cmsg = await rejects(ce(logits, good.mul(3)).item());
      expect(cmsg).toContain('crossEntropy: target 12 is out of bounds');
    }
  });

  it('2: a bad index computed on the device leaves state as it was, even across several submits before the readback; good ones change nothing', async () => {
    const train = (m: 'eager' | 'step') => {
      torch.manualSeed(21);
      const lin = new torch.nn.Linear(4, 3).to(dev);
      const opt = new torch.optim.Adam(lin.parameters(), { lr: 0.1 });
      const x = torch.randn(6, 4, { device: dev });
      const body = (shift: number) => {
        const idx = x.sum(1).gt(0).int().add(shift); // on the device: the host never knows it
        const loss = F.crossEntropy(lin.forward(x), idx);
        opt.zeroGrad();
        loss.backward();
        opt.step();
        return loss;
      };
      return { lin, opt, x, step: m === 'step' ? torch.compile(body) : body };
    };
    const snapshot = async (w: ReturnType<typeof train>) => {
      const st = w.opt.state.get(w.lin.weight) as { step: number; expAvg: T };
      return [await arr(w.lin.weight), await arr(w.lin.bias!), await arr(w.lin.weight.grad!), st.step, await arr(st.expAvg)];
    };
    const ref = train('eager');
    const want = [await ref.step(0).item(), await ref.step(0).item()];
    for (const m of ['eager', 'step'] as const) {
      const w = train(m);
      // in-range targets computed on the device: the checks pass and the gated dispatches all run
      expect(await w.step(0).item()).toBeCloseTo(want[0]!, 6);
      const before = await snapshot(w);
      let msg: string;
      try {
        const loss = w.step(2); // targets 2 and 3 of 3 classes (cpu throws here)
        // 600 more dispatches before anything is read (webgpu: past one 512-dispatch submit, all gated)
        for (let i = 0; i < 200; i++) w.lin.weight.data.mul_(1.0001).add_(0).sub_(0);
        msg = await rejects(loss.item());
      } catch (e) {
        msg = (e as Error).message;
      }
      expect(msg).toMatch(/crossEntropy: (\d+ target values \(from 3 to 3\) are|target 3 is) out of bounds for 3 classes/);
      expect(await snapshot(w), `${m}: state after the failed step`).toEqual(before);
      expect(await w.step(0).item(), `${m}: the next good step`).toBeCloseTo(want[1]!, 6);
    }
  });

  it('3: a compiled backward checks the version of what it reads, as eager does', () => {
    const w = torch.ones(3, { device: dev, requiresGrad: true });
    const y = torch.compile((a: T) => a.mul(a).sum())(w);
    w.data.add_(100);
    const m = throws(() => y.backward());
    expect(m).toContain('modified by an inplace operation');
    expect(m).toContain('is at version 1; expected version 0');
  });

  it('4: int32 is exact beyond 2^24 and wraps as PyTorch int32 does, eager and compiled', async () => {
    const a = torch.tensor([16777217, 2147483647, -7, 5], { dtype: 'int32', device: dev });
    expect(await arr(a.add(1))).toEqual([16777218, -2147483648, -6, 6]);
    expect(await arr(a.add(0))).toEqual([16777217, 2147483647, -7, 5]);
    expect(await arr(a.mul(2))).toEqual([33554434, -2, -14, 10]);
    expect(await arr(a.neg().abs())).toEqual([16777217, 2147483647, 7, 5]);
    expect(await arr(a.clamp(-5, 16777218))).toEqual([16777217, 16777218, -5, 5]);
    expect(await arr(a.gt(16777216))).toEqual([1, 1, 0, 0]);
    expect(await arr(torch.compile((x: T) => x.add(1).mul(3).sub(x))(a))).toEqual([33554437, 1, -11, 13]);
  });

  it('4: int32 reductions and int values in fused kernels are exact beyond 2^24 (sums wrap as int32): eager, compiled, whole step', async () => {
    const vals = [16777217, 2147483640, -16777219, 100000000, 7];
    const x = torch.tensor(vals, { dtype: 'int32', device: dev });
    const f = (a: T) =>
      [
        a.sum(), a.max(), a.min(), a.argmax(), a.reshape([5, 1]).sum(1), a.add(1).mul(3).sum(), a.reshape([5, 1]).max(1).values,
        // comparisons with a number fused with int32 arithmetic
        a.gt(16777216), torch.where(a.gt(10), a, a.add(1)), a.eq(16777217).int().add(a.le(7).int()),
      ] as const;
    // by int32 arithmetic: the sum 2247483645 wraps to -2047483651
    const want = [[-2047483651], [2147483640], [-16777219], [1], vals, [(3 * (2247483645 + 5)) | 0], vals, [1, 1, 0, 1, 0], [16777217, 2147483640, -16777218, 100000000, 8], [1, 0, 1, 0, 1]];
    for (const [mode, g] of [['eager', f], ['compiled', torch.compile(f)]] as const) {
      const got = await Promise.all(g(x).map(arr));
      got.forEach((v, i) => expect(v, `${mode} output ${i}`).toEqual(want[i]));
    }
    // a whole training step that also keeps an int32 running total of a batch of ids
    torch.manualSeed(4);
    const lin = new torch.nn.Linear(2, 1).to(dev);
    const opt = new torch.optim.SGD(lin.parameters(), { lr: 0.1 });
    const total = torch.zeros([1], { dtype: 'int32', device: dev });
    const inp = torch.randn(3, 2, { device: dev });
    const step = torch.compile((ids: T) => {
      opt.zeroGrad();
      const loss = lin.forward(inp).pow(2).mean();
      loss.backward();
      opt.step();
      total.add_(ids.sum());
      return loss;
    });
    await step(x).item();
    await step(x).item();
    expect(await arr(total)).toEqual([(2 * 2247483645) | 0]);
  });

  it('9: sign(NaN) is 0, as in PyTorch', async () => {
    expect(await arr(torch.tensor([NaN, -2, 0, 3], { device: dev }).sign())).toEqual([0, -1, 0, 1]);
  });

  it('5: compiled x - x is NaN where x is NaN or inf', async () => {
    const x = torch.tensor([NaN, Infinity, 1], { device: dev });
    close(await arr(torch.compile((a: T) => a.sub(a))(x)), [NaN, NaN, 0]);
  });

  it('6: float64 is refused, naming the dtypes there are', () => {
    for (const make of [
      () => torch.zeros(3, { dtype: 'float64' as torch.DType, device: dev }),
      () => torch.tensor([1, 2], { dtype: 'float64' as torch.DType, device: dev }),
      () => torch.ones(2, { device: dev }).to('float64' as torch.DType),
    ]) {
      const m = throws(make);
      expect(m).toMatch(/dtype "float64" is not supported; wgtorch has 'float32', 'int32', 'bool'.*Fix/);
    }
  });

  it('7: compiled int32 .float() feeding a matmul reads the values, not their bits', async () => {
    const a = torch.tensor([[26, 1]], { dtype: 'int32', device: dev });
    const r = torch.compile((p: T, w: T) => p.float().mm(w))(a, torch.ones(2, 1, { device: dev }));
    expect(await arr(r)).toEqual([27]);
  });

  it('8: in-place updates of captured tensors inside a compiled function with a backward are kept', async () => {
    const run = async (compiled: boolean) => {
      const rm = torch.zeros(3, { device: dev });
      const copy = torch.zeros(3, { device: dev });
      const w = torch.tensor([1, 2, 3], { device: dev, requiresGrad: true });
      const f = (a: T) => {
        torch.noGrad(() => rm.mul_(0.9).add_(a.detach().mul(0.1)));
        copy.copy_(a.detach().add(1));
        return a.mul(2).sum();
      };
      const g = compiled ? torch.compile(f) : f;
      for (let i = 0; i < 2; i++) g(w).backward();
      return [...(await arr(rm)), ...(await arr(copy)), ...(await arr(w.grad!))];
    };
    close(await run(true), await run(false));
  });

  it("9: edge gradients are PyTorch's: relu'(NaN) 1, abs'(NaN) 0, max at NaN, logSoftmax([inf, 1]), pow(0.5)' at 0", async () => {
    const cases: [string, (t: T) => T, number[], number[]][] = [
      ['relu', (t) => t.relu(), [NaN, 1], [1, 1]],
      ['abs', (t) => t.abs(), [NaN, 1], [0, 1]],
      ['max', (t) => t.max(), [NaN, 1], [1, 0]],
      ['max(dim)', (t) => t.max(0).values, [1, NaN], [0, 1]],
      ['pow 0.5', (t) => t.pow(0.5), [0, 4], [Infinity, 0.25]],
    ];
    for (const [name, f, x, want] of cases) {
      for (const compiled of [false, true]) {
        const a = torch.tensor(x, { device: dev, requiresGrad: true });
        const loss = compiled ? torch.compile((t: T) => f(t).sum())(a) : f(a).sum();
        loss.backward();
        expect(await arr(a.grad!), `${name}${compiled ? ' compiled' : ''}`).toEqual(want);
      }
    }
    const ls = await arr(torch.tensor([Infinity, 1], { device: dev }).logSoftmax(0));
    expect(ls.every(Number.isNaN)).toBe(true);
  });

  it('10, 11: whole-step compiles of a plain sum loss, max/logsumexp losses and size-1 parameters match eager', async () => {
    const losses: [string, number, (o: T) => T][] = [
      ['sum', 4, (o) => o.sum()],
      ['max(1).values.sum', 4, (o) => o.max(1).values.sum()],
      ['logsumexp(1).sum', 4, (o) => o.logsumexp(1).sum()],
      ['Linear(3, 1)', 1, (o) => o.pow(2).sum()],
    ];
    for (const [name, outF, lossOf] of losses) {
      const trained = async (compiled: boolean) => {
        torch.manualSeed(5);
        const m = new torch.nn.Linear(3, outF).to(dev);
        const buf = torch.zeros(1, 3, { device: dev }); // a [1, n] running statistic
        const x = torch.randn(4, 3, { device: dev });
        const opt = new torch.optim.SGD(m.parameters(), { lr: 0.1, momentum: 0.9 });
        const body = () => {
          const l = lossOf(m(x));
          torch.noGrad(() => buf.mul_(0.5).add_(x.mean(0, true)));
          opt.zeroGrad();
          l.backward();
          opt.step();
          return l;
        };
        const step = compiled ? torch.compile(body) : body;
        const out: number[] = [];
        for (let i = 0; i < 3; i++) out.push(await step().item());
        return [...out, ...(await arr(m.weight)), ...(await arr(buf))];
      };
      const [c, e] = [await trained(true), await trained(false)];
      close(c, e, 1e-4);
    }
  });

  it('13: arange inside a compiled reduction', async () => {
    const f = torch.compile((a: T) => a.mul(torch.arange(3, { device: dev })).sum());
    expect(await f(torch.ones(3, { device: dev })).item()).toBe(3);
  });

  it('16: a compiled step that throws after backward() leaves grads and Adam as they were', async () => {
    const m = new torch.nn.Linear(3, 2).to(dev);
    const opt = new torch.optim.Adam(m.parameters(), { lr: 0.1 });
    const x = torch.randn(4, 3, { device: dev });
    let fail = false;
    const step = torch.compile(() => {
      const l = m(x).pow(2).sum();
      opt.zeroGrad();
      l.backward();
      opt.step();
      if (fail) void x.mm(torch.ones(2, 2, { device: dev }));
      return l;
    });
    await step().item();
    const grad = await arr(m.weight.grad!);
    const w = await arr(m.weight);
    fail = true;
    expect(throws(() => step())).toContain('mm: mat1 and mat2 shapes cannot be multiplied');
    expect(await arr(m.weight.grad!)).toEqual(grad); // a real tensor, not a traced one
    expect(await arr(m.weight)).toEqual(w);
    expect((opt.state.get(m.weight) as { step: number }).step).toBe(1);
  });

  it('19: pow with a tensor exponent is right for negative bases (no log/exp workaround suggested)', async () => {
    const r = torch.tensor([-2, 3], { device: dev }).pow(torch.tensor([3, 2], { device: dev }));
    expect(await arr(r)).toEqual([-8, 9]);
  });
});

describe.skipIf(!webgpuAvailable)('issue 14 regressions: webgpu limits and precision', () => {
  it('14: mm whose grid needs more than 65535 workgroups ([4480000, 4] x [4, 4]) computes eagerly and compiled, equal; so do kernels over 65535 * 256 elements', async () => {
    torch.manualSeed(14);
    const a = torch.randn(4480000, 4, { device: 'webgpu' });
    const b = torch.randn(4, 4, { device: 'webgpu' });
    const eager = await a.mm(b).relu().toArray();
    expect(eager.length).toBe(4480000 * 4);
    const f = torch.compile((p: T, q: T) => p.mm(q).relu());
    expect(firstDifference(await f(a, b).toArray(), eager)).toBe(-1);
    // elementwise and reduce kernels over 17.9M elements (70,000 workgroups of 256)
    const g = torch.compile((p: T) => [p.mul(3).add(1), p.abs().sum(0), p.sum()] as const);
    const [m, s, t] = g(a);
    expect(firstDifference(await m.toArray(), await a.mul(3).add(1).toArray())).toBe(-1);
    expect(firstDifference(await s.toArray(), await a.abs().sum(0).toArray(), 1e-5)).toBe(-1);
    expect(Math.abs((await t.item()) - (await a.sum().item()))).toBeLessThan(1e-2);
  });

  it('12: a loop that never awaits gets advice before the driver would crash (past 56,000 live bind groups), and the tensors it touched are intact', async () => {
    // ~52 bind groups stay alive per eager step of a small MLP until V8 runs between tasks
    // (measured: 31,629 after 600 steps); lavapipe ended the process with SIGSEGV near 65,536
    const ctx = torch.webgpu.context();
    const a = torch.tensor([1, 2, 3], { device: 'webgpu' });
    await a.toArray();
    const saved = ctx.liveBindGroups;
    ctx.liveBindGroups = 56_000;
    try {
      const m = throws(() => a.mul(torch.tensor([2, 2, 2], { device: 'webgpu' })));
      expect(m).toMatch(/56000 bind groups are alive: this loop has run many ops without ever awaiting.*Fix: await something every few hundred steps/);
    } finally {
      ctx.liveBindGroups = saved;
    }
    expect(await arr(a)).toEqual([1, 2, 3]);
    expect(await arr(a.mul(2))).toEqual([2, 4, 6]);
  });

  it('15: a tensor over the binding limit is refused at creation', () => {
    const m = throws(() => torch.zeros(9000, 9000, { device: 'webgpu' }));
    expect(m).toMatch(/a tensor of 81000000 float32 elements \(309 MiB\).*maxStorageBufferBindingSize.*Fix/);
  });

  it('large reductions: the mean of 4M x 0.1 is within 1e-6', async () => {
    const v = await torch.full([4_000_000], 0.1, { device: 'webgpu' }).mean().item();
    expect(Math.abs(v - 0.1)).toBeLessThan(1e-6);
  });
});
