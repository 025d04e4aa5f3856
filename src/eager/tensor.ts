/** The eager Tensor: a shape and dtype over a device storage, plus autograd state. */
import { checkDType, type DType, type HostArray } from '../ir/dtype.ts';
import { WgtorchError } from '../ir/errors.ts';
import type { Attrs } from '../ir/registry.ts';
import { fmtShape, normalizeDim, normalizeDims, numel, sameShape } from '../ir/shape.ts';
import { getBackend, type Device, type Storage } from '../runtime/backend.ts';
import { runBackward, type BackwardOptions, type Node } from './autograd.ts';
import { ClosureNode } from './closure-node.ts';
import { apply, applyInPlace, assertNotTracing } from './dispatch.ts';
import { enableGrad, isGradEnabled, noGrad } from './grad-mode.ts';
import { formatTensor } from './inspect.ts';
import { checkOptions } from './options.ts';
import { recordUndo, undoActive } from './undo.ts';
import * as idx from './indexing.ts';
import type { IndexItem } from './indexing.ts';
import { bmm, matmul } from './matmul.ts';
import { multinomial } from './sampling.ts';

export type TensorLike = Tensor | number;
export interface ClampOptions {
  min?: number | null;
  max?: number | null;
}
export interface VarOptions {
  correction?: number;
  keepdim?: boolean;
  /** the older form of correction: unbiased false is correction 0 */
  unbiased?: boolean;
}
export interface MaxResult {
  values: Tensor;
  indices: Tensor;
}

const inspectSymbol = Symbol.for('nodejs.util.inspect.custom');

function sizesFrom(args: (number | readonly number[])[]): number[] {
  if (args.length === 1 && Array.isArray(args[0])) return [...(args[0] as number[])];
  return args as number[];
}

export class Tensor {
  private _grad: Tensor | null = null;
  /** @internal the tensor whose storage this reshape view shares (a root, never itself a view) */
  _base: Tensor | null = null;
  private _gradFn: Node | null = null;
  /** The storage version at which this tensor's gradFn was recorded. */
  private _gradFnVersion = 0;
  private _requiresGrad = false;

  constructor(
    /** @internal device memory; shared by views and by `data` */
    public _storage: Storage,
    public shape: number[],
    readonly dtype: DType,
  ) {}

  get device(): Device {
    return this._storage.backend.device;
  }
  get grad(): Tensor | null {
    return this._grad;
  }
  set grad(g: Tensor | null) {
    if (undoActive()) {
      const old = this._grad;
      recordUndo(() => (this._grad = old));
    }
    this._grad = g;
  }
  get gradFn(): Node | null {
    const base = this._base;
    if (base && this._gradFn && this._storage.version !== this._gradFnVersion) {
      // The shared storage was written through the base or another view since this view's
      // history was recorded: continue it from the base's history, as PyTorch regenerates views.
      this._gradFnVersion = this._storage.version;
      if (base.requiresGrad) this._gradFn = enableGrad(() => apply('reshape', [base], { shape: this.shape })).gradFn;
    }
    return this._gradFn;
  }
  set gradFn(node: Node | null) {
    this._gradFn = node;
    this._gradFnVersion = this._storage.version;
  }
  get requiresGrad(): boolean {
    return this._requiresGrad || this.gradFn !== null;
  }
  set requiresGrad(v: boolean) {
    if (this.gradFn) {
      throw new WgtorchError(
        `requiresGrad: you can only change requiresGrad flags of leaf variables (this tensor has gradFn ${this.gradFn.name}).` +
          ' Fix: use t.detach() to get a leaf first.',
      );
    }
    if (v && this.dtype !== 'float32') {
      throw new WgtorchError(`requiresGrad: only tensors of floating point dtype can require gradients (got ${this.dtype}).`);
    }
    if (undoActive()) {
      const old = this._requiresGrad;
      recordUndo(() => (this._requiresGrad = old));
    }
    this._requiresGrad = v;
  }
  requiresGrad_(v = true): this {
    this.requiresGrad = v;
    return this;
  }
  get isLeaf(): boolean {
    return this.gradFn === null;
  }
  /** A detached tensor sharing this one's storage: in-place ops on it update this tensor. */
  get data(): Tensor {
    return new Tensor(this._storage, this.shape, this.dtype);
  }
  set data(t: Tensor) {
    if (undoActive()) {
      const [storage, shape] = [this._storage, this.shape];
      recordUndo(() => ((this._storage = storage), (this.shape = shape)));
    }
    this._storage = t._storage;
    this.shape = [...t.shape];
  }
  numel(): number {
    return numel(this.shape);
  }
  dim(): number {
    return this.shape.length;
  }
  get ndim(): number {
    return this.shape.length;
  }
  size(dim?: number): number | number[] {
    if (dim === undefined) return [...this.shape];
    return this.shape[normalizeDim('size', dim, this.dim())];
  }

  // ------------------------------------------------------------ autograd
  retainGrad(): void {
    if (!this.requiresGrad) {
      throw new WgtorchError("retainGrad: can't retain the grad of a tensor that does not require grad.");
    }
    if (this.gradFn) this.gradFn.retainTarget = this;
  }

  backward(gradient?: Tensor | BackwardOptions | null, opts: BackwardOptions = {}): void {
    if (gradient && !(gradient instanceof Tensor)) {
      opts = gradient;
      gradient = undefined;
    }
    checkOptions('backward', opts, ['retainGraph']);
    if (!this.requiresGrad) {
      throw new WgtorchError(
        `backward: element 0 of tensors does not require grad and does not have a gradFn (shape ${fmtShape(this.shape)}).` +
          ' Fix: create the leaves with { requiresGrad: true }, and do not compute the loss inside noGrad.',
      );
    }
    let g = gradient as Tensor | null | undefined;
    if (!g) {
      if (this.numel() !== 1) {
        throw new WgtorchError(
          `backward: grad can be implicitly created only for scalar outputs (this tensor has shape ${fmtShape(this.shape)}).` +
            ' Fix: reduce it to a scalar first (e.g. y.sum()), or pass a gradient of its shape: y.backward(torch.onesLike(y)).',
        );
      }
      g = apply('full', [], { shape: this.shape, value: 1, dtype: 'float32' }, this.device);
    } else if (!sameShape(g.shape, this.shape)) {
      throw new WgtorchError(
        `backward: mismatch in shape: gradient has shape ${fmtShape(g.shape)} but the tensor has shape ${fmtShape(this.shape)}.`,
      );
    }
    runBackward([this], [g], opts);
  }

  // ------------------------------------------------------------ elementwise
  add(other: TensorLike, opts?: { alpha?: number }): Tensor {
    return apply('add', [this, scaled(other, opts?.alpha)]);
  }
  sub(other: TensorLike, opts?: { alpha?: number }): Tensor {
    return apply('sub', [this, scaled(other, opts?.alpha)]);
  }
  mul(other: TensorLike): Tensor {
    return apply('mul', [this, other]);
  }
  div(other: TensorLike): Tensor {
    return apply('div', [this, other]);
  }
  neg(): Tensor {
    return apply('neg', [this]);
  }
  pow(exponent: number | Tensor): Tensor {
    if (exponent instanceof Tensor) return apply('powt', [this, exponent]);
    if (typeof exponent !== 'number') {
      throw new WgtorchError(`pow: the exponent must be a number or a Tensor, got ${typeof exponent}. Fix: x.pow(2) or x.pow(torch.tensor([...])).`);
    }
    return apply('pow', [this], { exponent });
  }
  sin(): Tensor {
    return apply('sin', [this]);
  }
  cos(): Tensor {
    return apply('cos', [this]);
  }
  erf(): Tensor {
    return apply('erf', [this]);
  }
  /** gelu(x) = x * Phi(x) with the exact erf, or PyTorch's tanh approximation. */
  gelu(opts: { approximate?: 'none' | 'tanh' } = {}): Tensor {
    checkOptions('gelu', opts, ['approximate']);
    const how = opts.approximate ?? 'none';
    if (how === 'tanh') {
      const inner = this.add(this.pow(3).mul(0.044715)).mul(Math.sqrt(2 / Math.PI));
      return this.mul(0.5).mul(inner.tanh().add(1));
    }
    if (how !== 'none') throw new WgtorchError(`gelu: approximate argument must be either 'none' or 'tanh', got '${String(how)}'.`);
    return this.mul(0.5).mul(this.mul(Math.SQRT1_2).erf().add(1));
  }
  silu(): Tensor {
    return this.mul(this.sigmoid());
  }
  exp(): Tensor {
    return apply('exp', [this]);
  }
  log(): Tensor {
    return apply('log', [this]);
  }
  sqrt(): Tensor {
    return apply('sqrt', [this]);
  }
  abs(): Tensor {
    return apply('abs', [this]);
  }
  sign(): Tensor {
    return apply('sign', [this]);
  }
  tanh(): Tensor {
    return apply('tanh', [this]);
  }
  sigmoid(): Tensor {
    return apply('sigmoid', [this]);
  }
  relu(): Tensor {
    return apply('relu', [this]);
  }
  clamp(min?: number | ClampOptions | null, max?: number | null): Tensor {
    return apply('clamp', [this], clampAttrs('clamp', min, max));
  }
  clip(min?: number | ClampOptions | null, max?: number | null): Tensor {
    return this.clamp(min, max);
  }
  lt(o: TensorLike): Tensor {
    return apply('lt', [this, o]);
  }
  le(o: TensorLike): Tensor {
    return apply('le', [this, o]);
  }
  gt(o: TensorLike): Tensor {
    return apply('gt', [this, o]);
  }
  ge(o: TensorLike): Tensor {
    return apply('ge', [this, o]);
  }
  eq(o: TensorLike): Tensor {
    return apply('eq', [this, o]);
  }
  ne(o: TensorLike): Tensor {
    return apply('ne', [this, o]);
  }
  /** PyTorch's x.where(cond, y): x where cond holds, else y. */
  where(cond: Tensor, other: TensorLike): Tensor {
    return apply('where', [asMask('where', cond), this, other]);
  }
  maskedFill(mask: Tensor, value: number): Tensor {
    return apply('where', [asMask('maskedFill', mask), value, this]);
  }
  toDType(dtype: DType): Tensor {
    checkDType('to', dtype);
    return dtype === this.dtype ? this : apply('cast', [this], { dtype });
  }
  float(): Tensor {
    return this.toDType('float32');
  }
  int(): Tensor {
    return this.toDType('int32');
  }
  long(): Tensor {
    return this.toDType('int32');
  }
  bool(): Tensor {
    return this.toDType('bool');
  }

  // ------------------------------------------------------------ reductions
  sum(dim?: number | number[] | null, keepdim = false): Tensor {
    return apply('sum', [this], { dims: normalizeDims('sum', dim, this.dim()), keepdim });
  }
  prod(dim?: number | number[] | null, keepdim = false): Tensor {
    return apply('prod', [this], { dims: normalizeDims('prod', dim, this.dim()), keepdim });
  }
  mean(dim?: number | number[] | null, keepdim = false): Tensor {
    if (this.dtype !== 'float32') {
      throw new WgtorchError(`mean: could not infer output dtype. Input dtype must be float32, got ${this.dtype}. Fix: call .float() first.`);
    }
    const dims = normalizeDims('mean', dim, this.dim());
    const count = dims.reduce((p, d) => p * this.shape[d], 1);
    return this.sum(dims, keepdim).div(count);
  }
  /**
   * var(dim?, { correction = 1, keepdim = false }); with no dim the options may come first:
   * t.var({ correction: 0 }). keepdim may also be given as the second argument.
   */
  var(dim?: number | number[] | null | VarOptions, opts: VarOptions | boolean = {}): Tensor {
    if (dim !== null && typeof dim === 'object' && !Array.isArray(dim)) {
      opts = dim;
      dim = null;
    }
    const o: VarOptions = typeof opts === 'boolean' ? { keepdim: opts } : opts;
    checkOptions('var', o, ['correction', 'keepdim', 'unbiased']);
    if (this.dtype !== 'float32') throw new WgtorchError(`var: expected a float32 input, got ${this.dtype}. Fix: call .float() first.`);
    const correction = o.correction ?? (o.unbiased === false ? 0 : 1);
    const dims = normalizeDims('var', dim as number | number[] | null | undefined, this.dim());
    const count = dims.reduce((p, d) => p * this.shape[d], 1);
    const centered = this.sub(this.mean(dims, true));
    // PyTorch divides by max(0, N - correction): 0/0 is NaN, a positive sum over 0 is inf
    return centered.mul(centered).sum(dims, o.keepdim ?? false).div(Math.max(0, count - correction));
  }
  std(dim?: number | number[] | null | VarOptions, opts: VarOptions | boolean = {}): Tensor {
    return this.var(dim, opts).sqrt();
  }
  max(): Tensor;
  max(dim: number, keepdim?: boolean): MaxResult;
  max(other: Tensor): Tensor;
  max(dim?: number | Tensor, keepdim = false): Tensor | MaxResult {
    if (dim instanceof Tensor) return this.where(this.ge(dim), dim);
    // max() and max(dim) send the gradient to NaN elements where the max is NaN (PyTorch's
    // evenly_distribute_backward and index-based rules); amax keeps the plain equality mask
    if (dim === undefined) return apply('max', [this], { dims: normalizeDims('max', null, this.dim()), keepdim: false, nanGrad: true });
    const d = normalizeDim('max', dim, this.dim());
    const dims = [d];
    const indices = apply('argmax', [this], { dims, keepdim });
    if (!this.requiresGrad || !isGradEnabled()) return { values: apply('max', [this], { dims, keepdim }), indices };
    // PyTorch sends the gradient of max(dim).values to the returned index only, also on ties:
    // take the max over just that element.
    const at = keepdim ? indices : indices.unsqueeze(d);
    const positions = apply('arange', [], { start: 0, step: 1, n: this.shape[d], dtype: 'int32' }, this.device).reshape(
      this.shape.map((s, i) => (i === d ? s : 1)),
    );
    const values = apply('max', [this.where(positions.eq(at), -Infinity)], { dims, keepdim, nanGrad: true });
    return { values, indices };
  }
  min(): Tensor;
  min(dim: number, keepdim?: boolean): MaxResult;
  min(other: Tensor): Tensor;
  min(dim?: number | Tensor, keepdim = false): Tensor | MaxResult {
    if (dim instanceof Tensor) return this.where(this.le(dim), dim);
    if (dim === undefined) return this.neg().max().neg();
    const r = this.neg().max(dim, keepdim);
    return { values: r.values.neg(), indices: r.indices };
  }
  amax(dim?: number | number[] | null, keepdim = false): Tensor {
    return apply('max', [this], { dims: normalizeDims('amax', dim, this.dim()), keepdim });
  }
  amin(dim?: number | number[] | null, keepdim = false): Tensor {
    return apply('min', [this], { dims: normalizeDims('amin', dim, this.dim()), keepdim });
  }
  argmax(dim?: number | null, keepdim = false): Tensor {
    const dims = dim === undefined || dim === null ? normalizeDims('argmax', null, this.dim()) : [normalizeDim('argmax', dim, this.dim())];
    return apply('argmax', [this], { dims, keepdim: dim === undefined || dim === null ? false : keepdim });
  }
  argmin(dim?: number | null, keepdim = false): Tensor {
    const dims = dim === undefined || dim === null ? normalizeDims('argmin', null, this.dim()) : [normalizeDim('argmin', dim, this.dim())];
    return apply('argmin', [this], { dims, keepdim: dim === undefined || dim === null ? false : keepdim });
  }
  logsumexp(dim: number | number[], keepdim = false): Tensor {
    const dims = normalizeDims('logsumexp', dim, this.dim());
    // Shifting by the (detached) max keeps exp in range; the gradient is unchanged (softmax).
    let m = this.detach().amax(dims, true);
    m = m.where(m.abs().lt(Infinity), 0);
    const r = this.sub(m).exp().sum(dims, true).log().add(m);
    return keepdim ? r : r.reshape(this.shape.filter((_, i) => !dims.includes(i)));
  }
  softmax(dim: number | { dim: number }): Tensor {
    const d = normalizeDim('softmax', dimKeyword('softmax', dim), this.dim());
    const y = noGrad(() => {
      const e = this.sub(this.amax(d, true)).exp();
      return e.div(e.sum(d, true));
    });
    if (!isGradEnabled() || !this.requiresGrad) return y;
    // softmax's own gradient, y * (g - sum(g * y)), rather than the division's: backward saves y
    // alone and is one row kernel of the incoming gradient, so attention's [B, heads, T, T]
    // scores are written once each way (through the division, exp was saved beside y and the
    // scores' gradient matmul wrote g / sum and -g)
    y.gradFn = new ClosureNode('SoftmaxBackward', [this], (g) => [y.mul(g.sub(g.mul(y).sum(d, true)))], [y]);
    return y;
  }
  logSoftmax(dim: number | { dim: number }): Tensor {
    const d = normalizeDim('logSoftmax', dimKeyword('logSoftmax', dim), this.dim());
    // (x - m) - log(sum(exp(x - m))): subtracting a rounded logsumexp from x instead loses
    // the low digits of large logits (PyTorch's log_softmax keeps them). An infinite max is
    // used as it is: a row with +inf is NaN throughout, as in PyTorch.
    const m = this.detach().amax(d, true);
    const shifted = this.sub(m);
    return shifted.sub(shifted.exp().sum(d, true).log());
  }
  /** Sums broadcast dims away so the result has `shape` (the gradient of a broadcast). */
  sumToSize(shape: readonly number[]): Tensor {
    if (sameShape(this.shape, shape)) return this;
    const lead = this.dim() - shape.length;
    const dims: number[] = [];
    for (let i = 0; i < this.dim(); i++) {
      if (i < lead || (shape[i - lead] === 1 && this.shape[i] !== 1)) dims.push(i);
    }
    return this.sum(dims, true).reshape(shape);
  }

  // ------------------------------------------------------------ matmul and shapes
  mm(other: Tensor): Tensor {
    return apply('mm', [this, other]);
  }
  matmul(other: Tensor): Tensor {
    return matmul(this, other);
  }
  bmm(other: Tensor): Tensor {
    return bmm(this, other);
  }

  // ------------------------------------------------------------ indexing (src/eager/indexing.ts)
  /** PyTorch's t[...]: numbers select, null is ':', torch.slice(start, stop, step), int32 tensors index. */
  index(...items: IndexItem[]): Tensor {
    return idx.index(this, items);
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return idx.narrow(this, dim, start, length);
  }
  select(dim: number, index: number): Tensor {
    return idx.select(this, dim, index);
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return idx.indexSelect(this, dim, index);
  }
  gather(dim: number, index: Tensor): Tensor {
    return idx.gather(this, dim, index);
  }
  split(sizeOrSizes: number | readonly number[], dim = 0): Tensor[] {
    return idx.split(this, sizeOrSizes, dim);
  }
  chunk(chunks: number, dim = 0): Tensor[] {
    return idx.chunk(this, chunks, dim);
  }
  /** Samples category indices from this tensor of weights (1-D or 2-D); see torch.multinomial. */
  multinomial(numSamples: number, opts: { replacement?: boolean } = {}): Tensor {
    return multinomial(this, numSamples, opts);
  }
  tril(diagonal = 0): Tensor {
    return idx.tril(this, diagonal);
  }
  triu(diagonal = 0): Tensor {
    return idx.triu(this, diagonal);
  }
  /** @internal the bmm primitive (src/ir/registry.ts): matmul and bmm reach it through src/eager/matmul.ts */
  _bmm(other: Tensor): Tensor {
    return apply('bmm', [this, other]);
  }
  /** @internal the index primitives, for gradient rules */
  _slice(starts: readonly number[], steps: readonly number[], shape: readonly number[]): Tensor {
    return apply('slice', [this], { starts: [...starts], steps: [...steps], shape: [...shape] });
  }
  /** @internal */
  _sliceScatter(src: Tensor, starts: readonly number[], steps: readonly number[]): Tensor {
    return apply('sliceScatter', [this, src], { starts: [...starts], steps: [...steps] });
  }
  /** @internal */
  _zeros(shape: readonly number[]): Tensor {
    return apply('full', [], { shape: [...shape], value: 0, dtype: this.dtype }, this.device);
  }
  /** @internal */
  _gather(dim: number, index: Tensor): Tensor {
    return apply('gather', [this, index], { dim });
  }
  /** @internal */
  _im2col(attrs: Attrs): Tensor {
    return apply('im2col', [this], attrs);
  }
  _col2im(attrs: Attrs): Tensor {
    return apply('col2im', [this], attrs);
  }
  _scatterAdd(dim: number, index: Tensor, shape: readonly number[]): Tensor {
    return apply('scatterAdd', [this, index], { dim, shape: [...shape] });
  }
  t(): Tensor {
    if (this.dim() > 2) {
      throw new WgtorchError(`t: expects a tensor with <= 2 dimensions, but got shape ${fmtShape(this.shape)}. Fix: use transpose(d0, d1).`);
    }
    return this.dim() < 2 ? this : this.permute([1, 0]);
  }
  get T(): Tensor {
    return this.permute(this.shape.map((_, i) => this.dim() - 1 - i));
  }
  transpose(dim0: number, dim1: number): Tensor {
    const a = normalizeDim('transpose', dim0, this.dim());
    const b = normalizeDim('transpose', dim1, this.dim());
    const dims = this.shape.map((_, i) => i);
    [dims[a], dims[b]] = [dims[b], dims[a]];
    return this.permute(dims);
  }
  permute(...dims: (number | readonly number[])[]): Tensor {
    const d = sizesFrom(dims).map((x) => normalizeDim('permute', x, this.dim()));
    if (d.every((v, i) => v === i)) return this;
    return apply('permute', [this], { dims: d });
  }
  reshape(...shape: (number | readonly number[])[]): Tensor {
    const s = inferShape('reshape', sizesFrom(shape), this);
    return sameShape(s, this.shape) ? this : apply('reshape', [this], { shape: s });
  }
  view(...shape: (number | readonly number[])[]): Tensor {
    return this.reshape(...shape);
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    if (this.dim() === 0) return this.reshape([1]);
    const s = normalizeDim('flatten', startDim, this.dim());
    const e = normalizeDim('flatten', endDim, this.dim());
    const mid = this.shape.slice(s, e + 1).reduce((p, d) => p * d, 1);
    return this.reshape([...this.shape.slice(0, s), mid, ...this.shape.slice(e + 1)]);
  }
  unsqueeze(dim: number): Tensor {
    const d = normalizeDim('unsqueeze', dim, this.dim() + 1);
    const s = [...this.shape];
    s.splice(d, 0, 1);
    return this.reshape(s);
  }
  squeeze(dim?: number): Tensor {
    if (dim === undefined) return this.reshape(this.shape.filter((d) => d !== 1));
    const d = normalizeDim('squeeze', dim, this.dim());
    if (this.dim() === 0 || this.shape[d] !== 1) return this;
    return this.reshape(this.shape.filter((_, i) => i !== d));
  }
  expand(...shape: (number | readonly number[])[]): Tensor {
    const s = sizesFrom(shape);
    const off = s.length - this.dim();
    const full = s.map((v, i) => (v === -1 && i >= off ? this.shape[i - off] : v));
    return sameShape(full, this.shape) ? this : apply('expand', [this], { shape: full });
  }
  expandAs(other: Tensor): Tensor {
    return this.expand(other.shape);
  }
  clone(): Tensor {
    return apply('copy', [this]);
  }
  detach(): Tensor {
    return new Tensor(this._storage, this.shape, this.dtype);
  }
  contiguous(): Tensor {
    return this;
  }

  // ------------------------------------------------------------ in place
  add_(other: TensorLike, opts?: { alpha?: number }): this {
    applyInPlace(this, 'add', [this, scaled(other, opts?.alpha)]);
    return this;
  }
  sub_(other: TensorLike, opts?: { alpha?: number }): this {
    applyInPlace(this, 'sub', [this, scaled(other, opts?.alpha)]);
    return this;
  }
  mul_(other: TensorLike): this {
    applyInPlace(this, 'mul', [this, other]);
    return this;
  }
  div_(other: TensorLike): this {
    applyInPlace(this, 'div', [this, other]);
    return this;
  }
  clamp_(min?: number | ClampOptions | null, max?: number | null): this {
    applyInPlace(this, 'clamp', [this], clampAttrs('clamp_', min, max));
    return this;
  }
  maskedFill_(mask: Tensor, value: number): this {
    applyInPlace(this, 'where', [asMask('maskedFill_', mask), value, this]);
    return this;
  }
  fill_(value: number): this {
    applyInPlace(this, 'full', [], { shape: this.shape, value, dtype: this.dtype });
    return this;
  }
  zero_(): this {
    return this.fill_(0);
  }
  copy_(src: Tensor): this {
    let s = src.device === this.device ? src : src.to(this.device);
    s = s.toDType(this.dtype);
    applyInPlace(this, 'copy', [sameShape(s.shape, this.shape) ? s : s.expand(this.shape)]);
    return this;
  }

  // ------------------------------------------------------------ devices and values
  to(target: Device | DType | { device?: Device; dtype?: DType }): Tensor {
    const opts = typeof target === 'string' ? (isDType(target) || /^(u?int|float|bfloat|half|double|bool|complex)/.test(target) ? { dtype: target as DType } : { device: target }) : target;
    checkDType('to', opts.dtype);
    checkOptions('to', opts, ['device', 'dtype']);
    let t: Tensor = this;
    if (opts.dtype) t = t.toDType(opts.dtype);
    if (opts.device && opts.device !== t.device) t = moveTo(t, opts.device);
    return t;
  }
  cpu(): Tensor {
    return this.to('cpu');
  }
  /** Like cpu(), but resolves once the values have arrived. */
  async cpuAsync(): Promise<Tensor> {
    const t = this.cpu();
    await getBackend('cpu').read(t._storage);
    return t;
  }

  /** The values, flat (not async itself: inside a trace it throws at the call, not in a rejected promise). */
  toArray(): Promise<HostArray> {
    assertNotTracing('toArray', this);
    const n = this.numel();
    return this._storage.backend.read(this._storage).then((data) => data.slice(0, n) as HostArray);
  }
  toArraySync(): HostArray {
    assertNotTracing('toArraySync', this);
    return this._storage.backend.readSync(this._storage).slice(0, this.numel()) as HostArray;
  }
  item(): Promise<number> {
    assertNotTracing('item', this);
    try {
      checkScalar(this);
    } catch (e) {
      return Promise.reject(e); // an ordinary error of an async read: a rejection, as before
    }
    return this.toArray().then((a) => a[0]);
  }
  itemSync(): number {
    assertNotTracing('itemSync', this);
    checkScalar(this);
    return this.toArraySync()[0];
  }
  tolist(): Promise<unknown> {
    const shape = this.shape;
    return this.toArray().then((a) => nest(a, shape));
  }
  tolistSync(): unknown {
    return nest(this.toArraySync(), this.shape);
  }

  toString(): string {
    return formatTensor(this);
  }
  /** `t > 0` or `+t` reads the value: allowed for one-element cpu tensors, as float(t) in PyTorch. */
  [Symbol.toPrimitive](hint: string): number | string {
    if (hint === 'string') return this.toString();
    assertNotTracing('converting a tensor to a JavaScript number (+t, t > 0)', this);
    if (this.device !== 'cpu' || this.numel() !== 1) {
      throw new WgtorchError(
        `a tensor of shape ${fmtShape(this.shape)} on ${this.device} cannot be used as a JavaScript number.` +
          ' Fix: read it with await t.item() (or t.itemSync() on cpu).',
      );
    }
    return this.itemSync();
  }
  [inspectSymbol](): string {
    return formatTensor(this);
  }
}

/** PyTorch's dim keyword: softmax(-1) and softmax({ dim: -1 }) alike. */
function dimKeyword(op: string, dim: number | { dim: number }): number {
  if (dim !== null && typeof dim === 'object') {
    checkOptions(op, dim, ['dim']);
    return dim.dim;
  }
  return dim;
}

function scaled(other: TensorLike, alpha?: number): TensorLike {
  if (alpha === undefined || alpha === 1) return other;
  return typeof other === 'number' ? other * alpha : other.mul(alpha);
}

function clampAttrs(op: string, min?: number | ClampOptions | null, max?: number | null) {
  let lo: number | null | undefined = min as number | null | undefined;
  let hi = max;
  if (min !== null && typeof min === 'object') {
    checkOptions(op, min, ['min', 'max']);
    lo = min.min;
    hi = min.max;
  }
  if ((lo === undefined || lo === null) && (hi === undefined || hi === null)) {
    throw new WgtorchError(`${op}: at least one of 'min' or 'max' must be given. Fix: x.${op}({ min: 0 }).`);
  }
  return { min: lo ?? null, max: hi ?? null };
}

function asMask(op: string, mask: Tensor): Tensor {
  if (!(mask instanceof Tensor)) throw new WgtorchError(`${op}: the mask must be a tensor (e.g. h.lt(0)).`);
  if (mask.dtype !== 'bool') {
    throw new WgtorchError(
      `${op}: expected a bool mask, got dtype ${mask.dtype} (shape ${fmtShape(mask.shape)}). Fix: pass a comparison like h.lt(0), or mask.bool().`,
    );
  }
  return mask;
}

function isDType(s: string): s is DType {
  return s === 'float32' || s === 'int32' || s === 'bool';
}

function checkScalar(t: Tensor): void {
  if (t.numel() !== 1) {
    throw new WgtorchError(
      `item: a Tensor with ${t.numel()} elements cannot be converted to a scalar (shape ${fmtShape(t.shape)}). Fix: reduce it first (e.g. t.sum()) or use toArray().`,
    );
  }
}

function inferShape(op: string, shape: number[], t: Tensor): number[] {
  const free = shape.filter((d) => d === -1).length;
  if (free > 1) throw new WgtorchError(`${op}: only one dimension can be inferred (got ${fmtShape(shape)}).`);
  if (free === 0) return shape;
  const known = shape.filter((d) => d !== -1).reduce((p, d) => p * d, 1);
  const n = t.numel();
  if (known === 0 || n % known !== 0) {
    throw new WgtorchError(
      `${op}: shape '${fmtShape(shape)}' is invalid for input of size ${n} (shape ${fmtShape(t.shape)}).` +
        ' Fix: the known sizes must divide the number of elements.',
    );
  }
  return shape.map((d) => (d === -1 ? n / known : d));
}

function nest(data: HostArray, shape: readonly number[]): unknown {
  const values = Array.from(data, (v) => (typeof v === 'number' ? v : Number(v)));
  if (shape.length === 0) return values[0];
  const build = (dim: number, off: number): unknown[] => {
    const n = shape[dim];
    const stride = shape.slice(dim + 1).reduce((p, d) => p * d, 1);
    const out: unknown[] = [];
    for (let i = 0; i < n; i++) out.push(dim === shape.length - 1 ? values[off + i] : build(dim + 1, off + i * stride));
    return out;
  };
  return build(0, 0);
}

/** Copies a tensor to another device; the gradient flows back to the source device. */
function moveTo(t: Tensor, device: Device): Tensor {
  assertNotTracing(`to('${device}')`, t);
  let storage: Storage;
  if (t.device === 'cpu') storage = getBackend(device).fromHost(t.toArraySync().slice() as HostArray, t.dtype);
  else {
    // GPU -> cpu: the values arrive asynchronously; cpu kernels refuse the tensor until they have
    const out = getBackend('cpu').alloc(t.dtype, t.numel()) as Storage & { data: HostArray; pending: Promise<void> | null };
    const src = t._storage;
    out.pending = src.backend.read(src).then((d) => {
      out.data.set(d.subarray(0, t.numel()) as never);
      out.pending = null;
    });
    storage = out;
  }
  const r = new Tensor(storage, [...t.shape], t.dtype);
  if (t.requiresGrad && isGradEnabled()) {
    const from = t.device;
    r.gradFn = new ClosureNode('ToCopyBackward', [t], (g) => [g.to(from)]);
  }
  return r;
}

