/** A group of attempts (best-of-N): its rule and winner, the attempts in a table, and their diffs side by side. */
import { useCallback, useState } from 'preact/hooks';
import { ApiError, call } from '../api';
import { DiffView } from '../components/diff-view';
import { ErrorNote, Link, StatusBadge } from '../components/link';
import { usePoll } from '../components/poll';
import { age, type GroupView, humanDuration, validationText } from '../lib/format';
import { BASE } from '../router';

const REFRESH_MS = 3_000;

const jobHref = (id: string) => `${BASE}/jobs/${encodeURIComponent(id)}`;

export function GroupPage({ id }: { id: string }) {
  const [group, setGroup] = useState<GroupView | null>(null);
  const [patches, setPatches] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const [now, setNow] = useState(Date.now());

  const load = useCallback(async () => {
    try {
      const g = await call<GroupView>(`/v1/groups/${encodeURIComponent(id)}`);
      setGroup(g);
      // A patch is taken once an attempt's loop is done, and does not change after.
      const missing = g.jobs.filter((j) => j.patch && patches[j.id] === undefined);
      if (missing.length) {
        const fetched = await Promise.all(
          missing.map(async (j) => [j.id, await call<string>(`/v1/jobs/${encodeURIComponent(j.id)}/patch`, { text: true })] as const),
        );
        setPatches((p) => ({ ...p, ...Object.fromEntries(fetched) }));
      }
      setError(null);
    } catch (err) {
      setError(err);
    }
    setNow(Date.now());
  }, [id, patches]);
  usePoll(() => (group?.endedAt ? Promise.resolve() : load()), REFRESH_MS, [id]);

  if (!group) {
    if (error instanceof ApiError && error.status === 404) return <p role="alert">No group {id}.</p>;
    return error ? <ErrorNote error={error} /> : <p class="loading">Loading…</p>;
  }
  const withPatch = group.jobs.filter((j) => patches[j.id] !== undefined);
  return (
    <article aria-labelledby="group-title">
      <p>
        <Link href={jobHref(group.parent)}>← Parent job</Link>
      </p>
      <h1 id="group-title">
        Group <span class="mono">{group.id}</span> <StatusBadge status={group.endedAt ? 'ended' : 'running'} />
      </h1>
      <dl class="facts">
        <dt>From</dt>
        <dd>
          <Link href={jobHref(group.parent)}>
            <span class="mono">{group.parent}</span>
          </Link>{' '}
          after {group.after}
        </dd>
        <dt>Rule</dt>
        <dd>
          {group.best === 'first-validated'
            ? 'the first attempt to succeed wins; the others are cancelled'
            : group.best === 'smallest-patch'
              ? 'once all ended, the smallest patch among those that succeeded'
              : 'none: every attempt runs to its end'}
        </dd>
        <dt>Winner</dt>
        <dd>
          {group.winner ? (
            <Link href={jobHref(group.winner)}>
              <span class="mono">{group.winner}</span>
            </Link>
          ) : group.endedAt ? (
            'none'
          ) : (
            'not decided yet'
          )}
        </dd>
        <dt>Started</dt>
        <dd>
          <time dateTime={group.createdAt}>{age(group.createdAt, now)}</time> by {group.principal}
        </dd>
      </dl>
      <ErrorNote error={error} />

      <section aria-labelledby="attempts-title">
        <h2 id="attempts-title">Attempts</h2>
        <div class="table-wrap">
          <table class="attempts">
            <thead>
              <tr>
                <th scope="col">Attempt</th>
                <th scope="col">Variant</th>
                <th scope="col">Status</th>
                <th scope="col">Validation</th>
                <th scope="col">Patch</th>
                <th scope="col">Duration</th>
                <th scope="col">CPU</th>
              </tr>
            </thead>
            <tbody>
              {group.jobs.map((j) => (
                <tr key={j.id} class={j.id === group.winner ? 'winner' : ''}>
                  <td>
                    <Link href={jobHref(j.id)}>
                      <span class="mono">{j.id}</span>
                    </Link>
                    {j.id === group.winner ? <strong> (winner)</strong> : null}
                  </td>
                  <td>{j.variant === null ? 'as the parent' : `variant ${j.variant}`}</td>
                  <td>
                    <StatusBadge status={j.status} />
                  </td>
                  <td>{validationText(j.validated)}</td>
                  <td>{j.patch ? `${j.patch.bytes} bytes` : '—'}</td>
                  <td>{j.durationMs === null ? '—' : humanDuration(j.durationMs)}</td>
                  <td>{j.cpuSeconds === null ? '—' : `${j.cpuSeconds.toFixed(2)} s`}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>

      <section aria-labelledby="diffs-title">
        <h2 id="diffs-title">Changes, side by side</h2>
        {withPatch.length === 0 ? (
          <p>No attempt has a patch yet (a patch is taken when an attempt's loop is done).</p>
        ) : (
          <div class="side-by-side">
            {withPatch.map((j) => (
              <section key={j.id} class="attempt-diff" aria-label={`Changes of ${j.id}`}>
                <h3>
                  <span class="mono">{j.id}</span> <StatusBadge status={j.status} />
                  {j.id === group.winner ? ' winner' : ''}
                </h3>
                <DiffView patch={patches[j.id]!} truncated={Boolean(j.patch?.truncated)} />
              </section>
            ))}
          </div>
        )}
      </section>
    </article>
  );
}
