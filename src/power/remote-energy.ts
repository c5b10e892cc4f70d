/**
 * Energy a migration cost: per migration and per GiB, and the destination's share read from its agent's meter over
 * HTTP (the migration port is also its control port, so no change to the migration protocol is needed).
 */
import { MigrationError } from '../errors.js';
import { nodeRequest } from '../http-request.js';
import type { EnergyFigure, MigrationEnergyCost } from './energy.js';
import { energyOver, type PowerSeries, windowOver } from './meter.js';
import type { PowerModelName } from './models.js';
import { parsePowerSeries } from './series-schema.js';
import type { PowerSessionReport } from './session-view.js';

/** How far before a migration "before" power is measured. */
export const BEFORE_WINDOW_MS = 2000;
const GiB = 1024 ** 3;

/** Energy per migration and per GiB moved; `extra` = above each host's power just before the migration. */
export function costOf(
  report: PowerSessionReport,
  model: string,
  source: EnergyFigure,
  sourceBeforeWatts: number,
  destination: EnergyFigure | null,
  destinationBeforeWatts: number | null,
): MigrationEnergyCost {
  const gib = report.transferredBytes / GiB;
  const per = (j: number) => (gib > 0 ? j / gib : 0);
  const extra = (f: EnergyFigure, w: number) => f.joules - (w * f.durationMs) / 1000;
  return {
    model,
    bytesMoved: report.transferredBytes,
    sourceJoules: source.joules,
    destinationJoules: destination?.joules ?? null,
    sourceJoulesPerGiB: per(source.joules),
    destinationJoulesPerGiB: destination ? per(destination.joules) : null,
    sourceExtraJoules: extra(source, sourceBeforeWatts),
    destinationExtraJoules:
      destination && destinationBeforeWatts !== null ? extra(destination, destinationBeforeWatts) : null,
  };
}

/** GET /v1/power of another agent (the destination: same port as migrations), through node:http (http-request.ts). */
export async function fetchPowerSeries(
  address: string,
  since: number,
  model?: PowerModelName,
): Promise<PowerSeries> {
  const base = /^https?:\/\//.test(address) ? address : `http://${address}`;
  const q = new URLSearchParams({ since: String(since), sample: '1', ...(model ? { model } : {}) });
  const res = await nodeRequest(`${base.replace(/\/$/, '')}/v1/power?${q}`, {
    method: 'GET',
    timeoutMs: 3000,
    onTimeout: () => new MigrationError('TIMEOUT', `GET /v1/power of ${address} took over 3 s`),
  });
  if (res.status !== 200)
    throw new MigrationError('PROTOCOL', `GET /v1/power of ${address} answered ${res.status}`);
  const body = res.bytes.toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new MigrationError('PROTOCOL', `GET /v1/power of ${address} answered with no JSON`);
  }
  return parsePowerSeries(json, address);
}

export async function remoteEnergy(
  address: string,
  from: number,
  to: number,
  model: PowerModelName,
): Promise<{ during: EnergyFigure; beforeWatts: number | null } | null> {
  try {
    const s = await fetchPowerSeries(address, from - BEFORE_WINDOW_MS - 1000, model);
    const during = energyOver(s.samples, from, to, 'modelled');
    if (!during) return null;
    const before = windowOver(s.samples, from - BEFORE_WINDOW_MS, from);
    return { during, beforeWatts: before.ms > 0 ? before.watts : null };
  } catch {
    return null;
  }
}
