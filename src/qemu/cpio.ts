/**
 * A newc ("070701") cpio writer: enough to make an initramfs the Linux kernel unpacks, with no cpio binary.
 * Each entry is a 110-byte ASCII header (magic + 13 eight-digit hex fields), the NUL-terminated name padded to
 * 4 bytes, then the data padded to 4 bytes; the archive ends with the entry "TRAILER!!!".
 */
export interface CpioEntry {
  name: string;
  /** Full st_mode: type bits | permissions, e.g. 0o100755 for an executable, 0o040755 for a directory. */
  mode: number;
  data?: Uint8Array;
  /** Device numbers of a character/block node. */
  rdev?: { major: number; minor: number };
}

export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;

const pad4 = (n: number): number => (4 - (n % 4)) % 4;
const hex8 = (n: number): string => n.toString(16).padStart(8, '0');

export function cpioNewc(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const add = (e: CpioEntry): void => {
    const name = Buffer.from(`${e.name}\0`, 'utf8');
    const data = e.data ?? new Uint8Array(0);
    const fields = [
      ino++,
      e.mode,
      0, // uid
      0, // gid
      (e.mode & 0o170000) === S_IFDIR ? 2 : 1, // nlink
      0, // mtime: fixed, so the same inputs make the same archive
      data.length,
      0, // dev major
      0, // dev minor
      e.rdev?.major ?? 0,
      e.rdev?.minor ?? 0,
      name.length,
      0, // check (unused by newc)
    ];
    const header = Buffer.from(`070701${fields.map(hex8).join('')}`, 'ascii');
    parts.push(header, name, Buffer.alloc(pad4(header.length + name.length)));
    parts.push(Buffer.from(data.buffer, data.byteOffset, data.length), Buffer.alloc(pad4(data.length)));
  };
  for (const e of entries) add(e);
  add({ name: 'TRAILER!!!', mode: 0 });
  return Buffer.concat(parts);
}
