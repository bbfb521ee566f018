/**
 * One run of the job workflow: the live view the status query serves, what the Web UI
 * shows of it, and how the run is stopped from outside its steps (a cancel, the time
 * limit). The state the workflow's parts share lives here, in one place.
 */
import { CancellationScope, setCurrentDetails, upsertSearchAttributes, type WorkflowInfo } from '@temporalio/workflow';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import { type AcceptedJob, type JobStatus, type JobView, labelPair, type Placement, type ResolvedJobSpec } from '../common/job';
import { SEARCH_ATTRIBUTES } from '../common/names';
import type { Ending } from './job-outcome';

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
  /** Where the job runs (absent for jobs placed before placement existed). */
  placement?: Placement | null;
}

export class JobRun {
  readonly jobId: string;
  readonly view: JobView;
  /** The job's steps and phases run in this scope; a cancel or the time limit cancels it. */
  readonly body = new CancellationScope();
  /** Set by the cancel signal or the job timer; read after the body unwinds. */
  ending: Ending | null = null;
  private shownStatus: JobStatus | null = null;
  private pendingAttributes: SearchAttributeUpdatePair[] = [];

  constructor(info: WorkflowInfo, resume?: LoopResume) {
    this.jobId = info.workflowId;
    this.view = resume?.view ?? {
      id: info.workflowId,
      status: 'queued',
      repo: null,
      commit: null,
      createdAt: info.startTime.toISOString(),
      startedAt: null,
      finishedAt: null,
      steps: [],
      loop: null,
    };
    setCurrentDetails(resume ? `**running** · loop · continuing at iteration ${resume.nextIteration}` : '**queued** · waiting for a worker');
  }

  /**
   * What the Web UI shows: the status and the job's repo and commit as search
   * attributes, the phase in the current details. Each upsert is a history event and
   * a visibility write, so attributes wait for the next status shown and go in one
   * upsert: a job that starts at once is shown running with its repo and commit in one.
   */
  show(status: JobStatus, details: string): void {
    if (status !== this.shownStatus || this.pendingAttributes.length > 0) {
      upsertSearchAttributes([...this.pendingAttributes, { key: SEARCH_ATTRIBUTES.status, value: status }]);
      this.pendingAttributes = [];
      this.shownStatus = status;
    }
    this.view.status = status;
    setCurrentDetails(`**${status}** · ${details}`);
  }

  /** The accepted spec's repo and commit, on the view of a first run and in the attributes of every run. */
  identify(spec: ResolvedJobSpec, firstRun: boolean): void {
    // Also on a continued run, so that every run of the job is found by repo and commit.
    this.pendingAttributes = [
      { key: SEARCH_ATTRIBUTES.repo, value: spec.repo },
      { key: SEARCH_ATTRIBUTES.commit, value: spec.commit },
      // Only when there are labels: the histories of jobs without them replay unchanged.
      ...(spec.labels ? [{ key: SEARCH_ATTRIBUTES.labels, value: Object.entries(spec.labels).map(([k, v]) => labelPair(k, v)) }] : []),
    ];
    if (!firstRun) return;
    this.view.repo = spec.repo;
    this.view.commit = spec.commit;
    this.view.loop = spec.loop ? { iterations: 0, converged: false } : null;
  }

  /** Stops the body for a cancel or the time limit; the first one stands, and an ended job ignores both. */
  stop(ending: Ending): void {
    if (this.ending || this.view.finishedAt) return;
    this.ending = ending;
    this.body.cancel();
  }
}
