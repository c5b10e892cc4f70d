/**
 * Type-level tests of livemig's public API, written as a package user writes them (`from 'livemig'`). Checked by tsc
 * (test/docs.test.ts runs it on test/typecheck/tsconfig.json); nothing here runs.
 */

import {
  AgentClient,
  type CodecError,
  compressor,
  DEFAULT_OPTIONS,
  decodeRle,
  decodeXbzrle,
  type ExperimentName,
  type ExperimentOutput,
  encodeRle,
  encodeXbzrle,
  Guest,
  type GuestConfig,
  type GuestInfo,
  type HttpError,
  isZeroPage,
  type LIVEMIG_ERROR_CODES,
  LivemigError,
  type LivemigErrorCode,
  loadPlanetlabDay,
  loadTraceDir,
  type MIGRATION_ERROR_CODES,
  type MigrationError,
  type MigrationErrorCode,
  type MigrationOptions,
  type MigrationReport,
  type MigrationStatus,
  type MigrationSummary,
  PageCache,
  parseRate,
  parseSize,
  protocol,
  type RunExperimentOptions,
  runExperiment,
  type SimOptions,
  type SimResult,
  type Strategy,
  simulate,
  startAgent,
  syntheticWorkload,
  type UsageError,
  VERSION,
  type Workload,
} from 'livemig';
import * as agentPath from 'livemig/agent';
import * as codecPath from 'livemig/codec';
import * as experimentsPath from 'livemig/experiments';
import { FaultProxy } from 'livemig/faults';
import type * as migrationPath from 'livemig/migration';
import type * as powerPath from 'livemig/power';
import * as simPath from 'livemig/sim';
import { EventHub } from 'livemig/web';
import { describe, expectTypeOf, it } from 'vitest';

describe('agent', () => {
  it('AgentClient.migrate takes MigrationOptions and resolves to a MigrationReport', () => {
    expectTypeOf(AgentClient).toBeConstructibleWith('127.0.0.1:7070');
    const client = new AgentClient('127.0.0.1:7070');
    expectTypeOf(client.migrate).parameter(0).toEqualTypeOf<string>();
    expectTypeOf(client.migrate).parameter(1).toEqualTypeOf<string>();
    expectTypeOf(client.migrate).parameter(2).toEqualTypeOf<Partial<MigrationOptions> | undefined>();
    expectTypeOf(client.migrate).returns.toEqualTypeOf<Promise<MigrationReport>>();
    expectTypeOf(client.follow).returns.toEqualTypeOf<Promise<MigrationReport>>();
    expectTypeOf(client.waitMigration).returns.toEqualTypeOf<Promise<MigrationReport>>();
    expectTypeOf(client.startGuest).parameter(0).toEqualTypeOf<GuestConfig>();
    expectTypeOf(client.startGuest).returns.toEqualTypeOf<Promise<GuestInfo>>();
  });
  it('the status lists migrations as summaries; the report of each is one call away', () => {
    const client = new AgentClient('127.0.0.1:7070');
    expectTypeOf(client.status)
      .returns.resolves.toHaveProperty('outgoing')
      .toEqualTypeOf<MigrationSummary[]>();
    expectTypeOf(client.migrations).returns.toEqualTypeOf<Promise<MigrationSummary[]>>();
    expectTypeOf(client.migration).returns.toEqualTypeOf<Promise<MigrationReport>>();
    expectTypeOf<MigrationReport>().toExtend<MigrationSummary>();
  });
  it('startAgent resolves to an agent with an address', async () => {
    const agent = await startAgent({ host: '127.0.0.1', port: 0 });
    expectTypeOf(agent.address).toEqualTypeOf<string>();
  });
});

describe('migration', () => {
  it('MigrationOptions and MigrationReport carry the fields the docs name', () => {
    expectTypeOf<MigrationOptions['strategy']>().toEqualTypeOf<Strategy>();
    expectTypeOf<Strategy>().toEqualTypeOf<'cold' | 'precopy' | 'postcopy' | 'hybrid'>();
    expectTypeOf<MigrationOptions['xbzrle']>().toEqualTypeOf<boolean>();
    expectTypeOf<MigrationOptions['maxBandwidth']>().toEqualTypeOf<number>();
    expectTypeOf(DEFAULT_OPTIONS).toExtend<MigrationOptions>();
    expectTypeOf<MigrationReport['id']>().toEqualTypeOf<string>();
    expectTypeOf<MigrationReport['status']>().toEqualTypeOf<MigrationStatus>();
    expectTypeOf<MigrationReport['rounds']>().toEqualTypeOf<number>();
    expectTypeOf<MigrationReport['downtimeMs']>().toEqualTypeOf<number>();
    expectTypeOf(protocol.Command.ROUND).toBeNumber();
  });
});

describe('guest', () => {
  it('Guest.create takes a GuestConfig and resolves to a Guest', () => {
    expectTypeOf(Guest.create).parameters.toEqualTypeOf<[GuestConfig]>();
    expectTypeOf(Guest.create).returns.toEqualTypeOf<Promise<Guest>>();
    expectTypeOf<{ ramBytes: number; workload: { name: 'kv' } }>().toExtend<GuestConfig>();
  });
});

describe('sim', () => {
  it('simulate takes a workload and options and returns a SimResult', () => {
    expectTypeOf(simulate).parameters.toEqualTypeOf<[Workload, SimOptions]>();
    expectTypeOf(simulate).returns.toEqualTypeOf<SimResult>();
    expectTypeOf<SimOptions['mode']>().toEqualTypeOf<'cloudsim' | 'livemig'>();
    expectTypeOf<SimResult['energyKWh']>().toEqualTypeOf<number>();
    expectTypeOf<SimResult['migrations']>().toEqualTypeOf<number>();
    expectTypeOf(syntheticWorkload).returns.toEqualTypeOf<Workload>();
    expectTypeOf(loadTraceDir).returns.toEqualTypeOf<Promise<Workload>>();
    expectTypeOf(loadPlanetlabDay).parameters.toEqualTypeOf<[string]>();
    expectTypeOf(loadPlanetlabDay).returns.toEqualTypeOf<Promise<Workload>>();
  });
});

describe('experiments', () => {
  it('runExperiment takes a name and options and resolves to its output', () => {
    expectTypeOf(runExperiment).parameter(0).toEqualTypeOf<ExperimentName>();
    expectTypeOf(runExperiment).parameter(1).toEqualTypeOf<RunExperimentOptions | undefined>();
    expectTypeOf(runExperiment).returns.toEqualTypeOf<Promise<ExperimentOutput>>();
    expectTypeOf<ExperimentOutput['files']>().toEqualTypeOf<string[]>();
  });
});

describe('codecs', () => {
  it('XBZRLE, RLE, zero page and compressors work on byte arrays', () => {
    expectTypeOf(encodeXbzrle).toBeCallableWith(new Uint8Array(4096), new Uint8Array(4096), 4096);
    expectTypeOf(encodeXbzrle).returns.toEqualTypeOf<Uint8Array | undefined>();
    expectTypeOf(decodeXbzrle).parameters.toEqualTypeOf<[Uint8Array, Uint8Array]>();
    expectTypeOf(encodeRle).toBeCallableWith(new Uint8Array(4096));
    expectTypeOf(decodeRle).returns.not.toBeAny();
    expectTypeOf(isZeroPage).returns.toEqualTypeOf<boolean>();
    expectTypeOf(compressor).toBeCallableWith('zstd');
    expectTypeOf(new PageCache({ bytes: 2 ** 20, pageSize: 4096 }).lookup).returns.toEqualTypeOf<number>();
  });
});

describe('errors, units, version', () => {
  it('errors are classes with a code', () => {
    expectTypeOf<MigrationError['code']>().toBeString();
    expectTypeOf<UsageError>().toExtend<Error>();
    expectTypeOf<CodecError>().toExtend<Error>();
    // One family: every error class extends LivemigError, every code is in the one list.
    expectTypeOf<MigrationError>().toExtend<LivemigError>();
    expectTypeOf<UsageError>().toExtend<LivemigError>();
    expectTypeOf<CodecError>().toExtend<LivemigError>();
    expectTypeOf<HttpError>().toExtend<LivemigError>();
    expectTypeOf<MigrationErrorCode>().toExtend<LivemigErrorCode>();
    expectTypeOf<(typeof LIVEMIG_ERROR_CODES)[number]>().toEqualTypeOf<LivemigErrorCode>();
    expectTypeOf<(typeof MIGRATION_ERROR_CODES)[number]>().toEqualTypeOf<MigrationErrorCode>();
    expectTypeOf(new LivemigError('TIMEOUT', 'x').toJSON().code).toEqualTypeOf<'TIMEOUT'>();
    expectTypeOf(parseSize).returns.toEqualTypeOf<number>();
    expectTypeOf(parseRate).returns.toEqualTypeOf<number>();
    expectTypeOf(VERSION).toBeString();
  });
});

describe('power', () => {
  it('a migration power session takes the migration options, rounds and report as they are', () => {
    // power/ declares the narrow view it needs so that it never imports migration/ (docs/architecture.md).
    expectTypeOf<MigrationOptions>().toExtend<powerPath.PowerSessionOptions>();
    expectTypeOf<MigrationReport>().toExtend<powerPath.PowerSessionReport>();
    expectTypeOf<migrationPath.RoundSample>().toExtend<powerPath.PowerRound>();
    expectTypeOf<powerPath.HostPower['beginMigration']>()
      .parameter(0)
      .toExtend<{ options: powerPath.PowerSessionOptions; report: powerPath.PowerSessionReport }>();
  });
  it('the energy figures and capping modes are the same names from migration and power', () => {
    expectTypeOf<migrationPath.MigrationEnergy>().toEqualTypeOf<powerPath.MigrationEnergy>();
    expectTypeOf<migrationPath.EnergyFigure>().toEqualTypeOf<powerPath.EnergyFigure>();
    expectTypeOf<migrationPath.CappingMode>().toEqualTypeOf<powerPath.CappingMode>();
    expectTypeOf<NonNullable<MigrationReport['energy']>>().toEqualTypeOf<powerPath.MigrationEnergy>();
  });
});

describe('subpaths', () => {
  it('a folder reached by its subpath exports the same things as the root', () => {
    expectTypeOf(agentPath.AgentClient).toEqualTypeOf(AgentClient);
    expectTypeOf(simPath.simulate).toEqualTypeOf(simulate);
    expectTypeOf(experimentsPath.runExperiment).toEqualTypeOf(runExperiment);
    expectTypeOf(codecPath.encodeXbzrle).toEqualTypeOf(encodeXbzrle);
    expectTypeOf<migrationPath.MigrationReport>().toEqualTypeOf<MigrationReport>();
  });
  it('faults and web are subpath-only', () => {
    expectTypeOf(FaultProxy.start).returns.toExtend<Promise<FaultProxy>>();
    expectTypeOf(EventHub).toBeConstructibleWith(() => ({}), { tickMs: 500 });
  });
  it('the root does not re-export the fault proxy or the dashboard (their names would clash there)', () => {
    // @ts-expect-error FaultProxy is reached through 'livemig/faults'
    expectTypeOf<import('livemig').FaultProxy>().not.toBeAny();
    // @ts-expect-error EventHub is reached through 'livemig/web'
    expectTypeOf<import('livemig').EventHub>().not.toBeAny();
  });
});
