/**
 * The exp of the generated cpu loops (src/codegen-cpu/fast-math.ts) against Math.exp: within
 * 2.5 double ulps everywhere, the same special values, and the same float32 bits where a
 * kernel stores it; compiled exp-heavy ops (softmax, GELU, sigmoid) equal eager cpu.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { exp } from '../src/codegen-cpu/fast-math.ts';

describe('fast exp of the cpu loops', () => {
  it('is within 2.5 ulp of Math.exp and rounds to the same float32 over the whole range', () => {
    let worst = 0;
    const differ: number[] = [];
    let seed = 7;
    const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 4294967296);
    for (let i = 0; i < 200000; i++) {
      const scale = [1, 10, 100, 745][i % 4];
      const x = (rnd() * 2 - 1) * scale;
      const want = Math.exp(x);
      const got = exp(x);
      if (want > 0 && Number.isFinite(want) && want > 2.2250738585072014e-308) worst = Math.max(worst, Math.abs(got - want) / want);
      if (Math.fround(got) !== Math.fround(want)) differ.push(x);
    }
    expect(differ).toEqual([]);
    expect(worst / Number.EPSILON).toBeLessThanOrEqual(2.5);
  });

  it('keeps the special values: NaN, infinities, -0, overflow and underflow', () => {
    for (const x of [NaN, Infinity, -Infinity, 0, -0, 708.9, 709, 709.7, 710, -707.9, -708, -745.1, -746, 1e-300, -1e-300, 88.72, -103.97]) {
      expect(Object.is(exp(x), Math.exp(x)) || Math.abs(exp(x) - Math.exp(x)) <= 2.5 * Number.EPSILON * Math.exp(x), `x = ${x}`).toBe(true);
    }
    expect(exp(NaN)).toBeNaN();
    expect(exp(Infinity)).toBe(Infinity);
    expect(exp(-Infinity)).toBe(0);
  });

  it('compiled softmax, GELU and sigmoid equal eager cpu to float rounding (fused ops round once), exp bit for bit', async () => {
    torch.manualSeed(5);
    const x = torch.randn(64, 33).mul(6);
    const f = (t: torch.Tensor) => [t.softmax(-1), torch.nn.functional.gelu(t), t.sigmoid(), t.exp()];
    const eager = await Promise.all(f(x).map((t) => t.toArray()));
    const fast = await torch.compile((t: torch.Tensor) => torch.stack(f(t)))(x).toArray();
    const n = 64 * 33;
    eager.forEach((e, k) => {
      for (let i = 0; i < n; i++) expect(Math.abs(fast[k * n + i] - e[i]), `output ${k} element ${i}`).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(e[i])));
    });
    // exp alone is stored straight from the loop: the same bits
    expect(Array.from(fast.subarray(3 * n))).toEqual(Array.from(eager[3]));
  });
});
