/** The functional forms: torch.add(a, b), torch.relu(x), ... each the same as the method. */
import type { DType } from '../ir/dtype.ts';
import { WgtorchError } from '../ir/errors.ts';
import { apply } from './dispatch.ts';
import * as idx from './indexing.ts';
import { bmm as bmmImpl, matmul as matmulImpl } from './matmul.ts';
import { Tensor, type ClampOptions, type MaxResult, type TensorLike, type VarOptions } from './tensor.ts';

const T = (op: string, x: unknown): Tensor => {
  if (x instanceof Tensor) return x;
  throw new WgtorchError(`${op}: expected a Tensor as the first argument, got ${typeof x}. Fix: wrap numbers with torch.tensor(...).`);
};

export const add = (a: Tensor, b: TensorLike, opts?: { alpha?: number }) => T('add', a).add(b, opts);
export const sub = (a: Tensor, b: TensorLike, opts?: { alpha?: number }) => T('sub', a).sub(b, opts);
export const mul = (a: Tensor, b: TensorLike) => T('mul', a).mul(b);
export const div = (a: Tensor, b: TensorLike) => T('div', a).div(b);
export const neg = (a: Tensor) => T('neg', a).neg();
export const pow = (a: Tensor | number, p: number | Tensor) => {
  if (typeof a === 'number') {
    if (!(p instanceof Tensor)) throw new WgtorchError('pow: expected a Tensor as the base or the exponent. Fix: Math.pow for two numbers.');
    return apply('powt', [a, p]);
  }
  return T('pow', a).pow(p);
};
export const sin = (a: Tensor) => T('sin', a).sin();
export const cos = (a: Tensor) => T('cos', a).cos();
export const erf = (a: Tensor) => T('erf', a).erf();
export const gelu = (a: Tensor, opts?: { approximate?: 'none' | 'tanh' }) => T('gelu', a).gelu(opts);
export const silu = (a: Tensor) => T('silu', a).silu();
export const variance = (a: Tensor, dim?: number | number[] | null | VarOptions, opts?: VarOptions | boolean) => T('var', a).var(dim, opts);
export const std = (a: Tensor, dim?: number | number[] | null | VarOptions, opts?: VarOptions | boolean) => T('std', a).std(dim, opts);
export const bmm = (a: Tensor, b: Tensor) => bmmImpl(T('bmm', a), b);
export const narrow = (a: Tensor, dim: number, start: number, length: number) => T('narrow', a).narrow(dim, start, length);
export const select = (a: Tensor, dim: number, index: number) => T('select', a).select(dim, index);
export const indexSelect = (a: Tensor, dim: number, index: Tensor) => T('indexSelect', a).indexSelect(dim, index);
export const gather = (a: Tensor, dim: number, index: Tensor) => T('gather', a).gather(dim, index);
export const split = (a: Tensor, sizeOrSizes: number | readonly number[], dim = 0) => T('split', a).split(sizeOrSizes, dim);
export const chunk = (a: Tensor, chunks: number, dim = 0) => T('chunk', a).chunk(chunks, dim);
export const tril = (a: Tensor, diagonal = 0) => idx.tril(T('tril', a), diagonal);
export const triu = (a: Tensor, diagonal = 0) => idx.triu(T('triu', a), diagonal);
export const cat = idx.cat;
export const stack = idx.stack;
export const slice = idx.slice;
export const exp = (a: Tensor) => T('exp', a).exp();
export const log = (a: Tensor) => T('log', a).log();
export const sqrt = (a: Tensor) => T('sqrt', a).sqrt();
export const abs = (a: Tensor) => T('abs', a).abs();
export const sign = (a: Tensor) => T('sign', a).sign();
export const tanh = (a: Tensor) => T('tanh', a).tanh();
export const sigmoid = (a: Tensor) => T('sigmoid', a).sigmoid();
export const relu = (a: Tensor) => T('relu', a).relu();
export const clamp = (a: Tensor, min?: number | ClampOptions | null, max?: number | null) => T('clamp', a).clamp(min, max);
export const mm = (a: Tensor, b: Tensor) => T('mm', a).mm(b);
export const matmul = (a: Tensor, b: Tensor) => matmulImpl(T('matmul', a), b);
export const t = (a: Tensor) => T('t', a).t();
export const transpose = (a: Tensor, d0: number, d1: number) => T('transpose', a).transpose(d0, d1);
export const permute = (a: Tensor, dims: number[]) => T('permute', a).permute(dims);
export const reshape = (a: Tensor, shape: number[]) => T('reshape', a).reshape(shape);
export const flatten = (a: Tensor, start = 0, end = -1) => T('flatten', a).flatten(start, end);
export const unsqueeze = (a: Tensor, dim: number) => T('unsqueeze', a).unsqueeze(dim);
export const squeeze = (a: Tensor, dim?: number) => T('squeeze', a).squeeze(dim);
export const expand = (a: Tensor, shape: number[]) => T('expand', a).expand(shape);
export const sum = (a: Tensor, dim?: number | number[] | null, keepdim = false) => T('sum', a).sum(dim, keepdim);
export const mean = (a: Tensor, dim?: number | number[] | null, keepdim = false) => T('mean', a).mean(dim, keepdim);
export function max(a: Tensor): Tensor;
export function max(a: Tensor, dim: number, keepdim?: boolean): MaxResult;
export function max(a: Tensor, other: Tensor): Tensor;
export function max(a: Tensor, dim?: number | Tensor, keepdim = false): Tensor | MaxResult {
  return dim === undefined ? T('max', a).max() : typeof dim === 'number' ? a.max(dim, keepdim) : a.max(dim);
}
export function min(a: Tensor): Tensor;
export function min(a: Tensor, dim: number, keepdim?: boolean): MaxResult;
export function min(a: Tensor, other: Tensor): Tensor;
export function min(a: Tensor, dim?: number | Tensor, keepdim = false): Tensor | MaxResult {
  return dim === undefined ? T('min', a).min() : typeof dim === 'number' ? a.min(dim, keepdim) : a.min(dim);
}
export const argmax = (a: Tensor, dim?: number, keepdim = false) => T('argmax', a).argmax(dim, keepdim);
export const argmin = (a: Tensor, dim?: number, keepdim = false) => T('argmin', a).argmin(dim, keepdim);
export const softmax = (a: Tensor, dim: number | { dim: number }) => T('softmax', a).softmax(dim);
export const logSoftmax = (a: Tensor, dim: number | { dim: number }) => T('logSoftmax', a).logSoftmax(dim);
export const logsumexp = (a: Tensor, dim: number | number[], keepdim = false) => T('logsumexp', a).logsumexp(dim, keepdim);
export const lt = (a: Tensor, b: TensorLike) => T('lt', a).lt(b);
export const le = (a: Tensor, b: TensorLike) => T('le', a).le(b);
export const gt = (a: Tensor, b: TensorLike) => T('gt', a).gt(b);
export const ge = (a: Tensor, b: TensorLike) => T('ge', a).ge(b);
export const eq = (a: Tensor, b: TensorLike) => T('eq', a).eq(b);
export const ne = (a: Tensor, b: TensorLike) => T('ne', a).ne(b);
/** where(cond, a, b): a where cond holds, else b. Either branch may be a number. */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  if (cond.dtype !== 'bool') {
    throw new WgtorchError(`where: expected a bool condition, got dtype ${cond.dtype}. Fix: pass a comparison such as x.gt(0).`);
  }
  return apply('where', [cond, a, b]);
}
export const maskedFill = (a: Tensor, mask: Tensor, v: number) => T('maskedFill', a).maskedFill(mask, v);
export const clone = (a: Tensor) => T('clone', a).clone();
export const detach = (a: Tensor) => T('detach', a).detach();
export const numel = (a: Tensor) => T('numel', a).numel();
export const toDType = (a: Tensor, dtype: DType) => T('to', a).toDType(dtype);
