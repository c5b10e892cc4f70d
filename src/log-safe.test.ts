import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { safeLine, safeText } from './log-safe.js';

describe('safeText', () => {
  it('escapes newlines, ANSI/OSC escapes and invisible characters; leaves printable text alone', () => {
    expect(safeText('line 1\n[agent 1] forged\r\n')).toBe('line 1\\x0a[agent 1] forged\\x0d\\x0a');
    expect(safeText('\x1b[31mred\x1b]0;title\x07')).toBe('\\x1b[31mred\\x1b]0;title\\x07');
    expect(safeText('a\u202eb\u200bc\u2028d\x7f\x9b')).toBe('a\\u202eb\\u200bc\\u2028d\\x7f\\x9b');
    expect(safeText('\ud800 lone')).toBe('\\ud800 lone');
    expect(safeText('café, 日本, 🚀, back\\slash')).toBe('café, 日本, 🚀, back\\slash');
  });

  it('bounds the length and says how much was cut, never splitting an escape or a pair', () => {
    expect(safeText('x'.repeat(1000), 10)).toBe(`${'x'.repeat(10)}…(+990 chars)`);
    expect(safeText('abcdefghi\n', 10)).toBe('abcdefghi…(+1 chars)');
    expect(safeText(`${'a'.repeat(9)}🚀`, 10)).toBe(`${'a'.repeat(9)}…(+2 chars)`);
  });

  it('any string: the result has no control or invisible character, and escaping twice changes nothing', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => {
        const once = safeLine(s);
        expect(once).not.toMatch(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u);
        expect(safeLine(once)).toBe(once);
      }),
    );
  });
});
