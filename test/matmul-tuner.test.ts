/**
 * The matmul autotuner: shape classes, lookups before and without tuning, that the
 * winner is the fastest measured candidate, and the disk cache (read back without
 * timing anything, scoped to the device, a corrupt file ignored and replaced).
 * Two cheap candidates and a small shape keep it fast (each new pipeline is an
 * LLVM compile on lavapipe).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { logEnabled, setLogs } from '../src/runtime/logs.ts';
import { DEFAULT_MATMUL_VARIANT, MATMUL_VARIANTS, type MatmulVariantName } from '../src/codegen-wgsl/matmul.ts';
import { getGPU, type GPUContext } from '../src/runtime/webgpu/context.ts';
import { MatmulTuner, SWITCH_MARGIN, pickWinner, TUNE_CANDIDATES, defaultTuneCacheFile, deviceKey, shapeClass, type MatmulProblem } from '../src/runtime/webgpu/matmul-tuner.ts';
import { webgpuAvailable } from './helpers/devices.ts';

const dir = mkdtempSync(join(tmpdir(), 'wgtorch-tune-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CANDIDATES: MatmulVariantName[] = [DEFAULT_MATMUL_VARIANT, 'r4x4-8x8-vec4'];
const P: MatmulProblem = { transA: false, transB: true, M: 60, N: 100, K: 200 }; // 2.4 MFLOP
const TINY: MatmulProblem = { transA: false, transB: false, M: 8, N: 8, K: 8 };

describe('matmul tuner: pure', () => {
  it('shapeClass: layout and each dimension rounded up to a power of two', () => {
    expect(shapeClass({ transA: false, transB: true, M: 64, N: 100, K: 1000 })).toBe('NT m64 n128 k1024');
    expect(shapeClass({ transA: true, transB: false, M: 100, N: 1000, K: 64 })).toBe('TN m128 n1024 k64');
    expect(shapeClass({ transA: true, transB: true, M: 1, N: 3, K: 513 })).toBe('TT m1 n4 k1024');
    expect(shapeClass({ transA: false, transB: false, M: 33, N: 64, K: 65 })).toBe(shapeClass({ transA: false, transB: false, M: 64, N: 63, K: 128 }));
  });

  it('pickWinner: the fastest, but the default stays unless beaten by the margin', () => {
    const d = DEFAULT_MATMUL_VARIANT;
    const cands: MatmulVariantName[] = [d, 'r4x4-8x8-vec4', 'r8x4-8x8-vec4'];
    expect(pickWinner({ [d]: 10, 'r4x4-8x8-vec4': 12, 'r8x4-8x8-vec4': 11 }, cands)).toBe('r4x4-8x8-vec4');
    expect(pickWinner({ [d]: 10, 'r4x4-8x8-vec4': 10 * (1 + SWITCH_MARGIN / 2) }, cands)).toBe(d);
    expect(pickWinner({ 'r8x4-8x8-vec4': 3 }, cands)).toBe('r8x4-8x8-vec4'); // the default did not run
    expect(pickWinner({}, cands)).toBe(d);
  });

  it('candidates all have 64 invocations per workgroup', () => {
    for (const n of TUNE_CANDIDATES) expect(MATMUL_VARIANTS[n].wg[0] * MATMUL_VARIANTS[n].wg[1], n).toBe(64);
    expect(TUNE_CANDIDATES[0]).toBe(DEFAULT_MATMUL_VARIANT);
  });

  it('the subgroup candidates are left out where subgroups do not fit (8 wide)', () => {
    const sub = TUNE_CANDIDATES.filter((n) => MATMUL_VARIANTS[n].subgroup);
    expect(sub.length).toBeGreaterThan(0);
    const without = new MatmulTuner({ subgroupsFit: false } as GPUContext, { cacheFile: null });
    expect(without.candidates).toEqual(TUNE_CANDIDATES.filter((n) => !MATMUL_VARIANTS[n].subgroup));
    const withSg = new MatmulTuner({ subgroupsFit: true } as GPUContext, { cacheFile: null });
    expect(withSg.candidates).toEqual(TUNE_CANDIDATES);
  });

  it('deviceKey: the adapter fields and a template version', () => {
    const info = { vendor: 'v', architecture: 'a', device: 'd', description: 'desc' } as GPUAdapterInfo;
    const k = deviceKey(info);
    expect(k).toMatch(/^v\/a\/d\/desc t[0-9a-f]{8}$/);
    expect(deviceKey({ ...info, device: 'e' } as GPUAdapterInfo)).not.toBe(k);
  });

  it('defaultTuneCacheFile: WGTORCH_CACHE_DIR, else XDG_CACHE_HOME/wgtorch', () => {
    const saved = { c: process.env.WGTORCH_CACHE_DIR, x: process.env.XDG_CACHE_HOME };
    try {
      process.env.WGTORCH_CACHE_DIR = dir;
      expect(defaultTuneCacheFile()).toBe(join(dir, 'matmul-tuning.json'));
      delete process.env.WGTORCH_CACHE_DIR;
      process.env.XDG_CACHE_HOME = join(dir, 'xdg');
      expect(defaultTuneCacheFile()).toBe(join(dir, 'xdg', 'wgtorch', 'matmul-tuning.json'));
      delete process.env.XDG_CACHE_HOME;
      expect(defaultTuneCacheFile()).toMatch(/[/\\]\.cache[/\\]wgtorch[/\\]matmul-tuning\.json$/);
    } finally {
      for (const [k, v] of [['WGTORCH_CACHE_DIR', saved.c], ['XDG_CACHE_HOME', saved.x]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});

describe.skipIf(!webgpuAvailable)('matmul tuner on the device', () => {
  const file = join(dir, 'tune.json');

  it('looks up the default before tuning and for tiny problems', async () => {
    const tuner = new MatmulTuner(await getGPU(), { cacheFile: file, candidates: CANDIDATES });
    expect(tuner.lookup(P)).toEqual({ variant: DEFAULT_MATMUL_VARIANT, source: 'default', shapeClass: 'NT m64 n128 k256' });
    expect(tuner.needsTuning(P)).toBe(true);
    expect(tuner.lookup(TINY).source).toBe('default');
    expect(tuner.needsTuning(TINY)).toBe(false);
    expect(await tuner.tune([TINY])).toEqual([tuner.lookup(TINY)]);
    expect(existsSync(file)).toBe(false); // nothing tuned, nothing written
  });

  it('tunes: the winner is the fastest measured candidate, remembered and written to disk', async () => {
    const ctx = await getGPU();
    const tuner = new MatmulTuner(ctx, { cacheFile: file, candidates: CANDIDATES });
    const same = { ...P, M: 64, N: 127 }; // same class: tuned once
    const lines: string[] = [];
    const wasOn = logEnabled('perf');
    setLogs({ perf: true }, { sink: (ch, m) => (ch === 'perf' ? lines.push(m) : console.error(`[wgtorch:${ch}] ${m}`)) });
    let c, c2;
    try {
      [c, c2] = await tuner.tune([P, same]);
    } finally {
      setLogs({ perf: wasOn }, { sink: (ch, m) => console.error(`[wgtorch:${ch}] ${m}`) });
    }
    const tuneLines = lines.filter((l) => l.startsWith('matmul tune '));
    expect(tuneLines).toHaveLength(1);
    expect(tuneLines[0]).toContain('NT m64 n128 k256');
    for (const n of CANDIDATES) expect(tuneLines[0]).toContain(n);
    expect(c!.source).toBe('tuned');
    expect(c2).toEqual(c);
    const g = c!.gflops!;
    expect(Object.keys(g).sort()).toEqual([...CANDIDATES].sort());
    for (const v of Object.values(g)) expect(v).toBeGreaterThan(0);
    // the fastest, unless it beats the default by less than the margin (a near tie is noise)
    const argmax = CANDIDATES.reduce((best, n) => (g[n]! > g[best]! ? n : best));
    const def = g[DEFAULT_MATMUL_VARIANT]!;
    expect(c!.variant).toBe(g[argmax]! >= def * (1 + SWITCH_MARGIN) ? argmax : DEFAULT_MATMUL_VARIANT);
    expect(tuner.lookup(P)).toEqual(c);
    expect(tuner.needsTuning(same)).toBe(false);

    const data = JSON.parse(readFileSync(file, 'utf8'));
    expect(data.version).toBe(1);
    const entry = data.entries[tuner.deviceKey]['NT m64 n128 k256'];
    expect(entry.variant).toBe(c!.variant);
    expect(entry.gflops).toEqual(g);
    expect(Number.isNaN(Date.parse(entry.at))).toBe(false);
  });

  it('a new tuner on the same file answers from disk without running anything', async () => {
    const ctx = await getGPU();
    const tuned = JSON.parse(readFileSync(file, 'utf8')).entries;
    const tuner = new MatmulTuner(ctx, { cacheFile: file, candidates: CANDIDATES });
    const variant = tuned[tuner.deviceKey]['NT m64 n128 k256'].variant;
    ctx.resetCounters();
    expect(tuner.needsTuning(P)).toBe(false);
    const [c] = await tuner.tune([P]);
    expect(c).toMatchObject({ variant, source: 'disk', shapeClass: 'NT m64 n128 k256' });
    expect(tuner.lookup(P)).toEqual(c);
    expect([ctx.dispatches, ctx.pipelinesCompiled, ctx.submits]).toEqual([0, 0, 0]);
  });

  it("ignores another device's entries", async () => {
    const ctx = await getGPU();
    const other = join(dir, 'other-device.json');
    const data = JSON.parse(readFileSync(file, 'utf8'));
    const key = deviceKey(ctx.adapterInfo);
    data.entries = { [key.replace(/ t[0-9a-f]{8}$/, ' t00000000')]: data.entries[key], 'some/other/gpu/x t12345678': data.entries[key] };
    writeFileSync(other, JSON.stringify(data));
    const tuner = new MatmulTuner(ctx, { cacheFile: other, candidates: CANDIDATES });
    expect(tuner.lookup(P).source).toBe('default');
    expect(tuner.needsTuning(P)).toBe(true);
  });

  it('ignores a corrupt file and replaces it when it tunes', async () => {
    const ctx = await getGPU();
    const corrupt = join(dir, 'corrupt.json');
    writeFileSync(corrupt, '{"version": 1, "entries": {');
    const tuner = new MatmulTuner(ctx, { cacheFile: corrupt, candidates: CANDIDATES });
    expect(tuner.lookup(P).source).toBe('default');
    const [c] = await tuner.tune([P]);
    expect(c!.source).toBe('tuned');
    const data = JSON.parse(readFileSync(corrupt, 'utf8'));
    expect(data.entries[tuner.deviceKey]['NT m64 n128 k256'].variant).toBe(c!.variant);
  });

  it('an unwritable cache file is logged, not thrown; the choice is still remembered', async () => {
    const ctx = await getGPU();
    const blocker = join(dir, 'not-a-dir');
    writeFileSync(blocker, 'x');
    const tuner = new MatmulTuner(ctx, { cacheFile: join(blocker, 'tune.json'), candidates: [DEFAULT_MATMUL_VARIANT] });
    const [c] = await tuner.tune([P]);
    expect(c).toMatchObject({ variant: DEFAULT_MATMUL_VARIANT, source: 'tuned' });
    expect(tuner.lookup(P).source).toBe('tuned');
  });
});
