import { beforeAll, describe, it, expect } from 'vitest';
import { matmulF32 as matmulDefault, matmulF32Batched, matmulF32Js, wasmGemmInfo } from '../src/runtime/cpu/matmul.ts';
import { createWasmGemm, gemmKernelCounts, setWasmGemmBInPlace, setWasmGemmNtDot, type WasmGemm } from '../src/runtime/cpu/wasm-gemm.ts';

type MatmulFn = typeof matmulDefault;
let matmulF32: MatmulFn = matmulDefault;

/** Deterministic PRNG (mulberry32) so failures reproduce. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randArray(n: number, rnd: () => number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = rnd() * 2 - 1;
  return x;
}

/** Float64 reference; also returns the abs-sum scale sum_k |a_ik * b_kj| per output. */
function reference(
  a: Float32Array, aOff: number, tA: boolean, b: Float32Array, bOff: number, tB: boolean,
  M: number, K: number, N: number,
): { ref: Float64Array; scale: Float64Array } {
  const ref = new Float64Array(M * N), scale = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0, abs = 0;
      for (let k = 0; k < K; k++) {
        const p = a[aOff + (tA ? k * M + i : i * K + k)] * b[bOff + (tB ? j * K + k : k * N + j)];
        s += p;
        abs += Math.abs(p);
      }
      ref[i * N + j] = s;
      scale[i * N + j] = abs;
    }
  }
  return { ref, scale };
}

function check(M: number, K: number, N: number, tA: boolean, tB: boolean, seed: number): void {
  const rnd = prng(seed);
  const aOff = 1 + Math.floor(rnd() * 5), bOff = Math.floor(rnd() * 5), outOff = 3;
  const a = randArray(aOff + M * K + 2, rnd);
  const b = randArray(bOff + K * N + 2, rnd);
  const out = new Float32Array(outOff + M * N + 4).fill(12345); // sentinels around the result
  matmulF32(a, aOff, tA, b, bOff, tB, out, outOff, M, K, N);
  const { ref, scale } = reference(a, aOff, tA, b, bOff, tB, M, K, N);
  const tag = `M=${M} K=${K} N=${N} transA=${tA} transB=${tB}`;
  for (let i = 0; i < M * N; i++) {
    const err = Math.abs(out[outOff + i] - ref[i]);
    if (!(err <= 1e-5 * scale[i] + 1e-30)) {
      expect.fail(`${tag}: out[${i}] = ${out[outOff + i]}, expected ${ref[i]} (scale ${scale[i]})`);
    }
  }
  for (let i = 0; i < outOff; i++) expect(out[i], `${tag}: wrote before outOff`).toBe(12345);
  for (let i = outOff + M * N; i < out.length; i++) expect(out[i], `${tag}: wrote past the end`).toBe(12345);
}

const TRANS: [boolean, boolean][] = [[false, false], [true, false], [false, true], [true, true]];
const SHAPES: [number, number, number][] = [
  [1, 1, 1], [1, 7, 1], [3, 7, 5], [4, 3, 3], [5, 1, 7], [8, 8, 8], [17, 33, 9],
  [2, 64, 13], [65, 129, 31], [64, 100, 10], [13, 300, 4], [1, 50, 37], [37, 50, 1],
];

/** a kernel instance as a matmulF32 (K = 0 and empty outputs are matmulF32's, before the kernel) */
function viaEngine(e: WasmGemm): MatmulFn {
  return (a, aOff, tA, b, bOff, tB, out, outOff, M, K, N) => {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) return void out.fill(0, outOff, outOff + M * N);
    expect(e.matmul(a, aOff, tA, b, bOff, tB, out, outOff, M, K, N)).toBe(true);
  };
}
const plainSimd = createWasmGemm({ fma: false, threads: false })!;

// the Wasm SIMD kernel (what every cpu matmul runs: relaxed-SIMD FMA where the engine has it, on
// several threads), the same kernel with plain f32x4 multiply and add on one thread, and the
// JavaScript fallback
const IMPLS: [string, MatmulFn][] = [['wasm simd', matmulDefault], ['wasm simd, no fma, one thread', viaEngine(plainSimd)], ['javascript', matmulF32Js]];

describe.each(IMPLS)('matmulF32 (%s)', (name, impl) => {
  beforeAll(() => {
    matmulF32 = impl;
    if (name === 'wasm simd') expect(wasmGemmInfo().available, 'WebAssembly SIMD is on in Node 20').toBe(true);
    if (name === 'wasm simd' && process.env.WGTORCH_WASM_FMA !== '0') expect(wasmGemmInfo().fma, 'relaxed SIMD turned on (src/platform/wasm-features.ts)').toBe(true);
  });

  for (const [tA, tB] of TRANS) {
    it(`matches a float64 reference on fixed shapes (transA=${tA}, transB=${tB})`, () => {
      let seed = 1;
      for (const [M, K, N] of SHAPES) check(M, K, N, tA, tB, seed++);
    });

    it(`matches a float64 reference on random shapes (transA=${tA}, transB=${tB})`, () => {
      const rnd = prng(tA ? (tB ? 11 : 12) : (tB ? 13 : 14));
      for (let t = 0; t < 25; t++) {
        const M = 1 + Math.floor(rnd() * 40), K = 1 + Math.floor(rnd() * 70), N = 1 + Math.floor(rnd() * 40);
        check(M, K, N, tA, tB, 100 + t);
      }
    });
  }

  it('matches the reference on odd sizes in every dimension and layout (ragged tiles, panels and blocks)', () => {
    let seed = 500;
    for (const [tA, tB] of TRANS) {
      for (const n of [1, 3, 17, 63, 65, 127, 257]) {
        check(n, 63, 17, tA, tB, seed++);
        check(17, n, 65, tA, tB, seed++);
        check(65, 17, n, tA, tB, seed++);
        check(n, 1, n, tA, tB, seed++); // K = 1
        if (n <= 65) check(n, n, n, tA, tB, seed++);
      }
      check(257, 257, 127, tA, tB, seed++);
      check(9, 1030, 33, tA, tB, seed++); // three K blocks, the last a runt
    }
  });

  it('handles shapes that span several cache blocks', () => {
    // Unsplit K (<= 1024) with several row blocks of packed A, and several column blocks of packed B.
    check(130, 1000, 7, true, false, 7);
    check(9, 1000, 300, false, true, 8);
    // K long enough to be split into blocks whose partial sums are carried between kernel calls,
    // combined with ragged row/column blocks.
    check(70, 2600, 103, false, false, 9);
    check(70, 2600, 103, true, true, 10);
    check(5, 1500, 4, false, true, 11);
  });

  it('handles zero-sized dimensions', () => {
    for (const [tA, tB] of TRANS) {
      check(0, 5, 3, tA, tB, 1);
      check(4, 5, 0, tA, tB, 2);
      check(0, 0, 0, tA, tB, 3);
      // K = 0: an empty sum, so the output is all zeros.
      const out = new Float32Array(2 + 3 * 4).fill(7);
      matmulF32(new Float32Array(0), 0, tA, new Float32Array(0), 0, tB, out, 2, 3, 0, 4);
      expect(Array.from(out)).toEqual([7, 7, ...new Array(12).fill(0)]);
    }
  });

  it('overwrites stale output and is repeatable across calls of different sizes', () => {
    check(9, 40, 11, false, true, 21);
    check(200, 700, 50, false, false, 22); // grows the scratch
    check(9, 40, 11, false, true, 21); // smaller again with the big scratch
  });

  it('computes exact small products', () => {
    // [[1,2],[3,4]] @ [[5,6],[7,8]] = [[19,22],[43,50]]
    const a = new Float32Array([1, 2, 3, 4]), b = new Float32Array([5, 6, 7, 8]);
    const out = new Float32Array(4);
    matmulF32(a, 0, false, b, 0, false, out, 0, 2, 2, 2);
    expect(Array.from(out)).toEqual([19, 22, 43, 50]);
    matmulF32(a, 0, true, b, 0, true, out, 0, 2, 2, 2); // A^T @ B^T = [[23,31],[34,46]]
    expect(Array.from(out)).toEqual([23, 31, 34, 46]);
  });
});

describe('matmulF32 on several threads', () => {
  it('splits large products between the helper threads (rows and columns) and matches the reference', async () => {
    matmulF32 = matmulDefault;
    const cores = (await import('node:os')).availableParallelism();
    const deadline = Date.now() + 10_000;
    // helpers start in the background; until they are up a product runs on one thread
    while (cores > 1 && wasmGemmInfo().threads < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (cores > 1) expect(wasmGemmInfo().threads).toBeGreaterThan(1);
    check(300, 200, 40, false, false, 31); // M >= N: rows split
    check(40, 200, 300, true, true, 32); // N > M: columns split in multiples of the tile width
    check(129, 700, 131, true, false, 33);
  });

  it('gives the same bits as one thread, whatever the split (rows, columns, packed A, parallel packing)', async () => {
    const cores = (await import('node:os')).availableParallelism();
    const deadline = Date.now() + 10_000;
    while (cores > 1 && wasmGemmInfo().threads < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const single = createWasmGemm({ fma: wasmGemmInfo().fma, threads: false })!;
    expect(single.fma).toBe(wasmGemmInfo().fma);
    const rnd = prng(77);
    const shapes: [number, number, number][] = [[300, 200, 40], [40, 200, 300], [257, 300, 263], [129, 700, 131], [64, 1000, 100], [1000, 64, 100], [33, 1100, 517], [600, 500, 64]];
    for (const [M, K, N] of shapes) {
      for (const [tA, tB] of TRANS) {
        const a = randArray(M * K, rnd), b = randArray(K * N, rnd);
        const split = new Float32Array(M * N), one = new Float32Array(M * N);
        matmulDefault(a, 0, tA, b, 0, tB, split, 0, M, K, N);
        expect(single.matmul(a, 0, tA, b, 0, tB, one, 0, M, K, N)).toBe(true);
        const tag = `M=${M} K=${K} N=${N} transA=${tA} transB=${tB}`;
        for (let i = 0; i < M * N; i++) if (split[i] !== one[i]) expect.fail(`${tag}: out[${i}] = ${split[i]} on several threads, ${one[i]} on one`);
      }
    }
  });

  it('stays right over many back-to-back split products (each chunk claimed by whichever thread runs)', () => {
    matmulF32 = matmulDefault;
    const rnd = prng(41);
    for (let t = 0; t < 40; t++) {
      const M = 40 + Math.floor(rnd() * 90), K = 100 + Math.floor(rnd() * 200), N = 40 + Math.floor(rnd() * 90);
      check(M, K, N, rnd() < 0.5, rnd() < 0.5, 200 + t);
    }
  });
});

describe('matmulF32Batched', () => {
  it('equals one matmulF32 per product (shared operands, gaps between batches, every layout, sizes on both sides of the split)', () => {
    const rnd = prng(91);
    const cases: [number, number, number, number][] = [[17, 9, 13, 5], [64, 16, 64, 12], [3, 1, 7, 4], [1, 33, 1, 3], [40, 70, 30, 70], [300, 40, 200, 3]];
    for (const [M, K, N, count] of cases) {
      for (const [tA, tB] of TRANS) {
        for (const [sA, sB] of [[M * K, K * N], [0, K * N], [M * K + 3, 0], [M * K, K * N + 5]]) {
          const sC = M * N + (sA === 0 ? 2 : 0);
          const a = randArray(2 + Math.max(1, count * Math.max(sA, 1)) + M * K, rnd), b = randArray(1 + Math.max(1, count * Math.max(sB, 1)) + K * N, rnd);
          const got = new Float32Array(4 + count * sC).fill(777), want = got.slice();
          matmulF32Batched(a, 2, sA, tA, b, 1, sB, tB, got, 4, sC, M, K, N, count);
          for (let i = 0; i < count; i++) matmulDefault(a, 2 + i * sA, tA, b, 1 + i * sB, tB, want, 4 + i * sC, M, K, N);
          const tag = `M=${M} K=${K} N=${N} count=${count} strides ${sA},${sB},${sC} transA=${tA} transB=${tB}`;
          for (let i = 0; i < got.length; i++) if (!Object.is(got[i], want[i])) expect.fail(`${tag}: out[${i}] = ${got[i]}, one by one ${want[i]}`);
        }
      }
    }
  });

  it('fills products with K = 0 with zeros and leaves the gaps', () => {
    const out = new Float32Array(2 * 7).fill(5);
    matmulF32Batched(new Float32Array(0), 0, 0, false, new Float32Array(0), 0, 0, false, out, 1, 7, 2, 0, 3, 2);
    expect(Array.from(out)).toEqual([5, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0]);
  });
});

describe('A @ B^T: the dot-product kernel (operands read along K in place) and the packed one', () => {
  it('runs the dot-product kernel where A fits and the packed one otherwise or when turned off, each matching the reference', () => {
    matmulF32 = matmulDefault;
    const shapes: [number, number, number][] = [[1, 1, 1], [2, 4, 4], [3, 5, 6], [64, 1000, 100], [64, 100, 10], [5, 513, 9], [33, 1031, 37], [7, 3, 130], [9, 1030, 33], [65, 1, 65]];
    try {
      for (const on of [true, false]) {
        setWasmGemmNtDot(on);
        let seed = on ? 900 : 950;
        const before = { ...gemmKernelCounts };
        for (const [M, K, N] of shapes) check(M, K, N, false, true, seed++);
        expect(gemmKernelCounts.dot - before.dot).toBe(on ? shapes.length : 0);
        expect(gemmKernelCounts.packed - before.packed).toBe(on ? 0 : shapes.length);
      }
      // A's K block past DOT_MAX_A_BLOCK (256 KiB): the packed kernel's blocking
      setWasmGemmNtDot(true);
      const before = gemmKernelCounts.packed;
      check(200, 700, 20, false, true, 990);
      expect(gemmKernelCounts.packed - before).toBe(1);
    } finally {
      setWasmGemmNtDot(true);
    }
  });

  it('gives the same bits on one thread and several (rows and columns split in multiples of its 2 x 4 tile)', async () => {
    const cores = (await import('node:os')).availableParallelism();
    const deadline = Date.now() + 10_000;
    while (cores > 1 && wasmGemmInfo().threads < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const single = createWasmGemm({ fma: wasmGemmInfo().fma, threads: false })!;
    const rnd = prng(78);
    for (const [M, K, N] of [[64, 1000, 100], [300, 200, 41], [41, 200, 300], [101, 700, 131]] as [number, number, number][]) {
      const a = randArray(M * K, rnd), b = randArray(K * N, rnd);
      const split = new Float32Array(M * N), one = new Float32Array(M * N);
      const before = gemmKernelCounts.dot;
      matmulDefault(a, 0, false, b, 0, true, split, 0, M, K, N);
      expect(gemmKernelCounts.dot - before).toBe(1);
      expect(single.matmul(a, 0, false, b, 0, true, one, 0, M, K, N)).toBe(true);
      for (let i = 0; i < M * N; i++) if (split[i] !== one[i]) expect.fail(`M=${M} K=${K} N=${N}: out[${i}] = ${split[i]} on several threads, ${one[i]} on one`);
    }
  });
});

describe('a row-major B of few rows (K <= 64) read in place by the packed kernel', () => {
  it('gives the bits of packing it (ragged column tiles, packed or in-place A, one thread and several) and matches the reference', async () => {
    matmulF32 = matmulDefault;
    const cores = (await import('node:os')).availableParallelism();
    const deadline = Date.now() + 10_000;
    while (cores > 1 && wasmGemmInfo().threads < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const rnd = prng(79);
    const shapes: [number, number, number][] = [[100, 64, 1000], [10, 64, 100], [1, 1, 1], [5, 3, 7], [33, 64, 9], [64, 17, 130], [130, 64, 64]];
    try {
      for (const [M, K, N] of shapes) {
        for (const tA of [false, true]) {
          const a = randArray(M * K, rnd), b = randArray(K * N, rnd);
          const flat = new Float32Array(M * N), packed = new Float32Array(M * N);
          setWasmGemmBInPlace(true);
          const before = gemmKernelCounts.bInPlace;
          matmulDefault(a, 0, tA, b, 0, false, flat, 0, M, K, N);
          expect(gemmKernelCounts.bInPlace - before, `M=${M} K=${K} N=${N}`).toBe(1);
          setWasmGemmBInPlace(false);
          matmulDefault(a, 0, tA, b, 0, false, packed, 0, M, K, N);
          expect(gemmKernelCounts.bInPlace - before).toBe(1);
          for (let i = 0; i < M * N; i++) if (flat[i] !== packed[i]) expect.fail(`M=${M} K=${K} N=${N} transA=${tA}: out[${i}] = ${flat[i]} with B in place, ${packed[i]} packed`);
        }
      }
      setWasmGemmBInPlace(true);
      let seed = 1200;
      for (const [M, K, N] of shapes) for (const tA of [false, true]) check(M, K, N, tA, false, seed++);
      const before = gemmKernelCounts.bInPlace;
      check(20, 65, 30, false, false, seed++); // past 64 rows: packed
      expect(gemmKernelCounts.bInPlace - before).toBe(0);
    } finally {
      setWasmGemmBInPlace(true);
    }
  });
});
