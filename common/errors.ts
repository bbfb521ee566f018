/**
 * Typed errors with stable names. The class names double as the `type` of the
 * ApplicationFailures that carry them across Temporal, so renaming one changes
 * the retry contract (see FailureType in names.ts).
 */
export class InvalidJobSpecError extends Error {
  override readonly name = 'InvalidJobSpecError';
  constructor(
    message: string,
    /** Dotted path of the offending field, e.g. "loop.maxIterations". */
    readonly field: string,
  ) {
    super(message);
  }
}

export function isInvalidJobSpecError(err: unknown): err is InvalidJobSpecError {
  return err instanceof Error && err.name === 'InvalidJobSpecError';
}

/**
 * A job refused an approval decision: it is not waiting at its gate (`not_awaiting`:
 * not there yet, past it, or ended), or another decision was made (`conflict`).
 */
export class ApprovalRefusedError extends Error {
  override readonly name = 'ApprovalRefusedError';
  constructor(
    message: string,
    readonly reason: 'not_awaiting' | 'conflict',
  ) {
    super(message);
  }
}

/**
 * A decision the job has not taken within the time asked: its workflow made no progress
 * (no worker serves it just now). Sent again with the same update id, it is taken once.
 */
export class DecisionPendingError extends Error {
  override readonly name = 'DecisionPendingError';
}

/** An engine failure, with the engine's own error as its cause. */
abstract class EngineError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
  }
}

/**
 * The workspace's object store does not hold the job's commit as its id says (the
 * job's own steps removed or altered `.git/objects`): Draftsman's git cannot read the
 * commit from it, and will not on any retry.
 */
export class WorkspaceGitError extends Error {
  override readonly name = 'WorkspaceGitError';
}

/** The container engine refused or failed an operation (retried by Temporal). */
export class RunnerError extends EngineError {
  override readonly name = 'RunnerError';
}

/**
 * The connection to the engine broke, or the engine refused it: it is stopping,
 * restarting or gone, and the containers it ran may have been stopped with it
 * (retried by Temporal, like RunnerError).
 */
export class EngineUnreachableError extends EngineError {
  override readonly name = 'EngineUnreachableError';
}

/**
 * The engine cannot run the step's container any more: after an engine crash its
 * record of the container and the runtime's disagree (the runtime still holds a task
 * the engine does not know), and every start fails. The step is lost, like a step
 * whose container is gone; it is never created again under the same name.
 */
export class ContainerLostError extends EngineError {
  override readonly name = 'ContainerLostError';
}

/**
 * An attempt made no progress for a long time (no output, no answer from the engine,
 * no phase ended) while it would have heartbeated on: it is failed, to be retried,
 * and a newer attempt takes the step over.
 */
export class AttemptStalledError extends Error {
  override readonly name = 'AttemptStalledError';
}

/** The step's image is not present on the engine; retrying cannot help. */
export class ImageNotFoundError extends Error {
  override readonly name = 'ImageNotFoundError';
  constructor(readonly image: string) {
    super(`image ${image} is not present on the Docker engine (no registry pull is attempted)`);
  }
}
