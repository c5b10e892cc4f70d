/**
 * The guests this agent hosts (started here or migrated in), by id: creating them within the agent's budget,
 * their status, and the operations of the control API on them. A guest being migrated out refuses those that
 * would change it (GUEST_BUSY).
 */
import { MigrationError, UsageError } from '../errors.js';
import { Guest, type GuestConfig } from '../guest/index.js';
import { guestMemoryBytes, type ResourceBudget } from './admission.js';

export type GuestStatus = 'running' | 'paused' | 'migrating' | 'incoming';

export interface HostedGuest {
  id: string;
  guest: Guest;
  createdAt: string;
  origin: 'started' | 'migrated-in' | 'restored';
  migrating?: string;
  /** A snapshot being written (its file name): the guest is neither migrated nor paused, resumed or stopped. */
  snapshot?: string;
}

export interface GuestInfo {
  id: string;
  status: GuestStatus;
  origin: 'started' | 'migrated-in' | 'restored';
  createdAt: string;
  config: GuestConfig;
  steps: number[];
  /** Scheduled time of all vCPUs so far, ms, by the vCPUs' own clock (what CAP budgets; not the kernel's CPU time). */
  busyMs: number;
  cap: number;
  frequency: number;
  dirtyPages: number;
  migration?: string;
}

export interface GuestRegistryOptions {
  maxRamBytes: number;
  /** Reserves room for a guest being created (the agent's ResourceBudget). */
  resources: () => ResourceBudget;
  /** A guest was added, removed or changed (live events). */
  changed: () => void;
  log: (line: string) => void;
}

export class GuestRegistry {
  private readonly map = new Map<string, HostedGuest>();
  private nextGuest = 1;

  constructor(private readonly o: GuestRegistryOptions) {}

  has(id: string): boolean {
    return this.map.has(id);
  }

  get(id: string): HostedGuest | undefined {
    return this.map.get(id);
  }

  values(): IterableIterator<HostedGuest> {
    return this.map.values();
  }

  /** A guest that arrived by migration (its memory already counted by the migration's reservation until now). */
  addMigratedIn(id: string, guest: Guest): void {
    this.map.set(id, { id, guest, createdAt: new Date().toISOString(), origin: 'migrated-in' });
  }

  /** A guest restored from a snapshot (its memory counted by the restore's reservation until now). */
  addRestored(id: string, guest: Guest): void {
    this.map.set(id, { id, guest, createdAt: new Date().toISOString(), origin: 'restored' });
    this.o.changed();
  }

  /** The next free default name (g1, g2, ...). */
  nextId(): string {
    let id = `g${this.nextGuest++}`;
    while (this.map.has(id)) id = `g${this.nextGuest++}`;
    return id;
  }

  /** Forgets a guest (migrated away, or reconciled to the destination) without destroying it. */
  delete(id: string): void {
    this.map.delete(id);
  }

  /** RAM and vCPU threads of the hosted guests (ResourceBudget's "in use"). */
  inUse(): { ramBytes: number; vcpus: number } {
    let ramBytes = 0;
    let vcpus = 0;
    for (const g of this.map.values()) {
      ramBytes += guestMemoryBytes(g.guest.ram.bytes, g.guest.config.vcpus, g.guest.trace?.length);
      vcpus += g.guest.config.vcpus;
    }
    return { ramBytes, vcpus };
  }

  /** Destroys every guest (agent shutdown). */
  async destroyAll(): Promise<void> {
    for (const g of this.map.values()) await g.guest.destroy();
    this.map.clear();
  }

  async startGuest(config: GuestConfig, id?: string, run = true): Promise<GuestInfo> {
    if (config.ramBytes > this.o.maxRamBytes) {
      throw new UsageError(
        `guest of ${config.ramBytes} bytes exceeds this agent's --max-ram (${this.o.maxRamBytes})`,
      );
    }
    const gid = id ?? `g${this.nextGuest++}`;
    if (this.map.has(gid)) throw new MigrationError('GUEST_BUSY', `a guest named ${gid} already exists here`);
    const vcpus = config.vcpus ?? 1;
    // (A config whose sizes are not integers is refused by Guest.create, with the field named.)
    const reservation =
      Number.isSafeInteger(config.ramBytes) && Number.isSafeInteger(vcpus)
        ? this.o.resources().reserve({ ramBytes: config.ramBytes, vcpus }, 'this request asks for')
        : undefined;
    let guest: Guest;
    try {
      guest = await Guest.create(config);
    } finally {
      reservation?.release(); // hosted (counted as such) below, or never created
    }
    this.map.set(gid, { id: gid, guest, createdAt: new Date().toISOString(), origin: 'started' });
    if (run) guest.resume();
    this.o.changed();
    this.o.log(`guest ${gid} started (${config.workload.name}, ${config.ramBytes} bytes)`);
    return this.guestInfo(gid);
  }

  hosted(id: string): HostedGuest {
    const g = this.map.get(id);
    if (!g)
      throw new MigrationError(
        'GUEST_NOT_FOUND',
        `no guest named ${id} on this agent (GET /v1/guests lists them)`,
      );
    return g;
  }

  guestInfo(id: string): GuestInfo {
    const h = this.hosted(id);
    const g = h.guest;
    return {
      id,
      status: h.migrating ? 'migrating' : g.running ? 'running' : 'paused',
      origin: h.origin,
      createdAt: h.createdAt,
      config: g.config,
      steps: g.steps(),
      busyMs: g.busyTimeMs(),
      cap: g.cap,
      frequency: g.frequency,
      dirtyPages: g.dirtyLog.count(),
      ...(h.migrating ? { migration: h.migrating } : {}),
    };
  }

  listGuests(): GuestInfo[] {
    return [...this.map.keys()].map((id) => this.guestInfo(id));
  }

  notMigrating(h: HostedGuest): void {
    if (h.migrating)
      throw new MigrationError('GUEST_BUSY', `guest ${h.id} is being migrated (${h.migrating})`);
    if (h.snapshot)
      throw new MigrationError('GUEST_BUSY', `guest ${h.id} is being snapshotted to ${h.snapshot}`);
  }

  async pauseGuest(id: string): Promise<GuestInfo> {
    const h = this.hosted(id);
    this.notMigrating(h);
    await h.guest.pause();
    return this.guestInfo(id);
  }

  resumeGuest(id: string): GuestInfo {
    const h = this.hosted(id);
    this.notMigrating(h);
    h.guest.resume();
    return this.guestInfo(id);
  }

  setThrottle(id: string, cap?: number, frequency?: number): GuestInfo {
    const h = this.hosted(id);
    if (cap !== undefined) h.guest.setCap(cap);
    if (frequency !== undefined) h.guest.setFrequency(frequency);
    return this.guestInfo(id);
  }

  /** Stops and removes a guest; `beforeRemove` lets the agent drop what else refers to it first. */
  async stopGuest(id: string, beforeRemove?: (id: string) => void): Promise<void> {
    const h = this.hosted(id);
    this.notMigrating(h);
    beforeRemove?.(id);
    this.map.delete(id);
    await h.guest.destroy();
    this.o.changed();
  }

  /** vCPU state of a paused guest (for the determinism oracle). */
  guestState(id: string): unknown {
    const h = this.hosted(id);
    if (h.guest.running)
      throw new MigrationError('GUEST_BUSY', `pause guest ${id} first (POST /v1/guests/${id}/pause)`);
    return h.guest.state();
  }

  /** The RAM of a paused guest, page by page (for byte-for-byte verification in tests and tools). */
  guestRam(id: string): Guest {
    const h = this.hosted(id);
    if (h.guest.running)
      throw new MigrationError('GUEST_BUSY', `pause guest ${id} first (POST /v1/guests/${id}/pause)`);
    return h.guest;
  }
}
