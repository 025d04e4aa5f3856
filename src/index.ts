/** wgtorch: PyTorch for TypeScript. The public surface; re-exports only. */
import './runtime/cpu/register.ts';

export { Tensor } from './eager/tensor.ts';
export type { TensorLike, ClampOptions, MaxResult } from './eager/tensor.ts';
export type { DType } from './ir/dtype.ts';
export type { Device } from './runtime/backend.ts';
export { WgtorchError } from './ir/errors.ts';
export {
  tensor, zeros, ones, full, empty, arange, rand, randn, randint,
  zerosLike, onesLike, fullLike, randnLike, randLike, linspace, eye, randperm,
} from './eager/factories.ts';
export { multinomial } from './eager/sampling.ts';
export { Slice } from './eager/indexing.ts';
export type { IndexItem } from './eager/indexing.ts';
export type { TensorOptions } from './eager/factories.ts';
export { manualSeed } from './eager/random.ts';
export { noGrad, enableGrad, isGradEnabled, setGradEnabled } from './eager/grad-mode.ts';
export { setDefaultDevice, getDefaultDevice } from './eager/dispatch.ts';
export * from './eager/ops.ts';
export { variance as var } from './eager/ops.ts';
export * as autograd from './autograd.ts';
export { trace } from './trace/api.ts';
export { compile } from './compile/compile.ts';
export type { Compiled, CompileOptions } from './compile/compile.ts';
export type { CompiledGraph, KernelInfo } from './compile/compiled-graph.ts';
export { setLogs } from './runtime/logs.ts';
export { TracedGraph } from './trace/traced-graph.ts';
export * as nn from './nn/index.ts';
export * as optim from './optim/index.ts';
export * as utils from './utils.ts';
export { save, saveAsync, load } from './io/serialization.ts';
export type { SaveOptions } from './io/serialization.ts';
export * as webgpu from './runtime/webgpu/index.ts';
export * as cpu from './runtime/cpu/index.ts';
