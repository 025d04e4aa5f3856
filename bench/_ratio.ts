import { wgtorchRunner } from './wgtorch.ts';
import { jaxjsRunner } from './jaxjs.ts';
const w = { id: 'seed', title: 's', N: 64, Din: 1000, H: 100, Dout: 10, warmup: 1, minSteps: 1, maxSteps: 1, budgetMs: 1 };
const a = await wgtorchRunner(w, 'cpu', 'compiled step');
const e = await wgtorchRunner(w, 'cpu', 'eager');
const b = await jaxjsRunner(w, 'wasm', async () => { throw new Error('no'); });
for (let i = 0; i < 30; i++) { await a.step(); await b.step(); await e.step(); }
const med = (xs: number[]) => xs.sort((p, q) => p - q)[xs.length >> 1];
const ta: number[] = [], tb: number[] = [], te: number[] = [];
for (let i = 0; i < 60; i++) {
  let t = performance.now(); await a.step(); ta.push(performance.now() - t);
  t = performance.now(); await b.step(); tb.push(performance.now() - t);
  t = performance.now(); await e.step(); te.push(performance.now() - t);
}
console.log('compiled cpu', med(ta).toFixed(2), 'jax wasm', med(tb).toFixed(2), 'eager cpu', med(te).toFixed(2), 'ratio jax/compiled', (med(tb) / med(ta)).toFixed(2));
