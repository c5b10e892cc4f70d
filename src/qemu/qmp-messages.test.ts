import { describe, expect, it } from 'vitest';
import { parseQmpMessage } from './qmp-messages.js';

const GREETING = {
  QMP: { version: { qemu: { major: 10, minor: 0, micro: 2 }, package: 'x' }, capabilities: ['oob'] },
};

describe('QMP envelopes from QEMU', () => {
  it('reads each shape', () => {
    expect(parseQmpMessage(GREETING)).toEqual({ kind: 'greeting', greeting: GREETING });
    expect(parseQmpMessage({ event: 'STOP' })).toEqual({
      kind: 'event',
      event: { event: 'STOP', data: {}, timestamp: { seconds: 0, microseconds: 0 } },
    });
    expect(parseQmpMessage({ return: {}, id: 3 })).toEqual({ kind: 'return', id: '3', value: {} });
    expect(parseQmpMessage({ error: { class: 'GenericError', desc: 'no' }, id: 'a' })).toEqual({
      kind: 'error',
      id: 'a',
      errorClass: 'GenericError',
      desc: 'no',
    });
  });

  it('refuses what is not QMP, and fails only its command for an answer of neither shape', () => {
    for (const bad of [null, [], 'x', { QMP: {} }, { QMP: { ...GREETING.QMP, capabilities: 'oob' } }]) {
      expect(typeof parseQmpMessage(bad), JSON.stringify(bad)).toBe('string');
    }
    expect(typeof parseQmpMessage({ event: 7 })).toBe('string');
    expect(typeof parseQmpMessage({ event: 'STOP', data: [] })).toBe('string');
    expect(parseQmpMessage({ error: { desc: 'no class' }, id: 'a' })).toEqual({ kind: 'malformed', id: 'a' });
    expect(parseQmpMessage({ id: 9 })).toEqual({ kind: 'malformed', id: '9' });
    expect(parseQmpMessage({ id: {} })).toEqual({ kind: 'malformed', id: undefined });
  });
});
