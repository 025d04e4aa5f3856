/** The autograd engine as a PyTorch user sees it: .grad, retainGrad, noGrad, autograd.grad, custom Functions. */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { testDevices } from './helpers/devices.ts';
import { MyReLU } from './helpers/compile-util.ts'; // the seed's MyReLU, exactly as in API.md

const vals = (t: torch.Tensor | null) => Array.from(t!.toArraySync() as ArrayLike<number>);
function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-5) {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - want[i]), `element ${i}: ${got[i]} vs ${want[i]}`).toBeLessThanOrEqual(tol * (1 + Math.abs(want[i])));
}

describe('gradients of leaves', () => {
  it('accumulate across two backward calls', () => {
    const x = torch.tensor([1, 2, 3], { requiresGrad: true });
    x.mul(x).sum().backward(); // 2x
    expect(vals(x.grad)).toEqual([2, 4, 6]);
    const g = x.grad;
    x.mul(3).sum().backward(); // + 3
    expect(vals(x.grad)).toEqual([5, 7, 9]);
    expect(x.grad).toBe(g); // accumulated in place into the same tensor, as in PyTorch
    expect(x.grad!.requiresGrad).toBe(false);
    expect(x.grad!.gradFn).toBeNull();
  });

  it('the grad buffer is not shared with another leaf or the seed', () => {
    const a = torch.tensor([1, 2], { requiresGrad: true });
    const b = torch.tensor([3, 4], { requiresGrad: true });
    a.add(b).sum().backward(); // both get the same upstream gradient
    torch.noGrad(() => a.grad!.add_(10));
    expect(vals(a.grad)).toEqual([11, 11]);
    expect(vals(b.grad)).toEqual([1, 1]);
  });

  it('retainGrad keeps the gradient of a non-leaf; non-leaves without it have none', () => {
    const x = torch.tensor([1, -2], { requiresGrad: true });
    const h = x.mul(2);
    const k = h.mul(h);
    h.retainGrad();
    k.sum().backward();
    expect(vals(h.grad)).toEqual([4, -8]); // 2h
    expect(vals(x.grad)).toEqual([8, -16]); // 2h * 2
    expect(k.grad).toBeNull();
    expect(h.isLeaf).toBe(false);
  });

  it('a diamond graph (x used on two paths) accumulates both contributions', () => {
    const x = torch.tensor([1, 2], { requiresGrad: true });
    const a = x.mul(x); // x^2
    const b = a.add(x); // x^2 + x
    b.mul(a).sum().backward(); // d/dx (x^4 + x^3) = 4x^3 + 3x^2
    expect(vals(x.grad)).toEqual([7, 44]);
  });

  it('x used twice in one op (x * x) and across ops', () => {
    const x = torch.tensor([3, -1], { requiresGrad: true });
    x.mul(x).add(x.exp()).sum().backward();
    expectClose(vals(x.grad), [6 + Math.exp(3), -2 + Math.exp(-1)]);
  });

  it('gradient through expand and implicit broadcasting is reduced to the input shape', () => {
    const x = torch.tensor([1, 2], { requiresGrad: true });
    const m = torch.arange(6).reshape(3, 2).float(); // [[0,1],[2,3],[4,5]]
    x.expand(3, 2).mul(m).sum().backward();
    expect(x.grad!.shape).toEqual([2]);
    expect(vals(x.grad)).toEqual([0 + 2 + 4, 1 + 3 + 5]);

    const col = torch.tensor([[1], [2], [3]], { requiresGrad: true }); // [3,1]
    const row = torch.tensor([10, 20], { requiresGrad: true }); // [2]
    col.mul(row).mul(m).sum().backward(); // out[i,j] = col[i] row[j] m[i,j]
    expect(col.grad!.shape).toEqual([3, 1]);
    expect(vals(col.grad)).toEqual([0 * 10 + 1 * 20, 2 * 10 + 3 * 20, 4 * 10 + 5 * 20]);
    expect(vals(row.grad)).toEqual([1 * 0 + 2 * 2 + 3 * 4, 1 * 1 + 2 * 3 + 3 * 5]);

    const s = torch.tensor(2, { requiresGrad: true }); // 0-d
    s.mul(m).sum().backward();
    expect(s.grad!.shape).toEqual([]);
    expect(vals(s.grad)).toEqual([15]);
  });

  it('backward with an explicit gradient tensor', () => {
    const x = torch.tensor([1, 2, 3], { requiresGrad: true });
    const y = x.mul(x);
    y.backward(torch.tensor([1, 0.5, -1]));
    expect(vals(x.grad)).toEqual([2, 2, -6]); // 2x * g
  });

  it('backward with a gradient and options', () => {
    const x = torch.tensor([1, 2], { requiresGrad: true });
    const y = x.exp();
    y.backward(torch.ones(2), { retainGraph: true });
    y.backward(torch.ones(2));
    expectClose(vals(x.grad), [2 * Math.exp(1), 2 * Math.exp(2)]);
  });
});

describe('grad mode', () => {
  it('noGrad returns the callback value and records no gradFn', () => {
    const x = torch.ones(2, { requiresGrad: true });
    const r = torch.noGrad(() => x.mul(2));
    expect(r.gradFn).toBeNull();
    expect(r.requiresGrad).toBe(false);
    expect(vals(r)).toEqual([2, 2]);
    expect(torch.noGrad(() => 42)).toBe(42);
    expect(torch.isGradEnabled()).toBe(true);
  });

  it('noGrad restores the mode when the callback throws', () => {
    expect(() =>
      torch.noGrad(() => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(torch.isGradEnabled()).toBe(true);
  });

  it('enableGrad inside noGrad records history again', () => {
    const x = torch.ones(2, { requiresGrad: true });
    const [inner, after] = torch.noGrad(() => {
      const i = torch.enableGrad(() => x.mul(2));
      return [i, x.mul(2)];
    });
    expect(inner.gradFn?.name).toBe('MulBackward');
    expect(after.gradFn).toBeNull();
    inner.sum().backward();
    expect(vals(x.grad)).toEqual([2, 2]);
  });
});

describe('torch.autograd.grad', () => {
  it('returns gradients without touching .grad', () => {
    const x = torch.tensor([1, 2, 3], { requiresGrad: true });
    const w = torch.tensor([0.5, 1, 2], { requiresGrad: true });
    const y = x.mul(x).mul(w).sum();
    const [gx, gw] = torch.autograd.grad(y, [x, w]);
    expect(vals(gx)).toEqual([1, 4, 12]); // 2 x w
    expect(vals(gw)).toEqual([1, 4, 9]); // x^2
    expect(x.grad).toBeNull();
    expect(w.grad).toBeNull();
  });

  it('allowUnused gives null for an input that is not in the graph', () => {
    const x = torch.tensor([1, 2], { requiresGrad: true });
    const z = torch.tensor([5], { requiresGrad: true });
    const [gx, gz] = torch.autograd.grad(x.mul(3).sum(), [x, z], { allowUnused: true });
    expect(vals(gx)).toEqual([3, 3]);
    expect(gz).toBeNull();
    expect(z.grad).toBeNull();
  });

  it('gradients with respect to a non-leaf, and gradOutputs for a non-scalar', () => {
    const x = torch.tensor([1, 2], { requiresGrad: true });
    const h = x.mul(2);
    const y = h.mul(h); // [4, 16]
    const [gh] = torch.autograd.grad(y, h, { gradOutputs: torch.tensor([1, -1]) });
    expect(vals(gh)).toEqual([4, -8]); // 2h * g
    expect(x.grad).toBeNull();
  });

  it('retainGraph lets autograd.grad and backward run over the same graph', () => {
    const x = torch.tensor([2], { requiresGrad: true });
    const y = x.pow(3).sum();
    const [g] = torch.autograd.grad(y, x, { retainGraph: true });
    expect(vals(g)).toEqual([12]);
    y.backward();
    expect(vals(x.grad)).toEqual([12]);
  });
});

describe('custom autograd.Function', () => {
  it('MyReLU.apply, also unbound, gives the same values and grads as clamp', () => {
    torch.manualSeed(3);
    const x = torch.randn(8, 5);
    const w1 = torch.randn(5, 6, { requiresGrad: true });
    const w2 = torch.randn(6, 2, { requiresGrad: true });
    const relu = MyReLU.apply; // works unbound too
    const yPred = relu(x.mm(w1)).mm(w2);
    expect(yPred.shape).toEqual([8, 2]);
    yPred.pow(2).sum().backward();
    const g1 = vals(w1.grad);
    const g2 = vals(w2.grad);
    const out1 = vals(yPred);

    w1.grad = null;
    w2.grad = null;
    const ref = x.mm(w1).clamp({ min: 0 }).mm(w2);
    ref.pow(2).sum().backward();
    expect(out1).toEqual(vals(ref));
    expectClose(g1, vals(w1.grad));
    expectClose(g2, vals(w2.grad));
    expect(g1.some((v) => v !== 0)).toBe(true);
  });

  it('gradFn is named after the class, and the output requires grad', () => {
    const x = torch.tensor([-1, 2], { requiresGrad: true });
    const y = MyReLU.apply(x);
    expect(y.gradFn?.name).toBe('MyReLUBackward');
    expect(y.requiresGrad).toBe(true);
    expect(torch.noGrad(() => MyReLU.apply(x)).gradFn).toBeNull();
  });

  it('ctx.savedTensors after a backward without retainGraph throws', () => {
    let saved: torch.autograd.Context | null = null;
    class Square extends torch.autograd.Function {
      static forward(ctx: torch.autograd.Context, x: torch.Tensor) {
        ctx.saveForBackward(x);
        saved = ctx;
        return x.mul(x);
      }
      static backward(ctx: torch.autograd.Context, g: torch.Tensor) {
        const [x] = ctx.savedTensors;
        return g.mul(x).mul(2);
      }
    }
    const x = torch.tensor([3], { requiresGrad: true });
    const y = Square.apply(x).sum();
    y.backward();
    expect(vals(x.grad)).toEqual([6]);
    expect(() => saved!.savedTensors).toThrow(/saved tensors after they have already been freed|second time/);
    expect(() => y.backward()).toThrow(/second time/);

    const x2 = torch.tensor([3], { requiresGrad: true });
    const y2 = Square.apply(x2).sum();
    y2.backward({ retainGraph: true });
    expect(saved!.savedTensors.length).toBe(1);
    y2.backward();
    expect(vals(x2.grad)).toEqual([12]);
  });

  it('a Function with two inputs gets a gradient for each', () => {
    class MulAdd extends torch.autograd.Function {
      static forward(ctx: torch.autograd.Context, a: torch.Tensor, b: torch.Tensor) {
        ctx.saveForBackward(a, b);
        return a.mul(b).add(a);
      }
      static backward(ctx: torch.autograd.Context, g: torch.Tensor) {
        const [a, b] = ctx.savedTensors;
        return [g.mul(b.add(1)), g.mul(a)];
      }
    }
    const a = torch.tensor([1, 2], { requiresGrad: true });
    const b = torch.tensor([3, 4], { requiresGrad: true });
    MulAdd.apply(a, b).sum().backward();
    expect(vals(a.grad)).toEqual([4, 5]);
    expect(vals(b.grad)).toEqual([1, 2]);
  });
});

describe('graph structure', () => {
  it('gradFn names, isLeaf and requiresGrad propagation', () => {
    const x = torch.randn(2, 3, { requiresGrad: true });
    const w = torch.randn(3, 4);
    expect(x.isLeaf).toBe(true);
    expect(x.gradFn).toBeNull();
    expect(w.requiresGrad).toBe(false);
    const h = x.mm(w);
    expect(h.gradFn?.name).toBe('MmBackward');
    expect(h.requiresGrad).toBe(true);
    expect(h.isLeaf).toBe(false);
    expect(h.sum().gradFn?.name).toBe('SumBackward');
    expect(h.exp().gradFn?.name).toBe('ExpBackward');
    expect(h.add(1).gradFn?.name).toBe('AddBackward');
    expect(h.reshape(8).gradFn?.name).toBe('ReshapeBackward');
    expect(h.relu().gradFn?.name).toBe('ReluBackward');
    const noGradIn = w.mm(w.t());
    expect(noGradIn.requiresGrad).toBe(false);
    expect(noGradIn.gradFn).toBeNull();
    expect(noGradIn.isLeaf).toBe(true);
    // comparisons and argmax are not differentiable
    expect(h.gt(0).requiresGrad).toBe(false);
    expect(h.argmax(1).requiresGrad).toBe(false);
  });

  it('requiresGrad is settable on leaves and detach() cuts the graph', () => {
    const x = torch.ones(2);
    x.requiresGrad = true;
    expect(x.mul(2).requiresGrad).toBe(true);
    const d = x.mul(2).detach();
    expect(d.requiresGrad).toBe(false);
    expect(d.isLeaf).toBe(true);
    expect(x.requiresGrad_(false).requiresGrad).toBe(false);
  });

  it('w.data.sub_() updates w without autograd history', () => {
    const w = torch.tensor([1, 2, 3], { requiresGrad: true });
    w.mul(w).sum().backward();
    w.data.sub_(w.grad!.mul(0.5));
    expect(vals(w)).toEqual([0, 0, 0]);
    expect(w.isLeaf).toBe(true);
    expect(w.gradFn).toBeNull();
    expect(w.requiresGrad).toBe(true);
    // and w keeps working as a leaf
    w.grad = null;
    w.add(1).sum().backward();
    expect(vals(w.grad)).toEqual([1, 1, 1]);
  });

  it('in-place on a non-leaf keeps the history: h = 2x; h *= 3 gives dh/dx = 6', () => {
    const x = torch.tensor([1, 2], { requiresGrad: true });
    const h = x.mul(2);
    h.mul_(3);
    expect(vals(h)).toEqual([6, 12]);
    expect(h.gradFn?.name).toBe('MulBackward');
    h.sum().backward();
    expect(vals(x.grad)).toEqual([6, 6]);
  });

  it('in-place ops that need the old value (h.mul_(h), clamp_) use it', () => {
    const x = torch.tensor([1, -2], { requiresGrad: true });
    const h = x.mul(1);
    h.mul_(h); // x^2
    h.sum().backward();
    expect(vals(x.grad)).toEqual([2, -4]);

    const y = torch.tensor([1, -2, 3], { requiresGrad: true });
    const k = y.mul(2);
    k.clamp_({ max: 3 }); // passes the gradient where 2y <= 3
    k.sum().backward();
    expect(vals(y.grad)).toEqual([2, 2, 0]);
  });

  it('in-place on a tensor without history brings the input history in', () => {
    const x = torch.tensor([1, 2], { requiresGrad: true });
    const acc = torch.zeros(2);
    acc.add_(x.mul(3));
    expect(acc.isLeaf).toBe(false);
    expect(acc.requiresGrad).toBe(true);
    acc.sum().backward();
    expect(vals(x.grad)).toEqual([3, 3]);
  });

  it('in-place through a reshape view of a non-leaf updates the base and its gradient', () => {
    const x = torch.tensor([1, 2, 3], { requiresGrad: true });
    const h = x.mul(1);
    const v = h.reshape(1, 3);
    v.mul_(2);
    expect(vals(h)).toEqual([2, 4, 6]); // the view shares storage
    h.pow(2).sum().backward(); // d/dx (2x)^2 = 8x
    expect(vals(x.grad)).toEqual([8, 16, 24]);
  });

  it('a view taken before an in-place change of its base sees the new history', () => {
    const x = torch.tensor([1, 2, 3], { requiresGrad: true });
    const h = x.mul(1);
    const v = h.reshape(3, 1);
    h.mul_(2);
    expect(vals(v)).toEqual([2, 4, 6]);
    v.pow(2).sum().backward(); // v = 2x
    expect(vals(x.grad)).toEqual([8, 16, 24]);
  });

  it('an in-place change through one view reaches a sibling view', () => {
    const x = torch.tensor([1, 2, 3], { requiresGrad: true });
    const h = x.mul(1);
    const v = h.reshape(3, 1);
    const u = h.reshape(1, 3);
    v.mul_(3);
    u.sum().backward();
    expect(vals(x.grad)).toEqual([3, 3, 3]);
  });

  it('views of tensors without history stay without history when the base changes', () => {
    const w = torch.tensor([1, 2], { requiresGrad: true });
    const v = torch.noGrad(() => w.reshape(2, 1));
    torch.noGrad(() => w.add_(1));
    expect(v.requiresGrad).toBe(false);
    expect(v.gradFn).toBeNull();
    const plain = torch.ones(2);
    const pv = plain.reshape(1, 2);
    plain.add_(1);
    expect(pv.requiresGrad).toBe(false);
    expect(vals(pv)).toEqual([2, 2]);
  });
});

describe('max(dim) with ties', () => {
  it.each(testDevices())('sends the gradient of values to the returned index only, as PyTorch does (%s)', async (device) => {
    const x = torch.tensor([[0, 0.5, 0.5], [3, 1, 3]], { requiresGrad: true, device });
    const r = x.max(1);
    expect(Array.from(await r.values.toArray())).toEqual([0.5, 3]);
    const idx = Array.from(await r.indices.toArray());
    r.values.sum().backward();
    const g = Array.from(await x.grad!.toArray());
    // one 1 per row, at the returned index
    expect(g).toEqual([0, 1, 2].map((j) => (j === idx[0] ? 1 : 0)).concat([0, 1, 2].map((j) => (j === idx[1] ? 1 : 0))));
  });
});
