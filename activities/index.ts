/**
 * Every activity, built from its dependencies by one factory per role; the worker
 * wires them once, and workflows import only the type.
 */
import { type ActivityDeps, shared } from './deps';
import { createGroupActivities } from './groups';
import { createJanitorActivities } from './janitor';
import { createJobActivities } from './jobs';
import { createPatchActivities } from './patch';
import { createStepActivities } from './steps';

export type { ActivityDeps } from './deps';
export type { CloneInput, StepInput, StepsInput } from './steps';

export function createActivities(deps: ActivityDeps) {
  const sh = shared(deps);
  return {
    ...createJobActivities(sh),
    ...createStepActivities(sh),
    ...createPatchActivities(sh),
    ...createGroupActivities(sh),
    ...createJanitorActivities(sh, deps.describeJob),
  };
}

export type Activities = ReturnType<typeof createActivities>;
