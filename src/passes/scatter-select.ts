/**
 * [scatter-select] Pieces written over disjoint, equal ranges of one dim of a zero tensor
 * (the gradient of a split or chunk: a sum of sliceScatters into zeros, one per piece; a `cat`:
 * a chain of sliceScatters from a zero fill) become ONE elementwise select over the pieces
 * where they lie: the result viewed as [..., n, L, ...] takes piece i where the chunk index is
 * i (zeros for a chunk no piece covers), each piece read through its own strides. So the
 * zero fill, the sliceScatters, the copies that laid each piece out row-major for them, and
 * the adds that summed them are no kernels: the GPT's qkv gradient is one kernel that reads
 * the three bmm results in place (it was a full, three copies, three sliceScatters and an add).
 *
 * Exact: a select returns each piece's values as they are, where the sum added zeros
 * (which differs only in the sign of a zero). The iteration space refines the result's
 * shape and every piece's own view shape (a piece that is a reshape of a transposed view, the
 * heads of a bmm result, is read at the finer shape it has in memory), so no piece is copied.
 * A rule of the graph before fusion; its decisions go to the `fusion` log (state.ts reads
 * them from `scatterSelectNotes`). WGTORCH_SCATTER_SELECT=0 turns it off (to measure it).
 */
import { Graph, type IRNode } from '../ir/graph.ts';
import type { Attrs } from '../ir/registry.ts';
import { envVar } from '../platform/env.ts';

const notes = new WeakMap<Graph, string[]>();
/** what the rule did or refused on the graph it returned, as `[scatter-select] ...` lines */
export const scatterSelectNotes = (g: Graph): readonly string[] => notes.get(g) ?? [];
/** keeps the notes of `from` with `to`, a later pass's copy of it */
export function carryScatterSelectNotes(from: Graph, to: Graph): void {
  const n = notes.get(from);
  if (n && from !== to) notes.set(to, [...(notes.get(to) ?? []), ...n]);
}

type NewNode = Pick<IRNode, 'op' | 'inputs' | 'shape' | 'dtype'> & { attrs?: Attrs };

interface Piece {
  src: number;
  start: number;
  len: number;
}

/** A zero fill of this shape and dtype (the base every piece is written over). */
const isZeros = (n: IRNode, like: IRNode) =>
  n.op === 'full' && n.attrs.value === 0 && n.dtype === like.dtype && n.shape.length === like.shape.length && n.shape.every((d, i) => d === like.shape[i]);

/**
 * The pieces a value is made of along `dim`, or null when it is not zeros with pieces
 * written over it: a sliceScatter (unit steps, offset along one dim only) over such a value,
 * an add of two such values, or the zero fill itself (no pieces).
 */
function piecesOf(g: Graph, id: number, like: IRNode, dim: { d: number | null }): Piece[] | null {
  const n = g.node(id);
  if (isZeros(n, like)) return [];
  if (n.shape.length !== like.shape.length || n.shape.some((s, i) => s !== like.shape[i]) || n.dtype !== like.dtype) return null;
  if (n.op === 'add') {
    const a = piecesOf(g, n.inputs[0], like, dim);
    const b = a && piecesOf(g, n.inputs[1], like, dim);
    return a && b ? [...a, ...b] : null;
  }
  if (n.op !== 'sliceScatter') return null;
  const starts = n.attrs.starts as number[];
  const steps = n.attrs.steps as number[];
  const src = g.node(n.inputs[1]);
  if (steps.some((s) => s !== 1)) return null;
  const along = src.shape.map((s, i) => (s !== n.shape[i] || starts[i] !== 0 ? i : -1)).filter((i) => i >= 0);
  if (along.length > 1) return null;
  const d = along[0] ?? dim.d ?? 0;
  if (dim.d !== null && dim.d !== d) return null;
  dim.d = d;
  const base = piecesOf(g, n.inputs[0], like, dim);
  return base && [...base, { src: src.id, start: starts[d]!, len: src.shape[d]! }];
}

/**
 * The common refinement of two shapes of equal size: the coarsest shape whose dims split
 * each of theirs (b's dims of size 1 aside), with the dim of `a` each of its dims comes
 * from; null where none exists ([6] and [4, ...] split no common shape).
 */
function refine(a: readonly number[], b: readonly number[]): { shape: number[]; fromA: number[] } | null {
  const shape: number[] = [];
  const fromA: number[] = [];
  let j = -1;
  let y = 1;
  for (let i = 0; i < a.length; i++) {
    let x = a[i]!;
    if (x === 1) {
      shape.push(1);
      fromA.push(i);
      continue;
    }
    while (x > 1) {
      while (y === 1) {
        if (++j >= b.length) return null;
        y = b[j]!;
      }
      const m = Math.min(x, y);
      if (x % m !== 0 || y % m !== 0) return null;
      shape.push(m);
      fromA.push(i);
      x /= m;
      y /= m;
    }
  }
  return { shape, fromA };
}

/** Rewrites every maximal such value of `g`; returns g itself when none matched. */
export function scatterSelect(g: Graph): Graph {
  if (envVar('WGTORCH_SCATTER_SELECT') === '0') return g;
  const log: string[] = [];
  const uses = new Map<number, number[]>();
  for (const n of g.nodes) for (const i of n.inputs) uses.set(i, [...(uses.get(i) ?? []), n.id]);
  const plans = new Map<number, { pieces: Piece[]; d: number }>();
  for (const n of g.nodes) {
    // float32 only (a zero chunk is a float constant); an empty tensor has nothing to select
    if ((n.op !== 'add' && n.op !== 'sliceScatter') || n.dtype !== 'float32' || n.shape.includes(0)) continue;
    const dim = { d: null as number | null };
    const pieces = piecesOf(g, n.id, n, dim);
    if (!pieces || pieces.length < 2 || dim.d === null) continue;
    plans.set(n.id, { pieces, d: dim.d });
  }
  // a value that only feeds a larger one is rewritten as part of it
  for (const id of [...plans.keys()]) {
    const cs = uses.get(id) ?? [];
    if (cs.length && cs.every((c) => plans.has(c)) && !g.outputs.some((o) => o.id === id)) plans.delete(id);
  }
  if (!plans.size) return g;

  const out = new Graph();
  const replace = new Map<number, number>();
  const r = (id: number) => replace.get(id) ?? id;
  let next = Math.max(0, ...g.nodes.map((n) => n.id)) + 1;
  const masks = new Map<number, number[]>();
  for (const n of g.nodes) {
    const inputs = n.inputs.map(r);
    const plan = plans.get(n.id);
    const built = plan && build(n, plan.pieces, plan.d);
    if (typeof built === 'string') log.push(`[scatter-select] refused %${n.id} ${n.op} ${JSON.stringify(n.shape)}: ${built}`);
    if (!plan || typeof built === 'string' || !built) {
      out.put({ ...n, inputs });
      continue;
    }
    replace.set(n.id, built);
  }
  for (const o of g.outputs) out.addOutput(r(o.id), o.role, o.label, o.key);
  const result = replace.size ? out : g;
  if (log.length) notes.set(result, log);
  return result;

  function build(n: IRNode, pieces: Piece[], d: number): number | string {
    const D = n.shape[d]!;
    const L = pieces[0]!.len;
    if (pieces.some((p) => p.len !== L) || L === 0 || D % L !== 0 || pieces.some((p) => p.start % L !== 0)) {
      return `its ${pieces.length} pieces along dim ${d} are not of one length that divides ${D} at multiples of it (lengths ${pieces.map((p) => p.len).join(', ')})`;
    }
    const chunks = D / L;
    const at: (Piece | null)[] = Array.from({ length: chunks }, () => null);
    for (const p of pieces) {
      const c = p.start / L;
      if (at[c]) return `two pieces write chunk ${c} of dim ${d} (overlapping writes are not a select)`;
      at[c] = p;
    }
    // each piece is read where it lies: through the reshape that made it, at the finer shape
    const pieceShape = n.shape.map((s, i) => (i === d ? L : s));
    let shape = pieceShape;
    let owner = pieceShape.map((_, i) => i);
    const sources = pieces.map((p) => {
      const s = out.node(r(p.src));
      return s.op === 'reshape' ? out.node(s.inputs[0]) : s;
    });
    for (const s of sources) {
      const f = refine(shape, s.shape);
      if (!f) return `piece %${s.id} ${JSON.stringify(s.shape)} and the pieces' shape ${JSON.stringify(shape)} split no common shape`;
      owner = f.fromA.map((k) => owner[k]!);
      shape = f.shape;
    }
    const a = owner.indexOf(d);
    const one = [...shape.slice(0, a), 1, ...shape.slice(a)];
    const full = [...shape.slice(0, a), chunks, ...shape.slice(a)];
    const like = { phase: n.phase, scope: n.scope, attrs: {} };
    const fresh = (m: NewNode) => out.put({ ...like, ...m, id: next++ }).id;
    const chunk = maskFor(chunks, full.length, a, n);
    const read = at.map((p, c) => {
      if (!p) return fresh({ op: 'scalar', inputs: [], attrs: { value: 0, constant: true }, shape: [], dtype: n.dtype });
      return fresh({ op: 'reshape', inputs: [sources[pieces.indexOf(p)]!.id], attrs: { shape: one }, shape: one, dtype: n.dtype });
    });
    let v = read[chunks - 1]!;
    for (let c = chunks - 2; c >= 0; c--) v = fresh({ op: 'where', inputs: [chunk[c]!, read[c]!, v], shape: full, dtype: n.dtype });
    const result = fresh({ op: 'reshape', inputs: [v], attrs: { shape: [...n.shape] }, shape: [...n.shape], dtype: n.dtype });
    const missing = at.filter((p) => !p).length;
    log.push(
      `[scatter-select] %${n.id} ${n.op} ${JSON.stringify(n.shape)}: ${pieces.length} pieces along dim ${d} (${pieces.map((p) => `%${p.src}`).join(', ')})` +
        `${missing ? ` and ${missing} zero chunk${missing > 1 ? 's' : ''}` : ''} are one select over ${JSON.stringify(full)}, no zero fill or sliceScatter`,
    );
    return result;
  }

  /** bool masks `chunk == c` for c < n - 1, shaped to broadcast along dim `a` of a rank-`rank` select (shared by every rewrite) */
  function maskFor(n: number, rank: number, a: number, like: IRNode): number[] {
    const key = n * 1000 + rank * 10 + a;
    const known = masks.get(key);
    if (known) return known;
    const base = { phase: like.phase, scope: undefined, attrs: {} };
    const put = (m: NewNode) => out.put({ ...base, ...m, id: next++ }).id;
    const ar = put({ op: 'arange', inputs: [], attrs: { start: 0, step: 1, n, dtype: 'float32' }, shape: [n], dtype: 'float32' });
    const shape = Array.from({ length: rank }, (_, i) => (i === a ? n : 1));
    const ms = Array.from({ length: n - 1 }, (_, c) => {
      const s = put({ op: 'scalar', inputs: [], attrs: { value: c, constant: true }, shape: [], dtype: 'float32' });
      const eq = put({ op: 'eq', inputs: [ar, s], shape: [n], dtype: 'bool' });
      return put({ op: 'reshape', inputs: [eq], attrs: { shape }, shape, dtype: 'bool' });
    });
    masks.set(key, ms);
    return ms;
  }
}
