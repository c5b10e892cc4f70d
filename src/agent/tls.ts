/**
 * TLS with mutual authentication for the agent's one port (migration stream and control API). Every agent
 * holds a certificate signed by the cluster's CA (`livemig certs`); each side of every connection presents
 * its certificate and checks the peer's against that CA. A peer without a certificate, with one from another
 * CA, or with an expired one is refused during the handshake.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { type ConnectionOptions, createSecureContext, type TlsOptions } from 'node:tls';
import { UsageError } from '../errors.js';

/** PEM material of one agent: its certificate and key, and the CA that signs every peer it trusts. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

/** Reads `--tls-cert --tls-key --tls-ca`: all three or none. */
export function loadTls(files: { cert?: string; key?: string; ca?: string }): TlsMaterial | undefined {
  const given = [files.cert, files.key, files.ca].filter((f) => f !== undefined).length;
  if (given === 0) return undefined;
  if (given !== 3) {
    throw new UsageError(
      'TLS needs all three of --tls-cert FILE --tls-key FILE --tls-ca FILE (PEM; `livemig certs` makes them)',
      '--tls-cert',
    );
  }
  const read = (file: string, flag: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new UsageError(`${flag} ${file}: ${(err as Error).message}`, flag);
    }
  };
  const material = {
    cert: read(files.cert!, '--tls-cert'),
    key: read(files.key!, '--tls-key'),
    ca: read(files.ca!, '--tls-ca'),
  };
  checkTlsMaterial(material, { cert: files.cert!, key: files.key!, ca: files.ca! });
  return material;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Checks the three files at start, so a wrong file is one line naming it and what is wrong (not PEM, not a key, a key
 * that does not match the certificate, a CA file with no certificate), instead of a failed start, or an agent that
 * starts and then refuses every peer.
 */
export function checkTlsMaterial(t: TlsMaterial, files: { cert: string; key: string; ca: string }): void {
  const hint = '(PEM; `livemig certs` makes a matching set)';
  const certs = (buf: Buffer, flag: string, file: string): X509Certificate[] => {
    const blocks = buf.toString('latin1').match(PEM_CERT) ?? [];
    if (blocks.length === 0)
      throw new UsageError(
        `${flag} ${file}: no PEM certificate in it (-----BEGIN CERTIFICATE-----) ${hint}`,
        flag,
      );
    return blocks.map((b) => {
      try {
        return new X509Certificate(b);
      } catch (err) {
        throw new UsageError(
          `${flag} ${file}: a certificate in it cannot be read: ${(err as Error).message} ${hint}`,
          flag,
        );
      }
    });
  };
  const chain = certs(t.cert, '--tls-cert', files.cert);
  const cert = chain[0];
  let key: KeyObject;
  try {
    key = createPrivateKey(t.key);
  } catch (err) {
    const why = /passphrase|encrypted/i.test((err as Error).message)
      ? 'an encrypted key; give an unencrypted one'
      : `not a PEM private key (${(err as Error).message})`;
    throw new UsageError(`--tls-key ${files.key}: ${why} ${hint}`, '--tls-key');
  }
  if (!cert!.checkPrivateKey(key)) {
    throw new UsageError(
      `--tls-key ${files.key} does not match the certificate in --tls-cert ${files.cert}: give the key made with it ${hint}`,
      '--tls-key',
    );
  }
  const cas = certs(t.ca, '--tls-ca', files.ca);
  // Peers check this certificate against the same cluster CA: one that --tls-ca did not sign (directly or through
  // an intermediate in either file) would be refused by every peer.
  const issuers = [...cas, ...chain.slice(1)];
  if (!issuers.some((ca) => cert!.checkIssued(ca) && cert!.verify(ca.publicKey))) {
    throw new UsageError(
      `--tls-cert ${files.cert} is not signed by the CA in --tls-ca ${files.ca}: give the CA that made it ${hint}`,
      '--tls-ca',
    );
  }
  const now = Date.now();
  if (Date.parse(cert!.validTo) < now || Date.parse(cert!.validFrom) > now) {
    throw new UsageError(
      `--tls-cert ${files.cert} is valid only from ${cert!.validFrom} to ${cert!.validTo}: make a new one ` +
        '(livemig certs --reuse-ca --names …)',
      '--tls-cert',
    );
  }
  try {
    createSecureContext({ cert: t.cert, key: t.key, ca: t.ca });
  } catch (err) {
    throw new UsageError(
      `--tls-cert/--tls-key/--tls-ca: refused by TLS: ${(err as Error).message} ${hint}`,
      '--tls-cert',
    );
  }
}

/** Server side: a client certificate signed by our CA is requested; Agent refuses peers without one. */
export function serverTlsOptions(t: TlsMaterial): TlsOptions {
  return {
    cert: t.cert,
    key: t.key,
    ca: t.ca,
    requestCert: true,
    // The agent checks `authorized` itself after the handshake and refuses with a clear AUTH_FAILED
    // (a handshake aborted by Node is only a reset at the peer). Nothing reaches the API or the
    // migration receiver before that check.
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
    handshakeTimeout: 10_000,
  };
}

/** Client side: present our certificate, and check the agent's against our CA and the name we dialled. */
export function clientTlsOptions(t: TlsMaterial, host: string): ConnectionOptions {
  return {
    cert: t.cert,
    key: t.key,
    ca: t.ca,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    // SNI must not be an IP address; the identity check still matches IP SANs.
    ...(isIP(host) ? {} : { servername: host }),
  };
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\./.test(h) || h === '::ffff:127.0.0.1';
}

/**
 * A guest's whole memory crosses this port: outside loopback, plain TCP would hand it (and the control API) to
 * anyone on the network. Refuse unless the operator says so.
 */
export function checkListenSecurity(host: string, tls: boolean, insecure: boolean): void {
  if (tls || insecure || isLoopback(host)) return;
  throw new UsageError(
    `refusing to listen on ${host} without TLS: guests' memory and the control API would be readable and ` +
      'writable by anyone on that network. Give --tls-cert, --tls-key and --tls-ca (make them with ' +
      '`livemig certs`), or --insecure to accept the risk on a trusted, isolated network.',
    '--listen',
  );
}

export { tlsFailure } from '../migration/tls-error.js';
