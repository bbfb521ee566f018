/**
 * How the job workflow runs its steps: one step in its own activity (loop steps, and
 * every step of jobs started before batches), or the clone and a phase's commands in
 * one activity; each step's end goes into the job's view as it is reported.
 */
import { type ActivityOptions, ActivityCancellationType, ApplicationFailure, isCancellation, proxyActivities } from '@temporalio/workflow';
import { type BudgetLimits, budgetLimits, budgetMessage } from '../common/budget';
import { FailureType } from '../common/names';
import { bookkeeping } from './job-placement';
import type { Activities } from '../activities';
import { credentialPhase, jobSecretRefs, type KeepPoint, type Placement, type ResolvedJobSpec, type StepKind, type StepView } from '../common/job';
import { batchStepView, batchStop, clip, isStepTimeout, oneLine, phaseOf, type Recorded, ranFor, statusOf } from './job-outcome';
import type { JobRun } from './job-run';

/** A lost worker is noticed within the heartbeat timeout and the step re-attached by the next one. */
const STEP_HEARTBEAT_TIMEOUT = '5s';
/** Room past the step's own limit for stopping its container and recording the outcome. */
const STEP_SLACK_SECONDS = 60;

/**
 * Where a placed job's engine activities go: its host's own queue, where a step waits at
 * most the host's lost-after time for that host's worker to take it (a host that is gone
 * does not hold the job forever). Unplaced jobs (started before placement) use the
 * workflow's own queue.
 */
export function onHost(placement: Placement | null | undefined): Pick<ActivityOptions, 'taskQueue' | 'scheduleToStartTimeout'> {
  return placement ? { taskQueue: placement.taskQueue, scheduleToStartTimeout: `${placement.lostAfterSeconds}s` } : {};
}

export function stepActivities(stepSeconds: number, steps = 1, placement?: Placement | null) {
  return proxyActivities<Activities>({
    ...onHost(placement),
    startToCloseTimeout: `${steps * stepSeconds + STEP_SLACK_SECONDS}s`,
    heartbeatTimeout: STEP_HEARTBEAT_TIMEOUT,
    // Wait for the activity to stop the container before the workflow moves on to cleanup.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '500ms', maximumInterval: '10s' },
  });
}

/**
 * Tries of one of Draftsman's own activities (the patch, the publish checkout, keeping
 * and restoring workspaces) before its failure is the job's: they fail alike on every
 * try when the workspace is spoiled, and a job must not show `running` for its whole
 * time limit meanwhile. About a minute of tries with the backoff below.
 */
const OWN_ACTIVITY_ATTEMPTS = 10;

/** Draftsman's own activities on the job's host: as a step's, with bounded tries. */
export function ownActivities(stepSeconds: number, placement?: Placement | null) {
  return proxyActivities<Activities>({
    ...onHost(placement),
    startToCloseTimeout: `${stepSeconds + STEP_SLACK_SECONDS}s`,
    heartbeatTimeout: STEP_HEARTBEAT_TIMEOUT,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '500ms', maximumInterval: '10s', maximumAttempts: OWN_ACTIVITY_ATTEMPTS },
  });
}

export class JobSteps {
  /** The next step's position in the job, for ordering the audit trail; carried across runs. */
  seq: number;
  readonly activities: ReturnType<typeof stepActivities>;
  /** Draftsman's own activities (bounded tries). */
  readonly own: ReturnType<typeof ownActivities>;
  // References only: the values are resolved and masked inside the activities.
  /** Every secret reference of the job: their values are masked in output and keep files out of the patch. */
  readonly maskRefs: string[];
  readonly cloneSummary: string;

  constructor(
    private readonly run: JobRun,
    private readonly spec: ResolvedJobSpec,
    seq: number,
    readonly placement: Placement | null = null,
    /** Whose caches and kept workspaces the job uses (absent in jobs accepted before them). */
    private readonly warmScope?: string,
  ) {
    this.seq = seq;
    this.activities = stepActivities(spec.timeouts.stepSeconds, 1, placement);
    this.own = ownActivities(spec.timeouts.stepSeconds, placement);
    this.maskRefs = jobSecretRefs(spec);
    this.cloneSummary = `clone ${spec.commit.slice(0, 12)} of ${spec.repo}`;
  }

  /** Runs one step in its own activity; returns its end once it ended (succeeded or failed). */
  /** Set by the job: the gate a step frozen at the budget waits at; answers the limits a person raised, or throws when rejected. */
  budgetGate: ((over: NonNullable<Recorded['overBudget']>, step: string) => Promise<BudgetLimits>) | null = null;

  /**
   * A step that crossed the job's budget: recorded (event budget_exceeded, webhook
   * job.budget_exceeded). Stopped, the job fails naming the budget. Frozen (onExceed
   * approval), it waits at the gate: raised, the step is thawed and goes on (`resume`),
   * and the budget stays raised for the rest of the job; rejected, the job ends so.
   */
  async overBudget(r: Recorded, resume: () => Promise<Recorded>): Promise<Recorded> {
    const budget = this.spec.budget;
    if (r.reason !== 'budget_exceeded' || !r.overBudget || !budget) return r;
    const step = `${r.kind}-${r.index}`;
    await bookkeeping.recordBudgetExceeded({ jobId: this.run.jobId, step, ...r.overBudget, onExceed: budget.onExceed });
    if (!r.paused || !this.budgetGate) throw ApplicationFailure.nonRetryable(budgetMessage(r.overBudget, step), FailureType.JobFailed);
    const raised = await this.budgetGate(r.overBudget, step);
    // The spec is the run's accepted one: a raise is carried to later runs of the loop.
    this.spec.budget = { ...budget, ...raised, raised: true };
    return this.overBudget(await resume(), resume);
  }

  /** A step frozen at the budget, thawed after a raise and followed to its end (its view entry updated, no new one). */
  private async resumeStep(kind: StepKind, index: number, command: string, n: number): Promise<Recorded> {
    const view = [...this.run.view.steps].reverse().find((v) => v.kind === kind && v.index === index);
    if (view) view.status = 'running';
    this.run.show('running', `${phaseOf(kind)} · step ${kind}-${index} goes on under the raised budget`);
    const r = await this.activities.runStep.executeWithOptions({ summary: `${kind}-${index} (thawed): ${oneLine(command)}` }, [
      { ...this.commandInput(kind, index, command, n), resumed: true },
    ]);
    if (view) Object.assign(view, { status: statusOf(r) }, ranFor(r), r.reason ? { reason: r.reason } : {});
    return { ...r, kind, index, status: statusOf(r) };
  }

  async step(kind: StepKind, index: number, run: (seq: number) => Promise<Recorded>): Promise<Recorded> {
    const s: StepView = { kind, index, status: 'running', exitCode: null, startedAt: null, finishedAt: null };
    this.run.view.steps.push(s);
    const iteration = this.run.view.loop && (kind === 'loop' || kind === 'until') ? ` · iteration ${index}/${this.spec.loop?.maxIterations}` : '';
    this.run.show('running', `${phaseOf(kind)}${iteration} · step ${kind}-${index}`);
    try {
      const r = await run(this.seq++);
      Object.assign(s, { status: statusOf(r) }, ranFor(r), r.reason ? { reason: r.reason } : {});
      return { ...r, kind, index, status: statusOf(r) };
    } catch (err) {
      s.status = isStepTimeout(err) ? 'timed_out' : isCancellation(err) ? 'cancelled' : 'failed';
      throw err;
    }
  }

  /** A command step in its own activity. */
  async command(kind: StepKind, index: number, command: string): Promise<Recorded> {
    let seq = this.seq;
    const r = await this.step(kind, index, (n) => {
      seq = n;
      return this.activities.runStep.executeWithOptions({ summary: `${kind}-${index}: ${oneLine(command)}` }, [this.commandInput(kind, index, command, n)]);
    });
    return this.overBudget(r, () => this.resumeStep(kind, index, command, seq));
  }

  /** The clone in its own activity (jobs started before batches). */
  clone(): Promise<Recorded> {
    return this.step('clone', 0, (n) =>
      this.activities.cloneRepository.executeWithOptions({ summary: this.cloneSummary }, [{ jobId: this.run.jobId, ...this.cloneInput(n) }]),
    );
  }

  /**
   * Runs the clone (when `withClone`) and the commands of one phase in one activity,
   * then shows each step's outcome. A step that timed out or was cancelled ends the
   * phase as it would have ended the step's own activity.
   */
  async batch(kind: 'setup' | 'validate', commands: readonly string[], withClone: boolean, snapshotKey?: string): Promise<Recorded[]> {
    const names = [...(withClone ? ['clone-0'] : []), ...commands.map((_, i) => `${kind}-${i}`)];
    if (names.length === 0) return [];
    this.run.show('running', `${withClone ? 'cloning, then ' : ''}${kind} · steps ${names[0]}${names.length > 1 ? ` to ${names.at(-1)}` : ''}`);
    const first = this.seq;
    const summary = [...(withClone ? [this.cloneSummary] : []), ...commands.map((c, i) => `${kind}-${i}: ${oneLine(c)}`)].join(' · ');
    const results: Recorded[] = await stepActivities(this.spec.timeouts.stepSeconds, names.length, this.placement).runSteps.executeWithOptions(
      { summary: clip(summary) },
      [
        {
          jobId: this.run.jobId,
          clone: withClone ? this.cloneInput(first) : undefined,
          steps: commands.map((command, i) => this.commandInput(kind, i, command, first + (withClone ? 1 : 0) + i)),
          keepGoing: kind === 'validate',
          ...(kind === 'setup' ? this.warmInput(snapshotKey) : {}),
        },
      ],
    );
    this.seq = first + results.length;
    for (const r of results) this.run.view.steps.push(batchStepView(r));
    // A step that crossed the budget ended the batch: the job fails there, or (thawed after
    // a raise) the step goes on and the phase's other steps run one by one.
    const last = results.at(-1);
    if (last?.reason === 'budget_exceeded' && last.kind !== 'clone') {
      const i = last.index;
      results[results.length - 1] = await this.overBudget(last, () => this.resumeStep(kind, i, commands[i]!, first + (withClone ? 1 : 0) + i));
      for (let j = i + 1; j < commands.length; j++) {
        if (kind === 'setup' && results.at(-1)!.status !== 'succeeded') break;
        results.push(await this.command(kind, j, commands[j]!));
      }
    }
    const stop = batchStop(kind, names.length, results, this.spec.timeouts.stepSeconds);
    if (stop) throw stop;
    return results;
  }

  /** Caches restored before setup and saved after it, the workspace kept after it: only when the spec asks. */
  private warmInput(snapshotKey?: string) {
    const caches = this.spec.caches ?? [];
    if (!this.warmScope || (caches.length === 0 && !snapshotKey)) return {};
    return {
      warm: {
        scope: this.warmScope,
        ...(caches.length ? { caches } : {}),
        ...(snapshotKey ? { snapshotKey } : {}),
        commit: this.spec.commit,
        // The secrets the clone and setup received: a saved cache or kept workspace holds none of their values.
        secretRefs: [...Object.values(this.spec.secrets), ...(this.spec.gitTokenSecret ? [this.spec.gitTokenSecret] : [])],
      },
    };
  }

  /**
   * Before the clone, for a job that starts from a kept workspace (`from`) or may find
   * one kept after the same setup (`snapshot`): whether it did, and the key to keep it under.
   */
  restoreWorkspace() {
    const { spec } = this;
    return this.own.restoreWorkspace.executeWithOptions(
      { summary: spec.from ? `restore the workspace job ${spec.from.job} kept` : 'look for a workspace kept after this setup' },
      [
        {
          jobId: this.run.jobId,
          ...this.placementField(),
          scope: this.warmScope ?? '',
          ...(spec.from ? { from: { job: spec.from.job, commit: spec.commit, ...(spec.from.after === 'setup' ? {} : { after: spec.from.after }) } } : {}),
          ...(spec.snapshot?.after === 'setup'
            ? { snapshot: { repo: spec.repo, commit: spec.commit, image: spec.image, setup: spec.setup, env: spec.env, secretRefs: spec.secrets } }
            : {}),
        },
      ],
    );
  }

  /** After a loop step the spec names: the workspace kept for forks (`from: { job, after: "loop-<k>" }`). */
  keepWorkspace(after: KeepPoint) {
    this.run.show('running', `keeping the workspace after ${after}`);
    return this.own.keepWorkspace.executeWithOptions({ summary: `keep the workspace after ${after}` }, [
      {
        jobId: this.run.jobId,
        ...this.placementField(),
        scope: this.warmScope ?? '',
        after,
        commit: this.spec.commit,
        secretRefs: this.maskRefs,
      },
    ]);
  }

  /** The workspace made the commit with the stored patch (a patch only when the job had a loop), for publish. */
  preparePublish(withPatch: boolean) {
    this.run.show('running', 'preparing a clean checkout with the approved patch for publish');
    return this.own.preparePublish.executeWithOptions({ summary: 'publish checkout: the commit and the stored patch' }, [
      {
        jobId: this.run.jobId,
        ...this.placementField(),
        image: this.spec.image,
        timeoutSeconds: this.spec.timeouts.stepSeconds,
        commit: this.spec.commit,
        withPatch,
        maskRefs: this.maskRefs,
      },
    ]);
  }

  /** A command step's input: the job's image, environment and secret references. */
  private commandInput(kind: StepKind, index: number, command: string, n: number) {
    const outside = (this.spec.caches ?? []).filter((c) => !c.path);
    const inWorkspace = (this.spec.caches ?? []).filter((c) => c.path);
    const phase = credentialPhase(kind);
    const credentials = (this.spec.credentials ?? [])
      .filter((c) => phase && c.phases.includes(phase))
      .map((c) => ({ env: c.env, ...(c.git ? { git: { username: c.git.username, hosts: c.hosts } } : {}) }));
    return {
      jobId: this.run.jobId,
      ...this.placementField(),
      seq: n,
      kind,
      index,
      image: this.spec.image,
      command,
      env: this.spec.env,
      // Write-scoped secrets reach publish steps only.
      secretEnv: kind === 'publish' ? { ...this.spec.secrets, ...this.spec.publishSecrets } : this.spec.secrets,
      // Placeholders only, for the credentials of the step's phase: the proxy adds the values.
      ...(credentials.length ? { credentials } : {}),
      maskRefs: this.maskRefs,
      timeoutSeconds: this.spec.timeouts.stepSeconds,
      ...(this.spec.budget
        ? { budget: { limits: budgetLimits(this.spec.budget), onExceed: this.spec.budget.onExceed, ...(this.spec.budget.raised ? { raised: true } : {}) } }
        : {}),
      // Setup steps alone mount the job's caches outside the workspace: loop, validation and publish never see them.
      ...(kind === 'setup' && outside.length ? { caches: outside.map((c) => c.name) } : {}),
      // A cache with a path is part of the workspace: every step sees the job's own copy there (saved after setup, never after).
      // Publish sees none: it runs on the commit and the approved patch alone.
      ...(inWorkspace.length && kind !== 'publish' ? { workspaceCaches: inWorkspace.map((c) => ({ name: c.name, path: c.path! })) } : {}),
    };
  }

  /** The placement in a step's input from the second on (a step's identity is job, placement, kind, index). */
  private placementField(): { placement?: number } {
    return this.placement && this.placement.placement > 1 ? { placement: this.placement.placement } : {};
  }

  private cloneInput(n: number) {
    return {
      ...this.placementField(),
      createdAt: this.run.view.createdAt,
      seq: n,
      repo: this.spec.repo,
      commit: this.spec.commit,
      image: this.spec.image,
      gitTokenSecret: this.spec.gitTokenSecret,
      maskRefs: this.maskRefs,
      timeoutSeconds: this.spec.timeouts.stepSeconds,
    };
  }
}
