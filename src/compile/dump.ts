/** Writes a compiled graph's IR, kernel IR and kernels (WGSL, or JavaScript on the cpu) to a folder (the `dump` option, or WGTORCH_DUMP=dir). */
import type { CompiledGraph } from './compiled-graph.ts';
import { hasFiles, joinPath, writeFiles } from '../platform/files.ts';

export function dumpGraph(dir: string, entry: CompiledGraph): void {
  if (!hasFiles) return; // browsers have no dump folder: graphs() shows the same text
  const files: Record<string, string> = {
    'forward.ir': entry.forwardIR + '\n',
    'fused.ir': entry.fusedIR + '\n',
  };
  if (entry.backwardIR) files['backward.ir'] = entry.backwardIR + '\n';
  for (const k of entry.kernels) {
    if (k.ir) files[`${k.part}.${k.name}.kir`] = k.ir + '\n';
    files[`${k.part}.${k.name}.${k.language}`] = k.source;
    files[`${k.part}.${k.name}.${k.language}.map`] = k.sourceMap;
  }
  writeFiles(joinPath(dir, entry.hash), files);
}
