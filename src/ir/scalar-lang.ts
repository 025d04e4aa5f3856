/**
 * Elementwise formulas are written once, against this tiny expression language, and
 * rendered to JavaScript (the CPU kernels) or to WGSL (the GPU kernels, fused or not).
 * Values are float32 numbers in both; masks are 1/0.
 */
export type MathFn = 'exp' | 'log' | 'sqrt' | 'abs' | 'tanh' | 'sign' | 'max' | 'min' | 'pow' | 'floor';
export type CmpOp = '<' | '<=' | '>' | '>=' | '==' | '!=';

export interface ScalarLang {
  readonly target: 'js' | 'wgsl';
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
