/**
 * The tracer is a device: while it is active every op is recorded as an IR node
 * instead of running. User code, modules, losses, optimizers and custom Functions
 * run unchanged on traced tensors; real tensors they touch (weights, optimizer state)
 * become graph inputs, and in-place writes to them become mutation outputs.
 */
import { gradHooks } from '../eager/autograd.ts';
import { tracing, type TraceRecorder } from '../eager/dispatch.ts';
import { observers, persistentHooks } from '../eager/persistent.ts';
import { Tensor } from '../eager/tensor.ts';
import { WgtorchError } from '../ir/errors.ts';
import type { DType } from '../ir/dtype.ts';
import { Graph, type OutputRole, type Phase } from '../ir/graph.ts';
import type { Attrs, Meta, OpDef } from '../ir/registry.ts';
import { fmtShape, numel, sameShape } from '../ir/shape.ts';
import { moduleHooks, type Module } from '../nn/module.ts';
import type { Device, Storage } from '../runtime/backend.ts';
import { copyAttrs, type TraceExpectation } from './expectation.ts';
import { TraceBackend, TraceStorage } from './trace-storage.ts';

export interface Capture {
  id: number;
  storage: Storage;
  tensor: Tensor;
}

/** Where the user's code called the untraceable thing: the first stack frame outside wgtorch's src/. */
function userFrame(): string | null {
  const stack = new Error().stack?.split('\n').slice(1) ?? [];
  for (const line of stack) {
    if (/[\\/]src[\\/](eager|trace|ir|nn|optim|runtime|compile)[\\/]/.test(line) || line.includes('node:internal')) continue;
    const m = line.match(/\(?([^\s()]+:\d+:\d+)\)?$/);
    if (m) return m[1].replace(/^file:\/\//, '');
  }
  return null;
}

export class Tracer implements TraceRecorder {
  readonly graph = new Graph();
  phase: Phase = 'forward';
  /** Current graph value of every real storage the trace has read (in-place writes move it); a traced storage holds its own. */
  private readonly values = new Map<Storage, number>();
  readonly args: { id: number; tensor: Tensor }[] = [];
  readonly captures: Capture[] = [];
  readonly scalars: { id: number; value: number }[] = [];
  /** Real storages written in place, with their final value. */
  readonly mutations = new Map<Storage, { id: number; tensor: Tensor }>();
  /** Real leaves whose .grad the traced code assigned. */
  readonly gradLeaves = new Set<Tensor>();
  /** Modules called and optimizers stepped while tracing: what a static replay guards on. */
  readonly modules = new Set<Module>();
  readonly optimizers = new Set<object>();
  private readonly backends = new Map<Device, TraceBackend>();
  private readonly scopes: { module: Module; path: string }[] = [];

  /**
   * While set, the graph this trace is expected to repeat (the previous call's): nodes are checked
   * against it and none is built. At the first node that differs the checked ones are copied into
   * `graph` and the trace goes on building it (see expectation.ts).
   */
  private expect: TraceExpectation | null;
  /** Nodes checked so far; their scopes and input names, which a copy of them needs. */
  private checked = 0;
  private readonly checkedScopes: (string | undefined)[];
  private readonly checkedNames = new Map<number, string>();

  constructor(
    /** Names for captured tensors (parameter names), by storage. */
    private readonly names: Map<Storage, string> = new Map(),
    private readonly rootModule: Module | null = null,
    expect: TraceExpectation | null = null,
  ) {
    this.expect = expect;
    this.checkedScopes = expect ? new Array<string | undefined>(expect.length) : [];
  }

  /** Whether the trace so far repeats the expected graph, node for node. */
  get repeating(): boolean {
    return this.expect !== null;
  }

  // ---------------------------------------------------------------- nodes
  /** Records a node (or checks it against the expected graph) and returns its id. */
  private node(
    op: string, inputs: number[], attrs: Attrs, shape: number[], dtype: DType, phase: Phase,
    scope: string | undefined, name: string | undefined, device: Device | null,
  ): number {
    const x = this.expect;
    if (x !== null) {
      const id = this.checked;
      if ((device === null || device === x.device) && x.matches(id, op, inputs, attrs, shape, dtype, phase)) {
        this.checked = id + 1;
        this.checkedScopes[id] = scope;
        if (name !== undefined) this.checkedNames.set(id, name);
        return id;
      }
      this.diverge();
    }
    return this.graph.add({ op, inputs, attrs, shape, dtype, phase, scope, name }).id;
  }

  /** The trace left the expected graph: the nodes it repeated become the start of its own. */
  private diverge(): void {
    const x = this.expect!;
    this.expect = null;
    const values = new Map<number, number>();
    for (const s of this.scalars) values.set(s.id, s.value);
    for (let id = 0; id < this.checked; id++) {
      const e = x.graph.node(id);
      this.graph.add({
        op: e.op, inputs: [...e.inputs], attrs: e.op === 'scalar' ? { value: values.get(id)! } : copyAttrs(e.attrs),
        shape: [...e.shape], dtype: e.dtype, phase: e.phase, scope: this.checkedScopes[id], name: this.checkedNames.get(id),
      });
    }
  }

  /** Shape of a recorded value. */
  private shapeOf(id: number): number[] {
    return (this.expect ?? this).graph.node(id).shape;
  }

  /** The name of input node `id`. */
  inputName(id: number): string | undefined {
    return this.expect ? this.checkedNames.get(id) : this.graph.node(id).name;
  }

  /**
   * The trace's graph with its outputs (given in order, 'saved' ones left out): the expected
   * graph itself when the trace repeated it to the end, else the graph it built.
   */
  complete(outputs: readonly { id: number; role: OutputRole; label: string }[]): { graph: Graph; repeated: boolean } {
    const x = this.expect;
    if (x !== null) {
      if (this.checked === x.length && x.matchesOutputs(outputs)) return { graph: x.graph, repeated: true };
      this.diverge();
    }
    for (const o of outputs) this.graph.addOutput(o.id, o.role, o.label);
    return { graph: this.graph, repeated: false };
  }

  // ---------------------------------------------------------------- inputs
  /** A traced stand-in for a user argument. */
  arg(t: Tensor, name: string): Tensor {
    const id = this.node('input', [], {}, [...t.shape], t.dtype, 'forward', undefined, name, t.device);
    this.args.push({ id, tensor: t });
    const traced = new Tensor(this.storageFor(t.device, id, t.dtype, t.shape), [...t.shape], t.dtype);
    if (t.requiresGrad) traced.requiresGrad = true;
    return traced;
  }

  /** A graph input of the backward phase (the incoming gradient). */
  backwardSeed(like: Tensor): Tensor {
    const id = this.node('input', [], {}, [...like.shape], like.dtype, 'backward', undefined, 'grad_output', like.device);
    this.args.push({ id, tensor: like });
    return new Tensor(this.storageFor(like.device, id, like.dtype, like.shape), [...like.shape], like.dtype);
  }

  private storageFor(device: Device, id: number, dtype: Tensor['dtype'], shape: readonly number[]): TraceStorage {
    let be = this.backends.get(device);
    if (!be) this.backends.set(device, (be = new TraceBackend(device, (what) => this.untraceable(what, null))));
    return new TraceStorage(be, dtype, numel(shape), this, id);
  }

  private scalar(v: number): number {
    const x = this.expect;
    const id = x !== null && x.matchesScalar(this.checked, v, this.phase)
      ? this.checked++
      : this.node('scalar', [], { value: v }, [], 'float32', this.phase, undefined, undefined, null);
    this.scalars.push({ id, value: v });
    return id;
  }

  /** The graph value a tensor holds now: traced, written in place, or a real tensor read for the first time. */
  valueOf(t: Tensor): number {
    const s = t._storage;
    let id = s instanceof TraceStorage && s.owner === this ? s.value : this.values.get(s);
    if (id === undefined) {
      if (s instanceof TraceStorage) {
        throw new WgtorchError(
          `a tensor of shape ${fmtShape(t.shape)} from another trace was used here: values of a compiled or traced function exist only inside it.` +
            ' Fix: return the tensor from the function instead of keeping it in a variable outside.',
        );
      }
      id = this.node('input', [], {}, [...t.shape], t.dtype, 'forward', undefined, this.names.get(s) ?? 'captured', t.device);
      this.captures.push({ id, storage: s, tensor: t });
      this.values.set(s, id);
    }
    if (!sameShape(this.shapeOf(id), t.shape)) {
      // another view of the same storage
      id = this.node('reshape', [id], { shape: [...t.shape] }, [...t.shape], t.dtype, this.phase, this.scope(), undefined, null);
    }
    return id;
  }

  // ---------------------------------------------------------------- recording
  record(op: OpDef, inputs: (Tensor | number)[], attrs: Attrs, meta: Meta, device: Device, target: Storage | null): Storage {
    const ids = new Array<number>(inputs.length);
    for (let i = 0; i < inputs.length; i++) {
      const x = inputs[i];
      ids[i] = typeof x === 'number' ? this.scalar(x) : this.valueOf(x);
    }
    // attrs and meta are fresh objects of this call: the node can own them
    const id = this.node(op.name, ids, attrs, meta.shape, meta.dtype, this.phase, this.scope(), undefined, null);
    if (target) {
      if (target instanceof TraceStorage && target.owner === this) target.value = id;
      else this.values.set(target, id);
      if (!(target instanceof TraceStorage)) {
        const self = inputs.find((x): x is Tensor => typeof x !== 'number' && x._storage === target);
        const prev = this.mutations.get(target);
        this.mutations.set(target, { id, tensor: prev?.tensor ?? self ?? new Tensor(target, [...meta.shape], meta.dtype) });
      }
      return target;
    }
    return this.storageFor(device, id, meta.dtype, meta.shape);
  }

  records(t: Tensor): boolean {
    return t._storage instanceof TraceStorage || this.mutations.has(t._storage);
  }

  untraceable(what: string, t: Tensor | null): Error {
    const where = userFrame();
    const desc = t ? ` on a tensor of shape ${fmtShape(t.shape)}` : '';
    return new WgtorchError(
      `${what}${desc} cannot be traced: inside torch.compile / torch.trace tensors have no values yet, only a graph is recorded` +
        `${where ? ` (at ${where})` : ''}. Fix: move the read out of the compiled function (return the tensor and read it afterwards),` +
        ' or run this code eagerly without torch.compile.',
    );
  }

  // ---------------------------------------------------------------- scopes
  private scope(): string | undefined {
    return this.scopes.at(-1)?.path || undefined;
  }
  private enterModule<R>(m: Module, run: () => R): R {
    const parent = this.scopes.at(-1);
    let path: string;
    if (m === this.rootModule) path = '';
    else if (parent) {
      let child = m.constructor.name;
      for (const [k, c] of parent.module.namedChildren()) {
        if (c === m) {
          child = k;
          break;
        }
      }
      path = parent.path ? `${parent.path}.${child}` : child;
    } else path = m.constructor.name;
    this.scopes.push({ module: m, path });
    this.modules.add(m);
    for (const [n, p] of m.namedParameters('', false)) if (!this.names.has(p._storage)) this.names.set(p._storage, path ? `${path}.${n}` : n);
    for (const [n, b] of m.namedBuffers('', false)) if (!this.names.has(b._storage)) this.names.set(b._storage, path ? `${path}.${n}` : n);
    try {
      return run();
    } finally {
      this.scopes.pop();
    }
  }

  // ---------------------------------------------------------------- activation
  /** Runs fn with this tracer recording every op. */
  run<R>(fn: () => R): R {
    if (tracing.recorder) throw new WgtorchError('torch.compile / torch.trace cannot be nested: a trace is already recording.');
    const saved = {
      recorder: tracing.recorder,
      leaf: gradHooks.onLeafGrad,
      around: gradHooks.aroundBackward,
      call: moduleHooks.call,
      suspend: persistentHooks.suspend,
      step: observers.optimizerStep,
    };
    observers.optimizerStep = (o) => this.optimizers.add(o);
    tracing.recorder = this;
    gradHooks.onLeafGrad = (leaf) => {
      if (!(leaf._storage instanceof TraceStorage)) this.gradLeaves.add(leaf);
    };
    gradHooks.aroundBackward = (runBackward) => {
      const prev = this.phase;
      this.phase = 'backward';
      try {
        return runBackward();
      } finally {
        // what runs after backward() in a traced step is the parameter update
        this.phase = prev === 'forward' ? 'update' : prev;
      }
    };
    moduleHooks.call = (m, r) => this.enterModule(m, r);
    persistentHooks.suspend = (make) => {
      tracing.recorder = null;
      try {
        return make();
      } finally {
        tracing.recorder = this;
      }
    };
    try {
      return fn();
    } finally {
      tracing.recorder = saved.recorder;
      gradHooks.onLeafGrad = saved.leaf;
      gradHooks.aroundBackward = saved.around;
      moduleHooks.call = saved.call;
      persistentHooks.suspend = saved.suspend;
      observers.optimizerStep = saved.step;
    }
  }
}

