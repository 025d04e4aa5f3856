/**
 * THE op registry. Every primitive is declared here once: its shape/dtype rule, its
 * gradient rule (written with other registry ops through the tensor interface, so the
 * same rule serves eager autograd and the traced backward), what backward needs saved,
 * and, for elementwise ops, the formula that both the CPU and the WGSL generators render.
 * Everything else (softmax, mse, linear, matmul, ...) is a composite of these.
 */
import type { DType } from './dtype.ts';
import { promoteTypes } from './dtype.ts';
import { WgtorchError } from './errors.ts';
import { broadcastShapes, fmtShape, numel, reducedShape, sameShape } from './shape.ts';
import type { ScalarLang } from './scalar-lang.ts';
import { REDUCTIONS, type ReduceOp } from './reductions.ts';

export type AttrValue = number | boolean | string | null | readonly number[];
export type Attrs = Readonly<Record<string, AttrValue>>;

export interface Meta {
  shape: number[];
  dtype: DType;
}
/** A tensor input, or a plain number (a scalar operand of an elementwise op). */
export type InputMeta = Meta | number;

/**
 * 'index': an output element reads its input at a computed position (a strided slice, a
 * gather along a dim) or sums the elements that land on it (their gradients, computed from
 * the destination side, so no atomics are needed and the order is fixed).
 *
 * 'check': a value check (index ranges) whose result is its input; see src/eager/checks.ts.
 */
export type OpKind = 'elementwise' | 'reduce' | 'matmul' | 'movement' | 'source' | 'index' | 'check';

/** What gradient rules may call: the subset of Tensor they are written against. */
export interface GT {
  readonly shape: number[];
  add(o: GT | number): GT;
  sub(o: GT | number): GT;
  mul(o: GT | number): GT;
  div(o: GT | number): GT;
  neg(): GT;
  pow(p: number | GT): GT;
  exp(): GT;
  log(): GT;
  sin(): GT;
  cos(): GT;
  sign(): GT;
  lt(o: GT | number): GT;
  le(o: GT | number): GT;
  gt(o: GT | number): GT;
  ge(o: GT | number): GT;
  eq(o: GT | number): GT;
  ne(o: GT | number): GT;
  where(cond: GT, other: GT | number): GT;
  sum(dim?: number | number[] | null, keepdim?: boolean): GT;
  prod(dim?: number | number[] | null, keepdim?: boolean): GT;
  sumToSize(shape: readonly number[]): GT;
  expand(shape: readonly number[]): GT;
  reshape(shape: readonly number[]): GT;
  permute(dims: readonly number[]): GT;
  mm(o: GT): GT;
  /** the bmm primitive: [..., M, K] @ [..., K, N] with broadcast batch dims */
  _bmm(o: GT): GT;
  t(): GT;
  toDType(dtype: DType): GT;
  /** the index primitives below, as their gradients need them */
  _slice(starts: readonly number[], steps: readonly number[], shape: readonly number[]): GT;
  /** this tensor with src written over its slice at starts + c * steps */
  _sliceScatter(src: GT, starts: readonly number[], steps: readonly number[]): GT;
  _zeros(shape: readonly number[]): GT;
  _gather(dim: number, index: GT): GT;
  _scatterAdd(dim: number, index: GT, shape: readonly number[]): GT;
  /** a convolution's patch matrix of this [N, C, H, W] tensor, and back (attrs: see im2col) */
  _im2col(attrs: Attrs): GT;
  _col2im(attrs: Attrs): GT;
}

export interface GradContext {
  inputs: (GT | number)[];
  /** Whether input i needs a gradient at all: rules skip work for those that do not. */
  needsGrad: boolean[];
  out: GT;
  attrs: Attrs;
}
/** Returns d(loss)/d(input_i) for each input (null: no gradient), before broadcast reduction. */
export type GradRule = (g: GT, ctx: GradContext) => (GT | null)[];

export interface OpDef {
  name: string;
  kind: OpKind;
  /** Number of inputs (tensors or scalar operands). */
  arity: number;
  infer(inputs: InputMeta[], attrs: Attrs): Meta;
  /** Absent: not differentiable (comparisons, argmax, sources). */
  grad?: GradRule;
  /** Which values backward reads, so an in-place change of them can be detected. */
  saves?: { inputs?: number[]; out?: boolean };
  /** Elementwise ops: the value of one element, given the rendered inputs. */
  formula?: (m: ScalarLang, args: string[], attrs: Attrs) => string;
}

const registry = new Map<string, OpDef>();

export function getOp(name: string): OpDef {
  const op = registry.get(name);
  if (!op) throw new WgtorchError(`unknown op '${name}'`);
  return op;
}
export function allOps(): OpDef[] {
  return [...registry.values()];
}
function def(op: OpDef): void {
  if (registry.has(op.name)) throw new Error(`op ${op.name} declared twice`);
  registry.set(op.name, op);
}

const isNum = (x: InputMeta): x is number => typeof x === 'number';
const metaShape = (x: InputMeta): number[] => (isNum(x) ? [] : x.shape);

/** broadcastShapes' common case without its arguments array: every tensor operand of one shape (0-d ones aside), copied; else null. */
function sameShapes(inputs: InputMeta[]): number[] | null {
  let first: number[] | null = null;
  for (let i = 0; i < inputs.length; i++) {
    const x = inputs[i];
    if (isNum(x) || x.shape.length === 0) continue;
    if (first === null) first = x.shape;
    else if (!sameShape(first, x.shape)) return null;
  }
  return first === null ? [] : [...first];
}

function elementwiseMeta(op: string, inputs: InputMeta[], dtype: 'promote' | 'bool' | 'float'): Meta {
  const shape = sameShapes(inputs) ?? broadcastShapes(op, ...inputs.map(metaShape));
  if (dtype === 'bool') return { shape, dtype: 'bool' };
  if (dtype === 'float') return { shape, dtype: 'float32' };
  let dt: DType | null = null;
  let scalarIsFraction = false;
  for (const x of inputs) {
    if (isNum(x)) scalarIsFraction ||= !Number.isInteger(x);
    else dt = dt === null ? x.dtype : promoteTypes(dt, x.dtype);
  }
  if (dt === null || scalarIsFraction || dt === 'bool') dt = 'float32';
  return { shape, dtype: dt };
}

// ---------------------------------------------------------------- elementwise
interface EwSpec {
  name: string;
  arity: number;
  dtype?: 'promote' | 'bool' | 'float';
  formula: OpDef['formula'];
  grad?: GradRule;
  saves?: OpDef['saves'];
}
function elementwise(s: EwSpec): void {
  def({
    name: s.name,
    kind: 'elementwise',
    arity: s.arity,
    infer: (inputs) => elementwiseMeta(s.name, inputs, s.dtype ?? 'promote'),
    formula: s.formula,
    grad: s.grad,
    saves: s.saves,
  });
}
const T = (x: GT | number): GT => x as GT;

elementwise({ name: 'add', arity: 2, formula: (_m, [a, b]) => `(${a} + ${b})`, grad: (g) => [g, g] });
elementwise({ name: 'sub', arity: 2, formula: (_m, [a, b]) => `(${a} - ${b})`, grad: (g) => [g, g.neg()] });
elementwise({
  name: 'mul', arity: 2, saves: { inputs: [0, 1] },
  formula: (_m, [a, b]) => `(${a} * ${b})`,
  grad: (g, { inputs: [a, b], needsGrad: [na, nb] }) => [na ? g.mul(b) : null, nb ? g.mul(a) : null],
});
elementwise({
  name: 'div', arity: 2, dtype: 'float', saves: { inputs: [0, 1] },
  formula: (_m, [a, b]) => `(${a} / ${b})`,
  grad: (g, { inputs: [a, b], needsGrad: [na, nb] }) => [
    na ? g.div(b) : null,
    nb ? g.neg().mul(a).div(T(b).mul(b)) : null,
  ],
});
elementwise({ name: 'neg', arity: 1, formula: (_m, [a]) => `(-${a})`, grad: (g) => [g.neg()] });
elementwise({
  name: 'exp', arity: 1, dtype: 'float', saves: { out: true },
  formula: (m, [a]) => m.call('exp', a),
  grad: (g, { out }) => [g.mul(out)],
});
elementwise({
  name: 'log', arity: 1, dtype: 'float', saves: { inputs: [0] },
  formula: (m, [a]) => m.call('log', a),
  grad: (g, { inputs: [a] }) => [g.div(a)],
});
elementwise({
  name: 'sqrt', arity: 1, dtype: 'float', saves: { out: true },
  formula: (m, [a]) => m.call('sqrt', a),
  grad: (g, { out }) => [g.div(out.mul(2))],
});
elementwise({
  name: 'abs', arity: 1, saves: { inputs: [0] },
  formula: (m, [a]) => m.call('abs', a),
  // PyTorch's sgn: (x > 0) - (x < 0), so 0 at 0 and at NaN
  grad: (g, { inputs: [a] }) => [g.mul(T(a).gt(0).toDType('float32').sub(T(a).lt(0).toDType('float32')))],
});
// (x > 0) - (x < 0), as PyTorch computes it: 0 at NaN
elementwise({ name: 'sign', arity: 1, formula: (m, [a]) => `(${m.cmp('<', m.lit(0), a)} - ${m.cmp('<', a, m.lit(0))})` });
elementwise({
  name: 'tanh', arity: 1, dtype: 'float', saves: { out: true },
  formula: (m, [a]) => m.call('tanh', a),
  grad: (g, { out }) => [g.mul(out.mul(out).neg().add(1))],
});
elementwise({
  name: 'sigmoid', arity: 1, dtype: 'float', saves: { out: true },
  formula: (m, [a]) => `(1.0 / (1.0 + ${m.call('exp', `(-${a})`)}))`,
  grad: (g, { out }) => [g.mul(out).mul(out.neg().add(1))],
});
// relu stops the gradient where its result is <= 0 and passes it elsewhere, NaN included
// (PyTorch's threshold_backward); clamp(min=0) also passes it where x == 0.
elementwise({
  name: 'relu', arity: 1, saves: { out: true },
  formula: (m, [a]) => m.call('max', a, m.lit(0)),
  grad: (g, { out }) => [g.where(out.le(0).eq(0), 0)],
});
elementwise({
  name: 'pow', arity: 1, saves: { inputs: [0] },
  formula: (m, [a], { exponent }) => renderPow(m, a, exponent as number),
  grad: (g, { inputs: [a], attrs: { exponent } }) => {
    const p = exponent as number;
    if (p === 0) return [g.mul(0)];
    if (p === 1) return [g];
    const base = p === 2 ? T(a) : T(a).pow(p - 1);
    return [g.mul(base.mul(p))];
  },
});
elementwise({
  name: 'clamp', arity: 1, saves: { inputs: [0] },
  formula: (m, [a], { min, max }) => {
    let e = a;
    if (min !== null) e = m.call('max', e, m.lit(min as number));
    if (max !== null) e = m.call('min', e, m.lit(max as number));
    return e;
  },
  grad: (g, { inputs: [a], attrs: { min, max } }) => {
    let r = g;
    if (min !== null) r = r.where(T(a).ge(min as number), 0);
    if (max !== null) r = r.where(T(a).le(max as number), 0);
    return [r];
  },
});
elementwise({
  name: 'copy', arity: 1, formula: (_m, [a]) => a, grad: (g) => [g],
});
def({
  name: 'cast',
  kind: 'elementwise',
  arity: 1,
  infer: ([a], { dtype }) => ({ shape: metaShape(a), dtype: dtype as DType }),
  // int32 truncates toward zero like PyTorch; bool is "nonzero".
  formula: (m, [a], { dtype }) =>
    dtype === 'bool' ? m.cmp('!=', a, m.lit(0)) : dtype === 'int32' ? `(${m.call('sign', a)} * ${m.call('floor', m.call('abs', a))})` : a,
  grad: (g, { inputs: [a], attrs: { dtype } }) =>
    dtype === 'float32' && typeof a !== 'number' ? [g.toDType('float32')] : [null],
});
for (const [name, op] of [['lt', '<'], ['le', '<='], ['gt', '>'], ['ge', '>='], ['eq', '=='], ['ne', '!=']] as const) {
  elementwise({ name, arity: 2, dtype: 'bool', formula: (m, [a, b]) => m.cmp(op, a, b) });
}
def({
  name: 'where',
  kind: 'elementwise',
  arity: 3,
  infer: (inputs) => {
    const meta = elementwiseMeta('where', inputs.slice(1), 'promote');
    return { shape: broadcastShapes('where', metaShape(inputs[0]), meta.shape), dtype: meta.dtype };
  },
  saves: { inputs: [0] },
  formula: (m, [c, a, b]) => m.select(c, a, b),
  grad: (g, { inputs: [c], needsGrad: [, na, nb] }) => [
    null,
    na ? g.where(T(c), 0) : null,
    nb ? g.where(T(c).eq(0), 0) : null,
  ],
});

elementwise({
  name: 'sin', arity: 1, dtype: 'float', saves: { inputs: [0] },
  formula: (m, [a]) => m.call('sin', a),
  grad: (g, { inputs: [a] }) => [g.mul(T(a).cos())],
});
elementwise({
  name: 'cos', arity: 1, dtype: 'float', saves: { inputs: [0] },
  formula: (m, [a]) => m.call('cos', a),
  grad: (g, { inputs: [a] }) => [g.mul(T(a).sin()).neg()],
});
// d erf(x)/dx = 2/sqrt(pi) exp(-x^2)
elementwise({
  name: 'erf', arity: 1, dtype: 'float', saves: { inputs: [0] },
  formula: (m, [a]) => m.call('erf', a),
  grad: (g, { inputs: [a] }) => [g.mul(T(a).mul(a).neg().exp().mul(2 / Math.sqrt(Math.PI)))],
});
/**
 * a^b with a tensor exponent, with C's pow rules (which PyTorch follows): a negative base
 * takes integer exponents only (odd ones keep its sign), anything else is NaN; x^0 is 1.
 */
elementwise({
  name: 'powt', arity: 2, dtype: 'float', saves: { inputs: [0, 1], out: true },
  formula: (m, [a, b]) => {
    const mag = m.call('pow', m.call('abs', a), b);
    const isInt = m.cmp('==', m.call('floor', b), b);
    const isOdd = m.cmp('!=', `(${m.call('floor', `(${b} * 0.5)`)} * 2.0)`, b);
    const neg = m.select(isInt, m.select(isOdd, `(-${mag})`, mag), m.lit(NaN));
    // 0^b is 0 or inf by the sign of b (WGSL's pow leaves it undefined)
    const zero = m.select(m.cmp('<', b, m.lit(0)), m.lit(Infinity), m.lit(0));
    const rest = m.select(m.cmp('==', a, m.lit(0)), zero, m.select(m.cmp('<', a, m.lit(0)), neg, mag));
    return m.select(m.cmp('==', b, m.lit(0)), m.lit(1), rest);
  },
  // PyTorch's pow_backward_self / pow_backward_exponent: no gradient through b == 0 to a, and
  // none to b where a == 0 and b >= 0 (log(0) would make it NaN).
  grad: (g, { inputs: [a, b], out, needsGrad: [na, nb] }) => {
    let ga: GT | null = null;
    let gb: GT | null = null;
    if (na) {
      const base = typeof b === 'number' ? T(a).pow(b - 1) : T(a).pow(T(b).sub(1));
      ga = g.mul(base.mul(b));
      if (typeof b !== 'number') ga = ga.where(T(b).ne(0), 0);
      else if (b === 0) ga = ga.mul(0);
    }
    if (nb) {
      if (typeof a === 'number') gb = a === 0 ? g.mul(0) : g.mul(out).mul(Math.log(a));
      else {
        const r = g.mul(out).mul(T(a).log());
        gb = r.where(T(a).ne(0), r.where(T(b).lt(0), 0));
      }
    }
    return [ga, gb];
  },
});

/** x^p with integer powers unrolled (exact, and defined for negative x in WGSL too). */
function renderPow(m: ScalarLang, a: string, p: number): string {
  if (p === 0) return m.lit(1);
  if (p === 1) return a;
  if (p === 0.5) return m.call('sqrt', a);
  if (Number.isInteger(p) && Math.abs(p) <= 4) {
    const prod = `(${Array(Math.abs(p)).fill(a).join(' * ')})`;
    return p > 0 ? prod : `(1.0 / ${prod})`;
  }
  if (Number.isInteger(p)) {
    // odd integer powers keep the sign of the base
    const mag = m.call('pow', m.call('abs', a), m.lit(p));
    return p % 2 === 0 ? mag : `(${m.call('sign', a)} * ${mag})`;
  }
  return m.call('pow', a, m.lit(p));
}

// ---------------------------------------------------------------- reductions
// How each reduction combines and where it starts is declared in reductions.ts; here are
// their shapes and gradients. Record<ReduceOp, ...> makes a reduction without one a compile error.
function reduceMeta(op: ReduceOp, [a]: InputMeta[], attrs: Attrs): Meta {
  const x = a as Meta;
  const r = REDUCTIONS[op];
  if (r.kind === 'select') {
    for (const d of attrs.dims as number[]) {
      if (x.shape[d] === 0) {
        throw new WgtorchError(
          `${op}: expected reduction dim ${d} to have non-zero size (input shape ${fmtShape(x.shape)}). Fix: a ${op} over no elements is undefined; check the shape first.`,
        );
      }
    }
  }
  const shape = reducedShape(x.shape, attrs.dims as number[], attrs.keepdim as boolean);
  if (r.kind === 'select' && r.index) return { shape, dtype: 'int32' };
  // sums and products of booleans count, as PyTorch's do
  return { shape, dtype: r.kind === 'fold' && x.dtype === 'bool' ? 'int32' : x.dtype };
}
/** Re-insert the reduced dims as size 1 so the gradient broadcasts back over the input. */
function unreduce(g: GT, inShape: readonly number[], attrs: Attrs): GT {
  if (attrs.keepdim) return g;
  const dims = attrs.dims as number[];
  const kept = inShape.map((d, i) => (dims.includes(i) ? 1 : d));
  return g.reshape(kept);
}
/** max and min: ties share the gradient evenly, as PyTorch's amax/amin do; with nanGrad (max(), max(dim)) a NaN result sends it to the NaN elements, as PyTorch's max does. */
const selectedGrad: GradRule = (g, { inputs: [a], out, attrs }) => {
  const x = T(a);
  const o = unreduce(out, x.shape, attrs);
  let hit = x.eq(o);
  if (attrs.nanGrad) hit = x.ne(x).where(o.ne(o), hit);
  const mask = hit.toDType('float32');
  const count = mask.sum(attrs.dims as number[], true);
  return [unreduce(g, x.shape, attrs).div(count).mul(mask)];
};
const REDUCTION_RULES: Record<ReduceOp, Pick<OpDef, 'grad' | 'saves'>> = {
  sum: { grad: (g, { inputs: [a], attrs }) => [unreduce(g, T(a).shape, attrs).expand(T(a).shape)] },
  // d(prod)/dx_i is the product of the others: out / x_i where x_i != 0; at a zero, the
  // product of the non-zero elements if it is the only zero, else 0
  prod: {
    saves: { inputs: [0], out: true },
    grad: (g, { inputs: [a], out, attrs }) => {
      const x = T(a);
      const dims = attrs.dims as number[];
      const zero = x.eq(0);
      const zeros = zero.toDType('float32').sum(dims, true);
      const others = x.where(zero.eq(0), 1).prod(dims, true).mul(zeros.eq(1).toDType('float32'));
      const d = others.expand(x.shape).where(zero, unreduce(out, x.shape, attrs).div(x));
      return [unreduce(g, x.shape, attrs).mul(d)];
    },
  },
  max: { saves: { inputs: [0], out: true }, grad: selectedGrad },
  min: { saves: { inputs: [0], out: true }, grad: selectedGrad },
  argmax: {},
  argmin: {},
};
for (const name of Object.keys(REDUCTIONS) as ReduceOp[]) {
  def({ name, kind: 'reduce', arity: 1, infer: (inputs, attrs) => reduceMeta(name, inputs, attrs), ...REDUCTION_RULES[name] });
}

// ---------------------------------------------------------------- matmul
/** mm and bmm multiply float32 only (int products would need their own kernels). */
function floatOperands(op: string, x: Meta, y: Meta): void {
  if (x.dtype !== 'float32' || y.dtype !== 'float32') {
    throw new WgtorchError(`${op}: expected float32 operands, got ${x.dtype} and ${y.dtype}. Fix: convert with .float().`);
  }
}

def({
  name: 'mm',
  kind: 'matmul',
  arity: 2,
  saves: { inputs: [0, 1] },
  infer: ([a, b]) => {
    const x = a as Meta;
    const y = b as Meta;
    if (x.shape.length !== 2 || y.shape.length !== 2) {
      throw new WgtorchError(
        `mm: expected 2-D tensors, got ${fmtShape(x.shape)} and ${fmtShape(y.shape)}. Fix: use matmul for other ranks, or reshape to 2-D.`,
      );
    }
    if (x.shape[1] !== y.shape[0]) {
      throw new WgtorchError(
        `mm: mat1 and mat2 shapes cannot be multiplied (${x.shape[0]}x${x.shape[1]} and ${y.shape[0]}x${y.shape[1]}).` +
          ` Fix: the columns of mat1 (${x.shape[1]}) must equal the rows of mat2 (${y.shape[0]}); transpose one operand with .t() if it is stored the other way round.`,
      );
    }
    floatOperands('mm', x, y);
    return { shape: [x.shape[0], y.shape[1]], dtype: 'float32' };
  },
  grad: (g, { inputs: [a, b], needsGrad: [na, nb] }) => [na ? g.mm(T(b).t()) : null, nb ? T(a).t().mm(g) : null],
});

/** The last two dims swapped: a matmul operand read the other way round (a view, no copy). */
const swapLast = (x: GT): GT => {
  const r = x.shape.length;
  return x.permute(x.shape.map((_, i) => (i === r - 2 ? r - 1 : i === r - 1 ? r - 2 : i)));
};
/**
 * Batched matmul: [...a, M, K] @ [...b, K, N] -> [...batch, M, N]. Both operands have the
 * same rank, 3 or 4 (one or two batch dims, as attention's [B, heads, T, d]); each batch dim
 * is equal in both or 1 in one of them, which then is read again for every index there
 * (stride 0, never an expanded copy). Kernels address every matrix through batch strides.
 * The gradient is the same product with a transposed operand; the autograd engine sums it
 * over the batch dims its input was broadcast over.
 */
def({
  name: 'bmm',
  kind: 'matmul',
  arity: 2,
  saves: { inputs: [0, 1] },
  infer: ([a, b]) => {
    const x = a as Meta;
    const y = b as Meta;
    const r = x.shape.length;
    if (r !== y.shape.length || r < 3 || r > 4) {
      throw new WgtorchError(
        `bmm: expected two 3-D or two 4-D tensors, got ${fmtShape(x.shape)} and ${fmtShape(y.shape)}. Fix: use matmul, which brings the batch dims into this form.`,
      );
    }
    const [M, K] = x.shape.slice(-2);
    const [K2, N] = y.shape.slice(-2);
    if (K !== K2) {
      throw new WgtorchError(
        `bmm: mat1 and mat2 shapes cannot be multiplied (${M}x${K} and ${K2}x${N}) for operands ${fmtShape(x.shape)} and ${fmtShape(y.shape)}. Fix: the last dim of the first operand must equal the second-to-last dim of the second.`,
      );
    }
    floatOperands('bmm', x, y);
    const batch = broadcastShapes('bmm (batch dims)', x.shape.slice(0, -2), y.shape.slice(0, -2));
    return { shape: [...batch, M, N], dtype: 'float32' };
  },
  grad: (g, { inputs: [a, b], needsGrad: [na, nb] }) => [na ? g._bmm(swapLast(T(b))) : null, nb ? swapLast(T(a))._bmm(g) : null],
});

// ---------------------------------------------------------------- movement
def({
  name: 'reshape',
  kind: 'movement',
  arity: 1,
  infer: ([a], { shape }) => {
    const x = a as Meta;
    const s = shape as number[];
    if (numel(s) !== numel(x.shape)) {
      throw new WgtorchError(
        `reshape: shape '${fmtShape(s)}' is invalid for input of size ${numel(x.shape)} (shape ${fmtShape(x.shape)}).` +
          ` Fix: the new shape must hold the same number of elements; use -1 for one inferred size.`,
      );
    }
    return { shape: [...s], dtype: x.dtype };
  },
  grad: (g, { inputs: [a] }) => [g.reshape(T(a).shape)],
});
/** Whether d holds each of 0..d.length-1 once (every traced permute asks: no sorted copy). */
function isPermutation(d: readonly number[]): boolean {
  if (d.length > 31) return [...d].sort((p, q) => p - q).every((v, i) => v === i);
  let seen = 0;
  for (const v of d) {
    if (!Number.isInteger(v) || v < 0 || v >= d.length || seen & (1 << v)) return false;
    seen |= 1 << v;
  }
  return true;
}
def({
  name: 'permute',
  kind: 'movement',
  arity: 1,
  infer: ([a], { dims }) => {
    const x = a as Meta;
    const d = dims as number[];
    const ok = d.length === x.shape.length && isPermutation(d);
    if (!ok) {
      throw new WgtorchError(
        `permute: dims ${fmtShape(d)} is not a permutation of the ${x.shape.length} dims of a tensor of shape ${fmtShape(x.shape)}.`,
      );
    }
    return { shape: d.map((i) => x.shape[i]), dtype: x.dtype };
  },
  grad: (g, { attrs: { dims } }) => {
    const d = dims as number[];
    const inv = new Array<number>(d.length);
    d.forEach((p, i) => (inv[p] = i));
    return [g.permute(inv)];
  },
});
def({
  name: 'expand',
  kind: 'movement',
  arity: 1,
  infer: ([a], { shape }) => {
    const x = a as Meta;
    const s = shape as number[];
    const off = s.length - x.shape.length;
    const bad = off < 0 || x.shape.some((d, i) => d !== 1 && d !== s[i + off]);
    if (bad) {
      throw new WgtorchError(
        `expand: the expanded size of the tensor must match the existing size at non-singleton dimensions` +
          ` (tensor ${fmtShape(x.shape)}, target ${fmtShape(s)}). Fix: only dims of size 1 can be expanded.`,
      );
    }
    return { shape: [...s], dtype: x.dtype };
  },
  grad: (g, { inputs: [a] }) => [g.sumToSize(T(a).shape)],
});

// ---------------------------------------------------------------- sources
def({
  name: 'full',
  kind: 'source',
  arity: 0,
  infer: (_i, { shape, dtype }) => ({ shape: [...(shape as number[])], dtype: dtype as DType }),
  formula: (m, _a, { value }) => m.lit(value as number),
});
def({
  name: 'arange',
  kind: 'source',
  arity: 0,
  // value[i] = start + i * step; `i` is the linear index of the kernel computing it
  infer: (_i, { n, dtype }) => ({ shape: [n as number], dtype: dtype as DType }),
  formula: (m, _a, { start, step }) => `(${m.lit(start as number)} + ${m.target === 'wgsl' ? 'f32(i)' : 'i'} * ${m.lit(step as number)})`,
});

// ---------------------------------------------------------------- index
// Internal primitives: the tensor methods (narrow, select, index, split, cat, gather,
// indexSelect, ...) check their arguments with user-facing messages and lower to these.
const ints = (v: AttrValue) => v as readonly number[];
function checkRank(op: string, x: Meta, n: number, what: string): void {
  if (x.shape.length !== n) {
    throw new WgtorchError(`${op}: ${what} has ${n} entries, but the input has shape ${fmtShape(x.shape)} (${x.shape.length} dims). Fix: give one per dim.`);
  }
}
/** out[c] = x[starts + c * steps]: a strided slice with positive steps. */
def({
  name: 'slice',
  kind: 'index',
  arity: 1,
  infer: ([a], { starts, steps, shape }) => {
    const x = a as Meta;
    for (const [n, v] of [['starts', starts], ['steps', steps], ['shape', shape]] as const) checkRank('slice', x, ints(v).length, n);
    x.shape.forEach((d, i) => {
      const st = ints(starts)[i];
      const sp = ints(steps)[i];
      const n = ints(shape)[i];
      if (!(Number.isInteger(st) && Number.isInteger(sp) && Number.isInteger(n)) || sp < 1 || st < 0 || n < 0 || (n > 0 && st + (n - 1) * sp >= d)) {
        throw new WgtorchError(
          `slice: start ${st}, step ${sp}, size ${n} do not fit dim ${i} of size ${d} (input shape ${fmtShape(x.shape)}). Fix: keep 0 <= start, step >= 1 and start + (size - 1) * step < ${d}.`,
        );
      }
    });
    return { shape: [...ints(shape)], dtype: x.dtype };
  },
  grad: (g, { inputs: [a], attrs: { starts, steps } }) => [g._zeros(T(a).shape)._sliceScatter(g, ints(starts), ints(steps))],
});
/** base with src written over its slice at starts + c * steps (PyTorch's slice_scatter; cat and slice's gradient). */
def({
  name: 'sliceScatter',
  kind: 'index',
  arity: 2,
  infer: ([a, b], { starts, steps }) => {
    const base = a as Meta;
    const src = b as Meta;
    const ok = src.shape.length === base.shape.length && src.dtype === base.dtype &&
      src.shape.every((n, i) => n === 0 || ints(starts)[i] + (n - 1) * ints(steps)[i] < base.shape[i]);
    if (!ok) {
      throw new WgtorchError(
        `sliceScatter: a ${src.dtype} source of shape ${fmtShape(src.shape)} (starts ${fmtShape(ints(starts))}, steps ${fmtShape(ints(steps))}) does not fit in the ${base.dtype} tensor ${fmtShape(base.shape)}.`,
      );
    }
    return { shape: [...base.shape], dtype: base.dtype };
  },
  grad: (g, { inputs: [, b], needsGrad: [na, nb], attrs: { starts, steps } }) => {
    const srcShape = T(b).shape;
    return [
      na ? g._sliceScatter(g._zeros(srcShape), ints(starts), ints(steps)) : null,
      nb ? g._slice(ints(starts), ints(steps), srcShape) : null,
    ];
  },
});
function checkGather(op: string, x: Meta, idx: Meta, dim: number, idxIsDest: boolean): void {
  if (idx.dtype !== 'int32') {
    throw new WgtorchError(`${op}: expected an int32 index tensor, got dtype ${idx.dtype} (shape ${fmtShape(idx.shape)}). Fix: convert it with .int().`);
  }
  if (idx.shape.length !== x.shape.length || !Number.isInteger(dim) || dim < 0 || dim >= Math.max(1, x.shape.length)) {
    throw new WgtorchError(
      `${op}: index ${fmtShape(idx.shape)} and ${idxIsDest ? 'source' : 'input'} ${fmtShape(x.shape)} must have the same number of dims, with dim ${dim} among them. Fix: unsqueeze or reshape the index.`,
    );
  }
  idx.shape.forEach((n, d) => {
    if (d !== dim && n > x.shape[d]) {
      throw new WgtorchError(
        `${op}: size of index ${fmtShape(idx.shape)} at dim ${d} (${n}) is larger than that of the input ${fmtShape(x.shape)} (${x.shape[d]}). Fix: the index may be smaller than the input only in dims other than ${dim}.`,
      );
    }
  });
}
/** out[c] = x[c with c[dim] replaced by index[c]]: PyTorch's gather. */
def({
  name: 'gather',
  kind: 'index',
  arity: 2,
  saves: { inputs: [1] },
  infer: ([a, i], { dim }) => {
    const x = a as Meta;
    const idx = i as Meta;
    checkGather('gather', x, idx, dim as number, false);
    return { shape: [...idx.shape], dtype: x.dtype };
  },
  grad: (g, { inputs: [a, i], attrs: { dim } }) => [g._scatterAdd(dim as number, T(i), T(a).shape), null],
});
/**
 * The gradient of gather: out[j] = sum of src[c] over the c with c = j off `dim` and
 * index[c] = j[dim], zeros of `shape` elsewhere. Repeated indices add up.
 */
def({
  name: 'scatterAdd',
  kind: 'index',
  arity: 2,
  saves: { inputs: [1] },
  infer: ([a, i], { dim, shape }) => {
    const src = a as Meta;
    const idx = i as Meta;
    if (!sameShapeMeta(src.shape, idx.shape)) {
      throw new WgtorchError(`scatterAdd: the source ${fmtShape(src.shape)} and the index ${fmtShape(idx.shape)} must have the same shape.`);
    }
    checkGather('scatterAdd', { shape: [...ints(shape)], dtype: src.dtype }, idx, dim as number, true);
    return { shape: [...ints(shape)], dtype: src.dtype };
  },
  grad: (g, { inputs: [, i], attrs: { dim } }) => [g._gather(dim as number, T(i)), null],
});
const sameShapeMeta = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, k) => d === b[k]);

/**
 * The patches of a convolution as a matrix, read through the convolution's index map (see
 * src/ir/window.ts): x [N, C, H, W] -> [N*Ho*Wo, C*kh*kw], row (n, oh, ow), column (c, i, j),
 * element x[n, c, oh*sh - ph + i*dh, ow*sw - pw + j*dw] (zero outside). `transposed` reads the
 * map backwards (a convolution's input gradient as a matmul): x is then the conv's output
 * gradient [N, O, Ho, Wo], `out` the conv input's [H, W], and element (n, h, w), (o, i, j) is
 * x[n, o, (h + ph - i*dh) / sh, ...] where that divides exactly and lies inside, else zero.
 * Positions outside the source read 0, or -inf with fill '-inf' (a max pool's padding). Its gradient
 * is col2im; a convolution's own rules (src/nn/functional-conv.ts) need neither.
 * attrs: kernel, stride, padding, dilation, out (the [rows, cols] grid of patch positions),
 * transposed, fill.
 */
def({
  name: 'im2col',
  kind: 'index',
  arity: 1,
  infer: ([a], attrs) => {
    const x = a as Meta;
    const [kh, kw] = ints(attrs.kernel);
    const [oh, ow] = ints(attrs.out);
    if (x.shape.length !== 4) throw new WgtorchError(`im2col: expected a 4-D input [N, C, H, W], got ${fmtShape(x.shape)}.`);
    for (const k of ['kernel', 'stride', 'padding', 'dilation', 'out'] as const) {
      const v = ints(attrs[k]);
      if (v.length !== 2 || !v.every((d) => Number.isInteger(d) && d >= (k === 'padding' ? 0 : 1))) {
        throw new WgtorchError(`im2col: ${k} must be a pair of ${k === 'padding' ? 'non-negative' : 'positive'} integers, got ${JSON.stringify(v)}.`);
      }
    }
    const [N, C] = x.shape;
    return { shape: [N * oh * ow, C * kh * kw], dtype: x.dtype };
  },
  grad: (g, { inputs: [a], attrs }) => {
    if (attrs.transposed === true) throw new WgtorchError('im2col: the transposed map (a convolution\'s input gradient) has no gradient of its own: double backward through conv2d is not supported.');
    return [g._col2im({ ...attrs, shape: T(a).shape, fill: 'zero' })];
  },
});
/**
 * im2col's gradient (col2im): out [N, C, H, W] (attrs.shape) sums, for each element, the
 * matrix elements that read it under the forward map, from the destination side (a loop
 * over the kernel positions, no atomics). attrs: im2col's, and shape.
 */
def({
  name: 'col2im',
  kind: 'index',
  arity: 1,
  infer: ([a], attrs) => {
    const x = a as Meta;
    const shape = ints(attrs.shape);
    const [kh, kw] = ints(attrs.kernel);
    const [oh, ow] = ints(attrs.out);
    if (shape.length !== 4 || x.shape.length !== 2 || x.shape[0] !== shape[0] * oh * ow || x.shape[1] !== shape[1] * kh * kw) {
      throw new WgtorchError(`col2im: a patch matrix ${fmtShape(x.shape)} does not fit ${fmtShape(shape)} under kernel ${JSON.stringify([kh, kw])} over ${JSON.stringify([oh, ow])} positions.`);
    }
    return { shape: [...shape], dtype: x.dtype };
  },
  grad: (g, { attrs }) => [g._im2col({ ...attrs, shape: null, fill: 'zero' })],
});
/**
 * A max pool's gradient without its patch matrix: each element of out [N, C, H, W] (attrs.shape)
 * sums, over the pool windows that contain it, g of those whose argmax it is: g and idx are
 * [N, C, Ho, Wo], one per window (idx int32, the kernel position i * kw + j of the window's
 * maximum). From the destination side, so no mask, no patch matrix and no atomics. attrs: the
 * pool's im2col map (kernel, stride, padding, dilation, out = [Ho, Wo]) and shape.
 */
def({
  name: 'col2imAt',
  kind: 'index',
  arity: 2,
  saves: { inputs: [1] },
  infer: ([a, i], attrs) => {
    const g = a as Meta;
    const idx = i as Meta;
    const shape = ints(attrs.shape);
    const [oh, ow] = ints(attrs.out);
    if (idx.dtype !== 'int32') throw new WgtorchError(`col2imAt: expected an int32 index (the windows' argmax), got dtype ${idx.dtype}.`);
    const want = [shape[0], shape[1], oh, ow];
    if (shape.length !== 4 || !sameShapeMeta(g.shape, want) || !sameShapeMeta(idx.shape, want)) {
      throw new WgtorchError(`col2imAt: a gradient ${fmtShape(g.shape)} and index ${fmtShape(idx.shape)} (one per window) do not fit ${fmtShape(shape)}: both must be ${fmtShape(want)}.`);
    }
    return { shape: [...shape], dtype: g.dtype };
  },
  // out is linear in g: its gradient reads back, for each window, the element at its argmax
  grad: (g, { inputs: [, i], attrs }) => {
    const [N, C, H, W] = g.shape;
    const idx = T(i);
    const cols = g.reshape([N * C, 1, H, W])._im2col({ ...attrs, shape: null, fill: 'zero' });
    return [cols._gather(1, idx.reshape([numel(idx.shape), 1])).reshape(idx.shape), null];
  },
});

// ---------------------------------------------------------------- value checks
/**
 * check_index passes an integer tensor through and fails the call where a value lies outside
 * [lo, hi) (except `ignore`). Eager backends check it (cpu at once, webgpu from host data it
 * still knows, else on the device, reported at the next readback); compiled plans take the
 * checks out of the graph and run them on the bound values (src/compile/checks.ts).
 * attrs: lo, hi, ignore (number | null), op, what, bounds (message text), fix.
 */
def({
  name: 'check_index',
  kind: 'check',
  arity: 1,
  infer: ([a], { op }) => {
    const x = a as Meta;
    if (x.dtype !== 'int32') {
      throw new WgtorchError(`${String(op)}: expected int32 indices, got dtype ${x.dtype} (shape ${fmtShape(x.shape)}). Fix: convert with .int().`);
    }
    return { shape: [...x.shape], dtype: x.dtype };
  },
});
