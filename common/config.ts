import { parseBudgetCeilings } from './budget';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { socketDirProblem } from './egress-layout';
import { parseAllowEntry, parseExceptions, type OperatorEgress } from './egress-policy';
import { parseGrants } from './grants';
import { DEFAULT_TASK_QUEUE } from './names';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
/** A comma-separated list, blanks dropped. */
const list = z
  .string()
  .default('')
  .transform((v) =>
    v
      .split(',')
      .map((i) => i.trim())
      .filter(Boolean),
  );

/**
 * Every setting of the API and the worker, read once from the environment at
 * start-up. An invalid value stops the process with a message naming the variable.
 */
export const configSchema = z.object({
  /** Temporal frontend, host:port. */
  TEMPORAL_ADDRESS: z.string().min(1).default('localhost:7233'),
  /** Temporal namespace the jobs live in. */
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  /** Task queue the job workflows and their activities run on. */
  DRAFTSMAN_TASK_QUEUE: z.string().min(1).default(DEFAULT_TASK_QUEUE),
  /** PostgreSQL connection string for the audit trail. `npm start` embeds a server when unset. */
  DATABASE_URL: z.string().url().optional(),
  /** Password put into DATABASE_URL, so that the URL can stay free of secrets (use DATABASE_PASSWORD_FILE). */
  DATABASE_PASSWORD: z.string().min(1).optional(),
  /**
   * Compose's database set-up only (db/main.ts): where the application role's password is
   * kept, generated at the first `up`; DATABASE_URL is then the administrator's.
   */
  DRAFTSMAN_DB_APP_PASSWORD_PATH: z.string().min(1).optional(),
  /** Port of the HTTP API. */
  PORT: int(0, 65_535).default(3000),
  /** Address the HTTP API binds to. */
  DRAFTSMAN_API_HOST: z.string().min(1).default('127.0.0.1'),
  /** Folder for state of the embedded stack (Temporal state file, PostgreSQL data, logs). */
  DRAFTSMAN_DATA_DIR: z.string().min(1).default(path.resolve('data')),
  /**
   * This deployment's id, in the name and labels of every container and volume it
   * creates; unset, one is generated at first start and kept in the data folder.
   * Every worker of one deployment must have the same; two deployments sharing an
   * engine must not.
   */
  DRAFTSMAN_DEPLOYMENT_ID: z
    .string()
    .regex(/^[a-z0-9]{1,16}$/, 'must be 1 to 16 lower-case letters or digits')
    .optional(),
  /**
   * This worker's host: the one Docker engine it serves, and the task queue of its own
   * that takes every activity touching that engine's containers and volumes. Unset, it
   * derives from the engine's id and address (the id alone: two engines on one machine
   * can share it), so that the workers of one engine share it.
   */
  DRAFTSMAN_HOST_ID: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,39}$/, 'must be 1 to 40 lower-case letters, digits or dashes, starting with a letter or digit')
    .optional(),
  /** How long a step waits for its host's worker to take it before the host counts as lost. */
  DRAFTSMAN_HOST_LOST_SECONDS: int(5, 86_400).default(120),
  /**
   * How many times a job whose host was lost moves to another host, where it runs again
   * from its clone (a new placement); past that it fails saying its host was lost. 0: never.
   */
  DRAFTSMAN_HOST_LOST_MOVES: int(0, 10).default(2),
  /**
   * How long a draining host waits for its jobs to end; then its workers exit anyway and
   * the jobs left move to other hosts as on a lost host. 0: wait for them however long.
   */
  DRAFTSMAN_DRAIN_TIMEOUT_SECONDS: int(0, 7 * 86_400).default(3_600),
  /**
   * Jobs this host runs at once (each runs one step at a time); placement sends a job to
   * a host with room, and the rest wait `queued` in order. Default: the steps its worker
   * runs at once (DRAFTSMAN_MAX_CONCURRENT_STEPS).
   */
  DRAFTSMAN_HOST_CAPACITY: int(1, 10_000).optional(),
  /** API tokens: comma-separated `name:scopes:token`, scopes read, write, approve and admin joined by +. Every route but /health needs one. */
  DRAFTSMAN_API_TOKENS: z.string().optional(),
  /** A file of API tokens, one `name:scopes:token` a line. */
  DRAFTSMAN_API_TOKENS_FILE: z.string().optional(),
  /** Requests a minute per API token. */
  DRAFTSMAN_API_RATE_PER_MINUTE: int(1, 1_000_000).default(600),
  /**
   * Log streams (`follow=true`) one API process serves at once; each reads the store
   * every 200 ms. Past it a new one gets 429 with Retry-After.
   */
  DRAFTSMAN_MAX_FOLLOW_STREAMS: int(1, 100_000).default(64),
  /** Largest request body the API reads, in bytes; a larger one gets 413 `too_large` and is not parsed. */
  DRAFTSMAN_API_MAX_BODY_BYTES: int(1024, 16 * 1024 * 1024).default(256 * 1024),
  /**
   * Keys that encrypt Temporal payloads (AES-256-GCM): comma-separated `id:base64-of-32-bytes`,
   * the first encrypts, all decrypt. Every worker and client of the namespace needs them.
   */
  DRAFTSMAN_PAYLOAD_KEYS: z.string().optional(),
  /** Origins (comma-separated) allowed to call the codec endpoints, e.g. the Temporal Web UI's. */
  DRAFTSMAN_CODEC_CORS_ORIGINS: z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((o) => o.trim())
        .filter(Boolean),
    ),
  /**
   * The Temporal Web UI server to serve under /temporal, behind Draftsman's sign-in (its
   * server started with --ui-public-path /temporal); `npm start` sets it to its own.
   */
  DRAFTSMAN_TEMPORAL_UI_PROXY: z.url().optional(),
  /** Sign-in attempts (POST /v1/session, /login) a minute per client address; past it 429 with Retry-After. */
  DRAFTSMAN_SIGNIN_PER_MINUTE: int(1, 100_000).default(10),
  /** How long a browser session opened with a token lasts. */
  DRAFTSMAN_SESSION_HOURS: int(1, 24 * 30).default(12),
  /** Folder of the operator's secrets, one file per reference (else DRAFTSMAN_SECRET_<REF> in the worker's env). */
  DRAFTSMAN_SECRETS_DIR: z.string().optional(),
  /**
   * Which secret references each principal (API token name, or sdk:IDENTITY) may name:
   * `PRINCIPAL=REF+REF`, comma- or newline-separated; `*` ends a principal prefix or is
   * every reference. Unset: every principal may name every secret.
   */
  DRAFTSMAN_SECRET_GRANTS: z
    .string()
    .optional()
    .transform((v, ctx) => {
      try {
        return parseGrants(v, 'grants');
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message.replace(/^grants: /, '') });
        return z.NEVER;
      }
    }),
  /**
   * The largest budget a principal's spec may set, and the one its jobs get without one:
   * `principal=name:value name:value, ...` (`*`: every other principal), names being
   * cpuSeconds, wallSeconds and egressBytes. Unset: no ceiling.
   */
  DRAFTSMAN_BUDGET_CEILINGS: z
    .string()
    .optional()
    .transform((v, ctx) => {
      try {
        return parseBudgetCeilings(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message.replace(/^DRAFTSMAN_BUDGET_CEILINGS: /, '') });
        return z.NEVER;
      }
    }),
  /** Image a step runs in when the spec names none. */
  DRAFTSMAN_DEFAULT_IMAGE: z.string().min(1).default('draftsman-runner:latest'),
  /** Images a spec may name besides the default one, comma-separated. */
  DRAFTSMAN_ALLOWED_IMAGES: z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((i) => i.trim())
        .filter(Boolean),
    ),
  /** Whether specs may name file:// repositories (paths on the worker's host). */
  DRAFTSMAN_ALLOW_FILE_REPOS: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
  /** Removed: steps have no network but loopback and reach out through the egress proxy. Set, it stops start-up with a message. */
  DRAFTSMAN_STEP_NETWORK: z.string().min(1).optional(),
  /**
   * How steps reach the outside: `proxy` (loopback only, shared with the job's holder,
   * whose forwarder leads to the egress service) or `none` (no way out at all).
   */
  DRAFTSMAN_STEP_EGRESS: z.enum(['proxy', 'none']).default('proxy'),
  /**
   * Forces steps onto a Docker network (for example `host`): steps then reach whatever
   * it reaches, the control plane included. Logged as a warning for every step.
   */
  DRAFTSMAN_INSECURE_STEP_NETWORK: z.string().min(1).optional(),
  /** Folder of the egress service's per-job sockets (default: <data dir>/egress). Short: a socket path has at most 107 bytes. */
  DRAFTSMAN_EGRESS_SOCKET_DIR: z.string().min(1).optional(),
  /**
   * The named volume that holds DRAFTSMAN_EGRESS_SOCKET_DIR when the worker runs in a
   * container (compose): the network holders mount it. Unset: the folder is a path on the engine's host.
   */
  DRAFTSMAN_EGRESS_SOCKET_VOLUME: z.string().min(1).optional(),
  /**
   * Network holders each worker keeps made and started ahead of its jobs (never shared:
   * a job takes one and it is its own), so a job's first step need not wait for its
   * holder. 0: each job makes its own. Only with the socket folder on the engine's host.
   */
  DRAFTSMAN_READY_HOLDERS: int(0, 64).default(2),
  /** Image of the per-job network holder; it needs socat. */
  DRAFTSMAN_HOLDER_IMAGE: z.string().min(1).default('draftsman-runner:latest'),
  /** Egress entries of a spec that has none, comma-separated (host, host:port, *.domain[:port], or a preset). */
  DRAFTSMAN_EGRESS_ALLOW: list,
  /** The entries a spec may allow at most, comma-separated; `*` (the default) is any public host on any port. */
  DRAFTSMAN_EGRESS_CEILING: z.string().default('*'),
  /** Named host lists a spec may use as one entry, as JSON: {"npm": ["<your registry host>"], ...}. */
  DRAFTSMAN_EGRESS_PRESETS: z
    .string()
    .default('{}')
    .transform((v, ctx) => {
      try {
        const parsed: unknown = JSON.parse(v);
        if (
          parsed &&
          typeof parsed === 'object' &&
          !Array.isArray(parsed) &&
          Object.values(parsed).every((l) => Array.isArray(l) && l.every((e) => typeof e === 'string'))
        ) {
          return parsed as Record<string, string[]>;
        }
      } catch {
        // reported below
      }
      ctx.addIssue({ code: 'custom', message: 'must be a JSON object of name -> list of egress entries' });
      return z.NEVER;
    }),
  /**
   * host:port pairs the proxy connects to even though their address is loopback or
   * private (a package mirror on the LAN, a test's fixture on 127.0.0.1), comma-separated.
   * A spec still has to allow them.
   */
  DRAFTSMAN_EGRESS_EXCEPTIONS: list,
  /**
   * A PEM file of CAs the egress proxy trusts, besides the system's, when it connects
   * upstream to add a credential (a private host with its own CA).
   */
  DRAFTSMAN_EGRESS_CA_BUNDLE: z.string().min(1).optional(),
  /**
   * host:port webhook targets the API delivers to even though their address is loopback
   * or private (a receiver on the LAN, a test's on 127.0.0.1), comma-separated.
   */
  DRAFTSMAN_WEBHOOK_EXCEPTIONS: list,
  /** Seconds between a failed webhook attempt and the next, one per retry (about a day in all by default). */
  DRAFTSMAN_WEBHOOK_RETRY_SECONDS: z
    .string()
    .default('5,60,300,1800,7200,21600,54000')
    .transform((v, ctx) => {
      const waits = v.split(',').map((x) => Number(x.trim()));
      if (waits.length === 0 || waits.length > 50 || waits.some((w) => !Number.isInteger(w) || w < 1 || w > 7 * 86_400)) {
        ctx.addIssue({ code: 'custom', message: 'must be 1 to 50 whole numbers of seconds (1 to 604800), comma-separated' });
        return z.NEVER;
      }
      return waits;
    }),
  /** Whether this API process sends webhook deliveries (`off`: another one does, or none). */
  DRAFTSMAN_WEBHOOK_DELIVERY: z.enum(['on', 'off']).default('on'),
  /** uid:gid steps run as; never root. */
  DRAFTSMAN_STEP_USER: z
    .string()
    .regex(/^[1-9][0-9]*:[1-9][0-9]*$/, 'must be uid:gid with both non-zero')
    .default('1000:1000'),
  /** Memory limit per step container, in MiB (swap is set equal, so no extra swap). */
  DRAFTSMAN_STEP_MEMORY_MB: int(16, 1_048_576).default(2048),
  /** CPU limit per step container, in cores. */
  DRAFTSMAN_STEP_CPUS: z.coerce.number().positive().max(1024).default(2),
  /** Process limit per step container. */
  DRAFTSMAN_STEP_PIDS_LIMIT: int(16, 1_000_000).default(1024),
  /**
   * The OCI runtime of every step container, registered with the engine under this
   * name (`runsc`: gVisor, a kernel of its own between the step and the host's).
   * Unset: the engine's default (runc). A runtime the engine does not have stops the
   * worker at start-up: steps never fall back to a weaker one.
   */
  DRAFTSMAN_STEP_RUNTIME: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'a runtime name as the engine registers it, e.g. runsc')
    .optional(),
  /**
   * Where the kernel's cgroups are mounted. With the engine's cgroupfs driver, each step
   * container runs under a cgroup of its own there, whose accounting (CPU time, memory
   * peak) is the job's ledger and what its budget counts; `off`, or another driver, and
   * steps have no CPU or memory figures (docs/ledger.md).
   */
  DRAFTSMAN_CGROUP_ROOT: z.string().min(1).default('/sys/fs/cgroup'),
  /** Default step time limit when the spec gives none. */
  DRAFTSMAN_STEP_TIMEOUT_SECONDS: int(1, 86_400).default(600),
  /** Default job time limit when the spec gives none. */
  DRAFTSMAN_JOB_TIMEOUT_SECONDS: int(1, 7 * 86_400).default(3600),
  /** Ceilings on what a spec may ask for: a spec over one is refused (400) naming the field and the ceiling. */
  DRAFTSMAN_MAX_STEP_SECONDS: int(1, 86_400).default(86_400),
  DRAFTSMAN_MAX_JOB_SECONDS: int(1, 7 * 86_400).default(7 * 86_400),
  DRAFTSMAN_MAX_ITERATIONS: int(1, 1000).default(1000),
  /** Setup and validate steps of one job together. */
  DRAFTSMAN_MAX_STEPS: int(1, 200).default(200),
  /** The largest `concurrency.limit` a spec may ask for (a spec over it is refused, 400). */
  DRAFTSMAN_MAX_CONCURRENCY_LIMIT: int(1, 10_000).default(100),
  /**
   * Whose dependency caches and kept workspaces a job reads and writes: those of its
   * repository and principal (`principal`), or of its repository whoever started it (`repo`).
   */
  DRAFTSMAN_CACHE_SCOPE: z.enum(['principal', 'repo']).default('principal'),
  /** Bytes of caches and kept workspaces one scope keeps on a host; the janitor evicts the least recently used past it. 0: no limit. */
  DRAFTSMAN_CACHE_SCOPE_BUDGET_MB: int(0, 10_000_000).default(2048),
  /** Bytes of caches and kept workspaces a host keeps, all scopes together. 0: no limit. */
  DRAFTSMAN_CACHE_BUDGET_MB: int(0, 10_000_000).default(20_480),
  /** Time between SIGTERM and SIGKILL when a step is stopped. */
  DRAFTSMAN_STOP_GRACE_SECONDS: int(0, 3600).default(10),
  /**
   * How long an engine request that should answer at once (create, start, inspect,
   * stop past its grace, remove, list) may go unanswered before the engine is taken as
   * unreachable: an engine that hangs fails the attempt, which is retried, instead of
   * holding it forever.
   */
  DRAFTSMAN_ENGINE_REQUEST_SECONDS: int(1, 3600).default(60),
  /** Port of the PostgreSQL that `npm start` embeds when DATABASE_URL is unset. */
  DRAFTSMAN_EMBEDDED_PG_PORT: int(1, 65_535).default(54329),
  /** Port of the Temporal Web UI of the dev server that `npm start` runs. */
  DRAFTSMAN_TEMPORAL_UI_PORT: int(1, 65_535).default(8233),
  /** Output stored per step; past it the step runs on and its stored log ends with a truncation marker. */
  DRAFTSMAN_STEP_LOG_MAX_BYTES: int(1024, 2 ** 31).default(10 * 2 ** 20),
  /** Output stored per job, all its steps together; past it each step's stored log ends with a marker saying so. */
  DRAFTSMAN_JOB_LOG_MAX_BYTES: int(1024, 2 ** 40).default(100 * 2 ** 20),
  /** Size cap of the stored patch (git diff after the loop). */
  DRAFTSMAN_PATCH_MAX_BYTES: int(1024, 2 ** 31).default(5 * 2 ** 20),
  /** A job does not start while the disk holding DRAFTSMAN_DISK_GUARD_PATH has less free space than this (MiB); 0 disables. */
  DRAFTSMAN_MIN_FREE_DISK_MB: int(0, 1_000_000_000).default(1024),
  /**
   * Disk a job's workspace may take (MiB), measured with du every 10 s while a step runs
   * (this engine has no volume quota); past it the step is stopped and fails
   * `workspace_full`. 0: not measured.
   */
  DRAFTSMAN_MAX_WORKSPACE_MB: int(0, 1_000_000_000).default(20_480),
  /** Path whose file system the disk guard watches (where the engine keeps volumes). Default: the data folder. */
  DRAFTSMAN_DISK_GUARD_PATH: z.string().min(1).optional(),
  /** Interval of the janitor schedule, in seconds; 0 leaves the schedule out. */
  DRAFTSMAN_JANITOR_INTERVAL_SECONDS: int(0, 86_400).default(300),
  /** A workflow bundle built ahead (`npm run build:bundle` writes dist/workflow-bundle.js; the image has one); unset: bundled at start-up. */
  DRAFTSMAN_WORKFLOW_BUNDLE: z.string().min(1).optional(),
  /** Port of the worker's own /metrics and /health (separate process only); 0 turns it off. */
  DRAFTSMAN_WORKER_METRICS_PORT: int(0, 65_535).default(9464),
  /** Port of the egress service's own /metrics (refusals, connections, bytes); 0 turns it off. */
  DRAFTSMAN_EGRESS_METRICS_PORT: int(0, 65_535).default(9465),
  /** Level of the worker's and the Temporal SDK's own log lines. */
  DRAFTSMAN_LOG_LEVEL: z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR']).default('INFO'),
  /**
   * Loop iterations per workflow run: past this the job continues as a new run of the
   * same workflow id, so that a long loop's history stays bounded.
   */
  DRAFTSMAN_LOOP_ITERATIONS_PER_RUN: int(1, 10_000).default(100),
  /** Steps the worker runs at once. */
  DRAFTSMAN_MAX_CONCURRENT_STEPS: int(1, 10_000).default(8),
});

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * Any variable NAME may instead be given as NAME_FILE, the path of a file holding the
 * value (compose and Kubernetes secrets are files). Setting both is an error. An
 * empty variable counts as unset, as compose passes `${X:-}` through empty.
 */
function resolveEnv(env: NodeJS.ProcessEnv): { values: Record<string, string>; problems: string[] } {
  const keys = Object.keys(configSchema.shape);
  const values: Record<string, string> = {};
  const problems: string[] = [];
  for (const key of keys) {
    const direct = env[key];
    const file = keys.includes(`${key}_FILE`) ? undefined : env[`${key}_FILE`];
    if (direct && file) {
      problems.push(`  ${key}: set either ${key} or ${key}_FILE, not both`);
    } else if (file) {
      try {
        values[key] = fs.readFileSync(file, 'utf8').replace(/\r?\n$/, '');
      } catch (err) {
        problems.push(`  ${key}_FILE: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
    } else if (direct) {
      values[key] = direct;
    }
  }
  return { values, problems };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const { values, problems } = resolveEnv(env);
  const result = configSchema.safeParse(values);
  const lines = [...problems, ...(result.success ? [] : result.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`))];
  if (lines.length > 0 || !result.success) {
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const config = result.data;
  if (config.DRAFTSMAN_STEP_NETWORK) {
    throw new ConfigError(
      'invalid configuration:\n  DRAFTSMAN_STEP_NETWORK: removed; steps have no network but loopback and reach out through the egress proxy ' +
        '(DRAFTSMAN_EGRESS_ALLOW, DRAFTSMAN_EGRESS_EXCEPTIONS); DRAFTSMAN_INSECURE_STEP_NETWORK forces a Docker network on them',
    );
  }
  config.DRAFTSMAN_EGRESS_SOCKET_DIR ??= path.join(config.DRAFTSMAN_DATA_DIR, 'egress');
  for (const [value, ceiling] of [
    ['DRAFTSMAN_STEP_TIMEOUT_SECONDS', 'DRAFTSMAN_MAX_STEP_SECONDS'],
    ['DRAFTSMAN_JOB_TIMEOUT_SECONDS', 'DRAFTSMAN_MAX_JOB_SECONDS'],
  ] as const) {
    if (config[value] > config[ceiling]) throw new ConfigError(`invalid configuration:\n  ${value}: ${config[value]} is over ${ceiling} (${config[ceiling]})`);
  }
  const egressProblem = egressConfigProblem(config);
  if (egressProblem) throw new ConfigError(`invalid configuration:\n  ${egressProblem}`);
  if (config.DATABASE_PASSWORD) {
    if (!config.DATABASE_URL) throw new ConfigError('invalid configuration:\n  DATABASE_PASSWORD: needs DATABASE_URL');
    const url = new URL(config.DATABASE_URL);
    url.password = encodeURIComponent(config.DATABASE_PASSWORD);
    config.DATABASE_URL = url.toString();
  }
  return config;
}

/** The egress settings checked together, so that a bad entry stops start-up rather than a job. */
function egressConfigProblem(config: Config): string | null {
  const dirProblem = socketDirProblem(config.DRAFTSMAN_EGRESS_SOCKET_DIR!);
  if (dirProblem) return `DRAFTSMAN_EGRESS_SOCKET_DIR: ${dirProblem}`;
  try {
    operatorEgress(config);
  } catch (err) {
    return `DRAFTSMAN_EGRESS_*: ${(err as Error).message}`;
  }
  return null;
}

/** The operator's egress settings, as the policy takes them. */
export function operatorEgress(
  config: Pick<Config, 'DRAFTSMAN_EGRESS_ALLOW' | 'DRAFTSMAN_EGRESS_CEILING' | 'DRAFTSMAN_EGRESS_PRESETS' | 'DRAFTSMAN_EGRESS_EXCEPTIONS'>,
): OperatorEgress {
  const presets = config.DRAFTSMAN_EGRESS_PRESETS;
  const ceilingText = config.DRAFTSMAN_EGRESS_CEILING.trim();
  const ceiling =
    ceilingText === '*'
      ? ('any' as const)
      : ceilingText
          .split(',')
          .map((e) => e.trim())
          .filter(Boolean);
  if (ceiling !== 'any') for (const e of ceiling) parseAllowEntry(e, presets);
  for (const e of config.DRAFTSMAN_EGRESS_ALLOW) parseAllowEntry(e, presets);
  for (const entries of Object.values(presets)) for (const e of entries) parseAllowEntry(e, {});
  return { defaults: config.DRAFTSMAN_EGRESS_ALLOW, ceiling, presets, exceptions: parseExceptions(config.DRAFTSMAN_EGRESS_EXCEPTIONS) };
}

export function requireDatabaseUrl(config: Config): string {
  if (!config.DATABASE_URL) throw new ConfigError('invalid configuration:\n  DATABASE_URL: required');
  return config.DATABASE_URL;
}
