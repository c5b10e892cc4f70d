import { describe, expect, it } from 'vitest';
import type { MigrationReport } from '../migration/index.js';
import { followFirst } from './scenario.js';

const report = (status: MigrationReport['status']) => ({ id: 'm1', status }) as MigrationReport;

describe("runScenario's progress: 'first'", () => {
  it('gives onProgress the first report only, then waits for the end in one request (no polling)', async () => {
    const calls: string[] = [];
    const agent = {
      migration: async () => {
        calls.push('migration');
        return report('active');
      },
      waitMigration: async () => {
        calls.push('wait');
        return report('completed');
      },
    };
    const seen: string[] = [];
    const r = await followFirst(agent, 'm1', (x) => seen.push(x.status));
    expect(r.status).toBe('completed');
    expect(seen).toEqual(['active']);
    expect(calls).toEqual(['migration', 'wait']);
  });

  it('a migration already ended answers from the first report, without waiting', async () => {
    const calls: string[] = [];
    const agent = {
      migration: async () => {
        calls.push('migration');
        return report('failed');
      },
      waitMigration: async () => {
        calls.push('wait');
        return report('failed');
      },
    };
    expect((await followFirst(agent, 'm1')).status).toBe('failed');
    expect(calls).toEqual(['migration']);
  });
});
