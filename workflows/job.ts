import {
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  continueAsNew,
  defineQuery,
  defineSignal,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { BUDGET_GATE_SECONDS } from '../common/budget';
import type { LostHost } from '../common/hosts';
import type { AcceptedJob, JobView, ResolvedJobSpec } from '../common/job';
import { CANCEL_SIGNAL, FailureType, PRINCIPAL_MEMO, REQUEST_ID_MEMO, STATUS_QUERY } from '../common/names';
import {
  carriedView,
  errorMessage,
  failedStepMessage,
  isScheduleToStartTimeout,
  isStepTimeout,
  jobEnd,
  jobError,
  type Recorded,
  validationFailure,
} from './job-outcome';
import { ApprovalGate, JobClock } from './approval';
import { JobRun, type LoopResume } from './job-run';
import { BOOKKEEPING, bookkeeping, moveJob, placeWhenRoom, warmPlacement } from './job-placement';
import { JobSteps, onHost } from './job-steps';

export { wakeSignal } from './job-placement';

export const cancelSignal = defineSignal<[{ reason?: string }?]>(CANCEL_SIGNAL);
export const statusQuery = defineQuery<JobView>(STATUS_QUERY);

/**
 * Accepting the spec and starting the job touch only PostgreSQL (and the disk guard's
 * path), so they run as local activities: inside the workflow task, without a round
 * trip through the server. Activities that touch the Docker engine stay regular, so
 * that they can be routed to the engine's host.
 */
const local = proxyLocalActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '200ms', maximumInterval: '10s', nonRetryableErrorTypes: [FailureType.InvalidJobSpec] },
});

const DISK_RECHECK = '10s';

/**
 * Workflows started before consecutive steps ran as one activity (`runSteps`) replay
 * their clone, setup and validate steps one activity each.
 */
const BATCHED_STEPS_PATCH = 'batched-steps';
/**
 * Workflows from before it continued a loop as new even when a cancel or the job's
 * time limit had arrived at that boundary (the stop was lost); they replay as they ran.
 */
const STOP_AT_CONTINUE_PATCH = 'stop-at-continue-as-new';
/**
 * Workflows from before it went on to the next iteration after a loop step stopped at
 * the workspace cap (each later one failed the same way); they replay as they ran.
 */
const WORKSPACE_FULL_PATCH = 'workspace-full-ends-job';
/**
 * Workflows from before placement ran every activity on the workflow's own queue, where
 * any worker (of any engine) took it; they replay as they ran.
 */
const HOST_PLACEMENT_PATCH = 'host-placement';
/**
 * Runs from before the patches above were decided in the run's first activation. They
 * replay host placement and batched steps decided where they were then, right after a
 * local activity. A decision there can differ in replay: Core may complete a workflow
 * task with a local activity's marker before the workflow has seen its result (it does
 * when a query came with that task), and replay hands the result over one task earlier,
 * where the patch's marker is not in sight yet. That was a nondeterminism error that
 * kept a job from moving after its worker changed. Decided first, no patch follows a
 * local activity; a new patch belongs there too.
 */
const PATCHES_FIRST = 'patches-decided-first';
/**
 * Runs from before a job whose host was lost moved to another host: they fail there
 * saying the host is lost, as they did.
 */
const HOST_FAILOVER_PATCH = 'host-failover';
/**
 * Runs from before publish steps ran on a clean checkout of the commit with the stored
 * patch ran them on the loop's workspace; they replay as they ran.
 */
const PUBLISH_ON_APPROVED_PATCH = 'publish-on-approved';
/**
 * Every patch above, decided true at once; and, only under it, placement as a local
 * activity (job-placement.ts): runs from before it placed the job with an activity task,
 * and replay as they ran. Each patched() call records a marker and
 * (the SDK does it) a search attribute upsert: a history event and a visibility write
 * each, four of them per job before this. A run started since records this one alone,
 * and never asks for the others. A new patch is decided first as well, under a new
 * name that implies this one: `const current = patched(NEW) || patched(JOB_2026_12)`.
 */
const JOB_2026_12 = 'job-2026-12';

class StepFailedError extends Error {}

/**
 * One job: accept the spec, clone the commit, run setup steps, the bounded loop
 * and validation, each step in its own container, then clean up whatever happened.
 * The workflow id is the job id. A loop longer than the worker's iterations per run
 * continues as a new run (`resume` set) that picks up at the next iteration, so the
 * history of each run stays bounded.
 *
 * The run's shared state is a JobRun (view, display, stop); steps run through
 * JobSteps; how the job ended is pure mapping (job-outcome.ts).
 */
export async function jobWorkflow(input: unknown, resume?: LoopResume): Promise<JobView> {
  const run = new JobRun(workflowInfo(), resume);
  const current = patched(JOB_2026_12);
  const patchesFirst = current || patched(PATCHES_FIRST);
  const failover = current || (patchesFirst && patched(HOST_FAILOVER_PATCH));
  const onApproved = current || (patchesFirst && patched(PUBLISH_ON_APPROVED_PATCH));
  const localPlacement = current;
  const { view, jobId } = run;
  setHandler(statusQuery, () => view);
  setHandler(cancelSignal, (arg) => run.stop({ status: 'cancelled', reason: arg?.reason || 'cancelled by request' }));

  let accepted: AcceptedJob;
  try {
    const { [PRINCIPAL_MEMO]: principal, [REQUEST_ID_MEMO]: requestId } = workflowInfo().memo ?? {};
    accepted =
      resume?.accepted ??
      (await local.acceptJob({
        jobId,
        runId: workflowInfo().firstExecutionRunId,
        spec: input,
        ...(typeof principal === 'string' ? { principal } : {}),
        ...(typeof requestId === 'string' ? { requestId } : {}),
      }));
  } catch (err) {
    run.show('failed', 'the spec was refused');
    view.error = errorMessage(err);
    view.finishedAt = new Date().toISOString();
    throw err;
  }
  const spec: ResolvedJobSpec = accepted.spec;
  run.identify(spec, !resume);
  // The job's host: chosen once, among the hosts with room, carried to later runs; every
  // activity that touches its workspace goes there.
  const warm = warmPlacement(spec, accepted.warmScope);
  let placement = resume
    ? (resume.placement ?? null)
    : patchesFirst || patched(HOST_PLACEMENT_PATCH)
      ? await placeWhenRoom(run, 1, [], warm, localPlacement)
      : null;
  let steps = new JobSteps(run, spec, resume?.seq ?? 0, placement, accepted.warmScope);

  // The job's time limit is enforced here rather than only as a server-side
  // execution timeout, so that cleanup below still runs when it fires.
  const clock = new JobClock(resume?.deadline ?? Date.now() + spec.timeouts.jobSeconds * 1000, () =>
    run.stop({ status: 'timed_out', reason: `job exceeded its ${spec.timeouts.jobSeconds} s time limit` }),
  );
  const gate = new ApprovalGate(run, clock);
  // A step frozen at the budget (onExceed approval) waits at a gate of its own.
  const budgetGate = (s: JobSteps) => (s.budgetGate = (over, step) => gate.budget(over, step, spec.approval?.timeoutSeconds ?? BUDGET_GATE_SECONDS));
  budgetGate(steps);

  let failure: unknown;
  /** Set when this run ends its share of the loop and the next run takes over. */
  let continueAt: number | null = null;
  /** Where this run's phases start: a continued loop, or (a first run, or a job moved to another host) the clone. */
  let from = resume;
  /** The hosts this run lost, not to be placed on again unless they came back. */
  const lost: LostHost[] = [];
  try {
    for (;;) {
      try {
        failure = null;
        continueAt = await run.body.run(() => phases(run, steps, gate, spec, accepted, { batched: patchesFirst, onApproved, current }, from));
      } catch (err) {
        failure = err;
      }
      // The job's host was lost under it: it runs again from the clone on another host, a new placement.
      if (!failover || !placement || run.ending || !isScheduleToStartTimeout(failure)) break;
      const moved = await moveJob(run, spec, placement, lost, warm, localPlacement);
      // Its end is recorded from the shared queue: the lost host takes nothing.
      placement = moved.to;
      if (!moved.to) {
        failure = moved.failure ?? failure;
        break;
      }
      steps = new JobSteps(run, spec, steps.seq, moved.to, accepted.warmScope);
      budgetGate(steps);
      gate.forPlacement(moved.to.placement);
      from = undefined;
    }
  } finally {
    clock.stop();
  }
  const end = jobEnd(failure, run.ending, isCancellation);
  let status = end.status;

  if (continueAt !== null && status === 'succeeded' && end.ending && (current || patched(STOP_AT_CONTINUE_PATCH))) {
    // Cancelled, or out of time, just as this run handed the loop on: the job ends here.
    status = end.ending.status;
    continueAt = null;
  }
  if (continueAt !== null && status === 'succeeded') {
    // Signals that arrive meanwhile are delivered to the next run by the server.
    return continueAs(input, {
      accepted,
      view: carriedView(view, accepted.iterationsPerRun),
      seq: steps.seq,
      nextIteration: continueAt,
      deadline: clock.deadline,
      placement,
    });
  }

  // The step that was running when the job was cancelled or timed out, if any.
  const interrupted = view.steps.find((s) => s.status === 'cancelled' || s.status === 'timed_out') ?? null;
  const error = jobError(status, end.ending, interrupted, failure);

  run.show(status, error ?? 'every step passed');
  if (error) view.error = error;
  delete view.waiting;
  // Cleanup runs whatever happened, and cannot itself be cancelled.
  const ended = {
    jobId,
    status,
    loop: view.loop,
    error,
    ...(spec.snapshot?.when === 'failed' ? { forgetKept: true } : {}),
    ...(status === 'cancelled' || status === 'timed_out'
      ? { stopped: { reason: error ?? null, step: interrupted ? `${interrupted.kind}-${interrupted.index}` : null } }
      : {}),
  };
  await CancellationScope.nonCancellable(async () => {
    if (!placement) return bookkeeping.endJob(ended);
    // On the job's host, which removes its containers and workspace. A host that is gone
    // takes nothing: the outcome is recorded from the shared queue, and the host's
    // janitor removes what is left when it is back.
    try {
      await proxyActivities<Activities>({ ...BOOKKEEPING, ...onHost(placement) }).endJob(ended);
    } catch (err) {
      if (!isScheduleToStartTimeout(err)) throw err;
      await bookkeeping.endJob(ended);
    }
  });
  view.finishedAt = new Date().toISOString();

  if (status === 'succeeded') return view;
  if (status === 'cancelled') throw new CancelledFailure(error);
  if (status === 'timed_out') {
    throw ApplicationFailure.nonRetryable(error ?? 'timed out', isStepTimeout(failure) ? FailureType.StepTimeout : FailureType.JobTimeout);
  }
  if (status === 'rejected') throw ApplicationFailure.nonRetryable(error ?? 'rejected', FailureType.JobRejected);
  throw ApplicationFailure.nonRetryable(error ?? 'job failed', FailureType.JobFailed);
}

/** Waits for the disk guard's go, then clones and runs the setup steps. */
async function prepare(run: JobRun, steps: JobSteps, spec: ResolvedJobSpec, batched: boolean): Promise<void> {
  // The disk guard may hold the job back; it stays queued, saying why, and asks again.
  for (;;) {
    const start = await local.startJob({ jobId: run.jobId, image: spec.image, ...(steps.placement ? { placed: true } : {}) });
    if (start.started) break;
    run.view.waiting = start.reason;
    run.show('queued', start.reason);
    await sleep(DISK_RECHECK);
  }
  delete run.view.waiting;
  run.view.startedAt = new Date().toISOString();
  // A job that starts from a kept workspace skips the clone (and, kept after the same setup, the setup too).
  // (A workspace kept after a loop step is for forks: no later job looks for it by its setup.)
  const lookup = spec.snapshot?.after === 'setup';
  if (lookup || spec.from)
    run.show('running', spec.from ? `restoring the workspace job ${spec.from.job} kept` : 'looking for a workspace kept after this setup');
  const warm = lookup || spec.from ? await steps.restoreWorkspace() : null;
  if (warm?.restored && lookup) return;
  if (batched || patched(BATCHED_STEPS_PATCH)) {
    const failed = (await steps.batch('setup', spec.setup, !warm?.restored, warm?.snapshotKey)).find((r) => r.status === 'failed');
    if (failed) throw new StepFailedError(failedStepMessage(failed));
    return;
  }
  run.show('running', 'cloning');
  const cloned = await steps.clone();
  if (cloned.status !== 'succeeded') throw new StepFailedError(failedStepMessage(cloned));
  for (const [i, command] of spec.setup.entries()) {
    const ran = await steps.command('setup', i, command);
    if (ran.status !== 'succeeded') throw new StepFailedError(failedStepMessage(ran));
  }
}

/**
 * The job's phases in its body scope: prepare (on a first run), the loop, the patch,
 * validation, publish; the approval gate before the phase the spec names. Returns the
 * iteration the next run continues at, or null at the end.
 */
async function phases(
  run: JobRun,
  steps: JobSteps,
  gate: ApprovalGate,
  spec: ResolvedJobSpec,
  accepted: AcceptedJob,
  { batched, onApproved, current }: { batched: boolean; onApproved: boolean; current: boolean },
  resume?: LoopResume,
): Promise<number | null> {
  if (!resume) await prepare(run, steps, spec, batched);
  // A continued run is past the loop's gate.
  if (spec.approval?.before === 'loop' && !resume) await gate.pass(spec.approval);
  const loop = run.view.loop;
  if (spec.loop && loop) {
    // A resumed job goes on after the loop step its workspace was kept at (startAt).
    const first = resume?.nextIteration ?? spec.loop.startAt ?? 1;
    for (let k = first; k <= spec.loop.maxIterations; k++) {
      loop.iterations = k;
      const ran = await steps.command('loop', k, spec.loop.command);
      if (ran.status === 'succeeded' && spec.snapshot?.after === `loop-${k}`) await steps.keepWorkspace(spec.snapshot.after);
      // A full workspace stays full: the job fails there rather than spend its iterations.
      if (ran.reason === 'workspace_full' && (current || patched(WORKSPACE_FULL_PATCH))) throw new StepFailedError(failedStepMessage(ran));
      const converged = (spec.loop.until ? await steps.command('until', k, spec.loop.until) : ran).status === 'succeeded';
      if (converged) {
        loop.converged = true;
        break;
      }
      const more = k < spec.loop.maxIterations;
      if (more && (k - first + 1 >= accepted.iterationsPerRun || workflowInfo().continueAsNewSuggested)) return k + 1;
    }
  }

  if (spec.loop) {
    run.view.patch = await steps.own.capturePatch({
      jobId: run.jobId,
      image: spec.image,
      timeoutSeconds: spec.timeouts.stepSeconds,
      maskRefs: steps.maskRefs,
      commit: spec.commit,
    });
  }

  if (spec.approval?.before === 'validate') await gate.pass(spec.approval);
  // Every validation runs, whatever the exit codes of the others.
  const validated: Recorded[] = [];
  if (batched || patched(BATCHED_STEPS_PATCH)) {
    validated.push(...(await steps.batch('validate', spec.validate, false)));
  } else {
    for (const [i, command] of spec.validate.entries()) validated.push(await steps.command('validate', i, command));
  }
  const failed = validationFailure(validated);
  if (failed) throw new StepFailedError(failed);

  if (spec.approval?.before === 'publish') await gate.pass(spec.approval);
  // Publish runs on what validation and the gate saw (the commit and the stored patch), never on the loop's workspace.
  if (onApproved && (spec.publish ?? []).length > 0) await steps.preparePublish(!!spec.loop);
  for (const [i, command] of (spec.publish ?? []).entries()) {
    const ran = await steps.command('publish', i, command);
    if (ran.status !== 'succeeded') throw new StepFailedError(failedStepMessage(ran));
  }
  return null;
}

// A function of its own so that the workflow's return type stays JobView.
async function continueAs(input: unknown, resume: LoopResume): Promise<never> {
  return continueAsNew<typeof jobWorkflow>(input, resume);
}
