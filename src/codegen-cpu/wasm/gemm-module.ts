/**
 * The float32 GEMM as a WebAssembly SIMD128 module, generated here (emit.ts), packed and
 * register-tiled in the GotoBLAS way:
 *
 *   gemm(a, aI, aK, b, bK, bJ, c, M, K, N, j0, j1, work)
 *     C[i, j] (row-major, ldc N) = sum_k op(A)[i, k] * op(B)[k, j] for columns j0 <= j < j1,
 *     op(A)[i, k] at byte a + i*aI + k*aK and op(B)[k, j] at b + k*bK + j*bJ, so every
 *     transpose combination is a choice of strides; `work` is this thread's scratch.
 *
 * Blocks of B (KC x NC) are packed into zero-padded panels of NR columns, so the micro-kernel
 * streams B sequentially; A is read in place, MR rows at a time (or packed into MR-row panels
 * with `packA`): per k it loads NR/4 vectors of B, splats MR values of A and keeps MR x NR/4
 * f32x4 accumulators in registers. Without relaxed SIMD
 * (off in Node 20) there is no fused multiply-add: each step is f32x4.mul then f32x4.add.
 * Columns split across threads in multiples of NR; each thread packs its own panels.
 */
import { emitModule, F32, FnBuilder, I32, op, simd, V128 } from './emit.ts';

export interface GemmShape {
  /** rows of a register tile */
  MR: number;
  /** f32x4 vectors per tile row (NR = 4 * NRV columns) */
  NRV: number;
  /** K block (packed panels of A and B along K) */
  KC: number;
  /** rows of a packed A block (kept in L2), a multiple of MR */
  MC: number;
  /** columns of a packed B block, a multiple of NR */
  NC: number;
  /** pack A blocks into MR-row panels (the classic layout) instead of reading A in place */
  packA?: boolean;
}

// 4 x 8 measured ~30 GFLOP/s on one core here (Xeon, Node 20), 6 x 8 and 4 x 12 ~18: with 12 accumulators
// V8 spills vector registers. KC 512 keeps the seed's K = 1000 to two blocks. A is read in place
// (packA false): best of 300 side by side, 64x1000x100 NT 16.5 -> 19.6 GFLOP/s, a 64x1000x16
// column chunk 14.3 -> 27.2, 512^3 28.5 -> 29.8.
export const GEMM_SHAPE: GemmShape = { MR: 4, NRV: 2, KC: 512, MC: 96, NC: 1024 };

/** Bytes of scratch one thread needs: packed A block, packed B block, one edge tile. */
export function gemmWorkBytes(s: GemmShape = GEMM_SHAPE): number {
  return 4 * (s.MC * s.KC + s.KC * s.NC + s.MR * 4 * s.NRV) + 64;
}

export function gemmModuleBytes(memory: { min: number; max: number; shared: boolean }, s: GemmShape = GEMM_SHAPE): Uint8Array<ArrayBuffer> {
  const NR = 4 * s.NRV;
  return emitModule({
    memory,
    functions: [
      { name: 'micro', fn: micro(s.MR, s.NRV, !!s.packA) },
      { name: 'pack', fn: pack() },
      { name: 'gemm', fn: gemm(s, NR) },
    ],
  });
}
const MICRO = 0;
const PACK = 1;

/**
 * micro(pa, aLane, aK, mr, pb, K, c, ldc, beta): the MR x NR tile at c (row stride ldc bytes) =
 * op(A) rows read in place (row r at pa + r*aLane, step aK per k; rows >= mr read row 0, whose
 * results are not stored) x a packed B panel (+ the tile when beta). Reading A in place skips
 * packing it: for a row-major A that pack was a strided gather as costly as the product itself
 * when the product is split into column chunks.
 */
function micro(MR: number, NRV: number, packedA: boolean): FnBuilder {
  const f = new FnBuilder([I32, I32, I32, I32, I32, I32, I32, I32, I32]);
  const [pa, aLane, aK, mr, pb, K, c, ldc, beta] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const acc = Array.from({ length: MR * NRV }, () => f.local(V128));
  const bv = Array.from({ length: NRV }, () => f.local(V128));
  const av = f.local(V128);
  const rows = Array.from({ length: MR }, () => f.local(I32));
  const k = f.local(I32);
  const row = f.local(I32);
  const at = (r: number, v: number) => acc[r * NRV + v];
  if (!packedA) {
    for (let r = 0; r < MR; r++) {
      // row pointer: pa + (r < mr ? r : 0) * aLane
      f.get(pa).i32(r).get(aLane).emit(op.i32Mul).i32(0).i32(r).get(mr).emit(op.i32LtS, op.select, op.i32Add).set(rows[r]);
    }
  }
  // acc = beta ? C : 0
  f.if(
    () => f.get(beta),
    () => {
      f.get(c).set(row);
      for (let r = 0; r < MR; r++) {
        for (let v = 0; v < NRV; v++) f.get(row).simd(simd.v128Load, ...f.mem(2, 16 * v)).set(at(r, v));
        if (r < MR - 1) f.get(row).get(ldc).emit(op.i32Add).set(row);
      }
    },
    () => {
      for (const a of acc) f.simd(simd.v128Const, ...new Array(16).fill(0)).set(a);
    },
  );
  f.for(k, () => f.i32(0), () => f.get(K), 1, () => {
    for (let v = 0; v < NRV; v++) f.get(pb).simd(simd.v128Load, ...f.mem(2, 16 * v)).set(bv[v]);
    for (let r = 0; r < MR; r++) {
      if (packedA) f.get(pa).simd(simd.v128Load32Splat, ...f.mem(2, 4 * r)).set(av);
      else f.get(rows[r]).simd(simd.v128Load32Splat, ...f.mem(2, 0)).set(av);
      for (let v = 0; v < NRV; v++) {
        f.get(at(r, v)).get(av).get(bv[v]).simd(simd.f32x4Mul).simd(simd.f32x4Add).set(at(r, v));
      }
    }
    if (packedA) f.get(pa).i32(4 * MR).emit(op.i32Add).set(pa);
    else for (let r = 0; r < MR; r++) f.get(rows[r]).get(aK).emit(op.i32Add).set(rows[r]);
    f.get(pb).i32(16 * NRV).emit(op.i32Add).set(pb);
  });
  f.get(c).set(row);
  for (let r = 0; r < MR; r++) {
    for (let v = 0; v < NRV; v++) f.get(row).get(at(r, v)).simd(simd.v128Store, ...f.mem(2, 16 * v));
    if (r < MR - 1) f.get(row).get(ldc).emit(op.i32Add).set(row);
  }
  return f;
}

/**
 * pack(src, kStride, laneStride, lanes, K, dst, width): K groups of `width` f32 at dst, lane l of
 * group k from src + l*laneStride + k*kStride, zeros for lanes >= `lanes`. Contiguous full
 * groups (laneStride 4, lanes == width, width a multiple of 4) are copied as vectors.
 */
function pack(): FnBuilder {
  const f = new FnBuilder([I32, I32, I32, I32, I32, I32, I32]);
  const [src, kStride, laneStride, lanes, K, dst, width] = [0, 1, 2, 3, 4, 5, 6];
  const k = f.local(I32);
  const l = f.local(I32);
  const s = f.local(I32);
  const fast = () => {
    f.get(laneStride).i32(4).emit(op.i32Eq);
    f.get(lanes).get(width).emit(op.i32Eq, op.i32And);
    f.get(width).i32(3).emit(op.i32And, op.i32Eqz, op.i32And);
  };
  f.if(
    fast,
    () => {
      f.for(k, () => f.i32(0), () => f.get(K), 1, () => {
        f.for(l, () => f.i32(0), () => f.get(width), 4, () => {
          f.get(dst).get(src).get(l).i32(2).emit(op.i32Shl, op.i32Add).simd(simd.v128Load, ...f.mem(0, 0)).simd(simd.v128Store, ...f.mem(0, 0));
          f.get(dst).i32(16).emit(op.i32Add).set(dst);
        });
        f.get(src).get(kStride).emit(op.i32Add).set(src);
      });
    },
    () => {
      f.for(k, () => f.i32(0), () => f.get(K), 1, () => {
        f.get(src).set(s);
        f.for(l, () => f.i32(0), () => f.get(width), 1, () => {
          f.get(dst);
          f.if(
            () => f.get(l).get(lanes).emit(op.i32LtS),
            () => f.get(s).emit(op.f32Load, ...f.mem(2, 0)).get(s).get(laneStride).emit(op.i32Add).set(s),
            () => f.emit(op.f32Const, 0, 0, 0, 0),
            F32,
          );
          f.emit(op.f32Store, ...f.mem(2, 0));
          f.get(dst).i32(4).emit(op.i32Add).set(dst);
        });
        f.get(src).get(kStride).emit(op.i32Add).set(src);
      });
    },
  );
  return f;
}

function gemm(s: GemmShape, NR: number): FnBuilder {
  const { MR, KC, MC, NC } = s;
  const f = new FnBuilder([I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32]);
  const [a, aI, aK, b, bK, bJ, c, M, K, N, j0, j1, work] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
  const L = () => f.local(I32);
  const [jc, nb, pc, kb, ic, mb, jr, ir, nr, mr, cp, beta, t0, t1, ldc, pa, pbuf, tile, r, q] = Array.from({ length: 20 }, L);
  const add = () => f.emit(op.i32Add);
  const mul = () => f.emit(op.i32Mul);
  f.get(work).set(pa);
  f.get(work).i32(4 * MC * KC).emit(op.i32Add).set(pbuf);
  f.get(pbuf).i32(4 * KC * NC).emit(op.i32Add).set(tile);
  f.get(N).i32(2).emit(op.i32Shl).set(ldc);
  f.for(jc, () => f.get(j0), () => f.get(j1), NC, () => {
    f.minI32(() => f.i32(NC), () => f.get(j1).get(jc).emit(op.i32Sub), t0, t1).set(nb);
    f.for(pc, () => f.i32(0), () => f.get(K), KC, () => {
      f.minI32(() => f.i32(KC), () => f.get(K).get(pc).emit(op.i32Sub), t0, t1).set(kb);
      f.get(pc).i32(0).emit(op.i32GtS).set(beta);
      // pack the B block: panels of NR columns
      f.for(jr, () => f.i32(0), () => f.get(nb), NR, () => {
        f.get(b).get(pc).get(bK); mul(); add();
        f.get(jc).get(jr); add(); f.get(bJ); mul(); add();
        f.get(bK).get(bJ);
        f.minI32(() => f.i32(NR), () => f.get(nb).get(jr).emit(op.i32Sub), t0, t1);
        f.get(kb);
        f.get(pbuf).get(jr).get(kb); mul(); f.i32(2).emit(op.i32Shl); add();
        f.i32(NR);
        f.call(PACK);
      });
      f.for(ic, () => f.i32(0), () => f.get(M), MC, () => {
        f.minI32(() => f.i32(MC), () => f.get(M).get(ic).emit(op.i32Sub), t0, t1).set(mb);
        // pack the A block: panels of MR rows (or read A in place)
        if (s.packA) f.for(ir, () => f.i32(0), () => f.get(mb), MR, () => {
          f.get(a).get(ic).get(ir); add(); f.get(aI); mul(); add();
          f.get(pc).get(aK); mul(); add();
          f.get(aK).get(aI);
          f.minI32(() => f.i32(MR), () => f.get(mb).get(ir).emit(op.i32Sub), t0, t1);
          f.get(kb);
          f.get(pa).get(ir).get(kb); mul(); f.i32(2).emit(op.i32Shl); add();
          f.i32(MR);
          f.call(PACK);
        });
        f.for(jr, () => f.i32(0), () => f.get(nb), NR, () => {
          f.minI32(() => f.i32(NR), () => f.get(nb).get(jr).emit(op.i32Sub), t0, t1).set(nr);
          f.for(ir, () => f.i32(0), () => f.get(mb), MR, () => {
            f.minI32(() => f.i32(MR), () => f.get(mb).get(ir).emit(op.i32Sub), t0, t1).set(mr);
            // &C[ic + ir, jc + jr]
            f.get(c).get(ic).get(ir); add(); f.get(ldc); mul(); add();
            f.get(jc).get(jr); add(); f.i32(2).emit(op.i32Shl); add();
            f.set(cp);
            // A's rows for this tile: a packed panel (lane stride 4, k step 4 * MR) or A in place
            const panelA = s.packA
              ? () => { f.get(pa).get(ir).get(kb); mul(); f.i32(2).emit(op.i32Shl); add(); f.i32(4).i32(4 * MR).get(mr); }
              : () => { f.get(a).get(ic).get(ir); add(); f.get(aI); mul(); add(); f.get(pc).get(aK); mul(); add(); f.get(aI).get(aK).get(mr); };
            const panelB = () => { f.get(pbuf).get(jr).get(kb); mul(); f.i32(2).emit(op.i32Shl); add(); };
            f.if(
              () => f.get(mr).i32(MR).emit(op.i32Eq).get(nr).i32(NR).emit(op.i32Eq, op.i32And),
              () => { panelA(); panelB(); f.get(kb).get(cp).get(ldc).get(beta).call(MICRO); },
              () => {
                // an edge tile: through the scratch tile, copying only its valid corner
                const copy = (toTile: boolean) =>
                  f.for(r, () => f.i32(0), () => f.get(mr), 1, () => {
                    f.for(q, () => f.i32(0), () => f.get(nr), 1, () => {
                      const tileAt = () => { f.get(tile).get(r).i32(NR); mul(); f.get(q); add(); f.i32(2).emit(op.i32Shl); add(); };
                      const cAt = () => { f.get(cp).get(r).get(ldc); mul(); add(); f.get(q).i32(2).emit(op.i32Shl); add(); };
                      if (toTile) { tileAt(); cAt(); } else { cAt(); tileAt(); }
                      f.emit(op.f32Load, ...f.mem(2, 0), op.f32Store, ...f.mem(2, 0));
                    });
                  });
                f.if(() => f.get(beta), () => copy(true));
                panelA(); panelB(); f.get(kb).get(tile).i32(4 * NR).get(beta).call(MICRO);
                copy(false);
              },
            );
          });
        });
      });
    });
  });
  return f;
}
