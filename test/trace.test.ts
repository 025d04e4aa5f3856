/** Tracer, IR printer/verifier/hash, the symbolic backward and the reference interpreter. */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { Graph } from '../src/ir/graph.ts';
import { verifyGraph } from '../src/ir/verify.ts';
import { getBackend } from '../src/runtime/backend.ts';
import { interpret } from '../src/runtime/interpreter.ts';
import { programInputs } from '../src/trace/program.ts';
import { Tensor } from '../src/eager/tensor.ts';
import { DynamicNet, MyReLU, TwoLayerNet } from './helpers/compile-util.ts';

/** Eager grads of loss(model) vs the traced backward run by the interpreter. */
function compareWithEager(model: torch.nn.Module, fwd: (x: torch.Tensor) => torch.Tensor, x: torch.Tensor, y: torch.Tensor) {
  const lossOf = (xx: torch.Tensor, yy: torch.Tensor) => fwd(xx).sub(yy).pow(2).sum();
  model.zeroGrad();
  const eagerLoss = lossOf(x, y);
  eagerLoss.backward();
  const eager = new Map(model.namedParameters().filter(([, p]) => p.grad).map(([n, p]) => [n, p.grad!.toArraySync()]));

  const traced = torch.trace(lossOf, x, y, { backward: true });
  traced.verify();
  const p = traced.program;
  const seed = torch.ones([]);
  const values = interpret(p.graph, (n) => programInputs(p, [seed]).get(n.id)!, getBackend('cpu'));
  const loss = values.get(p.graph.outputs.find((o) => o.role === 'output')!.id) as unknown as { data: Float32Array };
  expect(loss.data[0]).toBeCloseTo(eagerLoss.itemSync(), 4);
  const names = new Map(model.namedParameters().map(([n, q]) => [q as Tensor, n]));
  const grads = p.graph.outputs.filter((o) => o.role === 'grad');
  expect(grads.length).toBe(eager.size);
  grads.forEach((o, i) => {
    const name = names.get(p.gradTargets[i])!;
    const got = (values.get(o.id) as unknown as { data: Float32Array }).data;
    const want = eager.get(name)!;
    let num = 0;
    let den = 0;
    for (let k = 0; k < want.length; k++) {
      num = Math.max(num, Math.abs(got[k] - want[k]));
      den = Math.max(den, Math.abs(want[k]));
    }
    expect(num / den, `${name}`).toBeLessThanOrEqual(1e-6);
  });
  return traced;
}

describe('traced backward equals eager autograd', () => {
  torch.manualSeed(1);
  const x = torch.randn(16, 20);
  const y = torch.randn(16, 3);
  it('TwoLayerNet', () => {
    const m = new TwoLayerNet(20, 12, 3);
    compareWithEager(m, (xx) => m(xx), x, y);
  });
  it('Sequential', () => {
    const m = new torch.nn.Sequential(new torch.nn.Linear(20, 12), new torch.nn.ReLU(), new torch.nn.Linear(12, 3));
    compareWithEager(m, (xx) => m(xx), x, y);
  });
  it('custom Function (MyReLU), its backward traced from its static backward', () => {
    const m = new TwoLayerNet(20, 12, 3);
    const relu = MyReLU.apply;
    const traced = compareWithEager(m, (xx) => m.linear2(relu(m.linear1(xx))), x, y);
    // the custom backward's maskedFill_ shows up as a where in the backward graph
    expect(traced.backward).toMatch(/= where /);
  });
  it.each([0, 1, 2, 3])('DynamicNet depth %i', (depth) => {
    const m = new DynamicNet(20, 12, 3);
    compareWithEager(m, (xx) => m(xx, depth), x, y);
  });
});

describe('IR hash, verifier and printer', () => {
  it('two traces of one model hash equal; another depth hashes differently', () => {
    const m = new DynamicNet(20, 12, 3);
    const x = torch.randn(4, 20);
    const h = (d: number) => torch.trace((xx: torch.Tensor) => m(xx, d), x).hash;
    expect(h(2)).toBe(h(2));
    expect(h(1)).not.toBe(h(2));
    // another instance of the same architecture: the same computation
    const m2 = new DynamicNet(20, 12, 3);
    expect(torch.trace((xx: torch.Tensor) => m2(xx, 2), x).hash).toBe(h(2));
    // another batch size changes the hash (shapes are part of the key)
    expect(torch.trace((xx: torch.Tensor) => m(xx, 2), torch.randn(5, 20)).hash).not.toBe(h(2));
  });

  it('scalar values do not change the hash, the structure does', () => {
    const x = torch.randn(3);
    expect(torch.trace((t: torch.Tensor) => t.mul(2), x).hash).toBe(torch.trace((t: torch.Tensor) => t.mul(3), x).hash);
    expect(torch.trace((t: torch.Tensor) => t.mul(2), x).hash).not.toBe(torch.trace((t: torch.Tensor) => t.add(2), x).hash);
  });

  it('a hand-broken graph fails the verifier with a message naming the node', () => {
    const g = torch.trace((a: torch.Tensor, b: torch.Tensor) => a.mm(b).relu(), torch.randn(2, 3), torch.randn(3, 4)).graph;
    expect(() => verifyGraph(g)).not.toThrow();
    const mm = g.nodes.find((n) => n.op === 'mm')!;
    mm.shape = [2, 5];
    expect(() => verifyGraph(g)).toThrow(new RegExp(`node %${mm.id} .*mm.*claims float32\\[2, 5\\], the registry derives float32\\[2, 4\\]`));
    const bad = new Graph();
    const a = bad.add({ op: 'input', inputs: [], attrs: {}, shape: [2], dtype: 'float32', phase: 'forward' });
    bad.add({ op: 'add', inputs: [a.id, 7], attrs: {}, shape: [2], dtype: 'float32', phase: 'forward' });
    expect(() => verifyGraph(bad)).toThrow(/node %1 .* uses %7, which is not defined before it/);
  });

  it('prints the seed TwoLayerNet forward and backward (snapshot)', async () => {
    const m = new TwoLayerNet(1000, 100, 10);
    const lossFn = new torch.nn.MSELoss({ reduction: 'sum' });
    const g = torch.trace((x: torch.Tensor, y: torch.Tensor) => lossFn(m(x), y), torch.randn(64, 1000), torch.randn(64, 10), {
      backward: true,
    });
    await expect(String(g)).toMatchFileSnapshot('__snapshots__/two-layer-net.ir');
  });

  it('records backward() called inside the function, and the optimizer update after it', () => {
    const m = new TwoLayerNet(8, 4, 2);
    const opt = new torch.optim.SGD(m.parameters(), { lr: 0.1 });
    const x = torch.randn(3, 8);
    const g = torch.trace(() => {
      const loss = m(x).pow(2).sum();
      opt.zeroGrad();
      loss.backward();
      opt.step();
      return loss;
    });
    expect(g.backward).not.toBeNull();
    expect(g.update).toMatch(/= add %/);
    const roles = g.graph.outputs.map((o) => o.role);
    expect(roles.filter((r) => r === 'mutation').length).toBe(4); // the four parameters
    expect(roles.filter((r) => r === 'grad').length).toBe(4);
    // nothing ran: the parameters keep their values, and their .grad is a traced value
    expect(m.linear1.weight.grad).not.toBeNull();
  });
});

describe('untraceable code fails clearly', () => {
  it('item() inside a trace names the op, the line and the way out', () => {
    const x = torch.randn(3);
    let err: Error | null = null;
    try {
      torch.trace((t: torch.Tensor) => {
        const s = t.sum();
        void s.itemSync();
        return s;
      }, x);
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).toMatch(/itemSync on a tensor of shape \[\] cannot be traced/);
    expect(err?.message).toMatch(/trace\.test\.ts:\d+:\d+/);
    expect(err?.message).toMatch(/eagerly/);
  });
  it('using a tensor as a JavaScript number inside a trace fails', () => {
    expect(() => torch.trace((t: torch.Tensor) => (+t.sum() > 0 ? t : t.neg()), torch.randn(3))).toThrow(/converting a tensor to a JavaScript number .* cannot be traced/);
  });
  it('a traced value kept outside its trace fails when used', () => {
    let leaked: torch.Tensor | null = null;
    torch.trace((t: torch.Tensor) => (leaked = t.mul(2)), torch.randn(3));
    expect(() => leaked!.add(1).itemSync()).toThrow(/add: an input of shape \[3\] is a value recorded by torch.compile \/ torch.trace, used outside/);
  });
});
