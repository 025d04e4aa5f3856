// Writes the results as docs/benchmarks.md (tables) and docs/benchmarks.svg
// (a horizontal bar chart of the seed workload), both plain text.

import { fmt, stepFlops, type Row, type Workload } from './harness.ts';
import type { MemoryResult } from './wgtorch.ts';

export interface Machine {
  cpu: string;
  cores: number;
  loadAvg: number[];
  node: string;
  adapter: string;
  versions: Record<string, string>;
  wasm: string;
  /** threads wgtorch's cpu matmul splits large products over */
  cpuThreads?: number;
}

export interface Results {
  command: string;
  quick: boolean;
  date: string;
  seconds: number;
  machine: Machine;
  workloads: Workload[];
  /** how many round-robin rounds each workload's rows ran; each row keeps its best round */
  rounds: Record<string, number>;
  rows: Row[];
  matmul: { name: string; gflops: number }[];
  matmulNotes: string[];
  memory: MemoryResult | { error: string } | null;
  notes: string[];
}

/** The fastest TF.js row of a workload, the yardstick of the ratio column. */
export function fastestTfjs(rows: Row[], workload: string): Row | undefined {
  return rows
    .filter((r) => r.workload === workload && r.group === 'tfjs' && r.status === 'ok' && r.ms !== undefined)
    .sort((a, b) => a.ms! - b.ms!)[0];
}

function speedup(r: Row, ref: Row | undefined): string {
  if (!ref || r.ms === undefined) return '-';
  const x = ref.ms! / r.ms;
  return `${x.toFixed(2)}x ${x >= 1 ? 'faster' : 'slower'}`;
}

const MiB = (b: number) => `${(b / 2 ** 20).toFixed(2)} MiB`;

function rowTable(rows: Row[], w: Workload): string[] {
  const ref = fastestTfjs(rows, w.id);
  const out = [
    `| row | ms/step (median) | sync part | fastest step | CPU ms/step | first step | dispatches/step | submits/step | vs fastest TF.js${ref ? ` (${ref.name})` : ''} | GFLOP/s | steps | loss: step 1 -> step n |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  const notes: string[] = [];
  for (const r of rows.filter((x) => x.workload === w.id)) {
    if (r.status !== 'ok') {
      out.push(`| ${r.name} | ${r.status} | | | | | | | | | | |`);
      notes.push(`- ${r.name}: ${r.status}: ${r.note ?? ''}`);
      continue;
    }
    const gflops = r.ms ? stepFlops(w) / (r.ms * 1e6) : NaN;
    const loss = r.lossFirst !== undefined ? `${r.lossFirst.toExponential(3)} -> ${r.lossLast!.toExponential(3)} (n=${r.lossLastStep})` : '';
    out.push(
      `| ${r.name} | **${fmt(r.ms, 2)}** | ${fmt(r.syncMs, 2)} | ${fmt(r.minMs, 2)} | ${fmt(r.cpuMs, 2)} | ${fmt(r.firstMs, 0)} | ${fmt(r.dispatches, 1)} | ${fmt(r.submits, 1)} | ${r.group === 'tfjs' && r === ref ? '1.00x (reference)' : speedup(r, ref)} | ${fmt(gflops, 2)} | ${r.steps} | ${loss} |`,
    );
    if (r.note) notes.push(`- ${r.name}: ${r.note}`);
  }
  return notes.length ? [...out, '', ...notes] : out;
}

function targets(res: Results): string[] {
  const get = (wl: string, name: string) => res.rows.find((r) => r.workload === wl && r.name === name && r.status === 'ok');
  const lines: string[] = [];
  const check = (what: string, row: Row | undefined, ref: Row | undefined, factor: number) => {
    if (!row || !ref) {
      lines.push(`| ${what} | not measured (${!row ? 'row missing' : 'reference missing'}) | |`);
      return;
    }
    const x = ref.ms! / row.ms!;
    const fast = ref.minMs! / row.minMs!;
    const cpu = row.cpuMs && ref.cpuMs ? ref.cpuMs / row.cpuMs : NaN;
    const also = `; fastest steps ${fast.toFixed(2)}x (${fmt(row.minMs, 2)} vs ${fmt(ref.minMs, 2)} ms)${Number.isFinite(cpu) ? `, CPU time ${cpu.toFixed(2)}x (${fmt(row.cpuMs, 2)} vs ${fmt(ref.cpuMs, 2)} ms)` : ''}`;
    lines.push(`| ${what} | ${x.toFixed(2)}x (${fmt(row.ms, 2)} vs ${fmt(ref.ms, 2)} ms median)${also} | ${x >= factor ? 'met' : `missed: needs ${(factor / x).toFixed(2)}x more`} (on medians) |`);
  };
  const seedGpu = get('seed', 'tfjs webgpu');
  const seedWasm = get('seed', 'tfjs wasm');
  check('seed: eager webgpu faster than tfjs-webgpu (issue 3)', get('seed', 'wgtorch eager webgpu'), seedGpu, 1);
  check('seed: eager cpu faster than tfjs-cpu (issue 2)', get('seed', 'wgtorch eager cpu'), get('seed', 'tfjs cpu'), 1);
  check('seed: compiled step >= 8x faster than tfjs-webgpu (issue 6)', get('seed', 'wgtorch compiled step'), seedGpu, 8);
  check('seed: compiled step faster than tfjs-wasm (issue 6)', get('seed', 'wgtorch compiled step'), seedWasm, 1);
  check('large: compiled step >= 2x faster than tfjs-webgpu (issue 6)', get('large', 'wgtorch compiled step'), get('large', 'tfjs webgpu'), 2);
  const jaxWasm = (wl: string) => get(wl, 'jax-js wasm');
  check('seed: compiled cpu step >= 1.5x faster than jax-js wasm (issue 10; moonshot 3x)', get('seed', 'wgtorch compiled step cpu'), jaxWasm('seed'), 1.5);
  check('seed: eager cpu faster than tfjs-wasm (issue 10)', get('seed', 'wgtorch eager cpu'), seedWasm, 1);
  check('large: compiled cpu step >= 1.5x faster than jax-js wasm (issue 10)', get('large', 'wgtorch compiled step cpu'), jaxWasm('large'), 1.5);
  check('seed: compiled webgpu step >= 3x faster than jax-js webgpu (issue 10)', get('seed', 'wgtorch compiled step'), get('seed', 'jax-js webgpu'), 3);
  const cs = get('seed', 'wgtorch compiled step');
  lines.push(
    cs
      ? `| seed: compiled step <= 4 dispatches and 1 submit per step (issue 6) | ${fmt(cs.dispatches, 1)} dispatches, ${fmt(cs.submits, 1)} submits | ${cs.dispatches! <= 4 && cs.submits! <= 1 ? 'met' : 'missed'} |`
      : '| seed: compiled step <= 4 dispatches and 1 submit per step (issue 6) | not measured (row missing) | |',
  );
  const table = ['| target | measured (speed ratio) | status |', '| --- | --- | --- |', ...lines];
  const cc = get('seed', 'wgtorch compiled step cpu');
  const jw = get('seed', 'jax-js wasm');
  if (cc && jw && jw.ms! / cc.ms! < 1.5) {
    table.push(
      '',
      `The compiled cpu seed step against jax-js Wasm: ${fmt(cc.ms, 2)} vs ${fmt(jw.ms, 2)} ms median, ${fmt(cc.minMs, 2)} vs ${fmt(jw.minMs, 2)} ms fastest, ${fmt(cc.cpuMs, 2)} vs ${fmt(jw.cpuMs, 2)} ms of CPU time per step. Where its time goes is profiled under "Where the compiled cpu time goes": the five matmuls run in the Wasm SIMD GEMM (4-wide, fused multiply-adds through relaxed SIMD where on), and their epilogues (both weights' Adam updates included) run as Wasm SIMD kernels generated from the kernel IR, on the product where it lies in the Wasm memory, with the parameters and Adam's moments resident there (nothing copied per step). What is left: the GEMM itself (about half of the step's CPU time in a --cpu-prof of this step; the seed's shapes run at 25-45 GFLOP/s against OpenBLAS's ~80 on one core), re-tracing the step on every call (~0.3-0.4 ms, so that JavaScript control flow is honoured), the bias updates (still JavaScript loops), and GC. The CPU time column counts both threads of the GEMM; jax-js's Wasm backend runs one.`,
    );
  }
  if (cs && seedGpu && seedGpu.ms! / cs.ms! < 8) {
    const need = seedGpu.ms! / 8;
    table.push(
      '',
      `The 8x target asks for a seed step of at most ${fmt(need, 2)} ms in this run. The compiled step's median of ${fmt(cs.ms, 2)} ms is ${fmt(cs.syncMs, 2)} ms of JavaScript (re-trace, hash, lookup, recording and submitting its ${fmt(cs.dispatches, 0)} dispatches) and ${fmt(cs.ms! - cs.syncMs!, 2)} ms of GPU work and readback wait; its fastest step took ${fmt(cs.minMs, 2)} ms. The per-kernel times under "Where the WebGPU time goes" show where the GPU part goes: on lavapipe every per-invocation load or store at a computed address becomes scalar memory operations, so the weight-gradient matmul carrying Adam's update (3 loads and 4 stores per weight) is bound by those memory operations more than by its arithmetic: loading and storing its operands as vec4 (4 columns per call) took that kernel from 3.24 to 2.53 ms (best of 5, side by side on this machine), and it still takes longer than the forward matmul of the same FLOP count.`,
    );
  }
  return table;
}

/** Where a WebGPU step's time goes: the JS/GPU split and every counted Dawn call per step. */
function analysis(res: Results): string[] {
  const out: string[] = [];
  for (const w of res.workloads) {
    const rows = res.rows.filter((r) => r.workload === w.id && r.status === 'ok' && r.perStep);
    if (!rows.length) continue;
    out.push(`${w.title}:`, '');
    out.push('| row | ms/step | sync part (JS, autograd, encode, submit) | rest (GPU work + readback wait) | dispatches | submits | writeBuffer | createBuffer | createBindGroup |');
    out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const r of rows) {
      const p = r.perStep!;
      out.push(`| ${r.name} | ${fmt(r.ms, 2)} | ${fmt(r.syncMs, 2)} | ${fmt(r.ms! - r.syncMs!, 2)} | ${fmt(p.dispatches, 1)} | ${fmt(p.submits, 1)} | ${fmt(p.writeBuffers, 1)} | ${fmt(p.buffersCreated, 1)} | ${fmt(p.bindGroupsCreated, 1)} |`);
    }
    for (const r of rows) if (r.details?.length) out.push('', `${r.name}: ${r.details.join('; ')}`);
    const e = rows.find((r) => r.name === 'wgtorch eager webgpu');
    if (e) {
      const fixed = (e.dispatches! * 16 + e.submits! * 44) / 1000;
      const mm = (stepFlops(w) / 17e9) * 1000;
      out.push(
        '',
        `Eager webgpu, estimated from this machine's measured unit costs (issue 3: ~16 us per batched dispatch, ~44 us per submit + wait, ~17 GFLOP/s for the best lavapipe matmul): ~${fixed.toFixed(2)} ms of dispatch/submit overhead and ~${mm.toFixed(2)} ms of matmul for its ${(stepFlops(w) / 1e6).toFixed(0)} MFLOP, against a measured median of ${fmt(e.ms, 2)} ms.`,
      );
    }
    out.push('');
  }
  return out;
}

export function markdown(res: Results): string {
  const m = res.machine;
  const L: string[] = [];
  L.push('# Benchmarks', '');
  L.push(`Generated by \`${res.command}\` on ${res.date} (${res.seconds.toFixed(0)} s). Every number below comes from that one run, on one machine, one Dawn device.`, '');
  L.push('## Machine', '');
  L.push(`- CPU: ${m.cpu}, ${m.cores} cores (\`nproc\`); load average at start ${m.loadAvg.map((x) => x.toFixed(2)).join(' / ')} (the machine is shared with other jobs)`);
  L.push(`- Node ${m.node}; ${Object.entries(m.versions).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  L.push(`- WebGPU adapter: ${m.adapter}`);
  L.push(`- TensorFlow.js wasm backend: ${m.wasm}`);
  if (m.cpuThreads !== undefined) L.push(`- wgtorch cpu matmul: generated WebAssembly SIMD128 kernel, large products split over ${m.cpuThreads} thread${m.cpuThreads === 1 ? '' : 's'} (worker_threads on shared memory); jax-js's Wasm backend runs one thread in Node (its worker pool needs a global \`Worker\`)`);
  L.push('');
  L.push('## How it is measured', '');
  L.push('- One step = forward + loss + zero grads + backward + optimizer step + reading the loss value (`await loss.item()` in wgtorch, `await loss.data()` in TF.js), as a training loop does; each step ends with the loss on the CPU, so no GPU work spills into the next step.');
  L.push('- Same model for every row: Linear -> ReLU -> Linear with bias and PyTorch\'s default init, MSE with reduction sum, Adam lr 1e-4. TF.js runs it as `tf.variable`s with `tf.train.adam(1e-4).minimize(f, true, vars)`, in production mode (`tf.enableProdMode()`). jax-js runs the whole step as one `jit` (`valueAndGrad` of the loss and PyTorch\'s Adam update written in jax-js ops, parameters and moments passed in and returned, as its reference counting wants), reading the loss with `await loss.data()` every step.');
  L.push('- wgtorch rows: `eager` and `compiled` on `webgpu`; `eager cpu`, and `compiled model cpu` / `compiled step cpu`: torch.compile on the cpu (fused kernels as generated JavaScript loops, matmuls through the generated WebAssembly SIMD kernel, parameters updated in place).');
  L.push('- Each row: the first step is timed alone ("first step": pipeline compiles, JIT, allocation), then warm-up steps, then every timed step is timed separately. The table gives the **median** step (robust to bursts of load from other processes on this 2-core machine) and the fastest step. Runs take at least `minSteps` and then continue until the time budget is spent.');
  if (Object.values(res.rounds).some((n) => n > 1)) L.push(`- Rows run several rounds (${Object.entries(res.rounds).map(([k, n]) => `${k}: ${n}`).join(', ')}), round-robin over all rows of a workload, and each row reports its best round (the lowest median; all rounds' medians are listed under the table): load from other processes only ever slows a round down. "First step" is the first round's.`);
  L.push('- "CPU ms/step": CPU time of the bench process (all its threads: wgtorch\'s matmul helpers, lavapipe\'s) per timed step, from `process.cpuUsage()`. On a machine shared with other jobs the median wall time also counts waiting for a core, and a step that runs synchronously for milliseconds is preempted more often than one cut into short pieces by awaits; CPU time is what the step costs. The targets table gives the ratios of medians (what the targets are written in), of fastest steps and of CPU time.');
  L.push('- "sync part": the median time from calling the step until its first `await` — the framework\'s JS work (autograd, kernel selection) plus recording and submitting GPU commands. On CPU backends it is the whole step.');
  L.push('- Dispatches and submits per step are counted the same way for every WebGPU row, by wrapping `GPUQueue.prototype.submit` and `GPUComputePassEncoder.prototype.dispatchWorkgroups` (and `dispatchWorkgroupsIndirect`: wgtorch gates the dispatches after a device-side check through it) of Dawn\'s Node bindings during the timed steps (wgtorch\'s own `torch.webgpu.counters()` are cross-checked against them). The TF.js webgpu backend is constructed on wgtorch\'s own `GPUDevice`, so both use the same Dawn device.');
  L.push('- Compiled rows take their first step with `warmup()`, which waits for the matmul autotuner, so the timed steps run the tuned kernels. Their graph lines below list the fused kernels, which of them share a dispatch (independent kernels packed into one), and the matmul variant of each matmul.');
  L.push('- GFLOP/s counts only the matmuls of a step: forward and weight gradients of both layers and the input gradient of the second (x needs none), 4·N·(Din·H + H·Dout) + 2·N·H·Dout.');
  if (res.quick) L.push('- `--quick`: fewer steps, shorter budgets, and the slowest CPU rows of the large workload skipped; use the full run for numbers to quote.');
  L.push('');
  for (const w of res.workloads) {
    L.push(`## ${w.title}`, '');
    const n = res.rounds[w.id] ?? 1;
    L.push(`${w.N}x${w.Din} -> ${w.H} -> ${w.Dout}, ${(stepFlops(w) / 1e6).toFixed(0)} MFLOP of matmul per step; the first step, then ${w.warmup > 1 ? `${w.warmup - 1} more warm-up steps, then ` : ''}${w.minSteps}-${w.maxSteps} timed steps within ${(w.budgetMs / 1000).toFixed(0)} s per row${n > 1 ? `, in each of ${n} rounds` : ''}. The loss column is a sanity check: every row trains (its step count n differs with speed).`, '');
    L.push(...rowTable(res.rows, w), '');
  }
  L.push('## Targets from the issues', '', ...targets(res), '');
  const a = analysis(res);
  if (a.length) L.push('## Where the WebGPU time goes', '', 'Medians of the timed steps. The sync part is the time from calling the step until it first awaits: the JS work of the framework, recording and submitting the GPU commands; the rest is waiting for the GPU and the loss readback. Dawn calls are counted per step by the same prototype wrappers for every row.', '', ...a);
  const cpuRows = res.rows.filter((r) => r.status === 'ok' && r.group === 'wgtorch' && r.name.endsWith(' cpu') && r.details?.length);
  if (cpuRows.length) {
    L.push('## Where the compiled cpu time goes', '');
    L.push('Per row: the compiled graph (its fused kernels and Wasm matmuls) and a profile of one call, kernel by kernel. The rest of a step is tracing the step again and looking its graph up (every call re-traces, so JavaScript control flow is honoured) and reading the loss.', '');
    for (const r of cpuRows) L.push(`- ${res.workloads.find((w) => w.id === r.workload)?.title ?? r.workload}, ${r.name} (${fmt(r.ms, 2)} ms/step): ${r.details!.join('; ')}`);
    L.push('');
  }
  L.push('## Matmul GFLOP/s', '');
  L.push('Best of several timed runs each (other processes only ever slow a run down).', '');
  if (res.matmul.length) {
    L.push('| kernel and shape | GFLOP/s |', '| --- | ---: |');
    for (const r of res.matmul) L.push(`| ${r.name} | ${r.gflops.toFixed(2)} |`);
  }
  for (const n of res.matmulNotes) L.push('', `- ${n}`);
  L.push('');
  L.push('## Steady-state GPU memory (eager webgpu, seed workload)', '');
  const mem = res.memory;
  if (!mem) L.push('Not measured (no WebGPU device).');
  else if ('error' in mem) L.push(`Failed: ${mem.error}`);
  else {
    L.push(`${mem.steps} eager steps after warm-up, ${fmt(mem.msPerStep, 2)} ms/step on average. Live buffers are those held by tensors; pooled ones are released and waiting for reuse; "created" counts createBuffer calls since the device started. ${mem.gcExposed ? 'Both points are measured after a forced full GC (`--expose-gc`), since tensors return their buffers through a FinalizationRegistry.' : 'GC was not exposed (run with `tsx --expose-gc`), so the points include garbage not yet collected.'}`, '');
    L.push('| point | live buffers | live bytes | pooled buffers | pooled bytes | buffers created |', '| --- | ---: | ---: | ---: | ---: | ---: |');
    const line = (p: string, s: MemoryResult['afterWarmup']) => L.push(`| ${p} | ${s.liveBuffers} | ${MiB(s.liveBytes)} | ${s.pooledBuffers} | ${MiB(s.pooledBytes)} | ${s.created} |`);
    line('after warm-up', mem.afterWarmup);
    line(`after ${mem.steps} more steps`, mem.afterSteps);
    L.push('');
    const dLive = mem.afterSteps.liveBuffers - mem.afterWarmup.liveBuffers;
    const dCreated = mem.afterSteps.created - mem.afterWarmup.created;
    const flat = dLive === 0 && dCreated === 0 && mem.peakLiveBuffers <= 2 * Math.max(mem.afterWarmup.liveBuffers, 1) + 100;
    L.push(`Change over the ${mem.steps} steps: ${dLive >= 0 ? '+' : ''}${dLive} live buffers after a GC, ${dCreated} buffers created (${(dCreated / mem.steps).toFixed(1)} per step). Without forced GCs, the most live buffers seen at a sample point (every 100 steps) was ${mem.peakLiveBuffers} (${MiB(mem.peakLiveBytes)}).`);
    L.push('');
    L.push(
      flat
        ? 'Flat: no buffers created in the steady state, and the live set stays small between GCs.'
        : `Not flat between GCs: what tensors hold is released only when V8 collects them (FinalizationRegistry), so until a major GC runs the pool misses and new buffers are created; the live set after a forced GC is flat (${mem.afterWarmup.liveBuffers} -> ${mem.afterSteps.liveBuffers}), and the pool holds ${mem.afterSteps.pooledBuffers} buffers (${MiB(mem.afterSteps.pooledBytes)}) afterwards.`,
    );
  }
  const compiled = res.rows.find((r) => r.workload === 'seed' && r.name === 'wgtorch compiled step' && r.status === 'ok');
  L.push('', '## Compile latency', '');
  L.push(
    compiled
      ? `First call of the compiled seed step, as \`fast.warmup()\` (trace, compile, time the matmul variants of shape classes new to this device, create the pipelines concurrently, first run, loss read): ${fmt(compiled.firstMs, 0)} ms. The autotuner keeps its winners on disk (\`~/.cache/wgtorch/matmul-tuning.json\`, or \`$WGTORCH_CACHE_DIR\`) and Mesa caches compiled shaders, so later processes start faster than the first ever run; the graph lines above say where each matmul variant came from (tuned in this run, disk, or the default for matmuls too small to tune).`
      : 'Not measured yet: `torch.compile` is not available in this build (the compiled rows are skipped).',
  );
  if (res.notes.length) L.push('', '## Notes', '', ...res.notes.map((n) => `- ${n}`));
  L.push('', '![ms/step on the seed workload](benchmarks.svg)', '');
  return L.join('\n');
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A horizontal bar chart of median ms/step per row of one workload. */
export function svgChart(res: Results, workload = 'seed'): string {
  const w = res.workloads.find((x) => x.id === workload)!;
  const rows = res.rows.filter((r) => r.workload === workload && r.status === 'ok' && r.ms !== undefined);
  const max = Math.max(...rows.map((r) => r.ms!), 1e-9);
  const labelW = 200, barW = 400, rowH = 30, top = 76, width = labelW + barW + 230;
  const height = top + rows.length * rowH + 34;
  const color = { wgtorch: '#ee4c2c', tfjs: '#f9a03f', jaxjs: '#4c7bee' } as const;
  const S: string[] = [];
  S.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="13">`);
  S.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  S.push(`<text x="12" y="22" font-size="15" font-weight="bold">${esc(`${w.title}: ms per training step (median, lower is better)`)}</text>`);
  const gpu = res.machine.adapter.split(' / ').pop()!;
  S.push(`<text x="12" y="42" fill="#555">${esc(`${w.N}x${w.Din} -> ${w.H} -> ${w.Dout}, MSE (sum), Adam lr 1e-4; \`${res.command}\`, ${res.date.slice(0, 10)}`)}</text>`);
  S.push(`<text x="12" y="60" fill="#555">${esc(`${res.machine.cores}-core ${res.machine.cpu}, Node ${res.machine.node}; WebGPU: ${gpu}`)}</text>`);
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    const len = Math.max(1, (r.ms! / max) * barW);
    S.push(`<text x="${labelW - 8}" y="${y + 19}" text-anchor="end">${esc(r.name)}</text>`);
    S.push(`<rect x="${labelW}" y="${y + 5}" width="${len.toFixed(1)}" height="${rowH - 10}" fill="${color[r.group]}"/>`);
    const counts = r.dispatches !== undefined ? `  (${fmt(r.dispatches, 0)} disp, ${fmt(r.submits, 0)} sub)` : '';
    S.push(`<text x="${(labelW + len + 6).toFixed(1)}" y="${y + 19}">${esc(`${fmt(r.ms, 2)} ms${counts}`)}</text>`);
  });
  const ly = top + rows.length * rowH + 20;
  S.push(`<rect x="${labelW}" y="${ly - 10}" width="12" height="12" fill="${color.wgtorch}"/><text x="${labelW + 18}" y="${ly}">wgtorch</text>`);
  S.push(`<rect x="${labelW + 90}" y="${ly - 10}" width="12" height="12" fill="${color.tfjs}"/><text x="${labelW + 108}" y="${ly}">TensorFlow.js 4.22</text>`);
  S.push(`<rect x="${labelW + 250}" y="${ly - 10}" width="12" height="12" fill="${color.jaxjs}"/><text x="${labelW + 268}" y="${ly}">jax-js 0.1.25</text>`);
  S.push('</svg>');
  return S.join('\n') + '\n';
}

export function consoleTable(res: Results): string {
  const L: string[] = [];
  for (const w of res.workloads) {
    const ref = fastestTfjs(res.rows, w.id);
    L.push('', `${w.title} (${w.N}x${w.Din} -> ${w.H} -> ${w.Dout})`);
    L.push(`${'row'.padEnd(28)}${'ms/step'.padStart(10)}${'sync'.padStart(9)}${'min'.padStart(9)}${'first'.padStart(9)}${'disp/step'.padStart(11)}${'sub/step'.padStart(10)}  vs fastest TF.js`);
    for (const r of res.rows.filter((x) => x.workload === w.id)) {
      if (r.status !== 'ok') {
        L.push(`${r.name.padEnd(28)}${r.status.padStart(10)}  ${r.note ?? ''}`);
        continue;
      }
      L.push(
        `${r.name.padEnd(28)}${fmt(r.ms, 2).padStart(10)}${fmt(r.syncMs, 2).padStart(9)}${fmt(r.minMs, 2).padStart(9)}${fmt(r.firstMs, 0).padStart(9)}${fmt(r.dispatches, 1).padStart(11)}${fmt(r.submits, 1).padStart(10)}  ${r === ref ? 'reference' : speedup(r, ref)}`,
      );
    }
  }
  return L.join('\n');
}
