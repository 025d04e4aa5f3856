/** PyTorch-like printing: values for small cpu tensors, and always shape, device, dtype and gradFn. */
import type { HostArray } from '../ir/dtype.ts';
import type { Tensor } from './tensor.ts';

const SUMMARIZE_OVER = 1000;
const EDGE = 3;

function formatNumber(v: number, dtype: string, sci: boolean): string {
  if (dtype === 'bool') return v ? 'True' : 'False';
  if (dtype === 'int32') return String(v);
  if (Number.isNaN(v)) return 'nan';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  return sci ? v.toExponential(4).replace(/e([+-])(\d)$/, 'e$10$2') : v.toFixed(4);
}

function body(data: HostArray, shape: readonly number[], dtype: string): string {
  const n = data.length;
  const summarize = n > SUMMARIZE_OVER;
  let maxAbs = 0;
  let minAbs = Infinity;
  for (let i = 0; i < n; i++) {
    const a = Math.abs(data[i]);
    if (Number.isFinite(a)) {
      maxAbs = Math.max(maxAbs, a);
      if (a > 0) minAbs = Math.min(minAbs, a);
    }
  }
  const sci = dtype === 'float32' && (maxAbs >= 1e8 || (minAbs < 1e-4 && minAbs !== Infinity));
  const strs = Array.from(data, (v) => formatNumber(v, dtype, sci));
  const width = Math.max(0, ...strs.map((s) => s.length));
  const pad = (s: string) => s.padStart(width);
  const rec = (dim: number, off: number, indent: string): string => {
    if (shape.length === 0) return strs[0];
    const size = shape[dim];
    const stride = shape.slice(dim + 1).reduce((p, d) => p * d, 1);
    const idx: (number | null)[] = [];
    if (summarize && size > 2 * EDGE) {
      for (let i = 0; i < EDGE; i++) idx.push(i);
      idx.push(null);
      for (let i = size - EDGE; i < size; i++) idx.push(i);
    } else for (let i = 0; i < size; i++) idx.push(i);
    if (dim === shape.length - 1) {
      return '[' + idx.map((i) => (i === null ? '...' : pad(strs[off + i]))).join(', ') + ']';
    }
    const sep = ',' + '\n'.repeat(shape.length - dim - 1) + indent + ' ';
    return '[' + idx.map((i) => (i === null ? '...' : rec(dim + 1, off + i * stride, indent + ' '))).join(sep) + ']';
  };
  return rec(0, 0, '       ');
}

export function formatTensor(t: Tensor): string {
  const meta = [`shape=[${t.shape.join(', ')}]`, `device='${t.device}'`, `dtype=${t.dtype}`];
  if (t.gradFn) meta.push(`gradFn=<${t.gradFn.name}>`);
  else if (t.requiresGrad) meta.push('requiresGrad=true');
  let values: string;
  try {
    values = t.device === 'cpu' ? body(t.toArraySync(), t.shape, t.dtype) : `<on ${t.device}: await t.toArray() to read>`;
  } catch {
    values = '<values not available yet>';
  }
  return `tensor(${values}, ${meta.join(', ')})`;
}
