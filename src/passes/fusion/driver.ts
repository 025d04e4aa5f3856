/**
 * The rewrite driver: fusion is a list of rule sets, each a list of named rules applied to
 * the sites of one graph (its nodes, or the kernels formed so far) until none fires. The
 * driver, not the rule, writes every decision to the `fusion` log as `[rule] message`.
 *
 * Adding a rule: write a `Rule` in rules/ (a name, what it matches, and `apply`, which
 * returns null where the rule does not apply, `{ refused }` with the reason where it could
 * but must not, or `{ fired }` after changing the schedule through the FusionState), then
 * add it to a rule set in rules/index.ts. A rule reads and changes only the FusionState.
 */
import type { FusionState } from './state.ts';

/**
 * A rule's answer for one site. null: the rule does not match it (nothing is logged);
 * refused: it matches but must not fire, and why (one line or several); fired: it changed
 * the schedule (message null: a routine placement not worth a log line). `notes` are
 * refusals met on the way to firing (the candidates tried before the one that fit).
 */
export type Outcome = { fired: string | null; notes?: string[] } | { refused: string | string[] } | null;

export interface Rule<Site> {
  /** the name in the log: lower-case words joined by '-' */
  name: string;
  /** what it matches and what it does, for readers and for docs */
  doc: string;
  apply(st: FusionState, site: Site): Outcome;
}

export interface RuleSet<Site> {
  name: string;
  /** the sites to visit, in order (recomputed for every sweep) */
  sites(st: FusionState): Site[];
  /**
   * a site that needs no more rules: in 'site' order the rules after the one that settled
   * it are skipped, and in either order a settled site is not visited again
   */
  settled(st: FusionState, site: Site): boolean;
  /**
   * 'site': each site goes through the rules in order (placement: the first rule that
   * settles a node decides where it goes). 'rule': each rule sweeps every site before the
   * next rule starts (a rewrite of the whole schedule per rule).
   */
  order: 'site' | 'rule';
  rules: Rule<Site>[];
}

/** Applies one rule to one site and logs what it says; true when it fired. */
export function applyRule<Site>(st: FusionState, rule: Rule<Site>, site: Site): boolean {
  const out = rule.apply(st, site);
  if (out === null) return false;
  if ('refused' in out) {
    for (const why of typeof out.refused === 'string' ? [out.refused] : out.refused) st.note(rule.name, why);
    return false;
  }
  for (const why of out.notes ?? []) st.note(rule.name, why);
  if (out.fired !== null) st.note(rule.name, out.fired);
  return true;
}

/** Sweeps a rule set over its sites until a whole sweep fires nothing; returns how many rules fired. */
export function runRuleSet<Site>(st: FusionState, set: RuleSet<Site>, maxSweeps = 8): number {
  let total = 0;
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let fired = 0;
    if (set.order === 'site') {
      for (const site of set.sites(st)) {
        for (const rule of set.rules) {
          if (set.settled(st, site)) break;
          if (applyRule(st, rule, site)) fired++;
        }
      }
    } else {
      for (const rule of set.rules) {
        for (const site of set.sites(st)) {
          if (set.settled(st, site)) continue;
          if (applyRule(st, rule, site)) fired++;
        }
      }
    }
    total += fired;
    if (!fired) return total;
  }
  throw new Error(`internal compiler error: fusion rule set ${set.name} did not settle in ${maxSweeps} sweeps`);
}
