/**
 * `livemig guest snapshot`, `livemig guest restore` and `livemig guest cold-migrate` (docs/snapshot.md): snapshots
 * to files in an agent's --snapshot-dir, restores from them, and a cold migration through such a file.
 */
import type { Command } from 'commander';
import type { AgentClient } from '../agent/index.js';
import { MigrationError } from '../errors.js';
import { safeText } from '../log-safe.js';
import { formatBytes } from '../units.js';
import { addTlsFlags, agentClient, type TlsFlagValues } from './flags.js';
import { intFlag } from './values.js';

async function withClient<T>(
  address: string,
  flag: string,
  o: TlsFlagValues,
  fn: (c: AgentClient) => Promise<T>,
): Promise<T> {
  const c = agentClient(address, flag, o);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

const ms = (v: number) => `${v < 10 ? v.toFixed(1) : Math.round(v)} ms`;
const rate = (v: number | null) => (v === null ? '-' : `${Math.round(v).toLocaleString('en-US')} steps/s`);

export function registerSnapshot(guest: Command): void {
  const snapshot = guest
    .command('snapshot')
    .description(
      "Write a guest's RAM and vCPU state to a file in the agent's --snapshot-dir while it keeps running " +
        '(write-protect semantics: the file is the guest at the instant the snapshot starts)',
    )
    .requiredOption('--agent <host:port>', 'the agent hosting the guest')
    .requiredOption('--guest <id>', 'the guest')
    .requiredOption('--to <file>', "file name in the agent's --snapshot-dir (must not exist)")
    .option(
      '--baseline <ms>',
      "measure the guest's steps/s for this long first (the slowdown's baseline)",
      '250',
    )
    .option('--json', 'print the result as JSON');
  addTlsFlags(snapshot);
  snapshot.action(
    async (
      o: TlsFlagValues & { agent: string; guest: string; to: string; baseline: string; json?: boolean },
    ) => {
      const baselineMs = intFlag(o.baseline, '--baseline', 0, 10_000);
      const r = await withClient(o.agent, '--agent', o, (c) => c.snapshot(o.guest, o.to, { baselineMs }));
      if (o.json) {
        process.stdout.write(`${JSON.stringify(r)}\n`);
        return;
      }
      process.stdout.write(
        `snapshot of ${safeText(o.guest, 80)} written to ${safeText(r.file, 200)}: ${formatBytes(r.fileBytes)} ` +
          `(${formatBytes(r.diskBytes)} on disk), ${r.pages} pages, ${r.zeroPages} zero, ${r.copiedPages} saved from ` +
          'pre-write copies\n' +
          `  snapshot time ${ms(r.snapshotMs)} (guest paused ${ms(r.pauseMs)}); vCPU steps ${r.steps.join('/')}\n` +
          (r.live
            ? `  guest ${rate(r.stepsPerSecBefore)} before, ${rate(r.stepsPerSecDuring)} during` +
              (r.slowdown === null ? '\n' : ` (slowdown ${Math.round(r.slowdown * 100)}%)\n`)
            : '  the guest was paused throughout (cold snapshot)\n'),
      );
    },
  );

  const restore = guest
    .command('restore')
    .description("Start a guest from a snapshot file in the agent's --snapshot-dir")
    .argument('<file>', "file name in the agent's --snapshot-dir")
    .requiredOption('--agent <host:port>', 'the agent to start it on')
    .option('--id <name>', 'guest name (default: g1, g2, ...)')
    .option('--paused', 'leave it paused at the snapshot instant')
    .option('--json', 'print the result as JSON');
  addTlsFlags(restore);
  restore.action(
    async (
      file: string,
      o: TlsFlagValues & { agent: string; id?: string; paused?: boolean; json?: boolean },
    ) => {
      const r = await withClient(o.agent, '--agent', o, (c) =>
        c.restore(file, { ...(o.id ? { id: o.id } : {}), run: !o.paused }),
      );
      if (o.json) {
        process.stdout.write(`${JSON.stringify(r)}\n`);
        return;
      }
      process.stdout.write(
        `restored guest ${safeText(r.guest.id, 80)} from ${safeText(file, 200)} on ${o.agent}: ${r.pagesRead} pages ` +
          `read, ${o.paused ? 'ready' : 'first instruction'} after ${ms(r.restoreMs)} (vCPU steps ${r.steps.join('/')})\n`,
      );
    },
  );

  const cold = guest
    .command('cold-migrate')
    .description(
      'Cold migration through a file: pause the guest, snapshot it, restore it on the destination (whose ' +
        '--snapshot-dir must hold the same file: the same folder, or shared storage), check the copy byte for ' +
        'byte against the source, and only then stop the source',
    )
    .requiredOption('--from <host:port>', 'the source agent')
    .requiredOption('--guest <id>', 'the guest')
    .requiredOption('--to <host:port>', 'the destination agent')
    .requiredOption('--via-file <file>', 'snapshot file name (in both agents’ --snapshot-dir)')
    .option('--json', 'print the result as JSON');
  addTlsFlags(cold);
  cold.action(
    async (
      o: TlsFlagValues & { from: string; guest: string; to: string; viaFile: string; json?: boolean },
    ) => {
      const result = await withClient(o.from, '--from', o, (src) =>
        withClient(o.to, '--to', o, (dst) => coldMigrate(src, dst, o.guest, o.viaFile)),
      );
      process.stdout.write(
        o.json
          ? `${JSON.stringify(result)}\n`
          : `guest ${safeText(o.guest, 80)} moved to ${o.to} through ${safeText(o.viaFile, 200)}: downtime ` +
              `${ms(result.downtimeMs)} (snapshot ${ms(result.snapshotMs)}, restore ${ms(result.restoreMs)}, check ` +
              `${ms(result.verifyMs)}); ${formatBytes(result.fileBytes)} file; source stopped\n`,
      );
    },
  );
}

export interface ColdMigration {
  guest: string;
  file: string;
  fileBytes: number;
  snapshotMs: number;
  restoreMs: number;
  verifyMs: number;
  /** From the pause on the source to the guest running on the destination, ms. */
  downtimeMs: number;
  steps: number[];
}

/**
 * Pause, snapshot, restore paused, verify (vCPU state and every RAM byte against the paused source), then resume on
 * the destination and stop the source. Any failure before the source is stopped removes the destination's copy
 * and resumes the source (if it was running): the guest is never lost and never runs twice.
 */
export async function coldMigrate(
  src: AgentClient,
  dst: AgentClient,
  id: string,
  file: string,
): Promise<ColdMigration> {
  const info = await src.guest(id);
  const wasRunning = info.status === 'running';
  const t0 = performance.now();
  await src.pause(id);
  let restored = false;
  let moved = false;
  try {
    const snap = await src.snapshot(id, file);
    const r0 = performance.now();
    const rest = await dst.restore(file, { id, run: false });
    restored = true;
    const restoreMs = performance.now() - r0;
    const v0 = performance.now();
    const [a, b] = [await src.state(id), await dst.state(id)];
    if (JSON.stringify(a.vcpus) !== JSON.stringify(b.vcpus))
      throw new MigrationError('DIGEST_MISMATCH', `cold migration of ${id}: the restored vCPU state differs`);
    const [ra, rb] = [await src.ram(id), await dst.ram(id)];
    if (!Buffer.from(ra).equals(Buffer.from(rb)))
      throw new MigrationError('DIGEST_MISMATCH', `cold migration of ${id}: the restored RAM differs`);
    const verifyMs = performance.now() - v0;
    if (wasRunning) await dst.resume(id);
    moved = true;
    const downtimeMs = performance.now() - t0;
    await src.stopGuest(id);
    return {
      guest: id,
      file,
      fileBytes: snap.fileBytes,
      snapshotMs: snap.snapshotMs,
      restoreMs,
      verifyMs,
      downtimeMs,
      steps: rest.steps,
    };
  } catch (err) {
    if (moved) {
      throw new MigrationError(
        'INTERNAL',
        `cold migration of ${id}: it runs on the destination now, but stopping the paused copy on the source ` +
          `failed (${err instanceof Error ? err.message : String(err)}): stop it with \`livemig guest stop\``,
      );
    }
    if (restored) await dst.stopGuest(id).catch(() => undefined);
    if (wasRunning) await src.resume(id).catch(() => undefined);
    throw err;
  }
}
