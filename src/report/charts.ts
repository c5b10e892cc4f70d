/**
 * Charts: Vega-Lite specs compiled to Vega and rendered to SVG on the server (no browser), so reports are single
 * self-contained files.
 */
import type { TopLevelSpec } from 'vega-lite';

/** A Vega-Lite specification (kept loose: it is validated by Vega-Lite itself). */
export type VegaLiteSpec = Record<string, unknown>;

/** Renders one Vega-Lite spec to an SVG string. */
export async function renderSvg(spec: VegaLiteSpec): Promise<string> {
  // Loaded on first use: Vega is large, and importing livemig should not pay for it.
  const [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')]);
  const compiled = vegaLite.compile(spec as unknown as TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** A line chart of y over x, one line per series (a common case, so a helper). */
export function lineChart(opts: {
  title: string;
  values: readonly Record<string, number | string>[];
  x: string;
  y: string;
  series?: string;
  xTitle?: string;
  yTitle?: string;
  width?: number;
  height?: number;
}): VegaLiteSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: opts.title,
    width: opts.width ?? 640,
    height: opts.height ?? 220,
    data: { values: opts.values },
    mark: { type: 'line', strokeWidth: 1.5 },
    encoding: {
      x: { field: opts.x, type: 'quantitative', title: opts.xTitle ?? opts.x },
      y: { field: opts.y, type: 'quantitative', title: opts.yTitle ?? opts.y },
      ...(opts.series ? { color: { field: opts.series, type: 'nominal' } } : {}),
    },
  };
}

/** A grouped bar chart: one bar per category, optionally coloured by a series field. */
export function barChart(opts: {
  title: string;
  values: readonly Record<string, number | string>[];
  category: string;
  value: string;
  series?: string;
  valueTitle?: string;
  width?: number;
  height?: number;
}): VegaLiteSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: opts.title,
    width: opts.width ?? 480,
    height: opts.height ?? 220,
    data: { values: opts.values },
    mark: 'bar',
    encoding: {
      // sort: null keeps the order of the data (e.g. the order policies were given in).
      x: { field: opts.category, type: 'nominal', title: null, sort: null },
      y: { field: opts.value, type: 'quantitative', title: opts.valueTitle ?? opts.value },
      ...(opts.series
        ? { xOffset: { field: opts.series }, color: { field: opts.series, type: 'nominal' } }
        : {}),
    },
  };
}
