import { describe, expect, it } from 'vitest';
import { plotLossCurve } from '../demo/plot.ts';

/** Row of the '*' in each column of the plotting area (after the ' |'). */
function starRows(lines: string[]): number[] {
  const area = lines.slice(0, -2).map((l) => l.slice(l.indexOf('|') + 1));
  const width = Math.max(...area.map((r) => r.length));
  const rows: number[] = [];
  for (let c = 0; c < width; c++) rows.push(area.findIndex((r) => r[c] === '*'));
  return rows;
}

describe('plotLossCurve', () => {
  const falling = Array.from({ length: 500 }, (_, i) => 673 * 10 ** (-i / 45));

  it('is height rows plus an axis and a label line, width columns wide', () => {
    const lines = plotLossCurve(falling, { width: 60, height: 15 });
    expect(lines).toHaveLength(17);
    const axis = lines[15];
    expect(axis.trim()).toBe(`+${'-'.repeat(60)}`);
    expect(lines[16].trim().startsWith('0')).toBe(true);
    expect(lines[16].trim().endsWith('499')).toBe(true);
    expect(lines[16]).toContain('step');
    for (const l of lines) expect(l).toMatch(/^[\x20-\x7e]*$/); // plain characters only
  });

  it('puts a falling curve from the top-left to the bottom-right, on a log scale', () => {
    const lines = plotLossCurve(falling, { width: 60, height: 15 });
    const rows = starRows(lines);
    expect(rows).toHaveLength(60);
    expect(rows[0]).toBe(0);
    expect(rows[59]).toBe(14);
    for (let c = 1; c < 60; c++) expect(rows[c]).toBeGreaterThanOrEqual(rows[c - 1]);
    // Exponential decay is a straight line on a log scale: the middle column sits mid-height.
    expect(Math.abs(rows[30] - 7)).toBeLessThanOrEqual(1);
    // Top and bottom labels are the range of the plotted (column-mean) values;
    // the first column averages steps 0-8 (673 down to 449): about 5.5e+2.
    const top = parseFloat(lines[0]);
    expect(top).toBeGreaterThan(449);
    expect(top).toBeLessThan(673);
    expect(lines[14].trim()).toMatch(/^[0-9.]+e-9 \|/);
    expect(lines.some((l) => /^\s*1e-3 \|/.test(l))).toBe(true);
  });

  it('joins steep drops with vertical bars', () => {
    const lines = plotLossCurve([1000, 1000, 1e-3, 1e-3], { width: 4, height: 10 });
    expect(starRows(lines)).toEqual([0, 0, 9, 9]);
    const col2 = lines.slice(0, 10).map((l) => l.slice(l.indexOf('|') + 1)[2]);
    expect(col2.slice(1, 9).every((ch) => ch === '|')).toBe(true);
  });

  it('handles flat curves, short series, bad values and empty input', () => {
    const flat = plotLossCurve([5, 5, 5], { width: 60, height: 15 });
    expect(new Set(starRows(flat))).toEqual(new Set([7]));
    const short = plotLossCurve([2, 1], { width: 60, height: 5 });
    expect(starRows(short)).toEqual([0, 4]);
    const bad = plotLossCurve([10, Number.NaN, 0, -1, 1], { width: 5, height: 5 });
    expect(starRows(bad)).toEqual([0, -1, -1, -1, 4]);
    expect(plotLossCurve([])).toEqual(['(no values to plot)']);
    expect(plotLossCurve([0, Number.NaN])[0]).toMatch(/no positive finite values/);
  });

  it('groups many steps per column by their geometric mean', () => {
    const lines = plotLossCurve([100, 1, 100, 1], { width: 2, height: 3 });
    // Both columns average to 10 on a log scale: a flat line.
    const rows = starRows(lines);
    expect(rows[0]).toBe(rows[1]);
  });
});
