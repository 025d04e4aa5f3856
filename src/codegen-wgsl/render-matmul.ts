/**
 * A matmul kernel of the kernel IR as WGSL: the register-blocked template (matmul.ts) with
 * - a prologue function per operand (applied to every loaded element),
 * - an epilogue on each output element (it may write several values), over 4 columns at
 *   once with vec4 loads and stores in the vec4 variants,
 * - reductions of op(A) or op(B) along K (any value reduction of src/ir/reductions.ts)
 *   and their consumers, once per row or column.
 */
import { foldExpr, preferExpr, REDUCTIONS } from '../ir/reductions.ts';
import { WGSL_PRELUDE, wgslF32, wgslLang } from '../ir/scalar-lang.ts';
import type { Arena, MatmulBody, MatmulInput } from '../passes/kernel-ir.ts';
import { windowLoadWGSL, windowWordValues } from '../ir/window.ts';
import { renderNodes } from './expr.ts';
import { storeAs, wgslType } from './kernel-spec.ts';
import { batchedMatmulParams, batchVec4Aligned, checkZeroWord, matmulParams, matmulVariantFor, matmulWGSL, scalarTwin, type LineReduction, type MatmulBatch, type MatmulVariant, type MatmulVariantName } from './matmul.ts';
import { standalone, type Namespace, type WgslLayout } from './namespace.ts';
import { StorageSlots } from './storage-slots.ts';

export interface RenderedMatmul {
  code: string;
  layout: WgslLayout;
  variant: MatmulVariant;
}

export function matmulKernelWGSL(b: MatmulBody, requested: MatmulVariant | MatmulVariantName | undefined, nsIn?: Namespace, arena?: Arena): RenderedMatmul {
  const { M, N } = b;
  const bt = b.batched;
  let variant = matmulVariantFor(M, N, b.K, b.transA, requested);
  if (bt && variant.vec4 && !batchVec4Aligned(batchOf(b))) variant = scalarTwin(variant);
  // a batched kernel's epilogue also gets the matrix (bz); its outputs are contiguous [count, M, N]
  const zArg = bt ? ', bz: u32' : '';
  const zCall = bt ? ', bz' : '';
  const cAt = (row: string, col: string) => (bt ? `bz * ${M * N}u + ${row} * ${N}u + ${col}` : `${row} * ${N}u + ${col}`);
  const zOff = (x: Extract<MatmulInput, { at: 'rowcol' }>) =>
    bt && x.batch ? `${x.batch[0] ? `(bz / ${bt.inner}u) * ${x.batch[0]}u + ` : ''}${x.batch[1] ? `(bz % ${bt.inner}u) * ${x.batch[1]}u + ` : ''}` : '';
  if (b.batch.count > 1 && b.reductions.length) throw new Error('internal compiler error: operand reductions of a batched matmul');
  // logical slots: A, B, C, the reads, outputs[1..], each operand reduction's outputs (an arena never holds A, B or C)
  const logical = 3 + b.reads.length + (b.outputs.length - 1) + b.reductions.reduce((t, r) => t + r.outputs.length, 0);
  const slots = new StorageSlots(logical, arena);
  if ([0, 1, 2].some((x) => slots.isMember(x))) throw new Error('internal compiler error: a matmul arena holds an operand or C');
  const ns = nsIn ?? standalone(slots.count);
  const n = (s: string) => ns.prefix + s;
  const readSlot = (r: number) => 3 + r;
  const outSlot = (j: number) => 3 + b.reads.length + j - 1;
  const redSlot = (q: number, j: number) => 3 + b.reads.length + b.outputs.length - 1 + b.reductions.slice(0, q).reduce((t, r) => t + r.outputs.length, 0) + j;
  /** element idx of output j (j > 0), of output j of operand reduction q, wherever it is bound */
  const outAt = (j: number, idx: string) => slots.at(ns, outSlot(j), n(`eout${j}`), idx);
  const redAt = (q: number, j: number, idx: string) => slots.at(ns, redSlot(q, j), n(`red${q}out${j}`), idx);
  const sc = (s: number) => `bitcast<f32>(${n('p')}.x[${Math.floor(s / 4)}][${s % 4}])`;
  const readName = (r: number) => n(`ein${r}`);
  const outName = (j: number) => (j === 0 ? n('C') : n(`eout${j}`));
  const redOutName = (q: number, j: number) => n(`red${q}out${j}`);
  const input = (i: number): MatmulInput => b.inputs[i]!;

  // ---- prologues: x is the loaded element, inputs are one-element tensors
  const prologue = (which: 'A' | 'B') => {
    const nodes = which === 'A' ? b.prologueA : b.prologueB;
    if (!nodes.length) return null;
    const names = {
      input: (i: number) => {
        const r = (input(i) as { read: number }).read;
        return `f32(${slots.at(ns, readSlot(r), readName(r), '0u')})`;
      },
      scalar: sc,
      element: 'x',
      prefix: `pro${which}`,
    };
    const body = renderNodes(nodes, names, '  ');
    return `fn ${n(`prologue${which}`)}(x: f32) -> f32 {\n${body.join('\n')}\n  return pro${which}${nodes.length - 1};\n}`;
  };
  const proA = prologue('A');
  const proB = prologue('B');

  // ---- operands read through a convolution's index map (its sizes baked in: one pipeline per conv geometry)
  const windowFn = (which: 'A' | 'B') => {
    const w = which === 'A' ? b.windowA : b.windowB;
    if (!w) return null;
    const vals = windowWordValues(w);
    return windowLoadWGSL(n(`window${which}`), n(which), (k) => `${vals[k]}u`);
  };
  const winA = windowFn('A');
  const winB = windowFn('B');

  // ---- epilogue
  const fusedEpilogue = b.epilogue.length > 0 || b.outputs[0]!.ref.kind !== 'acc';
  const wide = variant.vec4 && fusedEpilogue;
  // read buffers loaded as vec4: every epilogue use contiguous along the row, in groups of 4, and no other use
  const vecRead = b.reads.map((_, r) => {
    const uses = b.inputs.filter((x) => x.at !== 'alias' && x.read === r);
    return wide && !slots.isMember(readSlot(r)) && uses.length > 0 && uses.every((x) => x.at === 'rowcol' && x.strides[1] === 1 && x.strides[0] % 4 === 0 && (x.batch ?? [0, 0]).every((z) => z % 4 === 0));
  });
  const elem = (r: number, idx: string) => (vecRead[r] ? `${readName(r)}[(${idx}) / 4u][(${idx}) % 4u]` : slots.at(ns, readSlot(r), readName(r), idx));
  // outputs written as vec4 in the wide epilogue: those bound alone (an arena is an array<f32>)
  const vecOut = (j: number) => j === 0 || !slots.isMember(outSlot(j));

  let epiFn: string;
  if (!wide) {
    // one output element (the tiled and scalar variants)
    const loadAt = (i: number) => {
      const x = input(i);
      if (x.at === 'alias') {
        // in place: the old value is read where the new one is about to be written
        const out = outName(x.output);
        if (x.output > 0) return `f32(${outAt(x.output, cAt('row', 'col'))})`;
        return variant.vec4 ? `${out}[(${cAt('row', 'col')}) / 4u][(${cAt('row', 'col')}) % 4u]` : `f32(${out}[${cAt('row', 'col')}])`;
      }
      if (x.at !== 'rowcol') throw new Error(`internal compiler error: a matmul epilogue reads a ${x.at} input`);
      return `f32(${elem(x.read, `${zOff(x)}row * ${x.strides[0]}u + col * ${x.strides[1]}u`)})`;
    };
    const epiBody = renderNodes(b.epilogue, { input: loadAt, scalar: sc, acc: 'acc', prefix: 'e' }, '  ');
    const stores = b.outputs.map((o, j) => {
      const v = storeAs(o.dtype, o.ref.kind === 'acc' ? 'acc' : `e${(o.ref as { index: number }).index}`);
      if (j === 0 && variant.vec4) return `  ${outName(0)}[(${cAt('row', 'col')}) / 4u][(${cAt('row', 'col')}) % 4u] = ${v};`;
      if (j === 0) return `  ${outName(0)}[${cAt('row', 'col')}] = ${v};`;
      return `  ${outAt(j, cAt('row', 'col'))} = ${v};`;
    });
    epiFn = `fn ${n('epilogue')}(acc: f32, row: u32, col: u32${zArg}) {\n${epiBody.join('\n')}\n${stores.join('\n')}\n}`;
  } else {
    // vec4 epilogue: each operand loaded once as a vec4, the formulas per component, vec4 stores
    const loads = new Map<string, string>();
    const load = (key: string, expr: string) => {
      if (!loads.has(key)) loads.set(key, `  let v${loads.size} = ${expr};`);
      return `v${[...loads.keys()].indexOf(key)}`;
    };
    const at = `(${cAt('row', 'col')}) / 4u`;
    const input4 = (q: number) => (i: number) => {
      const x = input(i);
      if (x.at === 'alias') {
        const out = outName(x.output);
        if (!vecOut(x.output)) return `f32(${outAt(x.output, cAt('row', `col + ${q}u`))})`;
        return `f32(${load(`out:${out}`, `${out}[${at}]`)}[${q}])`;
      }
      if (x.at !== 'rowcol') throw new Error(`internal compiler error: a matmul epilogue reads a ${x.at} input`);
      const [sr, scol] = x.strides;
      if (vecRead[x.read]) return `f32(${load(`in:${x.read}:${sr}:${x.batch ?? ''}`, `${readName(x.read)}[(${zOff(x)}row * ${sr}u + col) / 4u]`)}[${q}])`;
      return `f32(${elem(x.read, `${zOff(x)}row * ${sr}u + (col + ${q}u) * ${scol}u`)})`;
    };
    const comp = 'xyzw';
    const bodies = [0, 1, 2, 3].map((q) => renderNodes(b.epilogue, { input: input4(q), scalar: sc, acc: `acc.${comp[q]}`, prefix: `e${comp[q]}` }, '  '));
    const stores = b.outputs.map((o, j) => {
      const parts = [0, 1, 2, 3].map((q) => storeAs(o.dtype, o.ref.kind === 'acc' ? `acc.${comp[q]}` : `e${comp[q]}${(o.ref as { index: number }).index}`));
      if (!vecOut(j)) return parts.map((v, q) => `  ${outAt(j, cAt('row', `col + ${q}u`))} = ${v};`).join('\n');
      return `  ${outName(j)}[${at}] = vec4<${wgslType(o.dtype)}>(${parts.join(', ')});`;
    });
    epiFn = `fn ${n('epilogue4')}(acc: vec4<f32>, row: u32, col: u32${zArg}) {\n${[...loads.values(), ...bodies.flat(), ...stores].join('\n')}\n}`;
  }

  // ---- once per row of op(A) / column of op(B): the operand reductions and what consumes them
  const lineFns: string[] = [];
  const lines: Partial<Record<'A' | 'B', LineReduction>> = {};
  b.reductions.forEach((r, q) => {
    const red = REDUCTIONS[r.combine];
    if (red.kind === 'select' && red.index) throw new Error(`internal compiler error: ${r.combine} is not a value a matmul can reduce its operand to`);
    const fn = n(`line${q}`);
    const loadLine = (i: number) => {
      const x = input(i);
      if (x.at === 'alias') {
        if (x.region !== q) throw new Error(`internal compiler error: operand reduction ${q} reads the old value of another region's output`);
        return `f32(${redAt(q, x.output, 'i')})`;
      }
      if (x.at !== 'line') throw new Error(`internal compiler error: an operand reduction's epilogue reads a ${x.at} input`);
      return `f32(${elem(x.read, `i * ${x.strides[0]}u`)})`;
    };
    const body = renderNodes(r.epilogue, { input: loadLine, scalar: sc, acc: 'v', prefix: 'r' }, '  ');
    const stores = r.outputs.map((o, j) => `  ${redAt(q, j, 'i')} = ${storeAs(o.dtype, o.ref.kind === 'acc' ? 'v' : `r${(o.ref as { index: number }).index}`)};`);
    lineFns.push(`fn ${fn}(v: f32, i: u32) {\n${[...body, ...stores].join('\n')}\n}`);
    let combine: LineReduction['combine'];
    if (red.kind === 'fold') combine = (acc, v) => foldExpr(red, acc, v);
    else {
      lineFns.push(`fn ${fn}Prefer(v: f32, best: f32) -> bool { return ${preferExpr(red, wgslLang, 'v', 'best')} != 0.0; }`);
      combine = (acc, v) => `select(${acc}, ${v}, ${fn}Prefer(${v}, ${acc}))`;
    }
    lines[r.operand] = { identity: wgslF32(red.identity), combine, call: (value, line) => `${fn}(${value}, ${line});` };
  });

  const vecType = (vec4: boolean, dtype: Parameters<typeof wgslType>[0]) => (vec4 ? `array<vec4<${wgslType(dtype)}>>` : `array<${wgslType(dtype)}>`);
  const logicalExtras = [
    ...b.reads.map((r, j) => ({ name: readName(j), type: vecType(vecRead[j]!, r.dtype), access: 'read' as const })),
    ...b.outputs.slice(1).map((o, j) => ({ name: outName(j + 1), type: vecType(wide, o.dtype), access: 'read_write' as const })),
    ...b.reductions.flatMap((r, q) => r.outputs.map((o, j) => ({ name: redOutName(q, j), type: `array<${wgslType(o.dtype)}>`, access: 'read_write' as const }))),
  ];
  // the arena takes the place of its first member; later members are read and written in it
  const extraBindings = logicalExtras.flatMap((e, i) => {
    const slot = 3 + i;
    if (!slots.isMember(slot)) return [e];
    return slot === Math.min(...arena!.members) ? [{ name: slots.arenaName(ns), type: 'array<f32>', access: 'read_write' as const }] : [];
  });
  const extraCode = [ns.entry === 'compute' ? WGSL_PRELUDE : null, winA, winB, proA, proB, fusedEpilogue ? epiFn : null, ...lineFns].filter(Boolean).join('\n');
  const kernel = matmulWGSL({
    transA: b.transA,
    transB: b.transB,
    variant,
    loadA: winA ? (row, k) => `${n('windowA')}(${row}, ${k}, offA)` : undefined,
    loadB: winB ? (k, col) => `${n('windowB')}(${k}, ${col}, offB)` : undefined,
    prologueA: proA ? (x) => `${n('prologueA')}(${x})` : undefined,
    prologueB: proB ? (x) => `${n('prologueB')}(${x})` : undefined,
    epilogueCall: fusedEpilogue && !wide ? (acc: string, row: string, col: string) => `${n('epilogue')}(${acc}, ${row}, ${col}${zCall});` : undefined,
    epilogueCall4: wide ? (acc: string, row: string, col: string) => `${n('epilogue4')}(${acc}, ${row}, ${col}${zCall});` : undefined,
    reduceA: lines.A,
    reduceB: lines.B,
    extraBindings,
    extraCode: extraCode || undefined,
    extraParamWords: b.scalars,
    ns,
    batched: !!bt,
  });
  return { code: kernel.code, layout: kernel.layout, variant };
}

/** A batched body's layout as the template's params read it. */
function batchOf(b: MatmulBody): MatmulBatch {
  const bt = b.batched!;
  return {
    count: b.batch.count,
    inner: bt.inner,
    stride: { a: b.batch.strideA, b: b.batch.strideB, c: b.batch.strideC },
    outer: { a: bt.outerA, b: bt.outerB, c: bt.outerC },
    lda: bt.lda,
    ldb: bt.ldb,
  };
}

/** The params uniform: M, N, K, the batch strides (and a batched body's levels and row strides), then the scalars' f32 bits. */
export function matmulKernelParams(b: MatmulBody, values: readonly number[]): Uint32Array {
  if (b.batched) {
    const words = batchedMatmulParams(b.M, b.N, b.K, batchOf(b), 0, Math.max(1, values.length));
    words.set(new Uint32Array(new Float32Array(values).buffer), 16);
    return checkZeroWord(words, true);
  }
  const words = new Uint32Array(8 + Math.max(1, Math.ceil(values.length / 4)) * 4);
  words.set(new Uint32Array(matmulParams(b.M, b.N, b.K, { a: b.batch.strideA, b: b.batch.strideB, c: b.batch.strideC })));
  words.set(new Uint32Array(new Float32Array(values).buffer), 8);
  return checkZeroWord(words, false);
}
