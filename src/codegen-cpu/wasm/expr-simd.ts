/**
 * Elementwise expression trees as WebAssembly SIMD128 functions: an elementwise body, or a
 * matmul epilogue as `accBody` (../render.ts) writes it, compiled into one function over
 * arrays in the Wasm memory, four elements per f32x4 step and the last cols % 4 one at a time.
 *
 * Only what float32 arithmetic defines exactly is taken (add, sub, mul, div, sqrt, neg, abs,
 * min/max-like ops with NaN winning, comparisons, where, casts between float32 and bool masks,
 * integer powers 0-2 and 0.5): every node rounds to float32, as the eager ops round at every
 * store (the JavaScript loops keep doubles and round once where they store, so the two differ
 * within float32 rounding). Scalars enter as float32, as PyTorch's cpu kernels make a Python
 * number the tensor's dtype; a comparison with a scalar is exact only where the scalar is a
 * float32 number, so those scalars are listed (`exactScalars`) for the run to check. Anything
 * else (exp, log, tanh, erf, general powers, integer kernels, gathers, strided views) returns
 * null and keeps its JavaScript loop.
 *
 * Operands are laid out by the caller as the iteration space [rows, cols] row-major (`full`),
 * one value per row (`row`), per column (`col`) or one value (`scalar`); an in-place update
 * reads the old value in the region of the output it overwrites. The exported `run` takes one
 * byte address per bound input, per output and of the float32 scalars, in that order.
 */
import type { DType } from '../../ir/dtype.ts';
import { stridesOf } from '../../ir/shape.ts';
import type { ElementwiseBody, ExprNode, Ref } from '../../passes/kernel-ir.ts';
import { emitModule, FnBuilder, I32, op, simd, V128, type ValType } from './emit.ts';

export type Layout = 'full' | 'row' | 'col' | 'scalar';
type Stored = 'float32' | 'bool';

export type SimdInput = { layout: Layout; dtype: Stored } | { alias: number };

export interface SimdKernel {
  rows: number;
  cols: number;
  /** per input of the body: its layout in the Wasm memory, or the output whose region holds its old value */
  inputs: SimdInput[];
  outputs: { ref: Ref; dtype: Stored }[];
  nodes: ExprNode[];
  scalars: number;
  /** scalars a comparison reads directly: the run takes this function only where they are float32 numbers */
  exactScalars: number[];
}

/** Elements of an operand of `layout` over [rows, cols]. */
export function layoutElements(layout: Layout, rows: number, cols: number): number {
  return layout === 'full' ? rows * cols : layout === 'row' ? rows : layout === 'col' ? cols : 1;
}

const COMPARE: Record<string, number> = {
  lt: simd.f32x4Lt, le: simd.f32x4Le, gt: simd.f32x4Gt, ge: simd.f32x4Ge, eq: simd.f32x4Eq, ne: simd.f32x4Ne,
};
const BINARY: Record<string, number> = { add: simd.f32x4Add, sub: simd.f32x4Sub, mul: simd.f32x4Mul, div: simd.f32x4Div };
const UNARY: Record<string, number> = { neg: simd.f32x4Neg, abs: simd.f32x4Abs, sqrt: simd.f32x4Sqrt };

/** Whether float32 arithmetic computes this node exactly as the op defines it (see the file comment). */
function supported(n: ExprNode): boolean {
  if (n.dtype === 'int32') return false;
  if (n.args.some((a) => a.kind === 'acc' || a.kind === 'element' || a.kind === 'stat')) return false;
  if (n.op in BINARY || n.op in UNARY || n.op in COMPARE) return true;
  switch (n.op) {
    case 'relu': case 'copy': case 'where': case 'sign':
      return true;
    case 'clamp':
      return [n.attrs.min, n.attrs.max].every((v) => v === null || v === undefined || typeof v === 'number');
    case 'cast':
      return n.attrs.dtype === 'float32' || n.attrs.dtype === 'bool';
    case 'pow':
      return [0, 1, 2, 0.5].includes(n.attrs.exponent as number);
    case 'full':
      return typeof n.attrs.value === 'number';
    default:
      return false;
  }
}

const stored = (d: DType): d is Stored => d === 'float32' || d === 'bool';

/** Drops size-1 dims and folds dims contiguous for every array (as the JavaScript loops do). */
function merge(shape: readonly number[], strides: number[][]): { dims: number[]; strides: number[][] } {
  const dims: number[] = [];
  const out: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = dims.length - 1;
    if (last >= 0 && strides.every((s, k) => out[k]![last] === s[d]! * shape[d]!)) {
      dims[last]! *= shape[d]!;
      strides.forEach((s, k) => (out[k]![last] = s[d]!));
    } else {
      dims.push(shape[d]!);
      strides.forEach((s, k) => out[k]!.push(s[d]!));
    }
  }
  return { dims, strides: out };
}

/**
 * The body as a SIMD kernel, or null where it needs what only the JavaScript loop does (an
 * op, a dtype, a gather or an operand that is not one of the layouts).
 */
export function simdKernelOf(body: ElementwiseBody): SimdKernel | null {
  if (!body.nodes.every(supported)) return null;
  if (!body.outputs.every((o) => stored(o.dtype) && (o.ref.kind === 'node' || o.ref.kind === 'input' || o.ref.kind === 'scalar'))) return null;
  if (!body.inputs.every((t) => stored(t.dtype) && t.access !== 'gather')) return null;
  const rm = stridesOf(body.shape);
  const m = merge(body.shape, [rm, ...body.inputs.map((t) => (t.access === 'strided' ? t.strides! : rm))]);
  if (m.dims.length > 2) return null;
  const [rows, cols] = m.dims.length === 2 ? m.dims : [1, m.dims[0] ?? 1];
  const layouts: (Layout | null)[] = m.strides.slice(1).map((s) => {
    if (!m.dims.length) return 'full'; // one element: every operand is its element 0
    const [sr, sc] = m.dims.length === 2 ? s : [0, s[0] ?? 0];
    if (sc === 1 && (sr === cols || rows === 1)) return 'full';
    if (sr === 0 && sc === 0) return 'scalar';
    if (sr === 0 && sc === 1) return 'col';
    if (sr === 1 && sc === 0) return 'row';
    return null;
  });
  const inputs: SimdInput[] = [];
  for (const [k, t] of body.inputs.entries()) {
    if (t.access === 'alias') {
      if (layouts[k] !== 'full' || body.outputs[t.aliasOf ?? 0]?.dtype !== t.dtype) return null;
      inputs.push({ alias: t.aliasOf ?? 0 });
    } else {
      const layout = layouts[k];
      if (!layout) return null;
      inputs.push({ layout, dtype: t.dtype as Stored });
    }
  }
  const exact = new Set<number>();
  for (const n of body.nodes) if (n.op in COMPARE) for (const a of n.args) if (a.kind === 'scalar') exact.add(a.index);
  return {
    rows,
    cols,
    inputs,
    outputs: body.outputs.map((o) => ({ ref: o.ref, dtype: o.dtype as Stored })),
    nodes: body.nodes,
    scalars: body.scalars,
    exactScalars: [...exact].sort((a, b) => a - b),
  };
}

const f32Bytes = (v: number) => [...new Uint8Array(new Float32Array([v]).buffer)];

/** The kernel as a module importing `env.mem` (the memory the matmul also uses), exporting `run`. */
export function simdModuleBytes(k: SimdKernel, memory: { min: number; max: number; shared: boolean }): Uint8Array<ArrayBuffer> {
  return emitModule({ memory, functions: [{ name: 'run', fn: simdFunction(k) }] });
}

function simdFunction(k: SimdKernel): FnBuilder {
  const bound = k.inputs.map((t, i) => ({ t, i })).filter((x) => !('alias' in x.t));
  const params: ValType[] = Array.from({ length: bound.length + k.outputs.length + 1 }, (): ValType => I32);
  const f = new FnBuilder(params);
  const inPtr = new Map(bound.map((x, p) => [x.i, p]));
  const outPtr = (j: number) => bound.length + j;
  const scPtr = bound.length + k.outputs.length;
  const r = f.local(I32);
  const c = f.local(I32);
  const e = f.local(I32);
  const { rows, cols } = k;

  // what each iteration reads: only the inputs and scalars some node or output uses
  const used = new Set<string>();
  const note = (a: Ref) => {
    if (a.kind === 'input' || a.kind === 'scalar') used.add(`${a.kind}${a.index}`);
  };
  k.nodes.forEach((n) => n.args.forEach(note));
  k.outputs.forEach((o) => note(o.ref));
  const inVal = k.inputs.map(() => f.local(V128));
  const scVal = Array.from({ length: k.scalars }, () => f.local(V128));
  const nodeVal = k.nodes.map(() => f.local(V128));
  const tmp = f.local(V128);
  const vconst = (v: number) => f.simd(simd.v128Const, ...f32Bytes(v), ...f32Bytes(v), ...f32Bytes(v), ...f32Bytes(v));
  const push = (a: Ref) => {
    if (a.kind === 'input') f.get(inVal[a.index]!);
    else if (a.kind === 'scalar') f.get(scVal[a.index]!);
    else if (a.kind === 'node') f.get(nodeVal[a.index]!);
    else throw new Error(`internal compiler error: a SIMD kernel reads no ${a.kind}`);
  };

  // one element at byte address `at()` as a splat (bool bytes widen to 1.0 / 0.0)
  const loadOne = (dtype: Stored, at: () => void) => {
    at();
    if (dtype === 'float32') f.simd(simd.v128Load32Splat, ...f.mem(2, 0));
    else f.emit(op.i32Load8U, ...f.mem(0, 0), op.f32ConvertI32U).simd(simd.f32x4Splat);
  };
  // four consecutive elements
  const loadFour = (dtype: Stored, at: () => void) => {
    at();
    if (dtype === 'float32') f.simd(simd.v128Load, ...f.mem(2, 0));
    else f.simd(simd.v128Load32Zero, ...f.mem(0, 0)).simd(simd.i16x8ExtendLowI8x16U).simd(simd.i32x4ExtendLowI16x8U).simd(simd.f32x4ConvertI32x4U);
  };
  const addr = (ptr: number, dtype: Stored, index: number) => () => {
    f.get(ptr).get(index);
    if (dtype === 'float32') f.i32(2).emit(op.i32Shl);
    f.emit(op.i32Add);
  };

  // scalars and one-value operands once; per-row operands once per row
  for (let s = 0; s < k.scalars; s++) if (used.has(`scalar${s}`)) loadOne('float32', () => f.get(scPtr).i32(4 * s).emit(op.i32Add)), f.set(scVal[s]!);
  k.inputs.forEach((t, i) => {
    if ('alias' in t || t.layout !== 'scalar' || !used.has(`input${i}`)) return;
    loadOne(t.dtype, () => f.get(inPtr.get(i)!));
    f.set(inVal[i]!);
  });

  const node = (n: ExprNode, i: number) => {
    const [a, b, c3] = n.args;
    if (n.op in BINARY) push(a!), push(b!), f.simd(BINARY[n.op]!);
    else if (n.op in UNARY) push(a!), f.simd(UNARY[n.op]!);
    else if (n.op in COMPARE) push(a!), push(b!), f.simd(COMPARE[n.op]!), vconst(1), f.simd(simd.v128And);
    else {
      switch (n.op) {
        case 'relu':
          push(a!), vconst(0), f.simd(simd.f32x4Max);
          break;
        case 'clamp':
          push(a!);
          if (typeof n.attrs.min === 'number') vconst(n.attrs.min), f.simd(simd.f32x4Max);
          if (typeof n.attrs.max === 'number') vconst(n.attrs.max), f.simd(simd.f32x4Min);
          break;
        case 'copy':
          push(a!);
          break;
        case 'cast':
          push(a!);
          if (n.attrs.dtype === 'bool') vconst(0), f.simd(simd.f32x4Ne), vconst(1), f.simd(simd.v128And);
          break;
        case 'where':
          // c != 0 (NaN included, as `c !== 0` in JavaScript) picks a
          push(b!), push(c3!), push(a!), vconst(0), f.simd(simd.f32x4Ne), f.simd(simd.v128Bitselect);
          break;
        case 'sign':
          vconst(0), push(a!), f.simd(simd.f32x4Lt), vconst(1), f.simd(simd.v128And);
          push(a!), vconst(0), f.simd(simd.f32x4Lt), vconst(1), f.simd(simd.v128And);
          f.simd(simd.f32x4Sub);
          break;
        case 'pow': {
          const p = n.attrs.exponent as number;
          if (p === 0) vconst(1);
          else if (p === 1) push(a!);
          else if (p === 2) push(a!), push(a!), f.simd(simd.f32x4Mul);
          else push(a!), f.simd(simd.f32x4Sqrt);
          break;
        }
        case 'full':
          vconst(n.attrs.value as number);
          break;
        default:
          throw new Error(`internal compiler error: no SIMD form for ${n.op}`);
      }
    }
    f.set(nodeVal[i]!);
  };

  // one iteration at element e: `four` steps four elements, else one (lane 0 of every vector)
  const iteration = (four: boolean) => {
    f.get(r).i32(cols).emit(op.i32Mul).get(c).emit(op.i32Add).set(e);
    k.inputs.forEach((t, i) => {
      if (!used.has(`input${i}`)) return;
      if ('alias' in t) {
        const dtype = k.outputs[t.alias]!.dtype;
        (four ? loadFour : loadOne)(dtype, addr(outPtr(t.alias), dtype, e));
      } else if (t.layout === 'full' || t.layout === 'col') {
        (four ? loadFour : loadOne)(t.dtype, addr(inPtr.get(i)!, t.dtype, t.layout === 'full' ? e : c));
      } else return;
      f.set(inVal[i]!);
    });
    k.nodes.forEach(node);
    k.outputs.forEach((o, j) => {
      addr(outPtr(j), o.dtype, e)();
      push(o.ref);
      if (o.dtype === 'float32') {
        if (four) f.simd(simd.v128Store, ...f.mem(2, 0));
        else f.simd(simd.f32x4ExtractLane, 0).emit(op.f32Store, ...f.mem(2, 0));
        return;
      }
      // a mask byte: 1 where the value is nonzero (NaN included), else 0
      vconst(0), f.simd(simd.f32x4Ne), f.i32(1).simd(simd.i32x4Splat), f.simd(simd.v128And);
      if (four) {
        f.tee(tmp).get(tmp).simd(simd.i16x8NarrowI32x4U).tee(tmp).get(tmp).simd(simd.i8x16NarrowI16x8U);
        f.simd(simd.v128Store32Lane, ...f.mem(0, 0), 0);
      } else f.simd(simd.i32x4ExtractLane, 0).emit(op.i32Store8, ...f.mem(0, 0));
    });
  };

  f.for(r, () => f.i32(0), () => f.i32(rows), 1, () => {
    k.inputs.forEach((t, i) => {
      if ('alias' in t || t.layout !== 'row' || !used.has(`input${i}`)) return;
      loadOne(t.dtype, addr(inPtr.get(i)!, t.dtype, r));
      f.set(inVal[i]!);
    });
    f.for(c, () => f.i32(0), () => f.i32(cols - 3), 4, () => iteration(true));
    f.for(c, () => f.get(c), () => f.i32(cols), 1, () => iteration(false));
  });
  return f;
}
