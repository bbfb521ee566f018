/**
 * Schemas of the API's inputs besides the job spec (common/spec.ts). The routes
 * validate with them and /openapi.json is generated from them, so the two agree.
 */
import { z } from 'zod';
import { BUDGETS } from '../common/budget';
import { BEST_RULES, type GroupView, MAX_FORKS } from '../common/group';
import { type Approval, JOB_STATUSES, type JobView, STEP_KINDS, type StepView } from '../common/job';
import { jobSpecSchema } from '../common/spec-schema';
import { KEEP_POINT_PATTERN } from '../common/warm';
import { STREAMED_EVENT_TYPES } from '../db/feed-store';
import type { AuditEvent } from '../db/store';
import type { WebhookDelivery, WebhookEndpoint } from '../db/webhook-store';
import { type Problem, type ProblemCode, PROBLEMS } from './errors';
import type { LogLineView } from './logs';

export const MAX_LIST = 200;

// PostgreSQL's text holds no NUL character.
const noNul = (v: string) => !v.includes('\u0000');
const NUL = 'must not contain a NUL character';
// The pattern says it in the OpenAPI document (a refinement does not reach it).
const NO_NUL_PATTERN = { pattern: '^[^\\u0000]*$' };
const text = (max: number) => z.string().min(1).max(max).refine(noNul, NUL).meta(NO_NUL_PATTERN);

/** A query parameter that is an integer in [min, max], with one message for every way it is not. */
function intBetween(min: number, max: number) {
  const message = `must be an integer between ${min} and ${max}`;
  return z.coerce.number().int(message).min(min, message).max(max, message);
}

// An offset past ±14:00 names no place on earth (and PostgreSQL refuses one past ±15:59).
const instant = z.iso
  .datetime({ offset: true, message: 'must be an ISO 8601 time with its offset, e.g. 2026-12-01T10:00:00Z' })
  .refine((t) => !/[+-](1[5-9]|2\d):\d\d$/.test(t) && !/[+-]14:(?!00)\d\d$/.test(t), 'the offset must be between -14:00 and +14:00')
  .refine((t) => !Number.isNaN(Date.parse(t)) && !t.startsWith('0000'), 'must be a time that exists, from year 1');

export const listJobsQuery = z.strictObject({
  status: z.enum(JOB_STATUSES).optional(),
  repo: text(2048).optional(),
  commit: z
    .string()
    .regex(/^[0-9a-f]{40}$/, 'must be a full 40-character commit SHA')
    .optional(),
  principal: text(200).optional(),
  /** One label, `key=value`. */
  label: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_.-]{0,62}=[\x21-\x7e]{0,128}$/, "must be key=value, as a job's labels are")
    .transform((l) => ({ key: l.slice(0, l.indexOf('=')), value: l.slice(l.indexOf('=') + 1) }))
    .optional(),
  /** Free text: a job id or commit starting with it, or a repository or principal containing it (any case). */
  q: text(200).optional(),
  createdAfter: instant.optional(),
  createdBefore: instant.optional(),
  /** Where the previous page ended: its `nextCursor`. */
  cursor: z.string().min(1).max(400).optional(),
  limit: intBetween(1, MAX_LIST).optional(),
});

export const usageQuery = z
  .strictObject({
    principal: text(200).optional().meta({ description: "one principal's jobs (another's needs the admin scope); absent: yours, or everyone's for an admin" }),
    label: listJobsQuery.shape.label,
    from: instant.optional().meta({ description: 'jobs created at or after it (default: 30 days before `to`)' }),
    to: instant.optional().meta({ description: 'jobs created before it (default: now)' }),
  })
  .refine((q) => !q.from || !q.to || Date.parse(q.from) < Date.parse(q.to), { message: 'must be before to', path: ['from'] });

const usageTotals = {
  jobs: z.number().int(),
  wallSeconds: z.number(),
  cpuSeconds: z.number(),
  peakMemoryBytes: z.number().int().nullable(),
  steps: z.number().int(),
  egressBytesIn: z.number().int(),
  egressBytesOut: z.number().int(),
  egressConnections: z.number().int(),
};
export const usageSchema = z
  .object({
    from: z.string(),
    to: z.string(),
    principal: z.string().nullable().meta({ description: 'the principal asked for; null: every principal' }),
    label: z.string().nullable(),
    total: z.object(usageTotals),
    byPrincipal: z.array(z.object({ principal: z.string(), ...usageTotals })),
  })
  .meta({ id: 'Usage', description: "the jobs' ledgers summed: docs/ledger.md" });

export const logsQuery = z.strictObject({
  step: z
    .string()
    .regex(new RegExp(`^(${STEP_KINDS.join('|')})-\\d{1,6}$`), `must be <kind>-<index> with kind one of ${STEP_KINDS.join(', ')}`)
    .optional(),
  follow: z.enum(['true', 'false', '1', '0']).optional(),
  /** For clients that cannot send the Last-Event-ID header: resume a stream after this line event. */
  lastEventId: z
    .string()
    .regex(/^\d{1,15}\.\d{1,6}$/, "must be an id of this stream's line events (<chunk>.<line>)")
    .optional(),
});

export const cancelBody = z.strictObject({
  reason: z.string().max(1000, 'must be at most 1000 characters').refine(noNul, NUL).meta(NO_NUL_PATTERN).optional(),
});

/** A rerun takes nothing yet: the spec is the job's own. */
export const rerunBody = z.strictObject({});

// A step's command as a job spec takes it (jobSpecSchema), so that the document says what is refused.
const stepCommands = jobSpecSchema.shape.validate.unwrap();
const loopChanges = z.strictObject({
  command: jobSpecSchema.shape.loop.unwrap().shape.command.optional(),
  until: jobSpecSchema.shape.loop.unwrap().shape.until,
  maxIterations: z.number().int().min(1).max(1000).optional(),
});
const KEEP_POINT = z.string().regex(KEEP_POINT_PATTERN, 'must be "setup" or "loop-<iteration>" (loop-1, loop-2, ...)');

export const forkVariantSchema = z.strictObject({
  loop: loopChanges.optional().meta({ description: "merged over the parent's loop" }),
  env: jobSpecSchema.shape.env.meta({ description: "merged over the parent's env" }),
  validate: stepCommands.optional().meta({ description: "replaces the parent's validation steps" }),
  labels: jobSpecSchema.shape.labels.meta({ description: "merged over the parent's labels" }),
});

export const forkBody = z
  .strictObject({
    after: KEEP_POINT.meta({ description: "the point the parent kept its workspace at (its spec's snapshot.after)", examples: ['setup'] }),
    count: z
      .number()
      .int('must be an integer')
      .min(1, `must be between 1 and ${MAX_FORKS}`)
      .max(MAX_FORKS, `must be between 1 and ${MAX_FORKS}`)
      .optional()
      .meta({ description: 'how many attempts (the number of variants when absent)' }),
    variants: z.array(forkVariantSchema).min(1).max(MAX_FORKS, `at most ${MAX_FORKS} variants`).optional().meta({
      description: "what attempt i changes in the parent's spec; attempts past the last variant run the parent's spec as it was",
    }),
    best: z.enum(BEST_RULES).optional().meta({
      description:
        'first-validated: the first attempt to succeed wins and the others are cancelled; smallest-patch: once all ended, the smallest patch among those that succeeded; none (the default)',
    }),
  })
  .superRefine((b, ctx) => {
    if (b.count === undefined && !b.variants) ctx.addIssue({ code: 'custom', message: 'is required (or give variants)', path: ['count'] });
    if (b.count !== undefined && b.variants && b.count < b.variants.length)
      ctx.addIssue({ code: 'custom', message: `must be at least the number of variants (${b.variants.length})`, path: ['count'] });
  });

export const resumeBody = z.strictObject({
  loop: loopChanges.optional().meta({ description: "merged over the failed job's loop" }),
  validate: stepCommands.optional().meta({ description: "replaces the failed job's validation steps" }),
  publish: stepCommands.optional().meta({ description: "replaces the failed job's publish steps" }),
});

export const groupStartedSchema = z
  .object({ id: z.string(), parent: z.string(), jobs: z.array(z.string()) })
  .meta({ id: 'GroupStarted', description: "the group's id and its attempts' job ids" });
export const resumeStartedSchema = z.object({ id: z.string(), resumeOf: z.string(), from: z.string() }).meta({ id: 'JobResumed' });

const budgetLimitsSchema = z.strictObject({
  cpuSeconds: z.number().positive('must be above 0').max(1e9).optional(),
  wallSeconds: z.number().positive('must be above 0').max(1e9).optional(),
  egressBytes: z.number().int().positive('must be above 0').max(1e15).optional(),
});

export const approvalBody = z.strictObject({
  decision: z.enum(['approve', 'reject']),
  comment: z.string().max(2000).refine(noNul, NUL).meta(NO_NUL_PATTERN).optional(),
  budget: budgetLimitsSchema.optional().meta({
    description: "at a budget's gate (the job crossed its budget, onExceed approval): the limits to go on with; absent, the crossed one is doubled",
  }),
});

export const MAX_WAIT_SECONDS = 120;

export const waitQuery = z.strictObject({
  /** Seconds to wait for the job's end before answering with it as it is (default 30). */
  timeout: intBetween(0, MAX_WAIT_SECONDS).optional(),
});

/*
 * The answers. The TypeScript types in common/job.ts stay the one definition of each
 * concept; these schemas describe them for the OpenAPI document (and so for the
 * property-based run's response checks), and the assertions below fail the build when the
 * two drift apart.
 */
const time = z.iso.datetime({ offset: true });

export const stepViewSchema = z
  .object({
    kind: z.enum(STEP_KINDS),
    index: z.number().int().meta({ description: '0-based for setup and validate; the iteration (1-based) for loop and until' }),
    status: z.enum(['running', 'succeeded', 'failed', 'cancelled', 'timed_out']),
    exitCode: z.number().int().nullable(),
    startedAt: time.nullable(),
    finishedAt: time.nullable(),
    durationMs: z.number().int().nullable().optional(),
    oomKilled: z.boolean().optional().meta({ description: 'killed for exceeding its memory limit' }),
    logBytes: z.number().int().optional(),
    logTruncated: z.boolean().optional(),
    reason: z.enum(['container_lost', 'workspace_full', 'host_lost', 'budget_exceeded']).optional().meta({
      description:
        "why a failed step failed other than by its own exit (host_lost: its host was lost and the job moved; the step ran again there; budget_exceeded: stopped at the job's budget)",
    }),
    cpuSeconds: z.number().optional().meta({ description: "CPU time its processes used, user and system, from the kernel's accounting of its container" }),
    peakMemoryBytes: z.number().int().optional().meta({ description: 'the most memory its processes held at once' }),
    overBudget: z
      .object({ budget: z.enum(BUDGETS), limit: z.number(), used: z.number() })
      .optional()
      .meta({ description: "the limit of the job's budget the step was stopped at (its step_finished and budget_exceeded events say the same)" }),
    paused: z.boolean().optional().meta({ description: "frozen at the job's budget, waiting for a person's decision (onExceed approval)" }),
  })
  .meta({ id: 'StepView' });

export const jobViewSchema = z
  .object({
    id: z.string(),
    status: z.enum(JOB_STATUSES),
    repo: z.string().nullable(),
    commit: z.string().nullable(),
    principal: z.string().optional().meta({ description: "who started the job: an API token's name, or sdk:IDENTITY" }),
    labels: z.record(z.string(), z.string()).optional(),
    createdAt: time,
    startedAt: time.nullable(),
    finishedAt: time.nullable(),
    steps: z.array(stepViewSchema),
    loop: z.object({ iterations: z.number().int(), converged: z.boolean() }).nullable(),
    error: z.string().optional(),
    patch: z.object({ bytes: z.number().int(), truncated: z.boolean() }).optional(),
    waiting: z.string().optional().meta({ description: 'why a queued job has not started yet' }),
    queuePosition: z.number().int().optional().meta({ description: 'a job waiting for a host with room: its place in the line (1: next), counted when asked' }),
    placement: z.number().int().optional().meta({
      description:
        'how many hosts the job was placed on, from 2: its host was lost and it runs again from the clone on another; steps are those of this placement',
    }),
    egress: z
      .object({ connections: z.number().int(), denied: z.number().int(), bytesIn: z.number().int(), bytesOut: z.number().int() })
      .optional()
      .meta({ description: 'what the steps did through the egress proxy (the single-job view only)' }),
    ledger: z
      .object({
        wallSeconds: z.number().nullable(),
        cpuSeconds: z
          .number()
          .nullable()
          .meta({ description: "CPU time, user and system, of every step container (the engine's cgroup accounting); null when none was measured" }),
        peakMemoryBytes: z.number().int().nullable().meta({ description: 'the largest memory peak of one step' }),
        steps: z.number().int(),
        egressBytesIn: z.number().int(),
        egressBytesOut: z.number().int(),
        egressConnections: z.number().int(),
        workspaceBytes: z.number().int().nullable().meta({ description: 'the largest size of the workspace measured while a step ran' }),
      })
      .optional()
      .meta({ description: 'what the job cost, measured by Draftsman and the kernel (the single-job view only): docs/ledger.md' }),
    credentialUse: z
      .array(z.object({ env: z.string(), secret: z.string(), host: z.string(), requests: z.number().int(), firstAt: time, lastAt: time }))
      .optional()
      .meta({ description: 'requests the egress proxy sent with a credential, per variable and host, never the value (the single-job view only)' }),
    group: z.string().optional().meta({ description: 'the group (best-of-N) the job is an attempt of: GET /v1/groups/{id}' }),
    stepsOmitted: z.number().int().optional(),
    retrying: z.object({ activity: z.string(), attempt: z.number().int(), lastError: z.string().nullable(), nextAttemptAt: time.nullable() }).optional().meta({
      description:
        'an activity of the running job that failed and is being tried again: its attempt, the last error, when the next try starts (the single-job view only)',
    }),
  })
  .meta({ id: 'JobView' });

export const jobPageSchema = z
  .object({
    jobs: z.array(jobViewSchema),
    nextCursor: z.string().nullable().meta({ description: 'null on the last page; pass it as `cursor` for the next' }),
  })
  .meta({ id: 'JobPage' });

export const startedSchema = z.object({ id: z.string() }).meta({ id: 'JobStarted' });
export const rerunStartedSchema = z.object({ id: z.string(), rerunOf: z.string() }).meta({ id: 'JobRerun' });
export const cancellingSchema = z.object({ id: z.string(), status: z.literal('cancelling') }).meta({ id: 'JobCancelling' });

export const groupViewSchema = z
  .object({
    id: z.string(),
    parent: z.string(),
    after: z.string(),
    best: z.enum(BEST_RULES),
    principal: z.string(),
    createdAt: time,
    endedAt: time.nullable().meta({ description: 'when the last attempt ended' }),
    winner: z.string().nullable().meta({ description: 'the attempt the rule picked (null while undecided, or when none won)' }),
    jobs: z.array(
      z.object({
        id: z.string(),
        variant: z.number().int().nullable(),
        status: z.enum(JOB_STATUSES),
        validated: z.boolean().nullable().meta({ description: 'every validation step passed; null when none ran' }),
        patch: z.object({ bytes: z.number().int(), truncated: z.boolean() }).nullable(),
        durationMs: z.number().int().nullable(),
        cpuSeconds: z.number().nullable().meta({ description: "its ledger's CPU time (null when not measured)" }),
        egressBytes: z.number().int().meta({ description: 'bytes through the egress proxy, either way' }),
        error: z.string().optional(),
      }),
    ),
  })
  .meta({ id: 'GroupView' });

export const sessionBody = z.strictObject({ token: z.string().min(1).max(512).meta({ description: 'an API token' }) });
export const sessionSchema = z
  .object({
    principal: z.string(),
    scopes: z.array(z.string()),
    csrfToken: z.string().meta({ description: 'send it as X-CSRF-Token with every request of the session that changes something' }),
    expiresAt: time,
  })
  .meta({ id: 'Session' });

export const approvalSchema = z
  .object({
    decision: z.enum(['approve', 'reject']),
    by: z.string().meta({ description: "who decided: an API token's name, sdk:IDENTITY, or timeout" }),
    at: time,
    comment: z.string().optional(),
    budget: budgetLimitsSchema.optional().meta({ description: "at a budget's gate: the limits the approver raised it to" }),
  })
  .meta({ id: 'Approval' });

export const auditEventSchema = z
  .object({
    id: z.number().int(),
    type: z.string(),
    data: z.record(z.string(), z.unknown()),
    at: time,
  })
  .meta({ id: 'AuditEvent' });
export const eventsSchema = z.object({ events: z.array(auditEventSchema) }).meta({ id: 'AuditTrail' });

/*
 * The events of a followed log, as SSE `data` and as WebSocket frames' `data`. No response
 * body names them (an event stream has no JSON body), so the document lists them as
 * components of their own, for clients generated from it.
 */
export const logLineSchema = z
  .object({ step: z.string().meta({ description: '<kind>-<index>' }), stream: z.enum(['stdout', 'stderr']), time, text: z.string() })
  .meta({ id: 'LogLine', description: 'a line of step output: an NDJSON line, or the data of a `line` event (whose id is <chunk>.<line>)' });
export const logStepEventSchema = z
  .object({ type: z.enum(STREAMED_EVENT_TYPES), kind: z.enum(STEP_KINDS), index: z.number().int() })
  .catchall(z.unknown())
  .meta({ id: 'LogStepEvent', description: 'the data of a `step` event: a step started or finished (then with its status and exit code)' });
export const logStatusEventSchema = z.object({ status: z.enum(JOB_STATUSES) }).meta({
  id: 'LogStatusEvent',
  description: 'the data of a `status` event (on connecting and on every change) and of the `end` event (the last: the job has ended)',
});
export const LOG_EVENT_SCHEMAS = [logLineSchema, logStepEventSchema, logStatusEventSchema];

export const problemSchema = z
  .object({
    type: z.string().meta({ description: '/problems/<code>, served by the API' }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string().meta({ description: 'the request id (X-Request-Id)' }),
    code: z.enum(Object.keys(PROBLEMS) as [ProblemCode, ...ProblemCode[]]),
    field: z.string().optional().meta({ description: 'JSON path of the bad input' }),
  })
  .meta({ id: 'Problem', description: 'RFC 9457 problem details' });

export const problemTypeSchema = z.object({ type: z.string(), code: z.string(), status: z.number().int(), title: z.string() });
export const problemTypesSchema = z.object({ problems: z.array(problemTypeSchema) });

export const healthSchema = z
  .object({
    status: z.enum(['ok', 'degraded', 'unavailable']),
    database: z.string(),
    disk: z.record(z.string(), z.unknown()).optional(),
  })
  .meta({ id: 'Health' });

// Exact type identity (optional and nullable properties included), not mere assignability.
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const assertSame = <T extends true>(_: T) => undefined;
assertSame<Same<z.output<typeof stepViewSchema>, StepView>>(true);
assertSame<Same<z.output<typeof jobViewSchema>, JobView>>(true);
assertSame<Same<z.output<typeof problemSchema>, Problem>>(true);
assertSame<Same<z.output<typeof auditEventSchema>, AuditEvent>>(true);
assertSame<Same<z.output<typeof logLineSchema>, LogLineView>>(true);
assertSame<Same<z.output<typeof approvalSchema>, Approval>>(true);
assertSame<Same<z.output<typeof groupViewSchema>, GroupView>>(true);

/*
 * Webhooks (api/webhooks.ts). The event types are the ones the trigger of migrations 10
 * and 11 enqueues: a job started, one of its steps finished, it reached its approval
 * gate, it ended; and (migration 20) a group's last attempt ended, on its parent's trail.
 */
export const WEBHOOK_EVENTS = ['job.started', 'job.step_finished', 'job.awaiting_approval', 'job.ended', 'job.budget_exceeded', 'group.ended'] as const;

export const webhookBody = z.strictObject({
  url: z.string().min(1).max(2048).meta({ description: 'http(s); public addresses only, unless the operator lists host:port in DRAFTSMAN_WEBHOOK_EXCEPTIONS' }),
  events: z.array(z.enum(WEBHOOK_EVENTS)).min(1).max(WEBHOOK_EVENTS.length).optional().meta({ description: 'the event types to send (all when absent)' }),
  description: z.string().max(200).refine(noNul, NUL).meta(NO_NUL_PATTERN).optional(),
});

export const webhookEndpointSchema = z
  .object({
    id: z.string(),
    url: z.string(),
    description: z.string().nullable(),
    events: z.array(z.string()).nullable(),
    createdBy: z.string(),
    createdAt: time,
  })
  .meta({ id: 'WebhookEndpoint' });
export const webhookCreatedSchema = webhookEndpointSchema
  .extend({
    secret: z.string().meta({ description: 'whsec_...: signs every delivery (Standard Webhooks); shown only now' }),
  })
  .meta({ id: 'WebhookCreated' });
export const webhookListSchema = z.object({ webhooks: z.array(webhookEndpointSchema) }).meta({ id: 'WebhookList' });
export const webhookSecretSchema = z
  .object({ secret: z.string().meta({ description: 'the new secret; the previous one keeps signing for 24 h' }) })
  .meta({ id: 'WebhookSecret' });

export const webhookDeliverySchema = z
  .object({
    id: z.string().meta({ description: 'the webhook-id header: the same on every attempt' }),
    endpointId: z.string(),
    eventType: z.string(),
    jobId: z.string(),
    status: z.enum(['pending', 'delivered', 'failed']),
    attempts: z.number().int(),
    nextAttemptAt: time.nullable(),
    lastStatus: z.number().int().nullable(),
    lastError: z.string().nullable(),
    createdAt: time,
    deliveredAt: time.nullable(),
  })
  .meta({ id: 'WebhookDelivery' });
export const webhookDeliveriesSchema = z.object({ deliveries: z.array(webhookDeliverySchema) }).meta({ id: 'WebhookDeliveryList' });
export const deliveriesQuery = z.strictObject({ limit: intBetween(1, 100).optional() });
assertSame<Same<z.output<typeof webhookEndpointSchema>, WebhookEndpoint>>(true);
assertSame<Same<z.output<typeof webhookDeliverySchema>, WebhookDelivery>>(true);

export const hostSchema = z
  .object({
    id: z.string().meta({ description: 'DRAFTSMAN_HOST_ID of its workers' }),
    state: z.enum(['up', 'draining', 'drained', 'silent']).meta({
      description:
        'up: takes jobs; draining: takes none, its jobs still run; drained: takes none and holds none (its workers stop); silent: not heard from lately',
    }),
    capacity: z.number().int().meta({ description: 'jobs it runs at once' }),
    running: z.number().int().meta({ description: 'its jobs that run steps now' }),
    holding: z.number().int().meta({ description: 'its jobs not ended (awaiting approval included): their workspaces are there' }),
    freeDiskMb: z.number().int().nullable().meta({ description: 'free disk where its workspaces live, when measured' }),
    seenAt: z.string().meta({ description: 'its last heartbeat' }),
    startedAt: z.string(),
  })
  .meta({ id: 'Host' });
export const hostListSchema = z
  .object({ hosts: z.array(hostSchema), waiting: z.number().int().meta({ description: 'jobs queued for a host with room' }) })
  .meta({ id: 'HostList' });

export const keptSchema = z
  .object({
    id: z.string(),
    kind: z.enum(['cache', 'snapshot']).meta({ description: 'cache: a saved dependency cache; snapshot: a workspace kept after setup or a loop step' }),
    hostQueue: z.string().meta({ description: 'the task queue of the host whose engine holds it' }),
    host: z.string().nullable().optional().meta({ description: "that host's id, when it is known" }),
    scope: z.string().meta({ description: 'whose it is: repo=<url> principal=<name> (or repo=<url> alone, by DRAFTSMAN_CACHE_SCOPE)' }),
    name: z.string().meta({ description: "the cache's name; for a kept workspace empty (kept after setup) or the loop step it was kept after (loop-2)" }),
    key: z.string().meta({ description: "the cache's key; a workspace's: the hash of its setup, or the id of the job that kept it after a loop step" }),
    jobId: z.string().meta({ description: 'the job that saved it' }),
    commit: z.string().meta({ description: 'the commit of a kept workspace; empty for a cache' }),
    bytes: z.number().int(),
    createdAt: z.string(),
    lastUsedAt: z.string().meta({ description: 'its last restore (or its save): the janitor evicts the least recently used past the budget' }),
  })
  .meta({ id: 'Kept' });
export const keptListSchema = z
  .object({ caches: z.array(keptSchema), bytes: z.number().int().meta({ description: 'their bytes together' }) })
  .meta({ id: 'KeptList' });

/** Temporal's remote codec protocol: payloads with base64 metadata values and data. */
export const payloadsBody = z.strictObject({
  payloads: z
    .array(
      z.object({
        metadata: z.record(z.string(), z.base64()).optional(),
        data: z.base64().optional(),
      }),
    )
    .max(1000),
});
