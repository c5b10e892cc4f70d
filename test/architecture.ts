/**
 * The import graph of src/ between folders: every import, `export … from` and `import()` of every .ts file
 * (type-only ones too: a cycle of types is still a cycle), mapped to the top-level folder under src/ (a file at the
 * root of src/, such as errors.ts, is a node of its own). test/architecture.test.ts fails on a cycle;
 * `node --import tsx test/architecture.ts` prints the graph as Mermaid for docs/architecture.md.
 *
 * The statements are found by regular expressions on Biome-formatted code (each statement starts a line), so
 * that a word "import" in a comment or a string does not count; the test checks the parser against known imports.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const SRC = join(ROOT, 'src');

/** An import of one file by another, both relative to src/ with '/' separators. */
export interface FileEdge {
  from: string;
  to: string;
  specifier: string;
}

/** Every .ts file under `dir`, recursively. */
export function tsFiles(dir: string = SRC): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...tsFiles(path));
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out.sort();
}

/**
 * Module specifiers of one file's static imports and re-exports (`import … from`, `import type … from`,
 * `export … from`, `export * from`, `import 'x'`) and dynamic imports (`import('x')`, `typeof import('x')`).
 */
export function importSpecifiers(code: string): string[] {
  const out: string[] = [];
  // A statement starts a line (Biome's format); its clause is names, braces, `* as x`, `type`: no quotes or ';'.
  const statement = /^\s*(?:import|export)\s+(?:type\s+)?[\w\s{},*$]*?\bfrom\s*['"]([^'"\n]+)['"]/gm;
  for (const m of code.matchAll(statement)) out.push(m[1]!);
  for (const m of code.matchAll(/^\s*import\s*['"]([^'"\n]+)['"]/gm)) out.push(m[1]!);
  // Dynamic imports anywhere but in comment lines.
  for (const line of code.split('\n')) {
    if (/^\s*(?:\/\/|\/\*|\*)/.test(line)) continue;
    for (const m of line.matchAll(/\bimport\(\s*['"]([^'"\n]+)['"]\s*\)/g)) out.push(m[1]!);
  }
  return out;
}

/** src/-relative path of the file a relative specifier names (`./x.js` → `dir/x.ts`), or null if not in src/. */
function resolveSpecifier(fromFile: string, specifier: string): string | null {
  if (!specifier.startsWith('.')) return null;
  const target = resolve(dirname(fromFile), specifier.replace(/\.js$/, '.ts'));
  const rel = relative(SRC, target);
  if (rel.startsWith('..')) return null;
  return rel.split(sep).join('/');
}

/** Every import between two files of src/. */
export function fileEdges(files: string[] = tsFiles()): FileEdge[] {
  const edges: FileEdge[] = [];
  for (const file of files) {
    const from = relative(SRC, file).split(sep).join('/');
    for (const specifier of importSpecifiers(readFileSync(file, 'utf8'))) {
      const to = resolveSpecifier(file, specifier);
      if (to !== null) edges.push({ from, to, specifier });
    }
  }
  return edges;
}

/**
 * The node of a file: its top-level folder under src/, or the file itself when it sits at the root of src/ (its
 * test, `x.test.ts`, counts as `x.ts`).
 */
export function nodeOf(file: string): string {
  const slash = file.indexOf('/');
  return slash === -1 ? file.replace(/\.test\.ts$/, '.ts') : file.slice(0, slash);
}

/** Folder → the folders it imports (itself excluded), each with the file imports that make the edge. */
export function folderGraph(edges: FileEdge[] = fileEdges()): Map<string, Map<string, FileEdge[]>> {
  const graph = new Map<string, Map<string, FileEdge[]>>();
  for (const e of edges) {
    const a = nodeOf(e.from);
    const b = nodeOf(e.to);
    if (!graph.has(a)) graph.set(a, new Map());
    if (!graph.has(b)) graph.set(b, new Map());
    if (a === b) continue;
    const targets = graph.get(a)!;
    targets.set(b, [...(targets.get(b) ?? []), e]);
  }
  return graph;
}

/**
 * Strongly connected components of more than one node (Tarjan's algorithm): each is a set of folders that import
 * each other, directly or through others. Members sorted, components sorted by their first member.
 */
export function cycles(graph: Map<string, Map<string, unknown>>): string[][] {
  let index = 0;
  const indices = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    indices.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)?.keys() ?? []) {
      if (!indices.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, indices.get(w)!));
      }
    }
    if (low.get(v) === indices.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) out.push(component.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!indices.has(v)) visit(v);
  return out.sort((a, b) => a[0]!.localeCompare(b[0]!));
}

/** The edges between the members of one component, as "a → b (file → file, …)" lines. */
export function describeCycle(graph: Map<string, Map<string, FileEdge[]>>, members: string[]): string[] {
  const lines: string[] = [];
  for (const a of members) {
    for (const [b, edges] of graph.get(a) ?? []) {
      if (!members.includes(b)) continue;
      const files = [...new Set(edges.map((e) => `${e.from} → ${e.to}`))];
      lines.push(`${a} → ${b}: ${files.join(', ')}`);
    }
  }
  return lines;
}

/**
 * The folder graph as a Mermaid flowchart, an arrow from each folder to each folder it may import, with the
 * transitive arrows left out (if a → b → c, a → c is implied) so that the picture stays readable.
 */
export function mermaid(graph: Map<string, Map<string, unknown>>): string {
  const nodes = [...graph.keys()].sort();
  const reachable = (start: string, avoidDirect: string): Set<string> => {
    // Nodes reachable from `start` without taking the direct edge start → avoidDirect.
    const seen = new Set<string>();
    const todo = [...(graph.get(start)?.keys() ?? [])].filter((n) => n !== avoidDirect);
    while (todo.length > 0) {
      const n = todo.pop()!;
      if (seen.has(n)) continue;
      seen.add(n);
      todo.push(...(graph.get(n)?.keys() ?? []));
    }
    return seen;
  };
  const id = (n: string): string => n.replace(/\W/g, '_');
  const lines = ['flowchart TD'];
  for (const n of nodes) lines.push(`  ${id(n)}[${n.endsWith('.ts') ? n : `${n}/`}]`);
  for (const a of nodes) {
    for (const b of [...(graph.get(a)?.keys() ?? [])].sort()) {
      if (!reachable(a, b).has(b)) lines.push(`  ${id(a)} --> ${id(b)}`);
    }
  }
  return lines.join('\n');
}

/**
 * Layers, lowest first: a node's layer is the length of the longest import path from it down to a node that imports
 * nothing of src/ (the members of a cycle share one layer). Importing only into lower layers can never make a cycle.
 */
export function layers(graph: Map<string, Map<string, unknown>>): string[][] {
  const component = new Map<string, string>();
  for (const c of cycles(graph)) for (const m of c) component.set(m, c[0]!);
  const rep = (n: string): string => component.get(n) ?? n;
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const depthOf = (n: string): number => {
    const r = rep(n);
    const known = depth.get(r);
    if (known !== undefined) return known;
    visiting.add(r);
    let d = 0;
    const members = [...graph.keys()].filter((k) => rep(k) === r);
    for (const m of members) {
      for (const t of graph.get(m)?.keys() ?? []) {
        if (rep(t) === r || visiting.has(rep(t))) continue;
        d = Math.max(d, depthOf(t) + 1);
      }
    }
    visiting.delete(r);
    depth.set(r, d);
    return d;
  };
  const out: string[][] = [];
  for (const n of [...graph.keys()].sort()) {
    const d = depthOf(n);
    while (out.length <= d) out.push([]);
    out[d]!.push(n);
  }
  return out;
}

/** A node as docs/architecture.md names it: `folder/` or `file.ts`. */
const label = (n: string): string => (n.endsWith('.ts') ? n : `${n}/`);

/** The Markdown that docs/architecture.md holds between its graph markers, generated from the real graph. */
export function graphSection(graph: Map<string, Map<string, unknown>>): string {
  const lines = [
    '```mermaid',
    mermaid(graph),
    '```',
    '',
    '| layer | folders and root files | import (directly) |',
    '| ----- | ---------------------- | ----------------- |',
  ];
  const ls = layers(graph);
  for (let d = ls.length - 1; d >= 0; d--) {
    for (const n of ls[d]!) {
      const targets = [...(graph.get(n)?.keys() ?? [])].sort().map(label);
      lines.push(`| ${d} | \`${label(n)}\` | ${targets.map((t) => `\`${t}\``).join(', ') || '—'} |`);
    }
  }
  return lines.join('\n');
}

export const GRAPH_BEGIN =
  '<!-- graph: generated by `node --import tsx test/architecture.ts --write`, do not edit -->';
export const GRAPH_END = '<!-- graph: end -->';

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const graph = folderGraph();
  const section = `${GRAPH_BEGIN}\n${graphSection(graph)}\n${GRAPH_END}`;
  if (process.argv.includes('--write')) {
    const doc = join(ROOT, 'docs', 'architecture.md');
    const text = readFileSync(doc, 'utf8');
    const a = text.indexOf(GRAPH_BEGIN);
    const b = text.indexOf(GRAPH_END);
    if (a === -1 || b === -1) throw new Error(`${doc}: graph markers not found`);
    writeFileSync(doc, text.slice(0, a) + section + text.slice(b + GRAPH_END.length));
    console.log(`wrote the graph into ${relative(ROOT, doc)}`);
  } else {
    console.log(section);
  }
  for (const c of cycles(graph)) {
    console.log(`\ncycle: ${c.join(', ')}`);
    for (const line of describeCycle(graph, c)) console.log(`  ${line}`);
  }
}
