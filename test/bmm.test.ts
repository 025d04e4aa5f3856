/**
 * The bmm primitive (batched matmul with broadcast batch dims) on both devices, eager and
 * compiled: what it allocates (no buffer larger than its operands and output: no
 * [..., M, K, N] product, no expanded operand), its values against one mm per matrix and
 * the reference interpreter, its gradients against finite differences (test/gradcheck.test.ts
 * has the primitive's cases; here the compiled ones), and attention's scores matmul carrying
 * the scale and the causal mask as its epilogue, in one kernel. PyTorch's own numbers for
 * matmul_3d, matmul_bcast, bmm and attention are test/models-ops-parity.test.ts's.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import type { Device } from '../src/index.ts';
import { testDevices } from './helpers/devices.ts';
import { expectTensorClose, interpretOutputs, interpreterBinding } from './helpers/compile-util.ts';
import { partsOf } from '../src/passes/kernel-ir.ts';
import type { Kernel } from '../src/passes/kernel-ir.ts';

type T = torch.Tensor;

const largestBuffer = (device: Device) => (device === 'cpu' ? torch.cpu.counters().largestBuffer : torch.webgpu.counters().largestBuffer);
const resetCounters = (device: Device) => (device === 'cpu' ? torch.cpu.resetCounters() : torch.webgpu.resetCounters());

/** one mm per matrix, each batch index of an operand of batch size 1 reused */
function perMatrix(a: T, b: T): T {
  const batch = a.shape.slice(0, -2).map((n, d) => Math.max(n, b.shape[d]));
  if (batch.length === 0) return a.mm(b);
  const pick = (t: T, i: number) => t.select(0, t.shape[0] === 1 ? 0 : i);
  const rows: T[] = [];
  for (let i = 0; i < batch[0]; i++) rows.push(perMatrix(pick(a, i), pick(b, i)));
  return torch.stack(rows, 0);
}

const kernelsOf = (g: ReturnType<ReturnType<typeof torch.compile>['graphs']>[number]) => g.kernels.flatMap((k) => partsOf(k.kernel).map((p) => ({ part: k.part, kernel: p })));
type Graph = Parameters<typeof kernelsOf>[0];
const forwardNode = (g: Graph, id: number) => g.plans.forward.graph.node(id);
const opsCovered = (g: Graph, k: Kernel) => k.covers.nodes.map((id) => forwardNode(g, id).op);

describe.each(testDevices())('bmm on %s', (device) => {
  it('bmm of [8, 256, 64] x [8, 64, 256] allocates no buffer larger than its output, eager (with backward) and compiled', async () => {
    torch.manualSeed(3);
    const a = torch.randn([8, 256, 64], { device, requiresGrad: true });
    const b = torch.randn([8, 64, 256], { device, requiresGrad: true });
    const outBytes = 8 * 256 * 256 * 4;
    resetCounters(device);
    const c = torch.bmm(a, b);
    await c.toArray();
    const fwd = largestBuffer(device);
    expect(fwd, 'the output itself').toBe(outBytes);
    c.backward(torch.onesLike(c));
    await a.grad!.toArray();
    expect(largestBuffer(device), 'backward: gradients and transposed operands only').toBeLessThanOrEqual(outBytes);
    await expectTensorClose(c, perMatrix(a.detach(), b.detach()), 1e-5, 'bmm vs one mm per matrix');

    const fast = torch.compile((x: T, y: T) => x.bmm(y));
    resetCounters(device);
    const cc = fast(a.detach(), b.detach());
    await cc.toArray();
    expect(largestBuffer(device), 'compiled').toBeLessThanOrEqual(outBytes);
    await expectTensorClose(cc, c, 1e-6, 'compiled bmm vs eager');
  });

  it('more matrices than a dispatch may have in z (70,000): eager and compiled equal the elementwise product', async () => {
    torch.manualSeed(7);
    const a = torch.randn([70000, 1, 3], { device });
    const b = torch.randn([70000, 3, 1], { device });
    const want = a.mul(b.transpose(1, 2)).sum(-1, true);
    await expectTensorClose(a.bmm(b), want, 1e-5, 'eager bmm');
    await expectTensorClose(torch.compile((x: T, y: T) => x.bmm(y))(a, b), want, 1e-5, 'compiled bmm');
  });

  it('matmul with broadcast batch dims reads the broadcast operand for every matrix (no expanded copy)', async () => {
    torch.manualSeed(4);
    // a is read 16 times over dim 1, b 8 times over dim 0: expanded copies would be 8x and 16x larger than they are
    const a = torch.randn([8, 1, 32, 64], { device });
    const b = torch.randn([1, 16, 64, 8], { device });
    resetCounters(device);
    const c = a.matmul(b);
    await c.toArray();
    expect(c.shape).toEqual([8, 16, 32, 8]);
    expect(largestBuffer(device)).toBe(8 * 16 * 32 * 8 * 4);
    await expectTensorClose(c, perMatrix(a.expand(8, 16, 32, 64).contiguous(), b.expand(8, 16, 64, 8).contiguous()), 1e-5, 'broadcast matmul');
  });

  it('compiled batched products (broadcast, transposed and strided views, 2-D x batched, rank 5) equal eager and the interpreter, gradients too', async () => {
    torch.manualSeed(5);
    const cases: [string, number[][], (...x: T[]) => T][] = [
      ['bmm', [[3, 5, 7], [3, 7, 4]], (a, b) => a.bmm(b)],
      ['broadcast', [[2, 1, 5, 6], [1, 3, 6, 4]], (a, b) => a.matmul(b)],
      ['k transposed', [[2, 3, 9, 8], [2, 3, 9, 8]], (q, k) => q.matmul(k.transpose(-2, -1))],
      ['both transposed', [[2, 8, 5], [2, 6, 8]], (a, b) => a.transpose(1, 2).matmul(b.transpose(1, 2))],
      ['heads of a strided view', [[2, 9, 12], [2, 9, 12]], (x, y) => {
        const q = x.view(2, 9, 3, 4).transpose(1, 2);
        const k = y.view(2, 9, 3, 4).transpose(1, 2);
        return q.matmul(k.transpose(-2, -1)).mul(0.5);
      }],
      ['2-D x batched', [[5, 6], [4, 6, 3]], (a, b) => a.matmul(b)],
      ['rank 5, mixed broadcast', [[2, 1, 3, 4, 5], [1, 2, 3, 5, 4]], (a, b) => a.matmul(b)],
    ];
    for (const [label, shapes, fn] of cases) {
      const xs = shapes.map((s) => torch.randn(s, { device, requiresGrad: true }));
      const eager = fn(...xs);
      const w = torch.randnLike(eager);
      eager.mul(w).sum().backward();
      const grads = xs.map((x) => x.grad!);
      xs.forEach((x) => (x.grad = null));
      const fast = torch.compile(fn);
      const out = fast(...xs);
      await expectTensorClose(out, eager, 1e-5, `${label}: compiled vs eager`);
      out.mul(w).sum().backward();
      for (const [i, x] of xs.entries()) await expectTensorClose(x.grad, grads[i]!, 1e-5, `${label}: compiled gradient ${i}`);
      // the interpreter runs the traced graph op by op on the cpu
      const host = await Promise.all(xs.map(async (x) => torch.tensor(await x.toArray(), { shape: x.shape })));
      const traced = torch.trace(fn, ...host);
      const [ref] = await interpretOutputs(traced.program.graph, interpreterBinding(traced.program));
      expect(Array.from(ref!).length).toBe(eager.numel());
      await expectTensorClose(torch.tensor(ref!, { shape: eager.shape }), torch.tensor(await eager.toArray(), { shape: eager.shape }), 1e-5, `${label}: interpreter vs eager`);
      const g = fast.graphs()[0]!;
      const mms = kernelsOf(g).filter((k) => k.part === 'forward' && k.kernel.body.kind === 'matmul');
      expect(mms.length, `${label}: one matmul kernel forward`).toBe(1);
      // views are read through strides (a rank-5 batch with three broadcast patterns is the exception: it is expanded)
      if (!label.startsWith('rank 5')) expect(kernelsOf(g).filter((k) => k.part === 'forward').map((k) => k.kernel.name), `${label}: no copy kernel`).toEqual([mms[0]!.kernel.name]);
    }
  });

  it("attention: the scores matmul carries the scale, the mask rides in the matmul or the softmax row kernel, and each [B, heads, T, T] value is written once", async () => {
    torch.manualSeed(6);
    const [B, nh, T, hs] = [2, 3, 16, 8];
    const C = nh * hs;
    const mask = torch.tril(torch.ones(T, T)).view(1, 1, T, T).to(device);
    const heads = (x: T) => x.split(C, 2).map((t) => t.view(B, T, nh, hs).transpose(1, 2));
    const causal = () => mask.index(null, null, torch.slice(null, T), torch.slice(null, T)).eq(0);
    const attention = (x: T) => {
      const [q, k, v] = heads(x);
      let att = q.matmul(k.transpose(-2, -1)).mul(1 / Math.sqrt(hs));
      att = att.maskedFill(causal(), -Infinity);
      return att.softmax(-1).matmul(v);
    };
    const sdpa = (x: T) => {
      const [q, k, v] = heads(x);
      return torch.nn.functional.scaledDotProductAttention(q, k, v, { isCausal: true });
    };
    // no softmax after it: the mask (computed after the scores) joins the scores matmul ([hoist])
    const maskedScores = (x: T) => {
      const [q, k] = heads(x);
      const att = q.matmul(k.transpose(-2, -1)).mul(1 / Math.sqrt(hs));
      return att.maskedFill(causal(), 0);
    };
    const x = torch.randn([B, T, 3 * C], { device, requiresGrad: true });
    const attShape = JSON.stringify([B, nh, T, T]);
    for (const [label, fn] of [['as the user writes it', attention], ['scaledDotProductAttention', sdpa], ['masked scores', maskedScores]] as const) {
      const eager = fn(x);
      const w = torch.randnLike(eager);
      eager.mul(w).sum().backward();
      const gx = x.grad!;
      x.grad = null;
      const fast = torch.compile(fn);
      const out = fast(x);
      await expectTensorClose(out, eager, 1e-5, `${label}: compiled vs eager`);
      out.mul(w).sum().backward();
      await expectTensorClose(x.grad, gx, 1e-4, `${label}: compiled gradient`);
      x.grad = null;
      const g = fast.graphs()[0]!;
      const fwd = kernelsOf(g).filter((k) => k.part === 'forward').map((k) => k.kernel);
      const names = fwd.map((k) => k.name).join(' ');
      const scores = fwd.filter((k) => k.body.kind === 'matmul' && k.body.batch.count === B * nh && k.body.N === T);
      expect(scores.length, `${label}: ${names}`).toBe(1);
      const ops = opsCovered(g, scores[0]!);
      expect(ops.some((o) => o === 'mul' || o === 'div'), `${label}: the scale rides in the scores matmul (${names})`).toBe(true);
      expect(scores[0]!.bindings.filter((b) => b.access === 'write').length, `${label}: the scores matmul writes one value`).toBe(1);
      // the mask's where is computed in the scores matmul or in the kernel that reads the scores (the softmax row), not alone
      const where = fwd.filter((k) => k.covers.nodes.some((id) => forwardNode(g, id).op === 'where' && JSON.stringify(forwardNode(g, id).shape) === attShape));
      expect(where.length, `${label}: one kernel applies the mask (${names})`).toBe(1);
      expect(where[0] === scores[0] || where[0]!.covers.nodes.some((id) => ['max', 'amax'].includes(forwardNode(g, id).op)), `${label}: the mask in ${where[0]!.name}`).toBe(true);
      if (where[0] === scores[0]) {
        // the mask is [T, T] read for every matrix: batch stride 0
        const body = scores[0]!.body as Extract<Kernel['body'], { kind: 'matmul' }>;
        expect(body.inputs.some((i) => i.at === 'rowcol' && i.batch !== undefined && i.batch[0] === 0 && i.batch[1] === 0), JSON.stringify(body.inputs)).toBe(true);
      }
      if (label === 'masked scores') expect(where[0], `${label}: [hoist] put the mask into the scores matmul (${names})`).toBe(scores[0]);
      // every [B, heads, T, T] value of the forward is written by one kernel only, once (the scores; the row kernel's results)
      const written = fwd.flatMap((k) => k.bindings.filter((b) => b.access === 'write' && JSON.stringify(forwardNode(g, b.value).shape) === attShape).map((b) => b.value));
      expect(new Set(written).size, `${label}: ${names}`).toBe(written.length);
    }
  });
});
