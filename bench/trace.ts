/**
 * Where a job's pickup goes: POST /v1/jobs to its first container started, split at
 * the workflow history's events and the engine's container events. `node
 * dist/bench/trace.js [runs]` prints the median offset of each point from the POST.
 */
import { startGitFixture } from '../testing/git-fixture';
import { startBenchStack, benchWorker } from './harness';
import { summarize } from './stats';

async function main() {
  const runs = Number(process.argv[2] ?? 10);
  const stack = await startBenchStack();
  const repo = await startGitFixture(1);
  const { worker, close } = await benchWorker(stack);
  const points = new Map<string, number[]>();
  const add = (name: string, ms: number) => points.set(name, [...(points.get(name) ?? []), ms]);
  const events = await stack.docker.getEvents({ filters: { type: ['container'], event: ['create', 'start'] } });
  const seen: { action: string; name: string; at: number }[] = [];
  events.on('data', (d: Buffer) => {
    for (const line of d.toString().split('\n').filter(Boolean)) {
      const e = JSON.parse(line) as { Action: string; timeNano: number; Actor: { Attributes: { name: string } } };
      seen.push({ action: e.Action, name: e.Actor.Attributes.name, at: e.timeNano / 1e6 });
    }
  });
  try {
    await worker.runUntil(async () => {
      for (let i = 0; i < runs + 1; i++) {
        seen.length = 0;
        const t0 = Date.now();
        const res = await fetch(`${stack.apiUrl}/v1/jobs`, {
          method: 'POST',
          headers: { ...stack.authHeader, 'content-type': 'application/json' },
          body: JSON.stringify({ repo: repo.url, commit: repo.head, setup: ['true'] }),
        });
        const answered = Date.now();
        const { id } = (await res.json()) as { id: string };
        await stack.client.workflow.getHandle(id).result();
        if (i === 0) continue;
        add('API answered 202', answered - t0);
        const history = await stack.client.workflow.getHandle(id).fetchHistory();
        if (i === runs) {
          // The last job's history, event by event: what a job costs the server.
          const { temporal } = await import('@temporalio/proto');
          const types = (history.events ?? []).map((e) => temporal.api.enums.v1.EventType[e.eventType!]!.replace('EVENT_TYPE_', ''));
          console.log(`history of one job: ${types.length} events\n${types.join('\n')}`);
        }
        const names: Record<string, number> = {};
        for (const e of history.events ?? []) {
          const at = Number(e.eventTime!.seconds) * 1000 + Math.floor(e.eventTime!.nanos! / 1e6);
          const type = String(e.eventType);
          const key = `${type}#${(names[type] = (names[type] ?? 0) + 1)}`;
          const label = e.activityTaskScheduledEventAttributes?.activityType?.name ?? e.markerRecordedEventAttributes?.markerName ?? '';
          add(`${key} ${label}`.trim(), at - t0);
          if (Number(e.eventId) > 14) break;
        }
        if (process.env.TRACE_EACH) console.log(`run ${i}: ${seen.map((x) => `${x.action} ${x.name.slice(-14)} ${Math.round(x.at - t0)}`).join(', ')}`);
        for (const s of seen)
          add(`engine ${s.action} ${s.name.replace(/.*-(holder|clone|setup).*/, '$1').replace(/.*-ready-.*/, 'ready holder (refill)')}`, s.at - t0);
      }
    });
  } finally {
    (events as unknown as { destroy(): void }).destroy();
    await Promise.allSettled([close(), repo.stop()]);
    await stack.stop();
  }
  const rows = [...points].map(([name, xs]) => ({ name, ...summarize(xs) })).sort((a, b) => a.median - b.median);
  for (const r of rows) console.log(`${String(Math.round(r.median)).padStart(6)} ms  p95 ${String(Math.round(r.p95)).padStart(6)}  ${r.name}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
