/**
 * Fusion: groups the nodes of a graph into kernels.
 * - matmul kernels take elementwise consumers of their result as an epilogue (bias add,
 *   relu/clamp, the relu mask of a backward), cheap elementwise producers of an operand
 *   as a prologue, and a column sum of their transposed A operand (a bias gradient
 *   riding along its weight gradient);
 * - reductions take their elementwise producers as a prologue (sub + pow + sum is one
 *   kernel) and elementwise consumers as an epilogue (mean's division);
 * - other elementwise nodes of one shape chain into one kernel;
 * - movement ops are views, read through strides, and cost no kernel.
 * Every decision, and why a pair did not fuse, goes to the `fusion` log under the name of
 * the rule that made it: [join], [pull-inputs], [view-copy], [recompute-prologue],
 * [row-sum], [row-epilogue], [reduce-prologue].
 */
import type { Graph, IRNode } from '../ir/graph.ts';
import { getOp } from '../ir/registry.ts';
import { numel, sameShape, stridesOf } from '../ir/shape.ts';
import { isMovement, matmulLayout, resolveViews, type View } from './views.ts';
import { arenaBindingCount } from './binding-arena.ts';

export type Kernel =
  | { kind: 'elementwise'; shape: number[]; nodes: number[] }
  | { kind: 'reduce'; node: number; prologue: number[]; epilogue: number[] }
  | {
      kind: 'matmul';
      node: number;
      prologueA: number[];
      prologueB: number[];
      epilogue: number[];
      /** a column sum of the transposed A operand computed alongside (a bias gradient) */
      rowSumA: number | null;
      /** elementwise consumers of that sum, one per row (the bias's optimizer update) */
      rowEpilogue: number[];
    }
  /** an index primitive (slice, gather, ... see codegen-wgsl/indexing.ts): its own kernel, reading its inputs through their views */
  | { kind: 'index'; node: number }
  /** a movement node that must exist in memory: node's elements read from base through strides, in row-major order of shape */
  | { kind: 'copy'; node: number; base: number; shape: number[]; strides: number[] };

export interface Schedule {
  graph: Graph;
  kernels: Kernel[];
  views: Map<number, View>;
  /** values a kernel writes to memory (read by another kernel, or an output of the graph) */
  writes: Set<number>;
  log: string[];
}

export interface FusionOptions {
  /** storage buffers one kernel may bind (the device's maxStorageBuffersPerShaderStage) */
  maxBindings: number;
  /**
   * In-place updates the plan means to make: value -> the graph input whose buffer it is
   * written over. A kernel that computes the value reads the input's old value in the
   * output's own buffer, so that read costs no binding of its own.
   */
  inPlace?: Map<number, number>;
  /**
   * The binding-limit rule (passes/binding-arena.ts): small buffers a kernel binds may share one
   * arena buffer, so a group counts its arena-eligible buffers as one binding.
   */
  arena?: { eligible: (dtype: string, elements: number) => boolean };
}

export const kernelNodes = (k: Kernel): number[] => {
  switch (k.kind) {
    case 'elementwise': return k.nodes;
    case 'reduce': return [...k.prologue, k.node, ...k.epilogue];
    case 'matmul': return [...k.prologueA, ...k.prologueB, k.node, ...k.epilogue, ...(k.rowSumA === null ? [] : [k.rowSumA]), ...k.rowEpilogue];
    case 'copy': return [k.node];
    case 'index': return [k.node];
  }
};

const isElementwise = (n: IRNode) => n.op !== 'input' && n.op !== 'scalar' && getOp(n.op).kind === 'elementwise';

export function fuse(g: Graph, opts: FusionOptions): Schedule {
  const views = resolveViews(g);
  const log: string[] = [];
  /** a decision of one fusion rule, fired or refused, under the rule's name */
  const note = (rule: string, message: string) => log.push(`[${rule}] ${message}`);
  const kernels: (Kernel | null)[] = [];
  const kernelOf = new Map<number, number>();
  const node = (id: number) => g.node(id);
  const nodeTag = (id: number) => `%${id} ${node(id).op}`;
  /** the value read when a node consumes `id`: itself, or the base of the view it is */
  const baseOf = (id: number) => views.get(id)?.base ?? id;
  /** read at the consumer's own index: no view in between, same shape (or a scalar) */
  const isDirect = (consumer: IRNode, id: number) =>
    !views.has(id) && (node(id).op === 'scalar' || sameShape(node(id).shape, consumer.shape));
  const consumers = new Map<number, number[]>();
  for (const n of g.nodes) for (const i of n.inputs) consumers.set(i, [...(consumers.get(i) ?? []), n.id]);
  const outputs = new Set(g.outputs.map((o) => o.id));

  const floating = new Set<number>();
  /** turns a view into a value of its own, written by a strided copy */
  const materialize = (id: number) => {
    const v = views.get(id)!;
    views.delete(id);
    add({ kind: 'copy', node: id, base: v.base, shape: [...v.shape], strides: [...v.strides] });
  };
  const add = (k: Kernel) => {
    kernels.push(k);
    const idx = kernels.length - 1;
    for (const id of kernelNodes(k)) kernelOf.set(id, idx);
    return idx;
  };
  /** kernel index that produces the memory `id` reads, or -1 for graph inputs */
  const producer = (id: number) => {
    const b = baseOf(id);
    const n = node(b);
    if (n.op === 'input' || n.op === 'scalar') return -1;
    return kernelOf.get(b) ?? -1;
  };
  /** Storage buffers a kernel computing `ids` binds: what it reads from outside, and what leaves it. */
  /** graph inputs overwritten in place -> the value written over them */
  const overwrittenBy = new Map([...(opts.inPlace ?? [])].map(([v, c]) => [c, v] as const));
  const bindingsOf = (ids: number[]) => {
    const inside = new Set(ids);
    const reads = new Set<number>();
    for (const id of ids) {
      for (const i of node(id).inputs) {
        const b = baseOf(i);
        if (inside.has(b) || node(b).op === 'scalar') continue;
        // the old value of an in-place update, read in the buffer its new value is written to
        if (inside.has(overwrittenBy.get(b) ?? -1)) continue;
        reads.add(b);
      }
    }
    const written: number[] = [];
    for (const id of ids) {
      if (outputs.has(id) || consumersThroughViews(id).some((c) => !inside.has(c))) written.push(id);
    }
    if (!opts.arena) return reads.size + written.length;
    return arenaBindingCount(g, ids, [...reads], written, baseOf, opts.arena.eligible);
  };

  for (const n of g.nodes) {
    if (n.op === 'input' || n.op === 'scalar') continue;
    if (isMovement(n.op)) {
      const v = views.get(n.id);
      if (!v) {
        // a reshape of a non-contiguous view: copy the source in its own row-major order
        const src = views.get(n.inputs[0]) ?? { base: n.inputs[0], shape: node(n.inputs[0]).shape, strides: stridesOf(node(n.inputs[0]).shape) };
        add({ kind: 'copy', node: n.id, base: src.base, shape: src.shape, strides: src.strides });
      } else if (outputs.has(n.id) && !isContiguousView(v)) {
        // returned: the caller gets a tensor of its own, so a transposed or expanded view is copied out
        materialize(n.id);
      }
      continue;
    }
    const op = getOp(n.op);
    if (op.kind === 'matmul') {
      for (const operand of n.inputs) {
        const v = views.get(operand);
        if (v && matmulLayout(v, node(v.base).shape) === null) {
          note('view-copy', `copied ${nodeTag(operand)} for matmul %${n.id}: a view that is neither the operand nor its transpose`);
          materialize(operand);
        }
      }
      add({ kind: 'matmul', node: n.id, prologueA: [], prologueB: [], epilogue: [], rowSumA: null, rowEpilogue: [] });
      continue;
    }
    if (op.kind === 'reduce') {
      add({ kind: 'reduce', node: n.id, prologue: [], epilogue: [] });
      continue;
    }
    if (op.kind === 'index') {
      add({ kind: 'index', node: n.id });
      continue;
    }
    if (op.kind !== 'elementwise') {
      add({ kind: 'elementwise', shape: n.shape, nodes: [n.id] });
      continue;
    }
    // A node that reads only graph inputs waits for its consumers to pull it into their
    // kernel (the relu mask of a backward reads a saved activation: it belongs in the matmul epilogue).
    if (isFloatable(n)) {
      floating.add(n.id);
      continue;
    }
    // Join the latest kernel that computes one of our inputs in our iteration space.
    let joined = false;
    const producers = n.inputs.map((i) => kernelOf.get(baseOf(i))).filter((k): k is number => k !== undefined);
    // also recent elementwise kernels of our shape that we do not depend on (horizontal fusion:
    // the updates of several parameters of one shape become one kernel)
    const siblings: number[] = [];
    for (let ki = kernels.length - 1; ki >= 0 && siblings.length < 4 && !feedsOnlyReduction(n); ki--) {
      const k = kernels[ki];
      if (k && k.kind === 'elementwise' && sameShape(k.shape, n.shape) && !k.nodes.some((id) => feedsOnlyReduction(node(id)))) siblings.push(ki);
    }
    const byLatest = (a: number, b: number) => b - a;
    const candidates = [...new Set([...[...new Set(producers)].sort(byLatest), ...siblings.sort(byLatest)])];
    for (const ki of candidates) {
      const k = kernels[ki];
      if (!k) continue;
      const why = canJoin(k, ki, n);
      if (why === null) {
        pullFloating(n, k, ki);
        if (k.kind === 'elementwise') k.nodes.push(n.id);
        else if (k.kind === 'matmul' || k.kind === 'reduce') k.epilogue.push(n.id);
        kernelOf.set(n.id, ki);
        note('join', `fused ${nodeTag(n.id)} into kernel ${ki} (${k.kind}${k.kind === 'elementwise' ? '' : ' epilogue'})`);
        joined = true;
        break;
      }
      note('join', `did not fuse ${nodeTag(n.id)} into kernel ${ki} (${k.kind}): ${why}`);
    }
    if (!joined) {
      if (bindingsOf([...floatingChain(n), n.id]) > opts.maxBindings) {
        // too many reads for one kernel: the pending producers get kernels of their own
        for (const i of n.inputs) {
          if (!floating.has(i)) continue;
          const pk: Kernel = { kind: 'elementwise', shape: node(i).shape, nodes: [] };
          const pi = add(pk);
          pullFloating(node(i), pk, pi);
          pk.nodes.push(i);
          kernelOf.set(i, pi);
          floating.delete(i);
          note('pull-inputs', `did not pull ${nodeTag(i)} into the kernel of ${nodeTag(n.id)}: it would bind more than the device's ${opts.maxBindings} storage buffers`);
        }
      }
      const k: Kernel = { kind: 'elementwise', shape: n.shape, nodes: [] };
      const ki = add(k);
      pullFloating(n, k, ki);
      k.nodes.push(n.id);
      kernelOf.set(n.id, ki);
    }
  }

  function feedsOnlyReduction(n: IRNode): boolean {
    const cs = consumers.get(n.id) ?? [];
    return !outputs.has(n.id) && cs.length === 1 && getOp(node(cs[0]).op).kind === 'reduce' && node(cs[0]).inputs[0] === n.id;
  }
  function isFloatable(n: IRNode): boolean {
    if (outputs.has(n.id)) return false;
    // leave room for the consumer's own reads and write
    if (bindingsOf([...floatingChain(n), n.id]) > opts.maxBindings - 2) return false;
    for (const i of n.inputs) {
      const b = baseOf(i);
      const op = node(b).op;
      if (op !== 'input' && op !== 'scalar' && !floating.has(i)) return false;
    }
    const cs = consumers.get(n.id) ?? [];
    return cs.length > 0 && cs.every((c) => isElementwise(node(c)) && sameShape(node(c).shape, n.shape) && !views.has(c));
  }
  function floatingChain(n: IRNode): number[] {
    const out: number[] = [];
    const visit = (m: IRNode) => {
      for (const i of m.inputs) {
        if (!floating.has(i) || out.includes(i)) continue;
        visit(node(i));
        out.push(i);
      }
    };
    visit(n);
    return out;
  }
  /** Puts the floating producers of n (recursively) into kernel k, before n. */
  function pullFloating(n: IRNode, k: Kernel, ki: number): void {
    for (const i of n.inputs) {
      if (!floating.has(i) || kernelNodes(k).includes(i)) continue;
      pullFloating(node(i), k, ki);
      if (k.kind === 'elementwise') k.nodes.push(i);
      else if (k.kind === 'matmul' || k.kind === 'reduce') k.epilogue.push(i);
      kernelOf.set(i, ki);
      note('pull-inputs', `pulled ${nodeTag(i)} (it reads only graph inputs) into kernel ${ki}`);
    }
  }

  function canJoin(k: Kernel, ki: number, n: IRNode): string | null {
    const shape = k.kind === 'elementwise' ? k.shape : node(k.node).shape;
    if (k.kind === 'copy') return 'a copy kernel takes no epilogue';
    if (k.kind === 'index') return 'an index kernel takes no epilogue';
    if (k.kind === 'reduce' && node(k.node).op === 'argmax') return 'argmax takes no epilogue';
    if (k.kind !== 'elementwise' && feedsOnlyReduction(n)) {
      return 'its only consumer is a reduction, which will recompute it as a prologue instead of reading it from memory';
    }
    if (!sameShape(shape, n.shape)) return `shapes differ ([${n.shape}] vs the kernel's [${shape}])`;
    const inside = new Set(kernelNodes(k));
    for (const i of n.inputs) {
      const b = baseOf(i);
      if (floating.has(i)) {
        if (!isDirect(n, i)) return `reads the pending %${i} through a view`;
        continue;
      }
      if (inside.has(b)) {
        if (!isDirect(n, i)) return `reads %${b} of the same kernel through a view`;
        continue;
      }
      if (node(b).op === 'scalar') continue;
      const p = producer(i);
      if (p >= ki) return `input %${b} is computed by a later kernel`;
      if (k.kind === 'matmul' && !sameShape(node(i).shape, n.shape) && views.has(i) === false && node(i).shape.length > 2) {
        return 'epilogue operand not indexable by (row, col)';
      }
      if (k.kind === 'reduce') return `a reduction's epilogue reads only scalars, and %${b} is a tensor`;
    }
    if (k.kind === 'reduce') {
      // the epilogue runs once per output, after the loop: it can read scalars and its own values only
      const chain = [...floatingChain(n), n.id];
      for (const id of chain) {
        for (const i of node(id).inputs) {
          const b = baseOf(i);
          if (!inside.has(b) && !chain.includes(i) && node(b).op !== 'scalar') return `a reduction's epilogue reads only scalars, and %${b} is a tensor`;
        }
      }
    }
    if (bindingsOf([...inside, ...floatingChain(n), n.id]) > opts.maxBindings) {
      return `it would bind more than the device's ${opts.maxBindings} storage buffers`;
    }
    return null;
  }

  function consumersThroughViews(id: number): number[] {
    const out: number[] = [];
    const visit = (v: number) => {
      for (const c of consumers.get(v) ?? []) {
        if (views.has(c)) {
          if (outputs.has(c)) out.push(c);
          visit(c);
        } else out.push(c);
      }
    };
    visit(id);
    return out;
  }

  // ------------------------------------------------------------ prologues
  // An elementwise kernel whose values are only read by reductions and matmul operands
  // is recomputed inside each of them instead of written out.
  kernels.forEach((k, ki) => {
    if (!k || k.kind !== 'elementwise') return;
    const ids = new Set(k.nodes);
    if (k.nodes.some((id) => outputs.has(id))) return;
    const tail = k.nodes[k.nodes.length - 1];
    const external = k.nodes.flatMap((id) => consumersThroughViews(id).filter((c) => !ids.has(c)).map((c) => ({ from: id, c })));
    if (external.some((e) => e.from !== tail)) return;
    // the loads it makes: one tensor of its own shape read directly, plus scalars and 0-d values
    const loads = new Set<number>();
    for (const id of k.nodes) {
      for (const i of node(id).inputs) {
        const b = baseOf(i);
        if (ids.has(b) || node(b).op === 'scalar') continue;
        if (numel(node(b).shape) === 1) continue;
        if (!sameShape(node(i).shape, k.shape) || views.has(i)) return;
        loads.add(b);
      }
    }
    if (loads.size !== 1) return;
    if (k.nodes.some((id) => node(id).op === 'arange')) {
      // arange's value is its element's index, which a reduction or matmul operand does not name
      note('recompute-prologue', `did not recompute kernel ${ki} as a prologue: arange needs the index of its own elements`);
      return;
    }
    const uses: { kernel: number; slot: 'A' | 'B' | 'reduce' }[] = [];
    for (const { c } of external) {
      const ck = kernelOf.get(c);
      if (ck === undefined || !kernels[ck]) return; // returned through a view: it must be in memory
      const ker = kernels[ck]!;
      if (ker.kind === 'matmul' && ker.node === c) {
        const mm = node(c);
        for (const [slot, operand] of [['A', mm.inputs[0]], ['B', mm.inputs[1]]] as const) {
          if (baseOf(operand) === tail && !uses.some((u) => u.kernel === ck && u.slot === slot)) uses.push({ kernel: ck, slot });
        }
      } else if (ker.kind === 'reduce' && ker.node === c && node(c).inputs[0] === tail && ker.prologue.length === 0) {
        uses.push({ kernel: ck, slot: 'reduce' });
      } else return;
    }
    if (!uses.length) return;
    const [loaded] = loads;
    if (node(loaded!).dtype !== 'float32' && uses.some((u) => u.slot !== 'reduce')) {
      // the matmul template binds its operands as f32: an int32 source would be read as raw bits
      note('recompute-prologue', `did not recompute kernel ${ki} as a matmul prologue: it reads %${loaded} of dtype ${node(loaded!).dtype}`);
      return;
    }
    for (const u of uses) {
      if (bindingsOf([...kernelNodes(kernels[u.kernel]!), ...k.nodes]) > opts.maxBindings) {
        note('recompute-prologue', `did not recompute kernel ${ki} in kernel ${u.kernel}: it would bind more than the device's ${opts.maxBindings} storage buffers`);
        return;
      }
    }
    for (const u of uses) {
      const ker = kernels[u.kernel]!;
      if (ker.kind === 'matmul') (u.slot === 'A' ? ker.prologueA : ker.prologueB).push(...k.nodes);
      else if (ker.kind === 'reduce') ker.prologue.push(...k.nodes);
    }
    note('recompute-prologue',
      `recomputed kernel ${ki} (${k.nodes.map(nodeTag).join(', ')}) as a prologue of ${uses.map((u) => `kernel ${u.kernel} ${u.slot}`).join(', ')} instead of writing it out`,
    );
    kernels[ki] = null;
  });

  // A column sum over dim 0 of G next to a matmul reading G transposed as A: one kernel.
  kernels.forEach((k, ki) => {
    if (!k || k.kind !== 'reduce' || k.epilogue.length) return;
    const r = node(k.node);
    if (r.op !== 'sum' || r.attrs.keepdim !== true && r.attrs.keepdim !== false) return;
    const src = r.inputs[0];
    const dims = r.attrs.dims as number[];
    if (node(src).shape.length !== 2 || dims.length !== 1 || dims[0] !== 0) return;
    const later = consumersThroughViews(k.node).map((c) => kernelOf.get(c) ?? Infinity);
    for (let mi = 0; mi < kernels.length; mi++) {
      const m = kernels[mi];
      if (!m || m.kind !== 'matmul' || m.rowSumA !== null) continue;
      const mm = node(m.node);
      const a = mm.inputs[0];
      const av = views.get(a);
      if (baseOf(a) !== baseOf(src) || !av || matmulLayout(av, node(av.base).shape) !== 'transposed') continue;
      if (views.has(src) && views.get(src)!.base !== src) continue;
      if (m.prologueA.join() !== k.prologue.join()) continue;
      if (later.some((c) => c <= mi) || producer(src) >= mi) continue;
      if (bindingsOf([...kernelNodes(m), k.node]) > opts.maxBindings) {
        note('row-sum', `did not fuse the column sum %${k.node} into matmul kernel ${mi}: it would bind more than the device's ${opts.maxBindings} storage buffers`);
        continue;
      }
      m.rowSumA = k.node;
      kernelOf.set(k.node, mi);
      kernels[ki] = null;
      note('row-sum', `fused the column sum %${k.node} into matmul kernel ${mi}: it sums the rows of its transposed A operand as it loads them`);
      break;
    }
  });

  // Elementwise work on such a column sum (the bias's optimizer update) runs in the same
  // matmul, once per row, by the invocations that hold the sum.
  kernels.forEach((k, ki) => {
    if (!k || k.kind !== 'elementwise' || k.shape.length !== 1) return;
    const ids = new Set(k.nodes);
    let host = -1;
    for (const id of k.nodes) {
      for (const i of node(id).inputs) {
        const b = baseOf(i);
        if (ids.has(b) || node(b).op === 'scalar' || node(b).op === 'input') continue;
        const pk = kernelOf.get(b);
        const m = pk === undefined ? null : kernels[pk];
        if (m && m.kind === 'matmul' && m.rowSumA === b) host = host === -1 || host === pk ? pk! : -2;
        else return; // reads another kernel's value
      }
    }
    if (host < 0) return;
    const m = kernels[host] as Extract<Kernel, { kind: 'matmul' }>;
    if (numel(node(m.node).shape.slice(0, 1)) !== k.shape[0]) return;
    if (bindingsOf([...kernelNodes(m), ...k.nodes]) > opts.maxBindings) {
      note('row-epilogue', `did not fuse kernel ${ki} (${k.nodes.map(nodeTag).join(', ')}) into matmul kernel ${host}: it would bind more than the device's ${opts.maxBindings} storage buffers`);
      return;
    }
    m.rowEpilogue.push(...k.nodes);
    for (const id of k.nodes) kernelOf.set(id, host);
    kernels[ki] = null;
    note('row-epilogue', `fused kernel ${ki} (${k.nodes.map(nodeTag).join(', ')}) into matmul kernel ${host}: it runs once per row on the column sum there`);
  });

  // Reductions absorb an elementwise producer chain read only by them.
  kernels.forEach((k, ki) => {
    if (!k || k.kind !== 'elementwise') return;
    const ids = new Set(k.nodes);
    if (k.nodes.some((id) => outputs.has(id))) return;
    const tail = k.nodes[k.nodes.length - 1];
    const ext = k.nodes.flatMap((id) => consumersThroughViews(id).filter((c) => !ids.has(c)).map((c) => ({ from: id, c })));
    if (ext.length !== 1 || ext[0].from !== tail) return;
    const rk = kernelOf.get(ext[0].c);
    if (rk === undefined) return;
    const r = kernels[rk];
    if (!r || r.kind !== 'reduce' || r.node !== ext[0].c || r.prologue.length || node(r.node).inputs[0] !== tail) return;
    if (bindingsOf([...kernelNodes(r), ...k.nodes]) > opts.maxBindings) {
      note('reduce-prologue', `did not fuse kernel ${ki} into reduction %${r.node}: it would bind more than the device's ${opts.maxBindings} storage buffers`);
      return;
    }
    if (k.nodes.some((id) => node(id).op === 'arange')) {
      note('reduce-prologue', `did not fuse kernel ${ki} into reduction %${r.node}: arange needs the index of its own elements`);
      return;
    }
    r.prologue.push(...k.nodes);
    for (const id of k.nodes) kernelOf.set(id, rk);
    kernels[ki] = null;
    note('reduce-prologue', `fused kernel ${ki} (${k.nodes.map(nodeTag).join(', ')}) into reduction %${r.node} as its prologue`);
  });

  const final = kernels.filter((k): k is Kernel => k !== null);
  // A value reaches memory when the graph returns it, or when a kernel that reads it
  // does not compute it itself (prologues are recomputed copies).
  const computedIn = final.map((k) => new Set(kernelNodes(k)));
  const writes = new Set<number>();
  for (const n of g.nodes) {
    if (n.op === 'input' || n.op === 'scalar' || views.has(n.id)) continue;
    if (outputs.has(n.id)) writes.add(n.id);
    for (const c of consumersThroughViews(n.id)) {
      if (computedIn.some((set) => set.has(c) && !set.has(n.id))) writes.add(n.id);
    }
  }
  for (const o of outputs) if (views.has(o)) writes.add(views.get(o)!.base);
  return { graph: g, kernels: final, views, writes, log };
}

function isContiguousView(v: View): boolean {
  let acc = 1;
  for (let i = v.shape.length - 1; i >= 0; i--) {
    if (v.shape[i] !== 1 && v.strides[i] !== acc) return false;
    acc *= v.shape[i];
  }
  return true;
}

/** Nodes a kernel computes and may write (its prologues are recomputed copies of other kernels' nodes). */
export function ownedNodes(k: Kernel): number[] {
  switch (k.kind) {
    case 'elementwise': return k.nodes;
    case 'reduce': return [...k.prologue, k.node, ...k.epilogue];
    case 'matmul': return [k.node, ...k.epilogue, ...(k.rowSumA === null ? [] : [k.rowSumA]), ...k.rowEpilogue];
    case 'copy': return [k.node];
    case 'index': return [k.node];
  }
}
