/**
 * torch.compile: the TwoLayerNet and the DynamicNet compiled (WGSL on WebGPU; JavaScript and
 * Wasm on the cpu). Prints the fused IR (each node tagged with the kernel it runs in), one
 * generated kernel, and the cache statistics: the DynamicNet compiles once per depth, then only hits.
 *
 *   npx tsx examples/10-compile.ts            # webgpu (falls back to cpu without an adapter)
 */
import * as torch from '../src/index.ts';
import { isMain } from './_cli.ts';
import { TwoLayerNet } from './07-custom-module.ts';
import { DynamicNet } from './08-dynamic-net.ts';

export async function main(opts: { log?: (line: string) => void; steps?: number } = {}) {
  const log = opts.log ?? console.log;
  const device: torch.Device = (await torch.webgpu.isAvailable()) ? 'webgpu' : 'cpu';
  torch.manualSeed(0);
  const [N, D_in, H, D_out] = [64, 1000, 100, 10];
  const x = torch.randn(N, D_in, { device });
  const y = torch.randn(N, D_out, { device });
  const lossFn = new torch.nn.MSELoss({ reduction: 'sum' });

  // 1. A compiled model: forward and backward become a few fused kernels.
  const model = new TwoLayerNet(D_in, H, D_out).to(device);
  const fast = torch.compile(model);
  const loss = lossFn(fast(x), y);
  loss.backward();
  log(`TwoLayerNet loss ${(await loss.item()).toFixed(4)} on ${device}`);
  const g = fast.graphs()[0];
  log(g.fusedIR);
  log('');
  if (g.kernels.length) {
    const k = g.kernels[0];
    log(`one generated kernel (${k.name}, from ${k.scopes.join(', ') || 'the top level'}):`);
    log(k.source);
  }
  log(`stats: ${JSON.stringify(g.stats)}`);

  // 2. A compiled DynamicNet: JavaScript control flow picks the depth; each new depth is a
  // new graph (compiled once), every repeat is a cache hit.
  const dyn = new DynamicNet(D_in, H, D_out).to(device);
  const fastDyn = torch.compile(dyn);
  const steps = opts.steps ?? 12;
  for (let t = 0; t < steps; t++) {
    const l = lossFn(fastDyn(x), y);
    l.backward();
    await l.item();
  }
  const info = fastDyn.cacheInfo();
  log(`DynamicNet: ${steps} calls, ${info.graphs} graphs compiled (one per depth seen), ${info.hits} cache hits, ${info.misses} misses`);
  return { kernels: g.stats.kernels, cache: info };
}

if (isMain(import.meta.url)) await main();
