/**
 * The ledger on the real stack: CPU time from the engine's cgroup accounting of each step
 * container (a step that burns 2 CPU-seconds shows 2, a sleeping one next to none), the
 * bytes a step downloads through the egress proxy, and GET /v1/usage summing the same.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JobView } from '../../common/job';
import { GIT_HOST, type GitFixture, startGitFixture } from '../../testing/git-fixture';
import { gitException, startTestStack, TEST_TOKENS, type TestStack } from '../../testing/stack';

/** What the download server sends: 5 MB, an exact count. */
const N = 5_000_000;
let stack: TestStack;
let repo: GitFixture;
let server: http.Server;
let target = '';

beforeAll(async () => {
  server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': N });
    res.end(Buffer.alloc(N, 0x61));
  });
  await new Promise<void>((r) => server.listen(0, GIT_HOST, () => r()));
  target = `${GIT_HOST}:${(server.address() as AddressInfo).port}`;
  [stack, repo] = await Promise.all([startTestStack({ DRAFTSMAN_EGRESS_EXCEPTIONS: `${gitException()},${target}` }), startGitFixture(1)]);
});
afterAll(async () => {
  await Promise.allSettled([stack?.stop(), repo?.stop(), new Promise((r) => server?.close(r))]);
});

/** Burns `seconds` of its own CPU time (user and system), however long that takes on a busy machine. */
const burn = (seconds: number) => `perl -e 'while ((times)[0] + (times)[1] < ${seconds}) {}'`;

const ledgerOf = async (id: string) => (await stack.api<JobView>('GET', `/v1/jobs/${id}`)).body;

test('a step that burns 2 CPU-seconds has 2 in its ledger, within 10%; a step that sleeps has next to none; the job sums its steps', async () => {
  const run = `cpu-${process.pid}`;
  const id = await stack.submit({ repo: repo.url, commit: repo.head, labels: { run }, setup: [burn(2), 'sleep 1'] });
  expect((await stack.waitForEnd(id)).status).toBe('succeeded');
  const job = await ledgerOf(id);
  const [clone, burnt, slept] = job.steps;
  expect(burnt!.cpuSeconds).toBeGreaterThanOrEqual(1.8);
  expect(burnt!.cpuSeconds).toBeLessThanOrEqual(2.2);
  // The control: a second of wall time that used almost no CPU.
  expect(slept!.cpuSeconds).toBeLessThan(0.2);
  expect(slept!.durationMs).toBeGreaterThanOrEqual(1000);
  expect(burnt!.peakMemoryBytes).toBeGreaterThan(0);
  expect(job.ledger).toMatchObject({ steps: 3, workspaceBytes: null });
  const sum = [clone, burnt, slept].reduce((t, s) => t + s!.cpuSeconds!, 0);
  expect(job.ledger!.cpuSeconds).toBeCloseTo(sum, 3);
  expect(job.ledger!.peakMemoryBytes).toBe(Math.max(...job.steps.map((s) => s.peakMemoryBytes!)));
  expect(job.ledger!.wallSeconds).toBeGreaterThan(3);
  console.log(`ledger: a step burning 2 CPU-s measured ${burnt!.cpuSeconds} s; a 1 s sleep ${slept!.cpuSeconds} s; peak ${burnt!.peakMemoryBytes} bytes`);
  // What the engine counted is gone with the job: no cgroup of its steps is left.
  expect(await stack.runner.usage({ jobId: id, kind: 'setup', index: 0 })).toBeNull();
});

test('a step that downloads N bytes through the egress proxy has N in its ledger, within 1%; GET /v1/usage sums the ledgers', async () => {
  const run = `egress-${process.pid}`;
  const download = `perl -MHTTP::Tiny -e '$r = HTTP::Tiny->new->get("http://${target}/blob"); print length($r->{content}), "\\n"; exit($r->{success} ? 0 : 1)'`;
  const id = await stack.submit({ repo: repo.url, commit: repo.head, labels: { run }, egress: { allow: [gitException(), target] }, setup: [download] });
  expect((await stack.waitForEnd(id)).status).toBe('succeeded');
  // The step's own count, as the control that it got it all.
  const logs = await (await fetch(`${stack.apiUrl}/v1/jobs/${id}/logs?step=setup-0`, { headers: stack.authHeader })).text();
  expect(logs).toContain(`"text":"${N}"`);
  // The clone's bytes come through the proxy too: a few kB of the fixture repository.
  const downloaded = async () => (await ledgerOf(id)).ledger!.egressBytesIn;
  for (let i = 0; i < 50 && (await downloaded()) < N; i++) await new Promise((r) => setTimeout(r, 100));
  const bytesIn = await downloaded();
  expect(Math.abs(bytesIn - N) / N).toBeLessThan(0.01);
  console.log(`ledger: a download of ${N} bytes measured ${bytesIn} bytes in (the clone's included)`);

  // A second job of the same run, and the sum over the label matches the two ledgers.
  const other = await stack.submit({ repo: repo.url, commit: repo.head, labels: { run }, setup: [burn(0.5)] });
  expect((await stack.waitForEnd(other)).status).toBe('succeeded');
  const ledgers = [(await ledgerOf(id)).ledger!, (await ledgerOf(other)).ledger!];
  const usage = await stack.api<{ total: Record<string, number>; byPrincipal: { principal: string }[]; principal: string | null }>(
    'GET',
    `/v1/usage?label=${encodeURIComponent(`run=${run}`)}`,
  );
  expect(usage.status).toBe(200);
  expect(usage.body.principal).toBeNull(); // an admin's: everyone's
  const total = usage.body.total;
  expect(total.jobs).toBe(2);
  expect(total.steps).toBe(ledgers[0]!.steps + ledgers[1]!.steps);
  expect(total.cpuSeconds).toBeCloseTo(ledgers[0]!.cpuSeconds! + ledgers[1]!.cpuSeconds!, 3);
  expect(total.egressBytesIn).toBe(ledgers[0]!.egressBytesIn + ledgers[1]!.egressBytesIn);
  expect(total.egressBytesOut).toBe(ledgers[0]!.egressBytesOut + ledgers[1]!.egressBytesOut);
  expect(total.wallSeconds).toBeCloseTo(ledgers[0]!.wallSeconds! + ledgers[1]!.wallSeconds!, 1);
  expect(usage.body.byPrincipal).toEqual([expect.objectContaining({ principal: 'admin', jobs: 2 })]);

  // A reader sees its own usage (none here), and another's only with the admin scope.
  const reader = { authorization: `Bearer ${TEST_TOKENS.reader}` };
  const own = await stack.api<{ principal: string; total: { jobs: number } }>('GET', `/v1/usage?label=${encodeURIComponent(`run=${run}`)}`, undefined, reader);
  expect([own.status, own.body.principal, own.body.total.jobs]).toEqual([200, 'reader', 0]);
  const others = await stack.api<{ code: string; field: string }>('GET', '/v1/usage?principal=admin', undefined, reader);
  expect([others.status, others.body.field]).toEqual([403, 'principal']);
  const bad = await stack.api<{ field: string }>('GET', '/v1/usage?from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z');
  expect([bad.status, bad.body.field]).toEqual([400, 'from']);
});
