/**
 * Issue 12: attention as the user writes it, with the causal mask held as a registered buffer
 * (examples/13-char-gpt.ts: `bias = tril(ones)`, `att.maskedFill(bias[:, :, :T, :T].eq(0), -inf)`).
 * The mask is a function of a graph input read through a view (a slice from 0 of the buffer,
 * broadcast over batch and heads), so no kernel computes it: the kernels that read it compute
 * `eq` where they read the buffer (rule [recompute-inputs]), and the backward of a compiled
 * model reads the buffer again rather than a saved mask (compile/split.ts). The buffer's values
 * are read on every call: changing its contents changes the compiled result as it does eager's.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { testDevices } from './helpers/devices.ts';
import { expectTensorClose, interpretOutputs, interpreterBinding } from './helpers/compile-util.ts';
import { partsOf } from '../src/passes/kernel-ir.ts';

type T = torch.Tensor;

class CausalAttention extends torch.nn.Module<[T, T, T], T> {
  declare bias: T;
  constructor(block: number) {
    super();
    this.registerBuffer('bias', torch.tril(torch.ones(block, block)).view(1, 1, block, block));
  }
  override forward(q: T, k: T, v: T): T {
    const T_ = q.shape[2]!;
    let att = q.matmul(k.transpose(-2, -1)).mul(1 / Math.sqrt(q.shape[3]!));
    att = att.maskedFill(this.bias.index(null, null, torch.slice(null, T_), torch.slice(null, T_)).eq(0), -Infinity);
    return att.softmax(-1).matmul(v);
  }
}

type CompiledGraph = ReturnType<ReturnType<typeof torch.compile>['graphs']>[number];
const kernelsOf = (g: CompiledGraph, part: 'forward' | 'backward') => g.kernels.filter((k) => k.part === part).flatMap((k) => partsOf(k.kernel));
const nodeOf = (g: CompiledGraph, part: 'forward' | 'backward', id: number) => (part === 'forward' ? g.plans.forward : g.plans.backward!).graph.node(id);

describe.each(testDevices())('causal mask as a registered buffer on %s', (device) => {
  // a block larger than T: the mask is a real slice of the buffer (rows `block` apart)
  const [B, nh, T, hs, block] = [2, 3, 16, 8, 24];

  it('attention: forward is the scores matmul, the softmax row kernel and the PV matmul (no mask kernel); backward has no mask kernel either; equal to eager and the interpreter', async () => {
    torch.manualSeed(11);
    const m = new CausalAttention(block).to(device);
    const qkv = [0, 1, 2].map(() => torch.randn([B, nh, T, hs], { device, requiresGrad: true }));
    const eager = m(...(qkv as [T, T, T]));
    const w = torch.randnLike(eager);
    eager.mul(w).sum().backward();
    const grads = qkv.map((x) => x.grad!);
    qkv.forEach((x) => (x.grad = null));

    const fast = torch.compile(m);
    const out = fast(...(qkv as [T, T, T]));
    await expectTensorClose(out, eager, 1e-5, 'compiled vs eager');
    out.mul(w).sum().backward();
    for (const [i, x] of qkv.entries()) await expectTensorClose(x.grad, grads[i]!, 1e-4, `compiled gradient ${i}`);

    // the interpreter runs the traced graph op by op on the cpu
    const host = await Promise.all(qkv.map(async (x) => torch.tensor(await x.toArray(), { shape: x.shape })));
    const hostModel = new CausalAttention(block);
    const traced = torch.trace((q: T, k: T, v: T) => hostModel(q, k, v), ...host);
    const [ref] = await interpretOutputs(traced.program.graph, interpreterBinding(traced.program));
    await expectTensorClose(torch.tensor(ref!, { shape: eager.shape }), torch.tensor(await eager.toArray(), { shape: eager.shape }), 1e-5, 'interpreter vs eager');

    const g = fast.graphs()[0]!;
    const fwd = kernelsOf(g, 'forward');
    const bwd = kernelsOf(g, 'backward');
    const names = (ks: typeof fwd) => ks.map((k) => k.name).join(' ');
    expect(fwd.map((k) => k.body.kind), names(fwd)).toEqual(['matmul', 'row', 'matmul']);
    // the mask's eq is computed inside the kernel that applies it, from the buffer itself
    const eqIn = (ks: typeof fwd, part: 'forward' | 'backward') => ks.filter((k) => k.covers.nodes.some((id) => nodeOf(g, part, id).op === 'eq'));
    expect(eqIn(fwd, 'forward').map((k) => k.body.kind), names(fwd)).toEqual(['row']);
    expect(fwd.every((k) => k.body.kind !== 'elementwise' && k.body.kind !== 'index'), `no mask or slice kernel: ${names(fwd)}`).toBe(true);
    // the forward saves no mask: the backward reads the buffer
    const bias = g.plans.forward.graph.nodes.find((n) => n.op === 'input' && JSON.stringify(n.shape) === JSON.stringify([1, 1, block, block]))!;
    expect(bias, 'the buffer is a graph input').toBeDefined();
    const savedBools = g.plans.forward.graph.outputs.filter((o) => g.plans.forward.graph.node(o.id).dtype === 'bool');
    expect(savedBools, 'no saved mask').toEqual([]);
    // backward: dP = g V^T, dV = P^T g, the softmax gradient's row kernel (with the mask), dQ, dK, and dK's transposed copy out
    expect(bwd.filter((k) => k.body.kind === 'matmul').length, names(bwd)).toBe(4);
    expect(bwd.filter((k) => k.body.kind === 'row').length, names(bwd)).toBe(1);
    expect(bwd.length, names(bwd)).toBeLessThanOrEqual(6);
    expect(bwd.every((k) => k.body.kind !== 'index'), names(bwd)).toBe(true);
    for (const k of eqIn(bwd, 'backward')) expect(k.body.kind, names(bwd)).not.toBe('elementwise');
  });

  it('masked scores with no softmax: the scores matmul carries the scale, the eq of the buffer and the maskedFill in its epilogue, one kernel', async () => {
    torch.manualSeed(13);
    const m = new CausalAttention(block).to(device);
    const scores = (q: T, k: T) => {
      const att = q.matmul(k.transpose(-2, -1)).mul(1 / Math.sqrt(hs));
      return att.maskedFill(m.bias.index(null, null, torch.slice(null, T), torch.slice(null, T)).eq(0), 0);
    };
    const [q, k] = [0, 1].map(() => torch.randn([B, nh, T, hs], { device }));
    const fast = torch.compile(scores);
    await expectTensorClose(fast(q!, k!), scores(q!, k!), 1e-5, 'compiled vs eager');
    const g = fast.graphs()[0]!;
    const ks = kernelsOf(g, 'forward');
    expect(ks.map((x) => x.name)).toHaveLength(1);
    const body = ks[0]!.body;
    expect(body.kind).toBe('matmul');
    if (body.kind !== 'matmul') return;
    expect(body.epilogue.map((e) => e.op)).toEqual(['eq', 'mul', 'where']);
    // the buffer is read for every matrix (batch stride 0), rows `block` apart
    expect(body.inputs.some((i) => i.at === 'rowcol' && i.strides[0] === block && i.batch?.[0] === 0 && i.batch?.[1] === 0), JSON.stringify(body.inputs)).toBe(true);
  });

  it("the buffer's contents are read on every call: changing it changes the compiled result as it changes eager's", async () => {
    torch.manualSeed(12);
    const m = new CausalAttention(block).to(device);
    const [q, k, v] = [0, 1, 2].map(() => torch.randn([B, nh, T, hs], { device }));
    const fast = torch.compile(m);
    const before = fast(q!, k!, v!);
    await expectTensorClose(before, m(q!, k!, v!), 1e-5, 'causal mask');
    // a banded mask: each position sees itself and the two before it
    const band = torch.tril(torch.ones(block, block)).sub(torch.tril(torch.ones(block, block), -3)).view(1, 1, block, block).to(device);
    torch.noGrad(() => m.bias.copy_(band));
    const after = fast(q!, k!, v!);
    const want = m(q!, k!, v!);
    await expectTensorClose(after, want, 1e-5, 'banded mask');
    expect(fast.cacheInfo().graphs, 'the same graph').toBe(1);
    const d = await after.sub(before).abs().max().item();
    expect(d, 'the new mask changed the result').toBeGreaterThan(1e-3);
  });
});
