/**
 * Text from a peer (an ERROR frame's message, a guest id from HELLO, an HTTP error body) is escaped before it is
 * logged or printed: a newline in it must not forge a log line, and an ANSI/OSC escape must not reach the terminal
 * (recolour it, rewrite the title, hide what came before). Control and invisible characters become \xNN or \uNNNN;
 * the length is bounded. Printable text, backslashes included, is left as it is, so escaping twice changes nothing.
 */

/** C0/C1 controls and DEL, line/paragraph separators, format characters (bidi overrides, zero-width), surrogates
 * without a pair, private-use and unassigned code points. */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Co}\p{Cn}]/gu;

function escapeChar(c: string): string {
  const code = c.codePointAt(0)!;
  if (code <= 0xff) return `\\x${code.toString(16).padStart(2, '0')}`;
  if (code <= 0xffff) return `\\u${code.toString(16).padStart(4, '0')}`;
  return `\\u{${code.toString(16)}}`;
}

/** Default bound of one peer-supplied string, in characters of the escaped text. */
export const SAFE_TEXT_MAX = 500;

/** `text` with every control or invisible character escaped, cut to `max` characters (saying how much was cut). */
export function safeText(text: unknown, max = SAFE_TEXT_MAX): string {
  const raw = String(text);
  let out = '';
  let used = 0;
  // Code point by code point, so a cut never splits a pair or one of our own escapes.
  for (const ch of raw) {
    const piece = ch.replace(UNSAFE, escapeChar);
    if (out.length + piece.length > max) return `${out}…(+${raw.length - used} chars)`;
    out += piece;
    used += ch.length;
  }
  return out;
}

/** A log line or a line for the terminal: every part is escaped, so it stays exactly one line. */
export function safeLine(line: string, max = 4 * SAFE_TEXT_MAX): string {
  return safeText(line, max);
}
