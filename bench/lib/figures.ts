/**
 * The bench's plots, built from results.json: RSS and CPU against the fleet
 * size (daemon and relay side by side), and RSS and open descriptors over a
 * run (the soak's). Each names the machine and the date in its subtitle.
 */
import {figure} from './plot.js';
import type {Panel, Series} from './plot.js';
import type {Measurement, ResultsDoc} from './results.js';

function subtitle(docs: readonly ResultsDoc[]): string {
  const m = docs[0]!.machine;
  const dates = [...new Set(docs.map((d) => d.startedAt.slice(0, 10)))].sort();
  return `${m.cpus} × ${m.cpuModel.trim()}, ${m.memoryGiB.toFixed(0)} GiB, Node ${m.node.replace(/^v/, '')}; ${dates.join(', ')}`;
}

function label(m: Measurement): string {
  return m.repository === 'pyroscope' ? `${m.impl} (Pyroscope)` : m.impl;
}

/** Peak RSS and CPU (% of one core over the window) against target count, one line per implementation and repository. */
export function scalePlot(docs: readonly ResultsDoc[]): string | undefined {
  const ok = docs.flatMap((d) => d.results).filter((m) => m.window && m.peakRssMiB !== undefined);
  if (ok.length === 0) return undefined;
  const names = [...new Set(ok.map(label))];
  const of = (pick: (m: Measurement) => number): Series[] =>
    names.map((name) => ({name, points: ok.filter((m) => label(m) === name).map((m) => [m.targets, pick(m)] as const)}));
  const interval = docs[0]!.options.intervalMs;
  const every = typeof interval === 'number' ? `, a profile per type every ${interval / 1000} s` : '';
  const panels: Panel[] = [
    {title: 'Peak RSS', xLabel: 'targets (log scale)', yLabel: 'MiB (VmHWM)', xLog: true, series: of((m) => m.peakRssMiB!)},
    {title: 'CPU over the measured window', xLabel: 'targets (log scale)', yLabel: '% of one core', xLog: true, series: of((m) => (m.window!.cpuSeconds / m.window!.seconds) * 100)},
  ];
  return figure(`pprof-scraper against the bare relay${every}`, subtitle(docs), panels);
}

/** RSS and open descriptors over each daemon run, one line per fleet size; with `goal`, a dashed line 5 % above RSS after warm-up. */
export function overTimePlot(docs: readonly ResultsDoc[], title: string, goal = false): string | undefined {
  const runs = docs.flatMap((d) => d.results).filter((m) => m.impl === 'daemon' && (m.samples?.length ?? 0) > 1);
  if (runs.length === 0) return undefined;
  const name = (m: Measurement): string => `${m.targets} targets${m.repository === 'pyroscope' ? ', Pyroscope' : ''}`;
  const minutes = (t: number): number => t / 60;
  const first = runs[0]!;
  const rss: Panel = {
    title: 'RSS',
    xLabel: 'minutes since start',
    yLabel: 'MiB (VmRSS)',
    series: runs.map((m) => ({name: name(m), points: m.samples!.map((s) => [minutes(s.t), s.rssMiB] as const)})),
    ...(goal && first.growth ? {limit: {y: first.growth.rssStartMiB * 1.05, label: '+5 % over RSS after warm-up'}} : {}),
  };
  const fds: Panel = {
    title: 'Open file descriptors',
    xLabel: 'minutes since start',
    yLabel: 'descriptors',
    series: runs.map((m) => ({name: name(m), points: m.samples!.map((s) => [minutes(s.t), s.fds] as const)})),
  };
  return figure(title, subtitle(docs), [rss, fds]);
}
