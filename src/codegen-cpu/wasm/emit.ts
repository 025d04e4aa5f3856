/**
 * A small WebAssembly binary emitter: just what the generated CPU kernels need (i32, f32 and
 * SIMD128 code over one imported memory), so kernels are written in TypeScript and emitted as
 * bytes without a toolchain. Function bodies are built with `FnBuilder`, whose helpers emit
 * structured control flow (for loops, if) so generated code stays readable as TypeScript.
 */

export const I32 = 0x7f;
export const F32 = 0x7d;
export const V128 = 0x7b;
export type ValType = typeof I32 | typeof F32 | typeof V128;

/** Opcodes used by the generators (core and the 0xfd SIMD prefix). */
export const op = {
  block: 0x02, loop: 0x03, if: 0x04, else: 0x05, end: 0x0b, br: 0x0c, brIf: 0x0d, return: 0x0f, call: 0x10,
  drop: 0x1a, select: 0x1b,
  localGet: 0x20, localSet: 0x21, localTee: 0x22,
  f32Load: 0x2a, i32Load8U: 0x2d, f32Store: 0x38, i32Store8: 0x3a, i32Const: 0x41, f32Const: 0x43,
  i32Eqz: 0x45, i32Eq: 0x46, i32Ne: 0x47, i32LtS: 0x48, i32LtU: 0x49, i32GtS: 0x4a, i32LeS: 0x4c, i32GeS: 0x4e,
  i32Add: 0x6a, i32Sub: 0x6b, i32Mul: 0x6c, i32DivU: 0x6e, i32And: 0x71, i32Or: 0x72, i32Shl: 0x74,
  f32ConvertI32U: 0xb3,
} as const;

/** SIMD opcodes (after the 0xfd prefix, LEB128-encoded). */
export const simd = {
  v128Load: 0x00, v128Load32Splat: 0x09, v128Store: 0x0b, v128Const: 0x0c, i8x16Shuffle: 0x0d,
  f32x4Splat: 0x13, f32x4Add: 0xe4, f32x4Sub: 0xe5, f32x4Mul: 0xe6,
  i32x4Splat: 0x11, i32x4ExtractLane: 0x1b, f32x4ExtractLane: 0x1f,
  f32x4Eq: 0x41, f32x4Ne: 0x42, f32x4Lt: 0x43, f32x4Gt: 0x44, f32x4Le: 0x45, f32x4Ge: 0x46,
  v128And: 0x4e, v128Bitselect: 0x52, v128Store32Lane: 0x5a, v128Load32Zero: 0x5c,
  i8x16NarrowI16x8U: 0x66, i16x8NarrowI32x4U: 0x86, i16x8ExtendLowI8x16U: 0x89, i32x4ExtendLowI16x8U: 0xa9,
  f32x4Abs: 0xe0, f32x4Neg: 0xe1, f32x4Sqrt: 0xe3, f32x4Div: 0xe7, f32x4Min: 0xe8, f32x4Max: 0xe9,
  f32x4ConvertI32x4U: 0xfb,
  /** relaxed SIMD: a * b + c, fused where the CPU has FMA (results may differ by one rounding) */
  f32x4RelaxedMadd: 0x105,
} as const;

export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const str = (s: string) => [...uleb(s.length), ...new TextEncoder().encode(s)];
const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];

/** Builds one function body. Locals are declared as they are asked for; params come first. */
export class FnBuilder {
  readonly code: number[] = [];
  private readonly localTypes: ValType[] = [];
  constructor(readonly params: ValType[], readonly results: ValType[] = []) {}

  local(type: ValType): number {
    this.localTypes.push(type);
    return this.params.length + this.localTypes.length - 1;
  }
  emit(...bytes: number[]): this {
    this.code.push(...bytes);
    return this;
  }
  get(l: number): this { return this.emit(op.localGet, ...uleb(l)); }
  set(l: number): this { return this.emit(op.localSet, ...uleb(l)); }
  tee(l: number): this { return this.emit(op.localTee, ...uleb(l)); }
  i32(v: number): this { return this.emit(op.i32Const, ...sleb(v | 0)); }
  simd(opcode: number, ...imm: number[]): this { return this.emit(0xfd, ...uleb(opcode), ...imm); }
  /** memarg: log2 alignment and a constant byte offset */
  mem(align: number, offset: number): number[] { return [align, ...uleb(offset)]; }
  call(fn: number): this { return this.emit(op.call, ...uleb(fn)); }

  /** for (l = start; l < end; l += step) body — start/end push one i32 each; step is a constant or a local */
  for(l: number, start: () => void, end: () => void, step: number | { local: number }, body: () => void): this {
    start();
    this.set(l);
    this.emit(op.block, 0x40);
    this.emit(op.loop, 0x40);
    this.get(l); end(); this.emit(op.i32GeS, op.brIf, 1);
    body();
    this.get(l);
    if (typeof step === 'number') this.i32(step);
    else this.get(step.local);
    this.emit(op.i32Add).set(l);
    this.emit(op.br, 0, op.end, op.end);
    return this;
  }
  /** block ... end: `br n` inside branches to its end */
  block(body: () => void): this {
    this.emit(op.block, 0x40);
    body();
    return this.emit(op.end);
  }
  /** loop ... end: `br n` inside branches back to its start */
  loop(body: () => void): this {
    this.emit(op.loop, 0x40);
    body();
    return this.emit(op.end);
  }
  /** if (cond) then else otherwise; with `result`, both arms leave one value of that type */
  if(cond: () => void, then: () => void, otherwise?: () => void, result?: ValType): this {
    cond();
    this.emit(op.if, result ?? 0x40);
    then();
    if (otherwise) {
      this.emit(op.else);
      otherwise();
    }
    return this.emit(op.end);
  }
  /** pushes min(a, b) of two i32 pushed by the callbacks (signed) */
  minI32(a: () => void, b: () => void, tmpA: number, tmpB: number): this {
    a(); this.set(tmpA); b(); this.set(tmpB);
    this.get(tmpA).get(tmpB).get(tmpA).get(tmpB).emit(op.i32LtS, op.select);
    return this;
  }

  body(): number[] {
    // run-length groups of local declarations
    const groups: number[][] = [];
    for (let i = 0; i < this.localTypes.length; ) {
      let j = i;
      while (j < this.localTypes.length && this.localTypes[j] === this.localTypes[i]) j++;
      groups.push([...uleb(j - i), this.localTypes[i]]);
      i = j;
    }
    const b = [...vec(groups), ...this.code, op.end];
    return [...uleb(b.length), ...b];
  }
}

export interface ModuleSpec {
  /** the imported memory env.mem: shared memories need a maximum */
  memory: { min: number; max: number; shared: boolean };
  functions: { name?: string; fn: FnBuilder }[];
}

export function emitModule(spec: ModuleSpec): Uint8Array<ArrayBuffer> {
  const types: number[][] = [];
  const typeIndex = (f: FnBuilder) => {
    const t = [0x60, ...vec(f.params.map((p) => [p])), ...vec(f.results.map((r) => [r]))];
    let i = types.findIndex((x) => x.join() === t.join());
    if (i < 0) i = types.push(t) - 1;
    return i;
  };
  const funcTypes = spec.functions.map((f) => uleb(typeIndex(f.fn)));
  const { min, max, shared } = spec.memory;
  const limits = shared ? [0x03, ...uleb(min), ...uleb(max)] : [0x01, ...uleb(min), ...uleb(max)];
  const imports = vec([[...str('env'), ...str('mem'), 0x02, ...limits]]);
  const exports = vec(spec.functions.flatMap((f, i) => (f.name ? [[...str(f.name), 0x00, ...uleb(i)]] : [])));
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(types)),
    ...section(2, imports),
    ...section(3, vec(funcTypes)),
    ...section(7, exports),
    ...section(10, vec(spec.functions.map((f) => f.fn.body()))),
  ];
  return new Uint8Array(bytes);
}
