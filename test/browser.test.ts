/**
 * The demo page in real Chromium (Debian's /usr/bin/chromium, headless, driven by
 * playwright-core; never a downloaded browser), loaded from the BUILT package: it trains
 * the seed's TwoLayerNet 100 steps eager and compiled on WebGPU (SwiftShader here) and
 * the losses must fall and equal a Node run's; the inspector must list the compiled
 * kernels with their IR nodes; any console error of the page fails the test. Saves the
 * screenshot the README shows (docs/demo.png).
 *
 * Skips loudly without Chromium, except with CI=true, where it must run
 * (.ci/run installs chromium).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build, ROOT } from '../scripts/build.ts';
import { buildWeb, serve } from '../scripts/web.ts';
import { runDemo } from '../demo/main.ts';
import * as torch from '../src/index.ts';
import { DigitsCNN, loadDigits } from '../examples/12-digits-cnn.ts';
import type { TrainResult } from '../web/main.ts';

const CHROMIUM = process.env.WGTORCH_CHROMIUM ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
/** WebGPU in headless Chromium without a GPU: Dawn on SwiftShader (Vulkan on the CPU) */
export const CHROMIUM_ARGS = ['--enable-unsafe-webgpu', '--enable-features=Vulkan'];
const STEPS = 100;

if (!haveChromium) {
  if (process.env.CI === 'true') {
    throw new Error(`CI=true but ${CHROMIUM} is missing: the browser test must run in CI. Fix: apt-get install -y chromium (.ci/run does).`);
  }
  console.warn(`\n*** browser test SKIPPED: no Chromium at ${CHROMIUM}. Install it with \`sudo apt-get install -y chromium\` (or set WGTORCH_CHROMIUM). ***\n`);
}

/** largest |a-b| / max(|a|, 1e-30) over the steps */
const worstRel = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i]!) / Math.max(Math.abs(v), 1e-30)));

/** examples/12-digits-cnn.ts's setup and loop, cut after `batches` batches: the losses */
async function digitsInNode(batches: number): Promise<number[]> {
  torch.manualSeed(0);
  const { images, labels } = loadDigits();
  const order = torch.randperm(images.shape[0]);
  const nTrain = Math.round(0.8 * images.shape[0]);
  const trainIdx = order.narrow(0, 0, nTrain);
  const trainSet = new torch.utils.data.TensorDataset(images.indexSelect(0, trainIdx), labels.indexSelect(0, trainIdx));
  const loader = new torch.utils.data.DataLoader(trainSet, { batchSize: 64, shuffle: true });
  const model = new DigitsCNN();
  const optimizer = new torch.optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
  const losses: number[] = [];
  for (const [x, y] of loader) {
    if (losses.length === batches) break;
    const loss = torch.nn.functional.crossEntropy(model(x!), y!);
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step();
    losses.push(await loss.item());
  }
  return losses;
}

describe.skipIf(!haveChromium)('the demo page in Chromium (WebGPU)', () => {
  let tmp: string;
  let server: Server;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];
  const consoleLines: string[] = [];
  let node: number[];
  const runs: Partial<Record<'eager' | 'compiled', TrainResult>> = {};

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'wgtorch-browser-'));
    await build({ outDir: join(tmp, 'dist'), quiet: true, types: false });
    const web = await buildWeb({ distDir: join(tmp, 'dist') });
    const served = await serve(web, 0);
    server = served.server;
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
    page.on('console', (m) => {
      consoleLines.push(`${m.type()}: ${m.text()}`);
      if (m.type() === 'error') pageErrors.push(`console.error: ${m.text()}`);
    });
    page.on('pageerror', (e) => pageErrors.push(`uncaught: ${e.message}`));
    await page.goto(served.url);
    // the reference: the same model, seed and data in Node (npm start's runDemo), on the cpu
    node = (await runDemo({ device: 'cpu', steps: STEPS, log: () => {} })).losses;
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    server?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('finds a WebGPU adapter in the page and says so', async () => {
    const device = await page.evaluate(() => window.demo.device);
    const status = await page.textContent('#device');
    expect(device, `Chromium ran without WebGPU (flags ${CHROMIUM_ARGS.join(' ')}); the page said: ${status}`).toBe('webgpu');
    expect(status).toMatch(/^WebGPU: /);
    console.log(`browser test: ${status}`);
    // the device gets every limit the adapter offers (as in Node), not WebGPU's defaults
    const { adapter, device: dev } = await page.evaluate(() => window.demo.limits());
    expect(Object.keys(adapter).length).toBeGreaterThan(20);
    expect(dev).toEqual(adapter);
    expect(pageErrors).toEqual([]);
  });

  for (const mode of ['eager', 'compiled'] as const) {
    it(`trains ${STEPS} steps ${mode} on WebGPU: the loss falls and equals the Node run's`, async () => {
      const t0 = performance.now();
      const r = await page.evaluate(([m, steps]) => window.demo.train({ mode: m, steps }), [mode, STEPS] as const);
      runs[mode] = r;
      console.log(`browser test: ${mode} ${STEPS} steps in ${((performance.now() - t0) / 1000).toFixed(1)} s (${r.msPerStep.toFixed(1)} ms/step), loss ${r.losses[0]} -> ${r.losses.at(-1)}`);
      expect(r.device).toBe('webgpu');
      expect(r.losses).toHaveLength(STEPS);
      expect(r.losses.every(Number.isFinite)).toBe(true);
      expect(r.losses.at(-1)!).toBeLessThan(r.losses[0]! * 0.2);
      // same seed and data; float32 summation orders differ between devices and fusion
      expect(worstRel(node, r.losses)).toBeLessThan(1e-4);
      expect(await page.textContent('#ms')).toMatch(/^\d+\.\d\d ms\/step$/);
      expect(pageErrors).toEqual([]);
    }, 150_000);
  }

  it('the inspector lists the compiled kernels with their IR nodes, linked both ways', async () => {
    const kernels = runs.compiled?.kernels;
    expect(kernels?.length).toBeGreaterThan(0);
    const listed = await page.$$eval('#inspector .kernel', (els) =>
      els.map((e) => ({ name: (e as HTMLElement).dataset.kernel!, nodes: Array.from(e.querySelectorAll(".chip")).map((c) => Number((c as HTMLElement).dataset.node)) })),
    );
    expect(listed).toEqual(kernels);
    // the traced IR has forward, backward and update sections
    const headings = await page.$$eval('#inspector .ir h4', (els) => els.map((e) => e.textContent));
    expect(headings.map((h) => h!.split(' ')[0])).toEqual(['forward', 'backward', 'update']);

    // click a kernel: its nodes light up in the IR, and its WGSL shows
    const last = kernels!.at(-1)!;
    await page.click(`#inspector .kernel[data-kernel="${last.name}"]`);
    const lit = await page.$$eval('#inspector .ir .node.in-kernel', (els) => els.map((e) => Number((e as HTMLElement).dataset.node)));
    expect(lit.length).toBeGreaterThan(0);
    for (const id of lit) expect(last.nodes).toContain(id);
    expect(await page.textContent('#inspector .source.wgsl')).toContain(`kernel ${last.name}`);

    // click a traced node: the kernel that computes it is selected
    const first = kernels![0]!;
    await page.click(`#inspector .ir .node[data-node="${first.nodes[0]}"]`);
    expect(await page.getAttribute('#inspector .kernel.selected', 'data-kernel')).toBe(first.name);
    expect(await page.textContent('#inspector .source.wgsl')).toContain(`// fuses %${first.nodes[0]}`);

    // the optimised IR holds every node of every kernel (nodes the passes made included)
    await page.click('#inspector button[data-ir-view="optimised"]');
    const optimised = await page.$$eval('#inspector .ir .node', (els) => els.map((e) => Number((e as HTMLElement).dataset.node)));
    for (const k of kernels!) for (const id of k.nodes) expect(optimised, `${k.name} fuses %${id}`).toContain(id);
    await page.click('#inspector button[data-ir-view="traced"]');
    expect(pageErrors).toEqual([]);
  });

  it('torch.saveAsync / torch.load work on bytes in the page: the trained weights round-trip', async () => {
    const r = await page.evaluate(() => window.demo.saveWeights({ download: false }));
    expect(r.names).toEqual(['linear1.weight', 'linear1.bias', 'linear2.weight', 'linear2.bias']);
    // 8-byte length + JSON header + float32 data of 1000*100 + 100 + 100*10 + 10 values
    expect(r.bytes).toBeGreaterThan(4 * (100_000 + 100 + 1000 + 10));
    expect(r.maxDiff).toBe(0);
    expect(pageErrors).toEqual([]);
  });

  it('torch.setLogs chooses the log channels in the page (no environment variables there)', async () => {
    const lines = await page.evaluate(async () => {
      const torch = window.torch;
      const a = torch.ones(4, 4, { device: 'webgpu' });
      // the default sink: the devtools console, as info (not as errors)
      torch.setLogs({ cache: true });
      await torch.compile((t: typeof a) => t.sub(3).sum())(a).item();
      const got: string[] = [];
      torch.setLogs({ cache: true, wgsl: true }, { sink: (c, m) => got.push(`${c}: ${m.split('\n')[0]}`) });
      const f = torch.compile((t: typeof a) => t.mul(2).add(1).sum());
      await f(a).item();
      await f(a).item();
      torch.setLogs({ cache: false, wgsl: false });
      await f(a).item(); // logs off again: nothing more
      return got;
    });
    expect(consoleLines.filter((l) => l.includes('[wgtorch:cache] miss'))).toEqual([expect.stringMatching(/^info: \[wgtorch:cache\] miss/)]);
    expect(lines.some((l) => l.startsWith('cache: miss'))).toBe(true);
    expect(lines.some((l) => l.startsWith('cache: hit'))).toBe(true);
    expect(lines.some((l) => l.startsWith('wgsl: '))).toBe(true);
    expect(lines.filter((l) => l.startsWith('cache: hit'))).toHaveLength(1);
    expect(pageErrors).toEqual([]);
  });

  it('without WebGPU the page says so and trains on the CPU', async () => {
    const cpuPage = await browser.newPage();
    const errors: string[] = [];
    cpuPage.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    cpuPage.on('pageerror', (e) => errors.push(e.message));
    // a browser without WebGPU: navigator.gpu is undefined
    await cpuPage.addInitScript(() => Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined }));
    await cpuPage.goto(page.url());
    expect(await cpuPage.evaluate(() => window.demo.device)).toBe('cpu');
    expect(await cpuPage.textContent('#device')).toContain('no WebGPU');
    const r = await cpuPage.evaluate(() => window.demo.train({ mode: 'eager', steps: 5 }));
    expect(r.device).toBe('cpu');
    expect(worstRel(node.slice(0, 5), r.losses)).toBeLessThan(1e-6);
    // compiled for the cpu target: the inspector shows its JavaScript kernels
    const c = await cpuPage.evaluate(() => window.demo.train({ mode: 'compiled', steps: 5 }));
    expect(c.device).toBe('cpu');
    expect(worstRel(node.slice(0, 5), c.losses)).toBeLessThan(1e-5);
    expect(c.kernels.length).toBeGreaterThan(0);
    expect(await cpuPage.$$eval('#inspector .kernel', (els) => els.length)).toBe(c.kernels.length);
    expect(await cpuPage.textContent('#inspector .source.js')).toContain(`// fuses %${c.kernels[0]!.nodes[0]}`);

    // the second tab: the digits CNN, a few batches on the cpu, equal to the example's loop in Node
    const d = await cpuPage.evaluate(() => window.demo.trainDigits({ device: 'cpu', epochs: 1, maxBatches: 6 }));
    expect(d.images).toBe(1797);
    expect(d.losses).toHaveLength(6);
    expect(d.losses.at(-1)!).toBeLessThan(d.losses[0]!);
    expect(d.accuracies).toHaveLength(1);
    expect(d.accuracies[0]).toBeGreaterThan(0.2); // chance is 0.1
    expect(worstRel(await digitsInNode(6), d.losses)).toBeLessThan(1e-5);
    expect(await cpuPage.$$eval('#digits-samples .sample', (els) => els.length)).toBe(16);
    await cpuPage.close();
    expect(errors).toEqual([]);
  });

  // UPDATE_SCREENSHOT=1 refreshes the README's picture; otherwise it goes to a temp folder, so a
  // test run leaves the work tree clean
  it('saves the screenshot the README shows (docs/demo.png with UPDATE_SCREENSHOT=1)', async () => {
    await page.evaluate(() => window.scrollTo(0, 0));
    const shot = process.env.UPDATE_SCREENSHOT === '1' ? join(ROOT, 'docs/demo.png') : join(mkdtempSync(join(tmpdir(), 'wgtorch-shot-')), 'demo.png');
    await page.screenshot({ path: shot, fullPage: false });
    expect(existsSync(shot)).toBe(true);
    expect(pageErrors).toEqual([]);
  });
});
