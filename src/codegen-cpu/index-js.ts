/**
 * Index bodies (slice, sliceScatter, gather, scatterAdd; im2col, col2im and col2imAt in window-js.ts) as generated JavaScript loops that
 * read every operand through its strides where it lies: no row-major copy of a view first,
 * no coordinates per element (the eager kernel's general walk cost ~30 ns an element, the
 * copy before it as much again). Each computes what the eager kernel
 * (runtime/cpu/indexing.ts) computes, in the same order, so the values are the same bits.
 * Index values out of range throw the eager kernel's error before anything is written.
 */
import type { IndexBody } from '../passes/kernel-ir.ts';
import { outOfBounds } from '../ir/value-checks.ts';
import { numel, stridesOf } from '../ir/shape.ts';
import { compileJs, type JsKernel } from './js-kernels.ts';
import { offsetLoops } from './loop-nest.ts';
import { col2imAtLines, col2imLines, im2colLines } from './window-js.ts';
import { windowMap } from '../ir/window.ts';

export interface IndexJs {
  source: string;
  fn: JsKernel;
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((n, i) => n === b[i]);
const isRowMajor = (shape: readonly number[], strides: readonly number[]) => {
  const rm = stridesOf(shape);
  return strides.every((s, d) => shape[d] === 1 || s === rm[d]);
};

/** The loops of an index body, or null where this module has no loop for it (the caller runs the eager kernel). */
export function indexJs(b: IndexBody, header: string[] = []): IndexJs | null {
  const lines = [...header.map((h) => `// ${h}`)];
  b.inputs.forEach((_, k) => lines.push(`const in${k} = ins[${k}];`));
  lines.push('const out0 = outs[0];');
  const outRm = stridesOf(b.shape);
  switch (b.op) {
    case 'slice': {
      const [x] = b.inputs;
      const starts = b.attrs.starts as number[];
      const steps = b.attrs.steps as number[];
      const base = starts.reduce((p, s, d) => p + s * x.strides[d], 0);
      lines.push(...offsetLoops(b.shape, [{ base: 0, strides: outRm }, { base, strides: steps.map((s, d) => s * x.strides[d]) }], ['out0[p0] = in0[p1];'], 'p'));
      return plain(lines);
    }
    case 'sliceScatter': {
      const [x, src] = b.inputs;
      const starts = b.attrs.starts as number[];
      const steps = b.attrs.steps as number[];
      // the base tensor first (a view read through its strides), then the source over its slice
      if (isRowMajor(x.shape, x.strides)) lines.push('out0.set(in0);');
      else lines.push(...offsetLoops(b.shape, [{ base: 0, strides: outRm }, { base: 0, strides: x.strides }], ['out0[p0] = in0[p1];'], 'p'));
      const base = starts.reduce((p, s, d) => p + s * outRm[d], 0);
      lines.push(...offsetLoops(src.shape, [{ base, strides: steps.map((s, d) => s * outRm[d]) }, { base: 0, strides: src.strides }], ['out0[q0] = in1[q1];'], 'q'));
      return plain(lines);
    }
    case 'gather': {
      const [x, index] = b.inputs;
      const dim = b.attrs.dim as number;
      const size = x.shape[dim];
      if (!sameShape(index.shape, b.shape)) return null;
      lines.push(...checkIndex(index, size));
      const xs = x.strides.map((s, d) => (d === dim ? 0 : s));
      lines.push(...offsetLoops(b.shape, [{ base: 0, strides: outRm }, { base: 0, strides: xs }, { base: 0, strides: index.strides }], [`out0[p0] = in0[p1 + in1[p2] * ${x.strides[dim]}];`], 'p'));
      return checked(lines, dim, size);
    }
    case 'scatterAdd': {
      const [x, index] = b.inputs;
      const dim = b.attrs.dim as number;
      const size = b.shape[dim];
      if (!sameShape(index.shape, x.shape)) return null;
      lines.push(...checkIndex(index, size));
      // sums in doubles, in source order (the eager kernel's), stored once
      lines.push(`const acc = new Float64Array(${numel(b.shape)});`);
      const os = outRm.map((s, d) => (d === dim ? 0 : s));
      lines.push(...offsetLoops(x.shape, [{ base: 0, strides: os }, { base: 0, strides: x.strides }, { base: 0, strides: index.strides }], [`acc[p0 + in1[p2] * ${outRm[dim]}] += in0[p1];`], 'p'));
      lines.push('out0.set(acc);');
      return checked(lines, dim, size);
    }
    case 'im2col': {
      const [x] = b.inputs;
      lines.push(...im2colLines(windowMap(b.attrs, x.shape, x.strides), 'in0', 'out0'));
      return plain(lines);
    }
    case 'col2im': {
      const [x] = b.inputs;
      lines.push(...col2imLines(windowMap(b.attrs, b.shape, outRm), 'in0', x.strides, 'out0'));
      return plain(lines);
    }
    case 'col2imAt': {
      const [g, idx] = b.inputs;
      lines.push(...col2imAtLines(windowMap(b.attrs, b.shape, outRm), 'in0', g.strides, 'in1', idx.strides, 'out0'));
      return plain(lines);
    }
    default:
      return null;
  }
}

/** A loop over the index values that returns the first one outside [0, size) (the wrapper throws it). */
function checkIndex(index: IndexBody['inputs'][number], size: number): string[] {
  // a broadcast dim repeats the same values: walked once
  const shape = index.shape.map((n, d) => (index.strides[d] === 0 ? 1 : n));
  return offsetLoops(shape, [{ base: 0, strides: index.strides }], ['const v = in1[c0];', `if (!(v >= 0 && v < ${size})) return v;`], 'c');
}

function plain(lines: string[]): IndexJs {
  const source = lines.join('\n');
  return { source, fn: compileJs(source) };
}

function checked(lines: string[], dim: number, size: number): IndexJs {
  const source = lines.join('\n');
  const inner = compileJs(source) as unknown as (...a: Parameters<JsKernel>) => number | undefined;
  const fn: JsKernel = (ins, outs, sc) => {
    const bad = inner(ins, outs, sc);
    if (bad !== undefined) throw outOfBounds(bad, dim, size);
  };
  return { source, fn };
}
