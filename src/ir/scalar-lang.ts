/**
 * Elementwise formulas are written once, against this tiny expression language, and
 * rendered to JavaScript (the CPU kernels) or to WGSL (the GPU kernels, fused or not).
 * Values are float32 numbers in both; masks are 1/0.
 */
export type MathFn = 'exp' | 'log' | 'sqrt' | 'abs' | 'tanh' | 'sign' | 'max' | 'min' | 'pow' | 'floor' | 'sin' | 'cos' | 'erf';
export type CmpOp = '<' | '<=' | '>' | '>=' | '==' | '!=';

export interface ScalarLang {
  /** 'wgsl-i32': WGSL over i32 values (kernels whose every value is an integer: see wgslIntLang) */
  readonly target: 'js' | 'wgsl' | 'wgsl-i32';
  lit(v: number): string;
  call(fn: MathFn, ...args: string[]): string;
  /** 1 where the comparison holds, else 0. */
  cmp(op: CmpOp, a: string, b: string): string;
  /** cond != 0 ? a : b */
  select(cond: string, a: string, b: string): string;
}

export const jsLang: ScalarLang = {
  target: 'js',
  lit(v) {
    if (Number.isNaN(v)) return 'NaN';
    if (v === Infinity) return 'Infinity';
    if (v === -Infinity) return '(-Infinity)';
    return Object.is(v, -0) ? '(-0)' : v < 0 ? `(${v})` : String(v);
  },
  call(fn, ...a) {
    if (fn === 'erf') return `(${a[0]} !== ${a[0]} ? ${a[0]} : ${erfExpr(this, `Math.min(Math.max(${a[0]}, -4), 4)`)})`;
    return `Math.${fn}(${a.join(', ')})`;
  },
  cmp(op, a, b) {
    const jsOp = op === '==' ? '===' : op === '!=' ? '!==' : op;
    return `(${a} ${jsOp} ${b} ? 1 : 0)`;
  },
  select(c, a, b) {
    return `(${c} !== 0 ? ${a} : ${b})`;
  },
};

/**
 * A WGSL f32 literal for any double. WGSL has no literal for inf and NaN, and rejects a
 * constant bitcast to them, so those go through `f32bits` (WGSL_PRELUDE), which reads a
 * private variable and so is not a constant expression.
 */
export function wgslF32(v: number): string {
  if (Number.isNaN(v)) return 'f32bits(0x7fc00000u)';
  if (v === Infinity) return 'f32bits(0x7f800000u)';
  if (v === -Infinity) return 'f32bits(0xff800000u)';
  const f = Math.fround(v);
  if (!Number.isFinite(f)) return f > 0 ? 'f32bits(0x7f800000u)' : 'f32bits(0xff800000u)';
  let s = String(f);
  if (!/[.eE]/.test(s)) s += '.0';
  return f < 0 || Object.is(f, -0) ? `(${s})` : s;
}

export const wgslLang: ScalarLang = {
  target: 'wgsl',
  lit: wgslF32,
  call(fn, ...a) {
    // WGSL's pow is undefined for negative bases; integer powers are unrolled by the op itself.
    // WGSL lets implementations assume no NaN (lavapipe does): these keep PyTorch's NaN rules.
    if (fn === 'erf') return `select(${erfExpr(this, `clamp(${a[0]}, -4.0, 4.0)`)}, ${a[0]}, wgt_isnan(${a[0]}))`;
    if (fn === 'tanh' || fn === 'max' || fn === 'min' || fn === 'sign' || fn === 'pow') return `wgt_${fn}(${a.join(', ')})`;
    return `${fn}(${a.join(', ')})`;
  },
  cmp(op, a, b) {
    if (op === '!=') return `select(0.0, 1.0, !(${a} == ${b}) || wgt_isnan(${a}) || wgt_isnan(${b}))`;
    return `select(0.0, 1.0, ${a} ${op} ${b})`;
  },
  select(c, a, b) {
    return `select(${b}, ${a}, ${c} != 0.0)`;
  },
};

// erf(x) = x P(x^2) / Q(x^2) on x clamped to [-4, 4] (beyond it erf is +-1 in float32): the
// rational approximation Eigen and XLA use for float32, within 4.2e-7 relative of erf in float32
// arithmetic. The callers pass NaN through explicitly: a clamp may drop it.
const ERF_P = [-2.72614225801306e-10, 2.77068142495902e-8, -2.10102402082508e-6, -5.69250639462346e-5, -7.34990630326855e-4, -2.95459980854025e-3, -1.60960333262415e-2];
const ERF_Q = [-1.45660718464996e-5, -2.13374055278905e-4, -1.68282697438203e-3, -7.37332916720468e-3, -1.42647390514189e-2];
function erfExpr(m: ScalarLang, clamped: string): string {
  const x = `(${clamped})`;
  const x2 = `(${x} * ${x})`;
  const horner = (cs: number[]) => cs.slice(1).reduce((acc, c) => `(${acc} * ${x2} + ${m.lit(c)})`, m.lit(cs[0]));
  return `(${x} * ${horner(ERF_P)} / ${horner(ERF_Q)})`;
}

/** Module-scope WGSL every generated kernel starts with (see wgslF32). */
export const WGSL_PRELUDE = [
  'var<private> wgt_zero: u32 = 0u;',
  'fn f32bits(x: u32) -> f32 { return bitcast<f32>(x + wgt_zero); }',
  // x unchanged, in a form a compiler cannot prove equal to x (so x - wgt_keep(x) is not folded to 0)
  'fn wgt_keep(x: f32) -> f32 { return select(x, f32bits(0x7fc00000u), wgt_isnan(x)); }',
  // NaN tests on the bits: a compiler that assumes no NaN may fold x != x to false
  'fn wgt_isnan(x: f32) -> bool { let b = bitcast<u32>(x); return (b & 0x7f800000u) == 0x7f800000u && (b & 0x007fffffu) != 0u; }',
  'fn wgt_max(a: f32, b: f32) -> f32 { if (wgt_isnan(a)) { return a; } if (wgt_isnan(b)) { return b; } return max(a, b); }',
  'fn wgt_min(a: f32, b: f32) -> f32 { if (wgt_isnan(a)) { return a; } if (wgt_isnan(b)) { return b; } return min(a, b); }',
  'fn wgt_sign(a: f32) -> f32 { if (wgt_isnan(a)) { return a; } return sign(a); }',
  // WGSL's pow is undefined at 0 and for negative bases: IEEE's values there (pow(0, -0.5) is inf).
  // Integer powers reach it with |x| (registry renderPow), so a negative base here has a fractional power: NaN.
  'fn wgt_pow(a: f32, p: f32) -> f32 { if (p == 0.0) { return 1.0; } if (wgt_isnan(a) || wgt_isnan(p)) { return f32bits(0x7fc00000u); }' +
    ' if (a == 0.0) { if (p > 0.0) { return 0.0; } return f32bits(0x7f800000u); } if (a < 0.0) { return f32bits(0x7fc00000u); }' +
    ' if (a == f32bits(0x7f800000u)) { if (p > 0.0) { return a; } return 0.0; } return pow(a, p); }',
  // tanh of |x| > 15 is +-1 in f32; clamping keeps exp-based implementations from overflowing
  'fn wgt_tanh(a: f32) -> f32 { if (wgt_isnan(a)) { return a; } return tanh(clamp(a, -15.0, 15.0)); }',
].join('\n');

/**
 * WGSL over i32 values: kernels whose inputs, outputs and every op are integer (int32 and bool
 * arithmetic, comparisons, where, clamp with integer bounds) compute in i32, so that int32 is
 * exact beyond 2^24 (in f32, 16777217 + 1 was 16777216) and wraps as PyTorch's int32 does.
 */
export const wgslIntLang: ScalarLang = {
  target: 'wgsl-i32',
  lit(v) {
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new Error(`internal error: ${v} is not an i32 literal`);
    return v === -0x80000000 ? 'i32(-2147483647 - 1)' : v < 0 ? `(${v}i)` : `${v}i`;
  },
  call(fn, ...a) {
    if (fn === 'floor') return a[0]!;
    if (fn === 'abs' || fn === 'max' || fn === 'min' || fn === 'sign') return `${fn}(${a.join(', ')})`;
    throw new Error(`internal error: ${fn} has no i32 form`);
  },
  cmp(op, a, b) {
    return `select(0i, 1i, ${a} ${op} ${b})`;
  },
  select(c, a, b) {
    return `select(${b}, ${a}, ${c} != 0i)`;
  },
};

/** Ops whose formulas have an i32 form when every number they see is an integer. */
export const INT_FORMULA_OPS = new Set(['add', 'sub', 'mul', 'neg', 'abs', 'sign', 'copy', 'where', 'relu', 'clamp', 'lt', 'le', 'gt', 'ge', 'eq', 'ne', 'cast', 'full']);
