/**
 * The cluster view (`livemig cluster --dashboard`): hosts with their guests, utilisation and power, the migrations in
 * flight, the whole cluster's power curve and the migration timeline, redrawn from each `view` event of
 * `GET /v1/cluster/events` (src/cluster/dashboard.ts). Read-only. Plain DOM; host cards and table rows are keyed and
 * updated in place.
 */
import 'uplot/dist/uPlot.min.css';
import './style.css';
import './cluster.css';
import { formatBytes } from '../../units.js';
import { COLORS, LiveChart } from './charts.js';
import {
  type ClusterView,
  guestText,
  hostState,
  hostText,
  parseView,
  powerColumns,
  statusLine,
  timelineBars,
} from './cluster-view.js';
import { $, el } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

const power = new LiveChart($('#power'), {
  key: 'cluster-power',
  title: 'Whole-cluster power and hosts on',
  description:
    'watts of all hosts (SPECpower at the measured utilisation) and hosts switched on, per interval',
  xLabel: 'trace hours',
  yLabel: 'W',
  y2Label: 'hosts on',
  series: [
    { label: 'power', color: COLORS.vermillion, unit: 'W' },
    { label: 'hosts on', color: COLORS.blue, unit: 'hosts', scale: 'y2', points: true },
  ],
});

let latest: ClusterView | undefined;

function renderHosts(v: ClusterView): void {
  const box = $('#hosts');
  const migrating = new Set(v.inFlight.map((f) => f.guest));
  for (const h of v.hosts) {
    let card = box.querySelector<HTMLElement>(`[data-host="${h.index}"]`);
    if (!card) {
      card = el('article', {
        class: 'host',
        'data-host': String(h.index),
        'aria-labelledby': `host-${h.index}`,
      });
      card.append(
        el('h3', { id: `host-${h.index}` }),
        el('p', { class: 'figures' }),
        el('meter', { min: '0', max: '1', low: '0.8', high: '0.95', optimum: '0.5' }),
        el('ul', { 'aria-label': `guests on host ${h.index}` }),
      );
      box.append(card);
    }
    const state = hostState(h);
    const t = hostText(h);
    card.dataset.state = state;
    card.dataset.guests = String(h.guests.length);
    card.querySelector('h3')!.textContent = t.title;
    card.querySelector('.figures')!.textContent = t.figures;
    const meter = card.querySelector('meter')!;
    meter.value = Math.min(1, h.utilisation);
    meter.setAttribute('aria-label', `host ${h.index} utilisation`);
    meter.textContent = `${Math.round(h.utilisation * 100)} %`;
    const ul = card.querySelector('ul')!;
    ul.replaceChildren(
      ...h.guests.map((g) =>
        el(
          'li',
          { 'data-guest': g.guest, 'data-migrating': String(migrating.has(g.guest)) },
          guestText(g) + (migrating.has(g.guest) ? ' · migrating' : ''),
        ),
      ),
    );
  }
}

function renderFlight(v: ClusterView): void {
  const now = Date.now();
  $('#flight tbody').replaceChildren(
    ...v.inFlight.map((f) =>
      el(
        'tr',
        { 'data-guest': f.guest },
        el('td', {}, f.guest),
        el('td', {}, `host ${f.from}`),
        el('td', {}, `host ${f.to}`),
        el('td', {}, String(f.interval)),
        el('td', {}, `${((now - f.startedAt) / 1000).toFixed(1)} s`),
      ),
    ),
  );
  $('#flight-empty').hidden = v.inFlight.length > 0;
}

function renderTimeline(v: ClusterView): void {
  const { bars, rows, hours } = timelineBars(v, Date.now());
  const W = 800;
  const left = 70;
  const rowH = 16;
  const H = 24 + rows.length * rowH;
  const x = (h: number): number => left + ((W - left - 10) * h) / Math.max(hours, 1e-9);
  const root = svg('svg', {
    viewBox: `0 0 ${W} ${H}`,
    role: 'img',
    'aria-label': `Migration timeline: ${bars.length} migrations of ${rows.length} guests over ${hours.toFixed(1)} trace hours`,
  });
  root.dataset.bars = String(bars.length);
  // At most about ten ticks, on round steps of trace hours.
  const step = [0.1, 0.25, 0.5, 1, 2, 3, 6, 12, 24].find((s) => hours / s <= 10) ?? 24;
  for (let i = 0; i * step <= hours + 1e-9; i++) {
    const hr = i * step;
    root.append(svg('line', { x1: x(hr), x2: x(hr), y1: 0, y2: H - 16, stroke: '#e6e6e6' }));
    root.append(svg('text', { x: x(hr), y: H - 4, 'text-anchor': 'middle' }, `${+hr.toFixed(2)} h`));
  }
  rows.forEach((g, i) => {
    root.append(svg('text', { x: 4, y: 4 + i * rowH + 11 }, g));
  });
  for (const b of bars) {
    const r = svg('rect', {
      x: x(b.start),
      y: 4 + b.row * rowH + 2,
      width: Math.max(2, x(b.end) - x(b.start)),
      height: rowH - 5,
      class: `bar-${b.status.replace(/\s+/g, '-')}`,
    });
    r.append(svg('title', {}, b.label));
    root.append(r);
  }
  $('#timeline').replaceChildren(root);
  $('#done tbody').replaceChildren(
    ...[...v.migrations]
      .reverse()
      .map((m) =>
        el(
          'tr',
          { 'data-guest': m.guest, 'data-status': m.status },
          el('td', {}, m.guest),
          el('td', {}, `${m.from} → ${m.to}`),
          el('td', {}, String(m.interval)),
          el('td', {}, m.status + (m.error ? `: ${m.error}` : '')),
          el('td', {}, `${(m.totalTimeMs / 1000).toFixed(2)} s`),
          el('td', {}, `${m.downtimeMs.toFixed(0)} ms`),
          el('td', {}, formatBytes(m.transferredBytes)),
          el('td', {}, m.verified ? 'yes' : 'no'),
        ),
      ),
  );
}

function renderKilled(v: ClusterView): void {
  $('#killed-card').hidden = v.killed.length === 0;
  $('#killed').replaceChildren(
    ...v.killed.map((k) =>
      el(
        'li',
        { 'data-host': String(k.host) },
        `host ${k.host} died at interval ${k.interval}; guests lost with it: ${k.guests.join(', ') || 'none'}`,
      ),
    ),
  );
}

function render(v: ClusterView): void {
  latest = v;
  document.body.dataset.phase = v.phase;
  document.body.dataset.interval = String(v.interval);
  $('#summary').textContent = statusLine(v);
  renderKilled(v);
  renderHosts(v);
  renderFlight(v);
  power.set(powerColumns(v));
  renderTimeline(v);
}

function connect(): void {
  const conn = $('#conn');
  const es = new EventSource('/v1/cluster/events');
  es.addEventListener('open', () => {
    conn.textContent = 'live';
    conn.dataset.state = 'live';
  });
  es.addEventListener('view', (e) => {
    const r = parseView((e as MessageEvent<string>).data);
    if (!r.ok) {
      // Dropped, said in the console (the browser test fails on any console error); the next view redraws.
      console.error(`cluster view: a view event does not match at ${r.field} (${r.problem}); dropped`);
      return;
    }
    render(r.value);
  });
  es.addEventListener('error', () => {
    // The manager is gone (the run ended and it exited) or restarting: EventSource retries by itself.
    conn.textContent =
      latest?.phase === 'running' || !latest ? 'reconnecting…' : 'run over; the manager has stopped';
    conn.dataset.state = 'down';
  });
}

// In-flight durations and bars grow between events.
setInterval(() => {
  if (latest && latest.inFlight.length > 0) {
    renderFlight(latest);
    renderTimeline(latest);
  }
}, 1000);

connect();
