import { MemoryStepStore } from './memory-step-store';
import { stepStoreContract } from './step-store.contract';

let n = 0;
stepStoreContract('memory', () => {
  const store = new MemoryStepStore();
  return { steps: store, logs: store, newJob: async () => `memory-${n++}` };
});
