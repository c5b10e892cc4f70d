/**
 * Sizes, rates and durations as users type them (`64MiB`, `1g`, `100Mbit`, `300ms`) and as reports print them.
 * One parser for flags, config files and the control API, so the accepted forms are the same everywhere.
 */
import { UsageError } from './errors.js';

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
};

/** Parses a byte size: `4096`, `64k`, `64KiB`, `1.5GiB`, `200MB` (SI), `0`. Bare letters are binary (k = 1024). */
export function parseSize(text: string, flag = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new UsageError(
      `${flag}: cannot read "${text}" as a size; use a number of bytes with an optional unit, e.g. 4096, 64KiB, 256MiB, 8GiB`,
      flag,
    );
  }
  return Math.round(Number(m[1]) * unit);
}

/**
 * Parses a bandwidth in bytes per second: `128MiB` or `128MiB/s` (bytes), `1Gbit`, `100Mbps` (bits), `0` = unlimited.
 */
export function parseRate(text: string, flag = 'rate'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*?)(?:\/s)?\s*$/.exec(text);
  if (!m) {
    throw new UsageError(
      `${flag}: cannot read "${text}" as a rate; use bytes/s with a unit (128MiB, 1GiB/s) or bits (100Mbit, 1Gbps); 0 = unlimited`,
      flag,
    );
  }
  const value = Number(m[1]);
  const unit = m[2]!.toLowerCase();
  const bits = /^(k|m|g|t)?(bit|bps)$/.exec(unit);
  if (bits) {
    const scale = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12 }[bits[1] ?? ''] ?? 1;
    return Math.round((value * scale) / 8);
  }
  return parseSize(`${m[1]}${m[2]}`, flag);
}

/** Parses a duration in milliseconds: `300`, `300ms`, `2s`, `1.5m`. */
export function parseDuration(text: string, flag = 'duration'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?\s*$/.exec(text);
  if (!m) {
    throw new UsageError(`${flag}: cannot read "${text}" as a duration; use e.g. 300ms, 2s, 1.5m`, flag);
  }
  const scale = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000 }[m[2] ?? 'ms'] ?? 1;
  return Number(m[1]) * scale;
}

/** Formats bytes with a binary unit: 1536 -> "1.5 KiB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[i]}`;
}

/** Formats a duration in ms: 12.3 -> "12.3 ms", 4200 -> "4.20 s". */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}
