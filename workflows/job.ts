import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  ActivityCancellationType,
  continueAsNew,
  defineQuery,
  defineSignal,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import type { Activities } from '../activities';
import type { AcceptedJob, JobStatus, JobView, ResolvedJobSpec, StepKind, StepOutcome, StepView } from '../common/job';
import { CANCEL_SIGNAL, FailureType, SEARCH_ATTRIBUTES, STATUS_QUERY, stepTimeoutMessage } from '../common/names';

export const cancelSignal = defineSignal<[{ reason?: string }?]>(CANCEL_SIGNAL);
export const statusQuery = defineQuery<JobView>(STATUS_QUERY);

const bookkeeping = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '200ms', maximumInterval: '10s', nonRetryableErrorTypes: [FailureType.InvalidJobSpec] },
});

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

/** A lost worker is noticed within the heartbeat timeout and the step re-attached by the next one. */
const STEP_HEARTBEAT_TIMEOUT = '5s';
const DISK_RECHECK = '10s';
/** Room past the step's own limit for stopping its container and recording the outcome. */
const STEP_SLACK_SECONDS = 60;

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
/** The longest activity summary shown in the Web UI for a batch of steps. */
const SUMMARY_MAX = 600;

function stepActivities(stepSeconds: number, steps = 1) {
  return proxyActivities<Activities>({
    startToCloseTimeout: `${steps * stepSeconds + STEP_SLACK_SECONDS}s`,
    heartbeatTimeout: STEP_HEARTBEAT_TIMEOUT,
    // Wait for the activity to stop the container before the workflow moves on to cleanup.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '500ms', maximumInterval: '10s' },
  });
}

class StepFailedError extends Error {}

/**
 * What a long loop hands to its next run when it continues as new: the accepted
 * job, the live view so far (its loop steps trimmed), the step sequence, the next
 * iteration and the job's deadline, which stays absolute across runs.
 */
export interface LoopResume {
  accepted: AcceptedJob;
  view: JobView;
  seq: number;
  nextIteration: number;
  deadline: number;
}

/**
 * One job: accept the spec, clone the commit, run setup steps, the bounded loop
 * and validation, each step in its own container, then clean up whatever happened.
 * The workflow id is the job id. A loop longer than the worker's iterations per run
 * continues as a new run (`resume` set) that picks up at the next iteration, so the
 * history of each run stays bounded.
 */
export async function jobWorkflow(input: unknown, resume?: LoopResume): Promise<JobView> {
  const info = workflowInfo();
  const jobId = info.workflowId;
  const view: JobView = resume?.view ?? {
    id: jobId,
    status: 'queued',
    repo: null,
    commit: null,
    createdAt: info.startTime.toISOString(),
    startedAt: null,
    finishedAt: null,
    steps: [],
    loop: null,
  };
  setHandler(statusQuery, () => view);

  /**
   * What the Web UI shows: the status and the job's repo and commit as search
   * attributes, the phase in the current details. Each upsert is a history event and
   * a visibility write, so attributes wait for the next status shown and go in one
   * upsert: a job that starts at once is shown running with its repo and commit in one.
   */
  let shownStatus: JobStatus | null = null;
  let pendingAttributes: SearchAttributeUpdatePair[] = [];
  const show = (status: JobStatus, details: string) => {
    if (status !== shownStatus || pendingAttributes.length > 0) {
      upsertSearchAttributes([...pendingAttributes, { key: SEARCH_ATTRIBUTES.status, value: status }]);
      pendingAttributes = [];
      shownStatus = status;
    }
    view.status = status;
    setCurrentDetails(`**${status}** · ${details}`);
  };
  setCurrentDetails(resume ? `**running** · loop · continuing at iteration ${resume.nextIteration}` : '**queued** · waiting for a worker');

  // Set by the cancel signal or the job timer; read after the body scope unwinds.
  const ending: { by: { status: 'cancelled' | 'timed_out'; reason: string } | null } = { by: null };
  const body = new CancellationScope();
  setHandler(cancelSignal, (arg) => {
    if (ending.by || view.finishedAt) return; // a second cancel is harmless
    ending.by = { status: 'cancelled', reason: arg?.reason || 'cancelled by request' };
    body.cancel();
  });

  let accepted: AcceptedJob;
  try {
    accepted = resume?.accepted ?? (await local.acceptJob({ jobId, runId: info.firstExecutionRunId, spec: input }));
  } catch (err) {
    show('failed', 'the spec was refused');
    view.error = errorMessage(err);
    view.finishedAt = new Date().toISOString();
    throw err;
  }
  const spec: ResolvedJobSpec = accepted.spec;
  // Also on a continued run, so that every run of the job is found by repo and commit.
  pendingAttributes = [
    { key: SEARCH_ATTRIBUTES.repo, value: spec.repo },
    { key: SEARCH_ATTRIBUTES.commit, value: spec.commit },
  ];
  if (!resume) {
    view.repo = spec.repo;
    view.commit = spec.commit;
    view.loop = spec.loop ? { iterations: 0, converged: false } : null;
  }

  const steps = stepActivities(spec.timeouts.stepSeconds);
  // References only: the values are resolved and masked inside the activities.
  const maskRefs = [...Object.values(spec.secrets ?? {}), ...(spec.gitTokenSecret ? [spec.gitTokenSecret] : [])];
  let seq = resume?.seq ?? 0;
  /** Set when this run ends its share of the loop and the next run takes over. */
  let continueAt: number | null = null;

  /** Runs one step in its own activity; returns its view once it ended (succeeded or failed). */
  async function step(kind: StepKind, index: number, run: (seq: number) => Promise<Recorded>): Promise<Recorded> {
    const s: StepView = { kind, index, status: 'running', exitCode: null, startedAt: null, finishedAt: null };
    view.steps.push(s);
    const iteration = view.loop && (kind === 'loop' || kind === 'until') ? ` · iteration ${index}/${spec.loop?.maxIterations}` : '';
    show('running', `${phaseOf(kind)}${iteration} · step ${kind}-${index}`);
    try {
      const r = await run(seq++);
      Object.assign(s, { status: statusOf(r) }, ranFor(r), r.reason ? { reason: r.reason } : {});
      return { ...r, kind, index, status: statusOf(r) };
    } catch (err) {
      s.status = isStepTimeout(err) ? 'timed_out' : isCancellation(err) ? 'cancelled' : 'failed';
      throw err;
    }
  }

  /** A command step's input: the job's image, environment and secret references. */
  const commandInput = (kind: StepKind, index: number, command: string, n: number) => ({
    jobId,
    seq: n,
    kind,
    index,
    image: spec.image,
    command,
    env: spec.env,
    secretEnv: spec.secrets,
    maskRefs,
    timeoutSeconds: spec.timeouts.stepSeconds,
  });
  const cloneInput = (n: number) => ({
    createdAt: view.createdAt,
    seq: n,
    repo: spec.repo,
    commit: spec.commit,
    image: spec.image,
    gitTokenSecret: spec.gitTokenSecret,
    maskRefs,
    timeoutSeconds: spec.timeouts.stepSeconds,
  });
  const cloneSummary = `clone ${spec.commit.slice(0, 12)} of ${spec.repo}`;

  const runCommand = (kind: StepKind, index: number, command: string) =>
    step(kind, index, (n) =>
      steps.runStep.executeWithOptions({ summary: `${kind}-${index}: ${oneLine(command)}` }, [commandInput(kind, index, command, n)]),
    );

  /**
   * Runs the clone (when `withClone`) and the commands of one phase in one activity,
   * then shows each step's outcome. A step that timed out or was cancelled ends the
   * phase as it would have ended the step's own activity.
   */
  async function runBatch(kind: 'setup' | 'validate', commands: readonly string[], withClone: boolean): Promise<Recorded[]> {
    const names = [...(withClone ? ['clone-0'] : []), ...commands.map((_, i) => `${kind}-${i}`)];
    if (names.length === 0) return [];
    show('running', `${withClone ? 'cloning, then ' : ''}${kind} · steps ${names[0]}${names.length > 1 ? ` to ${names.at(-1)}` : ''}`);
    const first = seq;
    const summary = [
      ...(withClone ? [cloneSummary] : []),
      ...commands.map((c, i) => `${kind}-${i}: ${oneLine(c)}`),
    ].join(' · ');
    const results = await stepActivities(spec.timeouts.stepSeconds, names.length).runSteps.executeWithOptions(
      { summary: summary.length > SUMMARY_MAX ? `${summary.slice(0, SUMMARY_MAX - 3)}...` : summary },
      [{
        jobId,
        clone: withClone ? cloneInput(first) : undefined,
        steps: commands.map((command, i) => commandInput(kind, i, command, first + (withClone ? 1 : 0) + i)),
        keepGoing: kind === 'validate',
      }],
    );
    seq = first + results.length;
    for (const r of results) {
      const ended = r.status === 'succeeded' || r.status === 'failed';
      view.steps.push({
        kind: r.kind,
        index: r.index,
        status: statusOf(r),
        ...ranFor(r),
        // Histories from before one outcome type carry -1 for "no exit code".
        exitCode: ended && r.exitCode !== -1 ? r.exitCode : null,
        ...(r.reason ? { reason: r.reason } : {}),
      });
    }
    const last = results.at(-1);
    if (last?.status === 'timed_out') {
      throw ApplicationFailure.nonRetryable(stepTimeoutMessage(`${last.kind}-${last.index}`, spec.timeouts.stepSeconds), FailureType.StepTimeout);
    }
    if (last?.status === 'cancelled') throw new CancelledFailure(`step ${last.kind}-${last.index} cancelled`);
    const stoppedAtFailure = kind === 'setup' && last?.status === 'failed';
    // Fewer results, and no step failed: the activity was cancelled between two steps.
    if (results.length < names.length && !stoppedAtFailure) throw new CancelledFailure(`${kind} cancelled`);
    return results;
  }

  async function prepare(): Promise<void> {
    // The disk guard may hold the job back; it stays queued, saying why, and asks again.
    for (;;) {
      const start = await local.startJob({ jobId, image: spec.image });
      if (start.started) break;
      view.waiting = start.reason;
      show('queued', start.reason);
      await sleep(DISK_RECHECK);
    }
    delete view.waiting;
    view.startedAt = new Date().toISOString();
    if (patched(BATCHED_STEPS_PATCH)) {
      const failed = (await runBatch('setup', spec.setup, true)).find((r) => r.status === 'failed');
      if (failed) throw new StepFailedError(failedStepMessage(failed));
      return;
    }
    show('running', 'cloning');
    const cloned = await step('clone', 0, (n) =>
      steps.cloneRepository.executeWithOptions({ summary: cloneSummary }, [{ jobId, ...cloneInput(n) }]),
    );
    if (cloned.status !== 'succeeded') throw new StepFailedError(failedStepMessage(cloned));

    for (const [i, command] of spec.setup.entries()) {
      const ran = await runCommand('setup', i, command);
      if (ran.status !== 'succeeded') throw new StepFailedError(failedStepMessage(ran));
    }
  }

  async function phases(): Promise<void> {
    if (!resume) await prepare();

    if (spec.loop && view.loop) {
      const first = resume?.nextIteration ?? 1;
      for (let k = first; k <= spec.loop.maxIterations; k++) {
        view.loop.iterations = k;
        const ran = await runCommand('loop', k, spec.loop.command);
        const converged = (spec.loop.until ? await runCommand('until', k, spec.loop.until) : ran).status === 'succeeded';
        if (converged) {
          view.loop.converged = true;
          break;
        }
        const more = k < spec.loop.maxIterations;
        if (more && (k - first + 1 >= accepted.iterationsPerRun || workflowInfo().continueAsNewSuggested)) {
          continueAt = k + 1;
          return;
        }
      }
    }

    if (spec.loop) {
      const patch = await steps.capturePatch({ jobId, image: spec.image, timeoutSeconds: spec.timeouts.stepSeconds });
      view.patch = patch;
    }

    // Every validation runs, whatever the exit codes of the others.
    const validated: Recorded[] = [];
    if (patched(BATCHED_STEPS_PATCH)) {
      validated.push(...(await runBatch('validate', spec.validate, false)));
    } else {
      for (const [i, command] of spec.validate.entries()) validated.push(await runCommand('validate', i, command));
    }
    const failedValidations = validated
      .filter((v) => statusOf(v) !== 'succeeded')
      .map((v) => `validate-${v.index} (${v.reason ? v.reason : `${v.oomKilled ? 'OOM-killed, ' : ''}exit ${v.exitCode}`})`);
    if (failedValidations.length > 0) throw new StepFailedError(`failed: ${failedValidations.join(', ')}`);
  }

  // The job's time limit is enforced here rather than only as a server-side
  // execution timeout, so that cleanup below still runs when it fires.
  const deadline = resume?.deadline ?? Date.now() + spec.timeouts.jobSeconds * 1000;
  const jobTimer = new CancellationScope();
  void jobTimer
    .run(() => sleep(Math.max(0, deadline - Date.now())))
    .then(() => {
      if (ending.by) return;
      ending.by = { status: 'timed_out', reason: `job exceeded its ${spec.timeouts.jobSeconds} s time limit` };
      body.cancel();
    })
    .catch(() => undefined);

  let status: JobStatus = 'succeeded';
  let failure: unknown = null;
  try {
    await body.run(phases);
  } catch (err) {
    failure = err;
    if (ending.by) {
      status = ending.by.status;
    } else if (isCancellation(err)) {
      // Temporal's own cancellation request on the workflow.
      ending.by = { status: 'cancelled', reason: 'workflow cancellation requested' };
      status = 'cancelled';
    } else if (isStepTimeout(err)) {
      status = 'timed_out';
    } else {
      status = 'failed';
    }
  } finally {
    jobTimer.cancel();
  }

  if (continueAt !== null && status === 'succeeded' && ending.by && patched(STOP_AT_CONTINUE_PATCH)) {
    // Cancelled, or out of time, just as this run handed the loop on: the job ends here.
    status = ending.by.status;
    continueAt = null;
  }
  if (continueAt !== null && status === 'succeeded') {
    // Signals that arrive meanwhile are delivered to the next run by the server.
    // The live view carries the loop steps of this run only (at most two an iteration),
    // so that what is carried stays bounded too.
    const earlier = view.steps.filter((st) => st.kind === 'loop' || st.kind === 'until');
    const dropped = earlier.slice(0, Math.max(0, earlier.length - 2 * accepted.iterationsPerRun));
    const carried: JobView = {
      ...view,
      steps: view.steps.filter((st) => !dropped.includes(st)),
      stepsOmitted: (view.stepsOmitted ?? 0) + dropped.length,
    };
    return continueAs(input, { accepted, view: carried, seq, nextIteration: continueAt, deadline });
  }

  // The step that was running when the job was cancelled or timed out, if any.
  const interrupted = view.steps.find((s) => s.status === 'cancelled' || s.status === 'timed_out') ?? null;
  const error =
    status === 'succeeded'
      ? undefined
      : ending.by
        ? `${ending.by.reason}${interrupted ? ` (during ${interrupted.kind}-${interrupted.index})` : ''}`
        : errorMessage(failure);

  show(status, error ?? 'every step passed');
  if (error) view.error = error;
  delete view.waiting;
  // Cleanup runs whatever happened, and cannot itself be cancelled.
  await CancellationScope.nonCancellable(() =>
    bookkeeping.endJob({
      jobId,
      status,
      loop: view.loop,
      error,
      ...(status === 'cancelled' || status === 'timed_out'
        ? { stopped: { reason: error ?? null, step: interrupted ? `${interrupted.kind}-${interrupted.index}` : null } }
        : {}),
    }),
  );
  view.finishedAt = new Date().toISOString();

  if (status === 'succeeded') return view;
  if (status === 'cancelled') throw new CancelledFailure(error);
  if (status === 'timed_out') {
    throw ApplicationFailure.nonRetryable(error ?? 'timed out', isStepTimeout(failure) ? FailureType.StepTimeout : FailureType.JobTimeout);
  }
  throw ApplicationFailure.nonRetryable(error ?? 'job failed', FailureType.JobFailed);
}

// A function of its own so that the workflow's return type stays JobView.
async function continueAs(input: unknown, resume: LoopResume): Promise<never> {
  return continueAsNew<typeof jobWorkflow>(input, resume);
}

/**
 * A step's end as an activity reported it: the one outcome type, or, in histories
 * from before it, a result without a status whose exit code -1 meant "none".
 */
type Recorded = Omit<StepOutcome, 'status'> & { status?: StepOutcome['status'] };

function statusOf(r: Recorded): StepOutcome['status'] {
  return r.status ?? (r.exitCode === 0 ? 'succeeded' : 'failed');
}

/** What a step's view shows of its result: exit, times, duration, OOM kill. */
function ranFor(r: Recorded): Pick<StepView, 'exitCode' | 'startedAt' | 'finishedAt' | 'durationMs' | 'oomKilled'> {
  return {
    exitCode: r.exitCode,
    startedAt: r.startedAt,
    finishedAt: r.finishedAt,
    durationMs: r.startedAt && r.finishedAt ? Date.parse(r.finishedAt) - Date.parse(r.startedAt) : null,
    oomKilled: r.oomKilled,
  };
}

function phaseOf(kind: StepKind): string {
  return kind === 'until' ? 'loop' : kind;
}

function oneLine(command: string): string {
  const line = command.replace(/\s+/g, ' ').trim();
  return line.length > 80 ? `${line.slice(0, 77)}...` : line;
}

function isStepTimeout(err: unknown): boolean {
  // From a step's own activity, or raised here for a step of a batch.
  const failure = err instanceof ActivityFailure ? err.cause : err;
  return failure instanceof ApplicationFailure && failure.type === FailureType.StepTimeout;
}

function failedStepMessage({ kind, index, exitCode, oomKilled, reason }: Recorded): string {
  const name = kind === 'clone' ? 'clone' : `${kind}-${index}`;
  if (reason === 'container_lost') return `${name} failed: its container was lost while it ran (it is not run again)`;
  if (kind === 'clone') return `clone failed with exit code ${exitCode}`;
  return `${name} failed with exit code ${exitCode}${oomKilled ? ' (OOM-killed: it exceeded its memory limit)' : ''}`;
}

function errorMessage(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  if (err instanceof Error) return err.message;
  return String(err);
}
