/**
 * Fuzz targets for JSON a user or peer sends: the control API's request bodies and queries, the guest
 * configuration, power series and QMP messages, each on structure-aware mutations of a valid body.
 */
import { answerError } from '../agent/answer-error.js';
import { parseEvacuationRequest } from '../agent/evacuate.js';
import {
  parseEmptyRequest,
  parseGuestRequest,
  parseMigrationQuery,
  parseMigrationRequest,
  parsePowerQuery,
  parseResumeRequest,
  parseThrottleRequest,
} from '../agent/requests.js';
import { LivemigError, MigrationError } from '../errors.js';
import { resolveConfig } from '../guest/config.js';
import { parsePowerSeries } from '../power/series-schema.js';
import { parseQmpMessage } from '../qemu/qmp-messages.js';

import { hex, mutateBody, type Target } from './mutate.js';

const GUEST = { ramBytes: 1 << 20, seed: 3, vcpus: 1, workload: { name: 'gap', params: { writeRate: 100 } } };

export const bodyTargets: Target[] = [
  {
    name: 'POST /v1/guests body',
    run: (rng) => void parseGuestRequest(mutateBody(rng, { id: 'g1', run: true, config: GUEST })),
  },
  {
    name: 'POST /v1/migrations body',
    run: (rng) =>
      void parseMigrationRequest(
        mutateBody(rng, {
          guest: 'g1',
          destination: '127.0.0.1:7071',
          preset: 'qemu',
          options: { strategy: 'precopy', xbzrle: true, maxBandwidth: 1 << 20 },
        }),
      ),
  },
  {
    name: 'POST /v1/evacuate body',
    run: (rng) =>
      void parseEvacuationRequest(
        mutateBody(rng, {
          to: ['127.0.0.1:7071'],
          maxParallel: 2,
          order: 'smart',
          options: { xbzrle: true },
        }),
      ),
  },
  {
    name: 'POST .../throttle, .../resume and parameterless bodies',
    run: (rng) => {
      const k = rng.int(3);
      if (k === 0) void parseThrottleRequest(mutateBody(rng, { cap: 50, frequency: 0.5 }));
      else if (k === 1) void parseResumeRequest(mutateBody(rng, { destination: '127.0.0.1:7071' }));
      else parseEmptyRequest(mutateBody(rng, {}), 'pause');
    },
  },
  {
    name: 'query strings (/v1/power, /v1/migrations/ID)',
    run: (rng) => {
      const q = new URLSearchParams();
      const v = () => (rng.int(3) ? String(rng.int(2 ** 20)) : hex(rng, 1 + rng.int(4)));
      for (const key of ['since', 'sample', 'model', 'wait', 'x']) if (rng.int(2)) q.append(key, v());
      if (rng.int(2)) q.set('model', rng.int(2) ? 'cubic' : 'linear');
      void parsePowerQuery(q);
      void parseMigrationQuery(q);
    },
  },
  {
    name: "an agent's error answer (AgentClient)",
    run: (rng) => {
      const valid = {
        error: { code: rng.int(2) ? 'GUEST_BUSY' : 'BAD_REQUEST', message: hex(rng, 4), flag: 'x' },
      };
      const body = rng.int(4)
        ? Buffer.from(JSON.stringify(mutateBody(rng, valid)))
        : Buffer.from(rng.bytes(rng.int(40)));
      const e = answerError(400 + rng.int(200), body, 'http://127.0.0.1:1');
      if (!(e instanceof LivemigError)) throw new Error(`answerError gave ${String(e)}`);
      // A body it could not believe is a refusal; a documented code kept is an acceptance.
      if (e.code === 'PROTOCOL') throw e;
    },
  },
  {
    name: "another agent's GET /v1/power body",
    run: (rng) =>
      void parsePowerSeries(
        mutateBody(rng, {
          model: 'cubic',
          capacityCores: 2,
          rapl: false,
          labels: { cpuMs: 'measured', utilisation: 'measured', watts: 'modelled', raplWatts: 'measured' },
          samples: [
            {
              at: 1,
              intervalMs: 100,
              vcpuCpuMs: 5,
              mainCpuMs: 1,
              otherCpuMs: 0,
              utilisation: 0.1,
              dvfsState: 0,
              ghz: null,
              watts: 90,
              raplWatts: null,
              guests: [],
            },
          ],
        }),
        '127.0.0.1:1',
      ),
  },
  {
    name: 'QMP message from QEMU (QmpClient)',
    run: (rng) => {
      const valid = [
        { QMP: { version: { qemu: { major: 10, minor: 0, micro: 2 }, package: '' }, capabilities: ['oob'] } },
        { event: 'STOP', data: { reason: 'x' }, timestamp: { seconds: 1, microseconds: 2 } },
        { return: { status: 'active' }, id: '1' },
        { error: { class: 'GenericError', desc: 'no' }, id: 2 },
      ][rng.int(4)]!;
      const m = parseQmpMessage(mutateBody(rng, valid));
      if (typeof m === 'string' || m.kind === 'malformed') throw new MigrationError('PROTOCOL', 'not QMP');
    },
  },
  {
    name: 'guest configuration (resolveConfig)',
    run: (rng) => void resolveConfig(mutateBody(rng, GUEST) as Parameters<typeof resolveConfig>[0]),
  },
];
