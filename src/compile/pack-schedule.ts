/**
 * Which fused kernels share a dispatch. Kernels are placed level by level (a kernel's
 * level is after every kernel it depends on); kernels of one level are independent and
 * are packed into as few dispatches as the device's binding limits allow. A kernel that
 * nothing later needs soon may wait for a later level, where it fills a pack instead of
 * costing a dispatch of its own (first fit, largest first).
 *
 * An in-place update (a parameter or optimizer state written over its old value) orders
 * its kernel after every reader of the old value. That order can be broken by renaming:
 * the new value goes to a fresh buffer, which the tensor adopts after the call, so the
 * readers and the writer may run in one dispatch. The schedule renames only where it
 * packs a writer with (or before) a reader of the old value.
 */
import { kernelShape, type KernelShape } from '../codegen-wgsl/pack.ts';
import type { WgslKernel } from '../codegen-wgsl/render.ts';
import { reads, writes } from '../passes/kernel-ir.ts';

export interface PackLimits {
  maxStorageBuffersPerShaderStage: number;
  maxUniformBuffersPerShaderStage: number;
  maxComputeWorkgroupStorageSize: number;
}

export interface PackPlan {
  /** kernel indices of each dispatch, in dispatch order */
  dispatches: number[][];
  /** in-place values to compute into fresh buffers instead */
  renamed: Set<number>;
  log: string[];
}

interface Info {
  reads: Set<number>;
  /** values written, and the buffers of inputs they overwrite in place */
  writes: Set<number>;
  /** input buffers overwritten in place by a value that may be renamed -> that value */
  renamable: Map<number, number>;
  shape: KernelShape;
}

/**
 * kernels: lowered in their topological order. inPlace: value -> graph input it overwrites.
 * renamable: the in-place values whose tensor can adopt a fresh buffer. least: the fewest
 * storage buffers each kernel can bind with a binding arena (passes/binding-arena.ts), where
 * the plan may give its parts arenas to make a pack fit.
 */
export function planPacks(
  kernels: WgslKernel[],
  inPlace: Map<number, number | null>,
  renamable: Set<number>,
  limits: PackLimits,
  least?: readonly number[],
): PackPlan {
  const log: string[] = [];
  const infos: Info[] = kernels.map((k) => {
    const written = writes(k.kernel);
    const all = new Set<number>(written);
    const ren = new Map<number, number>();
    for (const w of written) {
      const c = inPlace.get(w);
      if (c === undefined || c === null) continue;
      all.add(c);
      if (renamable.has(w)) ren.set(c, w);
    }
    return { reads: new Set(reads(k.kernel)), writes: all, renamable: ren, shape: kernelShape(k) };
  });
  const n = kernels.length;
  const hard: number[][] = Array.from({ length: n }, () => []);
  const soft: [number, number, number][] = []; // reader i, writer j, value renamed if j does not run after i
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < j; i++) {
      const a = infos[i]!;
      const b = infos[j]!;
      let isHard = [...a.writes].some((x) => b.reads.has(x) || b.writes.has(x));
      for (const x of a.reads) {
        if (!b.writes.has(x)) continue;
        const v = b.renamable.get(x);
        if (v === undefined) isHard = true;
        else soft.push([i, j, v]);
      }
      if (isHard) hard[j]!.push(i);
    }
  }
  const asap = new Array<number>(n).fill(0);
  for (let j = 0; j < n; j++) for (const i of hard[j]!) asap[j] = Math.max(asap[j]!, asap[i]! + 1);
  const depth = n ? Math.max(...asap) + 1 : 0;
  const alap = new Array<number>(n).fill(depth - 1);
  for (let i = n - 1; i >= 0; i--) for (let j = i + 1; j < n; j++) if (hard[j]!.includes(i)) alap[i] = Math.min(alap[i]!, alap[j]! - 1);

  const placedAt = new Array<number>(n).fill(-1); // dispatch index
  const dispatches: number[][] = [];
  const fits = (bin: number[], k: number) => {
    const all = [...bin, k].map((i) => infos[i]!.shape);
    // a renamed value reads its old value through a binding of its own
    const members = new Set([...bin, k]);
    const renames = new Set(soft.filter(([i, j]) => members.has(j) && (members.has(i) || placedAt[i]! < 0)).map(([, , v]) => v));
    // (with arenas, a renamed old value is one more small float buffer an arena can hold: the
    // count is a plan, which the plan checks again once the renamed kernels are lowered)
    const storage = Math.min(
      all.reduce((s, x) => s + x.storage, 0) + renames.size,
      least ? [...bin, k].reduce((s, i) => s + Math.min(least[i]!, infos[i]!.shape.storage), 0) : Infinity,
    );
    return (
      all.every((s) => s.invocations === all[0]!.invocations) &&
      storage <= limits.maxStorageBuffersPerShaderStage &&
      all.reduce((s, x) => s + x.uniforms, 0) <= limits.maxUniformBuffersPerShaderStage &&
      all.reduce((s, x) => s + x.workgroupBytes, 0) <= limits.maxComputeWorkgroupStorageSize
    );
  };
  const bindings = (i: number) => infos[i]!.shape.storage;
  for (let level = 0; placedAt.some((p) => p < 0); level++) {
    const ready = [...Array(n).keys()].filter((k) => placedAt[k]! < 0 && asap[k]! <= level && hard[k]!.every((i) => placedAt[i]! >= 0));
    const mandatory = ready.filter((k) => alap[k]! <= level).sort((a, b) => bindings(b) - bindings(a));
    const optional = ready.filter((k) => alap[k]! > level).sort((a, b) => bindings(b) - bindings(a));
    if (!mandatory.length && !optional.length) continue;
    // a level with nothing mandatory still opens one pack for the largest ready kernel
    const bins: number[][] = [];
    for (const k of mandatory.length ? mandatory : optional.slice(0, 1)) {
      const bin = bins.find((b) => fits(b, k));
      if (bin) bin.push(k);
      else bins.push([k]);
    }
    for (const k of mandatory.length ? optional : optional.slice(1)) {
      const bin = bins.find((b) => fits(b, k));
      if (bin) bin.push(k);
    }
    for (const bin of bins) {
      bin.sort((a, b) => a - b);
      for (const k of bin) placedAt[k] = dispatches.length;
      dispatches.push(bin);
    }
  }
  const renamed = new Set<number>();
  for (const [i, j, v] of soft) {
    if (placedAt[j]! <= placedAt[i]!) {
      renamed.add(v);
      log.push(`[pack] rename %${v}: ${kernels[j]!.name} writes it to a fresh buffer, as ${kernels[i]!.name} reads the old value in ${placedAt[j] === placedAt[i] ? 'the same dispatch' : 'a later dispatch'}`);
    }
  }
  for (const d of dispatches) if (d.length > 1) log.push(`[pack] pack: ${d.map((i) => kernels[i]!.name).join(' + ')} in one dispatch (independent)`);
  return { dispatches, renamed, log };
}

/** Whether one dispatch of these lowered kernels respects the device limits (checked again after renaming). */
export function packFits(parts: WgslKernel[], limits: PackLimits): boolean {
  const shapes = parts.map(kernelShape);
  return (
    shapes.every((s) => s.invocations === shapes[0]!.invocations) &&
    shapes.reduce((s, x) => s + x.storage, 0) <= limits.maxStorageBuffersPerShaderStage &&
    shapes.reduce((s, x) => s + x.uniforms, 0) <= limits.maxUniformBuffersPerShaderStage &&
    shapes.reduce((s, x) => s + x.workgroupBytes, 0) <= limits.maxComputeWorkgroupStorageSize
  );
}
