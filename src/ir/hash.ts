/**
 * A structural hash of a graph: ops, attrs, wiring, shapes and dtypes, but not node
 * numbering, names, module paths or the values of lifted scalars. Two traces of the same
 * computation hash the same; that hash (with the input shapes it contains) keys the
 * compiled-plan cache.
 */
import type { Graph } from './graph.ts';

function fnv1a64(s: string): string {
  // two independent 32-bit FNV-1a lanes: enough to make accidental collisions negligible
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995) ^ (h2 >>> 15);
  }
  return (h1 >>> 0).toString(16).padStart(8, '0') + (h2 >>> 0).toString(16).padStart(8, '0');
}

export function canonicalText(g: Graph, opts: { shapes?: boolean } = {}): string {
  const shapes = opts.shapes ?? true;
  const pos = new Map<number, number>();
  const parts: string[] = [];
  g.nodes.forEach((n, i) => {
    pos.set(n.id, i);
    const attrs = n.op === 'scalar' ? '' : JSON.stringify(n.attrs);
    const type = shapes ? `${n.dtype}[${n.shape.join(',')}]` : n.dtype;
    const kind = n.op === 'input' ? `input:${n.phase}` : n.op;
    parts.push(`${kind}(${n.inputs.map((x) => pos.get(x)).join(',')})${attrs}:${type}`);
  });
  parts.push('->' + g.outputs.map((o) => `${o.role}:${pos.get(o.id)}`).join(','));
  return parts.join(';');
}

export function graphHash(g: Graph): string {
  return fnv1a64(canonicalText(g));
}

/** The hash with shapes left out: equal for two graphs that differ only in sizes. */
export function structureHash(g: Graph): string {
  return fnv1a64(canonicalText(g, { shapes: false }));
}
