/**
 * Snapshots on the agent (docs/snapshot.md): `POST /v1/guests/:id/snapshot` writes a guest (running or paused) to
 * a file, `POST /v1/snapshots/restore` starts a guest from one. Files live in the agent's own `--snapshot-dir`,
 * named by a plain file name (or a path whose folder is that directory): an API caller can neither write nor read
 * anywhere else, nor through a symbolic link. Without --snapshot-dir both are refused. A restore is admitted
 * like a start (--max-ram, --max-ram-total, --max-vcpus) before any guest memory is allocated.
 */
import { realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { MigrationError, UsageError } from '../errors.js';
import { restoreSnapshot, type SnapshotResult, writeSnapshot } from '../snapshot/index.js';
import type { ResourceBudget } from './admission.js';
import type { GuestInfo, GuestRegistry } from './guests.js';
import { HttpError } from './http.js';

const NAME = /^[\w][\w.-]{0,127}$/;

/** The file `given` names in `dir`: a bare name, or an absolute path whose folder is `dir` itself. */
export function snapshotFile(dir: string | undefined, given: string): string {
  if (dir === undefined) {
    throw new HttpError(
      403,
      'this agent keeps no snapshots: start it with --snapshot-dir DIR to allow snapshots to files in DIR',
      'FORBIDDEN',
    );
  }
  const root = realpathSync(dir);
  const name = basename(given);
  const folder = isAbsolute(given) ? dirname(resolve(given)) : dirname(given) === '.' ? root : '';
  let same = folder === root;
  if (!same && folder !== '') {
    try {
      same = realpathSync(folder) === root;
    } catch {
      same = false;
    }
  }
  if (!same || !NAME.test(name)) {
    throw new UsageError(
      `snapshot file "${given}": name a file directly in this agent's --snapshot-dir (${root}): letters, digits, ` +
        '".", "_" or "-", not starting with "." or "-"',
      'file',
    );
  }
  return resolve(root, name);
}

const snapshotRequestSchema = z.strictObject({
  file: z.string().min(1).max(4096),
  /** How long to measure the guest's step rate before the snapshot (the slowdown's baseline), ms. */
  baselineMs: z.number().int().min(0).max(10_000).optional(),
});
const restoreRequestSchema = z.strictObject({
  file: z.string().min(1).max(4096),
  id: z
    .string()
    .regex(/^[\w.-]{1,64}$/, 'letters, digits, ".", "_" or "-", at most 64')
    .optional(),
  run: z.boolean().optional(),
});

function parse<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  const r = schema.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const path = issue.path.join('.');
    throw new UsageError(`${what}: ${path || 'body'}: ${issue.message}`, path);
  }
  return r.data;
}

export interface RestoreAnswer {
  guest: GuestInfo;
  /** From the request to the guest's first instruction (or to ready, paused), ms. */
  restoreMs: number;
  pagesRead: number;
  fileBytes: number;
  /** vCPU steps the restored guest starts from (the snapshot's instant). */
  steps: number[];
}

export class AgentSnapshots {
  constructor(
    private readonly o: {
      dir: string | undefined;
      guests: GuestRegistry;
      resources: () => ResourceBudget;
      log: (line: string) => void;
    },
  ) {}

  async snapshot(id: string, body: unknown): Promise<SnapshotResult> {
    const { file, baselineMs = 250 } = parse(snapshotRequestSchema, body, 'snapshot request');
    const path = snapshotFile(this.o.dir, file);
    const h = this.o.guests.hosted(id);
    this.o.guests.notMigrating(h);
    h.snapshot = basename(path);
    try {
      const result = await writeSnapshot(h.guest, path, { baselineMs: h.guest.running ? baselineMs : 0 });
      this.o.log(
        `guest ${id}: snapshot ${basename(path)} written (${result.fileBytes} bytes, ${Math.round(result.snapshotMs)} ms)`,
      );
      return { ...result, file: basename(path) };
    } finally {
      h.snapshot = undefined;
    }
  }

  async restore(body: unknown): Promise<RestoreAnswer> {
    const t0 = performance.now();
    const req = parse(restoreRequestSchema, body, 'restore request');
    const path = snapshotFile(this.o.dir, req.file);
    const id = req.id ?? this.o.guests.nextId();
    if (this.o.guests.has(id))
      throw new MigrationError('GUEST_BUSY', `a guest named ${id} already exists here`);
    let release: (() => void) | undefined;
    const r = await restoreSnapshot(path, {
      run: false,
      admit: (config) => {
        const reservation = this.o
          .resources()
          .reserve({ ramBytes: config.ramBytes, vcpus: config.vcpus }, 'this snapshot holds');
        release = () => reservation.release();
        return release;
      },
    });
    try {
      // The id may have been taken while the pages were read.
      if (this.o.guests.has(id)) {
        await r.guest.destroy();
        throw new MigrationError('GUEST_BUSY', `a guest named ${id} already exists here`);
      }
      this.o.guests.addRestored(id, r.guest);
    } finally {
      release?.(); // hosted (counted as such) now, or destroyed
    }
    if (req.run ?? true) r.guest.resume();
    const restoreMs = performance.now() - t0; // to the first instruction (or to ready, paused)
    this.o.log(`guest ${id} restored from snapshot ${basename(path)} (${Math.round(restoreMs)} ms)`);
    return {
      guest: this.o.guests.guestInfo(id),
      restoreMs,
      pagesRead: r.pagesRead,
      fileBytes: r.header.layout.fileBytes,
      steps: r.header.guest.vcpus.map((v) => v.step),
    };
  }
}
