/**
 * torch.compile: every call re-traces the function (cheap: no kernel runs while tracing),
 * hashes the graph and looks it up in a cache of compiled plans, so JavaScript control
 * flow is always honoured: a new path compiles once, then hits. A trace that repeats the
 * previous call's graph node for node is that graph's hit without being built or hashed
 * (trace/expectation.ts). With backward needed, the
 * forward and the symbolically derived backward are compiled together and split (as
 * AOTAutograd does); a function that calls backward() and optimizer.step() itself is
 * compiled as one graph that updates parameters and optimizer state on the device.
 */
import { Tensor } from '../eager/tensor.ts';
import { checkOptions } from '../eager/options.ts';
import { WgtorchError } from '../ir/errors.ts';
import type { Graph, GraphOutput } from '../ir/graph.ts';
import { graphHash, structureHash } from '../ir/hash.ts';
import { mutationKey, mutationSources } from './mutation-sources.ts';
import { getOp } from '../ir/registry.ts';
import { fmtShape } from '../ir/shape.ts';
import { Module } from '../nn/module.ts';
import { getBackend, type Storage } from '../runtime/backend.ts';
import { GpuStorage, type WebGPUBackend } from '../runtime/webgpu/backend.ts';
import { parameterNames } from '../trace/api.ts';
import { TraceExpectation } from '../trace/expectation.ts';
import { traceProgram, type TracedProgram } from '../trace/program.ts';
import { CompiledBackward } from './compiled-backward.ts';
import { CpuPlan } from './cpu-plan.ts';
import { CompiledGraph, type Plan } from './compiled-graph.ts';
import { envVar } from '../platform/env.ts';
import { dumpGraph } from './dump.ts';
import { log, logEnabled } from '../runtime/logs.ts';
import { optimize } from './optimize.ts';
import { backwardPart, forwardPart, wholePart } from './split.ts';
import { GpuPlan } from './gpu-plan.ts';
import { checkInputs, checkResults, checkWhenWritten, takeChecks, type GraphCheck } from './checks.ts';
import { StaticGuard } from './static-guard.ts';
import { withUndo } from '../eager/undo.ts';
import { isGradEnabled } from '../eager/grad-mode.ts';

export interface CompileOptions {
  /** 'static': trace once per input shapes and replay (the function must have no data-dependent JS control flow). */
  mode?: 'default' | 'static';
  /** write the IR and WGSL of every compiled graph under this folder (also WGTORCH_DUMP) */
  dump?: string;
  /**
   * time the matmul variants of each new (device, shape class) and use the fastest, remembered
   * on disk (default true; WGTORCH_AUTOTUNE=0 turns it off). Tuning runs in the background from
   * the first call, which uses the default variant; warmup() waits for it.
   */
  autotune?: boolean;
  /**
   * WebGPU: while a new graph's kernels compile in the background (on a second device, whose
   * compiles warm the driver's shader cache: where a driver compiles at the first dispatch,
   * as lavapipe does, a cold fused kernel takes seconds), calls run the function eagerly;
   * the first call that finds its graph compiled runs it compiled, and so does every call
   * after it. Results are eager mode's meanwhile. `ready()` resolves when the compiles are done.
   * Matmul variants are then tuned only when asked (`warmup()`). Node waits for GPU work
   * still queued when a script ends: a script done before the compiles are calls process.exit().
   */
  eagerWhileCompiling?: boolean;
}

export interface Compiled<F extends (...args: any[]) => any> {
  (...args: Parameters<F>): ReturnType<F>;
  /** the graphs compiled so far, with their IR, kernels and stats */
  graphs(): CompiledGraph[];
  /** cache statistics */
  cacheInfo(): { graphs: number; hits: number; misses: number };
  /**
   * The call, as an async first call: after tracing and compiling it creates every pipeline
   * concurrently (createComputePipelineAsync) and only then records the kernels. Where a
   * driver compiles at pipeline creation this overlaps the compiles; later calls find them ready.
   */
  warmup(...args: Parameters<F>): Promise<ReturnType<F>>;
  /**
   * Runs the call once more kernel by kernel and times each (WebGPU: each dispatch replayed
   * alone; cpu: each kernel of one real call, its Wasm matmul apart as matmulMs): where the
   * time of a compiled call goes. It repeats in-place updates, so use it after measuring.
   */
  profile(...args: Parameters<F>): Promise<{ name: string; ms: number; flops: number; matmulMs?: number }[]>;
  /** resolves when the background compiles of the graphs built so far are done (eagerWhileCompiling) */
  ready(): Promise<void>;
}

export function compile<F extends (...args: any[]) => any>(target: F, opts: CompileOptions = {}): Compiled<F> {
  checkOptions('compile', opts, ['mode', 'dump', 'autotune', 'eagerWhileCompiling']);
  if (typeof target !== 'function') throw new WgtorchError('compile: expected a Module or a function of tensors.');
  const mode = opts.mode ?? 'default';
  if (mode !== 'default' && mode !== 'static') {
    throw new WgtorchError(`compile: unknown mode ${JSON.stringify(mode)}. Fix: use mode 'default' (re-trace every call) or 'static' (trace once per input shapes).`);
  }
  if (opts.autotune !== undefined && typeof opts.autotune !== 'boolean') {
    throw new WgtorchError(`compile: option autotune must be true or false, got ${JSON.stringify(opts.autotune)}. Fix: pass autotune: false to keep the default matmul kernels.`);
  }
  if (opts.eagerWhileCompiling !== undefined && typeof opts.eagerWhileCompiling !== 'boolean') {
    throw new WgtorchError(`compile: option eagerWhileCompiling must be true or false, got ${JSON.stringify(opts.eagerWhileCompiling)}.`);
  }
  if (opts.dump !== undefined && typeof opts.dump !== 'string') {
    throw new WgtorchError(`compile: option dump must be a folder path (a string), got ${typeof opts.dump}. Fix: pass dump: './wgtorch-dump'.`);
  }
  const dumpDir = opts.dump ?? envVar('WGTORCH_DUMP');
  const root = target instanceof Module ? target : null;
  const cache = new Map<string, CompiledGraph>();
  const staticCache = new Map<
    string,
    { state: 'traced'; program: TracedProgram } | { state: 'replay'; entry: CompiledGraph; guard: StaticGuard } | { state: 'dynamic' }
  >();
  let hits = 0;
  let misses = 0;
  // each call's trace first checks itself against the graph of the previous call (see
  // trace/expectation.ts): a trace that repeats it is a hit without building or hashing a graph
  const repeatTraces = envVar('WGTORCH_TRACE_VERIFY') !== '0';
  const expectations = new WeakMap<CompiledGraph, TraceExpectation>();
  /** each entry's mutationKey: part of its cache key, and what a repeating trace must also have */
  const inPlaceKeys = new WeakMap<CompiledGraph, string>();
  let previous: CompiledGraph | null = null;

  const build = (program: TracedProgram, hash: string): CompiledGraph => {
    const t0 = performance.now();
    const g = program.graph;
    const device = deviceOf(program);
    // in-place updates (parameters, optimizer state): new value -> the input holding the old one
    const mutations = new Map<number, number | null>();
    const sources = mutationSources(program);
    g.outputs.filter((o) => o.role === 'mutation').forEach((o, i) => mutations.set(o.id, sources[i]!));
    const makePlan = (traced: Graph): Plan => {
      const { graph: part, checks } = takeChecks(traced);
      const opt = optimize(part);
      const muts = new Map([...mutations].filter(([v]) => opt.outputs.some((o) => o.id === v && o.role === 'mutation')));
      let plan: Plan;
      if (device === 'cpu') plan = new CpuPlan(opt, muts);
      else {
        const backend = getBackend('webgpu') as WebGPUBackend;
        // the backend's default follows WGTORCH_AUTOTUNE; the option overrides it per compiled function
        plan = new GpuPlan(opt, backend, muts, { tuner: (opts.autotune ?? backend.autotune) ? backend.matmulTuner : null });
      }
      planChecks.set(plan, checks);
      return plan;
    };
    log('graph', () => `traced graph ${hash}:\n${String(program.graph.nodes.length)} nodes`);
    let entry: CompiledGraph;
    if (program.symbolicBackward) {
      const fwd = forwardPart(g);
      const bwd = backwardPart(g);
      const backward = makePlan(bwd);
      // the backward runs later (at loss.backward()): its pipelines can be created meanwhile
      if (backward instanceof GpuPlan) backward.prepare().catch(() => {}); // errors resurface at its first run
      entry = new CompiledGraph(hash, structureHash(g), program, { forward: makePlan(fwd), backward }, device);
    } else {
      entry = new CompiledGraph(hash, structureHash(g), program, { forward: makePlan(wholePart(g)), backward: null }, device);
    }
    entry.compileMs = performance.now() - t0;
    log('graph', () => entry.forwardIR);
    if (entry.backwardIR) log('backward', () => entry.backwardIR!);
    if (logEnabled('fusion')) for (const line of entry.fusionLog) log('fusion', line);
    if (logEnabled('kernels')) for (const k of entry.kernels) log('kernels', `${k.part}: ${k.ir}`);
    // the generated code of every kernel: WGSL, or JavaScript on the cpu
    if (logEnabled('wgsl')) for (const k of entry.kernels) log('wgsl', `${k.name}:\n${k.source}`);
    log('perf', () => `compiled graph ${hash} in ${entry.compileMs.toFixed(1)} ms: ${entry.stats.fusedKernels} fused kernels in ${entry.stats.dispatches} dispatches`);
    logMatmuls(entry);
    // tune in the background: this call and the next ones run the default variants meanwhile
    // (not while calls run eagerly: the tuner compiles and times every candidate on the main queue)
    const untuned = gpuPlans(entry).filter((p) => p.untuned.length);
    if (untuned.length && !opts.eagerWhileCompiling) {
      void Promise.all(untuned.map((p) => p.autotune())).then(
        () => logMatmuls(entry),
        (e: unknown) => log('perf', `autotune of graph ${hash} failed, keeping the default variants: ${e instanceof Error ? e.message : String(e)}`),
      );
    }
    return entry;
  };

  /** Traces a call and finds (or builds) its compiled graph: the one path of every call. */
  const entryFor = (args: unknown[]) => {
    const tensorPos = args.map((a, i) => (a instanceof Tensor ? i : -1)).filter((i) => i >= 0);
    const tensors = tensorPos.map((i) => args[i] as Tensor);
    const run = (...traced: Tensor[]) => {
      const full = [...args];
      tensorPos.forEach((p, k) => (full[p] = traced[k]));
      return target(...full);
    };
    const t0 = performance.now();
    const expect = previous && expectations.get(previous);
    let program = traceProgram(run, tensors, { backward: 'auto', names: parameterNames(root), rootModule: root, expect });
    const inPlace = mutationKey(mutationSources(program));
    if (program.repeated && inPlaceKeys.get(previous!) !== inPlace) {
      // the same nodes writing their results into other tensors: the graph is looked up (or built) as a fresh trace's, on a copy of its own
      program = { ...program, graph: new TraceExpectation(program.graph, deviceOf(program)).graph, repeated: false };
    }
    if (program.repeated) {
      // the previous call's graph, node for node, on its device: its hash and its entry
      const entry = previous!;
      const traceMs = performance.now() - t0;
      hits++;
      log('cache', () => `hit: graph ${entry.hash} (trace ${traceMs.toFixed(2)} ms, repeats the previous call's graph)`);
      return { entry, program, tensors, traceMs };
    }
    // the same graph on another device (a model moved with to()) is another compiled graph
    const device = deviceOf(program);
    const hash = device === 'webgpu' ? graphHash(program.graph) : `${graphHash(program.graph)}-cpu`;
    const traceMs = performance.now() - t0;
    let entry = cache.get(hash + inPlace);
    if (entry) {
      hits++;
      log('cache', () => `hit: graph ${hash} (trace ${traceMs.toFixed(2)} ms)`);
    } else {
      misses++;
      const why = explainMiss(program, cache, hash);
      log('cache', `miss: ${why}`);
      if (cache.size) log('recompiles', `recompiling: ${why}`);
      // (copied before build: nothing the passes do reaches what later traces are checked against)
      const expectation = repeatTraces ? new TraceExpectation(program.graph, device) : null;
      cache.set(hash + inPlace, (entry = build(program, hash)));
      inPlaceKeys.set(entry, inPlace);
      if (expectation) expectations.set(entry, expectation);
      if (dumpDir) dumpGraph(dumpDir, entry);
    }
    previous = repeatTraces ? entry : null;
    return { entry, program, tensors, traceMs };
  };

  // eagerWhileCompiling: calls run eagerly until the first one whose graph is compiled
  let eagerPhase = opts.eagerWhileCompiling === true;
  const compiled = new WeakSet<CompiledGraph>();
  const compiling = new Map<CompiledGraph, Promise<void>>();
  const compileInBackground = (entry: CompiledGraph, plans: GpuPlan[]) => {
    if (compiling.has(entry)) return;
    log('perf', `graph ${entry.hash}: compiling ${plans.reduce((n, p) => n + p.kernels.length, 0)} kernels in the background; calls run eagerly meanwhile`);
    const t0 = performance.now();
    const done = Promise.all(plans.map((p) => p.precompile())).then(
      () => log('perf', `graph ${entry.hash}: kernels compiled in the background in ${(performance.now() - t0).toFixed(0)} ms`),
      // the compiled run reports the error, with its kernel's label, at its first dispatch
      (e: unknown) => log('perf', `graph ${entry.hash}: background compile failed (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`),
    );
    compiling.set(entry, done.then(() => void compiled.add(entry)));
  };

  let warnedDynamic = false;
  const call = (...args: unknown[]) =>
    withUndo(() => {
      if (eagerPhase) {
        // a dry trace finds (or builds) the graph, keeping none of the trace's effects
        const { entry } = withUndo(() => entryFor(args), { always: true });
        const plans = gpuPlans(entry);
        if (plans.length && !compiled.has(entry)) {
          compileInBackground(entry, plans);
          return target(...args);
        }
        eagerPhase = false;
        hits--; // the call below finds the graph the dry trace found: one call, one lookup
      }
      if (mode !== 'static') {
        const { entry, program, traceMs } = entryFor(args);
        entry.calls++;
        const t1 = performance.now();
        const result = execute(entry, program);
        log('perf', () => `call: trace+hash ${traceMs.toFixed(2)} ms, record ${(performance.now() - t1).toFixed(2)} ms, ${entry.stats.dispatches} dispatches`);
        return result;
      }
      // static mode: replay a trace, guarded on what it froze (see static-guard.ts)
      const key = JSON.stringify([
        isGradEnabled(),
        args.map((a) => (a instanceof Tensor ? [a.shape, a.dtype, a.device, a.requiresGrad] : typeof a === 'object' ? null : a)),
      ]);
      const hit = staticCache.get(key);
      const tensors = args.filter((a): a is Tensor => a instanceof Tensor);
      if (hit?.state === 'replay') {
        const why = hit.guard.stale();
        if (!why) {
          hits++;
          hit.entry.calls++;
          log('cache', () => `static hit: graph ${hit.entry.hash} (inputs ${tensors.map((t) => fmtShape(t.shape)).join(', ')})`);
          return replayStatic(hit.entry, hit.guard.program, tensors);
        }
        log('recompiles', `static: re-tracing, ${why}`);
      }
      const { entry, program } = entryFor(args);
      entry.calls++;
      if (!hit || hit.state === 'replay') staticCache.set(key, { state: 'traced', program });
      else if (hit.state === 'traced') {
        const why = StaticGuard.differs(hit.program, program);
        if (why) {
          staticCache.set(key, { state: 'dynamic' });
          log('recompiles', `static: tracing every call, ${why}`);
          if (!warnedDynamic) {
            warnedDynamic = true;
            console.warn(`wgtorch compile(mode: 'static'): ${why}, so a replay would freeze it; this function is traced on every call instead (as in mode 'default').`);
          }
        } else staticCache.set(key, { state: 'replay', entry, guard: new StaticGuard(program) });
      }
      return execute(entry, program);
    });

  const fn = call as unknown as Compiled<F>;
  fn.warmup = async (...args: unknown[]) => {
    // trace and compile without keeping the trace's effects (an optimizer's step count), prepare, then make the call
    const { entry } = withUndo(() => entryFor(args), { always: true });
    await Promise.all(gpuPlans(entry).map((p) => p.autotune()));
    await Promise.all(gpuPlans(entry).map((p) => p.prepare()));
    const r = call(...args) as ReturnType<F>;
    hits--; // its trace found the graph the dry trace above built: one call, one lookup
    return r;
  };
  fn.profile = async (...args: unknown[]) => {
    const { entry, program } = entryFor(args);
    const plan = entry.plans.forward;
    const { bind, scalar, targets } = bindings(program);
    if (plan instanceof CpuPlan) return plan.profile(bind, scalar, targets);
    if (!(plan instanceof GpuPlan)) throw new WgtorchError('profile: this compiled graph cannot be profiled.');
    return plan.profile(bind, scalar, targets);
  };
  fn.ready = () => Promise.all(compiling.values()).then(() => {});
  fn.graphs = () => [...cache.values()];
  fn.cacheInfo = () => ({ graphs: cache.size, hits, misses });
  return fn;
}

/** The value checks each plan runs around its kernels (see checks.ts). */
const planChecks = new WeakMap<object, GraphCheck[]>();

const gpuPlans = (e: CompiledGraph): GpuPlan[] => [e.plans.forward, e.plans.backward].filter((p): p is GpuPlan => p instanceof GpuPlan);

function logMatmuls(entry: CompiledGraph): void {
  for (const m of entry.stats.matmuls) log('perf', () => `graph ${entry.hash}: ${m.kernel} (${m.problem}) uses matmul ${m.variant} (${m.source}${m.shapeClass ? `, class ${m.shapeClass}` : ''})`);
}

function deviceOf(p: TracedProgram): 'cpu' | 'webgpu' {
  const devs = new Set<string>();
  for (const a of p.tracer.args) devs.add(a.tensor.device);
  for (const c of p.tracer.captures) devs.add(c.tensor.device);
  if (devs.size > 1) {
    throw new WgtorchError(`compile: the traced function uses tensors on several devices (${[...devs].join(', ')}). Fix: move the model and inputs to one device.`);
  }
  return devs.has('webgpu') ? 'webgpu' : 'cpu';
}

/** Why a call missed the cache, in the words of the `cache`/`recompiles` logs. */
function explainMiss(p: TracedProgram, cache: Map<string, CompiledGraph>, hash: string): string {
  if (!cache.size) return `first call: graph ${graphHash(p.graph)}`;
  if ([...cache.values()].some((e) => e.hash === hash)) return `graph ${hash} again, writing its in-place results into other tensors (see mutation-sources.ts)`;
  const s = structureHash(p.graph);
  const same = [...cache.values()].find((e) => e.structure === s) ?? null;
  if (same) {
    const a = same.program.tracer.args;
    const b = p.tracer.args;
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      const sa = same.program.graph.node(a[i].id).shape;
      const sb = p.graph.node(b[i].id).shape;
      for (let d = 0; d < Math.max(sa.length, sb.length); d++) {
        if (sa[d] !== sb[d]) return `input ${i} dim ${d}: expected ${sa[d]}, got ${sb[d]}`;
      }
    }
    return `shapes changed (graph ${graphHash(p.graph)})`;
  }
  return `new control-flow path: graph hash ${graphHash(p.graph)} (${cache.size} graph${cache.size > 1 ? 's' : ''} cached)`;
}

/** What a traced call binds: its inputs' storages, its scalars' values, the tensors it updates. */
function bindings(program: TracedProgram) {
  // by node id (small integers)
  const inputs: Storage[] = [];
  for (const a of program.tracer.args) inputs[a.id] = a.tensor._storage;
  for (const c of program.tracer.captures) inputs[c.id] = c.storage;
  const scalars: number[] = [];
  for (const s of program.tracer.scalars) scalars[s.id] = s.value;
  const bind = (id: number) => {
    const s = inputs[id];
    if (!s) throw new Error(`compiled graph input %${id} has no binding`);
    return s;
  };
  const scalar = (id: number) => scalars[id];
  const targets = new Map<number, Storage>();
  outputRoles(program.graph).mutation.forEach((o, i) => targets.set(o.id, program.mutated[i].storage));
  return { bind, scalar, targets };
}

type RoleLists = Record<GraphOutput['role'], GraphOutput[]> & { mutationIndex: Map<number, number> };
/** A graph's outputs by role, made once per graph: a compiled graph and a repeated trace's graph serve every call. */
const roleLists = new WeakMap<Graph, RoleLists>();
function outputRoles(g: Graph): RoleLists {
  let r = roleLists.get(g);
  if (!r) {
    r = { output: [], grad: [], mutation: [], saved: [], check: [], mutationIndex: new Map() };
    for (const o of g.outputs) r[o.role].push(o);
    r.mutation.forEach((o, i) => r!.mutationIndex.set(o.key, i));
    roleLists.set(g, r);
  }
  return r;
}

/** Runs a compiled graph for the bindings of `program`, and turns its traced results into real tensors. */
function execute(entry: CompiledGraph, program: TracedProgram): unknown {
  const { bind, scalar, targets } = bindings(program);
  const plan = entry.plans.forward;
  const g = plan.graph;
  const roles = outputRoles(g);
  const outputsOf = (role: GraphOutput['role']) => roles[role];
  const diffCount = entry.plans.backward ? program.outputs.filter((t) => t.requiresGrad).length : 0;
  if (diffCount > 1) {
    throw new WgtorchError('compile: a compiled function with several outputs that require grad is not supported yet. Fix: return one differentiable tensor (e.g. the loss), or call backward() inside the compiled function.');
  }
  const checks = planChecks.get(plan) ?? [];
  checkInputs(g, checks, bind);
  // the call's kernels get a batch of their own: if anything fails while recording them, none runs
  const ctx = plan instanceof GpuPlan ? (getBackend('webgpu') as WebGPUBackend).ctx : null;
  ctx?.flush();
  let out: Map<number, Storage>;
  try {
    const early = checks.length ? checkWhenWritten(g, checks) : null;
    out = plan.run(bind, scalar, targets, undefined, early?.afterKernel);
    checkResults(g, checks, out, early?.done);
  } catch (e) {
    ctx?.discardOpenBatch();
    throw e;
  }

  // returned tensors
  const diffOut: Tensor[] = [];
  outputsOf('output').forEach((o, k) => {
    const t = program.outputs[k];
    const needsGrad = t.requiresGrad;
    realize(t, out.get(o.id)!);
    if (needsGrad && entry.plans.backward) diffOut.push(t);
  });
  // gradients a traced backward() left in leaves
  const grads = outputsOf('grad');
  if (!entry.plans.backward) {
    program.gradTargets.forEach((leaf, i) => {
      const n = g.node(grads[i].id);
      leaf.grad = new Tensor(out.get(grads[i].id)!, [...n.shape], n.dtype);
    });
  }
  // what the backward reads of the call's inputs, at the version it reads (a later in-place write is an error, as in eager)
  const bwd = entry.plans.backward;
  const savedInputs: { storage: Storage; version: number; name: string; shape: number[] }[] = [];
  if (bwd && diffOut.length) {
    for (const n of bwd.graph.nodes) {
      if (n.op !== 'input' || n.phase === 'backward' || (n.name ?? '').startsWith('saved %')) continue;
      const st = bind(n.id);
      savedInputs.push({ storage: st, version: st.version, name: n.name ?? 'an input', shape: n.shape });
    }
  }
  // in-place writes into real tensors (parameters, optimizer state, running statistics)
  const { mutationIndex } = outputRoles(program.graph);
  outputsOf('mutation').forEach((o) => {
    const { storage } = program.mutated[mutationIndex.get(o.key)!];
    const src = out.get(o.id)!;
    // (not while a device check is pending: the new buffer may never have been written, and a gated copy keeps the old value)
    const pendingCheck = storage instanceof GpuStorage && storage.backend.ctx.checks.armed;
    if (src !== storage && !pendingCheck && plan instanceof GpuPlan && plan.renamed.has(o.id) && storage instanceof GpuStorage && src instanceof GpuStorage) {
      plan.adoptRenamed(o.id, storage, src);
    } else if (src !== storage) {
      const n = g.node(o.id);
      storage.backend.exec(getOp('copy'), [{ storage: src, shape: n.shape, dtype: n.dtype }], {}, { storage, shape: n.shape, dtype: n.dtype });
    }
    storage.version++;
  });

  if (bwd && diffOut.length) {
    const saved = new Map<number, Storage>();
    // keyed by the traced id: the backward graph names saved values that way
    for (const o of outputsOf('saved')) saved.set(o.key, out.get(o.id)!);
    const real = (t: Tensor) => {
      const i = program.tracedArgs.indexOf(t);
      return i >= 0 ? program.tracer.args[i].tensor : t;
    };
    const targets = program.gradTargets.map(real);
    const seedId = bwd.graph.nodes.find((n) => n.op === 'input' && n.phase === 'backward')!.id;
    diffOut[0].gradFn = new CompiledBackward(targets, (gOut) => {
      for (const s of savedInputs) {
        if (s.storage.version !== s.version) {
          throw new WgtorchError(
            'one of the variables needed for gradient computation has been modified by an inplace operation: ' +
              `[${s.storage.dtype} ${fmtShape(s.shape)}], which is ${s.name === 'captured' ? 'a tensor read by' : `${s.name}, an input of`} the compiled function, is at version ${s.storage.version}; ` +
              `expected version ${s.version} instead (needed by CompiledFunctionBackward).` +
              ' Fix: use the out-of-place op (e.g. x.add(1) instead of x.add_(1)), or clone() the tensor before modifying it.',
          );
        }
      }
      const res = bwd.run((id) => (id === seedId ? gOut._storage : saved.get(id) ?? bind(id)), scalar);
      return bwd.graph.outputs.map((o) => {
        const n = bwd.graph.node(o.id);
        return new Tensor(res.get(o.id)!, [...n.shape], n.dtype);
      });
    });
  }
  return program.result;
}

/** A traced tensor object becomes a real one: same object, real storage, no traced history. */
function realize(t: Tensor, storage: Storage): void {
  t._storage = storage;
  t._base = null;
  t.gradFn = null;
}

function replayStatic(entry: CompiledGraph, program: TracedProgram, tensors: Tensor[]): unknown {
  // rebind arguments; captured tensors are read through their (possibly moved) storages
  program.tracer.args.forEach((a, i) => {
    if (program.graph.node(a.id).phase === 'forward') a.tensor = tensors[i];
  });
  for (const c of program.tracer.captures) c.storage = c.tensor._storage;
  // fresh result tensors (the first call's were handed to the caller), shaped like the trace's
  const fresh = program.outputs.map((t) => {
    const f = new Tensor(t._storage, [...t.shape], t.dtype);
    if (t.requiresGrad) f.requiresGrad = true;
    return f;
  });
  const swap = (x: unknown): unknown => {
    if (x instanceof Tensor) return fresh[program.outputs.indexOf(x)] ?? x;
    if (Array.isArray(x)) return x.map(swap);
    return x;
  };
  return execute(entry, { ...program, outputs: fresh, result: swap(program.result) });
}
