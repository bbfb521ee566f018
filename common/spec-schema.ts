/** The job spec's shape: what a spec may hold, field by field (the operator's policy is applied in spec.ts). */
import { z } from 'zod';
import { BUDGETS, ON_EXCEED } from './budget';
import { SECRET_REF } from './grants';
import { CREDENTIAL_PHASES, GATED_PHASES } from './job';
import { cachesSchema, fromSchema, snapshotSchema } from './warm-spec';

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
/** An HTTP field name (RFC 9110 5.1: a token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Headers a credential may not be put in: they frame, route or belong to the connection. */
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'te',
  'trailer',
  'upgrade',
  'expect',
]);
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
export const DEFAULT_APPROVAL_SECONDS = 86_400;

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
      startAt: z.number().int('must be an integer').min(1, 'must be at least 1').optional().meta({
        description:
          "The first iteration (1 when absent): a job resumed after its parent's loop step k goes on at k + 1 (POST /v1/jobs/{id}/resume sets it); past maxIterations, no loop step runs",
      }),
    })
    .refine((l) => (l.startAt ?? 1) <= l.maxIterations + 1, { message: 'must be at most maxIterations + 1', path: ['startAt'] })
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
  /**
   * Limits on what the job uses (docs/ledger.md): past one, the running step stops at
   * once and the job fails (`budget_exceeded`), or with `onExceed: approval` waits for a
   * person who may raise the budget once.
   */
  budget: z
    .strictObject({
      cpuSeconds: z.number().positive('must be above 0').max(1e9).optional().meta({ description: "CPU time of the job's step containers, user and system" }),
      wallSeconds: z.number().positive('must be above 0').max(1e9).optional().meta({ description: 'from its first step' }),
      egressBytes: z.number().int().positive('must be above 0').max(1e15).optional().meta({ description: 'bytes through the egress proxy, either way' }),
      onExceed: z.enum(ON_EXCEED).optional().meta({ description: 'fail (the default), or approval: wait for a person to raise the budget once, or reject' }),
    })
    .refine((b) => BUDGETS.some((n) => b[n] !== undefined), 'set at least one of cpuSeconds, wallSeconds, egressBytes')
    .optional(),
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
  /**
   * Secrets the egress proxy adds to requests to their hosts: the steps hold a
   * placeholder, never the value (docs/runner-contract.md, "Credentials").
   */
  credentials: z
    .array(
      z.strictObject({
        secret: z.string().regex(SECRET_REF, 'secret references must match [a-z0-9][a-z0-9_.-]{0,63}'),
        hosts: z
          .array(z.string().min(1, 'must not be empty').max(260, 'must be at most 260 characters'))
          .min(1, 'at least one host')
          .max(20, 'at most 20 hosts'),
        header: z
          .string()
          .regex(HEADER_NAME, 'must be an HTTP header name')
          .max(64, 'must be at most 64 characters')
          .refine((h) => !RESERVED_HEADERS.has(h.toLowerCase()), 'is a header the proxy owns (framing, routing or the connection)'),
        format: z
          .string()
          .max(256, 'must be at most 256 characters')
          .regex(/^[\x20-\x7e]*$/, 'printable ASCII only')
          .refine((f) => f.split('{value}').length === 2, 'must hold {value} exactly once')
          .optional()
          .meta({ description: 'the header value, `{value}` standing for the secret (default `{value}`)' }),
        env: z
          .string()
          .regex(ENV_NAME, 'env names must match [A-Za-z_][A-Za-z0-9_]*')
          .refine((n) => !n.startsWith('DRAFTSMAN_'), 'env names starting with DRAFTSMAN_ are reserved'),
        phases: z
          .array(z.enum(CREDENTIAL_PHASES))
          .min(1, 'at least one phase')
          .optional()
          .meta({ description: 'the phases whose steps hold the placeholder and whose requests get the value (default all)' }),
        git: z
          .strictObject({
            username: z
              .string()
              .min(1, 'must not be empty')
              .max(64, 'must be at most 64 characters')
              .regex(/^[A-Za-z0-9._@-]+$/, 'letters, digits and ._@- only')
              .optional()
              .meta({ description: 'the user name git sends with the placeholder as its password (default x-access-token)' }),
          })
          .optional()
          .meta({ description: "git's credential helper gives git the placeholder for these hosts; the proxy swaps it inside git's Basic authorization" }),
      }),
    )
    .max(20, 'at most 20 credentials')
    .optional(),
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
