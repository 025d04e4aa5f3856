/**
 * Eager bmm whose matrices need more workgroups in x or y than the device allows per
 * dimension: the grid is folded into a linear count (codegen-wgsl/fold.ts), as compiled
 * kernels do, instead of refusing. This file's device reports 256 workgroups per dimension,
 * so shapes of a few MB run folded; each result (and gradients, which are bmms too) must equal
 * the cpu's, whose GEMM shares nothing with the WGSL template.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { matmulDispatch, matmulVariantFor } from '../src/codegen-wgsl/matmul.ts';
import { disableWaitSleep } from './helpers/webgpu-workarounds.ts';

type T = torch.Tensor;
const LIMIT = 256;
// this file's worker creates the device itself, before anything else asks for one
const available = await torch.webgpu.init({ limits: { maxComputeWorkgroupsPerDimension: LIMIT } }).then(
  () => true,
  () => false,
);
if (available) disableWaitSleep();

async function maxDiff(got: T, want: T): Promise<number> {
  expect(got.shape).toEqual(want.shape);
  const [g, w] = [await got.toArray(), await want.toArray()];
  let worst = 0;
  for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs(g[i]! - w[i]!) / (1 + Math.abs(w[i]!)));
  return worst;
}

describe.runIf(available)(`eager bmm on a device with ${LIMIT} workgroups per dimension`, () => {
  it('the device reports the lowered limit', () => {
    expect(torch.webgpu.context().limits.maxComputeWorkgroupsPerDimension).toBe(LIMIT);
  });

  // a matmul tile covers at most 128 rows and 128 columns, so 32,769 of either needs more than
  // 256 tiles whichever variant runs
  // (a broadcast operand's gradient sums over the batch in a reduction with one workgroup per
  // output element, which this toy limit cannot hold: gradients only where nothing broadcasts)
  const cases: [string, number[], number[], boolean][] = [
    ['rows past the limit, with gradients', [3, 32769, 5], [3, 5, 6], true],
    ['columns past the limit, B broadcast over the batch', [2, 3, 4], [1, 4, 32772], false],
    ['two batch levels, A broadcast over the outer one', [2, 32769, 2], [2, 1, 2, 5], false],
  ];
  it.each(cases)('%s: %j x %j equals the cpu', async (_name, sa, sb, grads) => {
    const [M, K] = sa.slice(-2);
    const N = sb[sb.length - 1]!;
    const [gx, gy] = matmulDispatch(M!, N, matmulVariantFor(M!, N, K!, false));
    expect(Math.max(gx, gy), 'the default variant needs more workgroups than the limit').toBeGreaterThan(LIMIT);
    torch.manualSeed(17);
    const a = torch.randn(sa);
    const b = torch.randn(sb);
    const ga = a.to('webgpu').requiresGrad_();
    const gb = b.to('webgpu').requiresGrad_();
    const c = ga.matmul(gb);
    const ca = a.clone().requiresGrad_();
    const cb = b.clone().requiresGrad_();
    const want = ca.matmul(cb);
    expect(await maxDiff(c, want)).toBeLessThan(1e-5);
    if (!grads) return;
    // the gradients are bmms of the transposed operands: folded as well
    const up = torch.randn(want.shape);
    c.backward(up.to('webgpu'));
    want.backward(up);
    expect(await maxDiff(ga.grad!, ca.grad!), 'grad of A').toBeLessThan(1e-4);
    expect(await maxDiff(gb.grad!, cb.grad!), 'grad of B').toBeLessThan(1e-4);
  }, 60_000);
});
