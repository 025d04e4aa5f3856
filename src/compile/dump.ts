/** Writes a compiled graph's IR, kernel IR and WGSL to a folder (the `dump` option, or WGTORCH_DUMP=dir). */
import type { CompiledGraph } from './compiled-graph.ts';

export function dumpGraph(dir: string, entry: CompiledGraph): void {
  // node:fs only where it exists (Node); browsers have no dump folder
  const fs = (globalThis as { process?: { getBuiltinModule?: (m: string) => unknown } }).process?.getBuiltinModule?.('node:fs') as
    | typeof import('node:fs')
    | undefined;
  if (!fs) return;
  const base = `${dir}/${entry.hash}`;
  fs.mkdirSync(base, { recursive: true });
  fs.writeFileSync(`${base}/forward.ir`, entry.forwardIR + '\n');
  if (entry.backwardIR) fs.writeFileSync(`${base}/backward.ir`, entry.backwardIR + '\n');
  fs.writeFileSync(`${base}/fused.ir`, entry.fusedIR + '\n');
  for (const k of entry.kernels) {
    fs.writeFileSync(`${base}/${k.part}.${k.name}.kir`, k.ir + '\n');
    fs.writeFileSync(`${base}/${k.part}.${k.name}.wgsl`, k.wgsl);
    fs.writeFileSync(`${base}/${k.part}.${k.name}.wgsl.map`, k.sourceMap);
  }
}
