/**
 * docs/architecture.md stays a map a newcomer can trust: it names every file of the folders it describes file by
 * file, and it draws the path of one page as a sequence diagram through the parts the README names. (README.md's
 * Layout naming every folder of src/ is checked in test/architecture.test.ts.)
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './markdown.js';

const doc = readFileSync(join(ROOT, 'docs', 'architecture.md'), 'utf8');
const FOLDERS = ['migration/source', 'migration/protocol', 'agent', 'sim/engine'];

describe('docs/architecture.md', () => {
  it('names every file of the folders it describes file by file', () => {
    const files = FOLDERS.flatMap((folder) =>
      readdirSync(join(ROOT, 'src', folder))
        .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.endsWith('.d.ts'))
        .map((f) => `${folder}/${f}`),
    );
    expect(files.length).toBeGreaterThan(40);
    const missing = files.filter((f) => !doc.includes(`\`${f}\``));
    expect(missing, 'files missing from docs/architecture.md "Inside the larger folders"').toEqual([]);
  });

  it('draws the path of one page through every part, as a Mermaid sequence diagram', () => {
    const diagram = /```mermaid\nsequenceDiagram\n([\s\S]*?)```/.exec(doc)?.[1] ?? '';
    for (const part of [
      'guest/vcpu-worker.ts',
      'guest/dirty-log.ts',
      'migration/source/',
      'codec/',
      'migration/protocol/pages.ts',
      'migration/connection.ts',
      'migration/destination.ts',
      'migration/page-sink-worker.ts',
    ]) {
      expect(diagram, part).toMatch(new RegExp(`participant \\w+ as [^\\n]*${part.replace(/[.]/g, '\\.')}`));
    }
  });
});
