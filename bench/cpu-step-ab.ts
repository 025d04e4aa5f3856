// The seed's compiled cpu step, before and after the cpu GEMM changes of issue #10, side by side in
// one process (the variants alternate round by round), with jax-js's Wasm backend for scale:
//   npx tsx bench/cpu-step-ab.ts            (WGTORCH_CPU_THREADS=1 for one thread; ROUNDS=n)
// "before" turns off the unpacked A @ B^T kernel, the in-place short B and the per-call input
// staging (setWasmGemmNtDot, setWasmGemmBInPlace, setInputStaging); "after" is the default.
// Prints per variant the median of the rounds' median step times, the best round median, the
// fastest step, and CPU time per step (process.cpuUsage: every thread of the process).
import { wgtorchRunner } from './wgtorch.ts';
import { jaxjsRunner } from './jaxjs.ts';
import type { Runner, Workload } from './harness.ts';
import { setWasmGemmBInPlace, setWasmGemmNtDot } from '../src/runtime/cpu/wasm-gemm.ts';
import { setInputStaging } from '../src/runtime/cpu/wasm-staging.ts';

const w = { id: 'seed', title: 'seed', N: 64, Din: 1000, H: 100, Dout: 10, warmup: 10, minSteps: 30, maxSteps: 1000, budgetMs: 2500 } as unknown as Workload;
const compiled = await wgtorchRunner(w, 'cpu', 'compiled step');
const set = (on: boolean) => {
  setWasmGemmNtDot(on);
  setWasmGemmBInPlace(on);
  setInputStaging(on);
};
const runners: [string, Runner, () => void][] = [
  ['before (packed NT and B, copies)', compiled, () => set(false)],
  ['after', compiled, () => set(true)],
  ['jax-js wasm', await jaxjsRunner(w, 'wasm', async () => { throw new Error('jax-js wasm is not available'); }), () => set(true)],
];
await compiled.firstStep?.();
for (const [, r, s] of runners) {
  s();
  for (let i = 0; i < 30; i++) await r.step();
}
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e3;
};
const steps = 200;
const res = new Map<string, { med: number[]; min: number[]; cpu: number[] }>();
for (let round = 0; round < Number(process.env.ROUNDS ?? 10); round++) {
  for (const [name, r, s] of runners) {
    s();
    const t: number[] = [];
    const c0 = cpuMs();
    for (let i = 0; i < steps; i++) {
      const a = performance.now();
      await r.step();
      t.push(performance.now() - a);
    }
    const e = res.get(name) ?? { med: [], min: [], cpu: [] };
    res.set(name, e);
    e.cpu.push((cpuMs() - c0) / steps);
    t.sort((a, b) => a - b);
    e.med.push(t[steps >> 1]!);
    e.min.push(t[0]!);
  }
}
set(true);
const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;
for (const [k, e] of res) {
  console.log(
    `${k.padEnd(34)} ms/step: median ${median(e.med).toFixed(3)}, best round ${Math.min(...e.med).toFixed(3)}, fastest ${Math.min(...e.min).toFixed(3)} | CPU ms/step: median ${median(e.cpu).toFixed(3)}, min ${Math.min(...e.cpu).toFixed(3)}`,
  );
}
process.exit(0);
