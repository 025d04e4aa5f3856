/** torch.nn: modules, parameters, state dicts, layers, losses and printing. */
import util from 'node:util';
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';

const nn = torch.nn;
const F = torch.nn.functional;
const vals = (t: torch.Tensor | null) => Array.from(t!.toArraySync() as ArrayLike<number>);
function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-5) {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - want[i]), `element ${i}: ${got[i]} vs ${want[i]}`).toBeLessThanOrEqual(tol * (1 + Math.abs(want[i])));
}

class TwoLayerNet extends nn.Module<[torch.Tensor], torch.Tensor> {
  linear1: torch.nn.Linear;
  linear2: torch.nn.Linear;
  constructor(dIn: number, h: number, dOut: number) {
    super();
    this.linear1 = new nn.Linear(dIn, h);
    this.linear2 = new nn.Linear(h, dOut);
  }
  override forward(x: torch.Tensor) {
    return this.linear2(this.linear1(x).clamp({ min: 0 }));
  }
}

/** The seed's DynamicNet shape: one middle module reused several times. */
class Reuse extends nn.Module<[torch.Tensor], torch.Tensor> {
  inp = new nn.Linear(3, 4);
  middle = new nn.Linear(4, 4);
  out = new nn.Linear(4, 2);
  override forward(x: torch.Tensor) {
    let h = this.inp(x).relu();
    for (let i = 0; i < 3; i++) h = this.middle(h).relu();
    return this.out(h);
  }
}

describe('Module', () => {
  it('is callable: model(x) equals model.forward(x)', () => {
    torch.manualSeed(0);
    const model = new TwoLayerNet(5, 7, 3);
    const x = torch.randn(4, 5);
    const a = model(x);
    expect(a).toBeInstanceOf(torch.Tensor);
    expect(a.shape).toEqual([4, 3]);
    expect(vals(a)).toEqual(vals(model.forward(x)));
    expect(typeof model).toBe('function');
    expect(model).toBeInstanceOf(nn.Module);
    expect(model).toBeInstanceOf(TwoLayerNet);
  });

  it('namedParameters uses PyTorch names, in registration order', () => {
    const seq = new nn.Sequential(new nn.Linear(3, 4), new nn.ReLU(), new nn.Linear(4, 2));
    expect(seq.namedParameters().map(([n]) => n)).toEqual(['0.weight', '0.bias', '2.weight', '2.bias']);
    const net = new TwoLayerNet(3, 4, 2);
    expect(net.namedParameters().map(([n]) => n)).toEqual(['linear1.weight', 'linear1.bias', 'linear2.weight', 'linear2.bias']);
    const [, w] = net.namedParameters()[0];
    expect(w).toBe(net.linear1.weight);
    expect(w).toBeInstanceOf(nn.Parameter);
    expect(w.requiresGrad).toBe(true);
    expect(net.parameters().length).toBe(4);
    const nested = new nn.Sequential(net, new nn.Linear(2, 1));
    expect(nested.namedParameters().map(([n]) => n)).toEqual(['0.linear1.weight', '0.linear1.bias', '0.linear2.weight', '0.linear2.bias', '1.weight', '1.bias']);
  });

  it('a module used several times in forward is one parameter set, and its grads accumulate', () => {
    torch.manualSeed(1);
    const m = new Reuse();
    expect(m.namedParameters().map(([n]) => n)).toEqual(['inp.weight', 'inp.bias', 'middle.weight', 'middle.bias', 'out.weight', 'out.bias']);
    const x = torch.randn(5, 3);
    m(x).sum().backward();
    const g = vals(m.middle.weight.grad);

    // the same gradient by hand: the three uses of `middle` are separate leaves summed
    const W = m.middle.weight.detach();
    const b = m.middle.bias!.detach();
    const uses = [0, 1, 2].map(() => W.clone().requiresGrad_());
    let h = torch.noGrad(() => m.inp(x).relu());
    for (const u of uses) h = F.linear(h, u, b).relu();
    F.linear(h, m.out.weight.detach(), m.out.bias!.detach()).sum().backward();
    const want = uses.map((u) => vals(u.grad)).reduce((p, q) => p.map((v, i) => v + q[i]));
    expectClose(g, want);
    expect(g.some((v) => v !== 0)).toBe(true);
  });

  it('the same module assigned to two fields is listed once', () => {
    class Tied extends nn.Module<[torch.Tensor], torch.Tensor> {
      a = new nn.Linear(2, 2);
      b = this.a;
      override forward(x: torch.Tensor) {
        return this.b(this.a(x));
      }
    }
    const t = new Tied();
    expect(t.namedParameters().map(([n]) => n)).toEqual(['a.weight', 'a.bias']);
  });

  it('children() lists direct submodules in order', () => {
    const l1 = new nn.Linear(3, 4);
    const r = new nn.ReLU();
    const l2 = new nn.Linear(4, 2);
    const seq = new nn.Sequential(l1, r, l2);
    expect(seq.children()).toEqual([l1, r, l2]);
    const net = new TwoLayerNet(3, 4, 2);
    expect(net.children()).toEqual([net.linear1, net.linear2]);
    expect(l1.children()).toEqual([]);
    expect(seq.length).toBe(3);
    expect(seq.at(2)).toBe(l2);
  });

  it('zeroGrad sets grads to null by default, or zeros them with setToNone: false', () => {
    const net = new TwoLayerNet(3, 4, 2);
    net(torch.randn(2, 3)).sum().backward();
    const g = net.linear1.weight.grad!;
    expect(vals(g).some((v) => v !== 0)).toBe(true);
    net.zeroGrad({ setToNone: false });
    expect(net.linear1.weight.grad).toBe(g);
    expect(vals(g).every((v) => v === 0)).toBe(true);
    net.zeroGrad();
    for (const p of net.parameters()) expect(p.grad).toBeNull();
  });

  it('train() and eval() set the flag on every submodule', () => {
    const inner = new nn.Sequential(new nn.Linear(2, 2), new nn.Dropout(0.5));
    const model = new nn.Sequential(inner, new nn.ReLU());
    expect(model.modules().every((m) => m.training)).toBe(true);
    expect(model.eval()).toBe(model);
    expect(model.modules().length).toBe(5);
    expect(model.modules().every((m) => !m.training)).toBe(true);
    model.train();
    expect(model.modules().every((m) => m.training)).toBe(true);
    model.train(false);
    expect(inner.at(1).training).toBe(false);
  });

  it('dropout is the identity in eval mode and zeroes/rescales in train mode', () => {
    torch.manualSeed(4);
    const d = new nn.Dropout(0.5);
    const x = torch.ones(1000);
    const y = vals(d(x));
    expect(y.every((v) => v === 0 || v === 2)).toBe(true);
    const kept = y.filter((v) => v === 2).length;
    expect(kept).toBeGreaterThan(400);
    expect(kept).toBeLessThan(600);
    d.eval();
    expect(vals(d(x)).every((v) => v === 1)).toBe(true);
  });
});

describe('stateDict', () => {
  it('round trip into a fresh model gives the same outputs', () => {
    torch.manualSeed(2);
    const a = new TwoLayerNet(3, 5, 2);
    const b = new TwoLayerNet(3, 5, 2);
    const x = torch.randn(4, 3);
    expect(vals(a(x))).not.toEqual(vals(b(x)));
    const sd = a.stateDict();
    expect(Object.keys(sd)).toEqual(['linear1.weight', 'linear1.bias', 'linear2.weight', 'linear2.bias']);
    expect(sd['linear1.weight'].requiresGrad).toBe(false);
    b.loadStateDict(sd);
    expect(vals(b(x))).toEqual(vals(a(x)));
    // b got copies: changing a afterwards does not change b, and b's parameters are still its own objects
    const w = b.linear1.weight;
    torch.noGrad(() => a.linear1.weight.add_(1));
    expect(vals(b(x))).not.toEqual(vals(a(x)));
    expect(b.linear1.weight).toBe(w);
    expect(b.linear1.weight.requiresGrad).toBe(true);
  });

  it('missing, unexpected and mis-sized keys are reported together, and nothing is loaded', () => {
    const m = new nn.Linear(3, 2);
    const before = vals(m.weight);
    const sd = { weight: torch.ones(3, 3), extra: torch.ones(1) } as Record<string, torch.Tensor>;
    let msg = '';
    try {
      m.loadStateDict(sd);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toContain('Error(s) in loading stateDict for Linear');
    expect(msg).toContain('Missing key(s) in state_dict: "bias"');
    expect(msg).toContain('Unexpected key(s) in state_dict: "extra"');
    expect(msg).toContain('size mismatch for weight: copying a param with shape [3, 3] from checkpoint, the shape in current model is [2, 3]');
    expect(vals(m.weight)).toEqual(before);
  });

  it('strict: false ignores missing and unexpected keys but loads the rest', () => {
    const m = new nn.Linear(2, 2);
    m.loadStateDict({ weight: torch.tensor([[1, 2], [3, 4]]), extra: torch.ones(1) }, { strict: false });
    expect(vals(m.weight)).toEqual([1, 2, 3, 4]);
  });
});

describe('layers', () => {
  it('Linear default init is U(-1/sqrt(in), 1/sqrt(in)) for weight and bias', () => {
    torch.manualSeed(5);
    const lin = new nn.Linear(400, 50);
    expect(lin.weight.shape).toEqual([50, 400]);
    expect(lin.bias!.shape).toEqual([50]);
    const bound = 1 / Math.sqrt(400);
    const w = vals(lin.weight);
    const b = vals(lin.bias);
    expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...b.map(Math.abs))).toBeLessThanOrEqual(bound);
    // uniform over the whole range: near the bound on both sides, mean near 0, variance bound^2/3
    expect(Math.max(...w)).toBeGreaterThan(0.98 * bound);
    expect(Math.min(...w)).toBeLessThan(-0.98 * bound);
    const mean = w.reduce((p, v) => p + v, 0) / w.length;
    const variance = w.reduce((p, v) => p + (v - mean) ** 2, 0) / w.length;
    expect(Math.abs(mean)).toBeLessThan(0.02 * bound);
    expect(variance / (bound * bound / 3)).toBeGreaterThan(0.95);
    expect(variance / (bound * bound / 3)).toBeLessThan(1.05);
    expect(Math.max(...b)).toBeGreaterThan(0.5 * bound);
  });

  it('Linear computes x W^T + b; bias: false has no bias', () => {
    const lin = new nn.Linear(2, 3);
    torch.noGrad(() => {
      lin.weight.copy_(torch.tensor([[1, 2], [3, 4], [5, 6]]));
      lin.bias!.copy_(torch.tensor([0.5, -1, 0]));
    });
    const x = torch.tensor([[1, -1], [2, 0.5]]);
    expect(vals(lin(x))).toEqual([1 - 2 + 0.5, 3 - 4 - 1, 5 - 6, 2 + 1 + 0.5, 6 + 2 - 1, 10 + 3]);
    const nb = new nn.Linear(2, 3, { bias: false });
    expect(nb.bias).toBeNull();
    expect(nb.namedParameters().map(([n]) => n)).toEqual(['weight']);
    torch.noGrad(() => nb.weight.copy_(lin.weight));
    expect(vals(nb(x))).toEqual([-1, -1, -1, 3, 8, 13]);
  });

  it('activations and Softmax modules', () => {
    const x = torch.tensor([[-1, 0.5, 2]]);
    expect(vals(new nn.ReLU()(x))).toEqual([0, 0.5, 2]);
    expectClose(vals(new nn.Tanh()(x)), [-1, 0.5, 2].map(Math.tanh));
    expectClose(vals(new nn.Sigmoid()(x)), [-1, 0.5, 2].map((v) => 1 / (1 + Math.exp(-v))));
    const e = [-1, 0.5, 2].map(Math.exp);
    const s = e.reduce((p, v) => p + v);
    expectClose(vals(new nn.Softmax(1)(x)), e.map((v) => v / s));
    expectClose(vals(F.softmax(x, -1)), e.map((v) => v / s));
    expectClose(vals(F.relu(x)), [0, 0.5, 2]);
  });
});

describe('losses', () => {
  const p = torch.tensor([[0.5, -1, 2], [1.5, 0, -0.25]]);
  const y = torch.tensor([[1, 1, 1], [-1, 0.5, 0]]);
  const pv = [0.5, -1, 2, 1.5, 0, -0.25];
  const yv = [1, 1, 1, -1, 0.5, 0];
  const sq = pv.map((v, i) => (v - yv[i]) ** 2);
  const ab = pv.map((v, i) => Math.abs(v - yv[i]));
  const sum = (a: number[]) => a.reduce((s, v) => s + v, 0);

  it('MSELoss: mean (default), sum, none, and the legacy sizeAverage: false', () => {
    expectClose([new nn.MSELoss()(p, y).itemSync()], [sum(sq) / 6]);
    expectClose([new nn.MSELoss({ reduction: 'sum' })(p, y).itemSync()], [sum(sq)]);
    expectClose([new nn.MSELoss({ sizeAverage: false })(p, y).itemSync()], [sum(sq)]);
    expect(new nn.MSELoss({ sizeAverage: false }).reduction).toBe('sum');
    const none = new nn.MSELoss({ reduction: 'none' })(p, y);
    expect(none.shape).toEqual([2, 3]);
    expectClose(vals(none), sq);
    expectClose([F.mseLoss(p, y).itemSync()], [sum(sq) / 6]);
    expectClose([F.mseLoss(p, y, { reduction: 'sum' }).itemSync()], [sum(sq)]);
    expect(new nn.MSELoss().forward(p, y).shape).toEqual([]);
  });

  it('L1Loss and its functional form', () => {
    expectClose([new nn.L1Loss()(p, y).itemSync()], [sum(ab) / 6]);
    expectClose([new nn.L1Loss({ reduction: 'sum' })(p, y).itemSync()], [sum(ab)]);
    expectClose(vals(F.l1Loss(p, y, { reduction: 'none' })), ab);
  });

  it('CrossEntropyLoss equals -log softmax at the target, averaged', () => {
    const logits = [[2, 1, 0.1, -1], [0.5, 2.5, 0.3, 0], [-1, -2, 3, 0.5]];
    const target = [0, 3, 2];
    const perRow = logits.map((row, i) => {
      const m = Math.max(...row);
      const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
      return lse - row[target[i]];
    });
    const L = torch.tensor(logits, { requiresGrad: true });
    const T = torch.tensor(target, { dtype: 'int32' });
    const loss = new nn.CrossEntropyLoss()(L, T);
    expectClose([loss.itemSync()], [sum(perRow) / 3]);
    expectClose([F.crossEntropy(L, T, { reduction: 'sum' }).itemSync()], [sum(perRow)]);
    expectClose(vals(F.crossEntropy(L, T, { reduction: 'none' })), perRow);
    // gradient: (softmax - onehot) / N
    loss.backward();
    const want = logits.flatMap((row, i) => {
      const e = row.map(Math.exp);
      const s = e.reduce((a, b) => a + b);
      return e.map((v, j) => (v / s - (j === target[i] ? 1 : 0)) / 3);
    });
    expectClose(vals(L.grad), want);
  });

  it('crossEntropy with class probabilities and with a single sample', () => {
    const logits = torch.tensor([[1, 2, 3]]);
    const probs = torch.tensor([[0.2, 0.3, 0.5]]);
    const lse = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3));
    const want = -(0.2 * (1 - lse) + 0.3 * (2 - lse) + 0.5 * (3 - lse));
    expectClose([F.crossEntropy(logits, probs).itemSync()], [want]);
    const single = F.crossEntropy(torch.tensor([1, 2, 3]), torch.tensor(2, { dtype: 'int32' }));
    expectClose([single.itemSync()], [lse - 3]);
  });

  it('the seed\'s training loop with these pieces lowers the loss', () => {
    torch.manualSeed(6);
    const x = torch.randn(16, 4);
    const yT = x.mm(torch.randn(4, 2));
    const model = new nn.Sequential(new nn.Linear(4, 8), new nn.ReLU(), new nn.Linear(8, 2));
    const lossFn = new nn.MSELoss({ reduction: 'sum' });
    const first = lossFn(model(x), yT).itemSync();
    for (let t = 0; t < 30; t++) {
      const loss = lossFn(model(x), yT);
      model.zeroGrad();
      loss.backward();
      torch.noGrad(() => {
        for (const prm of model.parameters()) prm.sub_(prm.grad!.mul(1e-3));
      });
    }
    expect(lossFn(model(x), yT).itemSync()).toBeLessThan(0.7 * first);
  });
});

describe('printing', () => {
  it('String(model) shows the module tree as PyTorch prints it', () => {
    const model = new nn.Sequential(new nn.Linear(3, 4), new nn.ReLU(), new nn.Linear(4, 1, { bias: false }));
    expect(String(model)).toBe(
      'Sequential(\n' +
        '  (0): Linear(in_features=3, out_features=4, bias=True)\n' +
        '  (1): ReLU()\n' +
        '  (2): Linear(in_features=4, out_features=1, bias=False)\n' +
        ')',
    );
    const net = new TwoLayerNet(2, 3, 1);
    expect(util.inspect(net)).toBe(
      'TwoLayerNet(\n' +
        '  (linear1): Linear(in_features=2, out_features=3, bias=True)\n' +
        '  (linear2): Linear(in_features=3, out_features=1, bias=True)\n' +
        ')',
    );
    expect(String(new nn.Sequential(net))).toBe(
      'Sequential(\n' +
        '  (0): TwoLayerNet(\n' +
        '    (linear1): Linear(in_features=2, out_features=3, bias=True)\n' +
        '    (linear2): Linear(in_features=3, out_features=1, bias=True)\n' +
        '  )\n' +
        ')',
    );
    expect(String(new nn.MSELoss({ sizeAverage: false }))).toBe("MSELoss(reduction='sum')");
  });

  it('console.log of a tensor shows values, shape, device, dtype and gradFn', () => {
    const x = torch.tensor([[1, 2, 3], [4, 5, 6]], { requiresGrad: true });
    const leaf = util.inspect(x);
    expect(leaf).toContain('shape=[2, 3]');
    expect(leaf).toContain("device='cpu'");
    expect(leaf).toContain('dtype=float32');
    expect(leaf).toContain('requiresGrad=true');
    expect(leaf).toMatch(/1\.0000,\s+2\.0000,\s+3\.0000/);
    const y = x.mm(torch.ones(3, 1));
    const s = util.inspect(y);
    expect(s).toContain('gradFn=<MmBackward>');
    expect(s).toContain('shape=[2, 1]');
    expect(s).toMatch(/6\.0000/);
    expect(s).toMatch(/15\.0000/);
    expect(util.inspect(torch.tensor([1, 2], { dtype: 'int32' }))).toContain('dtype=int32');
    expect(util.inspect(torch.tensor([1, 2]).lt(2))).toMatch(/True.*False[\s\S]*dtype=bool/);
    // big tensors are summarised, never printed whole
    const big = util.inspect(torch.zeros(100, 100));
    expect(big).toContain('...');
    expect(big.length).toBeLessThan(2000);
    expect(big).toContain('shape=[100, 100]');
  });
});
