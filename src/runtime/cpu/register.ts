import { registerBackend } from '../backend.ts';
import { CpuBackend } from './backend.ts';

registerBackend('cpu', () => new CpuBackend());
