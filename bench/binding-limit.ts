// `npm run bench -- --bindings`: the seed's whole Adam step (the bench's model) compiled on a
// device created with 8 storage buffers per shader stage (the WebGPU default that many GPUs and
// browsers give) beside the same step on the device's own limit, each in a process of its own
// (a process has one device, and its limits are fixed when it is created). Writes the
// `<!-- bindings -->` section of docs/benchmarks.md; the full run carries it over.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as torch from '../src/index.ts';
import { seedCompiledStep } from './models.ts';

interface LimitRow {
  limit: number;
  fusedKernels: number;
  dispatches: number;
  submits: number;
  copies: number;
  kernels: string[];
  msMedian: number;
  lossFirst: number;
  lossLast: number;
}

async function measure(limit: number | null): Promise<LimitRow> {
  await torch.webgpu.init(limit === null ? {} : { limits: { maxStorageBuffersPerShaderStage: limit } });
  const step = seedCompiledStep('webgpu');
  await step.warmup();
  const lossFirst = await step().item();
  for (let i = 0; i < 9; i++) await step().item();
  torch.webgpu.resetCounters();
  const times: number[] = [];
  let lossLast = lossFirst;
  const n = 100;
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    lossLast = await step().item();
    times.push(performance.now() - t);
  }
  const c = torch.webgpu.counters();
  const g = step.graphs()[0]!;
  times.sort((a, b) => a - b);
  return {
    limit: torch.webgpu.context().limits.maxStorageBuffersPerShaderStage,
    fusedKernels: g.stats.fusedKernels,
    dispatches: c.dispatches / n,
    submits: c.submits / n,
    copies: c.copies / n,
    kernels: g.kernels.map((k) => k.name),
    msMedian: times[n >> 1]!,
    lossFirst,
    lossLast,
  };
}

/** Both rows, each measured in a child process of its own. */
export function bindingLimitRows(): LimitRow[] {
  return [null, 8].map((limit) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', String(limit ?? 'device')], { encoding: 'utf8' });
    const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
    if (r.status !== 0 || !line) throw new Error(`bench/binding-limit.ts --child ${limit ?? 'device'} failed (${r.status}): ${r.stderr.slice(-2000)}`);
    return JSON.parse(line) as LimitRow;
  });
}

export function bindingLimitSection(rows: LimitRow[], command: string): string {
  const lines = [
    '<!-- bindings -->',
    '## The seed step with 8 storage buffers per stage',
    '',
    `\`${command}\`, ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}. The bench's seed model and whole Adam step compiled once on the device's own limit and once on a device created with \`maxStorageBuffersPerShaderStage: 8\` (each in a process of its own); 100 steps each after \`warmup()\` and 10 more, the loss read every step. Kernels that would bind more buffers than that read their small float buffers through one arena buffer (passes/binding-arena.ts); \`test/compile-binding-limit.test.ts\` asserts the counts and equality with eager.`,
    '',
    '| storage buffers per stage | fused kernels | dispatches/step | submits/step | buffer copies/step | ms/step (median) | loss: first -> last |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...rows.map((r) => `| ${r.limit} | ${r.fusedKernels} | ${r.dispatches.toFixed(1)} | ${r.submits.toFixed(1)} | ${r.copies.toFixed(1)} | ${r.msMedian.toFixed(2)} | ${r.lossFirst.toExponential(3)} -> ${r.lossLast.toExponential(3)} |`),
    '',
    ...rows.map((r) => `- ${r.limit} storage buffers: ${r.kernels.map((k) => `\`${k}\``).join(', ')}`),
    '<!-- /bindings -->',
    '',
  ];
  return lines.join('\n');
}

const childAt = process.argv.indexOf('--child');
if (childAt >= 0) {
  const arg = process.argv[childAt + 1];
  const row = await measure(arg === 'device' ? null : Number(arg));
  console.log(JSON.stringify(row));
  process.exit(0);
}
