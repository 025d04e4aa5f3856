/** Tensor factories: sizes as varargs or one array, an options object last. */
import { checkDType, hostArray, type DType, type HostArray } from '../ir/dtype.ts';
import { WgtorchError } from '../ir/errors.ts';
import { fmtShape, numel } from '../ir/shape.ts';
import { getBackend, type Device } from '../runtime/backend.ts';
import { apply, getDefaultDevice } from './dispatch.ts';
import { checkOptions } from './options.ts';
import { fillNormal, fillUniform, randomInt } from './random.ts';
import { Tensor } from './tensor.ts';

export interface TensorOptions {
  requiresGrad?: boolean;
  device?: Device;
  dtype?: DType;
}
const OPTION_NAMES = ['requiresGrad', 'device', 'dtype'];
type SizeArgs = (number | readonly number[] | TensorOptions)[];

function parse(op: string, args: SizeArgs): { shape: number[]; opts: TensorOptions } {
  let opts: TensorOptions = {};
  const last = args[args.length - 1];
  if (last !== undefined && typeof last === 'object' && !Array.isArray(last)) {
    opts = last as TensorOptions;
    args = args.slice(0, -1);
  }
  checkOptions(op, opts, OPTION_NAMES);
  checkDType(op, opts.dtype);
  const shape = args.length === 1 && Array.isArray(args[0]) ? [...(args[0] as number[])] : (args as number[]);
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new WgtorchError(`${op}: sizes must be non-negative integers, got ${fmtShape(shape)}.`);
    }
  }
  return { shape, opts };
}

function finish(t: Tensor, opts: TensorOptions): Tensor {
  if (opts.requiresGrad) t.requiresGrad = true;
  return t;
}

function fromHost(data: HostArray, shape: number[], opts: TensorOptions): Tensor {
  checkDType('tensor', opts.dtype);
  const dtype = opts.dtype ?? 'float32';
  const device = opts.device ?? getDefaultDevice();
  const storage = getBackend(device).fromHost(data, dtype);
  return finish(new Tensor(storage, shape, dtype), opts);
}

export function full(shape: readonly number[], value: number, opts: TensorOptions = {}): Tensor {
  const { shape: s } = parse('full', [shape]);
  checkOptions('full', opts, OPTION_NAMES);
  checkDType('full', opts.dtype);
  const dtype = opts.dtype ?? 'float32';
  return finish(apply('full', [], { shape: s, value, dtype }, opts.device ?? getDefaultDevice()), opts);
}
export function zeros(...args: SizeArgs): Tensor {
  const { shape, opts } = parse('zeros', args);
  return full(shape, 0, opts);
}
export function ones(...args: SizeArgs): Tensor {
  const { shape, opts } = parse('ones', args);
  return full(shape, 1, opts);
}
export function empty(...args: SizeArgs): Tensor {
  return zeros(...args);
}
export function rand(...args: SizeArgs): Tensor {
  const { shape, opts } = parse('rand', args);
  const data = new Float32Array(numel(shape));
  fillUniform(data);
  return fromHost(data, shape, { ...opts, dtype: 'float32' });
}
export function randn(...args: SizeArgs): Tensor {
  const { shape, opts } = parse('randn', args);
  const data = new Float32Array(numel(shape));
  fillNormal(data);
  return fromHost(data, shape, { ...opts, dtype: 'float32' });
}
/** randint(low, high, shape, opts?) -> int32 values in [low, high). */
export function randint(low: number, high: number, shape: readonly number[], opts: TensorOptions = {}): Tensor {
  checkOptions('randint', opts, OPTION_NAMES);
  const data = new Int32Array(numel(shape));
  for (let i = 0; i < data.length; i++) data[i] = randomInt(low, high);
  return fromHost(data, [...shape], { ...opts, dtype: opts.dtype ?? 'int32' });
}

/** arange(end), arange(start, end, step?), with an options object last. */
export function arange(...args: (number | TensorOptions)[]): Tensor {
  let opts: TensorOptions = {};
  if (typeof args[args.length - 1] === 'object') opts = args.pop() as TensorOptions;
  checkOptions('arange', opts, OPTION_NAMES);
  checkDType('arange', opts.dtype);
  const nums = args as number[];
  const [start, end, step] = nums.length === 1 ? [0, nums[0], 1] : [nums[0], nums[1], nums[2] ?? 1];
  if (step === 0) throw new WgtorchError('arange: step must be nonzero.');
  const n = Math.max(0, Math.ceil((end - start) / step));
  const allInt = nums.every(Number.isInteger);
  const dtype = opts.dtype ?? (allInt ? 'int32' : 'float32');
  return finish(apply('arange', [], { start, step, n, dtype }, opts.device ?? getDefaultDevice()), opts);
}

type Nested = number | boolean | Nested[];

/** tensor(nested array | number | typed array, { shape? , dtype?, device?, requiresGrad? }) */
export function tensor(data: Nested | HostArray | readonly number[], opts: TensorOptions & { shape?: readonly number[] } = {}): Tensor {
  checkOptions('tensor', opts, [...OPTION_NAMES, 'shape']);
  checkDType('tensor', opts.dtype);
  let shape: number[];
  let flat: number[] | HostArray;
  if (ArrayBuffer.isView(data)) {
    flat = data as HostArray;
    shape = opts.shape ? [...opts.shape] : [flat.length];
  } else if (typeof data === 'number' || typeof data === 'boolean') {
    flat = [Number(data)];
    shape = opts.shape ? [...opts.shape] : [];
  } else {
    shape = [];
    let probe: Nested = data as Nested;
    while (Array.isArray(probe)) {
      shape.push(probe.length);
      probe = probe[0];
    }
    flat = [];
    const walk = (x: Nested, dim: number) => {
      if (Array.isArray(x)) {
        if (x.length !== shape[dim]) {
          throw new WgtorchError(`tensor: expected a sequence of length ${shape[dim]} at dim ${dim} (got ${x.length}): nested lists must be rectangular.`);
        }
        x.forEach((v) => walk(v, dim + 1));
      } else {
        if (dim !== shape.length) throw new WgtorchError('tensor: nested lists must be rectangular.');
        (flat as number[]).push(Number(x));
      }
    };
    walk(data as Nested, 0);
    if (opts.shape) shape = [...opts.shape];
  }
  if (numel(shape) !== flat.length) {
    throw new WgtorchError(`tensor: ${flat.length} values cannot take the shape ${fmtShape(shape)}. Fix: pass { shape } with the right number of elements.`);
  }
  const dtype: DType = opts.dtype ?? (flat instanceof Int32Array ? 'int32' : flat instanceof Uint8Array ? 'bool' : 'float32');
  const host = hostArray(dtype, flat.length);
  host.set(flat as ArrayLike<number>);
  return fromHost(host, shape, { ...opts, dtype });
}

export function zerosLike(t: Tensor, opts: TensorOptions = {}): Tensor {
  return full(t.shape, 0, { dtype: t.dtype, device: t.device, ...opts });
}
export function onesLike(t: Tensor, opts: TensorOptions = {}): Tensor {
  return full(t.shape, 1, { dtype: t.dtype, device: t.device, ...opts });
}
export function fullLike(t: Tensor, value: number, opts: TensorOptions = {}): Tensor {
  return full(t.shape, value, { dtype: t.dtype, device: t.device, ...opts });
}
export function randnLike(t: Tensor, opts: TensorOptions = {}): Tensor {
  return randn(t.shape, { device: t.device, ...opts });
}
export function randLike(t: Tensor, opts: TensorOptions = {}): Tensor {
  return rand(t.shape, { device: t.device, ...opts });
}

/**
 * linspace(start, end, steps): PyTorch's float32 arithmetic (the first half counts up from
 * start, the second half down from end, so both ends are exact).
 */
export function linspace(start: number, end: number, steps: number, opts: TensorOptions = {}): Tensor {
  checkOptions('linspace', opts, OPTION_NAMES);
  if (!Number.isInteger(steps) || steps < 0) throw new WgtorchError(`linspace: number of steps must be a non-negative integer, got ${steps}.`);
  const f = Math.fround;
  const data = new Float32Array(steps);
  if (steps === 1) data[0] = start;
  else if (steps > 1) {
    const step = f(f(f(end) - f(start)) / (steps - 1));
    const half = Math.floor(steps / 2);
    for (let i = 0; i < steps; i++) data[i] = i < half ? f(f(start) + f(step * i)) : f(f(end) - f(step * (steps - i - 1)));
  }
  const out = fromHost(data, [steps], { ...opts, dtype: 'float32' });
  return opts.dtype && opts.dtype !== 'float32' ? finish(out.toDType(opts.dtype), { requiresGrad: false }) : out;
}

/** eye(n, m = n): ones on the diagonal. */
export function eye(n: number, m?: number | TensorOptions, opts: TensorOptions = {}): Tensor {
  if (typeof m === 'object') {
    opts = m;
    m = undefined;
  }
  checkOptions('eye', opts, OPTION_NAMES);
  const cols = m ?? n;
  for (const [name, v] of [['n', n], ['m', cols]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new WgtorchError(`eye: ${name} must be greater or equal to 0, got ${v}.`);
  }
  const dtype = opts.dtype ?? 'float32';
  const data = hostArray(dtype, n * cols);
  for (let i = 0; i < Math.min(n, cols); i++) data[i * cols + i] = 1;
  return fromHost(data, [n, cols], { ...opts, dtype });
}

/** randperm(n): a random permutation of 0..n-1 (int32), drawn from the manualSeed generator. */
export function randperm(n: number, opts: TensorOptions = {}): Tensor {
  checkOptions('randperm', opts, OPTION_NAMES);
  if (!Number.isInteger(n) || n < 0) throw new WgtorchError(`randperm: n must be non-negative, got ${n}.`);
  const data = new Int32Array(n);
  for (let i = 0; i < n; i++) data[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = randomInt(0, i + 1);
    const t = data[i];
    data[i] = data[j];
    data[j] = t;
  }
  const dtype = opts.dtype ?? 'int32';
  return fromHost(dtype === 'int32' ? data : Float32Array.from(data), [n], { ...opts, dtype });
}
