/**
 * CPU elementwise kernels, generated from the registry's formulas: one JavaScript
 * function per (op, attrs, operand kinds), compiled once with `new Function` so the
 * inner loop is as tight as hand-written code. Broadcasting, permutes and expands
 * are all "strided reads": each operand comes with a stride per output dim.
 */
import type { HostArray } from '../../ir/dtype.ts';
import type { Attrs, OpDef } from '../../ir/registry.ts';
import { jsLang } from '../../ir/scalar-lang.ts';
import { stridesOf } from '../../ir/shape.ts';

export interface StridedArg {
  arr: HostArray;
  /** one stride per output dim (0 where the operand broadcasts) */
  strides: number[];
}
export type EwArg = StridedArg | number;

type RowKernel = (out: HostArray, o: number, n: number, ...rest: unknown[]) => void;
const kernels = new Map<string, RowKernel>();

/**
 * Operand kinds: 's' a number; 't' a strided row; 'c' a contiguous row (stride 1: no multiply
 * per load); 'b' a broadcast row (stride 0: loaded once). Measured on a 100k-element mul:
 * 333 us through the generic strided loads, 104 us for a plain loop.
 */
type Kind = 's' | 't' | 'c' | 'b';

function rowKernel(op: OpDef, attrs: Attrs, kinds: Kind[]): RowKernel {
  const key = `${op.name}|${JSON.stringify(attrs)}|${kinds.join('')}`;
  let k = kernels.get(key);
  if (k) return k;
  const params: string[] = ['out', 'o', 'n'];
  const loads: string[] = [];
  const once: string[] = [];
  const names = kinds.map((kind, i) => {
    if (kind === 's') {
      params.push(`c${i}`);
      return `c${i}`;
    }
    params.push(`A${i}`, `a${i}`, `s${i}`);
    if (kind === 'b') once.push(`const x${i} = A${i}[a${i}];`);
    else loads.push(kind === 'c' ? `const x${i} = A${i}[a${i} + j];` : `const x${i} = A${i}[a${i} + j * s${i}];`);
    return `x${i}`;
  });
  const expr = op.formula!(jsLang, names, attrs);
  // the sourceURL names the kernel in profiles and stack traces
  const body = `${once.join(' ')} for (let j = 0; j < n; j++) { ${loads.join(' ')} out[o + j] = ${expr}; }\n//# sourceURL=wgtorch-cpu-${op.name}-${kinds.join('')}.js`;
  k = new Function(...params, body) as RowKernel;
  kernels.set(key, k);
  return k;
}

/** Strides of an operand of shape `shape` read at every index of `outShape` (right-aligned broadcast). */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const s = stridesOf(shape);
  const off = outShape.length - shape.length;
  return outShape.map((d, i) => {
    const j = i - off;
    return j < 0 || shape[j] === 1 ? 0 : s[j];
  });
}

/** Runs `op` over the output shape. Dims that are contiguous for every operand are merged first. */
export function runElementwise(op: OpDef, attrs: Attrs, out: HostArray, outShape: readonly number[], args: EwArg[]): void {
  const tensors = args.filter((a): a is StridedArg => typeof a !== 'number');
  // merge dims (drop size-1 dims, then fold i into i+1 when strides chain for all arrays)
  const allStrides = [stridesOf(outShape), ...tensors.map((t) => t.strides)];
  let dims: number[] = [];
  let strides: number[][] = allStrides.map(() => []);
  for (let i = 0; i < outShape.length; i++) {
    if (outShape[i] === 1) continue;
    const last = dims.length - 1;
    if (last >= 0 && allStrides.every((s, k) => strides[k][last] === s[i] * outShape[i])) {
      dims[last] *= outShape[i];
      allStrides.forEach((s, k) => (strides[k][last] = s[i]));
    } else {
      dims.push(outShape[i]);
      allStrides.forEach((s, k) => strides[k].push(s[i]));
    }
  }
  if (dims.length === 0) {
    dims = [1];
    strides = strides.map(() => [0]);
  }
  const n = dims[dims.length - 1];
  if (n === 0 || dims.some((d) => d === 0)) return;
  const inner = strides.map((s) => s[s.length - 1]);
  let t = 0;
  const kinds = args.map((a): Kind => (typeof a === 'number' ? 's' : inner[++t] === 1 ? 'c' : inner[t] === 0 ? 'b' : 't'));
  const kernel = rowKernel(op, attrs, kinds);
  const outer = dims.slice(0, -1);
  const offsets = new Array<number>(strides.length).fill(0);
  const callArgs: unknown[] = [];
  const buildArgs = () => {
    callArgs.length = 0;
    let t = 0;
    for (const a of args) {
      if (typeof a === 'number') callArgs.push(a);
      else {
        t++;
        callArgs.push(a.arr, offsets[t], inner[t]);
      }
    }
  };
  if (outer.length === 0) {
    buildArgs();
    kernel(out, 0, n, ...callArgs);
    return;
  }
  const idx = new Array<number>(outer.length).fill(0);
  const rows = outer.reduce((p, d) => p * d, 1);
  for (let r = 0; r < rows; r++) {
    buildArgs();
    kernel(out, offsets[0], n, ...callArgs);
    // increment the multi-index over the outer dims, updating every offset
    for (let d = outer.length - 1; d >= 0; d--) {
      idx[d]++;
      for (let k = 0; k < offsets.length; k++) offsets[k] += strides[k][d];
      if (idx[d] < outer[d]) break;
      for (let k = 0; k < offsets.length; k++) offsets[k] -= strides[k][d] * outer[d];
      idx[d] = 0;
    }
  }
}
