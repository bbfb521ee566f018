/** The job's actions: cancel with a reason, rerun, resume a failed job, and the approval decision. */
import { useEffect, useRef, useState } from 'preact/hooks';
import { call, type Session } from '../api';
import { isFinal, type JobView } from '../lib/format';
import { BASE, navigate } from '../router';
import { ErrorNote } from './link';

export function Controls({ job, session, onChange }: { job: JobView; session: Session; onChange: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState('');
  const [cancelling, setCancelling] = useState(false);
  const reason = useRef<HTMLInputElement>(null);
  // The reason's field takes the focus as it opens (autofocus works on page load only).
  useEffect(() => {
    if (cancelling) reason.current?.focus();
  }, [cancelling]);
  const can = (scope: string) => session.scopes.includes(scope);
  const base = `/v1/jobs/${encodeURIComponent(job.id)}`;

  const act = async (what: string, run: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await run();
      setDone(what);
      onChange();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const cancel = (e: Event) => {
    e.preventDefault();
    const reason = String(new FormData(e.currentTarget as HTMLFormElement).get('reason') ?? '').trim();
    void act('Cancel requested.', async () => {
      await call(`${base}/cancel`, { method: 'POST', body: reason ? { reason } : {} });
      setCancelling(false);
    });
  };
  const decide = (decision: 'approve' | 'reject') => (e: Event) => {
    e.preventDefault();
    const form = (e.currentTarget as HTMLButtonElement).form!;
    const comment = String(new FormData(form).get('comment') ?? '').trim();
    void act(decision === 'approve' ? 'Approved.' : 'Rejected.', () =>
      call(`${base}/approval`, { method: 'POST', body: { decision, ...(comment ? { comment } : {}) } }),
    );
  };
  const rerun = () =>
    act('Rerun started.', async () => {
      const started = await call<{ id: string }>(`${base}/rerun`, { method: 'POST' });
      navigate(`${BASE}/jobs/${encodeURIComponent(started.id)}`);
    });

  const resume = () =>
    act('Resumed.', async () => {
      const started = await call<{ id: string }>(`${base}/resume`, { method: 'POST', body: {} });
      navigate(`${BASE}/jobs/${encodeURIComponent(started.id)}`);
    });

  const running = !isFinal(job.status);
  const resumable = job.status === 'failed' || job.status === 'timed_out';
  return (
    <section class="controls" aria-labelledby="controls-title">
      <h2 id="controls-title">Actions</h2>
      {job.status === 'awaiting_approval' && can('approve') ? (
        <form class="approval" aria-label="Approval">
          <p>This job waits for a decision before its next phase. Review the patch and the validation below.</p>
          <label>
            Comment (optional)
            <textarea name="comment" rows={2} maxLength={2000} />
          </label>
          <button type="submit" disabled={busy} onClick={decide('approve')}>
            Approve
          </button>
          <button type="button" class="danger" disabled={busy} onClick={decide('reject')}>
            Reject
          </button>
        </form>
      ) : null}
      <div class="buttons">
        {running && can('write') && !cancelling ? (
          <button type="button" class="danger" disabled={busy} onClick={() => setCancelling(true)}>
            Cancel job…
          </button>
        ) : null}
        {can('write') ? (
          <button type="button" class="secondary" disabled={busy} onClick={() => void rerun()}>
            Rerun
          </button>
        ) : null}
        {resumable && can('write') ? (
          <button type="button" class="secondary" disabled={busy} onClick={() => void resume()} title="Start again from the last workspace the job kept">
            Resume from its kept workspace
          </button>
        ) : null}
      </div>
      {cancelling ? (
        <form class="cancel" onSubmit={cancel} aria-label="Cancel the job">
          <label>
            Reason (optional)
            <input name="reason" type="text" maxLength={1000} ref={reason} />
          </label>
          <button type="submit" class="danger" disabled={busy}>
            Confirm cancel
          </button>
          <button type="button" class="secondary" onClick={() => setCancelling(false)}>
            Keep running
          </button>
        </form>
      ) : null}
      {done ? <p role="status">{done}</p> : null}
      <ErrorNote error={error} />
    </section>
  );
}
