/**
 * The job spec's warm-start fields (docs/warm-starts.md): dependency caches, the
 * workspace kept after setup or a loop step, and a start from another job's. Their
 * schemas, and the checks across fields that a schema of one field cannot make.
 */
import { z } from 'zod';
import { InvalidJobSpecError } from './errors';
import { JOB_ID_PATTERN, type KeepPoint } from './job';
import {
  CACHE_NAME,
  cachePathProblem,
  KEEP_POINT_PATTERN,
  KEY_TEXT,
  KeyTemplateError,
  loopIteration,
  MAX_CACHES,
  MAX_KEY_LENGTH,
  parseKeyTemplate,
  pathsOverlap,
} from './warm';

/** `setup`, or `loop-<k>`: after the loop's step of iteration k. */
const KEEP_POINT = z
  .string()
  .regex(KEEP_POINT_PATTERN, 'must be "setup" or "loop-<iteration>" (loop-1, loop-2, ...)')
  .transform((p) => p as KeepPoint)
  .meta({ examples: ['setup', 'loop-2'] });

/**
 * Dependency caches: each restored before setup from the newest entry of `key` (else of
 * the first `restoreKeys` prefix that has one) in the job's scope, mounted writable in
 * the setup steps only, and saved under `key` once setup succeeded.
 */
export const cachesSchema = z
  .array(
    z.strictObject({
      name: z
        .string()
        .regex(CACHE_NAME, 'cache names must match [a-z0-9][a-z0-9_-]{0,31}')
        .meta({ description: 'npm, yarn, pip, go and xdg point those tools at the cache' }),
      key: z
        .string()
        .min(1, 'must not be empty')
        .max(512, 'must be at most 512 characters')
        .superRefine((key, ctx) => {
          try {
            parseKeyTemplate(key);
          } catch (err) {
            if (!(err instanceof KeyTemplateError)) throw err;
            ctx.addIssue({ code: 'custom', message: err.message });
          }
        })
        .meta({ examples: ["npm-{{ hashFiles('package-lock.json') }}"] }),
      restoreKeys: z
        .array(
          z
            .string()
            .min(1, 'must not be empty')
            .max(MAX_KEY_LENGTH, `must be at most ${MAX_KEY_LENGTH} characters`)
            .regex(KEY_TEXT, 'printable ASCII without spaces'),
        )
        .max(8, 'at most 8 restore keys')
        .optional(),
      path: z
        .string()
        .superRefine((path, ctx) => {
          const problem = cachePathProblem(path);
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        })
        .optional()
        .meta({
          description:
            "A directory of the workspace the cache is (node_modules, .venv): mounted there in setup, where it is saved from, and in every later step as the job's own copy, which is never saved",
          examples: ['node_modules'],
        }),
    }),
  )
  .max(MAX_CACHES, `at most ${MAX_CACHES} caches`)
  .refine((c) => new Set(c.map((x) => x.name)).size === c.length, 'cache names must be unique')
  .refine(
    (c) => !c.some((x, i) => c.some((y, j) => j !== i && x.path !== undefined && y.path !== undefined && pathsOverlap(x.path, y.path))),
    'cache paths must not hold one another',
  )
  .optional();

/**
 * Keep the workspace after setup (a later job with the same repository, commit, image,
 * setup, env and secret references starts from it, and forks may) or after a loop
 * iteration's step `loop-<k>` (for forks only: what a loop made is no setup's).
 */
export const snapshotSchema = z
  .strictObject({
    after: KEEP_POINT,
    when: z.enum(['always', 'failed']).optional().meta({
      description:
        'always (the default): kept whatever the job does next; failed: kept for a resume, and given up when the job succeeds (forks may use it only while the job runs)',
    }),
  })
  .optional();

/** Start from the workspace another job kept (best-of-N: one setup, many loops), instead of a clone. */
export const fromSchema = z
  .strictObject({
    job: z.string().regex(JOB_ID_PATTERN, 'must be a job id'),
    after: KEEP_POINT,
  })
  .optional();

type WarmFields = {
  setup?: readonly string[];
  loop?: { maxIterations: number; startAt?: number };
  caches?: z.infer<typeof cachesSchema>;
  snapshot?: z.infer<typeof snapshotSchema>;
  from?: z.infer<typeof fromSchema>;
};

/** The warm-start fields against the rest of the spec; InvalidJobSpecError naming the field. */
export function checkWarmFields(spec: WarmFields): void {
  if (spec.caches?.length && !spec.setup?.length) throw new InvalidJobSpecError('caches: only setup steps mount caches, and the spec has none', 'caches');
  // A kept workspace is copied from the workspace volume alone, without the caches mounted in it.
  const inWorkspace = spec.caches?.find((c) => c.path);
  if (inWorkspace && (spec.snapshot || spec.from)) {
    throw new InvalidJobSpecError(
      `caches: ${inWorkspace.name} has a path in the workspace, which a kept workspace would not hold; a job with snapshot or from keeps what setup installed with the workspace instead`,
      'caches',
    );
  }
  if (spec.from && spec.snapshot?.after === 'setup') {
    throw new InvalidJobSpecError(
      "snapshot.after: a job started from another's workspace keeps none after its own setup (after a loop step it may)",
      'snapshot.after',
    );
  }
  if ((spec.loop?.startAt ?? 1) > 1 && !spec.from) {
    throw new InvalidJobSpecError("loop.startAt: only a job started from another's kept workspace (from) goes on with a loop", 'loop.startAt');
  }
  const iteration = loopIteration(spec.snapshot?.after ?? 'setup');
  if (iteration !== null && !(spec.loop && iteration <= spec.loop.maxIterations)) {
    throw new InvalidJobSpecError(`snapshot.after: the spec's loop has no iteration ${iteration}`, 'snapshot.after');
  }
}
