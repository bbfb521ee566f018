/** The jobs list: filters in the address, cursor pages, refreshed every few seconds. */
import { useState } from 'preact/hooks';
import { JOB_STATUSES } from '../../common/job';
import { call } from '../api';
import { ErrorNote, Link, StatusBadge } from '../components/link';
import { usePoll } from '../components/poll';
import { age, filterFromSearch, filterSearch, humanDuration, type JobFilter, type JobView, runTime } from '../lib/format';
import { BASE, navigate } from '../router';

export const PAGE_SIZE = 50;
const REFRESH_MS = 5_000;

interface JobPage {
  jobs: JobView[];
  nextCursor: string | null;
}

export function JobsPage({ search }: { search: string }) {
  const filter = filterFromSearch(search);
  const [page, setPage] = useState<JobPage | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [now, setNow] = useState(Date.now());

  usePoll(
    async () => {
      try {
        setPage(await call<JobPage>(`/v1/jobs${filterSearch(filter, { limit: String(PAGE_SIZE) })}`));
        setError(null);
      } catch (err) {
        setError(err);
      }
      setNow(Date.now());
    },
    REFRESH_MS,
    [search],
  );

  const go = (f: JobFilter) => navigate(`${BASE}/${filterSearch(f)}`);

  return (
    <section aria-labelledby="jobs-title">
      <h1 id="jobs-title">Jobs</h1>
      <FilterForm key={search} filter={filter} onFilter={go} />
      <p class="hint">Search finds jobs whose id or commit starts with the text, or whose repository or principal contains it.</p>
      <ErrorNote error={error} />
      {page === null ? (
        <p class="loading">Loading…</p>
      ) : page.jobs.length === 0 ? (
        <p>No jobs{filter.status || filter.repo || filter.label || filter.q ? ' match these filters' : ' yet'}.</p>
      ) : (
        <div class="table-wrap">
          <table class="jobs">
            <caption class="visually-hidden">Jobs, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Job</th>
                <th scope="col">Status</th>
                <th scope="col">Repository</th>
                <th scope="col">Commit</th>
                <th scope="col">Principal</th>
                <th scope="col">Age</th>
                <th scope="col">Duration</th>
              </tr>
            </thead>
            <tbody>
              {page.jobs.map((job) => {
                const ran = runTime(job, now);
                return (
                  <tr key={job.id} data-job={job.id}>
                    <td>
                      <Link href={`${BASE}/jobs/${encodeURIComponent(job.id)}`} class="mono">
                        {job.id}
                      </Link>
                    </td>
                    <td>
                      <StatusBadge status={job.status} />
                    </td>
                    <td class="repo">{job.repo ?? '—'}</td>
                    <td class="mono">{job.commit?.slice(0, 12) ?? '—'}</td>
                    <td>{job.principal ?? '—'}</td>
                    <td>
                      <time dateTime={job.createdAt} title={job.createdAt}>
                        {age(job.createdAt, now)}
                      </time>
                    </td>
                    <td>{ran === null ? '—' : humanDuration(ran)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      <nav class="pager" aria-label="Pages">
        {filter.cursor ? <Link href={`${BASE}/${filterSearch({ ...filter, cursor: undefined })}`}>First page</Link> : null}
        {page?.nextCursor ? <Link href={`${BASE}/${filterSearch({ ...filter, cursor: page.nextCursor })}`}>Next page</Link> : null}
      </nav>
    </section>
  );
}

/**
 * The filters being edited: the form's own state, so that the list's refreshes leave what
 * is being typed alone; a new address (a filter applied, back, forward) starts it afresh.
 */
function FilterForm({ filter, onFilter }: { filter: JobFilter; onFilter: (f: JobFilter) => void }) {
  const [draft, setDraft] = useState<JobFilter>({ status: filter.status, repo: filter.repo, label: filter.label, q: filter.q });
  const field = (k: keyof JobFilter) => ({
    value: draft[k] ?? '',
    onInput: (e: Event) => setDraft((d) => ({ ...d, [k]: (e.currentTarget as HTMLInputElement | HTMLSelectElement).value })),
  });
  const onSubmit = (e: Event) => {
    e.preventDefault();
    const value = (k: keyof JobFilter) => draft[k]?.trim() || undefined;
    onFilter({ status: value('status'), repo: value('repo'), label: value('label'), q: value('q') });
  };
  const filtered = Boolean(filter.status || filter.repo || filter.label || filter.q);
  return (
    <form class="filters" onSubmit={onSubmit} role="search" aria-label="Filter jobs">
      <label>
        Status
        <select name="status" {...field('status')}>
          <option value="">any</option>
          {JOB_STATUSES.map((s) => (
            <option value={s}>{s.replace('_', ' ')}</option>
          ))}
        </select>
      </label>
      <label>
        Repository
        <input name="repo" type="text" {...field('repo')} placeholder="exact URL" />
      </label>
      <label>
        Label
        <input name="label" type="text" {...field('label')} placeholder="key=value" />
      </label>
      <label>
        Search
        <input name="q" type="search" {...field('q')} placeholder="id, commit, repository, principal" />
      </label>
      <button type="submit">Filter</button>
      {filtered ? (
        <button type="button" class="secondary" onClick={() => onFilter({})}>
          Clear
        </button>
      ) : null}
    </form>
  );
}
