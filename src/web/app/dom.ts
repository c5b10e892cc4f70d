/** DOM building and lookup for the pages (main.ts, cluster.ts): plain elements, no framework. */

/** A new `tag` element with these attributes (undefined ones left out) and children. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<Record<string, string>> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) if (v !== undefined) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

/** The element `sel` finds under `root`; a page whose markup lacks it is a bug, said by name. */
export function $<T extends HTMLElement>(sel: string, root: ParentNode = document): T {
  const e = root.querySelector<T>(sel);
  if (!e) throw new Error(`livemig page: missing ${sel} in ${location.pathname}`);
  return e;
}
