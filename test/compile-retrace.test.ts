/**
 * Re-tracing that repeats the previous call's graph (src/trace/expectation.ts): a call whose trace
 * matches the cached graph node for node is a hit without building or hashing a graph. These tests
 * change one thing between calls (an op in the middle, an operand order, a constant, a number's
 * int32-ness, the outputs, the length of the trace, shapes, dtypes, requiresGrad, the device) and
 * check that every call runs the right graph: its result equals eager mode's, the cache holds one
 * graph per distinct path, the counts equal those with the check off (WGTORCH_TRACE_VERIFY=0,
 * which hashes every trace), and the calls that repeat their predecessor take the fast path.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { printGraph } from '../src/ir/printer.ts';
import { captureLogs, expectTensorClose, rng } from './helpers/compile-util.ts';
import { testDevices, webgpuAvailable } from './helpers/devices.ts';

const REPEATS = "repeats the previous call's graph";
type Fn = (...args: any[]) => torch.Tensor;

function compileWith<F extends Fn>(fn: F, repeat: boolean, opts: torch.CompileOptions = {}) {
  const prev = process.env.WGTORCH_TRACE_VERIFY;
  process.env.WGTORCH_TRACE_VERIFY = repeat ? '1' : '0';
  try {
    return torch.compile(fn, opts);
  } finally {
    if (prev === undefined) delete process.env.WGTORCH_TRACE_VERIFY;
    else process.env.WGTORCH_TRACE_VERIFY = prev;
  }
}

/** Runs the calls compiled (fast path on or off) and eagerly; every result must equal eager's. */
async function runCalls(fn: Fn, calls: unknown[][], repeat: boolean, tol = 1e-6) {
  const fast = compileWith(fn, repeat);
  const { lines } = await captureLogs(['cache'], async () => {
    for (const [i, args] of calls.entries()) {
      const got = fast(...args);
      const want = fn(...args);
      expect(got.dtype, `call ${i}: dtype`).toBe(want.dtype);
      await expectTensorClose(got.float(), want.float(), tol, `call ${i} (${JSON.stringify(args.filter((a) => !(a instanceof torch.Tensor)))})`);
    }
  });
  return { fast, info: fast.cacheInfo(), repeated: lines.filter((l) => l.message.includes(REPEATS)).length };
}

/**
 * `paths[i]` names the graph call i must run. The cache must hold one graph per distinct path,
 * the calls whose path is their predecessor's must repeat it (fast path), and the counts must
 * be those of hashing every trace.
 */
async function expectPaths(fn: Fn, calls: unknown[][], paths: string[], tol?: number) {
  const distinct = new Set(paths).size;
  const repeats = paths.filter((p, i) => i > 0 && p === paths[i - 1]).length;
  const on = await runCalls(fn, calls, true, tol);
  const off = await runCalls(fn, calls, false, tol);
  expect(on.info, 'fast path on').toEqual({ graphs: distinct, hits: calls.length - distinct, misses: distinct });
  expect(off.info, 'fast path off').toEqual(on.info);
  expect(on.repeated, 'calls that repeated the previous graph').toBe(repeats);
  expect(off.repeated).toBe(0);
  return on.fast;
}

const data = (seed: number, ...shape: number[]) => {
  torch.manualSeed(seed);
  return torch.randn(shape);
};

describe('re-tracing that repeats the previous graph', () => {
  it('a steady loop repeats the graph on every call after the first', async () => {
    const x = data(1, 8, 5);
    const w = data(2, 5, 3);
    await expectPaths((a: torch.Tensor) => a.mm(w).relu().sum(1), Array.from({ length: 6 }, () => [x]), Array(6).fill('a'));
  });

  it('a different op in the middle of the trace runs its own graph', async () => {
    const x = data(3, 6, 4);
    const fn = (a: torch.Tensor, relu: boolean) => {
      let h = a.mul(2).add(1);
      h = relu ? h.relu() : h.tanh();
      return h.exp().sum(0);
    };
    const flags = [true, true, false, false, true, false, true];
    await expectPaths(fn, flags.map((f) => [x, f]), flags.map(String));
  });

  it('the same ops in another order, or with swapped operands, are other graphs', async () => {
    const x = data(4, 5, 5);
    const y = data(5, 5, 5);
    const order = (a: torch.Tensor, b: torch.Tensor, k: number) =>
      k === 0 ? a.add(b).mul(b) : k === 1 ? a.mul(b).add(b) : k === 2 ? a.sub(b).mul(b) : b.sub(a).mul(b);
    const ks = [0, 0, 1, 1, 0, 2, 3, 3, 2];
    await expectPaths(order, ks.map((k) => [x, y, k]), ks.map(String));
    // a reduction over the other dim of a square matrix: only an attr differs
    const sm = (a: torch.Tensor, dim: number) => a.softmax(dim).mul(a);
    const dims = [0, 0, 1, 0, 1, 1];
    await expectPaths(sm, dims.map((d) => [x, d]), dims.map(String));
  });

  it('a constant that is an attribute (pow, clamp) changes the graph; a lifted number does not', async () => {
    const x = data(6, 4, 7).abs().add(0.5);
    const ps = [2, 2, 3, 3, 2, 0.5];
    await expectPaths((a: torch.Tensor, p: number) => a.pow(p).sum(1), ps.map((p) => [x, p]), ps.map(String), 1e-5);
    const mins = [0, 0, 0.7, 0.7, 0];
    await expectPaths((a: torch.Tensor, m: number) => a.clamp({ min: m }).mul(3), mins.map((m) => [x, m]), mins.map(String));
    // numbers an op takes as an operand are bound per call: one graph, the value of each call
    const cs = [1, 2.5, -3, 1e-3, 7];
    await expectPaths((a: torch.Tensor, c: number) => a.mul(c).add(c * c), cs.map((c) => [x, c]), cs.map(() => 'one'));
  });

  it("whether a number an int32 op takes is an int32 is keyed: a non-integer there is another graph", async () => {
    const i = torch.tensor([[1, 5, 9], [3, 2, 8]], { dtype: 'int32' });
    const ks = [4, 6, 4.5, 4.5, 2, 7.25];
    const kind = ks.map((k) => (Number.isInteger(k) ? 'int' : 'float'));
    await expectPaths((a: torch.Tensor, k: number) => a.gt(k).float().add(a.float()), ks.map((k) => [i, k]), kind);
  });

  it('the same nodes returning another value are another graph', async () => {
    const x = data(7, 3, 6);
    const fn = (a: torch.Tensor, which: number) => {
      const r = a.relu();
      const e = a.exp();
      return which === 0 ? r : which === 1 ? e : r.add(e);
    };
    const w = [0, 0, 1, 0, 1, 1, 2];
    await expectPaths(fn, w.map((k) => [x, k]), w.map(String));
  });

  it('a trace longer or shorter than the previous one is another graph', async () => {
    const x = data(8, 4, 4);
    const fn = (a: torch.Tensor, n: number) => {
      let h = a;
      for (let k = 0; k < n; k++) h = h.mm(a).tanh();
      return h;
    };
    const ns = [2, 3, 3, 2, 1, 1, 3, 0, 0];
    await expectPaths(fn, ns.map((n) => [x, n]), ns.map(String));
    // the same outputs, and a node more or less that nothing reads: still another graph, as its hash says
    const dead = (a: torch.Tensor, extra: boolean) => {
      const r = a.relu();
      if (extra) a.exp();
      return r;
    };
    const es = [true, true, false, false, true];
    await expectPaths(dead, es.map((e) => [x, e]), es.map(String));
  });

  it('a change of shape, dtype or requiresGrad of an argument is another graph', async () => {
    const fn = (a: torch.Tensor) => a.mul(a).sum();
    const x = data(9, 4, 3);
    const wide = data(10, 4, 5);
    const ints = torch.tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9], [0, -1, -2]], { dtype: 'int32' });
    const g = data(11, 4, 3).requiresGrad_();
    const calls = [[x], [x], [wide], [wide], [x], [ints], [ints], [g], [g], [x]];
    await expectPaths(fn, calls, ['x', 'x', 'wide', 'wide', 'x', 'int', 'int', 'grad', 'grad', 'x']);
  });

  it('a whole training step repeats its graph; skipping a parameter changes it', async () => {
    // parameters, Adam's state and the .grad outputs are the same on every call, until the
    // step leaves one parameter's grad out (which Adam then skips): other mutations and grads
    const make = () => {
      torch.manualSeed(12);
      const model = new torch.nn.Sequential(new torch.nn.Linear(5, 6), new torch.nn.Tanh(), new torch.nn.Linear(6, 2));
      const opt = new torch.optim.Adam(model.parameters(), { lr: 1e-2 });
      const x = data(13, 7, 5);
      const y = data(14, 7, 2);
      const step = (freeze: boolean) => {
        opt.zeroGrad();
        const loss = model(x).sub(y).pow(2).mean();
        loss.backward();
        if (freeze) (model.parameters()[0] as torch.Tensor).grad = null;
        opt.step();
        return loss;
      };
      return { model, step };
    };
    const plan = [false, false, false, true, true, false, false];
    const eager = make();
    const want: number[] = [];
    for (const f of plan) want.push(await eager.step(f).item());
    for (const repeat of [true, false]) {
      const c = make();
      const fast = compileWith(c.step, repeat);
      const { lines } = await captureLogs(['cache'], async () => {
        for (const [i, f] of plan.entries()) expect(await fast(f).item(), `call ${i}`).toBeCloseTo(want[i], 5);
      });
      for (const [a, b] of c.model.parameters().map((p, k) => [p, eager.model.parameters()[k]] as const)) {
        await expectTensorClose(a, b, 1e-5, 'parameter after the steps');
      }
      expect(fast.cacheInfo()).toEqual({ graphs: 2, hits: 5, misses: 2 });
      expect(lines.filter((l) => l.message.includes(REPEATS)).length).toBe(repeat ? 4 : 0);
    }
  });

  it('a graph that diverges in the middle is built exactly as a fresh trace builds it (names, scopes, values)', async () => {
    class Net extends torch.nn.Module<[torch.Tensor, boolean], torch.Tensor> {
      first = new torch.nn.Linear(4, 6);
      second = new torch.nn.Linear(6, 3);
      override forward(x: torch.Tensor, gelu: boolean) {
        const h = this.first(x);
        return this.second(gelu ? h.gelu() : h.relu()).mul(0.5);
      }
    }
    torch.manualSeed(15);
    const model = new Net();
    const x = data(16, 5, 4);
    const fast = compileWith(model, true);
    fast(x, false);
    fast(x, false);
    fast(x, true);
    const [relu, gelu] = fast.graphs();
    expect(fast.cacheInfo()).toEqual({ graphs: 2, hits: 1, misses: 2 });
    // a fresh trace of the same call, hashed and built the old way, from the model as its root module
    const traced = (g: boolean) => {
      const once = compileWith(model, false);
      once(x, g);
      return printGraph(once.graphs()[0].program.graph);
    };
    expect(printGraph(gelu.program.graph)).toBe(traced(true));
    expect(printGraph(relu.program.graph)).toBe(traced(false));
    expect(printGraph(gelu.program.graph)).toContain('first.weight');
    expect(printGraph(gelu.program.graph)).toContain('# second');
  });

  it('random paths, operands and constants: the counts of hashing every trace, results equal eager', async () => {
    const r = rng(20261201);
    const x = data(17, 6, 6);
    const y = data(18, 6, 6);
    const fn = (a: torch.Tensor, b: torch.Tensor, k1: number, k2: number, c: number, p: number) => {
      let h = k1 ? a.add(b) : a.mul(b);
      h = h.mul(c);
      if (k2 === 1) h = h.tanh();
      else if (k2 === 2) h = h.sigmoid().mm(b);
      return h.abs().add(0.1).pow(p).sum(1);
    };
    const calls: unknown[][] = [];
    const paths: string[] = [];
    for (let i = 0; i < 24; i++) {
      // runs of equal paths, so both the repeated and the diverging cases occur
      const prev = calls.at(-1);
      const k1 = prev && r() < 0.6 ? (prev[2] as number) : Math.floor(r() * 2);
      const k2 = prev && r() < 0.6 ? (prev[3] as number) : Math.floor(r() * 3);
      const p = prev && r() < 0.7 ? (prev[5] as number) : [1, 2][Math.floor(r() * 2)];
      const c = 0.5 + r();
      calls.push([x, y, k1, k2, c, p]);
      paths.push(`${k1}${k2}${p}`);
    }
    await expectPaths(fn, calls, paths, 1e-5);
  });

  it.skipIf(!webgpuAvailable)('a model moved to another device between calls is another graph', async () => {
    torch.manualSeed(19);
    const model = new torch.nn.Linear(4, 3);
    const fast = compileWith(model, true);
    const x = data(20, 2, 4);
    const { lines } = await captureLogs(['cache'], async () => {
      await expectTensorClose(fast(x), model(x), 1e-6, 'cpu');
      await expectTensorClose(fast(x), model(x), 1e-6, 'cpu again');
      model.to('webgpu');
      const xg = x.to('webgpu');
      const got = fast(xg);
      expect(got.device).toBe('webgpu');
      await expectTensorClose(got, model(xg), 1e-5, 'webgpu');
      await expectTensorClose(fast(xg), model(xg), 1e-5, 'webgpu again');
    });
    expect(fast.cacheInfo()).toEqual({ graphs: 2, hits: 2, misses: 2 });
    expect(lines.filter((l) => l.message.includes(REPEATS)).length).toBe(2);
    expect(new Set(fast.graphs().map((g) => g.device))).toEqual(new Set(['cpu', 'webgpu']));
  });

  // a compiled plan writes each new value into the captured input holding the tensor's old
  // value; the graph's hash does not say which, so equal graphs writing other tensors must miss
  for (const device of testDevices()) {
    it(`the same nodes writing their results into the other captured tensor are another graph (${device})`, async () => {
      for (const repeat of [true, false]) {
        const make = () => ({ p: torch.tensor([1, 2, 3, 4], { device }), q: torch.tensor([10, 20, 30, 40], { device }) });
        const step = (t: { p: torch.Tensor; q: torch.Tensor }, swap: boolean) => {
          const s = t.p.add(t.q);
          const d = s.mul(2);
          if (swap) {
            t.q.copy_(s);
            t.p.copy_(d);
          } else {
            t.p.copy_(s);
            t.q.copy_(d);
          }
          return s.sum();
        };
        const c = make();
        const e = make();
        const fast = compileWith((swap: boolean) => step(c, swap), repeat);
        const paths = [false, true, true, false, true];
        const { lines } = await captureLogs(['recompiles'], async () => {
          for (const [i, swap] of paths.entries()) {
            fast(swap);
            step(e, swap);
            await expectTensorClose(c.p, e.p, 0, `call ${i} p (repeat ${repeat})`);
            await expectTensorClose(c.q, e.q, 0, `call ${i} q (repeat ${repeat})`);
          }
        });
        expect(lines.map((l) => l.message).join('\n')).toMatch(/writing its in-place results into other tensors/);
        expect(fast.cacheInfo(), `repeat ${repeat}`).toEqual({ graphs: 2, hits: 3, misses: 2 });
      }
    });
  }
});
