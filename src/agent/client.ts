/**
 * A typed client of the agent's control API, used by the CLI, the tests and anyone scripting livemig.
 * Errors from the agent come back as MigrationError / UsageError / HttpError with the agent's code and message
 * (answer-error.ts checks the body and the code).
 */
import { Agent as HttpsAgent } from 'node:https';
import { MigrationError } from '../errors.js';
import type { DirtyLogSync } from '../guest/dirty-log-sync.js';
import type { GuestConfig, GuestState } from '../guest/index.js';
import { nodeRequest } from '../http-request.js';
import type { MigrationOptions, Preset } from '../migration/options.js';
import { type MigrationReport, migrationEnded } from '../migration/stats.js';
import type { PowerSeries } from '../power/index.js';
import type { SnapshotResult } from '../snapshot/index.js';
import type { MigrationSummary } from '../web/index.js';
import type { GuestInfo } from './agent.js';
import { answerError } from './answer-error.js';
import * as answers from './answer-schemas.js';
import { clientApiToken } from './auth.js';
import type { EvacuationReport, EvacuationRequest } from './evacuate.js';
import type { RestoreAnswer } from './snapshots.js';
import { clientTlsOptions, type TlsMaterial, tlsFailure } from './tls.js';

/** `GET /v1/status`: the fields a client reads (the body has more: pid, incoming migrations). */
export interface AgentStatus {
  address: string;
  version: string;
  guests: GuestInfo[];
  outgoing: MigrationSummary[];
}

export class AgentClient {
  readonly base: string;
  private readonly https: HttpsAgent | undefined;
  private readonly token: string | undefined;
  /**
   * With `tls`, speaks HTTPS and presents the certificate (the agent requires it). `token` is sent as
   * `authorization: Bearer` (agents started with --api-token-file require it for commands); without it, the token
   * in the file $LIVEMIG_API_TOKEN_FILE names, if that file exists.
   */
  constructor(address: string, options: { tls?: TlsMaterial; token?: string } = {}) {
    this.token = options.token ?? clientApiToken();
    const scheme = options.tls ? 'https' : 'http';
    this.base = (/^https?:\/\//.test(address) ? address : `${scheme}://${address}`).replace(/\/$/, '');
    if (options.tls) {
      const host = new URL(this.base).hostname.replace(/^\[|\]$/g, '');
      this.https = new HttpsAgent({ ...clientTlsOptions(options.tls, host), keepAlive: false });
    }
  }

  /** One request, on a connection of its own (see nodeRequest); under TLS with the client certificate. */
  private async send(
    method: string,
    path: string,
    body?: string,
  ): Promise<{ status: number; ok: boolean; bytes: Buffer }> {
    try {
      return await nodeRequest(`${this.base}${path}`, {
        method,
        ...(body === undefined ? {} : { body }),
        ...(this.token === undefined ? {} : { token: this.token }),
        ...(this.https ? { https: this.https } : {}),
      });
    } catch (err) {
      const cause = (err as Error).cause instanceof Error ? ((err as Error).cause as Error) : (err as Error);
      const auth = tlsFailure(cause as NodeJS.ErrnoException, `the agent at ${this.base}`);
      if (auth) throw auth;
      throw new MigrationError(
        'CONNECTION_REFUSED',
        `cannot reach the agent at ${this.base}: ${cause.message}. Is \`livemig agent\` running there?`,
      );
    }
  }

  /** Closes the HTTPS agent's connections (so a script can exit promptly). */
  close(): void {
    this.https?.destroy();
  }

  /** One call whose success body is JSON, checked by `check` (answer-schemas.ts) before it is returned. */
  private async call<T>(
    check: answers.AnswerCheck,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<T> {
    const res = await this.send(method, path, body === undefined ? undefined : JSON.stringify(body));
    if (!res.ok) throw answerError(res.status, res.bytes, this.base);
    const text = res.bytes.toString('utf8');
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      throw new MigrationError('PROTOCOL', `the agent at ${this.base} answered ${res.status} with non-JSON`);
    }
    return answers.parseAnswer<T>(check, json, `${method} ${path.replace(/\?.*$/, '')}`, this.base);
  }

  /** The agent, its guests, and its outgoing migrations as summaries (the report of each: `migration(id)`). */
  status(): Promise<AgentStatus> {
    return this.call(answers.statusAnswer, 'GET', '/v1/status');
  }
  startGuest(config: GuestConfig, id?: string, run = true): Promise<GuestInfo> {
    return this.call(answers.guestSchema, 'POST', '/v1/guests', { config, id, run });
  }
  guests(): Promise<GuestInfo[]> {
    return this.call(answers.guestsAnswer, 'GET', '/v1/guests');
  }
  guest(id: string): Promise<GuestInfo> {
    return this.call(answers.guestSchema, 'GET', `/v1/guests/${encodeURIComponent(id)}`);
  }
  pause(id: string): Promise<GuestInfo> {
    return this.call(answers.guestSchema, 'POST', `/v1/guests/${encodeURIComponent(id)}/pause`);
  }
  resume(id: string): Promise<GuestInfo> {
    return this.call(answers.guestSchema, 'POST', `/v1/guests/${encodeURIComponent(id)}/resume`);
  }
  throttle(id: string, t: { cap?: number; frequency?: number }): Promise<GuestInfo> {
    return this.call(answers.guestSchema, 'POST', `/v1/guests/${encodeURIComponent(id)}/throttle`, t);
  }
  stopGuest(id: string): Promise<unknown> {
    return this.call(answers.stoppedAnswer, 'DELETE', `/v1/guests/${encodeURIComponent(id)}`);
  }
  /** Syncs the guest's dirty log and returns the pages written since the last sync (docs/agent.md). */
  dirtyLog(id: string): Promise<DirtyLogSync> {
    return this.call(answers.dirtyLogAnswer, 'POST', `/v1/guests/${encodeURIComponent(id)}/dirty-log`);
  }
  state(id: string): Promise<GuestState> {
    return this.call(answers.stateAnswer, 'GET', `/v1/guests/${encodeURIComponent(id)}/state`);
  }
  async ram(id: string): Promise<Uint8Array> {
    const res = await this.send('GET', `/v1/guests/${encodeURIComponent(id)}/ram`);
    if (!res.ok) throw answerError(res.status, res.bytes, this.base);
    return new Uint8Array(res.bytes.buffer, res.bytes.byteOffset, res.bytes.length);
  }
  /** Writes the guest (left running or paused) to `file` in the agent's --snapshot-dir (docs/snapshot.md). */
  snapshot(id: string, file: string, opts: { baselineMs?: number } = {}): Promise<SnapshotResult> {
    return this.call(answers.snapshotAnswer, 'POST', `/v1/guests/${encodeURIComponent(id)}/snapshot`, {
      file,
      ...opts,
    });
  }
  /** Starts a guest from `file` in the agent's --snapshot-dir; `run: false` leaves it paused at the instant. */
  restore(file: string, opts: { id?: string; run?: boolean } = {}): Promise<RestoreAnswer> {
    return this.call(answers.restoreAnswer, 'POST', '/v1/snapshots/restore', { file, ...opts });
  }
  migrate(
    guest: string,
    destination: string,
    options: Partial<MigrationOptions> = {},
    preset?: Preset,
  ): Promise<MigrationReport> {
    return this.call(answers.reportSchema, 'POST', '/v1/migrations', { guest, destination, options, preset });
  }
  /** The outgoing migrations this agent keeps (--history), as summaries. */
  migrations(): Promise<MigrationSummary[]> {
    return this.call(answers.migrationsAnswer, 'GET', '/v1/migrations');
  }
  /** One migration's full report (rounds, events, energy, …). */
  migration(id: string): Promise<MigrationReport> {
    return this.call(answers.reportSchema, 'GET', `/v1/migrations/${id}`);
  }
  waitMigration(id: string): Promise<MigrationReport> {
    return this.call(answers.reportSchema, 'GET', `/v1/migrations/${id}?wait=1`);
  }
  /** Post-copy recovery: reconnect a paused post-copy now, optionally to a new destination address. */
  resumeMigration(id: string, destination?: string): Promise<MigrationReport> {
    return this.call(
      answers.reportSchema,
      'POST',
      `/v1/migrations/${id}/resume`,
      destination === undefined ? {} : { destination },
    );
  }

  /** A migration that ended OWNER_UNKNOWN: ask the destination again and put the guest where it belongs. */
  reconcile(id: string): Promise<MigrationReport> {
    return this.call(answers.reportSchema, 'POST', `/v1/migrations/${id}/reconcile`);
  }
  /** The destination's record of an incoming migration's guest (resumed, held, in-flight, discarded, unknown). */
  incomingOwner(id: string): Promise<{ migrationId: string; guestId: string; state: string }> {
    return this.call(answers.ownerAnswer, 'GET', `/v1/migrations/incoming/${id}`);
  }
  /** Destination: resume (adopt) or drop (discard) a guest held here whose source is gone for good. */
  settleIncoming(id: string, action: 'adopt' | 'discard'): Promise<{ state: string }> {
    return this.call(answers.ownerAnswer, 'POST', `/v1/migrations/incoming/${id}/${action}`);
  }

  /**
   * The agent's power meter: samples after `since` (epoch ms), each with every hosted guest's CPU ms. `sample`: the
   * agent first closes a sample at the moment it answers, so the series ends then rather than at its last tick.
   */
  power(since = 0, sample = false): Promise<PowerSeries> {
    return this.call(
      answers.powerAnswer,
      'GET',
      `/v1/power?since=${Math.floor(since)}${sample ? '&sample=1' : ''}`,
    );
  }

  /** Moves every guest of this agent to the given destinations; answers when all have moved (evacuate.ts). */
  evacuate(request: Partial<EvacuationRequest> & { to: string[] }): Promise<EvacuationReport> {
    return this.call(answers.evacuationAnswer, 'POST', '/v1/evacuate', request);
  }

  cancel(id: string): Promise<MigrationReport> {
    return this.call(answers.reportSchema, 'POST', `/v1/migrations/${id}/cancel`);
  }

  /** Polls a migration until it ends, calling `onProgress` with each status. */
  async follow(
    id: string,
    onProgress?: (r: MigrationReport) => void,
    intervalMs = 200,
  ): Promise<MigrationReport> {
    for (;;) {
      const r = await this.migration(id);
      onProgress?.(r);
      if (migrationEnded(r.status)) return r;
      await new Promise((res) => setTimeout(res, intervalMs));
    }
  }
}
