/** The loss curve on a canvas: log-scale loss against step, redrawn as points arrive. */
export class LossPlot {
  private series = new Map<string, { color: string; dash: number[]; values: number[] }>();
  constructor(private readonly canvas: HTMLCanvasElement) {}

  /** Starts (or restarts) a curve; a dashed one stays visible where another lies on it. */
  clear(name: string, color: string, dash: number[] = []): void {
    this.series.set(name, { color, dash, values: [] });
    this.draw();
  }

  push(name: string, value: number): void {
    this.series.get(name)?.values.push(value);
  }

  draw(): void {
    const c = this.canvas;
    const dpr = globalThis.devicePixelRatio || 1;
    const w = c.clientWidth || 600;
    const h = c.clientHeight || 260;
    if (c.width !== Math.round(w * dpr)) c.width = Math.round(w * dpr);
    if (c.height !== Math.round(h * dpr)) c.height = Math.round(h * dpr);
    const g = c.getContext('2d');
    if (!g) return;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const all = [...this.series.values()].flatMap((s) => s.values).filter((v) => v > 0 && Number.isFinite(v));
    const pad = { l: 56, r: 12, t: 12, b: 28 };
    g.strokeStyle = '#bbb';
    g.lineWidth = 1;
    g.strokeRect(pad.l, pad.t, w - pad.l - pad.r, h - pad.t - pad.b);
    g.fillStyle = '#555';
    g.font = '12px system-ui, sans-serif';
    if (!all.length) {
      g.fillText('loss (log scale) appears here as it trains', pad.l + 12, pad.t + 24);
      return;
    }
    const steps = Math.max(2, ...[...this.series.values()].map((s) => s.values.length));
    const lo = Math.floor(Math.log10(Math.min(...all)));
    const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...all))));
    const X = (i: number) => pad.l + (i / (steps - 1)) * (w - pad.l - pad.r);
    const Y = (v: number) => pad.t + ((hi - Math.log10(v)) / (hi - lo)) * (h - pad.t - pad.b);
    g.textAlign = 'right';
    for (let e = lo; e <= hi; e++) {
      const y = Y(10 ** e);
      g.fillText(`1e${e}`, pad.l - 6, y + 4);
      g.strokeStyle = '#eee';
      g.beginPath();
      g.moveTo(pad.l, y);
      g.lineTo(w - pad.r, y);
      g.stroke();
    }
    g.textAlign = 'center';
    g.fillText('step', (pad.l + w - pad.r) / 2, h - 8);
    g.fillText(String(steps - 1), w - pad.r - 10, h - 8);
    g.fillText('0', pad.l, h - 8);
    let legendX = w - pad.r - 8;
    g.textAlign = 'right';
    for (const [name, s] of [...this.series].reverse()) {
      g.fillStyle = s.color;
      g.fillText(`— ${name}`, legendX, pad.t + 16);
      legendX -= g.measureText(`— ${name}`).width + 14;
    }
    // dashed curves last, so that one lying on another still shows
    const order = [...this.series.values()].sort((a, b) => Number(a.dash.length > 0) - Number(b.dash.length > 0));
    for (const s of order) {
      g.strokeStyle = s.color;
      g.lineWidth = 2;
      g.setLineDash(s.dash);
      g.beginPath();
      s.values.forEach((v, i) => (i ? g.lineTo(X(i), Y(Math.max(v, 10 ** lo))) : g.moveTo(X(i), Y(Math.max(v, 10 ** lo)))));
      g.stroke();
    }
    g.setLineDash([]);
  }
}
