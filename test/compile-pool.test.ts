/**
 * Pooling compiled (issue 12: pooling fused into its producer): maxPool2d is a max over the
 * columns of an im2col and the window's argmax, one row kernel (argmax a row step beside max)
 * that reads the pooled tensor through the pool's index map ([window-load]: the im2col is never
 * written); its gradient is one col2imAt kernel (g at each window's argmax, summed from the
 * input's side: no masks, no col2im). Without a gradient (noGrad, eval) a max or avg pool is one
 * row kernel with a lone reduction (fusion/window-rows.ts), and an elementwise producer read only
 * through its windows is recomputed there ([window-recompute]). Values, indices and gradients
 * equal eager on every device: ties and all -inf windows (the first maximum gets the whole
 * gradient, as PyTorch's max_pool2d), NaN windows, padding (-inf), overlapping windows, strides
 * other than the kernel size.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { partsOf, type Kernel } from '../src/passes/kernel-ir.ts';
import { testDevices } from './helpers/devices.ts';

const F = torch.nn.functional;
type T = torch.Tensor;
const kernelsOf = (f: { graphs(): torch.CompiledGraph[] }, part?: 'forward' | 'backward'): Kernel[] =>
  f.graphs().flatMap((g) => g.kernels.filter((k) => !part || k.part === part).flatMap((k) => partsOf(k.kernel)));
const argmaxRows = (ks: Kernel[]) => ks.filter((k) => k.body.kind === 'row' && k.body.steps.some((s) => s.kind === 'reduce' && s.combine === 'argmax'));

/** values on a coarse grid (many ties inside a window), with a NaN in one window */
function input(device: torch.Device, shape: number[], nan = true): T {
  torch.manualSeed(3);
  const a = torch.randn(shape).toArraySync().map((v) => Math.round(v * 2) / 2);
  if (nan) a[5] = NaN;
  return torch.tensor(a, { shape }).to(device);
}

async function expectSame(got: T, want: T, what: string) {
  const [g, w] = [await got.toArray(), await want.toArray()];
  expect(g.length, what).toBe(w.length);
  for (let i = 0; i < w.length; i++) {
    if (Number.isNaN(w[i])) expect(g[i], `${what}[${i}]`).toBeNaN();
    else expect(g[i], `${what}[${i}]`).toBeCloseTo(w[i], 5);
  }
}

describe.each(testDevices())('max pooling compiled on %s', (device) => {
  for (const [name, k, opts, out] of [
    ['2x2 stride 2', 2, {}, [3, 3]],
    ['3x3 stride 2 padding 1 (overlapping, padded)', 3, { stride: 2, padding: 1 }, [3, 3]],
    ['2x2 stride 1 (every element in up to four windows)', 2, { stride: 1 }, [5, 5]],
    ['[3, 2] stride [1, 2] padding [1, 0] (stride != kernel size, per dim)', [3, 2], { stride: [1, 2], padding: [1, 0] }, [6, 3]],
  ] as const) {
    it(`${name}: forward one row kernel (argmax and max), backward one col2imAt kernel; values and gradients equal eager`, async () => {
      const shape = [2, 3, 6, 6];
      const up = torch.randn([2, 3, ...out]).to(device);
      const pool = (x: T) => F.maxPool2d(x, k, opts);
      const run = async (compiled: boolean) => {
        const x = input(device, shape).requiresGrad_();
        const f = compiled ? torch.compile(pool) : pool;
        const y = f(x);
        y.mul(up).sum().backward();
        return { y, g: x.grad!, f };
      };
      const [e, c] = [await run(false), await run(true)];
      await expectSame(c.y, e.y, 'pooled');
      await expectSame(c.g, e.g, 'grad');
      // the inputs have ties and a NaN: the test means something only if they reach the output
      const ys = await e.y.toArray();
      expect(ys.some((v) => Number.isNaN(v))).toBe(true);
      const fwd = kernelsOf(c.f as never, 'forward');
      expect(argmaxRows(fwd), 'row kernels with an argmax step').toHaveLength(1);
      expect(fwd.filter((x) => x.body.kind === 'reduce' && x.body.combine === 'argmax'), 'argmax reduce kernels').toEqual([]);
      // [window-load]: the im2col is not written, the row kernel reads the input through the pool's index map
      expect(fwd.filter((x) => x.body.kind === 'index'), 'index kernels (im2col)').toEqual([]);
      const row = argmaxRows(fwd)[0]!;
      expect(row.body.kind === 'row' && row.body.inputs.filter((t) => t.access === 'window').length).toBe(1);
      // nothing besides it: the window positions (an arange of k*k) are recomputed from the element index
      expect(fwd.filter((x) => x !== row).map((x) => x.name)).toEqual([]);
      // the forward writes the pooled values and the argmax, no [rows, k*k] masks for the backward
      expect(row.body.kind === 'row' && row.body.outputs.length).toBe(2);
      // backward: g at each window's argmax, summed from the input's side: no col2im, no mask kernels
      const bwd = kernelsOf(c.f as never, 'backward');
      expect(bwd.map((x) => (x.body.kind === 'index' ? x.body.op : x.name))).toEqual(['col2imAt']);
    });
  }

  for (const [name, kind, k, opts] of [
    ['max 2x2 stride 2', 'max', 2, {}],
    ['max 3x3 stride 2 padding 1', 'max', 3, { stride: 2, padding: 1 }],
    ['max [3, 2] stride [1, 2] padding [1, 0]', 'max', [3, 2], { stride: [1, 2], padding: [1, 0] }],
    ['avg 2x2 padding 1 (padded zeros count)', 'avg', 2, { padding: 1 }],
  ] as const) {
    it(`${name} without a gradient (noGrad, eval): one row kernel reading the input through the pool's index map; equal to eager`, async () => {
      const x = input(device, [2, 3, 6, 6]);
      const pool = (a: T) => torch.noGrad(() => (kind === 'max' ? F.maxPool2d(a, k, opts) : F.avgPool2d(a, k, opts)));
      const f = torch.compile(pool);
      await expectSame(f(x), pool(x), 'pooled');
      const ks = kernelsOf(f as never);
      expect(ks.map((x) => x.body.kind), 'kernels').toEqual(['row']);
      expect(ks[0]!.body.kind === 'row' && ks[0]!.body.inputs.map((t) => t.access)).toEqual(['window']);
    });
  }

  it('[window-recompute]: a per-channel affine + ReLU read only by the pool is recomputed in its window loads (one kernel); not with padding, nor when returned', async () => {
    torch.manualSeed(11);
    // x permuted (a view that is no reshape of memory), a per-channel scale and shift broadcast over the pixels
    const x = torch.randn([2, 6, 6, 3]).to(device);
    const s = torch.randn([1, 3, 1, 1]).to(device);
    const b = torch.randn([3, 1, 1]).to(device);
    const act = (a: T) => a.permute([0, 3, 1, 2]).mul(s).add(b).relu();
    const cases: [string, (a: T) => T | T[], string[]][] = [
      ['stride 2', (a) => F.maxPool2d(act(a), 2), ['row']],
      ['overlapping [3, 2] windows at stride 1', (a) => F.maxPool2d(act(a), [3, 2], { stride: 1 }), ['row']],
      ['avg', (a) => F.avgPool2d(act(a), 2), ['row']],
      ['padding 1: written, then loaded', (a) => F.maxPool2d(act(a), 2, { padding: 1 }), ['elementwise', 'row']],
      ['the activation returned too', (a) => { const y = act(a); return [F.maxPool2d(y, 2), y]; }, ['elementwise', 'row']],
    ];
    for (const [what, fn, kinds] of cases) {
      const run = (a: T) => torch.noGrad(() => fn(a));
      const f = torch.compile(run);
      const [got, want] = [[f(x)].flat(), [run(x)].flat()];
      for (let i = 0; i < want.length; i++) await expectSame(got[i]!, want[i]!, `${what} [${i}]`);
      const ks = kernelsOf(f as never);
      expect(ks.map((k) => k.body.kind).sort(), `${what}: kernels`).toEqual(kinds);
      const row = ks.find((k) => k.body.kind === 'row')!;
      if (kinds.length === 1) expect(row.body.kind === 'row' && row.body.inputs.every((t) => t.access === 'window' && t.window!.planes), `${what}: every input read through the window`).toBe(true);
    }
  });

  it('ties and all -inf windows: the gradient goes whole to the first maximum of each window (PyTorch\'s max_pool2d), eager and compiled', async () => {
    // 2x2 windows at stride 1 over a constant 3x3 plane: each window's first maximum is its top-left element;
    // the second plane is -inf everywhere, so every window ties at -inf (PyTorch: index 0 gets all of g)
    const x = torch.tensor([...Array(9).fill(0.5), ...Array(9).fill(-Infinity)], { shape: [1, 2, 3, 3] }).to(device);
    const g = torch.tensor([1, 2, 3, 4, 5, 6, 7, 8], { shape: [1, 2, 2, 2] }).to(device);
    const want = [1, 2, 0, 3, 4, 0, 0, 0, 0, 5, 6, 0, 7, 8, 0, 0, 0, 0];
    for (const compiled of [false, true]) {
      const xs = x.detach().requiresGrad_();
      const pool = (a: T) => F.maxPool2d(a, 2, { stride: 1 });
      const y = (compiled ? torch.compile(pool) : pool)(xs);
      expect([...(await y.toArray())], `values (${compiled ? 'compiled' : 'eager'})`).toEqual([0.5, 0.5, 0.5, 0.5, -Infinity, -Infinity, -Infinity, -Infinity]);
      y.backward(g);
      expect([...(await xs.grad!.toArray())], `gradient (${compiled ? 'compiled' : 'eager'})`).toEqual(want);
    }
  });

  it.each([[5, 7], [3, 300]])('max(dim) with indices compiled over [%i, %i]: values and indices equal eager (ties: the first index; NaN wins)', async (rows, cols) => {
    const x = input(device, [rows, cols]).requiresGrad_();
    const f = torch.compile((a: T) => {
      const r = a.max(1);
      return [r.values.mul(2), r.indices];
    });
    const [v, i] = f(x) as unknown as T[];
    const r = x.max(1);
    await expectSame(v, r.values.mul(2), 'values');
    expect([...(await i.toArray())]).toEqual([...(await r.indices.toArray())]);
    expect(i.dtype).toBe('int32');
    expect(argmaxRows(kernelsOf(f as never))).toHaveLength(1);
  });
});
