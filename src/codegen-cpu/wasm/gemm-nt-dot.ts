/**
 * C = A @ B^T without packing: A [M, K] and B [N, K] row-major, both read along K where they
 * lie (the layout of x @ W^T, a Linear layer's forward with W as [out, in]). The packed GEMM
 * (gemm-module.ts) would first transpose B into panels, a 4 x 4 register transpose of every
 * element of B on every call; here each output is a dot product of two contiguous rows.
 *
 *   gemmNT(a, b, c, M, K, N, i0, i1, j0, j1, work)
 *     C[i, j] (row-major, ldc N) = sum_k A[i, k] * B[j, k] for i0 <= i < i1, j0 <= j < j1
 *     (i0 a multiple of DOT_ROWS, j0 of DOT_COLS); `work` is this thread's scratch tile.
 *
 * The register tile is DOT_ROWS rows of A by DOT_COLS rows of B: one f32x4 accumulator per
 * pair, holding partial sums over k = 4q + lane; per 4 k it loads DOT_ROWS + DOT_COLS vectors
 * and does DOT_ROWS * DOT_COLS multiply-adds (no splats). At the end of a K block a 4 x 4
 * transpose-and-add gives each A row its DOT_COLS outputs as one vector, stored contiguously.
 * Measured on the seed's NT 64x100x1000 (Node 20, one core, relaxed SIMD on): the 2 x 4
 * micro-kernel runs ~45 GFLOP/s on L1-resident rows against ~42 for the packed 4 x 8 one, 3 x 3
 * about the same, 2 x 5 and larger spill (V8 hoists every load of an iteration, so a tile needs
 * R*S + R + S <= 15 vector registers).
 *
 * K is blocked by DOT_KC (a B group of 4 rows x KC stays in L1 while every A row pair streams
 * past it); the K % 4 steps left are single lanes (v128.load32_zero: lanes 1-3 add 0 * 0).
 */
import { FnBuilder, I32, op, simd, V128 } from './emit.ts';

export const DOT_ROWS = 2;
export const DOT_COLS = 4;
export const DOT_KC = 512;

/** Bytes of scratch one thread needs for an edge tile. */
export const DOT_WORK_BYTES = 4 * DOT_ROWS * DOT_COLS;

/** f32 lane indices -> the 16 byte lanes of i8x16.shuffle (0-3 the first operand, 4-7 the second) */
const lanes4 = (l: number[]) => l.flatMap((x) => [4 * x, 4 * x + 1, 4 * x + 2, 4 * x + 3]);

/**
 * microDot(pa, pb, ld, kb, c, ldc, beta, mr, nr): the DOT_ROWS x DOT_COLS tile at c (row
 * stride ldc bytes) = A rows at pa + r*ld by B rows at pb + s*ld over kb steps (+ the tile
 * when beta); rows r >= mr and s >= nr read row 0 (their results are not stored by the caller).
 */
export function microDot(fma: boolean): FnBuilder {
  const R = DOT_ROWS, S = DOT_COLS;
  const f = new FnBuilder([I32, I32, I32, I32, I32, I32, I32, I32, I32]);
  const [pa, pb, ld, kb, c, ldc, beta, mr, nr] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const acc = Array.from({ length: R * S }, () => f.local(V128));
  const av = Array.from({ length: R }, () => f.local(V128));
  const bv = Array.from({ length: S }, () => f.local(V128));
  const aRow = Array.from({ length: R }, () => f.local(I32));
  const bRow = Array.from({ length: S }, () => f.local(I32));
  const p = f.local(I32);
  const end = f.local(I32);
  const row = f.local(I32);
  const u = f.local(V128);
  const w = f.local(V128);
  const at = (r: number, s: number) => acc[r * S + s]!;
  // row pointers: base + (r < valid ? r : 0) * ld
  const rowPtr = (base: number, valid: number, r: number, dst: number) =>
    f.get(base).i32(r).get(ld).emit(op.i32Mul).i32(0).i32(r).get(valid).emit(op.i32LtS, op.select, op.i32Add).set(dst);
  for (let r = 0; r < R; r++) rowPtr(pa, mr, r, aRow[r]!);
  for (let s = 0; s < S; s++) rowPtr(pb, nr, s, bRow[s]!);
  for (const a of acc) f.simd(simd.v128Const, ...new Array(16).fill(0)).set(a);
  const madd = (r: number, s: number) => {
    if (fma) f.get(av[r]!).get(bv[s]!).get(at(r, s)).simd(simd.f32x4RelaxedMadd).set(at(r, s));
    else f.get(at(r, s)).get(av[r]!).get(bv[s]!).simd(simd.f32x4Mul).simd(simd.f32x4Add).set(at(r, s));
  };
  const step = (load: number, align: number) => {
    for (let r = 0; r < R; r++) f.get(aRow[r]!).get(p).emit(op.i32Add).simd(load, ...f.mem(align, 0)).set(av[r]!);
    for (let s = 0; s < S; s++) f.get(bRow[s]!).get(p).emit(op.i32Add).simd(load, ...f.mem(align, 0)).set(bv[s]!);
    for (let r = 0; r < R; r++) for (let s = 0; s < S; s++) madd(r, s);
  };
  // p: byte offset along K; whole vectors, then the kb % 4 single lanes
  f.get(kb).i32(-4).emit(op.i32And).i32(2).emit(op.i32Shl).set(end);
  f.for(p, () => f.i32(0), () => f.get(end), 16, () => step(simd.v128Load, 2));
  f.for(p, () => f.get(end), () => f.get(kb).i32(2).emit(op.i32Shl), 4, () => step(simd.v128Load32Zero, 2));
  // per A row: the S accumulators' lane sums as one vector [sum acc(r,0), ..., sum acc(r,3)]
  f.get(c).set(row);
  for (let r = 0; r < R; r++) {
    // u = [a0+a1, b0+b1, a2+a3, b2+b3] of acc(r,0) = a, acc(r,1) = b; w the same for acc(r,2), acc(r,3)
    const pairSum = (x: number, y: number, dst: number) => {
      f.get(x).get(y).simd(simd.i8x16Shuffle, ...lanes4([0, 4, 2, 6]));
      f.get(x).get(y).simd(simd.i8x16Shuffle, ...lanes4([1, 5, 3, 7]));
      f.simd(simd.f32x4Add).set(dst);
    };
    pairSum(at(r, 0), at(r, 1), u);
    pairSum(at(r, 2), at(r, 3), w);
    f.get(u).get(w).simd(simd.i8x16Shuffle, ...lanes4([0, 1, 4, 5]));
    f.get(u).get(w).simd(simd.i8x16Shuffle, ...lanes4([2, 3, 6, 7]));
    f.simd(simd.f32x4Add).set(u);
    f.if(() => f.get(beta), () => f.get(row).simd(simd.v128Load, ...f.mem(2, 0)).get(u).simd(simd.f32x4Add).set(u));
    f.get(row).get(u).simd(simd.v128Store, ...f.mem(2, 0));
    if (r < R - 1) f.get(row).get(ldc).emit(op.i32Add).set(row);
  }
  return f;
}

/** gemmNT(a, b, c, M, K, N, i0, i1, j0, j1, work): see the file comment. `micro` is microDot's function index. */
export function gemmNT(micro: number): FnBuilder {
  const R = DOT_ROWS, S = DOT_COLS;
  const f = new FnBuilder([I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32]);
  const [a, b, c, , K, N, i0, i1, j0, j1, work] = Array.from({ length: 11 }, (_, i) => i);
  const L = () => f.local(I32);
  const [pc, kb, jr, ir, mr, nr, cp, beta, ld, ldc, r, q, t0, t1] = Array.from({ length: 14 }, L);
  const add = () => f.emit(op.i32Add);
  const mul = () => f.emit(op.i32Mul);
  const shl2 = () => f.i32(2).emit(op.i32Shl);
  f.get(K); shl2(); f.set(ld);
  f.get(N); shl2(); f.set(ldc);
  f.for(pc, () => f.i32(0), () => f.get(K), DOT_KC, () => {
    f.minI32(() => f.i32(DOT_KC), () => f.get(K).get(pc).emit(op.i32Sub), t0, t1).set(kb);
    f.get(pc).i32(0).emit(op.i32GtS).set(beta);
    f.for(jr, () => f.get(j0), () => f.get(j1), S, () => {
      f.minI32(() => f.i32(S), () => f.get(j1).get(jr).emit(op.i32Sub), t0, t1).set(nr);
      f.for(ir, () => f.get(i0), () => f.get(i1), R, () => {
        f.minI32(() => f.i32(R), () => f.get(i1).get(ir).emit(op.i32Sub), t0, t1).set(mr);
        // &C[ir, jr]
        f.get(c).get(ir).get(ldc); mul(); add(); f.get(jr); shl2(); add(); f.set(cp);
        const call = (cAt: () => void, ldcAt: () => void) => {
          f.get(a).get(ir).get(ld); mul(); add(); f.get(pc); shl2(); add();
          f.get(b).get(jr).get(ld); mul(); add(); f.get(pc); shl2(); add();
          f.get(ld).get(kb);
          cAt(); ldcAt();
          f.get(beta).get(mr).get(nr);
          f.call(micro);
        };
        f.if(
          () => f.get(mr).i32(R).emit(op.i32Eq).get(nr).i32(S).emit(op.i32Eq, op.i32And),
          () => call(() => f.get(cp), () => f.get(ldc)),
          () => {
            // an edge tile: through the scratch tile, copying only its valid corner
            const copy = (toTile: boolean) =>
              f.for(r, () => f.i32(0), () => f.get(mr), 1, () => {
                f.for(q, () => f.i32(0), () => f.get(nr), 1, () => {
                  const tileAt = () => { f.get(work).get(r).i32(S); mul(); f.get(q); add(); shl2(); add(); };
                  const cAt = () => { f.get(cp).get(r).get(ldc); mul(); add(); f.get(q); shl2(); add(); };
                  if (toTile) { tileAt(); cAt(); } else { cAt(); tileAt(); }
                  f.emit(op.f32Load, ...f.mem(2, 0), op.f32Store, ...f.mem(2, 0));
                });
              });
            f.if(() => f.get(beta), () => copy(true));
            call(() => f.get(work), () => f.i32(4 * S));
            copy(false);
          },
        );
      });
    });
  });
  return f;
}
