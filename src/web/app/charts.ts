/**
 * Live charts: uPlot (made for streaming time series: one canvas, a few ms per redraw) in a <figure> with a
 * caption, units on every axis, and a text line of the latest values so the numbers are readable without the
 * canvas. Each figure carries `data-points` (how many x values it drew), which the browser test reads.
 */
import uPlot from 'uplot';

// Okabe–Ito colours: distinguishable with the common colour-vision deficiencies.
export const COLORS = {
  blue: '#0072B2',
  vermillion: '#D55E00',
  green: '#009E73',
  purple: '#CC79A7',
  orange: '#E69F00',
  sky: '#56B4E9',
  black: '#222222',
} as const;

export interface SeriesSpec {
  label: string;
  color: string;
  /** 'y2' plots against the right-hand axis. */
  scale?: 'y' | 'y2';
  dash?: number[];
  points?: boolean;
  /** Unit shown after the value in the legend and the latest-values line. */
  unit: string;
  digits?: number;
}

export interface ChartSpec {
  key: string;
  title: string;
  description: string;
  xLabel: string;
  yLabel: string;
  y2Label?: string;
  /** The x axis counts things (rounds): ticks on whole numbers only. */
  integerX?: boolean;
  series: SeriesSpec[];
}

const HEIGHT = 190;

function fmt(v: number | null | undefined, s: SeriesSpec): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  return `${v.toFixed(s.digits ?? 0)} ${s.unit}`;
}

export class LiveChart {
  readonly figure: HTMLElement;
  private readonly body: HTMLDivElement;
  private readonly latest: HTMLParagraphElement;
  private readonly caption: HTMLElement;
  private plot: uPlot;
  private readonly observer: ResizeObserver;

  constructor(
    parent: HTMLElement,
    readonly spec: ChartSpec,
  ) {
    this.figure = document.createElement('figure');
    this.figure.className = 'chart';
    this.figure.dataset.chart = spec.key;
    this.figure.dataset.points = '0';
    this.caption = document.createElement('figcaption');
    this.caption.textContent = spec.title;
    this.body = document.createElement('div');
    this.body.className = 'chart-body';
    this.body.setAttribute('role', 'img');
    this.body.setAttribute('aria-label', `${spec.title}: ${spec.description}`);
    this.latest = document.createElement('p');
    this.latest.className = 'latest';
    this.latest.textContent = 'no data yet';
    this.figure.append(this.caption, this.body, this.latest);
    parent.append(this.figure);
    this.plot = new uPlot(this.options(this.width()), this.empty(), this.body);
    this.observer = new ResizeObserver(() => {
      const w = this.width();
      if (Math.abs(w - this.plot.width) >= 2) this.plot.setSize({ width: w, height: HEIGHT });
    });
    this.observer.observe(this.figure);
  }

  private width(): number {
    return Math.max(220, Math.floor(this.figure.clientWidth || 300) - 2);
  }

  private empty(): uPlot.AlignedData {
    return [[], ...this.spec.series.map(() => [])] as uPlot.AlignedData;
  }

  private options(width: number): uPlot.Options {
    const s = this.spec;
    const axis = (label: string, extra: Partial<uPlot.Axis> = {}): uPlot.Axis => ({
      label,
      stroke: '#333',
      labelSize: 18,
      font: '11px system-ui, sans-serif',
      labelFont: '12px system-ui, sans-serif',
      grid: { stroke: '#e6e6e6', width: 1 },
      ticks: { stroke: '#ccc', width: 1 },
      ...extra,
    });
    const axes: uPlot.Axis[] = [
      axis(s.xLabel, s.integerX ? { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] } : {}),
      axis(s.yLabel, { scale: 'y', size: 56 }),
    ];
    if (s.y2Label) axes.push(axis(s.y2Label, { scale: 'y2', side: 1, size: 56, grid: { show: false } }));
    return {
      width,
      height: HEIGHT,
      scales: {
        x: { time: false },
        y: { range: (_u, min, max) => [Math.min(0, min), max > 0 ? max * 1.05 : 1] },
      },
      axes,
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
      series: [
        { label: s.xLabel },
        ...s.series.map(
          (x): uPlot.Series => ({
            label: `${x.label} (${x.unit})`,
            stroke: x.color,
            width: 2,
            scale: x.scale ?? 'y',
            dash: x.dash,
            points: { show: x.points ?? false, size: 5, fill: x.color },
            spanGaps: false,
            value: (_u, v) => fmt(v, x),
          }),
        ),
      ],
    };
  }

  setTitle(title: string): void {
    this.caption.textContent = title;
    this.body.setAttribute('aria-label', `${title}: ${this.spec.description}`);
  }

  set(columns: readonly (readonly (number | null)[])[]): void {
    this.plot.setData(columns as uPlot.AlignedData);
    const n = columns[0]?.length ?? 0;
    this.figure.dataset.points = String(n);
    if (n === 0) {
      this.latest.textContent = 'no data yet';
      return;
    }
    this.latest.textContent = this.spec.series
      .map((s, i) => `${s.label}: ${fmt(columns[i + 1]?.[n - 1] ?? null, s)}`)
      .join(' · ');
  }

  show(visible: boolean): void {
    this.figure.hidden = !visible;
  }
}

export const TIME_AXIS = 'time since start (s)';

export const CHARTS: ChartSpec[] = [
  {
    key: 'rounds',
    title: 'Pages sent and dirty pages per round',
    description: 'pre-copy converges when the dirty pages shrink round after round',
    xLabel: 'round',
    integerX: true,
    yLabel: 'pages',
    series: [
      { label: 'pages sent', color: COLORS.blue, points: true, unit: 'pages' },
      { label: 'dirty at sync', color: COLORS.vermillion, points: true, unit: 'pages' },
    ],
  },
  {
    key: 'throughput',
    title: 'Throughput against the bandwidth limit',
    description: 'bytes leaving the source, in megabits per second',
    xLabel: TIME_AXIS,
    yLabel: 'Mbit/s',
    series: [
      { label: 'throughput', color: COLORS.blue, unit: 'Mbit/s' },
      { label: 'limit', color: COLORS.black, dash: [6, 4], unit: 'Mbit/s' },
    ],
  },
  {
    key: 'downtime',
    title: 'Expected downtime against the target',
    description: 'switch-over happens when the expected downtime falls under the limit',
    xLabel: TIME_AXIS,
    yLabel: 'ms',
    series: [
      { label: 'expected downtime', color: COLORS.vermillion, unit: 'ms', digits: 1 },
      { label: 'downtime limit', color: COLORS.black, dash: [6, 4], unit: 'ms' },
    ],
  },
  {
    key: 'transfer',
    title: 'Transferred and remaining',
    description: 'bytes sent so far and bytes still to send',
    xLabel: TIME_AXIS,
    yLabel: 'MiB',
    series: [
      { label: 'transferred', color: COLORS.blue, unit: 'MiB', digits: 1 },
      { label: 'remaining', color: COLORS.orange, unit: 'MiB', digits: 1 },
    ],
  },
  {
    key: 'xbzrle',
    title: 'XBZRLE cache hit rate and bytes saved',
    description: 'hits are pages sent as a delta against the cached copy',
    xLabel: TIME_AXIS,
    yLabel: 'hit rate (%)',
    y2Label: 'saved (MiB)',
    series: [
      { label: 'cache hit rate', color: COLORS.green, unit: '%', digits: 1 },
      { label: 'bytes saved', color: COLORS.purple, scale: 'y2', unit: 'MiB', digits: 1 },
    ],
  },
  {
    key: 'guest',
    title: "Guest's CAP and progress rate (on the source)",
    description: 'vCPU steps per second and the CPU cap, which auto-converge raises',
    xLabel: TIME_AXIS,
    yLabel: 'steps/s',
    y2Label: 'CAP (%)',
    series: [
      { label: 'progress', color: COLORS.blue, unit: 'steps/s' },
      { label: 'CAP', color: COLORS.vermillion, scale: 'y2', unit: '%' },
    ],
  },
  {
    key: 'faults',
    title: 'Post-copy faults',
    description: 'pages the guest touched on the destination before they arrived',
    xLabel: TIME_AXIS,
    yLabel: 'faults',
    series: [{ label: 'faults', color: COLORS.purple, unit: 'faults' }],
  },
  {
    key: 'power',
    title: 'Source host power',
    description: 'watts, labelled modelled or measured',
    xLabel: TIME_AXIS,
    yLabel: 'W',
    series: [{ label: 'power', color: COLORS.orange, unit: 'W', digits: 1 }],
  },
];
