export { Module } from './module.ts';
export { Parameter } from './parameter.ts';
export { Linear, Embedding, GELU, SiLU, ReLU, Tanh, Sigmoid, Softmax, LogSoftmax, Flatten, Identity, Dropout, Sequential, ModuleList, ModuleDict } from './layers.ts';
export { MSELoss, L1Loss, CrossEntropyLoss } from './loss.ts';
export * as functional from './functional.ts';
export * as init from './init.ts';
export { LayerNorm, BatchNorm1d, BatchNorm2d } from './normalization.ts';
export * as utils from './utils.ts';
export { Conv2d, MaxPool2d, AvgPool2d } from './conv.ts';
