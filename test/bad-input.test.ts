/**
 * The bad-input catalogue: each case is a mistake a user makes inside a training step, run
 * in every mode (eager cpu, eager webgpu, a compiled loss function and a compiled whole
 * step, on each device). Each must fail with an error that names the op, the shapes or
 * values and the fix; leave every parameter, gradient and optimizer state as it was; and
 * the next good step must work. The counts print at the end.
 */
import { afterAll, describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { testDevices } from './helpers/devices.ts';
import { disableWaitSleep } from './helpers/webgpu-workarounds.ts';

const F = torch.nn.functional;
type T = torch.Tensor;

if (testDevices().includes('webgpu')) disableWaitSleep();

class Net extends torch.nn.Module<[T], T> {
  l1 = new torch.nn.Linear(6, 8);
  l2 = new torch.nn.Linear(8, 4);
  override forward(x: T): T {
    return this.l2(this.l1(x).relu());
  }
}

interface World {
  model: Net;
  opt: torch.optim.Adam;
  x: T;
  /** class targets in [0, 4) */
  y: T;
  dev: torch.Device;
}

interface Case {
  name: string;
  /** the loss, with the mistake somewhere in it */
  loss(w: World): T;
  /** a mistake made after backward() instead (the loss itself is good) */
  afterBackward?(w: World): void;
  /** what the message must contain: the op, the shapes or values, the fix */
  says: (string | RegExp)[];
  /** eager and a compiled loss run backward() before the mistake, as PyTorch does: only the whole compiled step is one call that must leave everything as it was */
  atomicInStepOnly?: boolean;
}

const good = (w: World) => F.crossEntropy(w.model(w.x), w.y);

const CASES: Case[] = [
  {
    name: 'crossEntropy target past the classes',
    loss: (w) => F.crossEntropy(w.model(w.x), torch.tensor([0, 12, 1, 2, 3], { dtype: 'int32', device: w.dev })),
    says: ['crossEntropy', 'target 12', 'for 4 classes', 'Fix'],
  },
  {
    name: 'crossEntropy target -1',
    loss: (w) => F.crossEntropy(w.model(w.x), torch.tensor([0, 1, -1, 2, 3], { dtype: 'int32', device: w.dev })),
    says: ['crossEntropy', 'target -1', 'element 2', 'Fix'],
  },
  {
    name: 'input of the wrong width',
    loss: (w) => F.crossEntropy(w.model(torch.randn(5, 7, { device: w.dev })), w.y),
    says: ['linear', '5x7', 'in_features (6)', 'Fix'],
  },
  {
    name: 'mseLoss of different shapes',
    loss: (w) => F.mseLoss(w.model(w.x), torch.zeros(5, { device: w.dev })),
    says: ['mseLoss', '[5]', '[5, 4]', 'Fix'],
  },
  {
    name: 'float64 tensor',
    loss: (w) => F.mseLoss(w.model(w.x), torch.zeros(5, 4, { device: w.dev, dtype: 'float64' as torch.DType })),
    says: ['float64', "'float32'", "'int32'", 'Fix'],
  },
  {
    name: 'softmax over a missing dim',
    loss: (w) => w.model(w.x).softmax(2).sum(),
    says: ['softmax', 'dim', 'Fix'],
  },
  {
    name: 'reshape to a wrong size',
    loss: (w) => w.model(w.x).reshape(3, 7).sum(),
    says: ['reshape', '[3, 7]', 'size 20', 'Fix'],
  },
  {
    name: 'index past the rows (an embedding lookup)',
    loss: (w) => w.model(w.x).index(torch.tensor([0, 7], { dtype: 'int32', device: w.dev })).sum(),
    says: ['index 7 is out of bounds for dimension 0 with size 5', 'Fix'],
  },
  {
    name: 'gather past the classes',
    loss: (w) => w.model(w.x).gather(1, torch.tensor([[0], [1], [9], [2], [3]], { dtype: 'int32', device: w.dev })).sum(),
    says: ['gather', 'index 9 is out of bounds for dimension 1 with size 4', 'Fix'],
  },
  // indices computed inside the step: on webgpu they are checked on the device (never read
  // back), and every dispatch after the check is gated on its flag until the next readback
  {
    name: 'crossEntropy target computed in the step (an argmax + 10)',
    loss: (w) => F.crossEntropy(w.model(w.x), w.model(w.x).argmax(1).add(10)),
    says: ['crossEntropy', /target (values \(from 1\d to 1\d\) are|1\d is) out of bounds for 4 classes/, 'Fix'],
  },
  {
    name: 'gather with an index computed in the step',
    loss: (w) => w.model(w.x).gather(1, w.y.add(3).reshape(5, 1)).sum(),
    says: ['gather', /index (values \(from 4 to 6\) are|[4-6] is) out of bounds for dimension 1 with size 4/, 'Fix'],
  },
  {
    name: 'index (an embedding lookup) with rows computed in the step',
    loss: (w) => w.model(w.x).index(w.y.mul(2)).sum(),
    says: [/index (values \(from 6 to 6\) are|6 is) out of bounds for dimension 0 with size 5/, 'Fix'],
  },
  {
    name: 'a mistake after backward()',
    loss: good,
    afterBackward: (w) => void w.x.mm(torch.randn(5, 3, { device: w.dev })),
    says: ['mm', '5x6 and 5x3', 'Fix'],
    atomicInStepOnly: true,
  },
];

type Mode = 'eager' | 'compiled' | 'step';
const MODES: Mode[] = ['eager', 'compiled', 'step'];
let ran = 0;
const modesSeen = new Set<string>();

async function valuesOf(t: T | null | undefined): Promise<string> {
  return t ? Array.prototype.join.call(await t.toArray(), ',') : 'null';
}

/** Parameters, their grads and versions, and the optimizer's state: all a failed step must leave alone. */
async function stateOf(w: World): Promise<unknown> {
  const out: unknown[] = [];
  for (const p of w.model.parameters()) out.push(await valuesOf(p), await valuesOf(p.grad), p.requiresGrad);
  for (const st of w.opt.state.values()) {
    for (const [k, v] of Object.entries(st)) out.push(k, v instanceof torch.Tensor ? await valuesOf(v) : v);
  }
  return out;
}

function world(dev: torch.Device): World {
  torch.manualSeed(7);
  const model = new Net().to(dev);
  const opt = new torch.optim.Adam(model.parameters(), { lr: 0.01 });
  return { model, opt, x: torch.randn(5, 6, { device: dev }), y: torch.tensor([0, 1, 2, 3, 1], { dtype: 'int32', device: dev }), dev };
}

/** One training step of the case in a mode; returns the loss tensor. */
function stepOf(mode: Mode, w: World, c: Case): () => T {
  const body = (loss: () => T) => () => {
    const l = loss();
    w.opt.zeroGrad();
    l.backward();
    c.afterBackward?.(w);
    w.opt.step();
    return l;
  };
  if (mode === 'eager') return body(() => c.loss(w));
  if (mode === 'compiled') {
    const f = torch.compile((x: T) => c.loss({ ...w, x }));
    return body(() => f(w.x));
  }
  return torch.compile(body(() => c.loss(w)));
}

describe.each(testDevices())('bad input on %s', (dev) => {
  describe.each(MODES)('%s', (mode) => {
    it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
      const w = world(dev);
      // one good step first, so that grads and Adam's state exist
      const goodStep = stepOf(mode, w, { name: 'good', loss: good, says: [] });
      await goodStep().item();
      const before = await stateOf(w);
      let message: string | null = null;
      try {
        await stepOf(mode, w, c)().item();
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message, 'expected an error').not.toBeNull();
      for (const p of c.says) {
        if (typeof p === 'string') expect(message).toContain(p);
        else expect(message).toMatch(p);
      }
      if (mode === 'step' || !c.atomicInStepOnly) expect(await stateOf(w), 'state changed by the failed step').toEqual(before);
      // the next good step works, and it is the step eager mode takes from the same state
      const next = await goodStep().item();
      expect(Number.isFinite(next)).toBe(true);
      expect((w.opt.state.get(w.model.l1.weight) as { step: number }).step).toBe(2);
      ran++;
      modesSeen.add(`${dev} ${mode}`);
    });
  });
});

afterAll(() => {
  console.log(`bad-input catalogue: ${CASES.length} cases x ${modesSeen.size} modes (${[...modesSeen].join(', ')}) = ${ran} runs passed`);
});
