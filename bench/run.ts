// `npm run bench` (tsx --expose-gc bench/run.ts): wgtorch against TensorFlow.js and
// jax-js on the same machine and the same Dawn device, in one run. Writes
// docs/benchmarks.md and docs/benchmarks.svg.
//
//   npm run bench                 # full run (several minutes)
//   npm run bench -- --quick      # under 2 minutes: fewer steps, slow CPU rows of the large workload skipped
//   npm run bench -- --no-write   # print only
//   npm run bench -- --memory-steps 2000    # a shorter steady-state memory run (the full run does 10,000)
//   npm run bench -- --soak                 # 10,000 compiled whole steps read every step, then every 100th: RSS and GPU pool (bench/soak.ts)
//   npm run bench -- --bindings             # the seed step compiled on the device's limit and on 8 storage buffers per stage (bench/binding-limit.ts)
//   npm run bench -- --models [--quick]     # only issue 12's GPT and CNN steps: rewrites that section of docs/benchmarks.md

import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as torch from '../src/index.ts';
import { GpuCallCounter, bestRound, collectGarbage, errorText, fmt, measure, skipped, type Row, type Runner, type Workload } from './harness.ts';
import { compileFn, steadyStateMemory, wgtorchRunner, type MemoryResult, type Mode } from './wgtorch.ts';
import { tfjsRunner, wasmFeatures, type SharedDevice, type TfBackend } from './tfjs.ts';
import { jaxjsRunner, jaxjsVersion, type JaxBackend } from './jaxjs.ts';
import { wasmGemmInfo } from '../src/runtime/cpu/matmul.ts';
import { consoleTable, markdown, svgChart, type Results } from './report.ts';
import { benchCpuMatmul, benchNumpyMatmul } from './matmul-cpu.ts';
import { modelMarkdown, runModelBenches } from './models-bench.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const write = !args.includes('--no-write');
const modelsOnly = args.includes('--models');
const started = performance.now();
const log = (s: string) => console.log(s.startsWith('\n') ? `${s}  [${((performance.now() - started) / 1000).toFixed(0)} s]` : s);

const SEED: Workload = quick
  ? { id: 'seed', title: 'Seed workload', N: 64, Din: 1000, H: 100, Dout: 10, warmup: 5, minSteps: 15, maxSteps: 300, budgetMs: 1000 }
  : { id: 'seed', title: 'Seed workload', N: 64, Din: 1000, H: 100, Dout: 10, warmup: 10, minSteps: 30, maxSteps: 1000, budgetMs: 2500 };
/** Each workload's rows run this many times, round-robin, and each row keeps its best round. */
const ROUNDS: Record<string, number> = quick ? { seed: 1, large: 1 } : { seed: 3, large: 2 };
const LARGE: Workload = quick
  ? { id: 'large', title: 'Large workload', N: 512, Din: 2048, H: 2048, Dout: 512, warmup: 1, minSteps: 1, maxSteps: 10, budgetMs: 1500 }
  : { id: 'large', title: 'Large workload', N: 512, Din: 2048, H: 2048, Dout: 512, warmup: 1, minSteps: 2, maxSteps: 40, budgetMs: 5000 };
/** In --quick, rows too slow for the large workload (seconds per step). */
const QUICK_SKIP_LARGE = new Set(['wgtorch eager cpu', 'tfjs cpu', 'tfjs wasm']);
/** Rows of the large workload timed in the first round only: seconds per step, and no target is measured against them. */
const ONE_ROUND_LARGE = new Set(['wgtorch eager cpu', 'tfjs cpu']);
const memArg = args.indexOf('--memory-steps');
const MEMORY_STEPS = memArg >= 0 ? Number(args[memArg + 1]) : quick ? 200 : 10000;

function pkgVersion(name: string): string {
  try {
    return JSON.parse(readFileSync(resolve(root, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return 'not installed';
  }
}

function cpuModel(): string {
  try {
    return /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown CPU';
  } catch {
    return 'unknown CPU';
  }
}

/** sections of docs/benchmarks.md that come from runs of their own (--soak, --bindings), between their markers */
const blockOf = (name: string) => new RegExp(`<!-- ${name} -->[\\s\\S]*<!-- \\/${name} -->\\n?`);
const CARRIED = ['soak', 'bindings'];
/** docs/benchmarks.md with its `name` section (between the markers) replaced or appended. */
function withBlock(md: string, name: string, section: string): string {
  const block = section.startsWith(`<!-- ${name} -->`) ? section : `<!-- ${name} -->\n${section}\n<!-- /${name} -->\n`;
  return blockOf(name).test(md) ? md.replace(blockOf(name), () => block) : `${md.trimEnd()}\n\n${block}`;
}

async function main(): Promise<void> {
  if (args.includes('--soak')) {
    const at = args.indexOf('--soak-steps');
    const { soak, soakSection } = await import('./soak.ts');
    const t0 = performance.now();
    const section = soakSection(await soak(at >= 0 ? Number(args[at + 1]) : 10_000), `npm run bench -- ${args.join(' ')}`, (performance.now() - t0) / 1000);
    console.log(section);
    if (write) {
      const file = resolve(root, 'docs/benchmarks.md');
      writeFileSync(file, withBlock(readFileSync(file, 'utf8'), 'soak', section));
      log('wrote the soak section of docs/benchmarks.md');
    }
    return;
  }
  if (args.includes('--bindings')) {
    const { bindingLimitRows, bindingLimitSection } = await import('./binding-limit.ts');
    const section = bindingLimitSection(bindingLimitRows(), `npm run bench -- ${args.join(' ')}`);
    console.log(section);
    if (write) {
      const file = resolve(root, 'docs/benchmarks.md');
      writeFileSync(file, withBlock(readFileSync(file, 'utf8'), 'bindings', section));
      log('wrote the bindings section of docs/benchmarks.md');
    }
    return;
  }
  const t0 = performance.now();
  const loadAtStart = loadavg();
  const notes: string[] = [];
  const gpuOk = await torch.webgpu.isAvailable();
  let gpuError = '';
  if (!gpuOk) {
    gpuError = await torch.webgpu.init().then(() => '', errorText);
    notes.push(`No WebGPU device: ${gpuError}`);
  }
  const ctx = gpuOk ? torch.webgpu.context() : null;
  const info = ctx?.adapter.info;
  const adapter = info ? [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' / ') : `none (${gpuError})`;
  const shared = async (): Promise<SharedDevice> => {
    if (!ctx) throw new Error(`no WebGPU device (${gpuError})`);
    return { gpu: ctx.gpu, adapter: ctx.adapter, device: ctx.device };
  };
  const counter = new GpuCallCounter();
  if (gpuOk) counter.install();

  log(`wgtorch bench${quick ? ' --quick' : ''}: ${availableParallelism()} cores, ${cpuModel()}, node ${process.version}, adapter: ${adapter}`);
  if (!(globalThis as { gc?: unknown }).gc) notes.push('GC not exposed: run through `npm run bench` (tsx --expose-gc) for the memory section.');
  const compile = compileFn();
  if (!compile) notes.push('`torch.compile` is not a function in this build yet: the compiled rows are skipped.');

  const command = `npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}`;
  const stamp = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const modelSection = async (progress?: (md: string) => void) => {
    const m = await runModelBenches({ quick, gpuOk, gpuError, counter, shared, log }, progress && ((p) => progress(modelMarkdown({ ...p, command, date: stamp(), partial: true }))));
    return modelMarkdown({ ...m, command, date: stamp() });
  };
  if (modelsOnly) {
    // the issue 12 section of docs/benchmarks.md, rewritten after every row
    const path = resolve(root, 'docs/benchmarks.md');
    const put = (md: string) => {
      if (!write) return;
      const old = readFileSync(path, 'utf8');
      const at = old.indexOf('<!-- models:start -->');
      const end = old.indexOf('<!-- models:end -->');
      writeFileSync(path, at >= 0 && end > at ? old.slice(0, at) + md + old.slice(end + '<!-- models:end -->\n'.length) : `${old.trimEnd()}\n\n${md}`);
    };
    const md = await modelSection(put);
    counter.uninstall();
    console.log(md);
    put(md);
    if (write) log('\nwrote the issue 12 section of docs/benchmarks.md');
    return;
  }

  const rows: Row[] = [];
  const wgtorchRows: [string, torch.Device, Mode][] = [
    ['wgtorch eager cpu', 'cpu', 'eager'],
    ['wgtorch eager webgpu', 'webgpu', 'eager'],
    ['wgtorch compiled model', 'webgpu', 'compiled model'],
    ['wgtorch compiled step', 'webgpu', 'compiled step'],
    ['wgtorch compiled model cpu', 'cpu', 'compiled model'],
    ['wgtorch compiled step cpu', 'cpu', 'compiled step'],
  ];
  const jaxRows: [string, JaxBackend][] = [
    ['jax-js wasm', 'wasm'],
    ['jax-js webgpu', 'webgpu'],
  ];
  const tfRows: [string, TfBackend][] = [
    ['tfjs cpu', 'cpu'],
    ['tfjs wasm', 'wasm'],
    ['tfjs webgpu', 'webgpu'],
  ];
  for (const w of [SEED, LARGE]) {
    const rounds = ROUNDS[w.id]!;
    log(`\n${w.title}: ${w.N}x${w.Din} -> ${w.H} -> ${w.Dout}, MSE sum, Adam lr 1e-4${rounds > 1 ? `; ${rounds} rounds over all rows` : ''}`);
    // Each spec is a row to time, or the reason it is skipped.
    const specs: { name: string; group: Row['group']; skip?: string; make?: () => Promise<Runner>; gpu: boolean }[] = [];
    const quickSkip = (name: string) => quick && w.id === 'large' && QUICK_SKIP_LARGE.has(name);
    for (const [name, device, mode] of wgtorchRows) {
      const skip = quickSkip(name)
        ? 'skipped in --quick (seconds per step); see the full run'
        : mode !== 'eager' && !compile
          ? 'torch.compile is not available yet'
          : device === 'webgpu' && !gpuOk
            ? `no WebGPU device (${gpuError})`
            : undefined;
      specs.push({ name, group: 'wgtorch', skip, make: () => wgtorchRunner(w, device, mode), gpu: device === 'webgpu' });
    }
    for (const [name, backend] of tfRows) {
      const skip = quickSkip(name) ? 'skipped in --quick (seconds per step); see the full run' : undefined;
      specs.push({ name, group: 'tfjs', skip, make: () => tfjsRunner(w, backend, shared), gpu: backend === 'webgpu' });
    }
    for (const [name, backend] of jaxRows) {
      const skip = backend === 'webgpu' && !gpuOk ? `no WebGPU device (${gpuError})` : undefined;
      specs.push({ name, group: 'jaxjs', skip, make: () => jaxjsRunner(w, backend, shared), gpu: backend === 'webgpu' });
    }
    const byName = new Map<string, Row[]>();
    for (let r = 0; r < rounds; r++) {
      if (rounds > 1) log(` round ${r + 1}/${rounds}`);
      for (const sp of specs) {
        if (sp.skip) {
          if (r === 0) byName.set(sp.name, [skipped(w, sp.name, sp.group, sp.skip, log)]);
          continue;
        }
        if (r > 0 && w.id === 'large' && ONE_ROUND_LARGE.has(sp.name)) continue;
        const row = await measure(w, sp.name, sp.group, sp.make!, { counter: sp.gpu ? counter : undefined, log });
        byName.set(sp.name, [...(byName.get(sp.name) ?? []), row]);
      }
    }
    for (const sp of specs) rows.push(bestRound(byName.get(sp.name)!));
  }
  if (!quick && ROUNDS.large! > 1) notes.push(`On the large workload, ${[...ONE_ROUND_LARGE].join(' and ')} run in the first round only (seconds per step; no target is measured against them).`);
  if (quick) notes.push(`--quick skips the CPU rows (${[...QUICK_SKIP_LARGE].join(', ')}) on the large workload (seconds per step).`);

  let wasm = 'not loaded';
  if (rows.some((r) => r.name === 'tfjs wasm' && r.status === 'ok')) {
    wasm = `${await wasmFeatures()} (the threaded build does not start in Node: emscripten spawns its workers from a blob: URL, which node's Worker rejects)`;
  }

  log('\nMatmul GFLOP/s');
  const matmul: Results['matmul'] = [];
  const matmulNotes: string[] = [];
  for (const r of await benchCpuMatmul({ seconds: quick ? 0.15 : 0.6 })) {
    matmul.push(r);
    log(`  ${r.name.padEnd(56)} ${r.gflops.toFixed(2).padStart(7)}`);
  }
  // the same shapes in numpy (OpenBLAS, float32) on one and two threads, where python3 has numpy
  for (const threads of [1, 2]) {
    const np = benchNumpyMatmul(threads, quick ? 0.15 : 0.5);
    if (!np) {
      matmulNotes.push(`numpy ${threads} thread${threads > 1 ? 's' : ''}: not measured (no python3 with numpy).`);
      continue;
    }
    for (const r of np) {
      matmul.push(r);
      log(`  ${r.name.padEnd(56)} ${r.gflops.toFixed(2).padStart(7)}`);
    }
  }
  matmulNotes.push('cpu matmul wasm: the generated WebAssembly SIMD128 kernel wgtorch runs for every cpu matmul (operands copied into its memory and back, included); numpy: `A @ B` on float32 arrays through OpenBLAS with OPENBLAS_NUM_THREADS set, OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for that command. OpenBLAS uses AVX-512 FMA here; Wasm SIMD128 has 4-lane vectors, and fused multiply-adds only through relaxed SIMD (' + (wasmGemmInfo().fma ? 'on here: f32x4.relaxed_madd' : 'off here: f32x4 multiply then add') + '), so ~4x per core (~8x without FMA) is the expected gap.');
  if (!gpuOk) matmulNotes.push(`WebGPU matmul: skipped, no WebGPU device (${gpuError}).`);
  else {
    try {
      const mod = (await import('./matmul-webgpu.ts')) as Record<string, unknown>;
      if (typeof mod.benchGpuMatmul !== 'function') matmulNotes.push('WebGPU matmul: skipped, bench/matmul-webgpu.ts does not export benchGpuMatmul yet.');
      else {
        const { DEFAULT_MATMUL_VARIANT } = (await import('../src/codegen-wgsl/matmul.ts')) as { DEFAULT_MATMUL_VARIANT?: string };
        const bench = mod.benchGpuMatmul as (v?: string[], rounds?: number) => Promise<{ name: string; gflops: number }[]>;
        for (const r of await bench(DEFAULT_MATMUL_VARIANT ? [DEFAULT_MATMUL_VARIANT] : undefined, quick ? 1 : 3)) {
          matmul.push({ name: `webgpu matmul ${r.name}`, gflops: r.gflops });
          log(`  ${`webgpu matmul ${r.name}`.padEnd(56)} ${r.gflops.toFixed(2).padStart(7)}`);
        }
        matmulNotes.push(`WebGPU matmul: the runtime's default kernel${DEFAULT_MATMUL_VARIANT ? ` (${DEFAULT_MATMUL_VARIANT})` : ''} from bench/matmul-webgpu.ts; \`npx tsx bench/matmul-webgpu.ts\` compares all variants.`);
        if (typeof mod.benchDispatchOverhead === 'function') {
          const o = await (mod.benchDispatchOverhead as () => Promise<{ recordUs: number; totalUs: number }>)();
          matmulNotes.push(`A tiny dispatch through the runtime, 512 per submit: ${o.recordUs.toFixed(1)} us to record, ${o.totalUs.toFixed(1)} us in all.`);
          log(`  tiny dispatch: record ${o.recordUs.toFixed(1)} us, total ${o.totalUs.toFixed(1)} us`);
        }
      }
    } catch (e) {
      matmulNotes.push(`WebGPU matmul: failed: ${errorText(e)}`);
    }
  }

  let memory: MemoryResult | { error: string } | null = null;
  if (gpuOk) {
    log(`\nSteady-state memory: ${MEMORY_STEPS} eager webgpu steps`);
    try {
      await collectGarbage();
      torch.webgpu.context().trim(); // free what the earlier rows left pooled, so the numbers are this workload's
      memory = await steadyStateMemory(SEED, MEMORY_STEPS, log);
      const m = memory;
      log(`  live buffers ${m.afterWarmup.liveBuffers} -> ${m.afterSteps.liveBuffers}, bytes ${m.afterWarmup.liveBytes} -> ${m.afterSteps.liveBytes}, created ${m.afterWarmup.created} -> ${m.afterSteps.created}, peak live ${m.peakLiveBuffers}, ${fmt(m.msPerStep, 2)} ms/step`);
    } catch (e) {
      memory = { error: errorText(e) };
      log(`  FAILED: ${memory.error}`);
    }
  }
  const models = await modelSection();
  counter.uninstall();

  notes.push(`Load average at the end: ${loadavg().map((x) => x.toFixed(2)).join(' / ')}. Other engineers' builds and test runs shared these 2 cores during the run, so absolute times are inflated and noisy${quick ? ' (in --quick each row runs once, one after another, so a ratio also carries the load change between its two rows)' : '; rows of one workload run interleaved (round-robin), so their ratios are the numbers to read'}.`);
  const res: Results = {
    command: `${process.env.WGTORCH_NO_WEBGPU === '1' ? 'WGTORCH_NO_WEBGPU=1 ' : ''}npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}`,
    quick,
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    seconds: (performance.now() - t0) / 1000,
    machine: {
      cpu: cpuModel(),
      cores: availableParallelism(),
      loadAvg: loadAtStart,
      node: process.version,
      adapter,
      versions: {
        wgtorch: JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')).version,
        '@tensorflow/tfjs-core': pkgVersion('@tensorflow/tfjs-core'),
        '@jax-js/jax': await jaxjsVersion(),
        'Dawn (npm webgpu)': pkgVersion('webgpu'),
      },
      wasm,
      cpuThreads: wasmGemmInfo().threads,
    },
    workloads: [SEED, LARGE],
    rounds: ROUNDS,
    rows,
    matmul,
    matmulNotes,
    memory,
    notes,
  };
  console.log(consoleTable(res));
  if (write) {
    mkdirSync(resolve(root, 'docs'), { recursive: true });
    // the soak and bindings sections come from runs of their own (--soak, --bindings): carried over
    let old = '';
    try {
      old = readFileSync(resolve(root, 'docs/benchmarks.md'), 'utf8');
    } catch {}
    let md = `${markdown(res).trimEnd()}\n\n${models}`;
    for (const name of CARRIED) {
      const block = blockOf(name).exec(old)?.[0];
      if (block) md = withBlock(md, name, block);
    }
    writeFileSync(resolve(root, 'docs/benchmarks.md'), md);
    writeFileSync(resolve(root, 'docs/benchmarks.svg'), svgChart(res));
    log(`\nwrote docs/benchmarks.md and docs/benchmarks.svg (${res.seconds.toFixed(0)} s)`);
  }
}

main().then(
  // Dawn keeps the event loop alive; leave explicitly once the reports are written.
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
