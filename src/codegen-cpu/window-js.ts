/**
 * A convolution's patch matrix (im2col) and its gradient (col2im, and a max pool's col2imAt) as generated loops over
 * the window map's own coordinates (ir/window.ts): batch, output position, channel and
 * kernel position as nested loops with the sizes as constants, the source read through its
 * strides where it lies. The eager kernel decomposes every (m, q) back into six
 * coordinates with divisions (~40 ns an element); these compute the same elements, and
 * col2im sums in windowGradAt's order, so the values are the same bits.
 */
import type { WindowMap } from '../ir/window.ts';

/** Source coordinate along spatial dim d for output position `a` and kernel offset `i`, with its validity test. */
function coord(w: WindowMap, d: 0 | 1, a: string, i: string, v: string): string[] {
  const size = w.src[2 + d];
  if (!w.transposed) return [`const ${v} = ${a} * ${w.stride[d]} - ${w.padding[d]} + ${i} * ${w.dilation[d]};`, `const ${v}ok = ${v} >= 0 && ${v} < ${size};`];
  // the transposed map: the position divides by the stride exactly, or reads a zero
  const t = `${v}t`;
  const s = w.stride[d];
  return [
    `const ${t} = ${a} + ${w.padding[d]} - ${i} * ${w.dilation[d]};`,
    s === 1 ? `const ${v} = ${t};` : `const ${v} = ${t} / ${s};`,
    `const ${v}ok = ${t} >= 0 && ${s === 1 ? '' : `${t} % ${s} === 0 && `}${v} < ${size};`,
  ];
}

/**
 * Lines writing the patch matrix of `w` from `src` into `out` (row-major
 * [N * rows0 * rows1, C * kh * kw]), row by row, each row's elements in order.
 */
export function im2colLines(w: WindowMap, src: string, out: string): string[] {
  const [N, C] = w.src;
  const [R0, R1] = w.rows;
  const [kh, kw] = w.kernel;
  const [s0, s1, s2, s3] = w.strides;
  const fill = w.fill === -Infinity ? '-Infinity' : '0';
  if (N * R0 * R1 * C * kh * kw === 0) return [];
  return [
    'let o = 0;',
    `for (let n = 0; n < ${N}; n++) {`,
    `  for (let a = 0; a < ${R0}; a++) {`,
    `    for (let b = 0; b < ${R1}; b++) {`,
    `      for (let c = 0; c < ${C}; c++) {`,
    `        const base = n * ${s0} + c * ${s1};`,
    `        for (let i = 0; i < ${kh}; i++) {`,
    ...coord(w, 0, 'a', 'i', 'y').map((l) => '          ' + l),
    `          const row = base + y * ${s2};`,
    `          for (let j = 0; j < ${kw}; j++) {`,
    ...coord(w, 1, 'b', 'j', 'x').map((l) => '            ' + l),
    `            ${out}[o++] = yok && xok ? ${src}[row + x * ${s3}] : ${fill};`,
    '          }',
    '        }',
    '      }',
    '    }',
    '  }',
    '}',
  ];
}

/**
 * Lines writing col2im of the matrix `mat` (read through strides [sm, sq]) into `out`
 * (row-major [N, C, H, W]): each element the sum, over the kernel positions whose window
 * covers it, of the matrix element that read it (windowGradAt's order, in a double).
 */
export function col2imLines(w: WindowMap, mat: string, matStrides: readonly number[], out: string): string[] {
  const [sm, sq] = matStrides;
  return windowGradLines(w, (m, q) => `${mat}[(${m}) * ${sm} + (${q}) * ${sq}]`, out);
}

/**
 * col2imAt (a max pool's gradient): the same sum with no matrix, the window at (n, c, a, b)
 * adding g there where its argmax idx is this kernel position (both [N, C, Ho, Wo], read
 * through their strides).
 */
export function col2imAtLines(w: WindowMap, g: string, gStrides: readonly number[], idx: string, idxStrides: readonly number[], out: string): string[] {
  const off = (s: readonly number[]) => `n * ${s[0]} + c * ${s[1]} + a * ${s[2]} + b * ${s[3]}`;
  return windowGradLines(w, () => `(${idx}[${off(idxStrides)}] === i * ${w.kernel[1]} + j ? ${g}[${off(gStrides)}] : 0)`, out);
}

/** The loops of windowGradAt; `term` reads the element (m, q) with n, c, a, b, i, j in scope. */
function windowGradLines(w: WindowMap, term: (m: string, q: string) => string, out: string): string[] {
  const [N, C, H, W] = w.src;
  const [R0, R1] = w.rows;
  const [kh, kw] = w.kernel;
  if (N * C * H * W === 0) return [];
  const pos = (d: 0 | 1, at: string, k: string, v: string, rows: number) => {
    const s = w.stride[d];
    const t = `${v}t`;
    return [
      `const ${t} = ${at} + ${w.padding[d]} - ${k} * ${w.dilation[d]};`,
      `if (${t} < 0${s === 1 ? '' : ` || ${t} % ${s} !== 0`} || ${s === 1 ? t : `${t} / ${s}`} >= ${rows}) continue;`,
      `const ${v} = ${s === 1 ? t : `${t} / ${s}`};`,
    ];
  };
  return [
    'let o = 0;',
    `for (let n = 0; n < ${N}; n++) {`,
    `  for (let c = 0; c < ${C}; c++) {`,
    `    for (let y = 0; y < ${H}; y++) {`,
    `      for (let x = 0; x < ${W}; x++) {`,
    '        let acc = 0;',
    `        for (let i = 0; i < ${kh}; i++) {`,
    ...pos(0, 'y', 'i', 'a', R0).map((l) => '          ' + l),
    `          for (let j = 0; j < ${kw}; j++) {`,
    ...pos(1, 'x', 'j', 'b', R1).map((l) => '            ' + l),
    `            acc += ${term(`(n * ${R0} + a) * ${R1} + b`, `(c * ${kh} + i) * ${kw} + j`)};`,
    '          }',
    '        }',
    `        ${out}[o++] = acc;`,
    '      }',
    '    }',
    '  }',
    '}',
  ];
}
