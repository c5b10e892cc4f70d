/**
 * Fuzz targets for what an agent answers its clients: the success bodies AgentClient checks
 * (src/agent/answer-schemas.ts) and the event stream's events the dashboard page checks (src/web/live-schemas.ts).
 * Each input is a mutation of a valid body; a body refused is a PROTOCOL MigrationError.
 */
import * as answers from '../agent/answer-schemas.js';
import type { Rng } from '../codec/fuzz.js';
import { MigrationError } from '../errors.js';
import { exampleGuest, exampleReport, exampleSample, exampleStatus } from '../web/answer-examples.js';
import { type EventName, parseEvent } from '../web/live-schemas.js';

type MutateBody = (rng: Rng, valid: Record<string, unknown>) => unknown;

const REPORT = exampleReport() as unknown as Record<string, unknown>;
const GUEST = exampleGuest();
const STATUS = exampleStatus();
const SAMPLE = exampleSample();

/** [endpoint, check, a valid body] for each AgentClient answer. */
const ANSWERS: [string, answers.AnswerCheck, Record<string, unknown>][] = [
  ['GET /v1/status', answers.statusAnswer, STATUS],
  ['GET /v1/guests/g1', answers.guestSchema, GUEST],
  ['DELETE /v1/guests/g1', answers.stoppedAnswer, { id: 'g1', stopped: true }],
  ['POST /v1/guests/g1/dirty-log', answers.dirtyLogAnswer, { at: 1.5, count: 1, pages: 'AQAAAA==' }],
  [
    'GET /v1/guests/g1/state',
    answers.stateAnswer,
    {
      config: { ramBytes: 1 << 20, pageSize: 4096 },
      vcpus: [{ index: 0, step: 3, rng: [1, 2, 3, 4], registers: { a: 1 } }],
    },
  ],
  [
    'POST /v1/guests/g1/snapshot',
    answers.snapshotAnswer,
    { file: 'f', fileBytes: 9, pages: 2, zeroPages: 1, copiedPages: 0, steps: [1], live: true },
  ],
  [
    'POST /v1/snapshots/restore',
    answers.restoreAnswer,
    { guest: GUEST, restoreMs: 3, pagesRead: 2, fileBytes: 9, steps: [1] },
  ],
  ['GET /v1/migrations/ID', answers.reportSchema, REPORT],
  [
    'GET /v1/migrations/incoming/ID',
    answers.ownerAnswer,
    { migrationId: 'm', guestId: 'g1', state: 'held', since: 'x' },
  ],
  [
    'POST /v1/evacuate',
    answers.evacuationAnswer,
    {
      order: 'smart',
      maxParallel: 2,
      guests: 1,
      completed: 1,
      failed: 0,
      totalTimeMs: 5,
      downtimeSumMs: 1,
      downtimeMaxMs: 1,
      bytes: 10,
      completionSumMs: 5,
      moves: [{ guest: 'g1', destination: 'x:1', migration: 'm', status: 'completed' }],
    },
  ],
];

const EVENTS: [EventName, Record<string, unknown>][] = [
  ['hello', { status: STATUS, series: [{ id: 'm', samples: [SAMPLE] }] }],
  ['status', STATUS],
  ['progress', { id: 'm', sample: SAMPLE, report: REPORT }],
  ['end', { id: 'm', report: REPORT }],
];

export function answerTargets(mutateBody: MutateBody) {
  return [
    {
      name: "an agent's success answers (AgentClient)",
      run: (rng: Rng): void => {
        const [endpoint, check, valid] = ANSWERS[rng.int(ANSWERS.length)]!;
        void answers.parseAnswer(check, mutateBody(rng, valid), endpoint, 'http://127.0.0.1:1');
      },
    },
    {
      name: "the agent's events (dashboard page)",
      run: (rng: Rng): void => {
        const [name, valid] = EVENTS[rng.int(EVENTS.length)]!;
        const data = rng.int(8)
          ? JSON.stringify(mutateBody(rng, valid))
          : Buffer.from(rng.bytes(20)).toString();
        const r = parseEvent(name, data);
        if (!r.ok) throw new MigrationError('PROTOCOL', `${name} event: at ${r.field}: ${r.problem}`);
      },
    },
  ];
}
