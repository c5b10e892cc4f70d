/** Fenced code blocks of the project's Markdown files, for the tests that type-check and run what the docs show. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface CodeBlock {
  /** Path relative to the repository root, e.g. `docs/agent.md`. */
  file: string;
  /** 1-based line of the block's first code line (the line after the opening fence). */
  line: number;
  /** The info string's first word (`ts`, `sh`, …); empty for a bare fence. */
  lang: string;
  /** The rest of the info string, e.g. `skip-check` in "```ts skip-check". */
  flags: string[];
  code: string;
}

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** README.md and every docs/*.md, relative to the repository root. */
export function markdownFiles(): string[] {
  const docs = readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`);
  return ['README.md', ...docs];
}

/** Every fenced block (``` or ~~~, three or more) of a Markdown text. */
export function codeBlocks(file: string, text: string): CodeBlock[] {
  const out: CodeBlock[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^( {0,3})(`{3,}|~{3,})\s*(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const fence = open[2]!;
    const [lang = '', ...flags] = open[3]!.trim().split(/\s+/).filter(Boolean);
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const close = /^ {0,3}(`{3,}|~{3,})\s*$/.exec(lines[j]!);
      if (close && close[1]![0] === fence[0] && close[1]!.length >= fence.length) break;
      body.push(lines[j]!);
    }
    out.push({ file, line: i + 2, lang, flags, code: body.join('\n') });
    i = j;
  }
  return out;
}

export function readBlocks(file: string): CodeBlock[] {
  return codeBlocks(file, readFileSync(join(ROOT, file), 'utf8'));
}
