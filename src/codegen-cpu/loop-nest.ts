/**
 * Loop nests over a shape that carry one element offset per array, stepped by that array's
 * strides: no index is ever divided back into coordinates. Dims every array reads
 * contiguously are folded into one longer loop first, size-1 dims are dropped.
 */

export interface Walk {
  /** element offset of the array at coordinate 0 */
  base: number;
  /** element stride per dim of the loop shape (0: broadcast) */
  strides: readonly number[];
}

/** Folds dims that are contiguous for every array (and drops size-1 dims): fewer, longer loops. */
export function mergeDims(shape: readonly number[], strides: readonly (readonly number[])[]): { dims: number[]; strides: number[][] } {
  const dims: number[] = [];
  const out: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = dims.length - 1;
    if (last >= 0 && strides.every((s, k) => out[k][last] === s[d] * shape[d])) {
      dims[last] *= shape[d];
      strides.forEach((s, k) => (out[k][last] = s[d]));
    } else {
      dims.push(shape[d]);
      strides.forEach((s, k) => out[k].push(s[d]));
    }
  }
  return { dims, strides: out };
}

/**
 * `for` loops over `shape` (nothing at all when it has no elements); inside, `${tag}${k}` is
 * array k's element offset. Each level starts its offsets from the enclosing level's and
 * adds its stride per step.
 */
export function offsetLoops(shape: readonly number[], walks: readonly Walk[], body: string[], tag: string, pad = ''): string[] {
  if (shape.some((n) => n === 0)) return [];
  const m = mergeDims(shape, walks.map((w) => w.strides));
  const name = (k: number, level: number) => `${tag}${k}_${level}`;
  const lines: string[] = [];
  // level 0: the bases; the body reads the innermost level's offsets under the plain names
  walks.forEach((w, k) => lines.push(`${pad}let ${name(k, 0)} = ${w.base};`));
  const open = (level: number, p: string) => {
    if (level === m.dims.length) {
      walks.forEach((_, k) => lines.push(`${p}const ${tag}${k} = ${name(k, level)};`));
      lines.push(...body.map((l) => p + l));
      return;
    }
    const i = `${tag}i${level}`;
    const init = walks.map((_, k) => `${name(k, level + 1)} = ${name(k, level)}`);
    const step = walks.flatMap((_, k) => (m.strides[k][level] === 0 ? [] : [`${name(k, level + 1)} += ${m.strides[k][level]}`]));
    lines.push(`${p}for (let ${[`${i} = 0`, ...init].join(', ')}; ${i} < ${m.dims[level]}; ${[`${i}++`, ...step].join(', ')}) {`);
    open(level + 1, p + '  ');
    lines.push(`${p}}`);
  };
  open(0, pad);
  return lines;
}
