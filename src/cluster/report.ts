/**
 * The run as an HTML report (`livemig cluster --out DIR` writes report.html): the comparison with the simulator, the
 * whole cluster's power curve and hosts on (cluster and simulator), and the migration timeline (one bar per
 * migration, from its start to its end, in trace time).
 */
import { lineChart, type Report, type VegaLiteSpec } from '../report/index.js';
import { formatDelta, formatMetric, formatTarget } from './agreement-table.js';
import type { ClusterReport } from './run.js';

export function clusterHtmlReport(r: ClusterReport, command: string): Report {
  const power = r.intervals.map((i) => ({ hour: i.time / 3600, watts: i.watts }));
  const hosts = [
    ...r.intervals.map((i) => ({ hour: i.time / 3600, hosts: i.activeHosts, run: 'cluster' })),
    ...r.agreement.variants.flatMap((v) =>
      v.series.time.map((t, k) => ({ hour: t / 3600, hosts: v.series.activeHosts[k]!, run: v.label })),
    ),
  ];
  const interval = r.window.durationSec / r.window.intervals;
  const timeline = r.migrations.map((m) => {
    const start = m.interval * interval;
    return {
      guest: m.guest,
      start: start / 3600,
      end: (start + m.traceTime) / 3600,
      move: `${m.from} → ${m.to}`,
      status: m.status,
    };
  });
  const timelineChart: VegaLiteSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: 'Migrations: start to end (trace hours), one bar per migration',
    width: 640,
    height: Math.max(80, 18 * new Set(timeline.map((t) => t.guest)).size),
    data: { values: timeline },
    mark: { type: 'bar', height: 10 },
    encoding: {
      x: { field: 'start', type: 'quantitative', title: 'trace hours' },
      x2: { field: 'end' },
      y: { field: 'guest', type: 'nominal', title: 'guest' },
      color: { field: 'status', type: 'nominal' },
    },
  };
  return {
    title: `livemig cluster: ${r.policy} on ${r.day}`,
    intro:
      `${r.hosts.length} hosts, ${r.vms.length} VMs, ${r.window.intervals} intervals of 300 s replayed at ${r.speed}×; ` +
      `${r.migrations.length} migrations, every guest checked after each (docs/cluster.md).`,
    sections: [
      {
        heading: 'Cluster (measured) and simulator',
        table: {
          columns: [
            'metric',
            'cluster',
            ...r.agreement.variants.flatMap((v) => [v.label, 'Δ']),
            'target',
            'where they differ',
          ],
          rows: r.agreement.rows.map((row) => [
            row.metric,
            formatMetric(row.metric, row.cluster),
            ...row.sims.flatMap((x, i) => [formatMetric(row.metric, x), formatDelta(row, i)]),
            formatTarget(row),
            row.cause,
          ]),
        },
      },
      {
        heading: 'Power and hosts on',
        charts: [
          lineChart({
            title: 'Whole-cluster power (W, modelled from measured utilisation)',
            values: power,
            x: 'hour',
            y: 'watts',
            xTitle: 'trace hours',
          }),
          lineChart({
            title: 'Hosts on',
            values: hosts,
            x: 'hour',
            y: 'hosts',
            series: 'run',
            xTitle: 'trace hours',
          }),
        ],
      },
      { heading: 'Migration timeline', charts: [timelineChart] },
      // Every guest accounted for: where each ended, and those lost with a host that died.
      {
        heading: 'Guests',
        table: {
          columns: ['guest', 'workload', 'RAM (MiB)', 'first host', 'last host', 'migrations', 'state'],
          rows: r.vms.map((v) => [
            v.guest,
            v.workload,
            v.ramMiB,
            v.initialHost,
            v.finalHost,
            v.migrations,
            v.state,
          ]),
        },
      },
      ...(r.killed.length > 0
        ? [
            {
              heading: 'Hosts that died',
              table: {
                columns: ['host', 'interval', 'guests lost with it'],
                rows: r.killed.map((k) => [k.host, k.interval, k.guests.join(', ') || 'none']),
              },
            },
          ]
        : []),
    ],
    footer: command,
  };
}
