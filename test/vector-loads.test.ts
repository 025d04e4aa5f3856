/**
 * vec4 kernels on WebGPU (passes/vector-loads.ts; codegen-wgsl/elementwise-vec4.ts,
 * reduce-vec4.ts, render-row.ts): elementwise kernels, column reductions and row kernels that
 * read four consecutive elements as one vec4. Which kernels take it is kernel IR data; every
 * result must equal eager and the scalar mapping (WGTORCH_VEC4=0) on the edges: element
 * counts and rows that are not multiples of 4 (scalar), broadcasts inside a group of four
 * (one value for the group), a single row, empty tensors, partly empty workgroups, in-place
 * updates, bool outputs, NaN and infinities.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { partsOf, type ElementwiseBody, type Kernel, type ReduceBody, type RowBody } from '../src/passes/kernel-ir.ts';
import { elementwiseVectorizes, groupRead, reduceVectorizes, rowVectorizes } from '../src/passes/vector-loads.ts';
import { renderedBody } from '../src/codegen-wgsl/render.ts';
import { webgpuAvailable } from './helpers/devices.ts';
import { gptBatch, gptStep, makeGpt, GPT_SMALL } from '../bench/models.ts';

type T = torch.Tensor;
const F = torch.nn.functional;

const values = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => 3 * Math.sin(0.37 * (i + 1) * (1 + 0.1 * seed) + seed));

const ew = (shape: number[], inputs: ElementwiseBody['inputs'], dtype: 'float32' | 'int32' = 'float32'): ElementwiseBody => ({
  kind: 'elementwise',
  shape,
  inputs,
  scalars: 0,
  nodes: [{ op: 'add', args: [{ kind: 'input', index: 0 }, { kind: 'input', index: inputs.length - 1 }], attrs: {}, dtype }],
  outputs: [{ ref: { kind: 'node', index: 0 }, dtype }],
});

describe('which kernels read vec4 (kernel IR data)', () => {
  it('a group of four is read as one vec4 (innermost stride 1, others multiples of 4), as one value (stride 0), or not at all', () => {
    expect(groupRead([8, 1], 1)).toBe('vec4');
    expect(groupRead([1, 0], 1)).toBe('splat');
    expect(groupRead([6, 1], 1)).toBeNull(); // rows of 6 floats: a row's first group is not 16-byte aligned
    expect(groupRead([1, 8], 1)).toBeNull(); // a transpose
  });
  it('elementwise: a multiple of 4 elements, float or bool, inputs direct, in place, or strided in whole groups', () => {
    const d = { dtype: 'float32' as const, access: 'direct' as const };
    expect(elementwiseVectorizes(ew([3, 4], [d, d]))).toBe(true);
    expect(elementwiseVectorizes(ew([15], [d, d]))).toBe(false);
    expect(elementwiseVectorizes(ew([0, 4], [d, d]))).toBe(false);
    expect(elementwiseVectorizes(ew([4, 3], [d, { dtype: 'float32', access: 'strided', strides: [0, 1] }]))).toBe(false); // rows of 3
    expect(elementwiseVectorizes(ew([3, 8], [d, { dtype: 'float32', access: 'strided', strides: [0, 1] }]))).toBe(true); // a bias
    expect(elementwiseVectorizes(ew([3, 8], [d, { dtype: 'float32', access: 'strided', strides: [1, 0] }]))).toBe(true); // one per row
    expect(elementwiseVectorizes(ew([8, 8], [d, { dtype: 'float32', access: 'strided', strides: [1, 8] }]))).toBe(false); // a transpose
    expect(elementwiseVectorizes(ew([4], [{ dtype: 'int32', access: 'direct' }, { dtype: 'int32', access: 'direct' }], 'int32'))).toBe(false);
  });
  it('reductions: a sum-like fold over a contiguous innermost kept dim (a column sum); not max, not rows', () => {
    const col = (kept: number, strides: number[], combine: ReduceBody['combine'] = 'sum'): ReduceBody => ({
      kind: 'reduce', combine, kept: [kept], reduced: [5], inputs: [{ dtype: 'float32', access: 'strided', strides }], scalars: 0,
      prologue: [], value: { kind: 'input', index: 0 }, epilogue: [], outputs: [{ ref: { kind: 'acc' }, dtype: 'float32' }],
    });
    expect(reduceVectorizes(col(8, [1, 8]))).toBe(true);
    expect(reduceVectorizes(col(8, [1, 8], 'prod'))).toBe(true);
    expect(reduceVectorizes(col(6, [1, 6]))).toBe(false);
    expect(reduceVectorizes(col(8, [1, 8], 'max'))).toBe(false);
    expect(reduceVectorizes(col(8, [5, 1]))).toBe(false); // sum over rows
  });
  it('row kernels: rows a multiple of 4 long, contiguous; no recomputed arange; with totals, four consecutive rows (columns of [N, C])', () => {
    const row = (R: number, strides: number[], extra: Partial<RowBody> = {}): RowBody => ({
      kind: 'row', kept: [3], reduced: [R], inputs: [{ dtype: 'float32', access: 'strided', strides }], scalars: 0,
      steps: [{ kind: 'reduce', combine: 'sum', nodes: [], value: { kind: 'input', index: 0 } }], nodes: [],
      outputs: [{ ref: { kind: 'stat', index: 0 }, dtype: 'float32', per: 'row' }], ...extra,
    });
    expect(rowVectorizes(row(8, [8, 1]))).toBe(true);
    expect(rowVectorizes(row(6, [6, 1]))).toBe(false);
    expect(rowVectorizes(row(8, [1, 3]))).toBe(false);
    expect(rowVectorizes(row(8, [8, 1], { nodes: [{ op: 'add', args: [{ kind: 'index', strides: [0, 1], start: 0, step: 1 }, { kind: 'input', index: 0 }], attrs: {} }] }))).toBe(false);
    // totals: one workgroup walking whole rows groups four consecutive rows, so the innermost kept dim must be contiguous
    const total: RowBody['total'] = [{ kind: 'reduce', combine: 'sum', value: { kind: 'stat', index: 0 } }];
    expect(rowVectorizes(row(8, [1, 8], { kept: [8], total }))).toBe(true);
    expect(rowVectorizes(row(8, [8, 1], { kept: [8], total }))).toBe(false);
    expect(rowVectorizes(row(8, [1, 6], { kept: [6], total }))).toBe(false);
  });
});

const kernelsOf = (fast: { graphs(): torch.CompiledGraph[] }): Kernel[] => fast.graphs().flatMap((g) => g.kernels.flatMap((k) => partsOf(k.kernel)));
const vecKinds = (ks: Kernel[]) => ks.filter((k) => (k.body as { vec?: number }).vec === 4).map((k) => k.body.kind);

async function expectClose(got: T, want: T, tol: number, what: string) {
  expect(got.shape, `${what}: shape`).toEqual(want.shape);
  const g = await got.toArray();
  const w = await want.toArray();
  for (let i = 0; i < w.length; i++) {
    if (!Number.isFinite(w[i])) expect(Object.is(g[i], w[i]) || (Number.isNaN(g[i]) && Number.isNaN(w[i])), `${what} element ${i}: ${g[i]} vs ${w[i]}`).toBe(true);
    else expect(Math.abs(g[i] - w[i]), `${what} element ${i}: ${g[i]} vs ${w[i]}`).toBeLessThanOrEqual(tol * (1 + Math.abs(w[i])));
  }
}

/** fn compiled (vec4 where allowed) and compiled at WGTORCH_VEC4=0, both equal to eager; the vec4 kernels' kinds */
async function threeWays(fn: (...a: T[]) => T, args: T[], what: string, tol = 2e-5): Promise<string[]> {
  const want = fn(...args);
  delete process.env.WGTORCH_VEC4;
  const fast = torch.compile(fn);
  await expectClose(fast(...args), want, tol, `${what} (vec4)`);
  process.env.WGTORCH_VEC4 = '0';
  const plain = torch.compile(fn);
  await expectClose(plain(...args), want, tol, `${what} (scalar)`);
  expect(vecKinds(kernelsOf(plain)), `${what}: WGTORCH_VEC4=0 renders no vec4`).toEqual([]);
  delete process.env.WGTORCH_VEC4;
  return vecKinds(kernelsOf(fast));
}

const t = (shape: number[], seed: number) => torch.tensor(values(shape.reduce((p, d) => p * d, 1), seed), { shape, device: 'webgpu' });

describe.runIf(webgpuAvailable)('vec4 kernels on webgpu equal eager and the scalar mapping', () => {
  afterEach(() => {
    delete process.env.WGTORCH_VEC4;
    delete process.env.WGTORCH_ROW_LANES;
  });

  it('elementwise: a bias broadcast, one value per row, in groups and out of them; odd sizes, one row, empty; a transpose stays scalar', async () => {
    const gelu = (x: T, b: T) => F.gelu(x.add(b)).mul(x);
    expect(await threeWays(gelu, [t([6, 8], 1), t([8], 2)], 'gelu(x + b) [6, 8]')).toEqual(['elementwise']);
    expect(await threeWays(gelu, [t([1, 4], 1), t([4], 2)], 'gelu(x + b) [1, 4]')).toEqual(['elementwise']);
    // 8192 + 4 elements: more groups than one workgroup's two steps, the last workgroup partly empty
    expect(await threeWays(gelu, [t([2049, 4], 1), t([4], 2)], 'gelu(x + b) [2049, 4]')).toEqual(['elementwise']);
    expect(await threeWays(gelu, [t([3, 5], 1), t([5], 2)], 'gelu(x + b) [3, 5]')).toEqual([]);
    expect(await threeWays(gelu, [t([4, 3], 1), t([3], 2)], 'gelu(x + b) [4, 3]: rows of 3')).toEqual([]);
    expect(await threeWays((x: T, y: T) => x.mul(y).sub(y), [t([5, 8], 3), t([5, 1], 4)], 'x * y - y, y one per row')).toEqual(['elementwise']);
    expect(await threeWays((x: T, y: T) => x.t().add(y), [t([8, 8], 5), t([8, 8], 6)], 'x.t() + y')).toEqual([]);
    const e = await threeWays((x: T, y: T) => x.add(y).mul(2), [torch.zeros([0, 8], { device: 'webgpu' }), torch.zeros([0, 8], { device: 'webgpu' })], 'empty [0, 8]');
    expect(e).toEqual([]);
  }, 300_000);

  it('elementwise: bool outputs and inputs, NaN and infinities', async () => {
    const x = torch.tensor([1, NaN, Infinity, -Infinity, 0, -0, 2, 3], { shape: [2, 4], device: 'webgpu' });
    const y = t([2, 4], 7);
    const cmp = (a: T, b: T) => torch.where(a.gt(b), a.mul(b), b.exp());
    expect(await threeWays(cmp, [x, y], 'where(x > y, x * y, exp(y))')).toEqual(['elementwise']);
    const mask = (a: T, b: T) => a.gt(b);
    const m = torch.compile(mask)(x, y);
    expect(m.dtype).toBe('bool');
    expect(Array.from(await m.toArray())).toEqual(Array.from(await mask(x, y).toArray()));
  }, 300_000);

  it('an in-place update (an optimizer step) reads the old value in groups of four', async () => {
    for (const shape of [[16, 8], [5, 3]]) {
      const make = () => {
        torch.manualSeed(3);
        const p = torch.randn(shape, { device: 'webgpu', requiresGrad: true });
        return { p, opt: new torch.optim.Adam([p], { lr: 0.1 }) };
      };
      const xs = t(shape, 8);
      const step = (p: T, opt: torch.optim.Adam) => () => {
        const loss = p.mul(xs).sin().sum();
        opt.zeroGrad();
        loss.backward();
        opt.step();
        return loss;
      };
      const e = make();
      const k = make();
      const fast = torch.compile(step(k.p, k.opt));
      const eager = step(e.p, e.opt);
      for (let i = 0; i < 3; i++) {
        eager();
        fast();
      }
      await expectClose(k.p, e.p, 1e-5, `Adam on [${shape}]`);
      if (shape[1] === 8) expect(vecKinds(kernelsOf(fast))).toContain('elementwise');
    }
  }, 300_000);

  it('column sums (bias gradients): groups of four columns, odd widths, one row, no rows, a prologue and an epilogue', async () => {
    const colsum = (x: T) => x.sum(0);
    expect(await threeWays(colsum, [t([1024, 128], 1)], 'sum(0) [1024, 128]', 1e-5)).toEqual(['reduce']);
    expect(await threeWays(colsum, [t([1, 8], 1)], 'sum(0) [1, 8]')).toEqual(['reduce']);
    expect(await threeWays(colsum, [t([7, 6], 1)], 'sum(0) [7, 6]')).toEqual([]);
    expect(await threeWays(colsum, [torch.zeros([0, 8], { device: 'webgpu' })], 'sum(0) [0, 8]')).toEqual(['reduce']);
    // 64 * 4 + 4 columns: the second workgroup has one invocation's group
    expect(await threeWays(colsum, [t([3, 260], 1)], 'sum(0) [3, 260]')).toEqual(['reduce']);
    expect(await threeWays((x: T) => x.mul(x).sum([0, 1]).div(3), [t([3, 5, 8], 2)], '(x * x).sum([0, 1]) / 3 [3, 5, 8]')).toEqual(['reduce']);
    expect(await threeWays((x: T) => x.mean(0), [t([9, 12], 2)], 'mean(0) [9, 12]')).toEqual(['reduce']);
    expect(await threeWays((x: T) => x.amax(0), [t([9, 12], 2)], 'amax(0) stays scalar')).toEqual([]);
    const inf = torch.tensor([1, NaN, Infinity, 2, 3, 4, -Infinity, 5], { shape: [2, 4], device: 'webgpu' });
    expect(await threeWays(colsum, [inf], 'sum(0) with NaN and infinities')).toEqual(['reduce']);
  }, 300_000);

  it('row kernels: softmax, logSoftmax, layerNorm forward and backward, crossEntropy on rows of 4, 8, 64 (vec4) and 6 (scalar); one row; NaN rows', async () => {
    for (const [N, C] of [[70, 8], [1, 4], [70, 64], [70, 6]] as const) {
      const want = C % 4 === 0 ? ['row'] : [];
      const got = await threeWays((x: T) => x.softmax(-1), [t([N, C], 1)], `softmax [${N}, ${C}]`);
      expect(got.filter((k) => k === 'row'), `softmax [${N}, ${C}]`).toEqual(want);
      await threeWays((x: T) => x.logSoftmax(-1), [t([N, C], 2)], `logSoftmax [${N}, ${C}]`);
      // layerNorm backward: row kernels with element outputs and per-row inputs
      const grads = (x: T, w: T, b: T, W: T) => {
        const xs = x.detach().requiresGrad_();
        const ws = w.detach().requiresGrad_();
        const y = F.layerNorm(xs, [C], ws, b);
        y.mul(W).sum().backward();
        return torch.cat([xs.grad!.reshape(-1), ws.grad!]);
      };
      const args = [t([N, C], 3), t([C], 4).add(1), t([C], 5), t([N, C], 6)];
      const eager = grads(args[0]!, args[1]!, args[2]!, args[3]!);
      for (const flag of [undefined, '0']) {
        if (flag) process.env.WGTORCH_VEC4 = flag;
        else delete process.env.WGTORCH_VEC4;
        const fast = torch.compile((x: T, w: T, b: T, W: T) => {
          const y = F.layerNorm(x, [C], w, b);
          return y.mul(W).sum();
        });
        const x = args[0]!.detach().requiresGrad_();
        const w = args[1]!.detach().requiresGrad_();
        fast(x, w, args[2]!, args[3]!).backward();
        await expectClose(torch.cat([x.grad!.reshape(-1), w.grad!]), eager, 2e-5, `layerNorm backward [${N}, ${C}] (${flag ? 'scalar' : 'vec4'})`);
      }
      const tgt = torch.tensor(Int32Array.from({ length: N }, (_, i) => (i * 7) % C), { shape: [N], device: 'webgpu' });
      await threeWays((x: T) => F.crossEntropy(x, tgt), [t([N, C], 7)], `crossEntropy [${N}, ${C}]`, 1e-5);
    }
    const special = torch.tensor([1, NaN, 2, 3, Infinity, 0, 1, 2, -Infinity, -Infinity, -Infinity, -Infinity], { shape: [3, 4], device: 'webgpu' });
    for (const fn of [(x: T) => x.softmax(-1), (x: T) => x.logSoftmax(-1), (x: T) => x.sum(-1), (x: T) => x.argmax(-1), (x: T) => x.amax(-1)]) {
      await threeWays(fn, [special], `special rows: ${fn.toString()}`);
    }
  }, 600_000);

  // Linear -> LayerNorm -> Linear under AdamW and clipGradNorm_: the layerNorm's weight and
  // bias gradients are columns of [N, C], their squared norms totals of the same row kernel (the
  // first Linear's gradients come after them, so the clip factor is not one of its rows' values)
  it('row kernels with totals group four consecutive rows, AdamW\'s update reads its arena as vec4: a tiny model\'s whole step (layerNorm weight and bias gradients with clipGradNorm_) equals eager and the scalar mapping', async () => {
    // [3, 260]: rows 3 long, 65 groups of four for 64 invocations; [5, 6]: 6 rows, scalar
    for (const [N, C] of [[3, 260], [5, 6]] as const) {
      const run = async (mode: 'eager' | 'vec4' | 'scalar') => {
        if (mode === 'scalar') process.env.WGTORCH_VEC4 = '0';
        else delete process.env.WGTORCH_VEC4;
        torch.manualSeed(5);
        const lin0 = new torch.nn.Linear(5, C).to('webgpu');
        const ln = new torch.nn.LayerNorm(C).to('webgpu');
        const lin = new torch.nn.Linear(C, 3).to('webgpu');
        const params = [...lin0.parameters(), ...ln.parameters(), ...lin.parameters()];
        const opt = new torch.optim.AdamW(params, { lr: 0.1 });
        const x = t([N, 5], 9);
        const fn = () => {
          const loss = lin.forward(ln.forward(lin0.forward(x))).pow(2).mean();
          opt.zeroGrad();
          loss.backward();
          torch.nn.utils.clipGradNorm_(params, 0.5);
          opt.step();
          return loss;
        };
        const step = mode === 'eager' ? null : torch.compile(fn);
        const losses: number[] = [];
        for (let i = 0; i < 2; i++) losses.push(await (step ? step() : fn()).item());
        const values = await Promise.all(params.map((p) => p.toArray()));
        const totals = step ? kernelsOf(step).filter((k) => k.body.kind === 'row' && k.body.total) : [];
        // as rendered (render.ts): an arena's members are read in groups of four where its kernel is
        const arenas = step ? kernelsOf(step).filter((k) => k.arena).map((k) => ({ name: k.name, vec: (renderedBody(k) as ElementwiseBody).vec ?? 1 })) : [];
        return { losses, values, vec: totals.map((k) => (k.body as RowBody).vec ?? 1), arenas };
      };
      const e = await run('eager');
      const v = await run('vec4');
      const s = await run('scalar');
      expect(v.vec, `[${N}, ${C}]: the row kernels with totals`).toEqual([C % 4 === 0 ? 4 : 1]);
      expect(s.vec, `[${N}, ${C}]: WGTORCH_VEC4=0`).toEqual([1]);
      expect(v.arenas.some((k) => k.vec === 4), `[${N}, ${C}]: kernels with an arena ${JSON.stringify(v.arenas)}`).toBe(C % 4 === 0);
      expect(s.arenas.length && s.arenas.every((k) => k.vec === 1), `[${N}, ${C}]: WGTORCH_VEC4=0, kernels with an arena`).toBe(true);
      for (const [what, r] of [['vec4', v], ['scalar', s]] as const) {
        r.losses.forEach((l, i) => expect(Math.abs(l - e.losses[i]!), `[${N}, ${C}] ${what}: loss of step ${i}`).toBeLessThan(1e-5 * (1 + Math.abs(e.losses[i]!))));
        r.values.forEach((p, i) => {
          let worst = 0;
          for (let j = 0; j < p.length; j++) worst = Math.max(worst, Math.abs(p[j]! - e.values[i]![j]!) / (1 + Math.abs(e.values[i]![j]!)));
          expect(worst, `[${N}, ${C}] ${what}: parameter ${i}`).toBeLessThan(1e-5);
        });
      }
    }
  }, 120_000);

  // (minutes on lavapipe: with the slow webgpu parity records, WGTORCH_SLOW_TESTS=1)
  it.runIf(process.env.WGTORCH_SLOW_TESTS === '1')('row kernels with totals (one workgroup walking whole rows) group four consecutive rows: the example GPT step (layerNorm weight and bias gradients with clipGradNorm_) equals eager and the scalar mapping', async () => {
    const run = async (mode: 'eager' | 'vec4' | 'scalar') => {
      if (mode === 'scalar') process.env.WGTORCH_VEC4 = '0';
      else delete process.env.WGTORCH_VEC4;
      const m = makeGpt(GPT_SMALL, 'webgpu', 3);
      const { idx, targets } = gptBatch(GPT_SMALL, 'webgpu');
      const fn = () => gptStep(m.model, m.opt, idx, targets);
      const step = mode === 'eager' ? null : torch.compile(fn);
      const losses: number[] = [];
      for (let i = 0; i < 2; i++) losses.push(await (step ? step() : fn()).item());
      const params = await Promise.all(m.model.parameters().map((p) => p.toArray()));
      return { losses, params, kernels: step ? kernelsOf(step) : [] };
    };
    const e = await run('eager');
    const v = await run('vec4');
    const s = await run('scalar');
    const totals = v.kernels.filter((q) => q.body.kind === 'row' && q.body.total);
    expect(totals.some((q) => (q.body as RowBody).vec === 4), `total kernels: ${totals.map((q) => q.name).join(', ')}`).toBe(true);
    for (const [what, r] of [['vec4', v], ['scalar', s]] as const) {
      r.losses.forEach((l, i) => expect(Math.abs(l - e.losses[i]!), `${what} loss of step ${i}`).toBeLessThan(1e-4));
      r.params.forEach((p, i) => {
        let worst = 0;
        for (let j = 0; j < p.length; j++) worst = Math.max(worst, Math.abs(p[j]! - e.params[i]![j]!) / (1 + Math.abs(e.params[i]![j]!)));
        expect(worst, `${what} parameter ${i}`).toBeLessThan(1e-4);
      });
    }
  }, 600_000);

  it('row kernels with several lanes per row (WGTORCH_ROW_LANES=8): rows not a multiple of the rows per workgroup, groups striding by lanes', async () => {
    process.env.WGTORCH_ROW_LANES = '8';
    for (const C of [8, 36, 260]) {
      const got = await threeWays((x: T) => x.softmax(-1).mul(x), [t([13, C], 1)], `softmax(x) * x [13, ${C}] at 8 lanes`);
      expect(got).toContain('row');
      await threeWays((x: T) => F.layerNorm(x, [C]), [t([13, C], 2)], `layerNorm [13, ${C}] at 8 lanes`);
    }
  }, 600_000);
});
