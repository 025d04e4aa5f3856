/**
 * Looking inside: torch.trace records what the seed's TwoLayerNet computes, forward
 * and backward, as IR, without running anything. Every line is one node of the
 * graph, with its type and the module that produced it.
 *
 *   npx tsx examples/09-trace.ts
 */
import * as torch from '../src/index.ts';
import { isMain } from './_cli.ts';
import { TwoLayerNet } from './07-custom-module.ts';

export function main(opts: { log?: (line: string) => void } = {}): torch.TracedGraph {
  const log = opts.log ?? console.log;
  const [N, D_in, H, D_out] = [64, 1000, 100, 10];
  const model = new TwoLayerNet(D_in, H, D_out);
  const lossFn = new torch.nn.MSELoss({ reduction: 'sum' });
  const x = torch.randn(N, D_in);
  const y = torch.randn(N, D_out);

  // { backward: true } also records the backward graph, derived with the same gradient
  // rules eager autograd uses.
  const graph = torch.trace((x: torch.Tensor, y: torch.Tensor) => lossFn(model(x), y), x, y, { backward: true });
  log(String(graph));
  log('');
  log(`structural hash: ${graph.hash}; activations saved for backward: ${graph.saved.map((id) => `%${id}`).join(', ')}`);
  return graph;
}

if (isMain(import.meta.url)) main();
