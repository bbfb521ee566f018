/** The service's health: the API, its database and disk, the hosts and their room, and the jobs queued and running. */
import { useState } from 'preact/hooks';
import type { components } from '../../client/api-types';
import { call } from '../api';
import { ErrorNote, Link } from '../components/link';
import { usePoll } from '../components/poll';
import { BASE } from '../router';

type Health = components['schemas']['Health'];
type HostList = components['schemas']['HostList'];
const COUNTED = ['queued', 'running', 'awaiting_approval'] as const;
const CAP = 500;

const gib = (mb?: number) => (mb === undefined ? '—' : `${(mb / 1024).toFixed(1)} GiB`);

export function HealthPage() {
  const [health, setHealth] = useState<Health | null>(null);
  const [counts, setCounts] = useState<Record<string, number>>({});
  const [hosts, setHosts] = useState<HostList | null>(null);
  const [error, setError] = useState<unknown>(null);
  usePoll(
    async () => {
      try {
        // /health answers 503 with its body when a service is down: read it either way.
        const res = await fetch('/health', { headers: { accept: 'application/json' } });
        setHealth((await res.json()) as Health);
        const pages = await Promise.all(COUNTED.map((s) => call<{ jobs: unknown[] }>(`/v1/jobs?status=${s}&limit=${CAP}`)));
        setCounts(Object.fromEntries(COUNTED.map((s, i) => [s, pages[i]!.jobs.length])));
        setHosts(await call<HostList>('/v1/hosts'));
        setError(null);
      } catch (err) {
        setError(err);
      }
    },
    10_000,
    [],
  );
  const disk = health?.disk as { enough?: boolean; freeMb?: number; floorMb?: number; path?: string; error?: string } | undefined;
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
          <dd>
            {disk
              ? disk.error
                ? `error: ${disk.error}`
                : `${gib(disk.freeMb)} free at ${disk.path ?? '—'}, floor ${gib(disk.floorMb)}${disk.enough ? '' : ': new jobs wait'}`
              : 'not watched'}
          </dd>
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
      <h2 id="hosts-title">Hosts</h2>
      {hosts ? (
        <>
          <table class="jobs" aria-labelledby="hosts-title">
            <thead>
              <tr>
                <th scope="col">Host</th>
                <th scope="col">State</th>
                <th scope="col">Running</th>
                <th scope="col">Held</th>
                <th scope="col">Free disk</th>
                <th scope="col">Last heard</th>
              </tr>
            </thead>
            <tbody>
              {hosts.hosts.map((h) => (
                <tr key={h.id}>
                  <td>{h.id}</td>
                  <td class={`host-${h.state}`}>{h.state}</td>
                  <td>
                    {h.running} of {h.capacity}
                  </td>
                  <td>{h.holding}</td>
                  <td>{h.freeDiskMb === null ? '—' : gib(h.freeDiskMb)}</td>
                  <td>{new Date(h.seenAt).toLocaleTimeString()}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <p class="hint">
            {hosts.waiting} job{hosts.waiting === 1 ? '' : 's'} waiting for a host with room. Drain a host with <code>draftsman drain HOST_ID</code>.
          </p>
        </>
      ) : (
        <p class="loading">Loading…</p>
      )}
    </section>
  );
}
