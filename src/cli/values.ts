/**
 * Strict parsers for flag values, shared by every command: a number must be written as one (no "", "0x10", "1e3" for an
 * integer, no "abc" read as "no limit"), and must fall in the flag's range. Each refusal names the flag, the value
 * and the accepted range, as a UsageError (exit code 2).
 */
import { UsageError } from '../errors.js';
import { type DowntimeRamp, downtimeRampSchema } from '../migration/options.js';
import { formatBytes, formatMs, parseDuration, parseRate, parseSize } from '../units.js';

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/** An integer from `min` to `max`, written in decimal digits. */
export function intFlag(value: string, flag: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const text = value.trim();
  const n = INTEGER.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`;
    throw new UsageError(`${flag}: "${value}" is not an integer ${range}`, flag);
  }
  return n;
}

/** A finite decimal number from `min` to `max` (both included). */
export function numberFlag(value: string, flag: string, min: number, max: number): number {
  const text = value.trim();
  const n = DECIMAL.test(text) ? Number(text) : Number.NaN;
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`${flag}: "${value}" is not a number from ${min} to ${max}`, flag);
  }
  return n;
}

function range<T extends number>(
  n: T,
  value: string,
  flag: string,
  min: number,
  max: number,
  show: (x: number) => string,
): T {
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`${flag}: "${value}" is out of range; use ${show(min)} to ${show(max)}`, flag);
  }
  return n;
}

const bytes = (x: number) => (x === 0 ? '0' : formatBytes(x));

/** A size in bytes (`64KiB`, `1.5GiB`, `4096`) from `min` to `max` bytes. */
export function sizeFlag(value: string, flag: string, min: number, max: number): number {
  return range(parseSize(value, flag), value, flag, min, max, bytes);
}

/** A duration in ms (`300ms`, `2s`, `1.5m`, a bare number is ms) from `min` to `max` ms. */
export function durationFlag(value: string, flag: string, min: number, max: number): number {
  return range(parseDuration(value, flag), value, flag, min, max, (x) => (x === 0 ? '0' : formatMs(x)));
}

/** A bandwidth in bytes/s (`128MiB`, `1Gbit`), from `min` to `max`; 0 means unlimited where `min` is 0. */
export function rateFlag(value: string, flag: string, min: number, max: number): number {
  return range(parseRate(value, flag), value, flag, min, max, (x) => (x === 0 ? '0' : `${formatBytes(x)}/s`));
}

/**
 * `--downtime-ramp START:STEP:MAX`: three durations (`150ms:150ms:1050ms`), each parsed as `durationFlag` parses one,
 * then checked by the options' own schema (START ≤ MAX).
 */
export function downtimeRampFlag(value: string, flag: string): DowntimeRamp {
  const form = 'START:STEP:MAX, three durations from 1ms to 1h, START ≤ MAX (e.g. 150ms:150ms:1050ms)';
  const parts = value.split(':');
  if (parts.length !== 3) throw new UsageError(`${flag}: "${value}" is not ${form}`, flag);
  let ms: number[];
  try {
    ms = parts.map((p) => durationFlag(p, flag, 1, 3_600_000));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    throw new UsageError(`${e.message}; ${flag} takes ${form}`, flag);
  }
  const parsed = downtimeRampSchema.safeParse({ startMs: ms[0], stepMs: ms[1], maxMs: ms[2] });
  if (!parsed.success)
    throw new UsageError(`${flag}: "${value}": ${parsed.error.issues[0]!.message}; use ${form}`, flag);
  return parsed.data;
}

/** Upper bounds that no real run comes near but that keep arithmetic and allocations sane. */
export const LIMITS = {
  /** Bytes: the largest guest, cache or working set a flag may name. */
  size: 2 ** 42, // 4 TiB
  /** Bytes/s: a bandwidth (≈ 8.8 Tbit/s). */
  rate: 2 ** 40,
  /** ms: the longest timeout, warm-up or target (one week). */
  duration: 7 * 24 * 3_600_000,
} as const;

/** `--listen HOST:PORT` (IPv6 in brackets); port 0 = any free port. */
export function listenFlag(value: string, flag: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:/[\]]+)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) {
    throw new UsageError(
      `${flag}: "${value}" is not HOST:PORT to listen on (e.g. 127.0.0.1:7070, [::1]:7070, 127.0.0.1:0 for any free port)`,
      flag,
    );
  }
  return { host: (m[1] ?? m[2])!, port };
}
