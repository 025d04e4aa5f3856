/**
 * The rule sets fusion runs, in order. To add a rule, put it in the set whose sites it
 * rewrites, at the place where it should win over the rules after it:
 * - rows (one site, the graph): the row groups (rules/row.ts), which also order placement;
 * - placement (sites: the graph's nodes in order; a node settles when a rule places it):
 *   where each node goes as it is met (a view, a kernel of its own, an epilogue, ...);
 * - kernels (sites: the kernels formed so far; a kernel settles when it is fused away):
 *   rewrites of the whole schedule, each rule sweeping every kernel, repeated until none fires.
 */
import type { RuleSet } from '../driver.ts';
import { float } from './float.ts';
import { hoist } from './hoist.ts';
import { join } from './join.ts';
import { pullInputs } from './pull-inputs.ts';
import { recomputePrologue } from './recompute-prologue.ts';
import { operandReduction } from './operand-reduction.ts';
import { reducePrologue } from './reduce-prologue.ts';
import { reductionEpilogue } from './reduction-epilogue.ts';
import { row, rowGroups } from './row.ts';
import { seed } from './seed.ts';
import { view } from './view.ts';
import { viewCopy } from './view-copy.ts';
import { windowOperand } from './window-operand.ts';
import { gatherLoadRule } from './gather-load.ts';
import { windowLoad } from './window-load.ts';
import { windowRecompute } from './window-recompute.ts';
import { recomputeInputs } from './recompute-inputs.ts';

/** one site, the whole graph: the row groups, found before anything is placed */
export const rows: RuleSet<number> = {
  name: 'rows',
  sites: () => [0],
  settled: (st) => st.order !== null,
  order: 'site',
  rules: [rowGroups],
};

export const placement: RuleSet<number> = {
  name: 'placement',
  sites: (st) => (st.order ?? st.g.nodes).filter((n) => n.op !== 'input' && n.op !== 'scalar').map((n) => n.id),
  settled: (st, id) => st.placed.has(id),
  order: 'site',
  rules: [row, view, viewCopy, seed, float, join, hoist, pullInputs],
};

export const kernelRewrites: RuleSet<number> = {
  name: 'kernels',
  sites: (st) => st.kernels.map((_, i) => i),
  settled: (st, ki) => st.kernels[ki] === null,
  order: 'rule',
  rules: [recomputePrologue, operandReduction, reductionEpilogue, reducePrologue, windowOperand],
};

/** loads moved into their readers, after every rule that moves elementwise kernels into others */
export const loads: RuleSet<number> = {
  name: 'loads',
  sites: (st) => st.kernels.map((_, i) => i),
  settled: (st, ki) => st.kernels[ki] === null,
  order: 'rule',
  rules: [gatherLoadRule, windowLoad, windowRecompute, recomputeInputs],
};

export const RULE_SETS: readonly RuleSet<number>[] = [rows, placement, kernelRewrites, loads];
