/**
 * Elementwise ops whose result is the same bits however a kernel evaluates them (f32 in WGSL,
 * doubles rounded at the store in JavaScript, f32x4 in Wasm): comparisons, selects, sign
 * changes, casts to and from bool. A value recomputed where it is read, rather than computed
 * once and stored, must be one of these: a reader comparing a recomputed `tanh(x)` with a max
 * another kernel took of its own `tanh(x)` could otherwise see two roundings of one value.
 */
import type { Graph, IRNode } from '../ir/graph.ts';

const EXACT = new Set(['eq', 'ne', 'lt', 'le', 'gt', 'ge', 'where', 'neg', 'abs', 'sign', 'relu', 'clamp', 'maximum', 'minimum']);

/** whether `n` computes the same bits in every kernel (its inputs' bits being equal) */
export function isExactOp(g: Graph, n: IRNode): boolean {
  if (EXACT.has(n.op)) return true;
  // a cast to bool, or from bool, moves no bits a rounding could change
  return n.op === 'cast' && (n.dtype === 'bool' || n.inputs.every((i) => g.node(i).dtype === 'bool'));
}
