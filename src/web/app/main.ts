/**
 * The dashboard page: guests and migrations of the agent that served it, live charts of the selected migration
 * from the event stream (`GET /v1/events`), forms that call the control API, and a side-by-side comparison of
 * finished migrations. Plain DOM, no framework: rows are updated in place, keyed by id, so keyboard focus survives
 * the once-a-second refresh.
 */
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { migrationEnded } from '../../migration/stats.js';
import { formatBytes, formatMs } from '../../units.js';
import type { EndEvent, HelloEvent, LiveSample, ProgressEvent } from '../live-events.js';
import { readEnergy } from '../live-events.js';
import { type EventName, parseEvent } from '../live-schemas.js';
import type { MigrationSummary } from '../summary.js';
import { type AgentStatus, api, type GuestRow, takeToken } from './api.js';
import { CHARTS, LiveChart } from './charts.js';
import { $, el } from './dom.js';
import { showError, wireForms } from './forms.js';
import { compareTable, type ReportLike, roundColumns, timeColumns } from './series.js';
import { setCells, syncOptions, syncRows } from './table-rows.js';

const short = (id: string) => id.slice(0, 8);

/**
 * What the page knows of a migration: the summary the status lists (every second), over the full report once one
 * came (progress and end events, the answers to migrate and cancel, a fetch of GET /v1/migrations/ID).
 */
type Known = MigrationSummary & Partial<ReportLike>;

const state = {
  status: undefined as AgentStatus | undefined,
  reports: new Map<string, Known>(),
  /** Ids whose entry in `reports` is a full report (rounds, energy, codec figures), not only a summary. */
  full: new Set<string>(),
  /** Ids whose full report was asked for (once: one the agent no longer keeps is not asked for again). */
  fetching: new Set<string>(),
  /** Ids whose full report could not be had (the agent dropped it from its history, or restarted). */
  unavailable: new Set<string>(),
  samples: new Map<string, LiveSample[]>(),
  selected: '' as string,
  /** The user picked a migration; otherwise the view follows the newest one. */
  pinned: false,
  compare: new Set<string>(),
  /** Previous step counts per guest, for the progress rate column. */
  steps: new Map<string, { at: number; steps: number; rate: number | null }>(),
};

// ------------------------------------------------------------------------------------------------------------
// Event stream

function setConn(text: string, cls: 'live' | 'down' | ''): void {
  const c = $('#conn');
  if (c.textContent !== text) c.textContent = text;
  c.className = `conn ${cls}`;
}

/**
 * Listens to the stream's event `name`, each checked by its schema (live-schemas.ts) before `handle` sees it; one
 * that does not match is dropped with a console error (the next status event, within a second, redraws; the browser
 * test, test/dashboard.test.ts, fails on any console error, so every real event is checked there).
 */
function listen<T>(es: EventSource, name: EventName, handle: (v: T) => void): void {
  es.addEventListener(name, (e) => {
    const r = parseEvent<T>(name, (e as MessageEvent<string>).data);
    if (r.ok) handle(r.value);
    else
      console.warn(
        `livemig: dropped a malformed "${name}" event from the agent (at ${r.field}: ${r.problem})`,
      );
  });
}

function connect(): void {
  const es = new EventSource('/v1/events');
  es.onopen = () => setConn('live', 'live');
  es.onerror = () => setConn('connection lost — reconnecting…', 'down');
  listen<HelloEvent & { status: AgentStatus }>(es, 'hello', (h) => {
    for (const s of h.series) state.samples.set(s.id, s.samples);
    onStatus(h.status);
  });
  listen<AgentStatus>(es, 'status', onStatus);
  listen<ProgressEvent>(es, 'progress', (p) => {
    const list = state.samples.get(p.id) ?? [];
    list.push(p.sample);
    state.samples.set(p.id, list);
    setReport(p.report, true);
    if (!state.pinned && !migrationEnded(p.report.status)) state.selected = p.id;
    schedule();
  });
  listen<EndEvent>(es, 'end', (p) => {
    setReport(p.report, true);
    schedule();
  });
}

function setReport(r: Known, full: boolean): void {
  const old = state.reports.get(r.id);
  // A summary refreshes the figures it carries and keeps the rest of the full report we already have.
  state.reports.set(r.id, full || !old ? r : { ...old, ...r });
  if (full) state.full.add(r.id);
}

/** The full report of `id` if the page has it; otherwise fetches it once (the next render shows it). */
function fullReport(id: string): ReportLike | undefined {
  const r = state.reports.get(id);
  if (r && state.full.has(id)) return r as ReportLike;
  if (r && !state.fetching.has(id)) {
    state.fetching.add(id);
    api
      .migration(id)
      .then((full) => setReport(full, true))
      .catch(() => state.unavailable.add(id))
      .finally(schedule);
  }
  return undefined;
}

function onStatus(s: AgentStatus): void {
  state.status = s;
  const now = performance.now();
  for (const g of s.guests) {
    const steps = g.steps.reduce((a, b) => a + b, 0);
    const prev = state.steps.get(g.id);
    const rate = prev && now > prev.at ? ((steps - prev.steps) * 1000) / (now - prev.at) : null;
    state.steps.set(g.id, { at: now, steps, rate });
  }
  for (const r of s.outgoing) setReport(r, false);
  if (!state.selected && s.outgoing.length > 0) state.selected = newest(s.outgoing.map((r) => r.id));
  schedule();
}

function newest(ids: string[]): string {
  const at = (id: string) => state.reports.get(id)?.startedAt ?? '';
  return [...ids].sort((a, b) => at(b).localeCompare(at(a)))[0] ?? '';
}

// ------------------------------------------------------------------------------------------------------------
// Rendering: coalesced, at most ten times a second

let pending = false;
function schedule(): void {
  if (pending) return;
  pending = true;
  setTimeout(() => {
    pending = false;
    render();
  }, 100);
}

const charts = new Map<string, LiveChart>();

function render(): void {
  const s = state.status;
  if (s) $('#agent').textContent = `agent ${s.address} · livemig ${s.version}`;
  renderGuests();
  renderGuestSelect();
  renderMigrationSelect();
  renderSummary();
  renderCharts();
  renderFinished();
  renderCompare();
}

function rate(n: number | null): string {
  if (n === null) return '—';
  return n >= 1e6
    ? `${(n / 1e6).toFixed(2)} M steps/s`
    : n >= 1e3
      ? `${(n / 1e3).toFixed(1)} k steps/s`
      : `${n.toFixed(0)} steps/s`;
}

function renderGuests(): void {
  const guests = state.status?.guests ?? [];
  $('#guests-empty').hidden = guests.length > 0;
  syncRows(
    $<HTMLTableSectionElement>('#guests tbody'),
    guests,
    (g) => g.id,
    (g) => {
      const migrate = el(
        'button',
        { type: 'button', class: 'secondary', 'aria-label': `migrate guest ${g.id}` },
        'Migrate…',
      );
      migrate.addEventListener('click', () => {
        const form = $<HTMLFormElement>('#migrate-form');
        renderGuestSelect();
        (form.elements.namedItem('guest') as HTMLSelectElement).value = g.id;
        (form.elements.namedItem('destination') as HTMLInputElement).focus();
      });
      const stop = el(
        'button',
        { type: 'button', class: 'secondary', 'aria-label': `stop guest ${g.id}` },
        'Stop',
      );
      stop.addEventListener('click', () => {
        api.stopGuest(g.id).catch((err: unknown) => showError('start', err));
      });
      const actions = el('td', {}, migrate, ' ', stop);
      return el(
        'tr',
        {},
        el('th', { scope: 'row' }),
        el('td'),
        el('td'),
        el('td', { class: 'num' }),
        el('td', { class: 'num' }),
        el('td', { class: 'num' }),
        el('td', { class: 'num' }),
        actions,
      );
    },
    (row, g: GuestRow) => {
      setCells(row, [
        g.id,
        g.migration ? `migrating (${short(g.migration)})` : g.status,
        g.config.workload.name,
        formatBytes(g.config.ramBytes),
        String(g.config.vcpus ?? 1),
        g.cap === 0 ? 'uncapped' : `${g.cap} %`,
        rate(state.steps.get(g.id)?.rate ?? null),
      ]);
      const busy = g.status === 'migrating';
      for (const b of row.querySelectorAll('button')) b.disabled = busy;
    },
  );
}

function renderGuestSelect(): void {
  const guests = (state.status?.guests ?? []).filter((g) => g.status !== 'migrating');
  const select = $<HTMLFormElement>('#migrate-form').elements.namedItem('guest') as HTMLSelectElement;
  syncOptions(
    select,
    guests.length
      ? guests.map((g) => [g.id, `${g.id} (${g.config.workload.name}, ${formatBytes(g.config.ramBytes)})`])
      : [['', 'no guest to migrate']],
  );
}

function sortedReports(): Known[] {
  return [...state.reports.values()].sort((a, b) => b.startedAt.localeCompare(a.startedAt));
}

function renderMigrationSelect(): void {
  const select = $<HTMLSelectElement>('#mig-select');
  const opts: [string, string][] = [['', 'the newest migration (follow)']];
  for (const r of sortedReports())
    opts.push([r.id, `${short(r.id)} · ${r.guestId} → ${r.destination} · ${r.status}`]);
  syncOptions(select, opts);
  const want = state.pinned ? state.selected : '';
  if (select.value !== want) select.value = want;
}

const SUMMARY: [string, string, (r: Known) => string][] = [
  ['status', 'status', (r) => r.status],
  ['phase', 'phase', (r) => r.phase],
  ['round', 'rounds', (r) => String(r.rounds)],
  ['elapsed', 'total time', (r) => formatMs(r.totalTimeMs)],
  ['transferred', 'transferred', (r) => formatBytes(r.transferredBytes)],
  ['remaining', 'remaining', (r) => formatBytes(r.remainingBytes)],
  [
    'expected',
    'expected downtime',
    (r) => `${formatMs(r.expectedDowntimeMs)} (limit ${formatMs(r.downtimeLimitMs)})`,
  ],
  ['downtime', 'downtime', (r) => (migrationEnded(r.status) ? formatMs(r.downtimeMs) : '—')],
  [
    'verified',
    'verification',
    (r) =>
      r.status === 'completed'
        ? r.verified
          ? 'verified'
          : 'not verified'
        : migrationEnded(r.status)
          ? 'not verified'
          : 'pending',
  ],
  [
    'power',
    'source power',
    (r) => {
      // The report's figure (mean over the migration) once it ends; the meter's latest reading while it runs.
      const e = readEnergy(r);
      if (e) return `${e.watts === null ? '—' : `${e.watts.toFixed(1)} W`} mean (${e.label})`;
      const last = state.samples.get(r.id)?.findLast((s) => s.powerW !== null);
      return last?.powerW != null ? `${last.powerW.toFixed(1)} W now (${last.powerLabel})` : 'not reported';
    },
  ],
];

function renderSummary(): void {
  const dl = $('#summary');
  const r = state.reports.get(state.selected);
  $<HTMLButtonElement>('#cancel').disabled = !r || !(r.status === 'setup' || r.status === 'active');
  if (!r) {
    dl.replaceChildren(el('div', {}, el('dt', {}, 'migration'), el('dd', {}, 'none yet: start one above')));
    return;
  }
  if (dl.dataset.id !== r.id || dl.children.length !== SUMMARY.length + 2) {
    dl.dataset.id = r.id;
    dl.replaceChildren(
      el('div', {}, el('dt', {}, 'migration'), el('dd', {}, `${short(r.id)} (${r.strategy})`)),
      el('div', {}, el('dt', {}, 'guest'), el('dd', {}, `${r.guestId}: ${r.source} → ${r.destination}`)),
      ...SUMMARY.map(([key, label]) => el('div', {}, el('dt', {}, label), el('dd', { 'data-field': key }))),
    );
  }
  for (const [key, , f] of SUMMARY) {
    const dd = $(`[data-field="${key}"]`, dl);
    const v = f(r);
    if (dd.textContent !== v) dd.textContent = v;
    if (key === 'verified' || key === 'status') {
      dd.className =
        v === 'verified' || v === 'completed'
          ? 'ok'
          : v === 'failed' || v === 'not verified' || v === 'cancelled'
            ? 'bad'
            : '';
    }
  }
  const err = r.error ? `${r.error.code}: ${r.error.message}` : '';
  const p = $('[data-error="live"]');
  if (p.textContent !== err) p.textContent = err;
}

function renderCharts(): void {
  const host = $('#charts');
  if (charts.size === 0) for (const spec of CHARTS) charts.set(spec.key, new LiveChart(host, spec));
  const id = state.selected;
  const r = state.reports.get(id);
  const c = timeColumns(state.samples.get(id) ?? []);
  charts.get('throughput')!.set([c.tS, c.throughputMbps, c.limitMbps]);
  charts.get('downtime')!.set([c.tS, c.expectedDowntimeMs, c.downtimeLimitMs]);
  charts.get('transfer')!.set([c.tS, c.transferredMiB, c.remainingMiB]);
  charts.get('xbzrle')!.set([c.tS, c.hitRatePct, c.savedMiB]);
  charts.get('guest')!.set([c.tS, c.stepsPerSec, c.cap]);
  charts.get('faults')!.set([c.tS, c.faults]);
  const energy = r ? readEnergy(r) : undefined;
  const power = charts.get('power')!;
  const hasPower = energy !== undefined || c.powerW.some((w) => w !== null);
  power.show(hasPower);
  if (hasPower) {
    const samples = state.samples.get(id) ?? [];
    const label = samples.findLast((x) => x.powerLabel !== null)?.powerLabel ?? energy?.label ?? 'modelled';
    // Energy per migration (src/power/host.ts), once the migration has ended.
    const cost = r?.energy?.cost;
    const dest =
      cost && cost.destinationJoules !== null && cost.destinationJoulesPerGiB !== null
        ? `${Math.round(cost.destinationJoules)} J, ${Math.round(cost.destinationJoulesPerGiB)} J/GiB`
        : 'not measured';
    const per = cost
      ? ` · energy per migration (modelled, ${cost.model}): source ${Math.round(cost.sourceJoules)} J, ` +
        `${Math.round(cost.sourceJoulesPerGiB)} J/GiB moved; destination ${dest}`
      : '';
    power.setTitle(`Source host power (${label})${per}`);
    power.set([c.tS, c.powerW]);
  }
  const rounds = roundColumns(r?.perRound ?? []);
  charts.get('rounds')!.set([rounds.round, rounds.pagesSent, rounds.dirtyPages]);
  // A migration that ended before the page opened: the status lists its summary; fetch its report.
  if (r) fullReport(id);
}

function renderFinished(): void {
  const list = sortedReports();
  $('#finished-empty').hidden = list.length > 0;
  syncRows(
    $<HTMLTableSectionElement>('#finished tbody'),
    list,
    (r) => r.id,
    (r) => {
      const box = el('input', { type: 'checkbox', 'aria-label': `compare migration ${short(r.id)}` });
      box.addEventListener('change', () => {
        if (box.checked) state.compare.add(r.id);
        else state.compare.delete(r.id);
        renderCompare();
      });
      const show = el(
        'button',
        { type: 'button', class: 'secondary', 'aria-label': `show migration ${short(r.id)}` },
        'Show',
      );
      show.addEventListener('click', () => {
        state.selected = r.id;
        state.pinned = true;
        render();
        $('#live').focus();
      });
      const cells = Array.from({ length: 9 }, (_, i) => el('td', i >= 5 ? { class: 'num' } : {}));
      cells[0] = el('th', { scope: 'row' });
      return el('tr', {}, el('td', {}, box), ...cells, el('td', {}, show));
    },
    (row, r) => {
      const values = [
        '',
        short(r.id),
        r.guestId,
        r.strategy,
        r.status,
        r.status === 'completed' ? (r.verified ? 'verified' : 'not verified') : '—',
        formatMs(r.totalTimeMs),
        migrationEnded(r.status) ? formatMs(r.downtimeMs) : '—',
        formatBytes(r.transferredBytes),
        String(r.rounds),
      ];
      values.forEach((v, i) => {
        const c = row.cells[i];
        if (i > 0 && c && c.textContent !== v) c.textContent = v;
      });
    },
  );
}

function renderCompare(): void {
  const host = $('#compare');
  const ticked = sortedReports().filter((r) => state.compare.has(r.id));
  // The comparison needs full reports; those the page has only summaries of are fetched first.
  const chosen = ticked.map((r) => fullReport(r.id)).filter((r) => r !== undefined);
  if (chosen.length < 2 || chosen.length < ticked.length) {
    const gone = ticked.filter((r) => state.unavailable.has(r.id)).map((r) => short(r.id));
    const msg =
      ticked.length === 1
        ? 'Tick one more migration to compare.'
        : gone.length > 0
          ? `The agent no longer has the report of ${gone.join(', ')}.`
          : ticked.length > 1
            ? 'Fetching the reports…'
            : '';
    if (host.textContent !== msg) host.replaceChildren(msg ? el('p', { class: 'muted' }, msg) : '');
    return;
  }
  const rows = compareTable(chosen);
  const table = el(
    'table',
    { 'data-compare': String(chosen.length) },
    el('caption', { class: 'visually-hidden' }, 'Migrations side by side'),
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        el('th', { scope: 'col' }, 'figure'),
        ...chosen.map((r) => el('th', { scope: 'col' }, `${short(r.id)} (${r.guestId})`)),
      ),
    ),
    el(
      'tbody',
      {},
      ...rows.map((row) =>
        el('tr', {}, el('th', { scope: 'row' }, row.label), ...row.values.map((v) => el('td', {}, v))),
      ),
    ),
  );
  host.replaceChildren(el('h3', {}, 'Side by side'), el('div', { class: 'table-wrap' }, table));
}

takeToken(); // first: takes the token out of the address bar
wireForms({
  started: (r) => {
    setReport(r, true);
    state.selected = r.id;
    state.pinned = false;
    schedule();
  },
  cancelled: (r) => {
    setReport(r, true);
    schedule();
  },
  pick: (v) => {
    state.pinned = v !== '';
    state.selected = v || newest([...state.reports.keys()]);
    render();
  },
  selected: () => state.selected,
});
render();
connect();
