/**
 * A loss curve as plain text: log-scale y, one column per group of steps.
 * Pure: takes numbers, returns the lines; the caller prints them.
 *
 *   6.7e+2 |*
 *          | **
 *          |   ***
 *          |      ****
 *   9.4e-10|          *****
 *          +--------------
 *           0         step    499
 */
export interface PlotOptions {
  /** Columns of the plotting area (not counting the axis labels). */
  width?: number;
  /** Rows of the plotting area. */
  height?: number;
  /** Index of values[0] on the x axis (default 0). */
  xStart?: number;
}

function fmt(v: number): string {
  return v.toExponential(1);
}

/**
 * Returns the plot's lines. Each column shows the geometric mean of its
 * group of values (the steps it covers), placed on a log10 scale between the
 * smallest and the largest of those means; consecutive points are joined by
 * '|' so that steep falls stay visible. Values that are not finite and
 * positive cannot go on a log scale and are skipped.
 */
export function plotLossCurve(values: readonly number[], opts: PlotOptions = {}): string[] {
  const width = Math.max(1, Math.floor(opts.width ?? 60));
  const height = Math.max(2, Math.floor(opts.height ?? 15));
  const xStart = opts.xStart ?? 0;
  if (values.length === 0) return ['(no values to plot)'];

  // Group the values into at most `width` columns.
  const cols = Math.min(width, values.length);
  const points: (number | null)[] = [];
  for (let c = 0; c < cols; c++) {
    const from = Math.floor((c * values.length) / cols);
    const to = Math.floor(((c + 1) * values.length) / cols);
    let logSum = 0;
    let n = 0;
    for (let i = from; i < to; i++) {
      const v = values[i];
      if (Number.isFinite(v) && v > 0) {
        logSum += Math.log10(v);
        n++;
      }
    }
    points.push(n ? logSum / n : null);
  }
  const finite = points.filter((p): p is number => p !== null);
  if (finite.length === 0) return ['(no positive finite values to plot on a log scale)'];
  let lo = Math.min(...finite);
  let hi = Math.max(...finite);
  if (hi === lo) {
    // A flat curve: show the decade around it.
    lo -= 0.5;
    hi += 0.5;
  }
  const rowOf = (p: number) => Math.round(((hi - p) / (hi - lo)) * (height - 1));

  const grid: string[][] = Array.from({ length: height }, () => Array<string>(cols).fill(' '));
  let prev: number | null = null;
  for (let c = 0; c < cols; c++) {
    const p = points[c];
    if (p === null) {
      prev = null;
      continue;
    }
    const r = rowOf(p);
    if (prev !== null) {
      // Join to the previous point with a vertical run in this column.
      const [a, b] = prev < r ? [prev + 1, r - 1] : [r + 1, prev - 1];
      for (let k = a; k <= b; k++) grid[k][c] = '|';
    }
    grid[r][c] = '*';
    prev = r;
  }

  // Labels: the top and bottom rows, and the rows in between at powers of ten.
  const labels: string[] = Array<string>(height).fill('');
  labels[0] = fmt(10 ** hi);
  labels[height - 1] = fmt(10 ** lo);
  for (let e = Math.ceil(lo); e <= Math.floor(hi); e++) {
    const r = rowOf(e);
    if (r > 0 && r < height - 1 && labels[r - 1] === '' && labels[r + 1] === '') labels[r] = `1e${e >= 0 ? '+' : ''}${e}`;
  }
  const labelWidth = Math.max(...labels.map((l) => l.length));
  const lines = grid.map((row, r) => `${labels[r].padStart(labelWidth)} |${row.join('')}`.trimEnd());
  lines.push(`${' '.repeat(labelWidth)} +${'-'.repeat(cols)}`);

  const first = String(xStart);
  const last = String(xStart + values.length - 1);
  const mid = 'step';
  let axis = first;
  const midAt = Math.max(first.length + 1, Math.floor((cols - mid.length) / 2));
  axis = axis.padEnd(midAt) + mid;
  axis = axis.padEnd(Math.max(axis.length + 1, cols - last.length)) + last;
  lines.push(`${' '.repeat(labelWidth + 2)}${axis}`);
  return lines;
}
