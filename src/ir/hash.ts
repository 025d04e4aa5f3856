/**
 * A structural hash of a graph: ops, attrs, wiring, shapes and dtypes, but not node
 * numbering, names, module paths or the values of lifted scalars. Two traces of the same
 * computation hash the same; that hash (with the input shapes it contains) keys the
 * compiled-plan cache. Every call of a compiled function hashes its fresh trace, so this
 * streams numbers and short strings into the hash state instead of building one string.
 */
import type { AttrValue } from './registry.ts';
import type { Graph } from './graph.ts';

class Hasher {
  private h1 = 0x811c9dc5;
  private h2 = 0x01000193 ^ 0x5bd1e995;
  int(v: number): void {
    // two independent 32-bit lanes (FNV-1a and a murmur-style mix): accidental collisions are negligible
    this.h1 = Math.imul(this.h1 ^ (v | 0), 0x01000193);
    this.h2 = Math.imul(this.h2 ^ (v | 0), 0x5bd1e995) ^ (this.h2 >>> 15);
  }
  num(v: number): void {
    if (Number.isInteger(v) && Math.abs(v) < 2 ** 31) this.int(v);
    else this.str(String(v));
  }
  str(s: string): void {
    this.int(s.length);
    for (let i = 0; i < s.length; i++) this.int(s.charCodeAt(i));
  }
  attr(v: AttrValue): void {
    if (v === null) this.int(-1);
    else if (typeof v === 'number') this.num(v);
    else if (typeof v === 'boolean') this.int(v ? -2 : -3);
    else if (typeof v === 'string') this.str(v);
    else {
      this.int(-4 - v.length);
      for (const x of v) this.num(x);
    }
  }
  digest(): string {
    return (this.h1 >>> 0).toString(16).padStart(8, '0') + (this.h2 >>> 0).toString(16).padStart(8, '0');
  }
}

/** A number that an int32 kernel can take as an i32 word. */
export const isInt32Number = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= -0x80000000 && v <= 0x7fffffff;

const DTYPE_CODE = { float32: 1, int32: 2, bool: 3 } as const;
const ROLE_CODE = { output: 1, grad: 2, mutation: 3, saved: 4, check: 5 } as const;
const PHASE_CODE = { forward: 1, backward: 2, update: 3 } as const;

/** Scalar nodes that an op with an int32 or bool tensor operand takes (whether their value is an int32 is keyed). */
export function intOperandScalars(g: Graph): Set<number> {
  const out = new Set<number>();
  for (const n of g.nodes) {
    let intOperand = false;
    for (const i of n.inputs) {
      const x = g.node(i);
      if (x.op !== 'scalar' && x.dtype !== 'float32') intOperand = true;
    }
    if (!intOperand) continue;
    for (const i of n.inputs) if (g.node(i).op === 'scalar') out.add(i);
  }
  return out;
}

function hashGraph(g: Graph, shapes: boolean): string {
  const h = new Hasher();
  // position of each node by id (ids are small integers)
  const pos: number[] = [];
  const withInts = intOperandScalars(g);
  const nodes = g.nodes;
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i];
    pos[n.id] = i;
    h.str(n.op);
    if (n.op === 'input') h.int(PHASE_CODE[n.phase]);
    h.int(n.inputs.length);
    for (const x of n.inputs) h.int(pos[x] ?? -1);
    if (n.op !== 'scalar') {
      for (const k in n.attrs) {
        h.str(k);
        h.attr(n.attrs[k]);
      }
    } else if (withInts.has(n.id)) {
      // a lifted number's value is bound per call, but whether a number an int32 op takes is
      // an int32 is part of the key: such kernels then compute in i32 (src/passes/int-kernels.ts)
      h.int(isInt32Number(n.attrs.value) ? 1 : 0);
    }
    h.int(DTYPE_CODE[n.dtype]);
    if (shapes) {
      h.int(n.shape.length);
      for (const d of n.shape) h.int(d);
    }
  }
  for (const o of g.outputs) {
    h.int(ROLE_CODE[o.role]);
    h.int(pos[o.id] ?? -1);
  }
  return h.digest();
}

export function graphHash(g: Graph): string {
  return hashGraph(g, true);
}

/** The hash with shapes left out: equal for two graphs that differ only in sizes. */
export function structureHash(g: Graph): string {
  return hashGraph(g, false);
}
