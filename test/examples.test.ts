/**
 * Every seed example (examples/01..08) runs a short training and its loss
 * falls. The step counts and factors come from full runs on the cpu: e.g.
 * sections 1-4 go from ~3.3e7 to ~8e4 in 30 steps, 5 and 7 from 673 to 115,
 * 6 (Adam) from 673 to 317, and DynamicNet averages ~130 over steps 50-59
 * from 641 at step 0.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { isMain, parseCli } from '../examples/_cli.ts';
import { main as ex1 } from '../examples/01-numpy-style.ts';
import { main as ex2 } from '../examples/02-tensors.ts';
import { main as ex3 } from '../examples/03-autograd.ts';
import { main as ex4 } from '../examples/04-custom-function.ts';
import { main as ex5 } from '../examples/05-nn.ts';
import { main as ex6 } from '../examples/06-optim.ts';
import { main as ex7 } from '../examples/07-custom-module.ts';
import { DynamicNet, main as ex8 } from '../examples/08-dynamic-net.ts';
import { runDemo } from '../demo/main.ts';
import { main as ex11 } from '../examples/11-poly-sin.ts';
import { train as ex12 } from '../examples/12-digits-cnn.ts';
import { train as ex13 } from '../examples/13-char-gpt.ts';

const quiet = () => {};
const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

describe('seed examples on cpu', () => {
  const runs: Record<string, number[]> = {};
  const cases: [string, typeof ex1, number, number][] = [
    // name, main, steps, last loss must be below first * factor
    ['01-numpy-style', ex1, 30, 1e-2],
    ['02-tensors', ex2, 30, 1e-2],
    ['03-autograd', ex3, 30, 1e-2],
    ['04-custom-function', ex4, 30, 1e-2],
    ['05-nn', ex5, 30, 0.3],
    ['06-optim', ex6, 30, 0.6],
    ['07-custom-module', ex7, 30, 0.3],
  ];
  it.each(cases)('%s: the loss falls', async (name, main, steps, factor) => {
    const lines: string[] = [];
    const losses = await main({ steps, log: (l) => lines.push(l) });
    runs[name] = losses;
    expect(losses).toHaveLength(steps);
    expect(losses.every(Number.isFinite)).toBe(true);
    // Prints `t loss` lines as the seed does.
    expect(lines).toHaveLength(steps);
    expect(lines[0]).toBe(`0 ${losses[0]}`);
    expect(losses[steps - 1]).toBeLessThan(losses[0] * factor);
  });

  it('the numpy-style run (float64) and the tensor run (float32) see the same data and losses', () => {
    const [a, b] = [runs['01-numpy-style'], runs['02-tensors']];
    for (let t = 0; t < 10; t++) expect(rel(b[t], a[t]), `step ${t}`).toBeLessThan(1e-5);
  });
  it('hand-written backward, autograd and the custom MyReLU give the same losses', () => {
    const [m, a, f] = [runs['02-tensors'], runs['03-autograd'], runs['04-custom-function']];
    for (let t = 0; t < m.length; t++) {
      expect(rel(a[t], m[t]), `autograd step ${t}`).toBeLessThan(1e-5);
      expect(rel(f[t], a[t]), `MyReLU step ${t}`).toBeLessThan(1e-5);
    }
  });
  it('Sequential with a manual update and TwoLayerNet with SGD follow the same path', () => {
    const [s, c] = [runs['05-nn'], runs['07-custom-module']];
    for (let t = 0; t < s.length; t++) expect(rel(c[t], s[t]), `step ${t}`).toBeLessThan(1e-4);
  });

  it('08-dynamic-net: the loss falls despite the random depth', async () => {
    const losses = await ex8({ steps: 60, log: quiet });
    expect(losses.every(Number.isFinite)).toBe(true);
    const tail = losses.slice(50);
    const mean = tail.reduce((s, v) => s + v, 0) / tail.length;
    expect(mean).toBeLessThan(losses[0] * 0.5);
  });
  it('DynamicNet draws every depth 0..3 and shares middleLinear', () => {
    torch.manualSeed(0);
    const net = new DynamicNet(8, 4, 2);
    expect(net.namedParameters().map(([n]) => n)).toEqual([
      'inputLinear.weight', 'inputLinear.bias', 'middleLinear.weight', 'middleLinear.bias', 'outputLinear.weight', 'outputLinear.bias',
    ]);
    const x = torch.randn(3, 8);
    for (let i = 0; i < 40; i++) net(x);
    expect(new Set(net.depths)).toEqual(new Set([0, 1, 2, 3]));
    // A forward of depth >= 2 uses middleLinear twice or more; its one weight gets the gradient.
    net.zeroGrad();
    let out: torch.Tensor;
    do out = net(x);
    while (net.depths.at(-1)! < 2);
    out.sum().backward();
    expect(net.middleLinear.weight.grad).not.toBeNull();
  });
});

describe('beyond the seed: examples 11-13 on cpu', () => {
  it('11-poly-sin: every section of the current tutorial fits its polynomial and prints it', async () => {
    const lines: string[] = [];
    const losses = await ex11({ steps: 200, log: (l) => lines.push(l) });
    expect(losses).toHaveLength(8);
    expect(losses.every(Number.isFinite)).toBe(true);
    const results = lines.filter((l) => l.startsWith('Result: y = '));
    expect(results).toHaveLength(8);
    expect(results[3]).toMatch(/^Result: y = \S+ \+ \S+ \* P3\(\S+ \+ \S+ x\)$/);
    expect(results[7]).toMatch(/x\^4 \? \+ \S+ x\^5 \?$/);
    // sections 1-7 print `99 loss` and `199 loss`: each one's loss falls
    const at = (t: number) => lines.filter((l) => l.startsWith(`${t} `)).map((l) => Number(l.split(' ')[1]));
    const [l99, l199] = [at(99), at(199)];
    expect(l99).toHaveLength(7);
    l199.forEach((v, i) => expect(v, `section ${i + 1}`).toBeLessThan(l99[i]));
  }, 120_000);

  it('12-digits-cnn: >= 95% held-out accuracy, and the reloaded model predicts the same', async () => {
    const r = await ex12({ steps: 3, log: quiet });
    expect(r.accuracies).toHaveLength(3);
    expect(r.accuracies.at(-1)!).toBeGreaterThanOrEqual(0.95);
    expect(r.losses[2]).toBeLessThan(r.losses[0]);
    expect(r.reloadedSame).toBe(true);
    expect(Object.keys(torch.load(r.file))).toContain('bn1.running_mean');
  }, 300_000);

  it('13-char-gpt: the compiled step trains (one graph after the first call) and samples text', async () => {
    const r = await ex13({ steps: 40, log: quiet, sampleLength: 40 });
    expect(r.losses[0]).toBeGreaterThan(3.5); // ~ln(55) at the start
    const tail = r.losses.slice(-5).reduce((s, v) => s + v, 0) / 5;
    expect(tail).toBeLessThan(3.0);
    expect(r.sample).toHaveLength(40);
    // the first call creates AdamW's state (a graph of its own), every later step reuses one graph
    expect(r.graphs).toBeLessThanOrEqual(2);
  }, 300_000);
});

describe('demo', () => {
  it('trains TwoLayerNet with Adam like 06-optim, logging every 50 steps', async () => {
    const lines: string[] = [];
    const r = await runDemo({ steps: 51, log: (l) => lines.push(l) });
    expect(r.device).toBe('cpu');
    expect(r.losses).toHaveLength(51);
    expect(r.msPerStep).toBeGreaterThan(0);
    expect(lines.filter((l) => l.startsWith('step'))).toHaveLength(2); // steps 0 and 50
    expect(r.losses[50]).toBeLessThan(r.losses[0] * 0.5);
  });
});

describe('examples/_cli', () => {
  it('reads --device, --device=, WGTORCH_DEVICE and --steps', () => {
    expect(parseCli([], {})).toEqual({ device: 'cpu', steps: undefined });
    expect(parseCli(['--device', 'webgpu'], {})).toEqual({ device: 'webgpu', steps: undefined });
    expect(parseCli(['--device=webgpu', '--steps', '20'], {})).toEqual({ device: 'webgpu', steps: 20 });
    expect(parseCli([], { WGTORCH_DEVICE: 'webgpu' }).device).toBe('webgpu');
    expect(parseCli(['--device', 'cpu'], { WGTORCH_DEVICE: 'webgpu' }).device).toBe('cpu');
    expect(() => parseCli(['--device', 'cuda'], {})).toThrow(/unknown device 'cuda'/);
    expect(() => parseCli(['--steps', 'x'], {})).toThrow(/--steps/);
  });
  it('isMain is false for an imported module', () => {
    expect(isMain(import.meta.url)).toBe(false);
  });
});
