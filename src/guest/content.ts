/**
 * Realistic page contents. Compression results are only meaningful if guest pages look like real memory: text
 * (logs, prose, CSV), structured binary data (object headers, small integers, pointers, some zero runs), not
 * zeros and not pure noise. Each guest builds two corpora once from its seed; workloads copy page-sized pieces
 * from them and then vary a few bytes, which is fast enough to rewrite hundreds of thousands of pages per second.
 */
import { Rng } from './rng.js';

export const CORPUS_BYTES = 256 * 1024;

export const FIRST_NAMES = [
  'Alice',
  'Bob',
  'Carol',
  'David',
  'Eitan',
  'Fatima',
  'Gil',
  'Hannah',
  'Ido',
  'Julia',
  'Kenji',
  'Lior',
  'Maya',
  'Noam',
  'Omar',
  'Priya',
  'Quinn',
  'Rivka',
  'Sara',
  'Tomas',
  'Uri',
  'Vera',
  'Wei',
  'Yael',
  'Zoe',
];
export const LAST_NAMES = [
  'Smith',
  'Cohen',
  'Levi',
  'Garcia',
  'Nakamura',
  'Haddad',
  'Novak',
  'Petrov',
  'Rossi',
  'Schmidt',
  'Tanaka',
  'Okafor',
  'Dubois',
  'Silva',
  'Kowalski',
  'Friedman',
  'Mizrahi',
  'Andersen',
  'Oliveira',
  'Kim',
];
export const CITIES = [
  'Haifa',
  'Tel Aviv',
  'Umea',
  'Stockholm',
  'Berlin',
  'Lisbon',
  'Osaka',
  'Nairobi',
  'Toronto',
  'Austin',
  'Warsaw',
  'Lyon',
  'Seoul',
  'Porto',
  'Dublin',
  'Chennai',
];
const DOMAINS = ['example.org', 'mail.example.com', 'cs.example.edu', 'corp.example.net'];
const WORDS = (
  'the of and to in is that for it as was with be by on not he this are or his from at which but have an they ' +
  'you were her all she there would their we him been has when who will more no if out so said what up its ' +
  'about into than them can only other new some could time these two may then do first any my now such like ' +
  'our over man me even most made after also did many before must through back years where much your way ' +
  'memory page migration host guest round dirty cache network server virtual machine kernel process thread'
).split(' ');
const LEVELS = ['INFO ', 'DEBUG', 'WARN ', 'INFO ', 'ERROR', 'INFO '];
const PATHS = [
  '/api/v1/users/',
  '/api/v1/orders/',
  '/static/img/',
  '/search?q=',
  '/api/v2/cart/',
  '/login?next=',
];

export interface Corpus {
  /** Text: log lines, prose, CSV records. */
  readonly text: Uint8Array;
  /** Binary: heap-like objects (headers, lengths, small integers, pointers, zero padding). */
  readonly binary: Uint8Array;
}

const pick = <T>(rng: Rng, list: readonly T[]): T => list[rng.below(list.length)]!;
const pad = (n: number, w: number) => String(n).padStart(w, '0');

function textLine(rng: Rng): string {
  switch (rng.below(3)) {
    case 0: {
      const t = `2024-${pad(1 + rng.below(12), 2)}-${pad(1 + rng.below(28), 2)}T${pad(rng.below(24), 2)}:${pad(rng.below(60), 2)}:${pad(rng.below(60), 2)}.${pad(rng.below(1000), 3)}Z`;
      return `${t} ${pick(rng, LEVELS)} [worker-${rng.below(8)}] request id=${rng.next().toString(16)} GET ${pick(rng, PATHS)}${rng.below(100000)} ${pick(rng, [200, 200, 200, 304, 404, 500])} ${rng.below(300)}ms\n`;
    }
    case 1: {
      const n = 6 + rng.below(14);
      const words: string[] = [];
      for (let i = 0; i < n; i++) words.push(pick(rng, WORDS));
      const s = words.join(' ');
      return `${s[0]!.toUpperCase()}${s.slice(1)}.\n`;
    }
    default: {
      const first = pick(rng, FIRST_NAMES);
      const last = pick(rng, LAST_NAMES);
      return `${rng.below(1000000)},${first},${last},${first.toLowerCase()}.${last.toLowerCase()}@${pick(rng, DOMAINS)},${pick(rng, CITIES)},${rng.below(100000) / 100}\n`;
    }
  }
}

function textCorpus(rng: Rng): Uint8Array {
  const parts: string[] = [];
  let len = 0;
  while (len < CORPUS_BYTES) {
    const line = textLine(rng);
    parts.push(line);
    len += line.length;
  }
  return new TextEncoder().encode(parts.join('')).subarray(0, CORPUS_BYTES);
}

function binaryCorpus(rng: Rng): Uint8Array {
  const out = new Uint8Array(CORPUS_BYTES);
  const dv = new DataView(out.buffer);
  let off = 0;
  while (off + 8 <= CORPUS_BYTES) {
    // An object: header (type tag, flags), length, then fields.
    const fields = 1 + rng.below(24);
    dv.setUint32(off, (1 + rng.below(40)) | (rng.below(4) << 8), true);
    dv.setUint32(off + 4, fields, true);
    off += 8;
    for (let i = 0; i < fields && off + 8 <= CORPUS_BYTES; i++, off += 8) {
      const kind = rng.below(10);
      if (kind < 5) {
        dv.setUint32(off, rng.below(kind < 3 ? 256 : 65536), true); // small integers
      } else if (kind < 8) {
        dv.setUint32(off, 0x7f000000 + rng.below(0x100000) * 16, true); // pointer into the heap
        dv.setUint32(off + 4, 0x00007ffd, true);
      } else if (kind < 9) {
        dv.setFloat64(off, Math.round(rng.float() * 1e6) / 100, true);
      }
      // kind 9: a zero word (unused slot)
    }
    if (rng.below(8) === 0) off += 8 * rng.below(16); // alignment padding / free space
  }
  return out;
}

export function makeCorpus(seed: number): Corpus {
  const rng = Rng.seeded(seed, 0x636f7270);
  return { text: textCorpus(rng), binary: binaryCorpus(rng) };
}

const sharedCorpora = new Map<number, Corpus>();

/** The corpus of `seed` in shared memory, built once per process and handed to every vCPU worker. */
export function sharedCorpus(seed: number): Corpus {
  let c = sharedCorpora.get(seed);
  if (!c) {
    const plain = makeCorpus(seed);
    const share = (a: Uint8Array) => {
      const s = new Uint8Array(new SharedArrayBuffer(a.length));
      s.set(a);
      return s;
    };
    c = { text: share(plain.text), binary: share(plain.binary) };
    if (sharedCorpora.size >= 16) sharedCorpora.delete(sharedCorpora.keys().next().value!);
    sharedCorpora.set(seed, c);
  }
  return c;
}

/**
 * Rewrites a whole page: a page-sized piece of `src` from a random 8-byte aligned offset, then a few varied
 * bytes so pages are not copies of each other. Never all zero.
 */
export function fillPage(buf: Uint8Array, off: number, pageSize: number, src: Uint8Array, rng: Rng): void {
  const from = rng.below((src.length - pageSize) >>> 3) << 3;
  buf.set(src.subarray(from, from + pageSize), off);
  const n = pageSize >>> 7;
  for (let i = 0; i < n; i++) buf[off + rng.below(pageSize)] = 0x30 + rng.below(10);
  buf[off] = 0x21 + rng.below(90);
}

/** Writes `value` as `width` ASCII decimal digits, zero-padded (fixed-width fields update in place). */
export function writeDigits(buf: Uint8Array, off: number, width: number, value: number): void {
  let v = Math.floor(Math.abs(value));
  for (let i = width - 1; i >= 0; i--) {
    buf[off + i] = 0x30 + (v % 10);
    v = Math.floor(v / 10);
  }
}

/** Writes ASCII `text` into exactly `width` bytes, padded with spaces or cut. */
export function writeText(buf: Uint8Array, off: number, width: number, text: string): void {
  for (let i = 0; i < width; i++) buf[off + i] = i < text.length ? text.charCodeAt(i) & 0x7f : 0x20;
}
