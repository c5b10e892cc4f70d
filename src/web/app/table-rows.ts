/** Table rows and select options updated in place, keyed, so a focused control keeps its focus (main.ts). */
import { el } from './dom.js';

/** Keyed rows: existing rows get new text, so a focused button inside them keeps its focus. */
export function syncRows<T>(
  tbody: HTMLTableSectionElement,
  items: T[],
  key: (x: T) => string,
  create: (x: T) => HTMLTableRowElement,
  update: (row: HTMLTableRowElement, x: T) => void,
): void {
  const existing = new Map<string, HTMLTableRowElement>();
  for (const row of [...tbody.rows]) existing.set(row.dataset.key ?? '', row);
  let prev: HTMLTableRowElement | null = null;
  for (const x of items) {
    const k = key(x);
    let row = existing.get(k);
    if (!row) {
      row = create(x);
      row.dataset.key = k;
    }
    existing.delete(k);
    update(row, x);
    const want: ChildNode | null = prev ? prev.nextSibling : tbody.firstChild;
    if (want !== row) tbody.insertBefore(row, want);
    prev = row;
  }
  for (const row of existing.values()) row.remove();
}

export function setCells(row: HTMLTableRowElement, values: string[]): void {
  values.forEach((v, i) => {
    const c = row.cells[i];
    if (c && c.textContent !== v) c.textContent = v;
  });
}

export function syncOptions(select: HTMLSelectElement, options: [string, string][]): void {
  const same =
    select.options.length === options.length &&
    options.every(([v, t], i) => select.options[i]?.value === v && select.options[i]?.text === t);
  if (same) return;
  const value = select.value;
  select.replaceChildren(...options.map(([v, t]) => el('option', { value: v }, t)));
  if (options.some(([v]) => v === value)) select.value = value;
}
