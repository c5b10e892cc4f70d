/** The dashboard's forms: the same requests the CLI makes (start a guest, migrate, cancel), errors shown in place. */

import type { MigrationReport } from '../../migration/stats.js';
import { parseRate, parseSize } from '../../units.js';
import { ApiError, api, type MigrationChoice } from './api.js';
import { $, el } from './dom.js';

/** What the forms need of the page (main.ts): where a started or cancelled migration's report goes. */
export interface FormPage {
  /** A migration started: show its report and follow it. */
  started(r: MigrationReport): void;
  cancelled(r: MigrationReport): void;
  /** The user picked a migration in the selector ('' = follow the newest). */
  pick(id: string): void;
  /** The migration the live view shows. */
  selected(): string;
}

export function showError(where: string, err: unknown): void {
  const p = $(`[data-error="${where}"]`);
  p.textContent =
    err instanceof ApiError
      ? `${err.code}: ${err.message}`
      : err instanceof Error
        ? err.message
        : String(err);
}

export function clearError(where: string): void {
  $(`[data-error="${where}"]`).textContent = '';
}

function field(form: HTMLFormElement, name: string): string {
  const e = form.elements.namedItem(name) as HTMLInputElement | HTMLSelectElement | null;
  return e ? e.value.trim() : '';
}

function checked(form: HTMLFormElement, name: string): boolean {
  return (form.elements.namedItem(name) as HTMLInputElement | null)?.checked ?? false;
}

export function wireForms(page: FormPage): void {
  const start = $<HTMLFormElement>('#start-form');
  start.addEventListener('submit', (e) => {
    e.preventDefault();
    clearError('start');
    void (async () => {
      try {
        const params: Record<string, number> = {};
        const wr = field(start, 'writeRate');
        if (wr !== '') params.writeRate = Number(wr);
        const id = field(start, 'id') || undefined;
        const g = await api.startGuest(id, {
          ramBytes: parseSize(field(start, 'ram'), 'RAM'),
          vcpus: Number(field(start, 'vcpus') || '1'),
          workload: { name: field(start, 'workload'), params },
        });
        const cap = Number(field(start, 'cap') || '0');
        if (cap > 0) await api.throttle(g.id, cap);
        const sel = $<HTMLFormElement>('#migrate-form').elements.namedItem('guest') as HTMLSelectElement;
        sel.append(el('option', { value: g.id }, g.id));
        sel.value = g.id;
        (start.elements.namedItem('id') as HTMLInputElement).value = '';
      } catch (err) {
        showError('start', err);
      }
    })();
  });

  const mig = $<HTMLFormElement>('#migrate-form');
  const dest = mig.elements.namedItem('destination') as HTMLInputElement;
  dest.value =
    new URLSearchParams(location.search).get('destination') ??
    localStorage.getItem('livemig.destination') ??
    '';
  mig.addEventListener('submit', (e) => {
    e.preventDefault();
    clearError('migrate');
    void (async () => {
      try {
        const guest = field(mig, 'guest');
        if (!guest) throw new Error('start a guest first: there is nothing to migrate');
        const destination = field(mig, 'destination');
        if (!destination)
          throw new Error('destination: give the other agent as HOST:PORT, e.g. 127.0.0.1:7071');
        const options: MigrationChoice = {
          strategy: field(mig, 'strategy'),
          xbzrle: checked(mig, 'xbzrle'),
          xbzrleCacheBytes: parseSize(field(mig, 'cache') || '64MiB', 'XBZRLE cache size'),
          maxBandwidth: parseRate(field(mig, 'bandwidth') || '0', 'bandwidth limit'),
          downtimeLimitMs: Number(field(mig, 'downtime') || '300'),
          autoConverge: checked(mig, 'autoConverge'),
        };
        const watts = Number(field(mig, 'powerCap') || '0');
        if (watts > 0) {
          options.powerCap = watts;
          options.capping = field(mig, 'capping');
        }
        const cap = field(mig, 'cap');
        if (cap !== '') await api.throttle(guest, Number(cap));
        const r = await api.migrate(guest, destination, options);
        localStorage.setItem('livemig.destination', destination);
        page.started(r);
      } catch (err) {
        showError('migrate', err);
      }
    })();
  });

  $<HTMLSelectElement>('#mig-select').addEventListener('change', (e) => {
    page.pick((e.target as HTMLSelectElement).value);
  });

  $<HTMLButtonElement>('#cancel').addEventListener('click', () => {
    clearError('live');
    const id = page.selected();
    if (!id) return;
    api
      .cancel(id)
      .then((r) => page.cancelled(r))
      .catch((err: unknown) => showError('live', err));
  });
}
