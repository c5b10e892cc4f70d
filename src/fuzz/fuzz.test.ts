/**
 * Property tests (fast-check) of the parsers a peer or a user feeds: arbitrary JSON to the control-API bodies
 * and the guest configuration, arbitrary bytes to the frame reader and the payload decoders — only typed errors.
 * Plus a short run of each `npm run fuzz` target, so the default suite catches a regression at once.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseGuestRequest, parseMigrationRequest } from '../agent/requests.js';
import { CodecError, MigrationError, UsageError } from '../errors.js';
import { resolveConfig } from '../guest/config.js';
import {
  decodeDigest,
  decodeHello,
  decodeHelloAck,
  decodePageRequest,
  decodePostcopyStart,
  decodeRound,
  FrameReader,
  forEachPageEntry,
} from '../migration/protocol/index.js';
import { fuzzTarget, JSON_FIELDS, TARGETS } from './index.js';

function onlyTyped(fn: () => unknown, ...types: (new (...a: never[]) => Error)[]): void {
  try {
    fn();
  } catch (err) {
    if (!types.some((t) => err instanceof t)) throw err;
  }
}

// What JSON.parse can produce, with the field names the parsers look for.
const key = fc.oneof(fc.constantFrom(...JSON_FIELDS), fc.string());
const json = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.double(),
    fc.integer(),
    fc.string(),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(key, tie('value'), { maxKeys: 5 }),
  ),
})).value;

describe('control-API bodies and guest configuration: arbitrary JSON → value or UsageError', () => {
  it('POST /v1/guests', () => {
    fc.assert(
      fc.property(json, (v) => onlyTyped(() => parseGuestRequest(v), UsageError)),
      { numRuns: 2000 },
    );
  });
  it('POST /v1/migrations', () => {
    fc.assert(
      fc.property(json, (v) => onlyTyped(() => parseMigrationRequest(v), UsageError)),
      {
        numRuns: 2000,
      },
    );
  });
  it('guest configuration', () => {
    const config = fc.record(
      { ramBytes: json, pageSize: json, vcpus: json, seed: json, workload: json },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(json, config), (v) =>
        onlyTyped(() => resolveConfig(v as Parameters<typeof resolveConfig>[0]), UsageError),
      ),
      { numRuns: 2000 },
    );
  });
  it('a refusal names the field', () => {
    expect(() => parseGuestRequest({ config: { ramBytes: 'x', workload: { name: 'gap' } } })).toThrow(
      /config\.ramBytes/,
    );
    expect(() => resolveConfig({ ramBytes: 4095, workload: { name: 'gap' } })).toThrow(/ramBytes/);
  });
});

describe('migration stream: arbitrary bytes → frames or MigrationError', () => {
  it('FrameReader, in arbitrary chunks', () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 6 }),
        (pre, chunks) => {
          const r = new FrameReader(64 * 1024, { expectPreamble: pre });
          onlyTyped(() => {
            for (const c of chunks) r.push(c);
          }, MigrationError);
        },
      ),
      { numRuns: 3000 },
    );
  });
  it('payload decoders', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 128 }), fc.integer({ min: 1, max: 4096 }), (bytes, pages) => {
        const b = Buffer.from(bytes);
        onlyTyped(() => decodeHello(b), MigrationError);
        onlyTyped(() => decodeHelloAck(b), MigrationError);
        onlyTyped(() => decodeRound(b), MigrationError);
        onlyTyped(() => decodeDigest(b), MigrationError);
        onlyTyped(() => decodePageRequest(b, pages), MigrationError);
        onlyTyped(() => decodePostcopyStart(b, pages), MigrationError);
        onlyTyped(
          () =>
            forEachPageEntry(b, pages, 512, (page, _e, data) => {
              expect(page).toBeLessThan(pages);
              expect(data.length).toBeLessThanOrEqual(512 + 64);
            }),
          MigrationError,
        );
      }),
      { numRuns: 3000 },
    );
  });
});

describe('npm run fuzz targets (short run)', () => {
  for (const t of TARGETS) {
    it(t.name, () => {
      const c = fuzzTarget(t, 3000, 42, 5000);
      expect(c.failures).toEqual([]);
      expect(c.inputs).toBe(3000);
      // Both paths are exercised: some inputs are accepted, some refused.
      expect(c.rejected).toBeGreaterThan(0);
    });
  }
  it('a target that throws an untyped error is reported as a failure', () => {
    const c = fuzzTarget(
      {
        name: 'broken',
        run: () => {
          throw new TypeError('boom');
        },
      },
      3,
      1,
    );
    expect(c.failures).toHaveLength(3);
    void CodecError;
  });
});
