/**
 * A small certificate authority for a test cluster (`livemig certs`): one CA, and per agent a key and a
 * certificate usable both as TLS server and client (mutual authentication), naming the agent's addresses.
 * Made with the `openssl` command (present on Debian); `openssl ca` is used because it alone can set an
 * arbitrary validity window, which the tests need for an expired certificate.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { UsageError } from '../errors.js';

export interface CertsOptions {
  /** Directory that receives ca.pem, ca-key.pem, NAME.pem, NAME-key.pem. */
  dir: string;
  /** One certificate per name (e.g. agent-a, agent-b). */
  names: string[];
  /** Subject alternative names every agent certificate carries (IPs and DNS names). */
  hosts?: string[];
  /** Validity in days (default 365). */
  days?: number;
  /** Explicit validity window, openssl format YYYYMMDDHHMMSSZ (for tests of expired certificates). */
  startDate?: string;
  endDate?: string;
  /** Reuse the CA already in `dir` instead of making a new one. */
  reuseCa?: boolean;
}

export interface CertFiles {
  ca: string;
  caKey: string;
  agents: Record<string, { cert: string; key: string }>;
}

const NAME = /^[\w.-]{1,64}$/;

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { code?: string; stderr?: Buffer };
    if (e.code === 'ENOENT')
      throw new UsageError('`livemig certs` needs the openssl command (apt-get install openssl)');
    throw new UsageError(`openssl ${args[0]} failed: ${e.stderr?.toString().trim() ?? String(err)}`);
  }
}

/** Longest validity `livemig certs` makes (100 years): beyond it openssl's dates overflow. */
export const MAX_CERT_DAYS = 36_500;

/** A subject alternative name: an IP address or a DNS name (nothing that could reach openssl's config as syntax). */
const DNS_NAME = /^(?:\*\.)?[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*\.?$/;

function checkCertsOptions(o: CertsOptions): void {
  if (o.names.length === 0)
    throw new UsageError('--names needs at least one name (e.g. agent-a,agent-b)', '--names');
  for (const n of o.names)
    if (!NAME.test(n))
      throw new UsageError(`certificate name "${n}": letters, digits, ".", "_", "-"`, '--names');
  for (const h of o.hosts ?? []) {
    if (!isIP(h) && !(h.length <= 253 && DNS_NAME.test(h)))
      throw new UsageError(`--hosts: "${h}" is not an IP address or a DNS name`, '--hosts');
  }
  const days = o.days ?? 365;
  if (!Number.isInteger(days) || days < 1 || days > MAX_CERT_DAYS)
    throw new UsageError(`--days: "${days}" is not an integer from 1 to ${MAX_CERT_DAYS}`, '--days');
}

/**
 * Makes the set in a scratch folder inside `dir` and moves it into place only once every file is made, so a failure
 * (openssl refusing, a full disk) leaves `dir` as it was: never a CA without its certificates, or half a key pair.
 */
export function makeCerts(o: CertsOptions): CertFiles {
  checkCertsOptions(o);
  const dir = resolve(o.dir);
  const existed = existsSync(dir);
  // Non-recursive when the parent exists: Node's recursive mkdir never returns under /proc (e.g. --out /proc/x).
  if (!existed) mkdirSync(dir, { recursive: !existsSync(dirname(dir)) });
  const work = mkdtempSync(join(dir, '.livemig-certs-'));
  try {
    const made = makeCertsIn(work, dir, o);
    // Agents' files first and the CA last: a CA in `dir` means the whole set is there.
    for (const f of made) renameSync(join(work, f), join(dir, f));
  } catch (err) {
    if (!existed) rmSync(dir, { recursive: true, force: true });
    throw err;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const agents: CertFiles['agents'] = {};
  for (const name of o.names)
    agents[name] = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}-key.pem`) };
  return { ca: join(dir, 'ca.pem'), caKey: join(dir, 'ca-key.pem'), agents };
}

/** Makes the files in `work` (signing with the CA of `dir` when reusing it); returns their names, CA last. */
function makeCertsIn(work: string, dir: string, o: CertsOptions): string[] {
  const hosts = o.hosts?.length ? o.hosts : ['127.0.0.1', '::1', 'localhost'];
  const made: string[] = [];
  const ca = join(o.reuseCa ? dir : work, 'ca.pem');
  const caKey = join(o.reuseCa ? dir : work, 'ca-key.pem');
  if (o.reuseCa) {
    for (const f of [ca, caKey])
      if (!existsSync(f))
        throw new UsageError(
          `--reuse-ca: ${f} does not exist; make a CA first (livemig certs without --reuse-ca)`,
        );
  } else {
    openssl(
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        caKey,
        '-out',
        ca,
        '-days',
        String(o.days ?? 365),
        '-subj',
        '/CN=livemig test CA',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
      ],
      work,
    );
  }
  // `openssl ca` keeps a tiny database; one per run, in a scratch folder.
  const db = join(work, '.ca-db');
  mkdirSync(db, { recursive: true });
  writeFileSync(join(db, 'index.txt'), '');
  writeFileSync(join(db, 'serial'), `${Date.now().toString(16).padStart(16, '0')}\n`);
  const san = hosts.map((h) => (isIP(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
  writeFileSync(
    join(db, 'ca.cnf'),
    [
      '[ca]',
      'default_ca = livemig',
      '[livemig]',
      `database = ${join(db, 'index.txt')}`,
      `serial = ${join(db, 'serial')}`,
      `new_certs_dir = ${db}`,
      'default_md = sha256',
      'policy = any',
      'copy_extensions = none',
      'unique_subject = no',
      'email_in_dn = no',
      '[any]',
      'commonName = supplied',
      '[ext]',
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage = serverAuth,clientAuth',
      `subjectAltName = ${san}`,
      '',
    ].join('\n'),
  );
  for (const name of o.names) {
    const key = join(work, `${name}-key.pem`);
    const cert = join(work, `${name}.pem`);
    const csr = join(db, `${name}.csr`);
    openssl(
      [
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        key,
        '-out',
        csr,
        '-subj',
        `/CN=${name}`,
      ],
      work,
    );
    const validity = o.startDate
      ? ['-startdate', o.startDate, '-enddate', o.endDate ?? '20991231235959Z']
      : ['-days', String(o.days ?? 365)];
    openssl(
      [
        'ca',
        '-batch',
        '-config',
        join(db, 'ca.cnf'),
        '-extensions',
        'ext',
        '-cert',
        ca,
        '-keyfile',
        caKey,
        '-in',
        csr,
        '-out',
        cert,
        '-notext',
        ...validity,
      ],
      work,
    );
    made.push(`${name}.pem`, `${name}-key.pem`);
  }
  if (!o.reuseCa) made.push('ca-key.pem', 'ca.pem');
  return made;
}
