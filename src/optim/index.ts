export { Optimizer } from './optimizer.ts';
export { SGD } from './sgd.ts';
export { Adam, AdamW } from './adam.ts';
export { RMSprop } from './rmsprop.ts';
export { Adagrad } from './adagrad.ts';
export * as lrScheduler from './lr-scheduler.ts';
