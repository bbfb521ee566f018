/**
 * A job's own certificate authority: made by the egress service when it starts to serve
 * the job, its key kept on the worker's host only (in memory, and in a root-only file so
 * that a restarted service serves the job's steps with the same CA), gone with the job.
 * The proxy presents a certificate it signs for each host whose TLS it terminates; the
 * job's steps trust the CA's certificate and nothing else of it.
 *
 * ECDSA P-256 with SHA-256 through Node's WebCrypto: a CA and a host's certificate take
 * a millisecond or two each.
 */
// The certificate library's dependency injection reads decorators' metadata: this polyfills it.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import net from 'node:net';
import * as x509 from '@peculiar/x509';

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;
const crypto = webcrypto;
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
/** The library's types name the DOM's WebCrypto, which this project's types do not include: Node's is the same API. */
const provider = webcrypto as never;
/** Long enough for the longest job (a week) and its approval wait (a week more); the clock of a step may lag. */
const VALID_MS = 15 * 86_400_000;
const SKEW_MS = 3_600_000;

export interface JobCa {
  /** The CA's certificate, PEM: what the job's steps trust. */
  certPem: string;
  /** Its private key, PKCS #8 PEM: never leaves the egress service's host. */
  keyPem: string;
  cert: x509.X509Certificate;
  key: CryptoKey;
}

/** A host's certificate and its key, PEM, for tls.createSecureContext. */
export interface HostCert {
  cert: string;
  key: string;
}

export async function createJobCa(jobId: string, now = new Date()): Promise<JobCa> {
  const keys = (await crypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serial(),
      name: [{ CN: [`Draftsman job ${jobId.slice(0, 40)}`] }, { O: ['Draftsman egress proxy'] }],
      notBefore: new Date(now.getTime() - SKEW_MS),
      notAfter: new Date(now.getTime() + VALID_MS),
      signingAlgorithm: SIGNING,
      keys: keys as never,
      extensions: [
        // A CA that signs host certificates only, none of another CA.
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as never, false, provider),
      ],
    },
    provider,
  );
  return { certPem: cert.toString('pem'), keyPem: await keyToPem(keys.privateKey), cert, key: keys.privateKey };
}

/** A CA read back from its PEM files (a restarted egress service). */
export async function loadJobCa(certPem: string, keyPem: string): Promise<JobCa> {
  const der = Buffer.from(keyPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const key = await crypto.subtle.importKey('pkcs8', der, ALGORITHM, true, ['sign']);
  return { certPem, keyPem, cert: new x509.X509Certificate(certPem), key };
}

/** A server certificate for `host` (a name or an IP address), signed by the job's CA. */
export async function hostCert(ca: JobCa, host: string, now = new Date()): Promise<HostCert> {
  const keys = (await crypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
  const ip = net.isIP(host) !== 0;
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serial(),
      subject: [{ CN: [host] }],
      issuer: ca.cert.subject,
      notBefore: new Date(now.getTime() - SKEW_MS),
      notAfter: ca.cert.notAfter,
      signingAlgorithm: SIGNING,
      publicKey: keys.publicKey as never,
      signingKey: ca.key as never,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
        new x509.SubjectAlternativeNameExtension([{ type: ip ? 'ip' : 'dns', value: host }], false),
        await x509.AuthorityKeyIdentifierExtension.create(ca.cert, false, provider),
      ],
    },
    provider,
  );
  return { cert: cert.toString('pem'), key: await keyToPem(keys.privateKey) };
}

async function keyToPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await crypto.subtle.exportKey('pkcs8', key));
  return `-----BEGIN PRIVATE KEY-----\n${der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n`;
}

/** A positive serial number of 16 random bytes (RFC 5280 4.1.2.2: at most 20 octets). */
function serial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = bytes[0]! & 0x7f;
  return Buffer.from(bytes).toString('hex');
}
