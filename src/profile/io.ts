import { readFile, writeFile } from 'node:fs/promises';
import { UsageError } from '../errors.js';
import { type GuestProfile, profileSchema } from './schema.js';

/** Reads and validates a profile file; a missing, unreadable or invalid file is a UsageError naming `flag`. */
export async function readProfile(file: string, flag = '--profile'): Promise<GuestProfile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`${flag}: cannot read ${file}: ${(err as Error).message}`, flag);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new UsageError(`${flag}: ${file} is not JSON; write one with \`livemig profile --out FILE\``, flag);
  }
  const r = profileSchema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new UsageError(
      `${flag}: ${file} is not a livemig profile (version 1): ${i.path.join('.') || '(root)'}: ${i.message}`,
      flag,
    );
  }
  return r.data;
}

export async function writeProfile(file: string, p: GuestProfile): Promise<void> {
  await writeFile(file, `${JSON.stringify(p, null, 2)}\n`);
}
