/** The step store's contract (db/step-store.contract.ts) on PostgreSQL: the same suite the memory store passes. */
import { JobStore } from '../../db/store';
import { stepStoreContract } from '../../db/step-store.contract';
import { fakeSpec } from '../../testing/fake-spec';

let store: JobStore;
let n = 0;

beforeAll(async () => {
  store = JobStore.connect(process.env.DRAFTSMAN_TEST_DATABASE_URL!);
  await store.migrate();
});
afterAll(async () => {
  await store?.close();
});

stepStoreContract('PostgreSQL', () => ({
  steps: store.steps,
  logs: store.logs,
  newJob: async () => {
    const id = `step-store-${process.pid}-${n++}`;
    await store.recordAccepted(id, `run-${id}`, fakeSpec());
    return id;
  },
}));
