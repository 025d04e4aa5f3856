/**
 * The float32 GEMM as a WebAssembly SIMD128 module, generated here (emit.ts), packed and
 * register-tiled in the GotoBLAS way, in two phases that threads can share:
 *
 *   pack(src, kStride, laneStride, lanes, K, dst, l0, l1, width)
 *     packs lanes l0 <= l < l1 (l0 a multiple of `width`) of an operand into zero-padded panels
 *     of `width` lanes: lane l, step k at byte src + l*laneStride + k*kStride. The packed
 *     operand is laid out by K blocks of KC: block pc at element pc * roundUp(lanes, width),
 *     panel p within it at p * kb, then kb groups of `width`. B is packed so (lanes = columns,
 *     width NR); a transposed A too (lanes = rows, width MR), since reading it in place would
 *     step a whole row of memory per k.
 *   gemm(a, aI, aK, flags, bp, c, M, K, N, i0, i1, j0, j1, work)
 *     C[i, j] (row-major, ldc N) = sum_k op(A)[i, k] * op(B)[k, j] for i0 <= i < i1 and
 *     j0 <= j < j1 (i0 a multiple of MR when A is packed, j0 of NR), from packed B at bp and
 *     either packed A at a (flags & GEMM_A_PACKED) or op(A)[i, k] in place at a + i*aI + k*aK,
 *     and B packed at bp or (flags & GEMM_B_IN_PLACE) a row-major [K, N] B read in place; `work` is
 *     this thread's scratch (one edge tile).
 *   gemmNT(a, b, c, M, K, N, i0, i1, j0, j1, work)
 *     C = A @ B^T with both operands read along K in place, no packing (gemm-nt-dot.ts).
 *
 * Packing every panel once per product (not once per thread or chunk) lets threads split C
 * into any row and column chunks without repeating work. The micro-kernel keeps MR x NR/4
 * f32x4 accumulators in registers; per k it loads NR/4 vectors of B and splats MR values of A.
 * With relaxed SIMD (`fma`) each step is one f32x4.relaxed_madd (a fused multiply-add where
 * the CPU has one); without it, f32x4.mul then f32x4.add.
 */
import { emitModule, F32, FnBuilder, I32, op, simd, V128 } from './emit.ts';
import { gemmNT, microDot } from './gemm-nt-dot.ts';

export interface GemmShape {
  /** rows of a register tile */
  MR: number;
  /** f32x4 vectors per tile row (NR = 4 * NRV columns) */
  NRV: number;
  /** K block (packed panels of A and B along K) */
  KC: number;
  /** rows of an A block swept by one B panel (kept in L2), a multiple of MR */
  MC: number;
  /** columns of a B block reused across A blocks, a multiple of NR */
  NC: number;
  /** k steps unrolled per micro-kernel iteration (default 1) */
  KU?: number;
}

// Measured here (Xeon, Node 20, load ~17): median CPU time per call with the variants
// alternated call by call, 2-3 s per shape: with FMA, 4 x 8 runs ~29-36 GFLOP/s on one core
// (the seed's products and 512^3 to 2048^2 x 512), 6 x 8 ~22-26 and unrolling k by 2 or 4 ~23-27
// (V8 spills or reloads vector registers); the previous 4 x 8 kernel without FMA ~22-29. KC, MC
// and NC within 2x of these moved nothing beyond noise. A row-major A is read in place: packing
// it was a strided gather as costly as the product when split into column chunks.
export const GEMM_SHAPE: GemmShape = { MR: 4, NRV: 2, KC: 512, MC: 96, NC: 512, KU: 1 };

/** Bytes of scratch one thread needs: one edge tile. */
export function gemmWorkBytes(s: GemmShape = GEMM_SHAPE): number {
  return 4 * s.MR * 4 * s.NRV + 64;
}

/** Elements of an operand packed into panels of `width` lanes (see `pack`). */
export function packedElements(lanes: number, K: number, width: number): number {
  return Math.ceil(lanes / width) * width * K;
}

export interface GemmModuleOptions {
  /** the imported memory env.mem: shared memories need a maximum */
  memory: { min: number; max: number; shared: boolean };
  /** fused multiply-add through relaxed SIMD (validate the module before relying on it) */
  fma?: boolean;
  shape?: GemmShape;
}

export function gemmModuleBytes(o: GemmModuleOptions): Uint8Array<ArrayBuffer> {
  const s = o.shape ?? GEMM_SHAPE;
  const fma = !!o.fma;
  return emitModule({
    memory: o.memory,
    functions: [
      { fn: micro(s.MR, s.NRV, false, fma, s.KU ?? 1) },
      { fn: micro(s.MR, s.NRV, true, fma, s.KU ?? 1) },
      { fn: packPanel() },
      { name: 'pack', fn: pack(s.KC) },
      { name: 'gemm', fn: gemm(s) },
      { fn: microDot(fma) },
      { name: 'gemmNT', fn: gemmNT(MICRO_DOT) },
    ],
  });
}
/** gemm's flags: A packed (else read in place); B read in place as row-major [K, N] (else packed panels at bp) */
export const GEMM_A_PACKED = 1;
export const GEMM_B_IN_PLACE = 2;

const MICRO_IN_PLACE = 0;
const MICRO_PACKED = 1;
const PACK_PANEL = 2;
const MICRO_DOT = 5;

/**
 * micro(pa, aLane, aK, mr, pb, K, c, ldc, beta, bk): the MR x NR tile at c (row stride ldc bytes) =
 * A rows (row r at pa + r*aLane, step aK per k; in place, rows >= mr read row 0, whose results
 * are not stored; packed, rows at pa + 4r, step 4*MR) x NR columns of B at pb, the next k bk
 * bytes on (a packed panel: 4*NR; B in place: its row stride) (+ the tile when beta).
 */
function micro(MR: number, NRV: number, packedA: boolean, fma: boolean, KU: number): FnBuilder {
  const f = new FnBuilder([I32, I32, I32, I32, I32, I32, I32, I32, I32, I32]);
  const [pa, aLane, aK, mr, pb, K, c, ldc, beta, bk] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const acc = Array.from({ length: MR * NRV }, () => f.local(V128));
  const bv = Array.from({ length: NRV }, () => f.local(V128));
  const av = f.local(V128);
  const rows = packedA ? [] : Array.from({ length: MR }, () => f.local(I32));
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
  // one k step; u-th of an unrolled group: packed A is read at constant offsets, B one step of bk on
  const kStep = (u: number) => {
    for (let v = 0; v < NRV; v++) f.get(pb).simd(simd.v128Load, ...f.mem(2, 16 * v)).set(bv[v]);
    f.get(pb).get(bk).emit(op.i32Add).set(pb);
    for (let r = 0; r < MR; r++) {
      if (packedA) f.get(pa).simd(simd.v128Load32Splat, ...f.mem(2, 4 * (MR * u + r))).set(av);
      else f.get(rows[r]).simd(simd.v128Load32Splat, ...f.mem(2, 0)).set(av);
      for (let v = 0; v < NRV; v++) {
        if (fma) f.get(av).get(bv[v]).get(at(r, v)).simd(simd.f32x4RelaxedMadd).set(at(r, v));
        else f.get(at(r, v)).get(av).get(bv[v]).simd(simd.f32x4Mul).simd(simd.f32x4Add).set(at(r, v));
      }
    }
    if (!packedA) for (let r = 0; r < MR; r++) f.get(rows[r]).get(aK).emit(op.i32Add).set(rows[r]);
  };
  const advance = (steps: number) => {
    if (packedA) f.get(pa).i32(4 * MR * steps).emit(op.i32Add).set(pa);
  };
  // KU steps per iteration (less loop overhead per multiply-add), then the K % KU left
  f.for(k, () => f.i32(KU - 1), () => f.get(K), KU, () => {
    for (let u = 0; u < KU; u++) kStep(u);
    advance(KU);
  });
  f.for(k, () => f.get(K).i32(KU).emit(op.i32DivU).i32(KU).emit(op.i32Mul), () => f.get(K), 1, () => {
    kStep(0);
    advance(1);
  });
  f.get(c).set(row);
  for (let r = 0; r < MR; r++) {
    for (let v = 0; v < NRV; v++) f.get(row).get(at(r, v)).simd(simd.v128Store, ...f.mem(2, 16 * v));
    if (r < MR - 1) f.get(row).get(ldc).emit(op.i32Add).set(row);
  }
  return f;
}

/** f32 lane indices -> the 16 byte lanes of i8x16.shuffle (0-3 the first operand, 4-7 the second) */
const lanes4 = (l: number[]) => l.flatMap((x) => [4 * x, 4 * x + 1, 4 * x + 2, 4 * x + 3]);

/**
 * packPanel(src, kStride, laneStride, lanes, K, dst, width): K groups of `width` f32 at dst, lane
 * l of group k from src + l*laneStride + k*kStride, zeros for lanes >= `lanes`. Full panels
 * are vector code: lanes contiguous in memory (laneStride 4) are copied as vectors (and the
 * width % 4 lanes left one by one); lanes
 * contiguous along k (kStride 4, a transposed operand) are loaded 4 k at a time per lane and
 * transposed 4 x 4 in registers. Only edge panels and the last K % 4 steps go element by element.
 */
function packPanel(): FnBuilder {
  const f = new FnBuilder([I32, I32, I32, I32, I32, I32, I32]);
  const [src, kStride, laneStride, lanes, K, dst, width] = [0, 1, 2, 3, 4, 5, 6];
  const k = f.local(I32);
  const l = f.local(I32);
  const s = f.local(I32);
  const d = f.local(I32);
  const v = Array.from({ length: 4 }, () => f.local(V128));
  const t = Array.from({ length: 4 }, () => f.local(V128));
  const full = () => { f.get(lanes).get(width).emit(op.i32Eq); f.get(width).i32(3).emit(op.i32And, op.i32Eqz, op.i32And); };
  // element by element from step k (its pointers already advanced), to K
  const scalarTail = () => {
    f.for(k, () => f.get(k), () => f.get(K), 1, () => {
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
  };
  f.i32(0).set(k);
  const at = (base: number) => { f.get(base).get(l).i32(2).emit(op.i32Shl, op.i32Add); };
  f.if(
    () => f.get(laneStride).i32(4).emit(op.i32Eq).get(lanes).get(width).emit(op.i32Eq, op.i32And),
    () => {
      // whole vectors, then the width % 4 lanes left (a 6-row panel of A)
      f.get(width).i32(-4).emit(op.i32And).set(d);
      f.for(k, () => f.i32(0), () => f.get(K), 1, () => {
        f.for(l, () => f.i32(0), () => f.get(d), 4, () => {
          at(dst); at(src); f.simd(simd.v128Load, ...f.mem(0, 0)).simd(simd.v128Store, ...f.mem(0, 0));
        });
        f.for(l, () => f.get(d), () => f.get(width), 1, () => {
          at(dst); at(src); f.emit(op.f32Load, ...f.mem(2, 0), op.f32Store, ...f.mem(2, 0));
        });
        f.get(dst).get(width).i32(2).emit(op.i32Shl, op.i32Add).set(dst);
        f.get(src).get(kStride).emit(op.i32Add).set(src);
      });
    },
    () => {
      f.if(
        () => { f.get(kStride).i32(4).emit(op.i32Eq); full(); f.emit(op.i32And); },
        () => {
          // 4 k at a time: per group of 4 lanes, 4 loads along k, a 4 x 4 transpose, 4 stores
          f.block(() => f.loop(() => {
            f.get(k).i32(4).emit(op.i32Add).get(K).emit(op.i32GtS, op.brIf, 1);
            f.for(l, () => f.i32(0), () => f.get(width), 4, () => {
              f.get(src).get(l).get(laneStride).emit(op.i32Mul, op.i32Add).set(s);
              for (let r = 0; r < 4; r++) {
                f.get(s).simd(simd.v128Load, ...f.mem(0, 0)).set(v[r]);
                if (r < 3) f.get(s).get(laneStride).emit(op.i32Add).set(s);
              }
              f.get(v[0]).get(v[1]).simd(simd.i8x16Shuffle, ...lanes4([0, 4, 1, 5])).set(t[0]);
              f.get(v[0]).get(v[1]).simd(simd.i8x16Shuffle, ...lanes4([2, 6, 3, 7])).set(t[1]);
              f.get(v[2]).get(v[3]).simd(simd.i8x16Shuffle, ...lanes4([0, 4, 1, 5])).set(t[2]);
              f.get(v[2]).get(v[3]).simd(simd.i8x16Shuffle, ...lanes4([2, 6, 3, 7])).set(t[3]);
              // group k + q of this lane quad at dst + (q*width + l)*4
              f.get(dst).get(l).i32(2).emit(op.i32Shl, op.i32Add).set(d);
              const store = (x: number, y: number, sel: number[]) => {
                f.get(d).get(t[x]).get(t[y]).simd(simd.i8x16Shuffle, ...lanes4(sel)).simd(simd.v128Store, ...f.mem(0, 0));
                f.get(d).get(width).i32(2).emit(op.i32Shl, op.i32Add).set(d);
              };
              store(0, 2, [0, 1, 4, 5]);
              store(0, 2, [2, 3, 6, 7]);
              store(1, 3, [0, 1, 4, 5]);
              store(1, 3, [2, 3, 6, 7]);
            });
            f.get(src).i32(16).emit(op.i32Add).set(src);
            f.get(dst).get(width).i32(4).emit(op.i32Shl, op.i32Add).set(dst);
            f.get(k).i32(4).emit(op.i32Add).set(k);
            f.emit(op.br, 0);
          }));
          scalarTail();
        },
        scalarTail,
      );
    },
  );
  return f;
}

/** pack(src, kStride, laneStride, lanes, K, dst, l0, l1, width): see the file comment. */
function pack(KC: number): FnBuilder {
  const f = new FnBuilder([I32, I32, I32, I32, I32, I32, I32, I32, I32]);
  const [src, kStride, laneStride, lanes, K, dst, l0, l1, width] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const [pc, kb, p, padded, t0, t1] = Array.from({ length: 6 }, () => f.local(I32));
  // padded = ceil(lanes / width) * width
  f.get(lanes).get(width).emit(op.i32Add).i32(1).emit(op.i32Sub).get(width).emit(op.i32DivU).get(width).emit(op.i32Mul).set(padded);
  f.for(pc, () => f.i32(0), () => f.get(K), KC, () => {
    f.minI32(() => f.i32(KC), () => f.get(K).get(pc).emit(op.i32Sub), t0, t1).set(kb);
    f.for(p, () => f.get(l0), () => f.get(l1), { local: width }, () => {
      f.get(src).get(p).get(laneStride).emit(op.i32Mul, op.i32Add).get(pc).get(kStride).emit(op.i32Mul, op.i32Add);
      f.get(kStride).get(laneStride);
      f.minI32(() => f.get(width), () => f.get(lanes).get(p).emit(op.i32Sub), t0, t1);
      f.get(kb);
      // dst + 4 * (pc * padded + p * kb)
      f.get(dst).get(pc).get(padded).emit(op.i32Mul).get(p).get(kb).emit(op.i32Mul, op.i32Add).i32(2).emit(op.i32Shl, op.i32Add);
      f.get(width);
      f.call(PACK_PANEL);
    });
  });
  return f;
}

function gemm(s: GemmShape): FnBuilder {
  const { MR, KC, MC, NC } = s;
  const NR = 4 * s.NRV;
  const f = new FnBuilder([I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32]);
  const [a, aI, aK, flags, bp, c, M, K, N, i0, i1, j0, j1, work] = Array.from({ length: 14 }, (_, i) => i);
  const L = () => f.local(I32);
  const [jc, nb, pc, kb, ic, mb, jr, ir, nr, mr, cp, beta, t0, t1, ldc, mPad, nPad, bBlock, pb, r, q, pa, aPacked, bFlat, bk] = Array.from({ length: 25 }, L);
  const add = () => f.emit(op.i32Add);
  const mul = () => f.emit(op.i32Mul);
  const shl2 = () => f.i32(2).emit(op.i32Shl);
  f.get(N).i32(2).emit(op.i32Shl).set(ldc);
  f.get(flags).i32(GEMM_A_PACKED).emit(op.i32And).set(aPacked);
  f.get(flags).i32(GEMM_B_IN_PLACE).emit(op.i32And).set(bFlat);
  // B's bytes per k: a packed panel's NR floats, or B's row in place
  f.if(() => f.get(bFlat), () => f.get(ldc), () => f.i32(4 * NR), I32).set(bk);
  f.get(M).i32(MR - 1).emit(op.i32Add).i32(MR).emit(op.i32DivU).i32(MR).emit(op.i32Mul).set(mPad);
  f.get(N).i32(NR - 1).emit(op.i32Add).i32(NR).emit(op.i32DivU).i32(NR).emit(op.i32Mul).set(nPad);
  f.for(jc, () => f.get(j0), () => f.get(j1), NC, () => {
    f.minI32(() => f.i32(NC), () => f.get(j1).get(jc).emit(op.i32Sub), t0, t1).set(nb);
    f.for(pc, () => f.i32(0), () => f.get(K), KC, () => {
      f.minI32(() => f.i32(KC), () => f.get(K).get(pc).emit(op.i32Sub), t0, t1).set(kb);
      f.get(pc).i32(0).emit(op.i32GtS).set(beta);
      f.if(() => f.get(bFlat), () => { f.get(bp).get(pc).get(ldc); mul(); add(); }, () => { f.get(bp).get(pc).get(nPad); mul(); shl2(); add(); }, I32).set(bBlock);
      f.for(ic, () => f.get(i0), () => f.get(i1), MC, () => {
        f.minI32(() => f.i32(MC), () => f.get(i1).get(ic).emit(op.i32Sub), t0, t1).set(mb);
        f.for(jr, () => f.i32(0), () => f.get(nb), NR, () => {
          f.minI32(() => f.i32(NR), () => f.get(nb).get(jr).emit(op.i32Sub), t0, t1).set(nr);
          f.if(
            () => f.get(bFlat),
            () => { f.get(bBlock).get(jc).get(jr); add(); shl2(); add(); },
            () => { f.get(bBlock).get(jc).get(jr); add(); f.get(kb); mul(); shl2(); add(); },
            I32,
          ).set(pb);
          f.for(ir, () => f.i32(0), () => f.get(mb), MR, () => {
            f.minI32(() => f.i32(MR), () => f.get(mb).get(ir).emit(op.i32Sub), t0, t1).set(mr);
            // &C[ic + ir, jc + jr]
            f.get(c).get(ic).get(ir); add(); f.get(ldc); mul(); add();
            f.get(jc).get(jr); add(); shl2(); add();
            f.set(cp);
            // A's rows for this tile: a packed panel, or in place
            f.if(
              () => f.get(aPacked),
              () => { f.get(a).get(pc).get(mPad); mul(); f.get(ic).get(ir); add(); f.get(kb); mul(); add(); shl2(); add(); },
              () => { f.get(a).get(ic).get(ir); add(); f.get(aI); mul(); add(); f.get(pc).get(aK); mul(); add(); },
              I32,
            );
            f.set(pa);
            const micro = (cAt: () => void, ldcAt: () => void) => {
              const args = () => { f.get(pa).get(aI).get(aK).get(mr).get(pb).get(kb); cAt(); ldcAt(); f.get(beta).get(bk); };
              f.if(() => f.get(aPacked), () => { args(); f.call(MICRO_PACKED); }, () => { args(); f.call(MICRO_IN_PLACE); });
            };
            f.if(
              () => f.get(mr).i32(MR).emit(op.i32Eq).get(nr).i32(NR).emit(op.i32Eq, op.i32And),
              () => micro(() => f.get(cp), () => f.get(ldc)),
              () => {
                // an edge tile: through the scratch tile, copying only its valid corner
                const copy = (toTile: boolean) =>
                  f.for(r, () => f.i32(0), () => f.get(mr), 1, () => {
                    f.for(q, () => f.i32(0), () => f.get(nr), 1, () => {
                      const tileAt = () => { f.get(work).get(r).i32(NR); mul(); f.get(q); add(); shl2(); add(); };
                      const cAt = () => { f.get(cp).get(r).get(ldc); mul(); add(); f.get(q); shl2(); add(); };
                      if (toTile) { tileAt(); cAt(); } else { cAt(); tileAt(); }
                      f.emit(op.f32Load, ...f.mem(2, 0), op.f32Store, ...f.mem(2, 0));
                    });
                  });
                f.if(() => f.get(beta), () => copy(true));
                micro(() => f.get(work), () => f.i32(4 * NR));
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
