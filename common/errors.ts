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

/** The container engine refused or failed an operation (retried by Temporal). */
export class RunnerError extends Error {
  override readonly name = 'RunnerError';
  constructor(
    message: string,
    cause?: unknown,
  ) {
    super(message, { cause });
  }
}

/** The step's image is not present on the engine; retrying cannot help. */
export class ImageNotFoundError extends Error {
  override readonly name = 'ImageNotFoundError';
  constructor(readonly image: string) {
    super(`image ${image} is not present on the Docker engine (no registry pull is attempted)`);
  }
}
