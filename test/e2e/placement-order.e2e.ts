/**
 * Placement follows submission order even when a later job is accepted first (its
 * workflow task ran before the earlier job's): on PostgreSQL, the store the workers share.
 */
import { HostStore, JOINING_SECONDS, JOINING_WAIT } from '../../db/host-store';
import { JobStore } from '../../db/store';
import { fakeSpec } from '../../testing/fake-spec';

let store: JobStore;
let hosts: HostStore;
const queue = `placement-order-${process.pid}`;
let n = 0;

beforeAll(async () => {
  store = JobStore.connect(process.env.DRAFTSMAN_TEST_DATABASE_URL!);
  await store.migrate();
  hosts = new HostStore(store.pool, queue);
  await hosts.heartbeat({ id: `host-${process.pid}`, taskQueue: `${queue}-host`, capacity: 1, freeDiskMb: 100_000, minFreeDiskMb: 0 }, true);
});
afterAll(async () => {
  await store.pool.query(`DELETE FROM hosts WHERE shared_queue = $1`, [queue]);
  await store?.close();
});

/** A job as the API records it when it has started its workflow. */
async function submitted(): Promise<string> {
  const id = `${queue}-${n++}`;
  await store.recordQueued(id, `run-${id}`, 'https://example.com/r.git', 'a'.repeat(40), {}, { principal: 'test' }, queue);
  return id;
}

/** The worker's acceptance: the job joins the line. */
async function accepted(id: string): Promise<void> {
  await store.recordAccepted(id, `run-${id}`, fakeSpec());
  await hosts.enqueue(id);
}

test('a job accepted before one submitted earlier waits for it to join the line, and the earlier is placed first', async () => {
  const first = await submitted();
  const second = await submitted();
  await accepted(second);
  expect(await hosts.place(second)).toEqual({ wait: JOINING_WAIT });
  await accepted(first);
  expect(await hosts.place(first)).toMatchObject({ host: { taskQueue: `${queue}-host` } });
  // The earlier job holds the one room now: the later waits for a host, in line.
  expect(await hosts.place(second)).toMatchObject({ wait: expect.stringMatching(/^waiting for a host with room/) });
  await store.pool.query(`UPDATE jobs SET finished_at = now(), status = 'succeeded' WHERE id = $1`, [first]);
  expect(await hosts.place(second)).toMatchObject({ host: { taskQueue: `${queue}-host` } });
  await store.pool.query(`UPDATE jobs SET finished_at = now(), status = 'succeeded' WHERE id = $1`, [second]);
});

test(`a job submitted earlier and never accepted holds nobody back past ${JOINING_SECONDS} s`, async () => {
  const stuck = await submitted();
  const later = await submitted();
  await accepted(later);
  expect(await hosts.place(later)).toEqual({ wait: JOINING_WAIT });
  await store.pool.query(`UPDATE jobs SET created_at = now() - make_interval(secs => $2) WHERE id = $1`, [stuck, JOINING_SECONDS + 1]);
  expect(await hosts.place(later)).toMatchObject({ host: { taskQueue: `${queue}-host` } });
  await store.pool.query(`UPDATE jobs SET finished_at = now(), status = 'failed' WHERE id = ANY($1::text[])`, [[stuck, later]]);
});
