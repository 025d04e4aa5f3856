/**
 * Every op goes through here: infer the result from the registry, run it on the
 * inputs' backend (or record it, while a tracer is active), attach the backward node.
 */
import type { DType } from '../ir/dtype.ts';
import { WgtorchError } from '../ir/errors.ts';
import { getOp, type Attrs, type InputMeta, type Meta, type OpDef } from '../ir/registry.ts';
import { fmtShape, numel, sameShape } from '../ir/shape.ts';
import { getBackend, type Device, type KernelArg, type Storage, type TensorArg } from '../runtime/backend.ts';
import { OpNode } from './autograd.ts';
import { isGradEnabled } from './grad-mode.ts';
import { Tensor } from './tensor.ts';
import { noteAllocation } from './temporaries.ts';

/** The tracer plugs in here: while set, ops are recorded instead of run. */
export interface TraceRecorder {
  record(op: OpDef, inputs: (Tensor | number)[], attrs: Attrs, meta: Meta, device: Device, target: Storage | null): Storage;
  /** The error for code that needs a value while only a graph is being recorded. */
  untraceable(what: string, t: Tensor): Error;
  /** Whether t's value is a value of the graph being recorded (traced, or written in place while tracing). */
  records(t: Tensor): boolean;
}
export const tracing: { recorder: TraceRecorder | null } = { recorder: null };

/**
 * Reading a traced value is impossible: there is none yet. A real tensor the trace has not
 * written (a random draw on the cpu choosing the depth of a DynamicNet) can be read: every
 * call re-traces, so the graph follows whatever JavaScript decides with it.
 */
export function assertNotTracing(what: string, t: Tensor): void {
  if (tracing.recorder?.records(t)) throw tracing.recorder.untraceable(what, t);
}

let defaultDevice: Device = 'cpu';
export function setDefaultDevice(d: Device): void {
  if (d !== 'cpu' && d !== 'webgpu') {
    throw new WgtorchError(`setDefaultDevice: unknown device '${String(d)}'. Fix: use 'cpu' or 'webgpu'.`);
  }
  defaultDevice = d;
}
export function getDefaultDevice(): Device {
  return defaultDevice;
}

/** A tensor is its own shape-and-dtype record: infer reads the inputs as they are, copying nothing. */
const metasOf = (inputs: (Tensor | number)[]): InputMeta[] => inputs;
const argOf = (x: Tensor | number): KernelArg =>
  typeof x === 'number' ? x : { storage: x._storage, shape: x.shape, dtype: x.dtype };

function resolveDevice(op: string, inputs: (Tensor | number)[], device?: Device): Device {
  let dev: Device | undefined;
  for (const x of inputs) {
    if (typeof x === 'number') continue;
    if (dev === undefined) dev = x.device;
    else if (x.device !== dev) {
      throw new WgtorchError(
        `${op}: expected all tensors to be on the same device, but found at least two devices, ${dev} and ${x.device}.` +
          ` Fix: move them to one device first, e.g. t.to('${dev}').`,
      );
    }
  }
  return dev ?? device ?? defaultDevice;
}

function produce(op: OpDef, inputs: (Tensor | number)[], attrs: Attrs, meta: Meta, dev: Device, target: Storage | null): Storage {
  if (tracing.recorder) return tracing.recorder.record(op, inputs, attrs, meta, dev, target);
  if (op.name === 'reshape' && !target) return (inputs[0] as Tensor)._storage; // a view: same storage
  const be = getBackend(dev);
  for (const x of inputs) {
    if (typeof x !== 'number' && x._storage.backend !== be) {
      throw new WgtorchError(
        `${op.name}: an input of shape ${fmtShape(x.shape)} is a value recorded by torch.compile / torch.trace, used outside the trace that made it.` +
          ' Fix: return the tensor from the compiled function instead of keeping it in a variable outside.',
      );
    }
  }
  if (op.kind === 'check') {
    // a value check passes its input through: the result shares its storage
    const a = inputs[0] as Tensor;
    be.check(op, argOf(a) as TensorArg, attrs);
    return a._storage;
  }
  const storage = target ?? be.alloc(meta.dtype, numel(meta.shape));
  if (!target) noteAllocation(storage);
  be.exec(op, inputs.map(argOf), attrs, { storage, shape: meta.shape, dtype: meta.dtype });
  return storage;
}

const needsGrad = (x: Tensor | number) => typeof x !== 'number' && x.requiresGrad;

export function apply(name: string, inputs: (Tensor | number)[], attrs: Attrs = {}, device?: Device): Tensor {
  const op = getOp(name);
  const meta = op.infer(metasOf(inputs), attrs);
  const dev = resolveDevice(name, inputs, device);
  const out = new Tensor(produce(op, inputs, attrs, meta, dev, null), meta.shape, meta.dtype);
  // Only float results carry gradients (x.int() cuts the graph, as in PyTorch).
  if (op.grad && meta.dtype === 'float32' && isGradEnabled() && inputs.some(needsGrad)) out.gradFn = new OpNode(op, inputs, out, attrs);
  // A reshape that shares its input's storage is a view: in-place ops on it write the base.
  const src = inputs[0];
  if (typeof src !== 'number' && src !== undefined && out._storage === src._storage) out._base = src._base ?? src;
  return out;
}

/** self <- op(inputs) in place, with PyTorch's checks and autograd history rebased onto self. */
export function applyInPlace(self: Tensor, name: string, inputs: (Tensor | number)[], attrs: Attrs = {}): Tensor {
  const op = getOp(name);
  const meta = op.infer(metasOf(inputs), attrs);
  const shown = `${name === 'full' ? 'fill' : name === 'where' ? 'maskedFill' : name}_`;
  if (!sameShape(meta.shape, self.shape)) {
    throw new WgtorchError(
      `${shown}: output with shape ${fmtShape(self.shape)} doesn't match the broadcast shape ${fmtShape(meta.shape)}.` +
        ' Fix: use the out-of-place op, whose result may take the broadcast shape.',
    );
  }
  if (self.dtype !== meta.dtype && !castable(meta.dtype, self.dtype)) {
    throw new WgtorchError(
      `${shown}: result type ${meta.dtype} can't be cast to the desired output type ${self.dtype} (shape ${fmtShape(self.shape)}).` +
        ' Fix: convert the tensor first, e.g. t = t.float().',
    );
  }
  const tracking = isGradEnabled() && (self.requiresGrad || inputs.some(needsGrad));
  if (tracking && self.requiresGrad && self.isLeaf) {
    throw new WgtorchError(
      `${shown}: a leaf Variable that requires grad is being used in an in-place operation (shape ${fmtShape(self.shape)}).` +
        ' Fix: do the update inside torch.noGrad(() => ...), or on w.data.',
    );
  }
  const base = self._base;
  if (tracking && base && base.requiresGrad && base.isLeaf) {
    throw new WgtorchError(
      `${shown}: a view of a leaf Variable that requires grad is being used in an in-place operation` +
        ` (view ${fmtShape(self.shape)} of a leaf ${fmtShape(base.shape)}). Fix: do the update inside torch.noGrad(() => ...), or on w.data.`,
    );
  }
  const dev = resolveDevice(shown, [self, ...inputs]);
  if (!tracking) {
    produce(op, inputs, attrs, { shape: self.shape, dtype: self.dtype }, dev, self._storage);
    self._storage.version++;
    return self;
  }
  // The rule may need self's old value, which is about to be overwritten: keep a copy then.
  const saves = op.saves?.inputs ?? [];
  const r = apply(name, inputs.map((x, i) => (x === self && saves.includes(i) ? self.clone() : x)), attrs, dev);
  produce(getOp('copy'), [r], {}, { shape: self.shape, dtype: self.dtype }, dev, self._storage);
  self._storage.version++;
  self.gradFn = r.gradFn;
  // The base's values changed with its view's: its history continues from the new value.
  if (base) base.gradFn = apply('reshape', [r], { shape: base.shape }).gradFn;
  return self;
}

function castable(from: DType, to: DType): boolean {
  return from === 'bool' || (from === 'int32' && to === 'float32');
}
