import { z } from 'zod';
import { type Config, operatorEgress } from './config';
import { SECRET_REF } from './grants';
import { EgressPolicyError, jobPolicy, type OperatorEgress } from './egress-policy';
import { InvalidJobSpecError } from './errors';
import { GATED_PHASES, type ResolvedJobSpec } from './job';
import { cachesSchema, checkWarmFields, fromSchema, snapshotSchema } from './warm-spec';

const LABEL_KEY = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
const LABEL_VALUE = /^[\x21-\x7e]*$/;
const MAX_LABELS = 16;
const MAX_LABEL_VALUE = 128;

const COMMIT = /^[0-9a-fA-F]{40}$/;
// git@host:path (scp-like ssh). The host may not start with '-' so it can never
// be read as an option by ssh.
const SCP_LIKE = /^[A-Za-z0-9._~-]+@[A-Za-z0-9.[\]:-]+:[^\s]+$/;
// file: passes the syntax check; whether it is allowed is the operator's policy (resolveJobSpec).
// Steps reach out only through an HTTP proxy: git:// and ssh cannot pass it.
const ALLOWED_PROTOCOLS = new Set(['https:', 'http:', 'file:']);
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// A Docker image reference: [registry[:port]/]path[:tag][@digest].
const IMAGE_REF =
  /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;

function repoProblem(url: string): string | null {
  if (url.startsWith('-')) return 'must not start with "-"';
  // Control characters are what this refuses.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\s]/.test(url)) return 'must not contain whitespace or control characters';
  // Bidi overrides, zero-width and look-alike characters hide what a URL points at.
  if (/[^\x21-\x7e]/.test(url)) return 'must be ASCII (write international host names in punycode)';
  if (/^[a-z][a-z0-9+.-]*::/i.test(url)) return 'git transport helpers (such as ext::) are not allowed';
  const noProxy = 'steps reach out only through an HTTP proxy, which git over ssh and git:// cannot use: use the https:// URL';
  if (SCP_LIKE.test(url) && !url.includes('://')) return `git@host:path (ssh) is not supported: ${noProxy}`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'must be an https:// or http:// URL';
  }
  if (parsed.protocol === 'ssh:' || parsed.protocol === 'git:') return `scheme "${parsed.protocol.replace(/:$/, '')}" is not supported: ${noProxy}`;
  if (!ALLOWED_PROTOCOLS.has(parsed.protocol)) {
    return `scheme "${parsed.protocol.replace(/:$/, '')}" is not allowed (use https)`;
  }
  if (parsed.protocol === 'file:') return parsed.host ? 'file:// URLs must not name a host' : null;
  if (!parsed.hostname || parsed.hostname.startsWith('-')) return 'must name a host';
  if (parsed.password || parsed.username) return 'must not carry credentials';
  return null;
}

// A NUL byte cannot pass through exec: the command or value would run cut short, not as written.
const noNul = (s: string) => !s.includes('\u0000');
const NUL_MESSAGE = 'must not contain a NUL byte';
const secretEnv = z
  .record(
    z
      .string()
      .regex(ENV_NAME, 'env names must match [A-Za-z_][A-Za-z0-9_]*')
      .refine((n) => !n.startsWith('DRAFTSMAN_'), 'env names starting with DRAFTSMAN_ are reserved'),
    z.string().regex(SECRET_REF, 'secret references must match [a-z0-9][a-z0-9_.-]{0,63}'),
  )
  .refine((s) => Object.keys(s).length <= 50, 'at most 50 secrets');
/** The longest a job waits at its approval gate: a week. */
export const MAX_APPROVAL_SECONDS = 7 * 86_400;
const DEFAULT_APPROVAL_SECONDS = 86_400;

const command = z.string().min(1, 'must not be empty').max(16_384, 'must be at most 16384 characters').refine(noNul, NUL_MESSAGE);

export const jobSpecSchema = z.strictObject({
  repo: z
    .string()
    .max(2048, 'must be at most 2048 characters')
    .superRefine((url, ctx) => {
      const problem = repoProblem(url);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    // For the OpenAPI document only (the check above decides, with its own messages):
    // the URLs a server accepts by default (any port from 1 to 65535); file:/// when its
    // operator allows it.
    .meta({
      pattern: '^https?://[A-Za-z0-9][A-Za-z0-9.-]*(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[^\\s]*)?$',
      examples: ['https://example.com/org/repo.git'],
    }),
  commit: z
    .string()
    .regex(COMMIT, 'must be a full 40-hex commit id; branch and tag names are not accepted')
    .transform((c) => c.toLowerCase()),
  image: z.string().max(512).regex(IMAGE_REF, 'must be a Docker image reference').optional(),
  setup: z.array(command).max(100, 'at most 100 steps').optional(),
  loop: z
    .strictObject({
      command,
      until: command.optional(),
      maxIterations: z.number().int('must be an integer').min(1, 'must be between 1 and 1000').max(1000, 'must be between 1 and 1000'),
    })
    .optional(),
  validate: z.array(command).max(100, 'at most 100 steps').optional(),
  /** Steps that run once validation passed (push a branch, open a pull request). */
  publish: z.array(command).max(100, 'at most 100 steps').optional(),
  env: z
    .record(
      z
        .string()
        .regex(ENV_NAME, 'env names must match [A-Za-z_][A-Za-z0-9_]*')
        .refine((n) => !n.startsWith('DRAFTSMAN_'), 'env names starting with DRAFTSMAN_ are reserved'),
      z.string().max(32_768, 'env values must be at most 32768 characters').refine(noNul, NUL_MESSAGE),
    )
    .refine((env) => Object.keys(env).length <= 100, 'at most 100 variables')
    .optional(),
  /** Secrets by reference: env name -> secret name in the operator's store. Values never enter the spec. */
  secrets: secretEnv.optional(),
  /**
   * Secrets only the publish steps receive (write-scoped: a token that pushes): never
   * the clone, setup, loop or validation, whose code the job does not trust.
   */
  publishSecrets: secretEnv.optional(),
  /** A person decides before the phase `before` runs; the job waits `awaiting_approval` meanwhile. */
  approval: z
    .strictObject({
      before: z.enum(GATED_PHASES),
      timeoutSeconds: z
        .number()
        .int('must be an integer')
        .min(1, `must be between 1 and ${MAX_APPROVAL_SECONDS}`)
        .max(MAX_APPROVAL_SECONDS, `must be between 1 and ${MAX_APPROVAL_SECONDS}`)
        .optional()
        .meta({ description: 'how long the job waits for a decision (default a day); waiting does not count against jobSeconds' }),
      onTimeout: z.enum(['reject', 'approve']).optional().meta({ description: 'the decision when nobody decided in time (default reject)' }),
    })
    .optional(),
  /**
   * At most `limit` jobs with the same key hold a host at once; the others wait `queued`
   * (never refused), and waiting jobs of different keys take turns. The key is `repo`
   * (the job's repository), `principal` (who started it), or any other text, shared by
   * the jobs that name it.
   */
  concurrency: z
    .strictObject({
      key: z
        .string()
        .min(1, 'must not be empty')
        .max(MAX_LABEL_VALUE, `must be at most ${MAX_LABEL_VALUE} characters`)
        .regex(LABEL_VALUE, 'printable ASCII without spaces')
        .meta({ description: '`repo`, `principal`, or a name of your own shared by the jobs that use it' }),
      limit: z.number().int('must be an integer').min(1, 'must be at least 1').meta({ description: "jobs of this key at once (at most the server's ceiling)" }),
    })
    .optional(),
  // Warm starts (caches, a kept workspace, a start from one): common/warm-spec.ts.
  caches: cachesSchema,
  snapshot: snapshotSchema,
  from: fromSchema,
  /** A secret holding a token for cloning over https; it reaches git through a credential helper. */
  gitTokenSecret: z.string().regex(SECRET_REF, 'secret references must match [a-z0-9][a-z0-9_.-]{0,63}').optional(),
  /** Hosts the job's steps may reach through the egress proxy; without it, the operator's default list. */
  egress: z
    .strictObject({
      allow: z.array(z.string().max(260, 'must be at most 260 characters')).max(100, 'at most 100 entries'),
    })
    .optional(),
  /**
   * Labels to find the job by (`{ "pr": "123" }`): in the job view, the list's `label`
   * filter and the DraftsmanLabels search attribute as `k=v`. Search attributes are not
   * encrypted: a label is never a secret (a job whose label holds a secret's value is refused).
   */
  labels: z
    .record(
      z.string().regex(LABEL_KEY, 'label keys must match [a-z0-9][a-z0-9_.-]{0,62}'),
      z
        .string()
        .max(MAX_LABEL_VALUE, `label values must be at most ${MAX_LABEL_VALUE} characters`)
        .regex(LABEL_VALUE, 'label values are printable ASCII without spaces'),
    )
    .refine((l) => Object.keys(l).length <= MAX_LABELS, `at most ${MAX_LABELS} labels`)
    .optional(),
  timeouts: z
    .strictObject({
      stepSeconds: z.number().int('must be an integer').min(1).max(86_400).optional(),
      jobSeconds: z
        .number()
        .int('must be an integer')
        .min(1)
        .max(7 * 86_400)
        .optional(),
    })
    .optional(),
});

export type JobSpec = z.input<typeof jobSpecSchema>;

/** The operator's defaults and rules for specs. */
export interface SpecPolicy {
  image: string;
  stepSeconds: number;
  jobSeconds: number;
  /** Images a spec may name; the default image is always allowed. */
  allowedImages: readonly string[];
  allowFileRepos: boolean;
  egress: OperatorEgress;
  /** The operator's ceilings on what a spec may ask for. */
  max: { stepSeconds: number; jobSeconds: number; iterations: number; steps: number; concurrency?: number };
}

export function specPolicy(
  config: Pick<
    Config,
    | 'DRAFTSMAN_DEFAULT_IMAGE'
    | 'DRAFTSMAN_STEP_TIMEOUT_SECONDS'
    | 'DRAFTSMAN_JOB_TIMEOUT_SECONDS'
    | 'DRAFTSMAN_ALLOWED_IMAGES'
    | 'DRAFTSMAN_ALLOW_FILE_REPOS'
    | 'DRAFTSMAN_EGRESS_ALLOW'
    | 'DRAFTSMAN_EGRESS_CEILING'
    | 'DRAFTSMAN_EGRESS_PRESETS'
    | 'DRAFTSMAN_EGRESS_EXCEPTIONS'
    | 'DRAFTSMAN_MAX_STEP_SECONDS'
    | 'DRAFTSMAN_MAX_JOB_SECONDS'
    | 'DRAFTSMAN_MAX_ITERATIONS'
    | 'DRAFTSMAN_MAX_STEPS'
    | 'DRAFTSMAN_MAX_CONCURRENCY_LIMIT'
  >,
): SpecPolicy {
  return {
    image: config.DRAFTSMAN_DEFAULT_IMAGE,
    stepSeconds: config.DRAFTSMAN_STEP_TIMEOUT_SECONDS,
    jobSeconds: config.DRAFTSMAN_JOB_TIMEOUT_SECONDS,
    allowedImages: [config.DRAFTSMAN_DEFAULT_IMAGE, ...config.DRAFTSMAN_ALLOWED_IMAGES],
    allowFileRepos: config.DRAFTSMAN_ALLOW_FILE_REPOS,
    egress: operatorEgress(config),
    max: {
      stepSeconds: config.DRAFTSMAN_MAX_STEP_SECONDS,
      jobSeconds: config.DRAFTSMAN_MAX_JOB_SECONDS,
      iterations: config.DRAFTSMAN_MAX_ITERATIONS,
      steps: config.DRAFTSMAN_MAX_STEPS,
      concurrency: config.DRAFTSMAN_MAX_CONCURRENCY_LIMIT,
    },
  };
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = input;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

function fieldOf(path: readonly PropertyKey[]): string {
  return path.map(String).join('.') || '(body)';
}

/** Validates an untrusted spec and applies the operator's defaults. Throws InvalidJobSpecError. */
export function resolveJobSpec(input: unknown, defaults: SpecPolicy): ResolvedJobSpec {
  const result = jobSpecSchema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = fieldOf(issue.path);
    // A record key's own refinement message sits one level down.
    const detail = issue.code === 'invalid_key' ? (issue.issues[0]?.message ?? issue.message) : issue.message;
    const message =
      issue.code === 'unrecognized_keys'
        ? `unknown field ${issue.keys.map((k) => (field === '(body)' ? k : `${field}.${k}`)).join(', ')}`
        : issue.code === 'invalid_type' && issue.path.length > 0 && valueAt(input, issue.path) === undefined
          ? `${field} is required`
          : `${field}: ${detail}`;
    const unknownField = issue.code === 'unrecognized_keys' ? issue.keys[0] : undefined;
    throw new InvalidJobSpecError(message, unknownField ? (field === '(body)' ? unknownField : `${field}.${unknownField}`) : field);
  }
  const spec = result.data;
  if (spec.repo.startsWith('file:') && !defaults.allowFileRepos) {
    throw new InvalidJobSpecError('repo: file:// repositories are not allowed on this server', 'repo');
  }
  for (const field of ['secrets', 'publishSecrets'] as const) {
    const clash = Object.keys(spec[field] ?? {}).find((name) => name in (spec.env ?? {}));
    if (clash) throw new InvalidJobSpecError(`${field}.${clash}: also set in env`, `${field}.${clash}`);
  }
  if (spec.publishSecrets && Object.keys(spec.publishSecrets).length && !spec.publish?.length) {
    throw new InvalidJobSpecError('publishSecrets: only publish steps receive them, and the spec has none', 'publishSecrets');
  }
  const gated = spec.approval?.before;
  if (gated && !(gated === 'loop' ? spec.loop : gated === 'validate' ? spec.validate?.length : spec.publish?.length)) {
    throw new InvalidJobSpecError(`approval.before: the spec has no ${gated} ${gated === 'loop' ? '' : 'steps '}to hold back`, 'approval.before');
  }
  checkWarmFields(spec);
  if (spec.image !== undefined && !defaults.allowedImages.includes(spec.image)) {
    throw new InvalidJobSpecError(`image: ${spec.image} is not in this server's image allowlist`, 'image');
  }
  const over = (field: string, value: number, ceiling: number) => {
    if (value > ceiling) throw new InvalidJobSpecError(`${field}: ${value} is over this server's ceiling of ${ceiling}`, field);
  };
  over('timeouts.stepSeconds', spec.timeouts?.stepSeconds ?? 0, defaults.max.stepSeconds);
  over('timeouts.jobSeconds', spec.timeouts?.jobSeconds ?? 0, defaults.max.jobSeconds);
  over('loop.maxIterations', spec.loop?.maxIterations ?? 0, defaults.max.iterations);
  if (defaults.max.concurrency !== undefined) over('concurrency.limit', spec.concurrency?.limit ?? 0, defaults.max.concurrency);
  over(
    'steps (setup, validate and publish together)',
    (spec.setup?.length ?? 0) + (spec.validate?.length ?? 0) + (spec.publish?.length ?? 0),
    defaults.max.steps,
  );
  if (spec.repo.startsWith('http:') && spec.gitTokenSecret) {
    throw new InvalidJobSpecError('gitTokenSecret: a token is sent only over https; the repository is http://', 'gitTokenSecret');
  }
  const egressAllow = spec.egress?.allow ?? defaults.egress.defaults;
  try {
    jobPolicy(egressAllow, defaults.egress);
  } catch (err) {
    if (!(err instanceof EgressPolicyError)) throw err;
    const i = egressAllow.indexOf(err.entry);
    throw new InvalidJobSpecError(`egress.allow: ${err.message}`, spec.egress && i >= 0 ? `egress.allow.${i}` : 'egress.allow');
  }
  return {
    repo: spec.repo,
    commit: spec.commit,
    image: spec.image ?? defaults.image,
    setup: spec.setup ?? [],
    loop: spec.loop ? { ...spec.loop } : null,
    validate: spec.validate ?? [],
    env: spec.env ?? {},
    secrets: spec.secrets ?? {},
    gitTokenSecret: spec.gitTokenSecret ?? null,
    timeouts: {
      stepSeconds: spec.timeouts?.stepSeconds ?? defaults.stepSeconds,
      jobSeconds: spec.timeouts?.jobSeconds ?? defaults.jobSeconds,
    },
    egress: { allow: egressAllow },
    ...(spec.labels && Object.keys(spec.labels).length ? { labels: spec.labels } : {}),
    // Only when present: specs without them resolve (and replay) as before.
    ...(spec.publish?.length ? { publish: spec.publish } : {}),
    ...(spec.publishSecrets && Object.keys(spec.publishSecrets).length ? { publishSecrets: spec.publishSecrets } : {}),
    ...(spec.concurrency ? { concurrency: { key: spec.concurrency.key, limit: spec.concurrency.limit } } : {}),
    ...(spec.caches?.length
      ? { caches: spec.caches.map((c) => ({ name: c.name, key: c.key, restoreKeys: c.restoreKeys ?? [], ...(c.path ? { path: c.path } : {}) })) }
      : {}),
    ...(spec.snapshot ? { snapshot: { after: spec.snapshot.after } } : {}),
    ...(spec.from ? { from: { job: spec.from.job, after: spec.from.after } } : {}),
    ...(spec.approval
      ? {
          approval: {
            before: spec.approval.before,
            timeoutSeconds: spec.approval.timeoutSeconds ?? DEFAULT_APPROVAL_SECONDS,
            onTimeout: spec.approval.onTimeout ?? 'reject',
          },
        }
      : {}),
  };
}

/**
 * The input that resolves to a stored spec again under `policy` (what a rerun submits).
 * A job's row holds the spec a worker accepted (defaults filled in), or before that the
 * input as submitted: both map here. A default image is left out, so that it need not be
 * on the allowlist; everything else stays as the job ran with it.
 */
export function specInput(stored: ResolvedJobSpec | JobSpec, policy: SpecPolicy): JobSpec {
  const s = stored as Partial<ResolvedJobSpec> & Pick<ResolvedJobSpec, 'repo' | 'commit'>;
  const some = <T>(v: T[] | undefined) => (v?.length ? [...v] : undefined);
  const any = (v: Record<string, string> | undefined) => (v && Object.keys(v).length ? { ...v } : undefined);
  const input: Record<string, unknown> = {
    repo: s.repo,
    commit: s.commit,
    image: s.image && s.image !== policy.image ? s.image : undefined,
    setup: some(s.setup),
    loop: s.loop ? { ...s.loop } : undefined,
    validate: some(s.validate),
    env: any(s.env),
    secrets: any(s.secrets),
    gitTokenSecret: s.gitTokenSecret ?? undefined,
    timeouts: s.timeouts ? { ...s.timeouts } : undefined,
    egress: s.egress ? { allow: [...s.egress.allow] } : undefined,
    labels: any(s.labels),
    publish: some(s.publish),
    publishSecrets: any(s.publishSecrets),
    approval: s.approval ? { ...s.approval } : undefined,
    concurrency: s.concurrency ? { ...s.concurrency } : undefined,
    caches: s.caches?.length ? s.caches.map((c) => ({ ...c, restoreKeys: [...(c.restoreKeys ?? [])] })) : undefined,
    snapshot: s.snapshot ? { ...s.snapshot } : undefined,
    from: s.from ? { ...s.from } : undefined,
  };
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as JobSpec;
}
