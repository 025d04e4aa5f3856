/**
 * The matmul template's rolled loops (epilogue, operand reductions) take their trip count as
 * max(p.zero, n), so that Mesa cannot unroll them (codegen-wgsl/matmul.ts rolledBound): the
 * params word `zero` must be 0 at run time, or a loop runs past its block. Here: the word the
 * WGSL struct calls `zero` is the one ZERO_WORD names, in both layouts; every params writer
 * leaves it 0 whatever the shapes, batch levels and scalars; and the check refuses anything else.
 */
import { describe, expect, it } from 'vitest';
import { batchedMatmulParams, checkZeroWord, matmulParams, matmulWGSL, ZERO_WORD, type MatmulBatch } from '../src/codegen-wgsl/matmul.ts';
import { matmulKernelParams } from '../src/codegen-wgsl/render-matmul.ts';
import type { MatmulBody } from '../src/passes/kernel-ir.ts';

/** the u32 fields of the generated Params struct, in order (the hooks' `x` array excluded) */
function structWords(code: string): string[] {
  const body = /struct \w*Params \{([^}]*)\}/.exec(code)![1]!;
  return body.split(',').map((f) => f.trim()).filter((f) => f.endsWith(': u32')).map((f) => f.split(':')[0]!.trim());
}

const batch: MatmulBatch = { count: 12, inner: 4, stride: { a: 96, b: 40, c: 60 }, outer: { a: 384, b: 0, c: 240 }, lda: 8, ldb: 5 };

describe('matmul params: the `zero` word of the rolled loops', () => {
  it('is the word the WGSL struct names zero, plain and batched', () => {
    for (const variant of ['r4x8-8x8', 'r4x8-8x8-vec4'] as const) {
      expect(structWords(matmulWGSL({ transA: false, transB: false, variant }).code).indexOf('zero')).toBe(ZERO_WORD.plain);
      expect(structWords(matmulWGSL({ transA: false, transB: false, variant, batched: true }).code).indexOf('zero')).toBe(ZERO_WORD.batched);
    }
    expect([ZERO_WORD.plain, ZERO_WORD.batched]).toEqual([6, 13]);
  });

  it('stays 0 in what every writer produces (shapes, strides, batch levels, zBase, scalars)', () => {
    const plain = new Uint32Array(matmulParams(70000, 513, 4097, { a: 0, b: 123456, c: 7 }));
    expect([...plain.slice(0, 6)]).toEqual([70000, 513, 4097, 0, 123456, 7]);
    expect(plain[ZERO_WORD.plain]).toBe(0);
    const batched = batchedMatmulParams(6, 5, 8, batch, 65535, 9);
    expect(batched[7], 'zBase').toBe(65535);
    expect(batched[ZERO_WORD.batched]).toBe(0);
    // a compiled kernel's params: the scalars' bits follow the layout and never land on `zero`
    const scalars = [1.5, -2, Number.NaN, 3e38, -0, 7];
    const body = { M: 6, N: 5, K: 8, batch: { count: 1, strideA: 48, strideB: 40, strideC: 30 } } as MatmulBody;
    const words = matmulKernelParams(body, scalars);
    expect(words[ZERO_WORD.plain]).toBe(0);
    expect([...new Float32Array(words.buffer, 8 * 4, scalars.length)]).toEqual(Array.from(new Float32Array(scalars)));
    const bmm = { ...body, batch: { count: 12, strideA: 96, strideB: 40, strideC: 60 }, batched: { inner: 4, outerA: 384, outerB: 0, outerC: 240, lda: 8, ldb: 5 } } as MatmulBody;
    const bwords = matmulKernelParams(bmm, scalars);
    expect(bwords[ZERO_WORD.batched]).toBe(0);
    expect([...new Float32Array(bwords.buffer, 16 * 4, scalars.length)]).toEqual(Array.from(new Float32Array(scalars)));
  });

  it('is checked: params with anything else there are refused, naming the word', () => {
    const plain = new Uint32Array(matmulParams(4, 4, 4));
    plain[ZERO_WORD.plain] = 1;
    expect(() => checkZeroWord(plain, false)).toThrow(/matmul params word 6 \(`zero`, the rolled loops' bound\) is 1, not 0/);
    const batched = batchedMatmulParams(4, 4, 4, batch);
    batched[ZERO_WORD.batched] = 32;
    expect(() => checkZeroWord(batched, true)).toThrow(/word 13 .* is 32, not 0/);
    expect(checkZeroWord(new Uint32Array(16), true)).toHaveLength(16);
  });
});
