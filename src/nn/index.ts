export { Module } from './module.ts';
export { Parameter } from './parameter.ts';
export { Linear, ReLU, Tanh, Sigmoid, Softmax, LogSoftmax, Flatten, Dropout, Sequential, ModuleList } from './layers.ts';
export { MSELoss, L1Loss, CrossEntropyLoss } from './loss.ts';
export * as functional from './functional.ts';
export * as init from './init.ts';
