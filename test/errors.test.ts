/**
 * Mistakes get errors a PyTorch user recognises: each names the op, the shapes and
 * the fix, and a failed call leaves the user's tensors as they were (values, version
 * counter, grad).
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { webgpuAvailable } from './helpers/devices.ts';
import { expectThrowsUnchanged, snap, versionOf } from './helpers/snapshot.ts';

const F = torch.nn.functional;

describe('shape errors', () => {
  it('mm shape mismatch reads like PyTorch', () => {
    const x = torch.randn(64, 1000, { requiresGrad: true });
    const w = torch.randn(100, 10, { requiresGrad: true });
    expectThrowsUnchanged(() => x.mm(w), ['mm', 'mat1 and mat2 shapes cannot be multiplied (64x1000 and 100x10)', 'Fix', '.t()'], [x, w]);
    expectThrowsUnchanged(() => torch.mm(x, w), ['mat1 and mat2 shapes cannot be multiplied (64x1000 and 100x10)'], [x, w]);
  });

  it('mm and bmm of an int32 operand name the dtypes and the fix', () => {
    const i = torch.tensor([[1, 2], [3, 4]], { dtype: 'int32' });
    const f = torch.randn(2, 2);
    expectThrowsUnchanged(() => torch.mm(i, f), ['mm: expected float32 operands, got int32 and float32', 'Fix: convert with .float()'], [i, f]);
    const ib = i.reshape(1, 2, 2);
    const fb = f.reshape(1, 2, 2);
    expectThrowsUnchanged(() => torch.bmm(fb, ib), ['bmm: expected float32 operands, got float32 and int32', '.float()'], [ib, fb]);
  });

  it('matmul and linear report the same mismatch', () => {
    const x = torch.randn(64, 1000);
    const w = torch.randn(100, 10);
    expectThrowsUnchanged(() => x.matmul(w), ['mat1 and mat2 shapes cannot be multiplied (64x1000 and 100x10)'], [x, w]);
    const lin = new torch.nn.Linear(100, 10);
    expectThrowsUnchanged(() => lin(x), ['linear', '(64x1000 and 100x10)', 'in_features (100)'], [x, lin.weight]);
    const xb = torch.randn(2, 64, 1000);
    expectThrowsUnchanged(() => xb.matmul(torch.randn(2, 100, 10)), ['matmul', '64x1000 and 100x10', '[2, 64, 1000]', '[2, 100, 10]'], [xb]);
  });

  it('mm of a non-2-D tensor says to use matmul', () => {
    const a = torch.randn(2, 3, 4);
    expectThrowsUnchanged(() => a.mm(torch.randn(4, 2)), ['mm', '[2, 3, 4]', 'matmul'], [a]);
  });

  it('broadcast mismatch names both shapes and the dimension', () => {
    const a = torch.randn(3, 4, { requiresGrad: true });
    const b = torch.randn(5, { requiresGrad: true });
    expectThrowsUnchanged(
      () => a.add(b),
      ['add', 'the size of tensor a (4) must match the size of tensor b (5) at non-singleton dimension 1', '[3, 4]', '[5]', 'Fix'],
      [a, b],
    );
    expectThrowsUnchanged(() => a.mul(b), ['mul', '[3, 4]', '[5]'], [a, b]);
    expectThrowsUnchanged(() => torch.where(a.gt(0), a, b), ['where', '[5]'], [a, b]);
  });

  it('reshape/view to an incompatible size', () => {
    const a = torch.randn(3, 4, { requiresGrad: true });
    expectThrowsUnchanged(() => a.reshape(5, 2), ['reshape', "shape '[5, 2]' is invalid for input of size 12", '[3, 4]', 'Fix'], [a]);
    expectThrowsUnchanged(() => a.view(7), ["shape '[7]' is invalid for input of size 12"], [a]);
    expectThrowsUnchanged(() => a.reshape(5, -1), ["shape '[5, -1]' is invalid for input of size 12", 'Fix'], [a]);
    expectThrowsUnchanged(() => a.reshape(-1, -1), ['only one dimension can be inferred'], [a]);
  });

  it('expand of a non-singleton dim', () => {
    const a = torch.randn(3, 2);
    expectThrowsUnchanged(() => a.expand(3, 4), ['expand', '[3, 2]', '[3, 4]', 'only dims of size 1 can be expanded'], [a]);
  });

  it('dim out of range', () => {
    const a = torch.randn(3);
    expectThrowsUnchanged(() => a.sum(2), ['sum', 'dimension out of range (expected to be in range of [-1, 0], but got 2)'], [a]);
    expectThrowsUnchanged(() => a.softmax(1), ['softmax', 'dimension out of range'], [a]);
  });

  it('mseLoss with shapes that would silently broadcast', () => {
    const p = torch.randn(3, 1, { requiresGrad: true });
    const y = torch.randn(3);
    expectThrowsUnchanged(() => F.mseLoss(p, y), ['mseLoss', 'target size [3]', 'input size [3, 1]', 'Fix'], [p, y]);
    expectThrowsUnchanged(() => new torch.nn.L1Loss()(p, y), ['l1Loss', '[3]', '[3, 1]'], [p, y]);
  });
});

describe('in-place errors', () => {
  it('in-place op whose broadcast result is bigger than self', () => {
    const a = torch.randn(4);
    const b = torch.randn(3, 4);
    expectThrowsUnchanged(() => a.add_(b), ['add_', 'output with shape [4] doesn', 'broadcast shape [3, 4]', 'Fix'], [a, b]);
    expectThrowsUnchanged(() => a.mul_(b), ['mul_', '[4]', '[3, 4]'], [a, b]);
  });

  it('in-place float result into an int tensor', () => {
    const a = torch.zeros(3, { dtype: 'int32' });
    expectThrowsUnchanged(() => a.add_(0.5), ['add_', "result type float32 can't be cast to the desired output type int32", 'Fix'], [a]);
  });

  it('in-place on a leaf that requires grad: refused outside noGrad, allowed inside it and on .data', () => {
    const w = torch.tensor([1, 2, 3], { requiresGrad: true });
    for (const op of [() => w.add_(1), () => w.sub_(1), () => w.mul_(2), () => w.zero_(), () => w.fill_(0), () => w.clamp_({ min: 0 })]) {
      expectThrowsUnchanged(op, ['a leaf Variable that requires grad is being used in an in-place operation', '[3]', 'noGrad', '.data'], [w]);
    }
    expectThrowsUnchanged(() => w.maskedFill_(w.gt(1), 0), ['maskedFill_', 'leaf Variable'], [w]);
    expectThrowsUnchanged(() => w.copy_(torch.zeros(3)), ['copy_', 'leaf Variable'], [w]);

    const v0 = versionOf(w);
    torch.noGrad(() => w.sub_(1));
    expect(Array.from(w.toArraySync())).toEqual([0, 1, 2]);
    expect(w.gradFn).toBeNull();
    expect(w.requiresGrad).toBe(true);
    expect(versionOf(w)).toBe(v0 + 1);

    w.data.mul_(2);
    expect(Array.from(w.toArraySync())).toEqual([0, 2, 4]);
    expect(w.isLeaf).toBe(true);
    expect(w.requiresGrad).toBe(true);
  });

  it('in-place through a view of a leaf that requires grad is refused too', () => {
    const w = torch.tensor([1, 2, 3], { requiresGrad: true });
    const v = w.reshape(1, 3);
    expectThrowsUnchanged(() => v.add_(1), ['add_', 'a view of a leaf Variable that requires grad is being used in an in-place operation'], [w, v]);
    torch.noGrad(() => v.add_(1));
    expect(Array.from(w.toArraySync())).toEqual([2, 3, 4]);
  });

  it('a saved tensor modified in place before backward', () => {
    const x = torch.tensor([0.5, -1, 2], { requiresGrad: true });
    const y = x.exp(); // exp saves its output
    y.add_(1);
    const loss = y.sum();
    const msg = expectThrowsUnchanged(
      () => loss.backward(),
      [
        'one of the variables needed for gradient computation has been modified by an inplace operation',
        '[float32 [3]]',
        'output 0 of ExpBackward',
        'is at version 1; expected version 0 instead',
        'Fix',
      ],
      [x],
    );
    expect(msg).not.toContain('leaf');
    expect(x.grad).toBeNull();
  });

  it('a saved leaf modified in place (through .data) before backward', () => {
    const x = torch.tensor([0.5, -1, 2], { requiresGrad: true });
    const loss = x.mul(x).sum(); // mul saves both inputs
    x.data.add_(1);
    expectThrowsUnchanged(() => loss.backward(), ['modified by an inplace operation', 'a leaf tensor', 'MulBackward'], [x]);
  });

  it('an in-place change of a tensor that was not saved is fine', () => {
    const x = torch.tensor([0.5, -1, 2], { requiresGrad: true });
    const y = x.add(1); // add saves nothing
    const z = y.mul(2); // saves y and 2
    const loss = z.sum();
    torch.noGrad(() => z.add_(100)); // z itself is not saved by anything
    loss.backward();
    expect(Array.from(x.grad!.toArraySync())).toEqual([2, 2, 2]);
  });
});

describe('autograd errors', () => {
  it('backward twice without retainGraph; retainGraph allows it', () => {
    const x = torch.tensor([0.5, -1, 2], { requiresGrad: true });
    const loss = x.exp().sum();
    loss.backward();
    const after1 = snap(x);
    expectThrowsUnchanged(
      () => loss.backward(),
      ['ExpBackward', 'trying to backward through the graph a second time', 'retainGraph: true'],
      [x],
    );
    expect(snap(x)).toEqual(after1);

    const x2 = torch.tensor([0.5, -1, 2], { requiresGrad: true });
    const loss2 = x2.exp().sum();
    loss2.backward(undefined, { retainGraph: true });
    const g1 = Array.from(x2.grad!.toArraySync());
    loss2.backward({ retainGraph: true });
    loss2.backward();
    const g3 = Array.from(x2.grad!.toArraySync());
    g1.forEach((g, i) => expect(g3[i]).toBeCloseTo(3 * g, 5));
    expect(() => loss2.backward()).toThrow(/second time/);
  });

  it('backward of a non-scalar without a gradient', () => {
    const x = torch.tensor([1, 2, 3], { requiresGrad: true });
    const y = x.mul(2);
    expectThrowsUnchanged(() => y.backward(), ['grad can be implicitly created only for scalar outputs', '[3]', 'Fix', 'onesLike'], [x]);
    // the graph was not consumed by the failed call
    y.backward(torch.onesLike(y));
    expect(Array.from(x.grad!.toArraySync())).toEqual([2, 2, 2]);
  });

  it('backward with a gradient of the wrong shape', () => {
    const x = torch.tensor([1, 2, 3], { requiresGrad: true });
    const y = x.mul(2);
    expectThrowsUnchanged(() => y.backward(torch.ones(2)), ['backward', 'gradient has shape [2]', 'tensor has shape [3]'], [x]);
  });

  it('backward of something that does not require grad', () => {
    const x = torch.tensor([1, 2, 3]);
    expectThrowsUnchanged(() => x.sum().backward(), ['does not require grad and does not have a gradFn', 'Fix'], [x]);
    const w = torch.tensor([1, 2, 3], { requiresGrad: true });
    const inNoGrad = torch.noGrad(() => w.mul(2).sum());
    expectThrowsUnchanged(() => inNoGrad.backward(), ['does not require grad', 'noGrad'], [w]);
  });

  it('requiresGrad on an int tensor', () => {
    expect(() => torch.zeros(2, { dtype: 'int32', requiresGrad: true })).toThrow(
      /only tensors of floating point dtype can require gradients \(got int32\)/,
    );
    const t = torch.zeros(2, { dtype: 'int32' });
    expectThrowsUnchanged(() => (t.requiresGrad = true), ['only tensors of floating point dtype can require gradients'], [t]);
    expect(t.requiresGrad).toBe(false);
  });

  it('an int result of a float tensor does not require grad (the graph is cut as in PyTorch)', () => {
    const x = torch.tensor([1.5, -2.5], { requiresGrad: true });
    const i = x.int();
    expect(i.dtype).toBe('int32');
    expect(i.requiresGrad).toBe(false);
    expect(i.gradFn).toBeNull();
    expect(() => i.sum().backward()).toThrow(/does not require grad/);
  });

  it('requiresGrad cannot be changed on a non-leaf', () => {
    const x = torch.tensor([1, 2], { requiresGrad: true });
    const y = x.mul(2);
    expectThrowsUnchanged(() => (y.requiresGrad = false), ['only change requiresGrad flags of leaf variables', 'MulBackward', 'detach'], [x, y]);
  });

  it('autograd.grad of an unused input without allowUnused', () => {
    const x = torch.ones(3, { requiresGrad: true });
    const z = torch.ones(2, { requiresGrad: true });
    const y = x.mul(x).sum();
    expectThrowsUnchanged(() => torch.autograd.grad(y, [x, z]), ['input 1', '[2]', 'not have been used in the graph', 'allowUnused: true'], [x, z]);
  });
});

describe('loss errors', () => {
  it('float targets to crossEntropy', () => {
    const logits = torch.randn(3, 4, { requiresGrad: true });
    const target = torch.tensor([1, 2, 0]);
    expectThrowsUnchanged(
      () => F.crossEntropy(logits, target),
      ['crossEntropy', 'expected target of dtype int32', 'got dtype float32', '[3]', "dtype: 'int32'"],
      [logits, target],
    );
    expectThrowsUnchanged(() => new torch.nn.CrossEntropyLoss()(logits, target), ['dtype int32'], [logits, target]);
  });

  it('class index out of range in crossEntropy', () => {
    const logits = torch.randn(3, 4);
    const target = torch.tensor([1, 5, 0], { dtype: 'int32' });
    expectThrowsUnchanged(() => F.crossEntropy(logits, target), ['crossEntropy', 'target 5 is out of bounds for 4 classes'], [logits, target]);
  });
});

describe('unknown option names', () => {
  const p = () => torch.randn(3, { requiresGrad: true });
  it('optimizer options', () => {
    expect(() => new torch.optim.Adam([p()], { learningRate: 1 } as never)).toThrow(/Adam: unknown option 'learningRate'.*'lr'/);
    expect(() => new torch.optim.SGD([p()], { lr: 0.1, momentun: 0.9 } as never)).toThrow(/SGD: unknown option 'momentun'.*'momentum'/);
    expect(() => new torch.optim.RMSprop([p()], { weight_decay: 0.1 } as never)).toThrow(/unknown option 'weight_decay'.*'weightDecay'/);
  });
  it('tensor op options', () => {
    const x = torch.randn(3);
    expectThrowsUnchanged(() => x.clamp({ minimum: 0 } as never), ["clamp: unknown option 'minimum'", "'min'"], [x]);
    expectThrowsUnchanged(() => x.clamp({}), ["at least one of 'min' or 'max'"], [x]);
    expect(() => torch.zeros(2, { requiresgrad: true } as never)).toThrow(/zeros: unknown option 'requiresgrad'.*'requiresGrad'/);
    expect(() => torch.tensor([1, 2], { requires_grad: true } as never)).toThrow(/unknown option 'requires_grad'/);
    expect(() => torch.arange(3, { dtyp: 'int32' } as never)).toThrow(/arange: unknown option 'dtyp'/);
    const y = torch.ones(1, { requiresGrad: true });
    expectThrowsUnchanged(() => y.sum().backward({ retain_graph: true } as never), ["unknown option 'retain_graph'", "'retainGraph'"], [y]);
  });
  it('module and loss options', () => {
    expect(() => new torch.nn.MSELoss({ reduce_: 1 } as never)).toThrow(/MSELoss: unknown option 'reduce_'.*'reduction'/);
    expect(() => new torch.nn.Linear(2, 3, { bais: false } as never)).toThrow(/Linear: unknown option 'bais'.*'bias'/);
    expect(() => new torch.nn.MSELoss({ reduction: 'avg' } as never)).toThrow(/'avg' is not a valid value for reduction|avg is not a valid value for reduction/);
    expect(() => F.mseLoss(torch.ones(2), torch.ones(2), { reduce: 'sum' } as never)).toThrow(/mseLoss: unknown option 'reduce'/);
    const m = new torch.nn.Linear(2, 3);
    expect(() => m.zeroGrad({ set_to_none: true } as never)).toThrow(/zeroGrad: unknown option 'set_to_none'/);
  });
});

describe('reading values', () => {
  it('item() on a multi-element tensor', async () => {
    const t = torch.randn(3);
    await expect(t.item()).rejects.toThrow(/a Tensor with 3 elements cannot be converted to a scalar \(shape \[3\]\)/);
    expectThrowsUnchanged(() => t.itemSync(), ['item', '3 elements', 'Fix'], [t]);
  });
  it('item() and itemSync() on a one-element cpu tensor', async () => {
    const t = torch.tensor([[2.5]]);
    expect(t.itemSync()).toBe(2.5);
    expect(await t.item()).toBe(2.5);
    expect(torch.tensor(-3).itemSync()).toBe(-3);
  });
});

describe.runIf(webgpuAvailable)('devices (webgpu present)', () => {
  it('mixing a webgpu and a cpu tensor names both devices and the fix', async () => {
    const g = torch.tensor([1, 2, 3]).to('webgpu');
    const c = torch.tensor([1, 1, 1]);
    expectThrowsUnchanged(
      () => g.add(c),
      ['add', 'expected all tensors to be on the same device', 'webgpu and cpu', "t.to('webgpu')"],
      [c],
    );
    expect(() => c.mul(g)).toThrow(/mul: expected all tensors to be on the same device.*cpu and webgpu/);
    expect(Array.from(await g.toArray())).toEqual([1, 2, 3]);
  });
  it('itemSync and toArraySync on webgpu say to use the async form', async () => {
    const g = torch.tensor([2.5]).to('webgpu');
    expect(() => g.itemSync()).toThrow(/await t\.item\(\)/);
    expect(() => g.toArraySync()).toThrow(/asynchronously/);
    expect(await g.item()).toBe(2.5);
  });
});

describe('other user mistakes', () => {
  it('a non-bool mask', () => {
    const x = torch.randn(3);
    expectThrowsUnchanged(() => x.maskedFill_(torch.ones(3), 0), ['maskedFill_', 'expected a bool mask, got dtype float32', 'h.lt(0)'], [x]);
    expectThrowsUnchanged(() => torch.where(x, x, 0), ['where', 'expected a bool condition'], [x]);
  });
  it('bad factory sizes and ragged nested lists', () => {
    expect(() => torch.zeros(-1)).toThrow(/zeros: sizes must be non-negative integers, got \[-1\]/);
    expect(() => torch.randn(2.5)).toThrow(/randn: sizes must be non-negative integers/);
    expect(() => torch.tensor([[1, 2], [3]] as never)).toThrow(/tensor: expected a sequence of length 2 at dim 1 \(got 1\)/);
    expect(() => torch.tensor(new Float32Array(5), { shape: [2, 3] })).toThrow(/5 values cannot take the shape \[2, 3\]/);
  });
  it('bad torch.compile options name the option, the value and the fix', () => {
    const f = (x: torch.Tensor) => x.mul(2);
    expect(() => torch.compile(f, { mode: 'max-autotune' } as never)).toThrow(/compile: unknown mode "max-autotune"\. Fix: use mode 'default'.*'static'/);
    expect(() => torch.compile(f, { autotune: 'yes' } as never)).toThrow(/compile: option autotune must be true or false, got "yes"\. Fix: pass autotune: false/);
    expect(() => torch.compile(f, { dump: 1 } as never)).toThrow(/compile: option dump must be a folder path \(a string\), got number/);
    expect(() => torch.compile(f, { autotun: true } as never)).toThrow(/compile: unknown option 'autotun'.*'autotune'/);
  });
  it('an unknown device name', () => {
    expect(() => torch.setDefaultDevice('gpu' as never)).toThrow(/unknown device 'gpu'.*'cpu' or 'webgpu'/);
    expect(torch.getDefaultDevice()).toBe('cpu');
  });
  it('errors are WgtorchError instances', () => {
    try {
      torch.randn(2, 3).mm(torch.randn(2, 3));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(torch.WgtorchError);
      expect(e).toBeInstanceOf(Error);
    }
  });
});
