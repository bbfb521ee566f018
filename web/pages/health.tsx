/** The service's health: the API, its database and disk, and the jobs queued and running. */
import { useState } from 'preact/hooks';
import type { components } from '../../client/api-types';
import { call } from '../api';
import { ErrorNote, Link } from '../components/link';
import { usePoll } from '../components/poll';
import { BASE } from '../router';

type Health = components['schemas']['Health'];
const COUNTED = ['queued', 'running', 'awaiting_approval'] as const;
const CAP = 500;

export function HealthPage() {
  const [health, setHealth] = useState<Health | null>(null);
  const [counts, setCounts] = useState<Record<string, number>>({});
  const [error, setError] = useState<unknown>(null);
  usePoll(
    async () => {
      try {
        // /health answers 503 with its body when a service is down: read it either way.
        const res = await fetch('/health', { headers: { accept: 'application/json' } });
        setHealth((await res.json()) as Health);
        const pages = await Promise.all(COUNTED.map((s) => call<{ jobs: unknown[] }>(`/v1/jobs?status=${s}&limit=${CAP}`)));
        setCounts(Object.fromEntries(COUNTED.map((s, i) => [s, pages[i]!.jobs.length])));
        setError(null);
      } catch (err) {
        setError(err);
      }
    },
    10_000,
    [],
  );
  const disk = health?.disk as { enough?: boolean; freeMb?: number; floorMb?: number; path?: string; error?: string } | undefined;
  const gib = (mb?: number) => (mb === undefined ? '—' : `${(mb / 1024).toFixed(1)} GiB`);
  return (
    <section aria-labelledby="health-title">
      <h1 id="health-title">Health</h1>
      <ErrorNote error={error} />
      {health ? (
        <dl class="facts">
          <dt>Service</dt>
          <dd class={`health-${health.status}`}>{health.status}</dd>
          <dt>Database</dt>
          <dd>{health.database}</dd>
          <dt>Disk</dt>
          <dd>{disk ? (disk.error ? `error: ${disk.error}` : `${gib(disk.freeMb)} free at ${disk.path ?? '—'}, floor ${gib(disk.floorMb)}${disk.enough ? '' : ': new jobs wait'}`) : 'not watched'}</dd>
          {COUNTED.map((s) => (
            <>
              <dt>{s.replace('_', ' ')}</dt>
              <dd>
                <Link href={`${BASE}/?status=${s}`}>{counts[s] === undefined ? '…' : counts[s]! >= CAP ? `${CAP}+` : counts[s]} jobs</Link>
              </dd>
            </>
          ))}
        </dl>
      ) : (
        <p class="loading">Loading…</p>
      )}
      <p class="hint">Hosts and their capacity appear here once the API knows of more than one worker host.</p>
    </section>
  );
}
