/**
 * Reductions, declared once: how each combines elements and where it starts. Every
 * renderer (the WGSL reduce kernel, the cpu target's JS, the eager cpu runtime) and the
 * matmul epilogue's operand reductions read this table and nothing else about a
 * reduction, so a new one is a row here plus its registry entry (its shape and gradient);
 * `Record<ReduceOp, ...>` makes a missing row a compile error.
 *
 * - 'fold' reductions combine with an elementwise registry op (sum: add, prod: mul), whose
 *   formula every target already renders; partial results fold the same way.
 * - 'select' reductions keep the element that `prefer`s over the one kept so far (max: >,
 *   min: <, NaN over anything, as PyTorch propagates NaN); with `index` the result is that
 *   element's index (argmax, argmin: on ties the first index wins).
 */
import type { CmpOp, ScalarLang } from './scalar-lang.ts';

export type ReduceOp = 'sum' | 'prod' | 'max' | 'min' | 'argmax' | 'argmin';

export type Reduction =
  | { kind: 'fold'; op: 'add' | 'mul'; identity: number }
  | { kind: 'select'; prefer: Extract<CmpOp, '>' | '<'>; identity: number; index: boolean };

export const REDUCTIONS: Record<ReduceOp, Reduction> = {
  sum: { kind: 'fold', op: 'add', identity: 0 },
  prod: { kind: 'fold', op: 'mul', identity: 1 },
  max: { kind: 'select', prefer: '>', identity: -Infinity, index: false },
  min: { kind: 'select', prefer: '<', identity: Infinity, index: false },
  argmax: { kind: 'select', prefer: '>', identity: -Infinity, index: true },
  argmin: { kind: 'select', prefer: '<', identity: Infinity, index: true },
};

export const isReduceOp = (op: string): op is ReduceOp => Object.hasOwn(REDUCTIONS, op);

/** op as a declared reduction (an internal error for any other op name) */
export function asReduceOp(op: string): ReduceOp {
  if (!isReduceOp(op)) throw new Error(`internal error: ${op} is not a reduction declared in src/ir/reductions.ts`);
  return op;
}

/**
 * The fold of two partial results of a 'fold' reduction, in any target's language (the
 * registry's add and mul formulas, which are the same text in every language; this table
 * imports nothing from the registry, which reads it while it declares the reductions).
 * Unparenthesised: the right-hand side of an assignment.
 */
export function foldExpr(r: Extract<Reduction, { kind: 'fold' }>, acc: string, v: string): string {
  return r.op === 'add' ? `${acc} + ${v}` : `${acc} * ${v}`;
}

/**
 * A 'select' reduction's test, as a number (non-zero: v replaces best): v compares
 * `prefer` to best, or v is NaN and best is not (NaN tests through the language's `!=`,
 * which WGSL renders on the bits: a compiler that assumes no NaN folds v != v away).
 */
export function preferExpr(r: Extract<Reduction, { kind: 'select' }>, m: ScalarLang, v: string, best: string): string {
  return `(${m.cmp(r.prefer, v, best)} + ${m.cmp('!=', v, v)} * (1 - ${m.cmp('!=', best, best)}))`;
}

/** The eager and reference value of a reduction over `n` values given by `at` (accumulating in doubles). */
export function reduceValues(r: Reduction, n: number, at: (i: number) => number): number {
  if (r.kind === 'fold') {
    let acc = r.identity;
    for (let i = 0; i < n; i++) acc = r.op === 'add' ? acc + at(i) : acc * at(i);
    return acc;
  }
  let best = r.identity;
  let where = 0;
  for (let i = 0; i < n; i++) {
    const v = at(i);
    if ((r.prefer === '>' ? v > best : v < best) || (v !== v && best === best)) {
      best = v;
      where = i;
    }
  }
  if (r.index) return where;
  return n === 0 ? NaN : best;
}
