/**
 * How the 64 invocations of a row or reduce kernel's workgroup share out its rows (kernel IR
 * `lanes`: invocations per row). 64 lanes: one row per workgroup, the row's value combined in
 * a tree in workgroup memory. Fewer: 64 / lanes rows per workgroup, each row's lanes combining
 * in their own segment of that memory; one lane: each invocation walks its row alone, with no
 * workgroup memory and no barrier (lavapipe pays for every barrier of every workgroup).
 *
 * The workgroup size stays 64 whatever the lanes, so these kernels still pack with the others.
 */
export const LANE_WORKGROUP = 64;

/** the lane counts a renderer accepts: powers of two that divide the workgroup */
export function checkLanes(lanes: number, what: string): number {
  if (!Number.isInteger(lanes) || lanes < 1 || lanes > LANE_WORKGROUP || (LANE_WORKGROUP % lanes) !== 0 || (lanes & (lanes - 1)) !== 0) {
    throw new Error(`internal compiler error: ${what} with ${lanes} lanes per row (a power of two up to ${LANE_WORKGROUP})`);
  }
  return lanes;
}

/** workgroups for `rows` rows */
export const laneWorkgroups = (rows: number, lanes: number) => Math.ceil(rows / (LANE_WORKGROUP / lanes));

/**
 * The lines that find an invocation's row `o` and its lane (`lane(lanes)`, 0 to lanes - 1) from the
 * builtins `wid`, `lid`, `nwg`, given the row count `rows` (a WGSL u32 expression), and,
 * where some lanes of a workgroup may have no row (`partial(lanes)`), `live`: whether it exists. A workgroup past the last row leaves at once (uniformly);
 * with several lanes the invocations of a missing row in the last workgroup compute the last
 * row again and write nothing, so every barrier stays in uniform control flow; a single lane
 * has no barrier and leaves.
 */
export function laneHeader(lanes: number, rows: string): string[] {
  const per = LANE_WORKGROUP / lanes;
  // (the whole workgroup leaves together: the barriers below stay in uniform control flow)
  if (lanes === LANE_WORKGROUP) return ['  let o = wid.x + wid.y * nwg.x;', `  if (o >= ${rows}) { return; }`];
  if (lanes === 1) return [`  let o = (wid.x + wid.y * nwg.x) * ${per}u + lid;`, `  if (o >= ${rows}) { return; }`];
  return [
    `  let first = (wid.x + wid.y * nwg.x) * ${per}u;`,
    `  if (first >= ${rows}) { return; }`,
    `  let live = first + lid / ${lanes}u < ${rows};`,
    `  let o = min(first + lid / ${lanes}u, ${rows} - 1u);`,
    `  let l = lid % ${lanes}u;`,
  ];
}

/** the WGSL expression of an invocation's lane within its row */
export const lane = (lanes: number) => (lanes === LANE_WORKGROUP ? 'lid' : lanes === 1 ? '0u' : 'l');

/** whether some invocations of a workgroup may lack a row and must not write (`live`) */
export const partial = (lanes: number) => lanes > 1 && lanes < LANE_WORKGROUP;

/** the workgroup memory slot that holds the row's value after `laneTree` */
export const laneRoot = (lanes: number) => (lanes === LANE_WORKGROUP ? '0' : 'lid - l');

/** the condition under which an invocation writes its row's per-row outputs (null: always) */
export const writesRow = (lanes: number) => (lanes === 1 ? null : partial(lanes) ? 'l == 0u && live' : 'lid == 0u');

/**
 * The tree over each row's lanes in workgroup memory `sh` (indexed by lid): `combine(to, from)`
 * is the statement that folds element `from` into `to`. After it, slot `laneRoot` holds the
 * row's value. Nothing for a single lane.
 */
export function laneTree(lanes: number, combine: (to: string, from: string) => string): string[] {
  if (lanes === 1) return [];
  return [
    '  workgroupBarrier();',
    `  for (var s = ${lanes / 2}u; s > 0u; s = s >> 1u) {`,
    `    if (${lane(lanes)} < s) {`,
    `      ${combine('lid', 'lid + s')}`,
    '    }',
    '    workgroupBarrier();',
    '  }',
  ];
}
