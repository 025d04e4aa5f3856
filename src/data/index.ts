export { TensorDataset } from './dataset.ts';
export type { Dataset, BatchedDataset } from './dataset.ts';
export { DataLoader } from './dataloader.ts';
export type { DataLoaderOptions } from './dataloader.ts';
