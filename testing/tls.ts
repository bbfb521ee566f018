/**
 * A server certificate of its own CA for a fixture on the host's loopback (an HTTPS
 * forge, a model provider): self-signed, ECDSA P-256, for one IP address, a day long.
 * The certificate is also the CA a client or the egress proxy trusts for it.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface FixtureCert {
  key: Buffer;
  cert: Buffer;
  /** The certificate's file: what DRAFTSMAN_EGRESS_CA_BUNDLE or a client's CA option names. */
  certPath: string;
}

export function fixtureCert(dir: string, ip: string): FixtureCert {
  const keyPath = path.join(dir, 'key.pem');
  const certPath = path.join(dir, 'ca.pem');
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1'],
      ...['-subj', `/CN=${ip}`, '-addext', `subjectAltName=IP:${ip}`, '-keyout', keyPath, '-out', certPath],
    ],
    { stdio: 'ignore' },
  );
  return { key: fs.readFileSync(keyPath), cert: fs.readFileSync(certPath), certPath };
}
