/**
 * The Wasm SIMD expression kernels of the cpu target (codegen-cpu/wasm/expr-simd.ts, run by
 * runtime/cpu/wasm-simd-kernels.ts) against JavaScript: on random expression trees over
 * operands of every layout (full, per row, per column, one value; float32 and bool; in place),
 * odd lengths and NaN / inf / -0 inputs, a kernel equals bit for bit the JavaScript evaluation
 * of the registry's formulas rounded to float32 at every node (what eager ops do), and agrees
 * with the generated JavaScript loop (doubles, rounded where stored) within float32 rounding.
 * Then the compiled seed Adam step runs its weight updates in Wasm (the kernels' rendered
 * steps say so and the run counts it) and equals eager cpu; WGTORCH_WASM_EPILOGUE=0 turns it off.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { compileJs, elementwiseJs } from '../src/codegen-cpu/js-kernels.ts';
import type { CpuPlan } from '../src/compile/cpu-plan.ts';
import { simdKernelOf, type Layout } from '../src/codegen-cpu/wasm/expr-simd.ts';
import type { DType, HostArray } from '../src/ir/dtype.ts';
import { getOp } from '../src/ir/registry.ts';
import { jsLang } from '../src/ir/scalar-lang.ts';
import type { ElementwiseBody, ExprNode, Ref, TensorInput } from '../src/passes/kernel-ir.ts';
import { runSimdKernel, simdKernelCounters } from '../src/runtime/cpu/wasm-simd-kernels.ts';
import { matmulF32, wasmGemmInfo } from '../src/runtime/cpu/matmul.ts';
import { getEngine } from '../src/runtime/cpu/wasm-gemm.ts';
import { makeResident, residentAddress } from '../src/runtime/cpu/wasm-resident.ts';
import { stagingCounters } from '../src/runtime/cpu/wasm-staging.ts';
import type { CpuStorage } from '../src/runtime/cpu/backend.ts';
import { relDiff, SEED, TwoLayerNet } from './helpers/compile-util.ts';

const hasSimd = wasmGemmInfo().available;

/** A small deterministic generator (the trees must be the same on every run). */
function rng(seed: number) {
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
  return { next, int: (n: number) => Math.floor(next() * n), pick: <T,>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)]! };
}

const SPECIAL = [NaN, Infinity, -Infinity, 0, -0, 1, -1, 3.4e38, 1e-40];

interface Case {
  body: ElementwiseBody;
  ins: (HostArray | null)[];
  /** outputs before the kernel (an in-place input reads its old value there) */
  outs: HostArray[];
  sc: number[];
  layouts: Layout[];
  rows: number;
  cols: number;
}

const UNARY = ['neg', 'abs', 'sqrt', 'relu', 'copy', 'sign'] as const;
const BINARY = ['add', 'sub', 'mul', 'div', 'lt', 'le', 'gt', 'ge', 'eq', 'ne'] as const;

/** Strides over [rows, cols] that read an operand of `layout`. */
const stridesOf = (layout: Layout, cols: number): number[] =>
  layout === 'full' ? [cols, 1] : layout === 'row' ? [1, 0] : layout === 'col' ? [0, 1] : [0, 0];

function randomCase(seed: number, opts: { ops?: 'all' | 'tame' } = {}): Case {
  const r = rng(seed);
  const tame = opts.ops === 'tame';
  const rows = r.pick([1, 2, 3, 5, 8]);
  // [1, 1] too: one element, where every operand is its element 0
  const cols = r.pick([1, 3, 4, 5, 7, 8, 13, 33]);
  const n = rows * cols;
  const value = () => (tame ? 0.5 + 1.5 * r.next() : r.next() < 0.15 ? r.pick(SPECIAL) : Math.fround((r.next() - 0.5) * 8));
  const nIn = 1 + r.int(4);
  const inputs: TensorInput[] = [];
  const ins: (HostArray | null)[] = [];
  const layouts: Layout[] = [];
  for (let i = 0; i < nIn; i++) {
    const layout: Layout = i === 0 ? 'full' : r.pick(['full', 'row', 'col', 'scalar'] as const);
    const dtype: DType = !tame && i > 0 && r.next() < 0.25 ? 'bool' : 'float32';
    const len = layout === 'full' ? n : layout === 'row' ? rows : layout === 'col' ? cols : 1;
    const data = dtype === 'bool' ? Uint8Array.from({ length: len }, () => r.int(2)) : Float32Array.from({ length: len }, value);
    inputs.push(layout === 'full' ? { dtype, access: 'direct' } : { dtype, access: 'strided', strides: stridesOf(layout, cols) });
    ins.push(data);
    layouts.push(layout);
  }
  const nSc = r.int(3);
  const sc = Array.from({ length: nSc }, () => Math.fround(tame ? 0.5 + r.next() : (r.next() - 0.5) * 4));
  // an in-place output 0 half the time: its old value is an input
  const inPlace = r.next() < 0.5;
  const oldOut = Float32Array.from({ length: n }, value);
  if (inPlace) {
    inputs.push({ dtype: 'float32', access: 'alias', aliasOf: 0 });
    ins.push(null);
    layouts.push('full');
  }
  const refs: Ref[] = [...inputs.map((_, i): Ref => ({ kind: 'input', index: i })), ...sc.map((_, i): Ref => ({ kind: 'scalar', index: i }))];
  const nodes: ExprNode[] = [];
  const nNodes = 1 + r.int(10);
  const tameOps = ['add', 'mul', 'div', 'sqrt', 'abs', 'relu', 'lt', 'ge', 'where', 'clamp', 'pow'];
  for (let j = 0; j < nNodes; j++) {
    const arg = () => (j > 0 && r.next() < 0.6 ? ({ kind: 'node', index: j - 1 - r.int(Math.min(j, 3)) } as Ref) : r.pick(refs));
    const op = tame ? r.pick(tameOps) : r.pick([...UNARY, ...BINARY, ...BINARY, 'where', 'clamp', 'pow', 'cast', 'full']);
    let node: ExprNode;
    if ((UNARY as readonly string[]).includes(op)) node = { op, args: [arg()], attrs: {} };
    else if ((BINARY as readonly string[]).includes(op)) node = { op, args: [arg(), arg()], attrs: {} };
    else if (op === 'where') node = { op, args: [arg(), arg(), arg()], attrs: {} };
    else if (op === 'clamp') node = { op, args: [arg()], attrs: r.next() < 0.5 ? { min: -0.5, max: null } : { min: tame ? 0.7 : -1, max: tame ? 1.5 : 0.25 } };
    else if (op === 'pow') node = { op, args: [arg()], attrs: { exponent: r.pick([0, 1, 2, 0.5]) } };
    else if (op === 'cast') node = { op, args: [arg()], attrs: { dtype: r.pick(['float32', 'bool']) } };
    else node = { op: 'full', args: [], attrs: { value: r.pick([0.1, -2, 7]) } };
    nodes.push(node);
  }
  const nOut = 1 + r.int(3);
  const outputs = Array.from({ length: nOut }, (_, j) => ({
    ref: { kind: 'node', index: nodes.length - 1 - r.int(Math.min(nodes.length, 3)) } as Ref,
    dtype: (j > 0 && !tame && r.next() < 0.3 ? 'bool' : 'float32') as DType,
  }));
  const outs = outputs.map((o, j) => (o.dtype === 'bool' ? new Uint8Array(n) : j === 0 ? Float32Array.from(oldOut) : new Float32Array(n)));
  const body: ElementwiseBody = { kind: 'elementwise', shape: [rows, cols], inputs, scalars: sc.length, nodes, outputs };
  return { body, ins, outs, sc, layouts, rows, cols };
}

const cloneOuts = (outs: HostArray[]) => outs.map((o) => o.slice());

/** The registry's formulas in JavaScript, every node rounded to float32 (as an eager op stores it), scalars as float32. */
function reference(c: Case): HostArray[] {
  const { body, rows, cols } = c;
  const outs = cloneOuts(c.outs);
  const old = Float32Array.from(c.outs[0]!);
  const fns = body.nodes.map((n) => {
    const names = n.args.map((_, i) => `a${i}`);
    return new Function(...names, `return ${getOp(n.op).formula!(jsLang, names, n.attrs)};`) as (...a: number[]) => number;
  });
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const e = i * cols + j;
      const input = (k: number) => {
        const t = body.inputs[k]!;
        if (t.access === 'alias') return old[e]!;
        const at = c.layouts[k] === 'full' ? e : c.layouts[k] === 'row' ? i : c.layouts[k] === 'col' ? j : 0;
        return c.ins[k]![at]!;
      };
      const vals: number[] = [];
      const get = (r: Ref) => (r.kind === 'input' ? input(r.index) : r.kind === 'scalar' ? Math.fround(c.sc[r.index]!) : vals[(r as { index: number }).index]!);
      body.nodes.forEach((n, q) => vals.push(Math.fround(fns[q]!(...n.args.map(get)))));
      body.outputs.forEach((o, q) => {
        const v = get(o.ref);
        outs[q]![e] = o.dtype === 'bool' ? (v !== 0 ? 1 : 0) : v;
      });
    }
  }
  return outs;
}

/** The generated JavaScript loop of the cpu target over the same arrays. */
function jsLoop(c: Case): HostArray[] {
  const outs = cloneOuts(c.outs);
  const src = elementwiseJs(c.body, c.body.shape, c.body.inputs.map((t) => (t.access === 'strided' ? t.strides! : null)));
  compileJs(src)(c.ins.map((x) => x ?? (null as unknown as HostArray)), outs, c.sc);
  return outs;
}

function wasm(c: Case): HostArray[] {
  const k = simdKernelOf(c.body);
  expect(k, JSON.stringify(c.body.nodes.map((n) => n.op))).not.toBeNull();
  const outs = cloneOuts(c.outs);
  expect(runSimdKernel(k!, c.ins, outs, c.sc)).toBe(true);
  return outs;
}

/** Bit-for-bit equality, any NaN equal to any NaN (Wasm does not fix NaN payloads). */
function sameBits(got: HostArray, want: HostArray): string | null {
  for (let i = 0; i < want.length; i++) {
    const a = got[i]!, b = want[i]!;
    if (Number.isNaN(a) && Number.isNaN(b)) continue;
    if (!Object.is(a, b)) return `element ${i}: got ${a}, want ${b}`;
  }
  return null;
}

describe.skipIf(!hasSimd)('Wasm SIMD expression kernels', () => {
  it('equal the formulas rounded to float32 at every node, bit for bit, on 400 random trees (NaN, inf, -0, bool, broadcasts, in place, odd lengths)', () => {
    let layouts = new Set<string>();
    for (let seed = 1; seed <= 400; seed++) {
      const c = randomCase(seed);
      const got = wasm(c);
      const want = reference(c);
      got.forEach((g, q) => expect(sameBits(g, want[q]!), `seed ${seed} output ${q}: ${c.body.nodes.map((n) => n.op).join(' ')}`).toBeNull());
      layouts = new Set([...layouts, ...c.layouts, ...c.body.outputs.map((o) => `out ${o.dtype}`), ...c.body.inputs.map((t) => `${t.access} ${t.dtype}`)]);
    }
    for (const l of ['full', 'row', 'col', 'scalar', 'out bool', 'out float32', 'alias float32', 'direct bool', 'strided bool']) expect(layouts).toContain(l);
  });

  it('agree with the generated JavaScript loop bit for bit where it rounds once per op (single-op kernels over NaN, inf, -0)', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const c = randomCase(1000 + seed);
      c.body.nodes = c.body.nodes.slice(0, 1);
      c.body.outputs = [{ ref: { kind: 'node', index: 0 }, dtype: c.body.outputs[0]!.dtype }];
      c.outs = c.outs.slice(0, 1);
      // scalars the JavaScript loop reads as they are: float32 numbers here, so both see the same
      const got = wasm(c);
      const want = jsLoop(c);
      expect(sameBits(got[0]!, want[0]!), `seed ${seed}: ${c.body.nodes[0]!.op} ${JSON.stringify(c.body.nodes[0]!.attrs)}`).toBeNull();
    }
  });

  it('agree with the generated JavaScript loop within float32 rounding on deeper trees', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const c = randomCase(5000 + seed, { ops: 'tame' });
      const got = wasm(c);
      const want = jsLoop(c);
      got.forEach((g, q) => {
        for (let i = 0; i < g.length; i++) {
          const a = g[i]!, b = want[q]![i]!;
          if (Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b))) continue;
          expect(Math.abs(a - b) / Math.abs(b), `seed ${seed} output ${q} element ${i}: ${a} vs ${b}; ${c.body.nodes.map((n) => n.op).join(' ')}`).toBeLessThanOrEqual(2e-6);
        }
      });
    }
  });

  it('leave what float32 does not define exactly to the JavaScript loop, and check scalars at run time', () => {
    const base = randomCase(7);
    const withOp = (op: string, attrs = {}) => ({ ...base.body, nodes: [{ op, args: [{ kind: 'input', index: 0 } as Ref], attrs }], outputs: [{ ref: { kind: 'node', index: 0 } as Ref, dtype: 'float32' as DType }] });
    for (const op of ['exp', 'log', 'tanh', 'erf', 'sigmoid', 'sin']) expect(simdKernelOf(withOp(op)), op).toBeNull();
    expect(simdKernelOf(withOp('pow', { exponent: 3 }))).toBeNull();
    expect(simdKernelOf(withOp('cast', { dtype: 'int32' }))).toBeNull();
    // a transposed operand is not one of the layouts
    expect(simdKernelOf({ ...withOp('neg'), shape: [3, 4], inputs: [{ dtype: 'float32', access: 'strided', strides: [1, 3] }] })).toBeNull();
    // int32 data stays in JavaScript
    expect(simdKernelOf({ ...withOp('neg'), inputs: [{ dtype: 'int32', access: 'direct' }] })).toBeNull();
    // x <= s with s not a float32 number: the kernel would compare with fround(s); the JavaScript loop runs
    const cmp: ElementwiseBody = {
      kind: 'elementwise', shape: [6], scalars: 1, inputs: [{ dtype: 'float32', access: 'direct' }],
      nodes: [{ op: 'le', args: [{ kind: 'input', index: 0 }, { kind: 'scalar', index: 0 }], attrs: {} }],
      outputs: [{ ref: { kind: 'node', index: 0 }, dtype: 'bool' }],
    };
    const k = simdKernelOf(cmp)!;
    expect(k.exactScalars).toEqual([0]);
    const out = new Uint8Array(6);
    expect(runSimdKernel(k, [Float32Array.of(0, Math.fround(0.1), 0.2, NaN, -1, 1)], [out], [0.1])).toBe(false);
    expect(runSimdKernel(k, [Float32Array.of(0, Math.fround(0.1), 0.2, NaN, -1, 1)], [out], [0.25])).toBe(true);
    expect([...out]).toEqual([1, 1, 1, 0, 1, 0]);
    // a scalar that overflows float32 would turn x * s into inf where the doubles stay finite
    const mul: ElementwiseBody = { ...cmp, nodes: [{ op: 'mul', args: [{ kind: 'input', index: 0 }, { kind: 'scalar', index: 0 }], attrs: {} }], outputs: [{ ref: { kind: 'node', index: 0 }, dtype: 'float32' }] };
    expect(runSimdKernel(simdKernelOf(mul)!, [new Float32Array(6)], [new Float32Array(6)], [1e39])).toBe(false);
  });
});

describe.skipIf(!hasSimd)('a compiled matmul epilogue on the cpu', () => {
  it('runs in Wasm where its compared scalars are float32 numbers, else as its JavaScript loop, equal to eager either way', () => {
    torch.manualSeed(1);
    const x = torch.randn(33, 17);
    const w = torch.randn(17, 29);
    const b = torch.randn(29);
    for (const [t, wasmRuns] of [[0.1, 0], [0.25, 1]] as const) {
      const f = (x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) => {
        const y = x.mm(w).add(b);
        return torch.where(y.gt(t), y.mul(0.3), y.sqrt()).add(y.le(t + 0.5));
      };
      const fast = torch.compile(f);
      const before = { ...simdKernelCounters };
      const got = fast(x, w, b).toArraySync();
      expect(simdKernelCounters.wasm - before.wasm, `threshold ${t}`).toBe(wasmRuns);
      expect(simdKernelCounters.fallback - before.fallback, `threshold ${t}`).toBe(1 - wasmRuns);
      const want = f(x, w, b).toArraySync();
      for (let i = 0; i < want.length; i++) {
        if (Number.isNaN(want[i]!)) expect(got[i], `element ${i}`).toBeNaN();
        else expect(Math.abs(got[i]! - want[i]!), `element ${i}`).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(want[i]!)));
      }
    }
  });
});

describe.skipIf(!hasSimd)('a compiled elementwise kernel on the cpu', () => {
  it('of 1024 or more contiguous elements runs in Wasm (with a row broadcast over it too); one with exp, a small one or one that only copies stays JavaScript; all equal eager', () => {
    torch.manualSeed(2);
    type F = (a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) => torch.Tensor;
    const cases: [string, number[], F, number][] = [
      ['mul add relu over [64, 33]', [64, 33], (a, b) => a.mul(b).add(1).relu(), 1],
      ['where over a broadcast row', [40, 37], (a, b, c) => torch.where(a.gt(0), a.div(b.abs().add(0.5)), c.neg()), 1],
      ['exp', [64, 33], (a, b) => a.exp().mul(b), 0],
      ['small', [7, 9], (a, b) => a.mul(b).add(1).relu(), 0],
      ['only copies', [64, 33], (a) => a.clone(), 0],
    ];
    for (const [what, shape, f, wasmRuns] of cases) {
      const a = torch.randn(shape);
      const b = torch.randn(shape);
      const c = torch.randn(shape[1]!);
      const fast = torch.compile(f);
      const before = simdKernelCounters.wasm;
      const got = fast(a, b, c).toArraySync();
      expect(simdKernelCounters.wasm - before, what).toBe(wasmRuns);
      const d = relDiff(got, f(a, b, c).toArraySync());
      expect(d.rel, `${what}: ${d.detail}`).toBeLessThanOrEqual(1e-6);
    }
  });
});

describe.skipIf(!hasSimd)('the compiled seed Adam step on the cpu runs its epilogues in Wasm', () => {
  afterEach(() => {
    delete process.env.WGTORCH_WASM_EPILOGUE;
  });

  const seedStep = () => seedAdamStep(0);

  const planOf = (fn: { graphs(): { plans: { forward: unknown } }[] }) => fn.graphs()[0]!.plans.forward as CpuPlan;

  it('the weight gradient matmul carries the Adam update as a Wasm SIMD epilogue, and 8 compiled steps equal eager cpu', async () => {
    const eager = seedStep();
    const comp = seedStep();
    const fast = torch.compile(comp.step);
    const before = { ...simdKernelCounters };
    for (let i = 0; i < 8; i++) {
      const le = await eager.step().item();
      const lc = await fast().item();
      expect(Math.abs(lc - le) / Math.abs(le), `step ${i}`).toBeLessThanOrEqual(1e-5);
    }
    eager.model.parameters().forEach((p, i) => {
      const d = relDiff(comp.model.parameters()[i]!.toArraySync(), p.toArraySync());
      expect(d.rel, `parameter ${i}: ${d.detail}`).toBeLessThanOrEqual(1e-5);
    });
    const plan = planOf(fast as never);
    const adam = plan.kernels.filter((k) => k.steps.some((s) => s.kind === 'matmul' && s.epilogue?.js.simd.nodes.some((n) => n.op === 'sqrt')));
    // both weights' updates (the bias updates ride along as operand reductions, in JavaScript)
    expect(adam.map((k) => k.name)).toHaveLength(2);
    for (const k of adam) expect(k.source).toContain('then its epilogue in the Wasm memory');
    const epilogues = plan.kernels.flatMap((k) => k.steps.filter((s) => s.kind === 'matmul' && s.epilogue)).length;
    expect(simdKernelCounters.wasm - before.wasm).toBe(8 * epilogues);
    expect(simdKernelCounters.fallback - before.fallback).toBe(0);
  });

  it('WGTORCH_WASM_EPILOGUE=0 keeps every epilogue a JavaScript loop, with the same training within float32 rounding', async () => {
    const on = seedStep();
    const off = seedStep();
    const fastOn = torch.compile(on.step);
    await fastOn().item();
    process.env.WGTORCH_WASM_EPILOGUE = '0';
    const fastOff = torch.compile(off.step);
    await fastOff().item();
    delete process.env.WGTORCH_WASM_EPILOGUE;
    const before = simdKernelCounters.wasm;
    await fastOff().item();
    expect(simdKernelCounters.wasm).toBe(before);
    await fastOn().item();
    expect(planOf(fastOff as never).kernels.some((k) => k.steps.some((s) => (s.kind === 'matmul' && s.epilogue) || (s.kind === 'js' && s.simd)))).toBe(false);
    for (let i = 0; i < 4; i++) {
      const a = await fastOn().item();
      const b = await fastOff().item();
      expect(Math.abs(a - b) / Math.abs(b)).toBeLessThanOrEqual(1e-5);
    }
  });
});

/** The seed's two-layer net with an Adam step on one batch (eager; a test compiles `step` itself). */
function seedAdamStep(seed: number) {
  torch.manualSeed(seed);
  const { N, D_in, H, D_out } = SEED;
  const x = torch.randn(N, D_in);
  const y = torch.randn(N, D_out);
  const model = new TwoLayerNet(D_in, H, D_out);
  const lossFn = new torch.nn.MSELoss({ reduction: 'sum' });
  const opt = new torch.optim.Adam(model.parameters(), { lr: 1e-3 });
  return { x, model, opt, step: () => { const l = lossFn(model(x), y); opt.zeroGrad(); l.backward(); opt.step(); return l; } };
}

describe.skipIf(!hasSimd || !getEngine()?.memoryLimits.shared)('tensors resident in the Wasm memory', () => {
  it('the compiled seed Adam step keeps weights and moments in the Wasm memory (same storages), updated in place with no copy, equal to eager', async () => {
    const eager = () => seedAdamStep(0);
    const e = eager();
    const c = eager();
    const fast = torch.compile(c.step);
    const storages = c.model.parameters().map((p) => p._storage);
    for (let i = 0; i < 6; i++) {
      const le = await e.step().item();
      const lc = await fast().item();
      expect(Math.abs(lc - le) / Math.abs(le), `step ${i}`).toBeLessThanOrEqual(1e-5);
    }
    const weights = c.model.parameters().filter((p) => p.dim() === 2);
    expect(weights).toHaveLength(2);
    for (const w of weights) {
      expect(residentAddress((w._storage as CpuStorage).data)).toBeGreaterThanOrEqual(0);
      const state = c.opt.state.get(w) as Record<string, torch.Tensor>;
      const moments = Object.values(state).filter((t) => t instanceof torch.Tensor && t.numel() === w.numel());
      expect(moments).toHaveLength(2);
      for (const m of moments) expect(residentAddress((m._storage as CpuStorage).data)).toBeGreaterThanOrEqual(0);
      // what users read is an ordinary array
      expect(w.toArraySync().buffer).toBeInstanceOf(ArrayBuffer);
    }
    c.model.parameters().forEach((p, i) => {
      expect(p._storage).toBe(storages[i]);
      const d = relDiff(p.toArraySync(), e.model.parameters()[i]!.toArraySync());
      expect(d.rel, `parameter ${i}: ${d.detail}`).toBeLessThanOrEqual(1e-5);
    });
    // a resident tensor goes to the GPU and into a file like any other
    if (await torch.webgpu.isAvailable()) expect(sameBits(await weights[0]!.to('webgpu').toArray(), weights[0]!.toArraySync())).toBeNull();
    const saved = torch.load(torch.save(Object.fromEntries(weights.map((w, i) => [`w${i}`, w]))) as Uint8Array);
    expect(sameBits(saved.w1!.toArraySync(), weights[1]!.toArraySync())).toBeNull();
    // an eager step on the same tensors continues the run
    await e.step().item();
    await c.step().item();
    c.model.parameters().forEach((p, i) => expect(relDiff(p.toArraySync(), e.model.parameters()[i]!.toArraySync()).rel).toBeLessThanOrEqual(1e-5));
  });

  it('the batch x that the forward and the weight-gradient products both read is copied into the Wasm memory once per call, and a changed x is seen by the next call', async () => {
    const make = () => seedAdamStep(1);
    const e = make();
    const c = make();
    const fast = torch.compile(c.step);
    for (let i = 0; i < 6; i++) {
      if (i === 3) {
        // the caller changes x between calls: the next call copies the new values
        e.x.mul_(-0.5);
        c.x.mul_(-0.5);
      }
      const before = stagingCounters.copies;
      const le = await e.step().item();
      const lc = await fast().item();
      expect(Math.abs(lc - le) / Math.abs(le), `step ${i}`).toBeLessThanOrEqual(1e-5);
      if (i > 0) expect(stagingCounters.copies - before, `step ${i}: copies of x`).toBe(1);
    }
    const plan = fast.graphs()[0]!.plans.forward as unknown as CpuPlan;
    expect(plan.stagedInputs.size).toBe(1);
    c.model.parameters().forEach((p, i) => expect(relDiff(p.toArraySync(), e.model.parameters()[i]!.toArraySync()).rel, `parameter ${i}`).toBeLessThanOrEqual(1e-5));
  });

  it("a resident tensor survives later products' scratch and the memory growing, and its block is reused once freed", () => {
    const eng = getEngine()!;
    const t = torch.randn(1000, 37);
    const want = Float32Array.from(t.toArraySync());
    expect(makeResident(t._storage as CpuStorage)).toBe(true);
    const view = (t._storage as CpuStorage).data as Float32Array;
    const at = residentAddress(view);
    expect(at).toBeGreaterThanOrEqual(0);
    expect(view.buffer).not.toBeInstanceOf(ArrayBuffer);
    // a product whose scratch is far larger than the memory so far: the memory grows
    const pages = eng.memory.buffer.byteLength;
    const M = 700, K = 900, N = 800;
    const a = Float32Array.from({ length: M * K }, (_, i) => (i % 7) - 3);
    const b = Float32Array.from({ length: K * N }, (_, i) => (i % 5) - 2);
    const out = new Float32Array(M * N);
    matmulF32(a, 0, false, b, 0, false, out, 0, M, K, N);
    expect(eng.memory.buffer.byteLength).toBeGreaterThan(pages);
    expect(sameBits(view, want)).toBeNull();
    expect(sameBits(t.toArraySync(), want)).toBeNull();
    // blocks: a freed one is reused, and freeing the top gives it back to the scratch
    // (blocks of tensors collected meanwhile may free holes and lower the top: hence <=)
    const scratchBefore = eng.reserve(64)!;
    const b1 = eng.allocResident(4096)!;
    const b2 = eng.allocResident(4096)!;
    expect(b2).not.toBe(b1);
    expect(eng.reserve(64)! + 64).toBeGreaterThan(Math.max(b1, b2) + 4096);
    eng.freeResident(b1);
    // first fit: b1's hole, or a lower one
    const b3 = eng.allocResident(1000)!;
    expect(b3).toBeLessThanOrEqual(b1);
    eng.freeResident(b3);
    eng.freeResident(b2);
    expect(eng.reserve(64)).toBeLessThanOrEqual(scratchBefore);
    expect(sameBits(view, want)).toBeNull();
  });
});
