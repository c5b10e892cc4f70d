/**
 * Who may drive the control API (docs/security.md, "The control API"):
 * - on a plain-HTTP port, the Host header (and Origin, when a browser sends one) must name this agent — an IP
 *   literal, `localhost` or a name it was told — so a web page whose DNS name was rebound to 127.0.0.1 is refused;
 * - with an API token (`--api-token-file`), every request that changes state or reads a guest's memory
 *   (`control` below) must carry it as `authorization: Bearer TOKEN`, compared in constant time;
 * - the dashboard's own listener (`--dashboard PORT`) is read-only: `control` requests are refused there.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import { dirname } from 'node:path';
import { UsageError } from '../errors.js';
import { HttpError } from './http.js';

/** The environment variable naming the token file, read by `livemig agent`, the CLI's client commands and AgentClient. */
export const API_TOKEN_ENV = 'LIVEMIG_API_TOKEN_FILE';

/** What a request may do: read status, or change state / read guest memory. */
export type Access = 'read' | 'control';

/** `control`: anything but GET/HEAD, and the GETs that read a guest's RAM or vCPU state. */
export function accessOf(method: string, parts: readonly string[]): Access {
  if (method !== 'GET' && method !== 'HEAD') return 'control';
  if (parts[0] === 'v1' && parts[1] === 'guests' && (parts[3] === 'ram' || parts[3] === 'state'))
    return 'control';
  return 'read';
}

export interface ApiGuard {
  /** Check Host/Origin (plain HTTP; under mutual TLS a rebound page cannot complete the handshake). */
  checkHost: boolean;
  /** Host names besides IP literals and `localhost` that name this agent (its --listen host, --allow-host). */
  hostNames: readonly string[];
  /** The API token; without one, `control` requests need only pass the Host/Origin check. */
  token?: string;
  /** The dashboard's listener: `control` requests are refused. */
  readOnly?: boolean;
}

/** Splits a Host header value (`name`, `name:port`, `[v6]`, `[v6]:port`) into its host name, lower-cased. */
export function hostOf(value: string): string | undefined {
  const v = value.trim().toLowerCase();
  const m = /^(?:\[([0-9a-f:.]+)\]|([^:[\]/@\s]+))(?::\d{1,5})?$/.exec(v);
  if (!m) return undefined;
  return m[1] ?? m[2];
}

function allowedHost(name: string | undefined, guard: ApiGuard): boolean {
  if (name === undefined) return false;
  // An IP literal cannot be rebound: a page that uses one is on that address's origin already.
  if (isIP(name) !== 0) return true;
  return name === 'localhost' || guard.hostNames.includes(name);
}

const FIX =
  'use an IP address or localhost in the URL (or start the agent with --allow-host NAME); docs/security.md';

/**
 * Refuses a request whose Host or Origin does not name this agent (403 FORBIDDEN), a `control` request on the
 * read-only dashboard listener (403) and one without the agent's token (401 AUTH_FAILED).
 */
export function checkRequest(headers: IncomingHttpHeaders, access: Access, guard: ApiGuard): void {
  if (guard.checkHost) {
    const host = headers.host;
    // No Host at all is not a browser (Node itself refuses HTTP/1.1 without one); a Host naming something else is.
    if (host !== undefined && !allowedHost(hostOf(host), guard)) {
      throw new HttpError(403, `Host "${clip(host)}" does not name this agent: ${FIX}`, 'FORBIDDEN');
    }
    const origin = headers.origin;
    if (origin !== undefined) {
      let url: URL | undefined;
      try {
        url = new URL(origin);
      } catch {
        url = undefined;
      }
      // Same origin only: the page must come from this very address (scheme aside), as the dashboard does.
      const same =
        url !== undefined &&
        (url.protocol === 'http:' || url.protocol === 'https:') &&
        host !== undefined &&
        url.host.toLowerCase() === host.trim().toLowerCase() &&
        allowedHost(hostOf(url.host), guard);
      if (!same) {
        throw new HttpError(
          403,
          `Origin "${clip(origin)}" is not this agent: the control API answers pages it serves itself only`,
          'FORBIDDEN',
        );
      }
    }
  }
  if (access === 'read') return;
  if (guard.readOnly) {
    throw new HttpError(
      403,
      "this is the dashboard's read-only listener (--dashboard PORT): it serves the page and GET requests; " +
        "start, migrate and the other commands go to the agent's own port",
      'FORBIDDEN',
    );
  }
  if (guard.token === undefined) return;
  const auth = headers.authorization;
  const given = typeof auth === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(auth)?.[1] : undefined;
  if (given === undefined || !sameToken(given, guard.token)) {
    throw new HttpError(
      401,
      `this agent requires its API token for this request (${given === undefined ? 'none was sent' : 'the one sent is wrong'}): ` +
        `give the CLI --api-token-file FILE (or set ${API_TOKEN_ENV}) with the agent's token file; ` +
        'HTTP clients send "authorization: Bearer TOKEN"',
      'AUTH_FAILED',
    );
  }
}

/** Constant-time comparison (hashes first, so lengths leak nothing either). */
export function sameToken(a: string, b: string): boolean {
  const h = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(h(a), h(b));
}

function clip(s: string): string {
  const t = s.replace(/[^\x20-\x7e]/g, '?');
  return t.length > 80 ? `${t.slice(0, 80)}…` : t;
}

// ------------------------------------------------------------------------------------------------------------
// Token files

const TOKEN_FORM = /^[\x21-\x7e]{16,1024}$/;

/** A fresh token: 32 random bytes, base64url. */
export function newApiToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Reads a token file; refuses one other users can read, or that does not hold a token. */
export function readApiToken(file: string, flag = '--api-token-file'): string {
  let text: string;
  try {
    if (process.platform !== 'win32') {
      const mode = statSync(file).mode & 0o777;
      if ((mode & 0o077) !== 0) {
        throw new UsageError(
          `${flag}: ${file} can be read by other users (mode ${mode.toString(8)}): \`chmod 600 ${file}\``,
          flag,
        );
      }
    }
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`${flag}: cannot read ${file}: ${(err as Error).message}`, flag);
  }
  const token = text.trim();
  if (!TOKEN_FORM.test(token)) {
    throw new UsageError(
      `${flag}: ${file} does not hold a token (16 to 1024 printable characters, no spaces); ` +
        'delete it and the agent makes a new one',
      flag,
    );
  }
  return token;
}

/**
 * The agent's token: read from `file`, or made and written there (mode 0600) if it does not exist. Two agents
 * starting at once with the same file end with the same token (the file appears whole, by link, or not at all).
 */
export function loadOrCreateApiToken(
  file: string,
  flag = '--api-token-file',
): { token: string; created: boolean } {
  const created = writeNewToken(file, flag);
  return { token: readApiToken(file, flag), created };
}

/** Writes a new token to `file` unless it exists; true if it wrote one. */
export function writeNewToken(file: string, flag = '--api-token-file'): boolean {
  if (existsSync(file)) return false; // provisioned already (its folder may not even be writable)
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeSync(fd, `${newApiToken()}\n`);
    } finally {
      closeSync(fd);
    }
    chmodSync(tmp, 0o600); // whatever the umask
    try {
      linkSync(tmp, file);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
  } catch (err) {
    throw new UsageError(`${flag}: cannot write a token to ${file}: ${(err as Error).message}`, flag);
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // never created
    }
  }
}

/** The token a client sends: from `file`, else from $LIVEMIG_API_TOKEN_FILE when that file exists, else none. */
export function clientApiToken(file?: string): string | undefined {
  if (file !== undefined) return readApiToken(file);
  const env = process.env[API_TOKEN_ENV];
  if (!env) return undefined;
  try {
    statSync(env);
  } catch {
    return undefined;
  }
  return readApiToken(env, API_TOKEN_ENV);
}

/** `livemig agent`'s token: from --api-token-file, else $LIVEMIG_API_TOKEN_FILE, else none. */
export function apiTokenForAgent(
  flag: string | undefined,
): { token: string; file: string; created: boolean } | undefined {
  const file = flag ?? (process.env[API_TOKEN_ENV] || undefined);
  if (file === undefined) return undefined;
  const name = flag !== undefined ? '--api-token-file' : API_TOKEN_ENV;
  return { file, ...loadOrCreateApiToken(file, name) };
}
