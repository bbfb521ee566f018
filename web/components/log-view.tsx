/**
 * A job's log, live: the API's Server-Sent Events stream (backlog, then lines as they are
 * stored, and `end`), one step or all. Lines are text nodes (colours as classes from a
 * closed set), searched in the browser, capped in memory.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ansiSegments, type Segment } from '../lib/ansi';

export const MAX_LINES = 10_000;

interface Line {
  id: number;
  step: string;
  stream: 'stdout' | 'stderr';
  /** Parsed once, as the line arrives: renders and searches reuse them. */
  segments: Segment[];
  lower: string;
}

export function LogView({ jobId, step, onActivity }: { jobId: string; step: string | null; onActivity: () => void }) {
  const [lines, setLines] = useState<Line[]>([]);
  const [dropped, setDropped] = useState(0);
  const [state, setState] = useState<'connecting' | 'live' | 'ended' | 'lost'>('connecting');
  const [follow, setFollow] = useState(true);
  const [query, setQuery] = useState('');
  const box = useRef<HTMLDivElement>(null);
  const activity = useRef(onActivity);
  activity.current = onActivity;

  useEffect(() => {
    setLines([]);
    setDropped(0);
    setState('connecting');
    const source = new EventSource(`/v1/jobs/${encodeURIComponent(jobId)}/logs?follow=true${step ? `&step=${step}` : ''}`);
    let pending: Line[] = [];
    let frame = 0;
    let next = 0;
    // Lines arrive in bursts (the backlog): one render a frame.
    const flush = () => {
      frame = 0;
      const batch = pending;
      pending = [];
      setLines((old) => {
        const all = old.concat(batch);
        if (all.length <= MAX_LINES) return all;
        setDropped((d) => d + all.length - MAX_LINES);
        return all.slice(all.length - MAX_LINES);
      });
    };
    source.addEventListener('open', () => setState('live'));
    source.addEventListener('line', (e) => {
      const data = JSON.parse((e as MessageEvent<string>).data) as { step: string; stream: Line['stream']; text: string };
      const segments = ansiSegments(data.text);
      pending.push({
        id: next++,
        step: data.step,
        stream: data.stream,
        segments,
        lower: segments
          .map((s) => s.text)
          .join('')
          .toLowerCase(),
      });
      frame ||= requestAnimationFrame(flush);
    });
    const changed = () => activity.current();
    source.addEventListener('step', changed);
    source.addEventListener('status', changed);
    source.addEventListener('end', () => {
      source.close();
      setState('ended');
      changed();
    });
    // EventSource reconnects by itself (resuming after the last line); a refusal (too many streams) closes it.
    source.addEventListener('error', () => setState(source.readyState === EventSource.CLOSED ? 'lost' : 'connecting'));
    return () => {
      source.close();
      if (frame) cancelAnimationFrame(frame);
    };
  }, [jobId, step]);

  const shown = useMemo(() => {
    const q = query.trim().toLowerCase();
    return q ? lines.filter((l) => l.lower.includes(q)) : lines;
  }, [lines, query]);

  useEffect(() => {
    if (follow && box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [shown, follow]);

  const download = `/v1/jobs/${encodeURIComponent(jobId)}/logs${step ? `?step=${step}` : ''}`;
  return (
    <div class="log">
      <div class="log-tools">
        <label>
          Search the log
          <input type="search" value={query} onInput={(e) => setQuery((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <label class="check">
          <input type="checkbox" checked={follow} onChange={(e) => setFollow((e.currentTarget as HTMLInputElement).checked)} />
          Follow
        </label>
        <a href={download} download={`${jobId}${step ? `-${step}` : ''}.ndjson`}>
          Download (NDJSON)
        </a>
        <span class="log-state" role="status">
          {state === 'live' ? 'live' : state === 'ended' ? 'complete' : state === 'lost' ? 'stream refused: reload to retry' : 'connecting…'}
          {query ? ` · ${shown.length} of ${lines.length} lines match` : ` · ${lines.length} lines`}
          {dropped ? ` · ${dropped} earlier lines not shown (download for all)` : ''}
        </span>
      </div>
      <div class="log-lines" ref={box} tabIndex={0} aria-label={`Log of ${step ?? 'every step'}`} role="log">
        {shown.length === 0 ? <p class="log-empty">{query ? 'No line matches.' : state === 'ended' ? 'No output.' : 'No output yet.'}</p> : null}
        {shown.map((l) => (
          <div key={l.id} class={l.stream === 'stderr' ? 'line stderr' : 'line'}>
            {step ? null : <span class="line-step">{l.step}</span>}
            {l.segments.map((s) => (s.classes.length ? <span class={s.classes.join(' ')}>{s.text}</span> : s.text))}
          </div>
        ))}
      </div>
    </div>
  );
}
