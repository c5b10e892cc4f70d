/**
 * A small certificate authority for a test cluster (`livemig certs`): one CA, and per agent a key and a
 * certificate usable both as TLS server and client (mutual authentication), naming the agent's addresses.
 * Made with the `openssl` command (present on Debian); `openssl ca` is used because it alone can set an
 * arbitrary validity window, which the tests need for an expired certificate.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
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

export function makeCerts(o: CertsOptions): CertFiles {
  for (const n of o.names)
    if (!NAME.test(n))
      throw new UsageError(`certificate name "${n}": letters, digits, ".", "_", "-"`, '--names');
  const hosts = o.hosts?.length ? o.hosts : ['127.0.0.1', '::1', 'localhost'];
  const dir = o.dir;
  mkdirSync(dir, { recursive: true });
  const ca = join(dir, 'ca.pem');
  const caKey = join(dir, 'ca-key.pem');
  if (!o.reuseCa) {
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
      dir,
    );
  }
  // `openssl ca` keeps a tiny database; one per run, in a scratch folder.
  const db = join(dir, '.ca-db');
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
  const agents: CertFiles['agents'] = {};
  for (const name of o.names) {
    const key = join(dir, `${name}-key.pem`);
    const cert = join(dir, `${name}.pem`);
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
      dir,
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
      dir,
    );
    agents[name] = { cert, key };
  }
  return { ca, caKey, agents };
}
