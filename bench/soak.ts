// `npm run bench -- --soak [--soak-steps N]`: the README model (TwoLayerNet + Adam, seed sizes)
// as one compiled whole step on webgpu, 10,000 steps reading the loss every step, then 10,000
// reading it every 100th step. Reports RSS and the GPU pool's live bytes at the start, middle
// and end of each run: flat in the second half means nothing leaks per step.
import * as torch from '../src/index.ts';
import { seedCompiledStep } from './models.ts';

export interface SoakRow { run: string; step: number; rssMiB: number; liveMiB: number; liveBuffers: number; created: number; msPerStep: number }

export async function soak(steps = 10_000): Promise<SoakRow[]> {
  await torch.webgpu.init();
  const ctx = torch.webgpu.context();
  const rows: SoakRow[] = [];
  for (const every of [1, 100]) {
    const step = seedCompiledStep('webgpu');
    let t0 = performance.now();
    for (let t = 1; t <= steps; t++) {
      const loss = step();
      if (t % every === 0) await loss.item();
      if (t === 1 || t === steps / 2 || t === steps) {
        await loss.item();
        (globalThis as { gc?: () => void }).gc?.();
        await new Promise((r) => setTimeout(r, 20)); // let finalizers return buffers
        const s = ctx.pool.stats();
        const now = performance.now();
        rows.push({ run: `read every ${every === 1 ? 'step' : `${every}th step`}`, step: t, rssMiB: process.memoryUsage().rss / 2 ** 20, liveMiB: s.liveBytes / 2 ** 20, liveBuffers: s.liveBuffers, created: s.created, msPerStep: t === 1 ? 0 : (now - t0) / (t === steps / 2 ? steps / 2 - 1 : steps / 2) });
        t0 = performance.now();
      }
    }
  }
  return rows;
}

export function soakTable(rows: SoakRow[]): string {
  const head = '| run | step | RSS (MiB) | GPU pool live (MiB) | live buffers | buffers created | ms/step since the last row |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |';
  return [head, ...rows.map((r) => `| ${r.run} | ${r.step} | ${r.rssMiB.toFixed(0)} | ${r.liveMiB.toFixed(2)} | ${r.liveBuffers} | ${r.created} | ${r.msPerStep ? r.msPerStep.toFixed(2) : '-'} |`)].join('\n');
}

export function soakSection(rows: SoakRow[], command: string, seconds: number): string {
  return [
    '## Soak: 10,000 compiled whole steps (webgpu, README model)',
    '',
    `\`${command}\` on ${new Date().toISOString()} (${seconds.toFixed(0)} s; the machine is shared, so ms/step is only indicative).` +
      ' The README model (TwoLayerNet 1000-100-10 + Adam, batch 64) as one compiled whole step, first reading the loss every step, then every 100th.' +
      ' Each row is taken after a readback and a forced GC. Flat RSS and GPU pool between the middle and the end of a run mean nothing grows per step.',
    '',
    soakTable(rows),
  ].join('\n');
}
