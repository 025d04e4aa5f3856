/**
 * Fusion groups the nodes of a graph into kernels: named rules run by one rewrite driver
 * (src/passes/fusion/: driver.ts, state.ts, rules/). This module is its public face.
 * - matmul kernels take elementwise consumers of their result as an epilogue (bias add,
 *   relu/clamp, the relu mask of a backward), cheap elementwise producers of an operand
 *   as a prologue, and a column sum of their transposed A operand (a bias gradient
 *   riding along its weight gradient);
 * - reductions take their elementwise producers as a prologue (sub + pow + sum is one
 *   kernel) and elementwise consumers as an epilogue (mean's division);
 * - other elementwise nodes of one shape chain into one kernel;
 * - movement ops are views, read through strides, and cost no kernel.
 */
export { fuse } from './fusion/fuse.ts';
export { kernelNodes, ownedNodes, type FusionOptions, type Kernel, type Schedule } from './fusion/groups.ts';
export { applyRule, runRuleSet, type Outcome, type Rule, type RuleSet } from './fusion/driver.ts';
export { RULE_SETS } from './fusion/rules/index.ts';
