/** torch.autograd: custom Functions and grad(). */
export { AutogradFunction as Function, Context } from './eager/function.ts';
export { grad } from './eager/grad-api.ts';
export type { GradOptions } from './eager/grad-api.ts';
