/**
 * A typed client of the agent's control API, used by the CLI, the tests and anyone scripting livemig.
 * Errors from the agent come back as MigrationError / UsageError with the agent's code and message.
 */
import { MigrationError, type MigrationErrorCode, UsageError } from '../errors.js';
import type { GuestConfig, GuestState } from '../guest/index.js';
import type { MigrationOptions, Preset } from '../migration/options.js';
import type { MigrationReport } from '../migration/stats.js';
import type { GuestInfo } from './agent.js';

export class AgentClient {
  readonly base: string;
  constructor(address: string) {
    this.base = (/^https?:\/\//.test(address) ? address : `http://${address}`).replace(/\/$/, '');
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new MigrationError(
        'CONNECTION_REFUSED',
        `cannot reach the agent at ${this.base}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}. Is \`livemig agent\` running there?`,
      );
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      throw new MigrationError('PROTOCOL', `the agent at ${this.base} answered ${res.status} with non-JSON`);
    }
    if (!res.ok) {
      const e = (json as { error?: { code?: string; message?: string; flag?: string } })?.error ?? {};
      if (e.code === 'BAD_ARGUMENT') throw new UsageError(e.message ?? 'bad argument', e.flag);
      throw new MigrationError(
        (e.code ?? 'INTERNAL') as MigrationErrorCode,
        e.message ?? `HTTP ${res.status}`,
      );
    }
    return json as T;
  }

  status(): Promise<{ address: string; version: string; guests: GuestInfo[] }> {
    return this.call('GET', '/v1/status');
  }
  startGuest(config: GuestConfig, id?: string, run = true): Promise<GuestInfo> {
    return this.call('POST', '/v1/guests', { config, id, run });
  }
  guests(): Promise<GuestInfo[]> {
    return this.call('GET', '/v1/guests');
  }
  guest(id: string): Promise<GuestInfo> {
    return this.call('GET', `/v1/guests/${encodeURIComponent(id)}`);
  }
  pause(id: string): Promise<GuestInfo> {
    return this.call('POST', `/v1/guests/${encodeURIComponent(id)}/pause`);
  }
  resume(id: string): Promise<GuestInfo> {
    return this.call('POST', `/v1/guests/${encodeURIComponent(id)}/resume`);
  }
  throttle(id: string, t: { cap?: number; frequency?: number }): Promise<GuestInfo> {
    return this.call('POST', `/v1/guests/${encodeURIComponent(id)}/throttle`, t);
  }
  stopGuest(id: string): Promise<unknown> {
    return this.call('DELETE', `/v1/guests/${encodeURIComponent(id)}`);
  }
  state(id: string): Promise<GuestState> {
    return this.call('GET', `/v1/guests/${encodeURIComponent(id)}/state`);
  }
  async ram(id: string): Promise<Uint8Array> {
    const res = await fetch(`${this.base}/v1/guests/${encodeURIComponent(id)}/ram`);
    if (!res.ok) {
      const e = ((await res.json()) as { error?: { code?: string; message?: string } }).error ?? {};
      throw new MigrationError(
        (e.code ?? 'INTERNAL') as MigrationErrorCode,
        e.message ?? `HTTP ${res.status}`,
      );
    }
    return new Uint8Array(await res.arrayBuffer());
  }
  migrate(
    guest: string,
    destination: string,
    options: Partial<MigrationOptions> = {},
    preset?: Preset,
  ): Promise<MigrationReport> {
    return this.call('POST', '/v1/migrations', { guest, destination, options, preset });
  }
  migration(id: string): Promise<MigrationReport> {
    return this.call('GET', `/v1/migrations/${id}`);
  }
  waitMigration(id: string): Promise<MigrationReport> {
    return this.call('GET', `/v1/migrations/${id}?wait=1`);
  }
  cancel(id: string): Promise<MigrationReport> {
    return this.call('POST', `/v1/migrations/${id}/cancel`);
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
      if (r.status === 'completed' || r.status === 'failed' || r.status === 'cancelled') return r;
      await new Promise((res) => setTimeout(res, intervalMs));
    }
  }
}
