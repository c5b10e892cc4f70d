/**
 * Node's TLS failures (ERR_SSL_* from OpenSSL alerts, certificate verification codes) as one typed error,
 * AUTH_FAILED, whose message says which side refused and why. Used where the link is dialled and where a
 * migration connection dies (with TLS 1.3 the server's refusal of a client certificate arrives after the
 * client's handshake has completed, as an alert on the first read).
 */
import { MigrationError } from '../errors.js';

export function tlsFailure(err: NodeJS.ErrnoException, peer: string): MigrationError | undefined {
  const code = err.code ?? '';
  const isTls =
    code.startsWith('ERR_SSL') ||
    code.startsWith('ERR_TLS') ||
    /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|DEPTH_ZERO/.test(code) ||
    /alert|wrong version number|packet length too long/i.test(err.message);
  if (!isTls) return undefined;
  let why = err.message;
  if (/certificate required/i.test(why))
    why = `${peer} requires a client certificate (give --tls-cert/--tls-key)`;
  else if (/unknown ca/i.test(why)) why = `${peer} does not trust our certificate's CA`;
  else if (/certificate expired/i.test(why)) why = `${peer} refused our certificate: it has expired`;
  else if (code === 'CERT_HAS_EXPIRED') why = `the certificate of ${peer} has expired`;
  else if (/UNABLE_TO_VERIFY|SELF_SIGNED|UNABLE_TO_GET/.test(code))
    why = `the certificate of ${peer} is not signed by our --tls-ca (${code})`;
  else if (/wrong version number|packet length too long/i.test(why))
    why = `${peer} does not speak TLS (is it running without --tls-cert?)`;
  return new MigrationError('AUTH_FAILED', `TLS authentication with ${peer} failed: ${why}`, { errno: code });
}
