// A/B in one process of the static memory plan (src/compile/gpu-memory.ts): compiled whole steps of the example GPT
// (GPT_SMALL) and of the seed workload with the plan (WGTORCH_MEMPLAN unset) and without (WGTORCH_MEMPLAN=0 when
// the plan is built), interleaved in rounds: medians and minimums of the whole step and of its synchronous part
// (trace, lookup, recording; wall and process CPU time, which load from other processes inflates less), and bind groups and buffers created per step.
// usage: node --import tsx bench/memplan-ab.ts [rounds] [steps]
import * as torch from '../src/index.ts';
import { GPT_SMALL, gptBatch, gptStep, makeGpt, seedCompiledStep } from './models.ts';
type Tensor = torch.Tensor;
await torch.webgpu.init();
const ctx = torch.webgpu.context();
const rounds = Number(process.argv[2] ?? 5);
const steps = Number(process.argv[3] ?? 20);

function gpt(): () => Tensor {
  const { model, opt } = makeGpt(GPT_SMALL, 'webgpu');
  const { idx, targets } = gptBatch(GPT_SMALL, 'webgpu');
  return torch.compile(() => gptStep(model, opt, idx, targets), { autotune: false } as any) as () => Tensor;
}
function seed(): () => Tensor {
  return seedCompiledStep('webgpu', { autotune: false } as any);
}

const med = (x: number[]) => [...x].sort((p, q) => p - q)[x.length >> 1]!;
const min = (x: number[]) => Math.min(...x);
for (const [name, make] of [['gpt', gpt], ['seed', seed]] as const) {
  const variants: { label: string; step: () => Tensor; sync: number[]; cpu: number[]; all: number[]; bg: number[]; buf: number[] }[] = [];
  for (const [label, env] of [['memplan', '1'], ['off', '0']]) {
    process.env.WGTORCH_MEMPLAN = env;
    const step = make();
    for (let i = 0; i < 5; i++) await step().item();
    variants.push({ label, step, sync: [], cpu: [], all: [], bg: [], buf: [] });
  }
  delete process.env.WGTORCH_MEMPLAN;
  const losses: number[][] = variants.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (const [vi, v] of variants.entries()) {
      for (let i = 0; i < steps; i++) {
        const bg0 = ctx.bindGroupsCreated, b0 = ctx.pool.stats().created;
        const u0 = process.cpuUsage();
        const a = performance.now();
        const l = v.step();
        const b = performance.now();
        const u1 = process.cpuUsage(u0);
        const val = await l.item();
        const c = performance.now();
        v.sync.push(b - a);
        v.cpu.push((u1.user + u1.system) / 1000);
        v.all.push(c - a);
        v.bg.push(ctx.bindGroupsCreated - bg0);
        v.buf.push(ctx.pool.stats().created - b0);
        if (r === 0 && i < 3) losses[vi]!.push(val);
      }
    }
  }
  for (const v of variants) {
    const last = v.bg.slice(-steps);
    console.log(
      `${name} ${v.label.padEnd(8)} total med ${med(v.all).toFixed(2)} min ${min(v.all).toFixed(2)} | sync med ${med(v.sync).toFixed(2)} min ${min(v.sync).toFixed(2)} (CPU med ${med(v.cpu).toFixed(2)} min ${min(v.cpu).toFixed(2)}) | ` +
        `bindGroups/step ${(last.reduce((s, n) => s + n, 0) / last.length).toFixed(2)} buffers created (all steps) ${v.buf.reduce((s, n) => s + n, 0)}`,
    );
  }
  console.log(`${name} losses`, JSON.stringify(losses));
}
console.log('pool', JSON.stringify(ctx.pool.stats()));
process.exit(0);
