/**
 * GET /v1/jobs: cursor pagination and filters, on rows in the real PostgreSQL (the
 * list reads the audit trail only, so the jobs here need no workflow).
 */
import { startTestStack, type TestStack } from '../../testing/stack';

let stack: TestStack;
const principal = `lister-${process.pid}`;
const repo = `https://list.invalid/${process.pid}.git`;
const commitA = 'a'.repeat(40);
const commitB = 'b'.repeat(40);

beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack.store.pool.query('DELETE FROM jobs WHERE principal = $1', [principal]);
  await stack?.stop();
});

let n = 0;
/** A job row made at `at` (SQL), for the principal of this file. */
async function insert(at: string, extra: { status?: string; commit?: string; repo?: string; labels?: Record<string, string> } = {}): Promise<string> {
  const id = `job-list-${process.pid}-${String(n++).padStart(3, '0')}`;
  await stack.store.pool.query(`INSERT INTO jobs (id, run_id, status, repo, commit, principal, spec, created_at) VALUES ($1, $1, $2, $3, $4, $5, $6, ${at})`, [
    id,
    extra.status ?? 'succeeded',
    extra.repo ?? repo,
    extra.commit ?? commitA,
    principal,
    JSON.stringify({ labels: extra.labels ?? {} }),
  ]);
  return id;
}

interface Page {
  jobs: { id: string; createdAt: string }[];
  nextCursor: string | null;
}

async function page(query: string): Promise<Page> {
  const res = await stack.api<Page>('GET', `/v1/jobs?principal=${principal}&${query}`);
  expect(res.status).toBe(200);
  return res.body;
}

async function all(query: string, limit: number): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const p: Page = await page(`${query}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
    ids.push(...p.jobs.map((j) => j.id));
    cursor = p.nextCursor;
    pages++;
  } while (cursor && pages < 100);
  return { ids, pages };
}

test('pages follow one another without a gap or a repeat, jobs created within one microsecond included, and end with a null cursor', async () => {
  const made: string[] = [];
  // Five at one instant (the id orders them), the rest a millisecond apart.
  for (let i = 0; i < 5; i++) made.push(await insert(`TIMESTAMPTZ '2026-01-01T00:00:00.123456Z'`));
  for (let i = 0; i < 20; i++) made.push(await insert(`TIMESTAMPTZ '2026-01-01T00:00:01Z' + ${i} * INTERVAL '1 millisecond'`));
  const expected = [...made.slice(5).reverse(), ...made.slice(0, 5).reverse()];
  const { ids, pages } = await all('createdBefore=2026-01-02T00:00:00Z', 7);
  expect(ids).toEqual(expected);
  expect(pages).toBe(4);
});

test('jobs created while a client pages show on a new first page, not in the pages it has yet to read', async () => {
  const base: string[] = [];
  for (let i = 0; i < 9; i++) base.push(await insert(`TIMESTAMPTZ '2026-02-01T00:00:00Z' + ${i} * INTERVAL '1 second'`));
  const window = 'createdAfter=2026-01-31T00:00:00Z&createdBefore=2026-02-02T00:00:00Z';
  const first = await page(`${window}&limit=4`);
  expect(first.jobs.map((j) => j.id)).toEqual(base.slice(5).reverse());
  // Three new jobs, newer than every one listed.
  const newer = [];
  for (let i = 0; i < 3; i++) newer.push(await insert(`TIMESTAMPTZ '2026-02-01T12:00:00Z' + ${i} * INTERVAL '1 second'`));
  const rest: string[] = [];
  let cursor = first.nextCursor;
  while (cursor) {
    const p = await page(`${window}&limit=4&cursor=${cursor}`);
    rest.push(...p.jobs.map((j) => j.id));
    cursor = p.nextCursor;
  }
  expect(rest).toEqual(base.slice(0, 5).reverse());
  expect((await page(`${window}&limit=3`)).jobs.map((j) => j.id)).toEqual(newer.reverse());
});

test.each([
  ['status', 'status=failed', (j: Row) => j.status === 'failed'],
  ['repo', `repo=${encodeURIComponent('https://list.invalid/other.git')}`, (j: Row) => j.repo === 'https://list.invalid/other.git'],
  ['commit', `commit=${commitB}`, (j: Row) => j.commit === commitB],
  ['created after', 'createdAfter=2026-03-01T00:00:02Z', (j: Row) => j.at > Date.parse('2026-03-01T00:00:02Z')],
  ['created before', 'createdBefore=2026-03-01T00:00:02Z', (j: Row) => j.at < Date.parse('2026-03-01T00:00:02Z')],
  ['label', 'label=pr=7', (j: Row) => j.labels?.pr === '7'],
])('the %s filter keeps exactly the jobs that match', async (_title, query, keep) => {
  const rows: Row[] = [
    { status: 'failed', repo, commit: commitA, at: Date.parse('2026-03-01T00:00:00Z'), labels: { pr: '7', team: 'x' } },
    { status: 'succeeded', repo: 'https://list.invalid/other.git', commit: commitA, at: Date.parse('2026-03-01T00:00:01Z') },
    { status: 'succeeded', repo, commit: commitB, at: Date.parse('2026-03-01T00:00:03Z') },
    { status: 'cancelled', repo, commit: commitA, at: Date.parse('2026-03-01T00:00:04Z'), labels: { pr: '8' } },
  ];
  const ids: string[] = [];
  for (const r of rows) ids.push(await insert(`TIMESTAMPTZ '${new Date(r.at).toISOString()}'`, r));
  // This file's other jobs match some filters too: only these four are looked at.
  const listed = (await page(`${query}&limit=200`)).jobs.map((j) => j.id);
  expect(listed.filter((id) => ids.includes(id))).toEqual(ids.filter((_, i) => keep(rows[i]!)).reverse());
  await stack.store.pool.query('DELETE FROM jobs WHERE id = ANY($1::text[])', [ids]);
});

interface Row {
  status: string;
  repo: string;
  commit: string;
  at: number;
  labels?: Record<string, string>;
}

test.each([
  ['a cursor this API did not make', 'cursor=bm9wZQ', 'cursor'],
  ['a short commit', 'commit=abc', 'commit'],
  ['a time without its offset', 'createdAfter=2026-01-01T00:00:00', 'createdAfter'],
  ['a label without its value', 'label=x', 'label'],
  ['an unknown filter', 'colour=red', 'colour'],
])('%s is a 400 naming the parameter', async (_title, query, field) => {
  const res = await stack.api<{ code: string; field: string }>('GET', `/v1/jobs?${query}`);
  expect(res.status).toBe(400);
  expect(res.body).toMatchObject({ code: 'invalid_query', field });
});
