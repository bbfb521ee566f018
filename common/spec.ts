import { type Config, operatorEgress } from './config';
import { EgressPolicyError, jobPolicy, type OperatorEgress } from './egress-policy';
import { InvalidJobSpecError } from './errors';
import type { ResolvedJobSpec } from './job';
import { checkWarmFields } from './warm-spec';
import { resolveCredentials } from './credentials';

import { DEFAULT_APPROVAL_SECONDS, jobSpecSchema, type JobSpec } from './spec-schema';

export { jobSpecSchema, type JobSpec } from './spec-schema';

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
  const credentials = resolveCredentials(spec, jobPolicy(egressAllow, defaults.egress).allow);
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
    ...(spec.snapshot ? { snapshot: { after: spec.snapshot.after, ...(spec.snapshot.when === 'failed' ? { when: 'failed' as const } : {}) } } : {}),
    ...(spec.from ? { from: { job: spec.from.job, after: spec.from.after } } : {}),
    ...(credentials.length ? { credentials } : {}),
    ...(spec.budget ? { budget: { ...spec.budget, onExceed: spec.budget.onExceed ?? 'fail' } } : {}),
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
    budget: s.budget ? { ...s.budget } : undefined,
    credentials: s.credentials?.length ? s.credentials.map((c) => ({ ...c, hosts: [...c.hosts], ...(c.phases ? { phases: [...c.phases] } : {}) })) : undefined,
  };
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as JobSpec;
}
