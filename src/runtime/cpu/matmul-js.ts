// CPU float32 matmul in plain JavaScript (GotoBLAS-style packing + register tiles): the
// fallback of ./matmul.ts where WebAssembly SIMD is missing.
//
// Why this shape: V8 compiles typed-array loads to scalar loads with a bounds check each,
// so the cost is dominated by loads and index arithmetic, not by flops. A register tile of
// MR x NR accumulators turns MR + NR loads into MR * NR multiply-adds. 4x3 (twelve
// accumulators) nearly fits the 16 xmm registers V8 allocates from and measured 5-10% faster
// than 4x4 (which spills), and faster than 2x4, 1x8, 8x2 (fewer flops per load). Packing both
// operands into contiguous Float64 panels makes the inner loop one sequential stream per
// operand whatever transA/transB are, and converts float32 -> float64 once instead of per use
// (Float32 panels measured slower).
//
// Blocking: one packed B micro-panel (NR*kc doubles) stays in L1 while it sweeps over a packed
// A block (mc rows x kc) sized to fit L2. K up to KC_MAX is not split, so the whole dot product
// stays in registers and is rounded to float32 once; longer K is split into ~KC blocks (without
// that, K = 4096..16384 ran at half speed) whose partial sums are kept as doubles.

const MR = 4; // rows of op(A) per register tile
const NR = 3; // columns of op(B) per register tile
const KC_MAX = 1024; // longest K run unsplit: (MR + NR) * K doubles of micro-panels stay near L1
const KC = 512; // target K block when splitting
const A_BLOCK = 1 << 16; // doubles (512 KiB): packed A block kept in L2
const B_BLOCK = 1 << 18; // doubles (2 MiB): caps the packed-B scratch; the panel in use is in L1

// Scratch reused across calls and grown on demand, so steady-state calls allocate nothing.
let packA = new Float64Array(0);
let packB = new Float64Array(0);
let accTiles = new Float64Array(0); // partial sums of every tile of a block while K is split
const tile = new Float64Array(MR * NR);

/**
 * The products with nothing to multiply: none where M or N is 0, zeros where K is 0. Returns
 * whether it handled the product (every matmul entry point starts here).
 */
export function emptyProduct(out: Float32Array, outOff: number, M: number, K: number, N: number): boolean {
  if (M <= 0 || N <= 0) return true;
  if (K > 0) return false;
  out.fill(0, outOff, outOff + M * N);
  return true;
}

/** out[M,N] = op(A) @ op(B), overwriting out (float32 storage; accumulate in JS doubles).
 * A is stored row-major as [M,K], or as [K,M] when transA (i.e. A^T is used);
 * B is stored row-major as [K,N], or as [N,K] when transB.
 * aOff/bOff/outOff are element offsets into the arrays (so callers can run batched matmuls).
 * `out` must not overlap `a` or `b`. */
export function matmulF32Js(
  a: Float32Array, aOff: number, transA: boolean,
  b: Float32Array, bOff: number, transB: boolean,
  out: Float32Array, outOff: number,
  M: number, K: number, N: number,
): void {
  if (emptyProduct(out, outOff, M, K, N)) return;
  // op(A)[i,k] = a[aOff + i*aI + k*aK];  op(B)[k,j] = b[bOff + k*bK + j*bJ]
  const aI = transA ? 1 : K, aK = transA ? M : 1;
  const bK = transB ? 1 : N, bJ = transB ? K : 1;

  // Split K only when a micro-panel pair would overflow L1; near-equal blocks avoid a runt.
  const kBlocks = K <= KC_MAX ? 1 : Math.ceil(K / KC);
  const kc = Math.ceil(K / kBlocks);
  const mc = Math.min(Math.max(MR, Math.floor(A_BLOCK / kc / MR) * MR), roundUp(M, MR));
  const nc = Math.min(Math.max(NR, Math.floor(B_BLOCK / kc / NR) * NR), roundUp(N, NR));
  if (packA.length < mc * kc) packA = new Float64Array(mc * kc);
  if (packB.length < nc * kc) packB = new Float64Array(nc * kc);
  if (kBlocks > 1 && accTiles.length < mc * nc) accTiles = new Float64Array(mc * nc);
  const pa = packA, pb = packB, acc = kBlocks === 1 ? tile : accTiles;

  for (let j0 = 0; j0 < N; j0 += nc) {
    const nb = Math.min(nc, N - j0);
    const tilesPerRow = Math.ceil(nb / NR);
    for (let i0 = 0; i0 < M; i0 += mc) {
      const mb = Math.min(mc, M - i0);
      for (let p0 = 0; p0 < K; p0 += kc) {
        const kb = Math.min(kc, K - p0);
        // With one K block the packed B block is the same for every row block: pack it once.
        if (kBlocks > 1 || i0 === 0) {
          for (let j = 0; j < nb; j += NR) {
            packPanel(b, bOff + p0 * bK + (j0 + j) * bJ, bK, bJ, Math.min(NR, nb - j), kb, pb, j * kb, NR);
          }
        }
        for (let i = 0; i < mb; i += MR) {
          packPanel(a, aOff + (i0 + i) * aI + p0 * aK, aK, aI, Math.min(MR, mb - i), kb, pa, i * kb, MR);
        }
        const carry = p0 > 0, last = p0 + kb === K;
        for (let j = 0; j < nb; j += NR) {
          const nr = Math.min(NR, nb - j);
          const o = outOff + i0 * N + j0 + j;
          for (let i = 0; i < mb; i += MR) {
            // One K block: the tile only passes through `tile`; otherwise it lives in accTiles.
            const t = kBlocks === 1 ? 0 : ((i / MR) * tilesPerRow + j / NR) * (MR * NR);
            kernel4x3(pa, i * kb, pb, j * kb, kb, acc, t, carry);
            if (last) storeTile(acc, t, out, o + i * N, N, Math.min(MR, mb - i), nr);
          }
        }
      }
    }
  }
}

function roundUp(x: number, m: number): number {
  return Math.ceil(x / m) * m;
}

/** Copies `lanes` strided lines of length K (line l, step k at src[s + l*laneStride + k*kStride])
 * into dst[d..] as K groups of `width` values, zero-padding lanes >= `lanes`: the order the
 * kernel reads them. Full panels get unrolled loops; only edge panels take the generic one. */
function packPanel(
  src: Float32Array, s: number, kStride: number, laneStride: number, lanes: number,
  K: number, dst: Float64Array, d: number, width: number,
): void {
  const l1 = laneStride, l2 = 2 * laneStride, l3 = 3 * laneStride;
  if (lanes === 4 && width === 4) {
    for (let k = 0; k < K; k++, s += kStride, d += 4) {
      dst[d] = src[s]; dst[d + 1] = src[s + l1]; dst[d + 2] = src[s + l2]; dst[d + 3] = src[s + l3];
    }
  } else if (lanes === 3 && width === 3) {
    for (let k = 0; k < K; k++, s += kStride, d += 3) {
      dst[d] = src[s]; dst[d + 1] = src[s + l1]; dst[d + 2] = src[s + l2];
    }
  } else {
    for (let k = 0; k < K; k++, s += kStride, d += width) {
      for (let l = 0; l < width; l++) dst[d + l] = l < lanes ? src[s + l * laneStride] : 0;
    }
  }
}

/** acc[t..t+12) (a row-major 4x3 tile) = packed A panel (K groups of 4) times packed B panel
 * (K groups of 3), plus the tile's previous value when `carry`.
 * The code after the loop has no branches on purpose: V8 may on-stack-replace this function
 * mid-loop, and a cold branch after the loop without type feedback then deopts on every call. */
function kernel4x3(
  pa: Float64Array, ia: number, pb: Float64Array, ib: number, K: number,
  acc: Float64Array, t: number, carry: boolean,
): void {
  let c00 = 0, c01 = 0, c02 = 0, c10 = 0, c11 = 0, c12 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c30 = 0, c31 = 0, c32 = 0;
  if (carry) {
    c00 = acc[t]; c01 = acc[t + 1]; c02 = acc[t + 2]; c10 = acc[t + 3]; c11 = acc[t + 4]; c12 = acc[t + 5];
    c20 = acc[t + 6]; c21 = acc[t + 7]; c22 = acc[t + 8]; c30 = acc[t + 9]; c31 = acc[t + 10]; c32 = acc[t + 11];
  }
  for (let k = 0; k < K; k++, ia += 4, ib += 3) {
    const b0 = pb[ib], b1 = pb[ib + 1], b2 = pb[ib + 2];
    const a0 = pa[ia], a1 = pa[ia + 1], a2 = pa[ia + 2], a3 = pa[ia + 3];
    c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2;
    c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2;
    c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2;
    c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2;
  }
  acc[t] = c00; acc[t + 1] = c01; acc[t + 2] = c02; acc[t + 3] = c10; acc[t + 4] = c11; acc[t + 5] = c12;
  acc[t + 6] = c20; acc[t + 7] = c21; acc[t + 8] = c22; acc[t + 9] = c30; acc[t + 10] = c31; acc[t + 11] = c32;
}

/** Rounds the valid mr x nr corner of the 4x3 tile at acc[t..] into out (row stride ldo). */
function storeTile(
  acc: Float64Array, t: number, out: Float32Array, o: number, ldo: number, mr: number, nr: number,
): void {
  if (mr === 4 && nr === 3) {
    out[o] = acc[t]; out[o + 1] = acc[t + 1]; out[o + 2] = acc[t + 2]; o += ldo;
    out[o] = acc[t + 3]; out[o + 1] = acc[t + 4]; out[o + 2] = acc[t + 5]; o += ldo;
    out[o] = acc[t + 6]; out[o + 1] = acc[t + 7]; out[o + 2] = acc[t + 8]; o += ldo;
    out[o] = acc[t + 9]; out[o + 1] = acc[t + 10]; out[o + 2] = acc[t + 11];
    return;
  }
  for (let i = 0; i < mr; i++) {
    for (let j = 0; j < nr; j++) out[o + i * ldo + j] = acc[t + i * NR + j];
  }
}
