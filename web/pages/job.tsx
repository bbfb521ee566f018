/** One job: its state, actions, steps, live log, patch, result and events. */
import { useCallback, useState } from 'preact/hooks';
import { ApiError, call, type Session } from '../api';
import { Controls } from '../components/controls';
import { DiffView } from '../components/diff-view';
import { ErrorNote, Link, StatusBadge } from '../components/link';
import { LogView } from '../components/log-view';
import { usePoll } from '../components/poll';
import { age, type AuditEvent, eventSummary, humanDuration, isFinal, type JobView, runTime, stepName, stepOutcome, stepPhase } from '../lib/format';
import { BASE } from '../router';

const REFRESH_MS = 3_000;

function temporalLink(id: string): string | null {
  const base = document.querySelector('meta[name="draftsman-temporal-ui"]')?.getAttribute('content');
  return base ? `${base}/${encodeURIComponent(id)}` : null;
}

export function JobPage({ id, session }: { id: string; session: Session }) {
  const [job, setJob] = useState<JobView | null>(null);
  const [events, setEvents] = useState<AuditEvent[]>([]);
  const [patch, setPatch] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [step, setStep] = useState<string | null>(null);
  const [now, setNow] = useState(Date.now());
  const [tick, setTick] = useState(0);
  const base = `/v1/jobs/${encodeURIComponent(id)}`;

  const load = useCallback(async () => {
    try {
      const [j, e] = await Promise.all([call<JobView>(base), call<{ events: AuditEvent[] }>(`${base}/events`)]);
      setJob(j);
      setEvents(e.events);
      if (j.patch && patch === null) setPatch(await call<string>(`${base}/patch`, { text: true }));
      setError(null);
    } catch (err) {
      setError(err);
    }
    setNow(Date.now());
  }, [base, patch]);
  // Until the job ends: the log stream's step and status events refresh at once, the timer in between.
  usePoll(() => (job && isFinal(job.status) ? Promise.resolve() : load()), REFRESH_MS, [id, tick]);
  const refresh = useCallback(() => void load(), [load]);

  if (!job) {
    if (error instanceof ApiError && error.status === 404) return <p role="alert">No job {id}.</p>;
    return error ? <ErrorNote error={error} /> : <p class="loading">Loading…</p>;
  }
  const ran = runTime(job, now);
  const forked = events.filter((e) => e.type === 'forked' && typeof e.data.groupId === 'string').map((e) => String(e.data.groupId));
  const temporal = temporalLink(job.id);
  return (
    <article aria-labelledby="job-title">
      <p>
        <Link href={`${BASE}/`}>← Jobs</Link>
      </p>
      <h1 id="job-title">
        Job <span class="mono">{job.id}</span> <StatusBadge status={job.status} />
      </h1>
      <dl class="facts">
        <dt>Repository</dt>
        <dd class="repo">{job.repo ?? '—'}</dd>
        <dt>Commit</dt>
        <dd class="mono">{job.commit ?? '—'}</dd>
        <dt>Principal</dt>
        <dd>{job.principal ?? '—'}</dd>
        <dt>Created</dt>
        <dd>
          <time dateTime={job.createdAt}>{age(job.createdAt, now)}</time>
        </dd>
        <dt>Duration</dt>
        <dd>{ran === null ? 'not started' : humanDuration(ran)}</dd>
        {job.labels && Object.keys(job.labels).length ? (
          <>
            <dt>Labels</dt>
            <dd>
              {Object.entries(job.labels).map(([k, v]) => (
                <span class="label">
                  {k}={v}
                </span>
              ))}
            </dd>
          </>
        ) : null}
        {job.group ? (
          <>
            <dt>Group</dt>
            <dd>
              An attempt of{' '}
              <Link href={`${BASE}/groups/${encodeURIComponent(job.group)}`}>
                <span class="mono">{job.group}</span>
              </Link>
            </dd>
          </>
        ) : null}
        {forked.length ? (
          <>
            <dt>Forked into</dt>
            <dd>
              {forked.map((g) => (
                <Link key={g} href={`${BASE}/groups/${encodeURIComponent(g)}`}>
                  <span class="mono">{g}</span>
                </Link>
              ))}
            </dd>
          </>
        ) : null}
        {job.waiting ? (
          <>
            <dt>Waiting</dt>
            <dd>{job.waiting}</dd>
          </>
        ) : null}
        {job.retrying ? (
          <>
            <dt>Retrying</dt>
            <dd class="retrying">
              {job.retrying.activity}, attempt {job.retrying.attempt}
              {job.retrying.nextAttemptAt ? `, next try at ${new Date(job.retrying.nextAttemptAt).toLocaleTimeString()}` : ' (running)'}
              {job.retrying.lastError ? `: ${job.retrying.lastError}` : ''}
            </dd>
          </>
        ) : null}
        {temporal ? (
          <>
            <dt>Temporal</dt>
            <dd>
              <a href={temporal}>Open the workflow in the Temporal Web UI</a>
            </dd>
          </>
        ) : null}
      </dl>
      <ErrorNote error={error} />
      <Controls job={job} session={session} onChange={() => setTick((t) => t + 1)} />

      <section aria-labelledby="steps-title">
        <h2 id="steps-title">Steps</h2>
        {job.steps.length === 0 ? (
          <p>No step has started yet.</p>
        ) : (
          <ol class="timeline">
            {job.steps.map((s) => {
              const name = stepName(s);
              const took = runTime(s, now);
              return (
                <li key={name} class={`step step-${s.status}`}>
                  <button type="button" aria-pressed={step === name} onClick={() => setStep(step === name ? null : name)}>
                    <span class="step-phase">{stepPhase(s)}</span>
                    <StatusBadge status={s.status} />
                    <span>{stepOutcome(s)}</span>
                    <span>{took === null ? '' : humanDuration(took)}</span>
                  </button>
                </li>
              );
            })}
          </ol>
        )}
        {job.stepsOmitted ? <p class="hint">{job.stepsOmitted} earlier loop steps are not listed (the audit trail keeps them).</p> : null}
      </section>

      <section aria-labelledby="log-title">
        <h2 id="log-title">Log {step ? <span class="mono">· {step}</span> : '· every step'}</h2>
        {step ? (
          <button type="button" class="secondary" onClick={() => setStep(null)}>
            Show every step
          </button>
        ) : null}
        <LogView jobId={job.id} step={step} onActivity={refresh} />
      </section>

      <section aria-labelledby="result-title">
        <h2 id="result-title">Result</h2>
        <ul class="result">
          <li>Status: {job.status.replace('_', ' ')}</li>
          {job.error ? <li class="error">Error: {job.error}</li> : null}
          {job.loop ? (
            <li>
              Loop: {job.loop.iterations} iteration{job.loop.iterations === 1 ? '' : 's'}, {job.loop.converged ? 'converged' : 'did not converge'}
            </li>
          ) : null}
          {job.patch ? (
            <li>
              Patch: {job.patch.bytes} bytes{job.patch.truncated ? ' (cut at the limit)' : ''}
            </li>
          ) : null}
          {job.ledger ? (
            <li class="ledger">
              Ledger: {job.ledger.cpuSeconds === null ? 'CPU not measured' : `${job.ledger.cpuSeconds.toFixed(2)} CPU-seconds`}
              {job.ledger.peakMemoryBytes === null ? '' : `, memory peak ${(job.ledger.peakMemoryBytes / 2 ** 20).toFixed(1)} MiB`}, {job.ledger.steps}{' '}
              {job.ledger.steps === 1 ? 'step' : 'steps'}
              {job.ledger.wallSeconds === null ? '' : `, ${humanDuration(job.ledger.wallSeconds * 1000)} wall`}
              {job.ledger.workspaceBytes === null ? '' : `, workspace ${(job.ledger.workspaceBytes / 2 ** 20).toFixed(1)} MiB`}
            </li>
          ) : null}
          {job.egress ? (
            <li>
              Egress: {job.egress.connections} connections, {job.egress.denied} refused, {job.egress.bytesOut} bytes out, {job.egress.bytesIn} bytes in
            </li>
          ) : null}
          {(job.credentialUse ?? []).map((u) => (
            <li key={`${u.env} ${u.host}`}>
              Credential <span class="mono">{u.env}</span> ({u.secret}) added by the egress proxy on <span class="mono">{u.host}</span>: {u.requests}{' '}
              {u.requests === 1 ? 'request' : 'requests'}
            </li>
          ))}
        </ul>
      </section>

      <section aria-labelledby="patch-title">
        <h2 id="patch-title">Changes</h2>
        {patch !== null ? (
          <DiffView patch={patch} truncated={Boolean(job.patch?.truncated)} />
        ) : (
          <p>{job.patch ? 'Loading…' : 'No patch (the job has no loop, or has not finished it).'}</p>
        )}
      </section>

      <section aria-labelledby="events-title">
        <h2 id="events-title">Events</h2>
        <div class="table-wrap">
          <table class="events">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Event</th>
                <th scope="col">Details</th>
              </tr>
            </thead>
            <tbody>
              {events.map((e) => (
                <tr key={e.id}>
                  <td>
                    <time dateTime={e.at} title={e.at}>
                      {new Date(e.at).toLocaleTimeString()}
                    </time>
                  </td>
                  <td>{e.type}</td>
                  <td class="details">{eventSummary(e.data)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
    </article>
  );
}
