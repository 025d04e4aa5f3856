// Picks the matmul variant per (device, shape class) by timing a few
// candidates on the device itself, and remembers the winners in memory and
// in a JSON file, so a device is tuned once, not once per process.
//
// Why measure rather than model: the best block shape differs by device and
// by shape (lavapipe wants big register blocks and no workgroup memory,
// discrete GPUs the tiled kernel and enough workgroups to fill their cores),
// and a few 10-20 ms runs per candidate settle it.

import { log } from '../logs.ts';
import {
  DEFAULT_MATMUL_VARIANT,
  MATMUL_VARIANTS,
  matmulDispatch,
  matmulParams,
  matmulVariantFor,
  matmulWGSL,
  type MatmulVariant,
  type MatmulVariantName,
} from '../../codegen-wgsl/matmul.ts';
import type { GPUContext } from './context.ts';
import { cacheDir, hasFiles, joinPath, readText, writeTextAtomic } from '../../platform/files.ts';

import type { MatmulProblem } from '../../codegen-wgsl/render.ts';
import type { ShaderLayout } from './pipeline-cache.ts';
export type { MatmulProblem };

export interface MatmulChoice {
  variant: MatmulVariantName;
  source: 'tuned' | 'disk' | 'default';
  shapeClass: string;
  /** measured GFLOP/s per candidate (absent for 'default') */
  gflops?: Record<string, number>;
}

/**
 * 64 invocations each (a workgroup size every device runs well), from
 * different corners: big register blocks (lavapipe), smaller ones that make
 * more workgroups (wide GPUs on small outputs), and the workgroup-memory
 * kernels. The default comes first so that it wins ties.
 */
export const TUNE_CANDIDATES: MatmulVariantName[] = [
  DEFAULT_MATMUL_VARIANT,
  'r4x4-8x8-vec4',
  'r8x4-8x8-vec4',
  'r2x4-8x8-vec4',
  'tiled16-r4x4-8x8',
  'tiled8-r8x8-8x8',
  // where subgroups are 8 wide (subgroupsFit; the others are left out on other devices)
  'sg-r16x4-32x2',
  'sg-r32x4-32x2',
  'sg-r32x4-16x4',
];

const CACHE_FILE_NAME = 'matmul-tuning.json';
const FILE_VERSION = 1;
/** per timed run: long enough to swamp the submit and wait overhead, short enough to tune in well under a second */
const TARGET_RUN_MS = 15;
const ROUNDS = 3;
/** a batch of this many dispatches fills one submit (GPUContext.maxBatchDispatches) */
const MAX_REPS = 512;
/** a candidate below this part of the best so far gets no more rounds */
const PRUNE = 0.5;
/** another variant replaces the default only when this much faster */
export const SWITCH_MARGIN = 0.05;
/** bigger problems are timed on a smaller stand-in (see timedProblem) */
const MAX_TIMED_FLOPS = 2 ** 28;

interface DiskEntry {
  variant: string;
  gflops: Record<string, number>;
  at: string;
}
interface DiskFile {
  version: number;
  entries: Record<string, Record<string, DiskEntry>>;
}

// ------------------------------------------------------------------ keys

const pow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/** Layout plus each dimension rounded up to a power of two, e.g. 'NT m64 n128 k1024'. */
export function shapeClass(p: MatmulProblem): string {
  return `${p.transA ? 'T' : 'N'}${p.transB ? 'T' : 'N'} m${pow2(p.M)} n${pow2(p.N)} k${pow2(p.K)}`;
}

/** FNV-1a, 32 bits: no node:crypto, so it runs in browsers too. */
function hash32(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

let templateVersion: string | null = null;

/**
 * Changes whenever the variants table or the text either generator emits
 * does (checked on the default, its scalar twin and the first tiled variant,
 * every layout: one of each generator path), so a template change
 * invalidates the winners measured with the old one.
 */
function matmulTemplateVersion(): string {
  if (templateVersion === null) {
    const def = MATMUL_VARIANTS[DEFAULT_MATMUL_VARIANT];
    const tiled = Object.values(MATMUL_VARIANTS).find((v) => 'shared' in v);
    const samples: MatmulVariant[] = [def, { ...def, vec4: false }, ...(tiled ? [tiled] : [])];
    let text = JSON.stringify(MATMUL_VARIANTS);
    for (const variant of samples)
      for (const transA of [false, true]) for (const transB of [false, true]) text += matmulWGSL({ transA, transB, variant }).code;
    templateVersion = hash32(text);
  }
  return templateVersion;
}

export function deviceKey(info: GPUAdapterInfo): string {
  return `${info.vendor}/${info.architecture}/${info.device}/${info.description} t${matmulTemplateVersion()}`;
}

// ------------------------------------------------------------------ disk

/** $WGTORCH_CACHE_DIR/matmul-tuning.json, else ($XDG_CACHE_HOME or ~/.cache)/wgtorch/matmul-tuning.json; null without a file system. */
export function defaultTuneCacheFile(): string | null {
  const dir = hasFiles ? cacheDir() : null;
  return dir ? joinPath(dir, CACHE_FILE_NAME) : null;
}

function emptyFile(): DiskFile {
  return { version: FILE_VERSION, entries: {} };
}

/** The file's contents; a missing, unreadable or malformed file reads as empty (and is overwritten at the next write). */
function readTuneFile(file: string): DiskFile {
  const text = readText(file);
  if (text === null) return emptyFile(); // not there yet
  try {
    const data = JSON.parse(text) as Partial<DiskFile> | null;
    if (data && data.version === FILE_VERSION && data.entries && typeof data.entries === 'object') return data as DiskFile;
  } catch {
    // fall through
  }
  log('perf', `matmul tuning: ignoring malformed ${file}`);
  return emptyFile();
}

/** Merges this device's entries into the file (atomically: readers never see half a file). Never throws. */
function writeTuneFile(file: string, device: string, entries: Record<string, DiskEntry>): void {
  if (!hasFiles) return;
  try {
    const data = readTuneFile(file);
    data.entries[device] = { ...data.entries[device], ...entries };
    writeTextAtomic(file, JSON.stringify(data, null, 1));
  } catch (e) {
    log('perf', `matmul tuning: could not write ${file}: ${(e as Error).message}`);
  }
}

// ------------------------------------------------------------------ timing

interface Known {
  variant: MatmulVariantName;
  source: 'tuned' | 'disk';
  gflops: Record<string, number>;
}

/** Candidates that run the same kernel for this shape (a vec4 variant falling back to its scalar twin) are timed once. */
interface Kernel {
  variant: MatmulVariant;
  names: MatmulVariantName[];
  wgsl: string;
  layout: ShaderLayout;
  label: string;
  pipeline?: GPUComputePipeline;
  reps: number;
  best: number;
}

function isVariantName(s: string): s is MatmulVariantName {
  return Object.prototype.hasOwnProperty.call(MATMUL_VARIANTS, s);
}

/** Deterministic values in [-1, 1): timing must not depend on denormals or zeros. */
function randomish(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

export class MatmulTuner {
  readonly cacheFile: string | null;
  readonly candidates: readonly MatmulVariantName[];
  readonly minFlops: number;
  private readonly known = new Map<string, Known>();
  private loaded = false;
  private key: string | null = null;
  /** tune() calls run one after another: concurrent timings would disturb each other */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly ctx: GPUContext,
    opts: { cacheFile?: string | null; candidates?: MatmulVariantName[]; minFlops?: number } = {},
  ) {
    this.cacheFile = opts.cacheFile === undefined ? defaultTuneCacheFile() : opts.cacheFile;
    const asked = opts.candidates?.length ? [...opts.candidates] : TUNE_CANDIDATES;
    for (const c of asked) if (!isVariantName(c)) throw new Error(`MatmulTuner: unknown candidate variant '${c}'`);
    // a subgroup variant is only correct where subgroups are as wide as it was written for
    this.candidates = asked.filter((c) => !MATMUL_VARIANTS[c].subgroup || ctx.subgroupsFit);
    this.minFlops = opts.minFlops ?? 2e6;
  }

  get deviceKey(): string {
    return (this.key ??= deviceKey(this.ctx.adapterInfo));
  }

  lookup(p: MatmulProblem): MatmulChoice {
    const cls = shapeClass(p);
    const k = this.isTiny(p) ? undefined : this.knownFor(cls);
    return k ? { variant: k.variant, source: k.source, shapeClass: cls, gflops: k.gflops } : { variant: DEFAULT_MATMUL_VARIANT, source: 'default', shapeClass: cls };
  }

  needsTuning(p: MatmulProblem): boolean {
    return !this.isTiny(p) && !this.knownFor(shapeClass(p));
  }

  tune(problems: MatmulProblem[]): Promise<MatmulChoice[]> {
    const run = this.queue.then(() => this.tuneNow(problems));
    this.queue = run.catch(() => {});
    return run;
  }

  private usable(name: MatmulVariantName): boolean {
    return !MATMUL_VARIANTS[name].subgroup || this.ctx.subgroupsFit;
  }

  private isTiny(p: MatmulProblem): boolean {
    return 2 * p.M * p.N * p.K < this.minFlops;
  }

  private knownFor(cls: string): Known | undefined {
    this.loadDisk();
    return this.known.get(cls);
  }

  private loadDisk(): void {
    if (this.loaded) return;
    this.loaded = true;
    if (!this.cacheFile) return;
    const entries = readTuneFile(this.cacheFile).entries[this.deviceKey] ?? {};
    for (const [cls, e] of Object.entries(entries)) {
      // a variant renamed or removed since the file was written is re-tuned
      if (e && typeof e.variant === 'string' && isVariantName(e.variant) && this.usable(e.variant) && !this.known.has(cls))
        this.known.set(cls, { variant: e.variant, source: 'disk', gflops: e.gflops ?? {} });
    }
  }

  private async tuneNow(problems: MatmulProblem[]): Promise<MatmulChoice[]> {
    const todo = new Map<string, MatmulProblem>();
    for (const p of problems) if (this.needsTuning(p) && !todo.has(shapeClass(p))) todo.set(shapeClass(p), p);
    if (todo.size) {
      const kernels = new Map([...todo].map(([cls, p]) => [cls, this.kernelsFor(p)] as const));
      await this.compile([...kernels.values()].flat());
      const written: Record<string, DiskEntry> = {};
      const frac = this.ctx.waiter.sleepFraction;
      this.ctx.waiter.sleepFraction = 0; // sleeping through part of each wait would blur the timings
      try {
        await this.ctx.sync(); // start from an idle queue
        for (const [cls, p] of todo) {
          const gflops = await this.timeProblem(p, kernels.get(cls)!);
          const variant = pickWinner(gflops, this.candidates);
          this.known.set(cls, { variant, source: 'tuned', gflops });
          // nothing ran (every candidate failed): keep the default for this process, but let a later one retry
          if (Object.keys(gflops).length) written[cls] = { variant, gflops, at: new Date().toISOString() };
          log('perf', () => `matmul tune ${cls} (${describe(p)}${describeProxy(p)}): ${Object.entries(gflops).map(([n, g]) => `${n} ${g.toFixed(2)}`).join(', ')} GFLOP/s -> ${variant}`);
        }
      } finally {
        this.ctx.waiter.sleepFraction = frac;
      }
      if (this.cacheFile && Object.keys(written).length) writeTuneFile(this.cacheFile, this.deviceKey, written);
    }
    return problems.map((p) => this.lookup(p));
  }

  private kernelsFor(p: MatmulProblem): Kernel[] {
    const byName = new Map<string, Kernel>();
    for (const name of this.candidates) {
      const variant = matmulVariantFor(p.M, p.N, p.K, p.transA, name);
      const k = byName.get(variant.name);
      if (k) k.names.push(name);
      else {
        const { code: wgsl, layout: shader } = matmulWGSL({ transA: p.transA, transB: p.transB, variant });
        byName.set(variant.name, { variant, names: [name], wgsl, layout: shader, label: `matmul_tune_${layout(p)}_${variant.name}`, reps: 1, best: 0 });
      }
    }
    return [...byName.values()];
  }

  /** All pipelines at once, so that drivers compiling at creation do it in parallel; a candidate that fails to compile is left out. */
  private async compile(kernels: Kernel[]): Promise<void> {
    const settled = await Promise.allSettled(kernels.map((k) => this.ctx.pipelines.prepare([{ wgsl: k.wgsl, label: k.label, layout: k.layout }])));
    settled.forEach((s, i) => {
      if (s.status === 'fulfilled') kernels[i]!.pipeline = s.value[0];
      else log('perf', `matmul tuning: ${kernels[i]!.label} failed to compile, skipped: ${(s.reason as Error).message.split('\n')[0]}`);
    });
  }

  /**
   * GFLOP/s per candidate name: best of a few runs of ~TARGET_RUN_MS, the
   * rounds interleaved across candidates (load from other processes only
   * ever slows a run down). Candidates far behind stop early, as each of
   * their runs takes longest.
   */
  private async timeProblem(p: MatmulProblem, kernels: Kernel[]): Promise<Record<string, number>> {
    const { ctx } = this;
    const t = timedProblem(p);
    const a = ctx.upload(randomish(t.M * t.K, 1));
    const b = ctx.upload(randomish(t.K * t.N, 2));
    const c = ctx.pool.acquire(t.M * t.N * 4);
    const flops = 2 * t.M * t.N * t.K;
    const params = matmulParams(t.M, t.N, t.K);
    const sample = async (k: Kernel, reps: number) => {
      const t0 = performance.now();
      for (let i = 0; i < reps; i++) ctx.dispatch(k.pipeline!, [a, b, c], params, matmulDispatch(t.M, t.N, k.variant), flops);
      await ctx.sync();
      const ms = performance.now() - t0;
      k.best = Math.max(k.best, (flops * reps) / (ms * 1e6));
      return ms;
    };
    let live = kernels.filter((k) => k.pipeline);
    try {
      for (const k of live) {
        try {
          await sample(k, 1); // compiles here on drivers that compile at the first dispatch (lavapipe)
          k.best = 0;
          k.reps = await calibrate((reps) => sample(k, reps));
        } catch (e) {
          log('perf', `matmul tuning: ${k.variant.name} failed, skipped: ${(e as Error).message.split('\n')[0]}`);
          k.pipeline = undefined;
        }
      }
      live = live.filter((k) => k.pipeline);
      for (let r = 0; r < ROUNDS; r++) {
        if (r > 0) {
          // after the calibration runs and a full round: best of at least two runs each
          const top = Math.max(...live.map((k) => k.best));
          live = live.filter((k) => k.best >= PRUNE * top);
        }
        for (const k of live) await sample(k, k.reps);
      }
    } finally {
      for (const x of [a, b, c]) ctx.pool.release(x);
    }
    const gflops: Record<string, number> = {};
    for (const name of this.candidates) {
      const k = kernels.find((x) => x.names.includes(name));
      if (k?.pipeline) gflops[name] = k.best;
    }
    return gflops;
  }

}

/**
 * Repetitions for one run of about TARGET_RUN_MS, from the fastest time per
 * repetition seen (every run is a sample too). At least two runs: one slow
 * outlier (a GC, another process) must not set the count.
 */
async function calibrate(sample: (reps: number) => Promise<number>): Promise<number> {
  let reps = 1;
  let perRep = Infinity;
  for (let i = 0; i < 6; i++) {
    perRep = Math.min(perRep, (await sample(reps)) / reps);
    const want = Math.min(MAX_REPS, Math.max(1, Math.round(TARGET_RUN_MS / perRep)));
    if (i > 0 && want <= reps * 1.5) break;
    reps = Math.min(want, reps * 16);
  }
  return reps;
}

/**
 * The shape actually timed: the problem itself, or for a huge one the same
 * layout with M and N halved (then K) until it is at most MAX_TIMED_FLOPS (~25 ms at 10 GFLOP/s,
 * still hundreds of workgroups), so that tuning a class takes seconds, not minutes,
 * on a slow device.
 */
function timedProblem(p: MatmulProblem): MatmulProblem {
  const t = { ...p };
  while (2 * t.M * t.N * t.K > MAX_TIMED_FLOPS) {
    if (t.M >= t.N && t.M > 256) t.M = Math.ceil(t.M / 2);
    else if (t.N > 256) t.N = Math.ceil(t.N / 2);
    else t.K = Math.ceil(t.K / 2);
  }
  return t;
}

const layout = (p: MatmulProblem) => `${p.transA ? 'T' : 'N'}${p.transB ? 'T' : 'N'}`;
const describe = (p: MatmulProblem) => `${layout(p)} M=${p.M} N=${p.N} K=${p.K}`;
const describeProxy = (p: MatmulProblem) => {
  const t = timedProblem(p);
  return t.M === p.M && t.N === p.N && t.K === p.K ? '' : `, timed as M=${t.M} N=${t.N} K=${t.K}`;
};

/**
 * The fastest, except that the default stays unless another candidate beats it by
 * SWITCH_MARGIN: runs on a busy machine vary by a few percent, and a near tie picked
 * by noise would stay on disk. The default when nothing ran.
 */
export function pickWinner(gflops: Record<string, number>, candidates: readonly MatmulVariantName[]): MatmulVariantName {
  let best: MatmulVariantName = DEFAULT_MATMUL_VARIANT;
  let bestG = 0;
  for (const name of candidates) {
    const g = gflops[name];
    if (g !== undefined && g > bestG) [best, bestG] = [name, g];
  }
  const def = gflops[DEFAULT_MATMUL_VARIANT];
  if (def !== undefined && bestG < def * (1 + SWITCH_MARGIN)) return DEFAULT_MATMUL_VARIANT;
  return best;
}
