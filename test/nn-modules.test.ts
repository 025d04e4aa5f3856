/** torch.nn beyond the seed: buffers, stateDict with buffers, loadStateDict's keys, apply, ModuleDict, Flatten, norms. */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';

const nn = torch.nn;
const F = torch.nn.functional;
const vals = (t: torch.Tensor | null) => Array.from(t!.toArraySync() as ArrayLike<number>);
function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-5) {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - want[i]), `element ${i}: ${got[i]} vs ${want[i]}`).toBeLessThanOrEqual(tol * (1 + Math.abs(want[i])));
}

class WithMask extends nn.Module<[torch.Tensor], torch.Tensor> {
  declare mask: torch.Tensor;
  lin = new nn.Linear(3, 3);
  constructor() {
    super();
    this.registerBuffer('mask', torch.tril(torch.ones(3, 3)));
    this.registerBuffer('scratch', torch.zeros(2), { persistent: false });
  }
  override forward(x: torch.Tensor) {
    return this.lin(x).mul(this.mask);
  }
}

class Net extends nn.Module<[torch.Tensor], torch.Tensor> {
  conv = new nn.Linear(4, 4);
  bn1 = new nn.BatchNorm1d(4);
  block = new WithMask();
  override forward(x: torch.Tensor) {
    return this.bn1(this.conv(x));
  }
}

describe('buffers', () => {
  it('registerBuffer: a field that reads and assigns, listed by namedBuffers, not a parameter', () => {
    const m = new WithMask();
    expect(m.mask.shape).toEqual([3, 3]);
    expect(m.namedBuffers().map(([n]) => n)).toEqual(['mask', 'scratch']);
    expect(m.buffers()).toHaveLength(2);
    expect(m.namedParameters().map(([n]) => n)).toEqual(['lin.weight', 'lin.bias']);
    const other = torch.ones(3, 3);
    m.mask = other;
    expect(m.namedBuffers()[0][1]).toBe(other);
    expect(Object.keys(m)).not.toContain('mask');
  });

  it('stateDict lists parameters then persistent buffers, module by module, under PyTorch names', () => {
    const net = new Net();
    expect(Object.keys(net.stateDict())).toEqual([
      'conv.weight', 'conv.bias',
      'bn1.weight', 'bn1.bias', 'bn1.running_mean', 'bn1.running_var', 'bn1.num_batches_tracked',
      'block.mask', 'block.lin.weight', 'block.lin.bias',
    ]);
    expect(net.namedBuffers().map(([n]) => n)).toEqual([
      'bn1.running_mean', 'bn1.running_var', 'bn1.num_batches_tracked', 'block.mask', 'block.scratch',
    ]);
    expect(net.stateDict()['bn1.num_batches_tracked'].dtype).toBe('int32');
    expect(net.parameters()).toHaveLength(6);
  });

  it('a module shared under two names is in stateDict under both (as PyTorch), in parameters once', () => {
    const shared = new nn.Linear(2, 2);
    const tied = new nn.Sequential(shared, new nn.ReLU(), shared);
    expect(Object.keys(tied.stateDict())).toEqual(['0.weight', '0.bias', '2.weight', '2.bias']);
    expect(tied.parameters()).toHaveLength(2);
    const copy = new nn.Sequential(new nn.Linear(2, 2), new nn.ReLU(), new nn.Linear(2, 2));
    expect(copy.loadStateDict(tied.stateDict())).toEqual({ missingKeys: [], unexpectedKeys: [] });
  });

  it('a registered name that is taken, a Parameter or a non-tensor is refused', () => {
    const m = new WithMask();
    expect(() => m.registerBuffer('lin', torch.zeros(1))).toThrow(/attribute 'lin' already exists/);
    expect(() => m.registerBuffer('p', new nn.Parameter(torch.zeros(1)))).toThrow(/is a Parameter/);
    expect(() => m.registerBuffer('a.b', torch.zeros(1))).toThrow(/without '\.'/);
    expect(() => m.registerBuffer('q', 3 as unknown as torch.Tensor)).toThrow(/cannot assign a number/);
  });

  it('loadStateDict copies buffers and returns { missingKeys, unexpectedKeys }', () => {
    const a = new Net();
    const b = new Net();
    torch.noGrad(() => a.bn1.running_mean!.fill_(3));
    const r = b.loadStateDict(a.stateDict());
    expect(r).toEqual({ missingKeys: [], unexpectedKeys: [] });
    expect(vals(b.bn1.running_mean)).toEqual([3, 3, 3, 3]);
    expect(vals(b.conv.weight)).toEqual(vals(a.conv.weight));
    expect(b.bn1.running_mean).not.toBe(a.bn1.running_mean);
  });

  it('loadStateDict strict errors name the keys as PyTorch; strict: false returns them', () => {
    const sd = new Net().stateDict();
    delete sd['bn1.running_var'];
    sd['extra.weight'] = torch.zeros(1);
    const b = new Net();
    const before = vals(b.conv.weight);
    let msg = '';
    try {
      b.loadStateDict({ ...sd, 'conv.weight': torch.zeros(4, 4) });
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toContain('Error(s) in loading stateDict for Net');
    expect(msg).toMatch(/Missing key\(s\) in state_dict: "bn1.running_var"\.\n\tUnexpected key\(s\) in state_dict: "extra.weight"\./);
    expect(vals(b.conv.weight), 'nothing is copied when it throws').toEqual(before);
    const r = b.loadStateDict(sd, { strict: false });
    expect(r).toEqual({ missingKeys: ['bn1.running_var'], unexpectedKeys: ['extra.weight'] });
    expect(() => b.loadStateDict({ ...sd, 'conv.bias': torch.zeros(5) }, { strict: false })).toThrow(
      /size mismatch for conv.bias: copying a param with shape \[5\] from checkpoint, the shape in current model is \[4\]/,
    );
  });

  it('train() and eval() reach every module; apply visits children first', () => {
    const net = new Net();
    net.eval();
    expect(net.modules().every((m) => !m.training)).toBe(true);
    net.train();
    expect(net.bn1.training).toBe(true);
    const seen: string[] = [];
    expect(net.apply((m) => seen.push(m.constructor.name))).toBe(net);
    expect(seen).toEqual(['Linear', 'BatchNorm1d', 'Linear', 'WithMask', 'Net']);
    // the usual use: re-initialise every Linear
    net.apply((m) => {
      if (m instanceof nn.Linear) nn.init.constant_(m.weight, 0.5);
    });
    expect(vals(net.block.lin.weight).every((v) => v === 0.5)).toBe(true);
  });
});

describe('ModuleDict, Identity, Flatten, softmax { dim }', () => {
  it('ModuleDict names its modules like a Map, in insertion order, and its parameters follow', () => {
    const d = new nn.ModuleDict<torch.nn.Module>({ enc: new nn.Linear(2, 3), dec: new nn.Linear(3, 2) });
    d.set('act', new nn.ReLU());
    expect(d.keys()).toEqual(['enc', 'dec', 'act']);
    expect(d.size).toBe(3);
    expect(d.get('dec')).toBeInstanceOf(nn.Linear);
    expect(d.get('nope')).toBeUndefined();
    expect(d.has('enc')).toBe(true);
    expect(d.namedParameters().map(([n]) => n)).toEqual(['enc.weight', 'enc.bias', 'dec.weight', 'dec.bias']);
    expect([...d]).toEqual(['enc', 'dec', 'act']);
    expect(d.delete('act')).toBe(true);
    expect(d.keys()).toEqual(['enc', 'dec']);
    expect(() => d.set('train', new nn.ReLU())).toThrow(/taken by a ModuleDict method/);
  });

  it('Flatten honours startDim and endDim (the tutorial Flatten(0, 1)); Identity passes through', () => {
    const x = torch.zeros(2, 3, 4, 5);
    expect(new nn.Flatten()(x).shape).toEqual([2, 60]);
    expect(new nn.Flatten(0, 1)(torch.zeros(7, 1)).shape).toEqual([7]);
    expect(new nn.Flatten(1, 2)(x).shape).toEqual([2, 12, 5]);
    expect(new nn.Flatten(-2)(x).shape).toEqual([2, 3, 20]);
    expect(new nn.Identity()(x)).toBe(x);
    expect(String(new nn.Flatten(0, 1))).toBe('Flatten(start_dim=0, end_dim=1)');
  });

  it('softmax and logSoftmax take { dim } as well as a number', () => {
    const x = torch.tensor([[1, 2, 3], [0, 0, 1]]);
    expect(vals(F.softmax(x, { dim: -1 }))).toEqual(vals(F.softmax(x, -1)));
    expect(vals(x.softmax({ dim: 0 }))).toEqual(vals(x.softmax(0)));
    expect(vals(F.logSoftmax(x, { dim: 1 }))).toEqual(vals(x.logSoftmax(1)));
    expect(vals(new nn.Softmax({ dim: 0 })(x))).toEqual(vals(x.softmax(0)));
    expect(() => F.softmax(x, { dims: 1 } as never)).toThrow(/unknown option 'dims'/);
  });
});

describe('LayerNorm and BatchNorm', () => {
  it('LayerNorm: PyTorch init, names and values', () => {
    const ln = new nn.LayerNorm(4);
    expect(ln.namedParameters().map(([n]) => n)).toEqual(['weight', 'bias']);
    expect(vals(ln.weight)).toEqual([1, 1, 1, 1]);
    const x = torch.tensor([[1, 2, 3, 4], [2, 2, 2, 6]]);
    const y = vals(ln(x));
    // (x - mean) / sqrt(var_biased + eps)
    const row = [1, 2, 3, 4];
    const m = 2.5;
    const v = row.reduce((s, a) => s + (a - m) ** 2, 0) / 4;
    expectClose(y.slice(0, 4), row.map((a) => (a - m) / Math.sqrt(v + 1e-5)));
    expect(new nn.LayerNorm([2, 2], { elementwiseAffine: false }).parameters()).toHaveLength(0);
  });

  it('a wrong LayerNorm shape names the op, both shapes and the fix', () => {
    expect(() => new nn.LayerNorm(4)(torch.zeros(3, 5))).toThrow(
      /layerNorm: given normalizedShape=\[4\], expected input with shape \[\*, 4\], but got input of size \[3, 5\]\. Fix/,
    );
  });

  it('BatchNorm1d: batch statistics in training, running ones (unbiased var) in eval', () => {
    const bn = new nn.BatchNorm1d(2, { momentum: 0.5 });
    const x = torch.tensor([[1, 10], [3, 20], [5, 60]]);
    const y = vals(bn(x));
    // column 0: mean 3, biased var 8/3
    expectClose([y[0], y[2], y[4]], [1, 3, 5].map((a) => (a - 3) / Math.sqrt(8 / 3 + 1e-5)));
    // running: 0.5 * 0 + 0.5 * mean; var: 0.5 * 1 + 0.5 * unbiased (4 for column 0)
    expectClose(vals(bn.runningMean), [1.5, 15]);
    expectClose(vals(bn.runningVar), [0.5 + 0.5 * 4, 0.5 + 0.5 * 700]);
    expect(vals(bn.numBatchesTracked)).toEqual([1]);
    bn.eval();
    const e = vals(bn(torch.tensor([[1.5, 15]])));
    expectClose(e, [0, 0]);
    expect(vals(bn.numBatchesTracked), 'eval does not count').toEqual([1]);
  });

  it('BatchNorm refuses a wrong rank, a wrong channel count and a batch of one in training', () => {
    expect(() => new nn.BatchNorm2d(3)(torch.zeros(2, 3, 4))).toThrow(/BatchNorm2d: expected 4D input \(got 3D input of shape \[2, 3, 4\]\)/);
    expect(() => new nn.BatchNorm2d(3)(torch.zeros(2, 4, 2, 2))).toThrow(/running_mean|runningMean should contain 4 elements/);
    expect(() => new nn.BatchNorm1d(3)(torch.zeros(1, 3))).toThrow(/more than 1 value per channel when training/);
  });

  it('Dropout: switched by train()/eval(), scales the kept values', () => {
    torch.manualSeed(1);
    const d = new nn.Dropout(0.5);
    const x = torch.ones(1000);
    const y = vals(d(x));
    expect(y.every((v) => v === 0 || v === 2)).toBe(true);
    const kept = y.filter((v) => v === 2).length;
    expect(kept).toBeGreaterThan(400);
    expect(kept).toBeLessThan(600);
    d.eval();
    expect(d(x)).toBe(x);
    expect(vals(F.dropout(x, { p: 0.3, training: false }))).toEqual(vals(x));
    expect(() => F.dropout(x, { p: 1.5 })).toThrow(/between 0 and 1/);
  });
});
