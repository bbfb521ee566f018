import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { createJobCa, hostCert, loadJobCa } from './job-ca';

/** Serves one request with `cert` on 127.0.0.1 and fetches it, trusting `ca` and naming `servername`. */
async function fetchWith(cert: { cert: string; key: string }, ca: string, servername: string): Promise<string> {
  const server = https.createServer(cert, (req, res) => res.end(`ok ${req.url}`));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    return await new Promise<string>((resolve, reject) => {
      const port = (server.address() as AddressInfo).port;
      https
        .get({ host: '127.0.0.1', port, path: '/x', ca, servername: servername === '127.0.0.1' ? undefined : servername, agent: false }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d));
          res.on('end', () => resolve(body));
        })
        .on('error', reject);
    });
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

describe('a job CA', () => {
  it('is a CA of its own that signs host certificates only, for about two weeks', async () => {
    const ca = await createJobCa('job-1', new Date('2026-12-06T00:00:00Z'));
    const cert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toContain('Draftsman job job-1');
    expect(new Date(cert.validTo).getTime() - new Date('2026-12-06T00:00:00Z').getTime()).toBe(15 * 86_400_000);
    expect(ca.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  });

  it.each(['localhost', '127.0.0.1'])('signs a certificate for %s that a client trusting the CA accepts', async (host) => {
    const ca = await createJobCa('job-1');
    const leaf = await hostCert(ca, host);
    expect(new X509Certificate(leaf.cert).checkIssued(new X509Certificate(ca.certPem))).toBe(true);
    expect(await fetchWith(leaf, ca.certPem, host)).toBe('ok /x');
  });

  it('is refused by a client that trusts another job CA (positive control: its own is accepted)', async () => {
    const [ca, other] = await Promise.all([createJobCa('job-1'), createJobCa('job-2')]);
    const leaf = await hostCert(ca, 'localhost');
    await expect(fetchWith(leaf, other.certPem, 'localhost')).rejects.toThrow(/certificate/);
    expect(await fetchWith(leaf, ca.certPem, 'localhost')).toBe('ok /x');
  });

  it('signs for a name only that name', async () => {
    const ca = await createJobCa('job-1');
    const leaf = await hostCert(ca, 'api.example.com');
    expect(new X509Certificate(leaf.cert).checkHost('api.example.com')).toBe('api.example.com');
    expect(new X509Certificate(leaf.cert).checkHost('evil.example.com')).toBeUndefined();
  });

  it('read back from its PEM files signs as before', async () => {
    const ca = await createJobCa('job-1');
    const again = await loadJobCa(ca.certPem, ca.keyPem);
    const leaf = await hostCert(again, 'localhost');
    expect(await fetchWith(leaf, ca.certPem, 'localhost')).toBe('ok /x');
  });
});
