/**
 * The index map of a convolution's patch matrix (the `im2col` op): which source element
 * element (m, q) of the matrix reads, or none (a zero: padding, or a position the
 * transposed map does not reach). One description, read by the cpu kernel, the WGSL index
 * kernel and the matmul operand loads of the WGSL and cpu targets, so the patch matrix of
 * a compiled convolution never has to exist in memory.
 *
 * forward:    m = (n, a, b) over [N, rows[0], rows[1]], q = (c, i, j) over [C, kh, kw];
 *             source (n, c, a*sh - ph + i*dh, b*sw - pw + j*dw).
 * transposed: the same m and q; source (n, c, (a + ph - i*dh) / sh, (b + pw - j*dw) / sw)
 *             where both divide exactly (a convolution's input gradient reads its output
 *             gradient so).
 */
import type { Attrs } from './registry.ts';

export interface WindowMap {
  /** the grid of patch positions the rows run over */
  rows: [number, number];
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  transposed: boolean;
  /** the value of a position outside the source: 0, or -inf for a max pool's padding (attr fill '-inf') */
  fill: number;
  /** the source [N, C, H, W] and the element strides it is read with */
  src: [number, number, number, number];
  strides: [number, number, number, number];
  /**
   * A pool's planes read where they lie: batch index n of the source (each channel of an
   * [N', C', H, W] tensor an image of its own, n = n' * channels + c') is read at
   * n' * outer + c' * inner instead of n * strides[0] (a tensor broadcast over the planes, or a
   * view that is no reshape of memory). Window loads only (rules/window-recompute.ts).
   */
  planes?: { channels: number; outer: number; inner: number };
}

const pair = (v: unknown): [number, number] => [(v as number[])[0], (v as number[])[1]];

export function windowMap(attrs: Attrs, src: readonly number[], strides: readonly number[]): WindowMap {
  return {
    rows: pair(attrs.out),
    kernel: pair(attrs.kernel),
    stride: pair(attrs.stride),
    padding: pair(attrs.padding),
    dilation: pair(attrs.dilation),
    transposed: attrs.transposed === true,
    // a string attr: -Infinity would not survive JSON (hashes, cse keys, dumps)
    fill: attrs.fill === '-inf' ? -Infinity : 0,
    src: [src[0], src[1], src[2], src[3]],
    strides: [strides[0], strides[1], strides[2], strides[3]],
  };
}

/** The matrix's [rows, cols]. */
export const windowShape = (w: WindowMap): [number, number] => [w.src[0] * w.rows[0] * w.rows[1], w.src[1] * w.kernel[0] * w.kernel[1]];

/** Source coordinate along one spatial dim, or -1 where the map reads a zero. */
function coord(w: WindowMap, d: 0 | 1, a: number, i: number): number {
  if (!w.transposed) {
    const x = a * w.stride[d] - w.padding[d] + i * w.dilation[d];
    return x >= 0 && x < w.src[2 + d] ? x : -1;
  }
  const t = a + w.padding[d] - i * w.dilation[d];
  if (t < 0 || t % w.stride[d] !== 0) return -1;
  const x = t / w.stride[d];
  return x < w.src[2 + d] ? x : -1;
}

/** Where source image n starts. */
export function planeOffset(w: WindowMap, n: number): number {
  const p = w.planes;
  return p ? Math.floor(n / p.channels) * p.outer + (n % p.channels) * p.inner : n * w.strides[0];
}

/** The source element offset that element (m, q) reads, or -1 for a zero. */
export function windowOffset(w: WindowMap, m: number, q: number): number {
  const [R0, R1] = w.rows;
  const [kh, kw] = w.kernel;
  const b = m % R1;
  const a = Math.floor(m / R1) % R0;
  const n = Math.floor(m / (R0 * R1));
  const j = q % kw;
  const i = Math.floor(q / kw) % kh;
  const c = Math.floor(q / (kh * kw));
  const y = coord(w, 0, a, i);
  const x = coord(w, 1, b, j);
  if (y < 0 || x < 0) return -1;
  return planeOffset(w, n) + c * w.strides[1] + y * w.strides[2] + x * w.strides[3];
}

/**
 * The gradient of the forward map (col2im), from the destination side: the sum, over the
 * kernel positions (i, j) whose window covers source element (n, c, y, x), of the matrix
 * element that read it. `at(m, q, a, b, i, j)` reads the matrix (also given: the window's position
 * (a, b) and the kernel position (i, j) inside it, for a matrix that is not stored). No atomics,
 * a fixed order.
 */
export function windowGradAt(w: WindowMap, n: number, c: number, y: number, x: number, at: (m: number, q: number, a: number, b: number, i: number, j: number) => number): number {
  const [R0, R1] = w.rows;
  const [kh, kw] = w.kernel;
  let acc = 0;
  for (let i = 0; i < kh; i++) {
    const t = y + w.padding[0] - i * w.dilation[0];
    if (t < 0 || t % w.stride[0] !== 0 || t / w.stride[0] >= R0) continue;
    for (let j = 0; j < kw; j++) {
      const u = x + w.padding[1] - j * w.dilation[1];
      if (u < 0 || u % w.stride[1] !== 0 || u / w.stride[1] >= R1) continue;
      const a = t / w.stride[0];
      const b = u / w.stride[1];
      acc += at((n * R0 + a) * R1 + b, (c * kh + i) * kw + j, a, b, i, j);
    }
  }
  return acc;
}

/**
 * A WGSL function `fn name(m: u32, q: u32) -> f32` (WGSL_PRELUDE in scope: -inf goes through f32bits) that loads element (m, q) from `buffer`
 * at `base` (a u32 expression), reading sizes through `v` (literals, or uniform words).
 */
export function windowLoadWGSL(
  name: string,
  buffer: string,
  v: (what: WindowWord) => string,
  load: (index: string) => string = (i) => `f32(${buffer}[${i}])`,
  planes?: WindowMap['planes'],
): string {
  const lines = [
    `fn ${name}(m: u32, q: u32, base: u32) -> f32 {`,
    `  let b = m % ${v('rows1')};`,
    `  let a = (m / ${v('rows1')}) % ${v('rows0')};`,
    `  let n = m / (${v('rows0')} * ${v('rows1')});`,
    `  let j = q % ${v('kw')};`,
    `  let i = (q / ${v('kw')}) % ${v('kh')};`,
    `  let c = q / (${v('kh')} * ${v('kw')});`,
  ];
  for (const [d, o, k, s] of [['0', 'a', 'i', 'y'], ['1', 'b', 'j', 'x']] as const) {
    const st = `i32(${v(`stride${d}`)})`;
    const size = `i32(${v(`src${d}`)})`;
    lines.push(`  let t${s} = i32(${o}) + i32(${v(`pad${d}`)}) - i32(${k} * ${v(`dil${d}`)});`);
    lines.push(`  let ${s}f = i32(${o} * ${v(`stride${d}`)} + ${k} * ${v(`dil${d}`)}) - i32(${v(`pad${d}`)});`);
    lines.push(`  let ${s}t = select(-1, t${s} / ${st}, t${s} >= 0 && t${s} % ${st} == 0);`);
    lines.push(`  let ${s} = select(${s}f, ${s}t, ${v('transposed')} != 0u);`);
    lines.push(`  if (${s} < 0 || ${s} >= ${size}) { return f32bits(${v('fill')}); }`);
  }
  const image = planes ? `(n / ${planes.channels}u) * ${planes.outer}u + (n % ${planes.channels}u) * ${planes.inner}u` : `n * ${v('s0')}`;
  lines.push(`  return ${load(`base + ${image} + c * ${v('s1')} + u32(y) * ${v('s2')} + u32(x) * ${v('s3')}`)};`);
  lines.push('}');
  return lines.join('\n');
}

export type WindowWord =
  | 'rows0' | 'rows1' | 'kh' | 'kw' | 'stride0' | 'stride1' | 'pad0' | 'pad1' | 'dil0' | 'dil1' | 'src0' | 'src1' | 's0' | 's1' | 's2' | 's3' | 'transposed' | 'fill';

/** The window's position (a, b) and the kernel position (i, j) inside it, as WGSL expressions. */
export interface WindowPlace {
  a: string;
  b: string;
  i: string;
  j: string;
}

/**
 * `fn name(n: u32, c: u32, y: u32, x: u32) -> f32`: windowGradAt in WGSL, reading the matrix
 * through `load(m, q, p)` (u32 expressions; p as windowGradAt's).
 */
export function windowGradWGSL(name: string, v: (what: WindowWord) => string, load: (m: string, q: string, p: WindowPlace) => string): string {
  return [
    `fn ${name}(n: u32, c: u32, y: u32, x: u32) -> f32 {`,
    '  var acc = 0.0;',
    `  for (var i = 0u; i < ${v('kh')}; i = i + 1u) {`,
    `    let t = i32(y) + i32(${v('pad0')}) - i32(i * ${v('dil0')});`,
    `    if (t < 0 || u32(t) % ${v('stride0')} != 0u || u32(t) / ${v('stride0')} >= ${v('rows0')}) { continue; }`,
    `    for (var j = 0u; j < ${v('kw')}; j = j + 1u) {`,
    `      let u = i32(x) + i32(${v('pad1')}) - i32(j * ${v('dil1')});`,
    `      if (u < 0 || u32(u) % ${v('stride1')} != 0u || u32(u) / ${v('stride1')} >= ${v('rows1')}) { continue; }`,
    `      let a = u32(t) / ${v('stride0')};`,
    `      let b = u32(u) / ${v('stride1')};`,
    `      acc = acc + ${load(`(n * ${v('rows0')} + a) * ${v('rows1')} + b`, `(c * ${v('kh')} + i) * ${v('kw')} + j`, { a: 'a', b: 'b', i: 'i', j: 'j' })};`,
    '    }',
    '  }',
    '  return acc;',
    '}',
  ].join('\n');
}

/** The words of a window map, in the order a uniform holds them (`src0`, `src1`: the source's H and W). */
export const WINDOW_WORDS: readonly WindowWord[] = ['rows0', 'rows1', 'kh', 'kw', 'stride0', 'stride1', 'pad0', 'pad1', 'dil0', 'dil1', 'src0', 'src1', 's0', 's1', 's2', 's3', 'transposed', 'fill'];

export function windowWordValues(w: WindowMap): Record<WindowWord, number> {
  return {
    rows0: w.rows[0], rows1: w.rows[1], kh: w.kernel[0], kw: w.kernel[1],
    stride0: w.stride[0], stride1: w.stride[1], pad0: w.padding[0], pad1: w.padding[1],
    dil0: w.dilation[0], dil1: w.dilation[1], src0: w.src[2], src1: w.src[3],
    s0: w.strides[0], s1: w.strides[1], s2: w.strides[2], s3: w.strides[3], transposed: w.transposed ? 1 : 0,
    fill: new Uint32Array(new Float32Array([w.fill]).buffer)[0]!,
  };
}
