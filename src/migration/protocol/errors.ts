/** The errors a malformed, damaged or misplaced frame raises (internal to the protocol folder). */
import { MigrationError } from '../../errors.js';
import { Command } from './wire.js';

export function foreignFrame(command: Command, sequence: number, why: string): MigrationError {
  return new MigrationError(
    'FOREIGN_FRAME',
    `migration stream: the ${Command[command]} frame at position ${sequence} does not belong here: its CRC32C is ` +
      `intact but ${why} (a frame of another migration, replayed, reordered or dropped on the way); refused before use`,
    { command: Command[command], sequence },
  );
}

export function protocolError(message: string, context: Record<string, unknown> = {}): MigrationError {
  return new MigrationError('PROTOCOL', `migration stream: ${message}`, context);
}

export function checksumError(
  command: Command,
  expected: number,
  actual: number,
  bound: boolean,
): MigrationError {
  // A frame bound to another nonce cannot be told from damage: say both.
  const what = bound ? ' (damaged on the way, or a frame of another migration)' : '';
  return new MigrationError(
    'CHECKSUM',
    `migration stream: CRC32C mismatch in ${Command[command]} frame${what}`,
    {
      command: Command[command],
      expected,
      actual,
    },
  );
}
