/**
 * The order test files start in: the longest first, so that the two workers of a 2-core machine finish together
 * instead of one running a long file alone at the end. Vitest orders by the durations it cached from an earlier run;
 * a clean clone (CI) has none, and vitest then starts the largest files first, which are not the slowest. So files
 * without a cached duration take the one below, measured on a loaded 2-core machine (seconds, rounded; only the
 * order matters: a file missing here starts among the short ones, in vitest's order).
 */
import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

const SECONDS: Record<string, number> = {
  'test/cluster.test.ts': 99,
  'test/power.test.ts': 55,
  'test/faults.test.ts': 50,
  'test/cluster-netns.test.ts': 50,
  'test/model-qemu.test.ts': 46,
  'test/qemu.test.ts': 45,
  'src/experiments/mechanisms.test.ts': 45,
  'test/cluster-checks.test.ts': 39,
  'test/migration.test.ts': 38,
  'test/tour.test.ts': 30,
  'test/netns.test.ts': 27,
  'test/failures.test.ts': 25,
  'test/cli.test.ts': 22,
  'test/dashboard-cluster.test.ts': 22,
  'test/multifd.test.ts': 20,
  'test/engines.test.ts': 18,
  'test/qemu-snapshot.test.ts': 17,
  'test/snapshot.test.ts': 16,
  'test/cli-tls.test.ts': 14,
  'src/migration/multifd/multifd.test.ts': 13,
  'test/door.test.ts': 13,
  'test/trace.test.ts': 13,
  'test/preempt.test.ts': 12,
  'src/migration/scripted-source.test.ts': 11,
  'src/experiments/runner.test.ts': 10,
  'test/dirty-limit.test.ts': 10,
  'test/stop.test.ts': 10,
  'src/guest/determinism.test.ts': 9,
  'test/recovery.test.ts': 9,
  'src/codec/xbzrle.test.ts': 9,
  'test/tls.test.ts': 8,
  'test/dashboard.test.ts': 8,
  'src/codec/rle.test.ts': 8,
};

export class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const root = this.ctx.config.root;
    const seconds = (f: TestSpecification): number => {
      const rel = relative(root, f.moduleId).split('\\').join('/');
      const cached = this.ctx.cache.getFileTestResults(`${f.project.name}:${rel}`);
      if (cached) return cached.failed ? Number.POSITIVE_INFINITY : cached.duration / 1000;
      return SECONDS[rel] ?? 0;
    };
    // Files that failed last time first, as vitest does; a stable sort keeps vitest's order (larger files first)
    // among equals.
    return sorted
      .map((f) => ({ f, s: seconds(f) }))
      .sort((a, b) => b.s - a.s)
      .map(({ f }) => f);
  }
}
