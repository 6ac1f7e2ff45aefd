/**
 * SVG line charts, written by hand so the bench needs no plotting library:
 * panels side by side under one title, each with axes, ticks, axis labels, a
 * polyline and dots per series, and a legend. Only what the bench plots.
 */

export interface Series {
  readonly name: string;
  /** [x, y] in data units; drawn in x order. */
  readonly points: ReadonlyArray<readonly [number, number]>;
}

export interface Panel {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  /** Logarithmic x axis (fleet sizes 100 … 10,000). */
  readonly xLog?: boolean;
  /** A dashed horizontal line, e.g. a goal. */
  readonly limit?: {readonly y: number; readonly label: string};
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];
const PANEL_W = 420;
const PANEL_H = 300;
const MARGIN = {left: 62, right: 16, top: 28, bottom: 64};

function esc(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({'<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;'})[c]!);
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 10_000) return `${+(v / 1000).toPrecision(3)}k`;
  return String(+v.toPrecision(3));
}

/** Round tick values covering [lo, hi]: steps of 1, 2 or 5 × 10^k, about `count` of them. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) hi = lo + 1;
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let t = Math.floor(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(+t.toPrecision(12));
  if (ticks.at(-1)! < hi) ticks.push(+(ticks.at(-1)! + step).toPrecision(12));
  return ticks;
}

function logTicks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of hi / lo < 100 ? [1, 2, 5] : [1]) {
      const t = m * 10 ** e;
      if (t >= lo / 1.0001 && t <= hi * 1.0001) ticks.push(t);
    }
  }
  return ticks.length >= 2 ? ticks : [lo, hi];
}

function panel(p: Panel, x0: number, y0: number, colorOf: (name: string) => string): string {
  const w = PANEL_W - MARGIN.left - MARGIN.right;
  const h = PANEL_H - MARGIN.top - MARGIN.bottom;
  const all = p.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!p.xLog || x > 0));
  const out: string[] = [`<g transform="translate(${x0},${y0})">`];
  out.push(`<text x="${PANEL_W / 2}" y="16" text-anchor="middle" font-weight="bold">${esc(p.title)}</text>`);
  const left = MARGIN.left;
  const top = MARGIN.top;
  if (all.length === 0) {
    out.push(`<text x="${PANEL_W / 2}" y="${top + h / 2}" text-anchor="middle" fill="#888">no data</text></g>`);
    return out.join('\n');
  }
  const xs = all.map(([x]) => x);
  const ys = all.map(([, y]) => y);
  if (p.limit) ys.push(p.limit.y);
  let xLo = Math.min(...xs);
  let xHi = Math.max(...xs);
  if (xLo === xHi) {
    xLo = p.xLog ? xLo / 2 : xLo - 1;
    xHi = p.xLog ? xHi * 2 : xHi + 1;
  }
  const yTicks = niceTicks(Math.min(0, ...ys), Math.max(...ys));
  const yLo = yTicks[0]!;
  const yHi = yTicks.at(-1)!;
  const xTicks = p.xLog ? logTicks(xLo, xHi) : niceTicks(xLo, xHi);
  if (!p.xLog) {
    xLo = Math.min(xLo, xTicks[0]!);
    xHi = Math.max(xHi, xTicks.at(-1)!);
  }
  const sx = (x: number): number => left + (p.xLog ? (Math.log10(x) - Math.log10(xLo)) / (Math.log10(xHi) - Math.log10(xLo)) : (x - xLo) / (xHi - xLo)) * w;
  const sy = (y: number): number => top + h - ((y - yLo) / (yHi - yLo)) * h;
  const r = (v: number): string => v.toFixed(1);

  for (const t of yTicks) {
    out.push(`<line x1="${left}" x2="${left + w}" y1="${r(sy(t))}" y2="${r(sy(t))}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${left - 6}" y="${r(sy(t) + 4)}" text-anchor="end">${fmt(t)}</text>`);
  }
  for (const t of xTicks) {
    out.push(`<line x1="${r(sx(t))}" x2="${r(sx(t))}" y1="${top + h}" y2="${top + h + 4}" stroke="#333"/>`);
    out.push(`<text x="${r(sx(t))}" y="${top + h + 17}" text-anchor="middle">${fmt(t)}</text>`);
  }
  out.push(`<path d="M${left},${top}V${top + h}H${left + w}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${left + w / 2}" y="${top + h + 34}" text-anchor="middle">${esc(p.xLabel)}</text>`);
  out.push(`<text transform="translate(14,${top + h / 2}) rotate(-90)" text-anchor="middle">${esc(p.yLabel)}</text>`);
  if (p.limit) {
    const y = r(sy(p.limit.y));
    out.push(`<line x1="${left}" x2="${left + w}" y1="${y}" y2="${y}" stroke="#888" stroke-dasharray="5,4"/>`);
    out.push(`<text x="${left + w - 4}" y="${Number(y) - 4}" text-anchor="end" fill="#666">${esc(p.limit.label)}</text>`);
  }

  for (const s of p.series) {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!p.xLog || x > 0)).slice().sort((a, b) => a[0] - b[0]);
    if (pts.length === 0) continue;
    const color = colorOf(s.name);
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map(([x, y]) => `${r(sx(x))},${r(sy(y))}`).join(' ')}"/>`);
    if (pts.length <= 40) for (const [x, y] of pts) out.push(`<circle cx="${r(sx(x))}" cy="${r(sy(y))}" r="3" fill="${color}"><title>${esc(`${s.name}: ${fmt(x)}, ${fmt(y)}`)}</title></circle>`);
  }
  // legend, one row under the x label
  let lx = left;
  for (const s of p.series) {
    if (s.points.length === 0) continue;
    out.push(`<rect x="${lx}" y="${top + h + 44}" width="14" height="4" fill="${colorOf(s.name)}"/>`);
    out.push(`<text x="${lx + 18}" y="${top + h + 50}">${esc(s.name)}</text>`);
    lx += 28 + 7 * s.name.length;
  }
  out.push('</g>');
  return out.join('\n');
}

/**
 * A standalone SVG: a title, a subtitle (the machine and the date), and the
 * panels side by side. A series keeps its colour across panels.
 */
export function figure(title: string, subtitle: string, panels: readonly Panel[]): string {
  const names = [...new Set(panels.flatMap((p) => p.series.map((s) => s.name)))];
  const colorOf = (name: string): string => COLORS[names.indexOf(name) % COLORS.length]!;
  const width = PANEL_W * Math.max(1, panels.length);
  const height = PANEL_H + 48;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
    `<text x="${width / 2}" y="38" text-anchor="middle" fill="#555">${esc(subtitle)}</text>`,
    ...panels.map((p, i) => panel(p, i * PANEL_W, 48, colorOf)),
    '</svg>',
    '',
  ].join('\n');
}
