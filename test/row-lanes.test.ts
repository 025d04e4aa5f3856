/**
 * The lane mapping of row kernels and reductions (kernel IR `lanes`, passes/row-lanes.ts,
 * codegen-wgsl/lanes.ts): how many of a workgroup's 64 invocations share a row. Short rows run
 * one row per invocation (no workgroup memory, no barrier), long rows a few lanes or the
 * whole-workgroup tree. Every mapping must give eager's numbers: rows at the edges of the lane
 * spans (1, 31, 32, 33, 64, 65, 257, 4096), row counts that leave the last workgroup partly
 * empty, NaN and infinities, forward and backward; and the kernels still pack.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { partsOf, printKernel, type Kernel } from '../src/passes/kernel-ir.ts';
import { LANE_SPAN, rowLanes } from '../src/passes/row-lanes.ts';
import { testDevices, webgpuAvailable } from './helpers/devices.ts';

type T = torch.Tensor;

/** deterministic values with a spread that exercises exp (no two rows alike) */
function values(n: number, seed: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => 3 * Math.sin(0.37 * (i + 1) * (1 + 0.1 * seed) + seed));
}

/** equal within tol relative to 1 + |want|, with NaN where eager has NaN and the same infinities */
async function expectSame(got: T | null, want: T | null, tol: number, what: string) {
  expect(got, `${what}: missing`).not.toBeNull();
  expect(got!.shape, `${what}: shape`).toEqual(want!.shape);
  const g = await got!.toArray();
  const w = await want!.toArray();
  for (let i = 0; i < w.length; i++) {
    if (Number.isNaN(w[i]) || !Number.isFinite(w[i])) {
      expect(Object.is(g[i], w[i]) || (Number.isNaN(g[i]) && Number.isNaN(w[i])), `${what} element ${i}: ${g[i]} vs ${w[i]}`).toBe(true);
    } else expect(Math.abs(g[i] - w[i]), `${what} element ${i}: ${g[i]} vs ${w[i]}`).toBeLessThanOrEqual(tol * (1 + Math.abs(w[i])));
  }
}

const kernelsOf = (fast: { graphs(): torch.CompiledGraph[] }): Kernel[] => fast.graphs().flatMap((g) => g.kernels.flatMap((k) => partsOf(k.kernel)));
const lanesOf = (ks: Kernel[]) => ks.filter((k) => k.body.kind === 'row' || k.body.kind === 'reduce').map((k) => (k.body as { lanes?: number }).lanes);

const LENGTHS = [1, 31, 32, 33, 64, 65, 257, 4096];
/** rows: not a multiple of any rows-per-workgroup count, so the last workgroup is partly empty */
const rowsFor = (C: number) => (C >= 4096 ? 3 : 70);

const F = torch.nn.functional;
const ROW_FNS: { name: string; fn: (x: T, w: T, b: T) => T; affine?: boolean }[] = [
  { name: 'softmax', fn: (x) => x.softmax(-1) },
  { name: 'logSoftmax', fn: (x) => x.logSoftmax(-1) },
  { name: 'layerNorm', fn: (x, w, b) => F.layerNorm(x, [x.shape[1]], w, b), affine: true },
];

/** forward and backward of fn compiled against eager, on rows of C; returns the compiled kernels */
async function rowCase(device: torch.Device, c: (typeof ROW_FNS)[0], N: number, C: number, what: string): Promise<Kernel[]> {
  const make = () => ({
    x: torch.tensor(values(N * C, 1), { shape: [N, C], device, requiresGrad: true }),
    w: torch.tensor(values(C, 2).map((v) => 1 + 0.1 * v), { shape: [C], device, requiresGrad: true }),
    b: torch.tensor(values(C, 3).map((v) => 0.1 * v), { shape: [C], device, requiresGrad: true }),
  });
  const W = torch.tensor(values(N * C, 4), { shape: [N, C], device });
  const e = make();
  const ye = c.fn(e.x, e.w, e.b);
  ye.mul(W).sum().backward();
  const k = make();
  const fast = torch.compile(c.fn);
  const yk = fast(k.x, k.w, k.b);
  yk.backward(W);
  await expectSame(yk, ye, 2e-5, `${what}: output`);
  await expectSame(k.x.grad, e.x.grad, 2e-5, `${what}: grad x`);
  if (c.affine) {
    await expectSame(k.w.grad, e.w.grad, 2e-5, `${what}: grad weight`);
    await expectSame(k.b.grad, e.b.grad, 2e-5, `${what}: grad bias`);
  }
  return kernelsOf(fast);
}

async function crossEntropyCase(device: torch.Device, N: number, C: number, what: string): Promise<Kernel[]> {
  const tgt = torch.tensor(Int32Array.from({ length: N }, (_, i) => (i * 7) % C), { shape: [N], device });
  const fn = (x: T) => F.crossEntropy(x, tgt);
  const xe = torch.tensor(values(N * C, 5), { shape: [N, C], device, requiresGrad: true });
  const xk = torch.tensor(values(N * C, 5), { shape: [N, C], device, requiresGrad: true });
  const le = fn(xe);
  le.backward();
  const fast = torch.compile(fn);
  const lk = fast(xk);
  lk.backward();
  await expectSame(lk, le, 1e-5, `${what}: loss`);
  await expectSame(xk.grad, xe.grad, 1e-5, `${what}: grad`);
  return kernelsOf(fast);
}

/** rows of C: plain, a NaN, +inf, -inf, all -inf */
function specialRows(C: number): Float32Array {
  const v = values(5 * C, 6);
  v[C + Math.floor(C / 2)] = NaN;
  v[2 * C + C - 1] = Infinity;
  v[3 * C] = -Infinity;
  for (let j = 0; j < C; j++) v[4 * C + j] = -Infinity;
  return v;
}

type OneArg = { name: string; fn: (x: T) => T };
const softmaxOf: OneArg = { name: 'softmax', fn: (x) => x.softmax(-1) };
const logSoftmaxOf: OneArg = { name: 'logSoftmax', fn: (x) => x.logSoftmax(-1) };
const REDUCE_FNS: OneArg[] = [
  { name: 'sum(-1)', fn: (x) => x.sum(-1) },
  { name: 'amax(-1)', fn: (x) => x.amax(-1) },
  { name: 'argmax(-1)', fn: (x) => x.argmax(-1) },
  { name: 'sum(0)', fn: (x) => x.sum(0) },
];

describe('the lane choice (kernel IR data)', () => {
  it(`one lane up to ${LANE_SPAN} elements a row, then doubling so that no lane walks more than ${LANE_SPAN}, at most 64`, () => {
    expect([1, 31, 32, 33, 64, 65, 256].map((R) => rowLanes([2048], [R]))).toEqual([1, 1, 1, 1, 1, 1, 1]);
    expect(rowLanes([512], [257])).toBe(2);
    expect(rowLanes([4, 16], [16, 32])).toBe(2);
    expect(rowLanes([70], [4096])).toBe(16);
    expect(rowLanes([70], [1 << 20])).toBe(64);
  });
  it('fewer rows than a workgroup has invocations: lanes enough to fill one (never more lanes than elements, unless that fills it)', () => {
    expect(rowLanes([], [640])).toBe(64); // a loss's mean: one output
    expect(rowLanes([3], [40])).toBe(16);
    expect(rowLanes([48], [512])).toBe(2);
    expect(rowLanes([1], [1])).toBe(1);
    expect(rowLanes([2], [3])).toBe(4);
  });
});

describe.each(testDevices())('row kernels and reductions at the lane mapping chosen, on %s', (device) => {
  it('softmax, logSoftmax, layerNorm forward and backward equal to eager: rows of 1, 31, 32, 33, 64, 65, 257, 4096; the kernel IR says the lanes', async () => {
    for (const c of ROW_FNS) {
      for (const C of LENGTHS) {
        const ks = await rowCase(device, c, rowsFor(C), C, `${c.name} [${rowsFor(C)}, ${C}] on ${device}`);
        const rows = ks.filter((k) => k.body.kind === 'row' && (k.body as { reduced: number[] }).reduced[0] === C);
        // (rows of one element simplify away: no row kernel)
        if (C > 1) expect(rows.length, `${c.name} [${C}]: row kernels over the rows`).toBeGreaterThanOrEqual(1);
        for (const k of rows) {
          expect((k.body as { lanes?: number }).lanes, k.name).toBe(rowLanes([rowsFor(C)], [C]));
          const l = rowLanes([rowsFor(C)], [C]);
          expect(printKernel(k)).toContain(`for each of [${rowsFor(C)}], ${l} lane${l === 1 ? '' : 's'} each`);
        }
      }
    }
  }, 600_000);

  it('crossEntropy forward and backward equal to eager: classes 1, 31, 32, 33, 64, 65, 257, 4096', async () => {
    for (const C of LENGTHS) await crossEntropyCase(device, rowsFor(C), C, `crossEntropy [${rowsFor(C)}, ${C}] on ${device}`);
  }, 600_000);

  it('rows with NaN, +inf, -inf and all -inf: softmax, logSoftmax, layerNorm, sum, amax, argmax as eager', async () => {
    for (const C of [5, 33, 300]) {
      const x = torch.tensor(specialRows(C), { shape: [5, C], device });
      for (const { name, fn } of [softmaxOf, logSoftmaxOf, { name: 'layerNorm', fn: (a: T) => F.layerNorm(a, [C]) }, ...REDUCE_FNS]) {
        await expectSame(torch.compile(fn)(x), fn(x), 2e-5, `${name} of special rows of ${C} on ${device}`);
      }
    }
  }, 600_000);

  it('reductions (sum, amax, argmax over rows and over columns) at the edge lengths equal to eager; argmax keeps the first of equal maxima', async () => {
    for (const C of LENGTHS) {
      const N = rowsFor(C);
      // every row's maximum appears twice: the first index must win
      const v = values(N * C, 7).map((a) => Math.round(a * 4) / 4);
      const x = torch.tensor(v, { shape: [N, C], device });
      for (const { name, fn } of REDUCE_FNS) {
        const fast = torch.compile(fn);
        await expectSame(fast(x), fn(x), 2e-5, `${name} of [${N}, ${C}] on ${device}`);
        const reduce = kernelsOf(fast).filter((k) => k.body.kind === 'reduce');
        expect(reduce.length, `${name}: a reduce kernel`).toBe(1);
        expect(lanesOf(reduce), name).toEqual([name === 'sum(0)' ? rowLanes([C], [N]) : rowLanes([N], [C])]);
      }
    }
  }, 600_000);
});

describe.runIf(webgpuAvailable)('every lane count on webgpu (WGTORCH_ROW_LANES)', () => {
  afterEach(() => {
    delete process.env.WGTORCH_ROW_LANES;
  });
  for (const lanes of [1, 8, 64]) {
    it(`${lanes} lane(s) per row: softmax and layerNorm forward and backward, crossEntropy, reductions, special rows equal to eager`, async () => {
      process.env.WGTORCH_ROW_LANES = String(lanes);
      for (const C of [1, 33, 257]) {
        for (const c of [ROW_FNS[0], ROW_FNS[2]]) {
          const ks = await rowCase('webgpu', c, 70, C, `${c.name} [70, ${C}] at ${lanes} lanes`);
          expect(new Set(lanesOf(ks)), `${c.name}: every row kernel at ${lanes}`).toEqual(new Set([lanes]));
        }
        await crossEntropyCase('webgpu', 70, C, `crossEntropy [70, ${C}] at ${lanes} lanes`);
        const x = torch.tensor(specialRows(C), { shape: [5, C], device: 'webgpu' });
        for (const { name, fn } of [logSoftmaxOf, ...REDUCE_FNS]) await expectSame(torch.compile(fn)(x), fn(x), 2e-5, `${name} of special rows of ${C} at ${lanes} lanes`);
      }
    }, 600_000);
  }
});

describe.runIf(webgpuAvailable)('packing (webgpu)', () => {
  it('a one-lane row kernel packs with a whole-workgroup reduction (both 64 invocations); results equal eager', async () => {
    const x = torch.tensor(values(70 * 32, 8), { shape: [70, 32], device: 'webgpu' });
    const y = torch.tensor(values(3 * 100000, 9), { shape: [3, 100000], device: 'webgpu' });
    const fn = (a: T, b: T) => a.softmax(-1).sum().add(b.sum(-1).sum());
    const fast = torch.compile(fn);
    await expectSame(fast(x, y), fn(x, y), 1e-5, 'softmax of rows of 32 and sums of rows of 100000');
    const packs = fast.graphs()[0].kernels.filter((k) => k.kernel.body.kind === 'pack').map((k) => partsOf(k.kernel));
    const mixed = packs.find((ps) => lanesOf(ps).includes(1) && lanesOf(ps).includes(64));
    expect(mixed?.map((k) => k.name), `packs: ${packs.map((ps) => ps.map((k) => `${k.name} (${lanesOf([k])})`).join(' + ')).join('; ')}`).toBeDefined();
  }, 300_000);
});
