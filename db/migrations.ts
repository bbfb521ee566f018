import type { Pool } from 'pg';
import { inLockedTransaction } from './transaction';

/**
 * Schema migrations, applied in order at start-up by the API and the worker.
 * Append only: a released migration is never edited.
 */
export const MIGRATIONS: readonly { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'jobs, steps and events',
    sql: `
      CREATE TABLE jobs (
        id              text PRIMARY KEY,
        run_id          text,
        status          text NOT NULL,
        repo            text,
        commit          text,
        spec            jsonb,
        created_at      timestamptz NOT NULL DEFAULT now(),
        started_at      timestamptz,
        finished_at     timestamptz,
        loop_iterations integer,
        loop_converged  boolean,
        error           text,
        updated_at      timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX jobs_created_at_idx ON jobs (created_at DESC, id DESC);
      CREATE INDEX jobs_status_created_at_idx ON jobs (status, created_at DESC, id DESC);

      CREATE TABLE steps (
        job_id      text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        kind        text NOT NULL,
        index       integer NOT NULL,
        seq         integer NOT NULL,
        status      text NOT NULL,
        exit_code   integer,
        oom_killed  boolean,
        started_at  timestamptz,
        finished_at timestamptz,
        PRIMARY KEY (job_id, kind, index)
      );
      CREATE INDEX steps_job_seq_idx ON steps (job_id, seq);

      CREATE TABLE events (
        id      bigserial PRIMARY KEY,
        job_id  text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        key     text NOT NULL,
        type    text NOT NULL,
        data    jsonb NOT NULL DEFAULT '{}'::jsonb,
        at      timestamptz NOT NULL DEFAULT now(),
        UNIQUE (job_id, key)
      );
    `,
  },
  {
    version: 2,
    name: 'waiting reason and janitor actions',
    sql: `
      ALTER TABLE jobs ADD COLUMN waiting text;

      CREATE TABLE janitor_actions (
        id      bigserial PRIMARY KEY,
        at      timestamptz NOT NULL DEFAULT now(),
        action  text NOT NULL,
        type    text NOT NULL,
        name    text NOT NULL,
        job_id  text NOT NULL,
        reason  text NOT NULL
      );
      CREATE INDEX janitor_actions_at_idx ON janitor_actions (at DESC);
    `,
  },
  {
    version: 3,
    name: 'step logs and patches',
    sql: `
      ALTER TABLE steps ADD COLUMN log_bytes bigint NOT NULL DEFAULT 0;
      ALTER TABLE steps ADD COLUMN log_truncated boolean NOT NULL DEFAULT false;

      -- A step's output in chunks of lines; (job, step, chunk) makes a retried write a no-op,
      -- and the id orders chunks as they were written, which is the order of the steps.
      CREATE TABLE step_log_chunks (
        id          bigserial PRIMARY KEY,
        job_id      text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        kind        text NOT NULL,
        index       integer NOT NULL,
        chunk       integer NOT NULL,
        first_line  integer NOT NULL,
        lines       integer NOT NULL,
        bytes       integer NOT NULL,
        truncated   boolean NOT NULL DEFAULT false,
        data        text NOT NULL,
        UNIQUE (job_id, kind, index, chunk)
      );
      CREATE INDEX step_log_chunks_job_idx ON step_log_chunks (job_id, id);

      CREATE TABLE job_patches (
        job_id      text PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
        data        bytea NOT NULL,
        bytes       integer NOT NULL,
        truncated   boolean NOT NULL,
        created_at  timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 4,
    name: 'step claims: the attempt that owns a running step, whether its command was launched, why it ended',
    sql: `
      -- A newer activity attempt takes a running step over; an older one still alive
      -- finds it taken and stops, and its log writes are refused.
      ALTER TABLE steps ADD COLUMN attempt integer NOT NULL DEFAULT 0;
      -- Set once the engine has started the command: a step launched whose container is
      -- gone was lost under the job, and is never started again.
      ALTER TABLE steps ADD COLUMN launched boolean NOT NULL DEFAULT false;
      ALTER TABLE steps ADD COLUMN reason text;
    `,
  },
  {
    version: 5,
    name: 'steps whose engine went away while they ran',
    sql: `
      -- Set when an attempt lost its connection to the engine while waiting for the
      -- step: a failure the next attempt finds was the engine's, not the command's.
      ALTER TABLE steps ADD COLUMN engine_interrupted boolean NOT NULL DEFAULT false;
    `,
  },
  {
    version: 6,
    name: 'egress use per job',
    sql: `
      -- Written by the egress service: what a job's steps reached through the proxy.
      CREATE TABLE job_egress (
        job_id      text PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
        connections bigint NOT NULL DEFAULT 0,
        denied      bigint NOT NULL DEFAULT 0,
        bytes_in    bigint NOT NULL DEFAULT 0,
        bytes_out   bigint NOT NULL DEFAULT 0,
        updated_at  timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 7,
    name: 'principal of a job',
    sql: `
      -- Who started the job: an API token's name, or sdk:IDENTITY for the Temporal SDK.
      -- Empty for jobs of earlier versions.
      ALTER TABLE jobs ADD COLUMN principal text;
    `,
  },
  {
    version: 8,
    name: 'idempotency keys',
    sql: `
      -- A request's Idempotency-Key, per principal and route, with the hash of its body and,
      -- once given, the answer that a retry with the same key and body gets again.
      CREATE TABLE idempotency_keys (
        principal  text NOT NULL,
        route      text NOT NULL,
        key        text NOT NULL,
        body_hash  text NOT NULL,
        status     integer,
        response   jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (principal, route, key)
      );
    `,
  },
  {
    version: 9,
    name: 'change notifications of a job',
    sql: `
      -- A job's row, its log chunks and its audit events notify channel draftsman_jobs with
      -- the job's id, whichever process writes them: the API's log followers and long polls
      -- wake on it instead of each polling. PostgreSQL folds identical notifications of one
      -- transaction into one, and delivers them only after it commits.
      CREATE FUNCTION draftsman_notify_job() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('draftsman_jobs', NEW.id);
        RETURN NULL;
      END $$;
      CREATE FUNCTION draftsman_notify_job_of_row() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('draftsman_jobs', NEW.job_id);
        RETURN NULL;
      END $$;
      CREATE TRIGGER jobs_notify AFTER INSERT OR UPDATE OF status, finished_at ON jobs
        FOR EACH ROW EXECUTE FUNCTION draftsman_notify_job();
      CREATE TRIGGER step_log_chunks_notify AFTER INSERT ON step_log_chunks
        FOR EACH ROW EXECUTE FUNCTION draftsman_notify_job_of_row();
      CREATE TRIGGER events_notify AFTER INSERT ON events
        FOR EACH ROW EXECUTE FUNCTION draftsman_notify_job_of_row();
    `,
  },
  {
    version: 10,
    name: 'webhooks',
    sql: `
      -- Endpoints an admin registered, with their signing secrets (the previous one kept
      -- for a day after a rotation), and the deliveries owed to them: an outbox filled in
      -- the same transaction as the audit event it announces (the trigger below), whichever
      -- process writes it, and emptied by the API's dispatchers.
      CREATE TABLE webhook_endpoints (
        id                   text PRIMARY KEY,
        url                  text NOT NULL,
        description          text,
        events               text[],
        secret               text NOT NULL,
        previous_secret      text,
        previous_valid_until timestamptz,
        created_by           text NOT NULL,
        created_at           timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE webhook_deliveries (
        id              text PRIMARY KEY,
        endpoint_id     text NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
        event_type      text NOT NULL,
        job_id          text NOT NULL,
        payload         jsonb NOT NULL,
        status          text NOT NULL DEFAULT 'pending',
        attempts        integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        leased_until    timestamptz,
        last_status     integer,
        last_error      text,
        created_at      timestamptz NOT NULL DEFAULT now(),
        delivered_at    timestamptz
      );
      CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
      CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, created_at DESC);

      CREATE FUNCTION draftsman_webhook_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE kind text;
      BEGIN
        kind := CASE NEW.type WHEN 'started' THEN 'job.started' WHEN 'step_finished' THEN 'job.step_finished' WHEN 'finished' THEN 'job.ended' END;
        IF kind IS NULL THEN RETURN NULL; END IF;
        -- The delivery id comes from the endpoint and the audit event: one per pair, the
        -- same on every attempt, so that receivers drop what they have seen.
        INSERT INTO webhook_deliveries (id, endpoint_id, event_type, job_id, payload)
        SELECT 'msg_' || md5(e.id || ':' || NEW.id::text), e.id, kind, NEW.job_id,
               jsonb_build_object('type', kind, 'timestamp', NEW.at, 'data', NEW.data || jsonb_build_object('jobId', NEW.job_id))
          FROM webhook_endpoints e
         WHERE e.events IS NULL OR kind = ANY (e.events)
        ON CONFLICT (id) DO NOTHING;
        RETURN NULL;
      END $$;
      CREATE TRIGGER events_webhooks AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION draftsman_webhook_enqueue();
    `,
  },
  {
    version: 11,
    name: 'webhook for a job awaiting approval',
    // The same function, with one more event: a job reached its approval gate.
    sql: `
      CREATE OR REPLACE FUNCTION draftsman_webhook_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE kind text;
      BEGIN
        kind := CASE NEW.type WHEN 'started' THEN 'job.started' WHEN 'step_finished' THEN 'job.step_finished'
                              WHEN 'awaiting_approval' THEN 'job.awaiting_approval' WHEN 'finished' THEN 'job.ended' END;
        IF kind IS NULL THEN RETURN NULL; END IF;
        INSERT INTO webhook_deliveries (id, endpoint_id, event_type, job_id, payload)
        SELECT 'msg_' || md5(e.id || ':' || NEW.id::text), e.id, kind, NEW.job_id,
               jsonb_build_object('type', kind, 'timestamp', NEW.at, 'data', NEW.data || jsonb_build_object('jobId', NEW.job_id))
          FROM webhook_endpoints e
         WHERE e.events IS NULL OR kind = ANY (e.events)
        ON CONFLICT (id) DO NOTHING;
        RETURN NULL;
      END $$;
    `,
  },
  {
    version: 12,
    name: 'browser sessions',
    sql: `
      CREATE TABLE sessions (
        id_digest  bytea PRIMARY KEY,
        principal  text NOT NULL,
        csrf       text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL
      );
      CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
    `,
  },
  {
    version: 13,
    name: 'hosts and placement',
    sql: `
      CREATE TABLE hosts (
        task_queue       text PRIMARY KEY,
        id               text NOT NULL,
        shared_queue     text NOT NULL,
        capacity         integer NOT NULL,
        free_disk_mb     bigint,
        min_free_disk_mb bigint NOT NULL DEFAULT 0,
        seen_at          timestamptz NOT NULL,
        started_at       timestamptz NOT NULL,
        draining         boolean NOT NULL DEFAULT false
      );
      CREATE INDEX hosts_shared_queue_idx ON hosts (shared_queue, id);
      -- A job's host (its host queue), the shared queue whose line it joined at acceptance, and since when it waits for a host.
      ALTER TABLE jobs ADD COLUMN host_queue text;
      ALTER TABLE jobs ADD COLUMN placed_from text;
      ALTER TABLE jobs ADD COLUMN host_wait_since timestamptz;
      CREATE INDEX jobs_open_host_idx ON jobs (host_queue) WHERE finished_at IS NULL;
      CREATE INDEX jobs_in_line_idx ON jobs (placed_from, created_at, id) WHERE host_queue IS NULL AND finished_at IS NULL;
    `,
  },
  {
    version: 14,
    name: 'concurrency keys and the line for a host',
    sql: `
      -- The job's resolved concurrency key ('' without one) and limit, when it was placed,
      -- and its place in the line for a host as of the last placement.
      ALTER TABLE jobs ADD COLUMN concurrency_key text NOT NULL DEFAULT '';
      ALTER TABLE jobs ADD COLUMN concurrency_limit integer;
      ALTER TABLE jobs ADD COLUMN placed_at timestamptz;
      ALTER TABLE jobs ADD COLUMN queue_position integer;
      CREATE INDEX jobs_key_placed_idx ON jobs (placed_from, concurrency_key, placed_at) WHERE placed_at IS NOT NULL;
    `,
  },
  {
    version: 15,
    name: "placement in a step's identity",
    sql: `
      -- A job moved to another host after its host was lost runs its steps again there, as
      -- a new placement: a step is (job, placement, kind, index), and so is its output.
      -- The job's current placement is the one its view shows.
      ALTER TABLE jobs ADD COLUMN placement integer NOT NULL DEFAULT 1;
      ALTER TABLE steps ADD COLUMN placement integer NOT NULL DEFAULT 1;
      ALTER TABLE steps DROP CONSTRAINT steps_pkey, ADD PRIMARY KEY (job_id, placement, kind, index);
      ALTER TABLE step_log_chunks ADD COLUMN placement integer NOT NULL DEFAULT 1;
      ALTER TABLE step_log_chunks DROP CONSTRAINT step_log_chunks_job_id_kind_index_chunk_key,
        ADD CONSTRAINT step_log_chunks_step_chunk_key UNIQUE (job_id, placement, kind, index, chunk);
    `,
  },
  {
    version: 16,
    name: 'kept volumes: dependency caches and workspaces kept after setup',
    sql: `
      -- Saved dependency caches and workspaces kept after setup: volumes on one host's
      -- engine, in a scope (repository and principal). A volume is in use once its row is.
      CREATE TABLE kept (
        id text PRIMARY KEY,
        kind text NOT NULL CHECK (kind IN ('cache', 'snapshot')),
        host_queue text NOT NULL,
        scope text NOT NULL,
        name text NOT NULL,
        key text NOT NULL,
        job_id text NOT NULL,
        commit text NOT NULL DEFAULT '',
        bytes bigint NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_used_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (host_queue, kind, scope, name, key)
      );
      CREATE INDEX kept_job_idx ON kept (job_id) WHERE kind = 'snapshot';
      CREATE INDEX kept_scope_idx ON kept (scope);
    `,
  },
  {
    version: 17,
    name: 'sessions bound to their token',
    sql: `
      ALTER TABLE sessions ADD COLUMN token_binding bytea, ADD COLUMN scopes text[];
      -- Sessions that named their token only by its name end: the name may be another token's now.
      DELETE FROM sessions;
    `,
  },
  {
    version: 18,
    name: 'credentials the egress proxy adds',
    sql: `
      -- A job's placeholder per credential variable: made by the worker at the first step
      -- that holds it, read by the egress service, which swaps it for the value.
      CREATE TABLE job_credentials (
        job_id      text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        env         text NOT NULL,
        placeholder text NOT NULL UNIQUE,
        PRIMARY KEY (job_id, env)
      );
      -- Which credential the proxy added on which host, how many times (never the value).
      CREATE TABLE job_credential_use (
        job_id   text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        env      text NOT NULL,
        secret   text NOT NULL,
        host     text NOT NULL,
        requests bigint NOT NULL DEFAULT 0,
        first_at timestamptz NOT NULL DEFAULT now(),
        last_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (job_id, env, host)
      );
    `,
  },
  {
    version: 19,
    name: 'the queue a job was submitted to',
    sql: `
      -- Set by the API when it starts a job's workflow: until a worker accepts the job, later
      -- jobs of that queue are not placed before it (db/host-store.ts earlierJoining).
      ALTER TABLE jobs ADD COLUMN submitted_to text;
      CREATE INDEX jobs_joining_idx ON jobs (submitted_to, created_at) WHERE placed_from IS NULL AND finished_at IS NULL;
    `,
  },
  {
    version: 20,
    name: 'groups of attempts from one kept workspace',
    sql: `
      -- A fork call's attempts (best-of-N): each a job of its own, started by the group's
      -- workflow from the workspace its parent kept; the winner its rule picked.
      CREATE TABLE job_groups (
        id         text PRIMARY KEY,
        parent_job text NOT NULL,
        after      text NOT NULL,
        best       text NOT NULL,
        principal  text NOT NULL,
        members    jsonb NOT NULL,
        winner     text,
        created_at timestamptz NOT NULL DEFAULT now(),
        ended_at   timestamptz
      );
      CREATE INDEX job_groups_parent_idx ON job_groups (parent_job, created_at);
      ALTER TABLE jobs ADD COLUMN group_id text;
      -- The same webhook function, with one more event: a group's last attempt ended
      -- (recorded in the parent job's audit trail).
      CREATE OR REPLACE FUNCTION draftsman_webhook_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE kind text;
      BEGIN
        kind := CASE NEW.type WHEN 'started' THEN 'job.started' WHEN 'step_finished' THEN 'job.step_finished'
                              WHEN 'awaiting_approval' THEN 'job.awaiting_approval' WHEN 'finished' THEN 'job.ended'
                              WHEN 'group_ended' THEN 'group.ended' END;
        IF kind IS NULL THEN RETURN NULL; END IF;
        INSERT INTO webhook_deliveries (id, endpoint_id, event_type, job_id, payload)
        SELECT 'msg_' || md5(e.id || ':' || NEW.id::text), e.id, kind, NEW.job_id,
               jsonb_build_object('type', kind, 'timestamp', NEW.at, 'data', NEW.data || jsonb_build_object('jobId', NEW.job_id))
          FROM webhook_endpoints e
         WHERE e.events IS NULL OR kind = ANY (e.events)
        ON CONFLICT (id) DO NOTHING;
        RETURN NULL;
      END $$;
    `,
  },
  {
    version: 21,
    name: "steps' usage, and the webhook of a job past its budget",
    sql: `
      -- What a step's processes used, from the kernel's accounting of its container, and
      -- the largest size of the job's workspace measured while its steps ran.
      ALTER TABLE steps ADD COLUMN cpu_ms bigint, ADD COLUMN peak_memory_bytes bigint;
      ALTER TABLE jobs ADD COLUMN workspace_bytes bigint;
      -- The same webhook function, with one more event: a job crossed its budget.
      CREATE OR REPLACE FUNCTION draftsman_webhook_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE kind text;
      BEGIN
        kind := CASE NEW.type WHEN 'started' THEN 'job.started' WHEN 'step_finished' THEN 'job.step_finished'
                              WHEN 'awaiting_approval' THEN 'job.awaiting_approval' WHEN 'finished' THEN 'job.ended'
                              WHEN 'group_ended' THEN 'group.ended' WHEN 'budget_exceeded' THEN 'job.budget_exceeded' END;
        IF kind IS NULL THEN RETURN NULL; END IF;
        INSERT INTO webhook_deliveries (id, endpoint_id, event_type, job_id, payload)
        SELECT 'msg_' || md5(e.id || ':' || NEW.id::text), e.id, kind, NEW.job_id,
               jsonb_build_object('type', kind, 'timestamp', NEW.at, 'data', NEW.data || jsonb_build_object('jobId', NEW.job_id))
          FROM webhook_endpoints e
         WHERE e.events IS NULL OR kind = ANY (e.events)
        ON CONFLICT (id) DO NOTHING;
        RETURN NULL;
      END $$;
    `,
  },
];

// Arbitrary constant: serialises concurrent migrators (API and worker starting together).
const MIGRATION_LOCK = 7_142_001;

export async function migrate(pool: Pool): Promise<number[]> {
  return inLockedTransaction(pool, MIGRATION_LOCK, async (client) => {
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
    const done = new Set(rows.map((r) => r.version));
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      await client.query(m.sql);
      await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(m.version);
    }
    return applied;
  });
}
