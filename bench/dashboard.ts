/**
 * The dashboard over 1,000 jobs: what a first visit downloads (the page, its script and
 * style sheet: as served, and gzipped as a compressing proxy would send them), and the
 * time from navigation to the first rows of the jobs list, each run in a new browser
 * context (a cold cache). The jobs are rows written here, as the API records them.
 */
import { gzipSync } from 'node:zlib';
import { newJobId } from '../client/jobs';
import { launchChromium } from '../testing/browser';
import type { Measure } from './guarantees';
import type { BenchStack } from './harness';
import { summarize } from './stats';

export async function dashboard(stack: BenchStack, opts: { jobs: number; runs: number }): Promise<Measure[]> {
  const repo = `http://127.0.0.1:9/bench-dashboard-${Date.now()}.git`;
  for (let i = 0; i < opts.jobs; i++) {
    await stack.store.recordQueued(newJobId(), `run-${i}`, repo, 'b'.repeat(40), { labels: { bench: 'dashboard' } }, { principal: 'bench' });
  }
  await stack.store.pool.query(
    `UPDATE jobs SET status = 'succeeded', started_at = created_at, finished_at = created_at + INTERVAL '2 seconds' WHERE repo = $1`,
    [repo],
  );
  const browser = await launchChromium();
  const firstRows: number[] = [];
  const paints: number[] = [];
  let served = 0;
  let gzipped = 0;
  try {
    for (let run = 0; run < opts.runs; run++) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      try {
        const signIn = await context.request.post(`${stack.apiUrl}/v1/session`, { data: { token: stack.authHeader.authorization!.slice('Bearer '.length) } });
        if (signIn.status() !== 201) throw new Error(`signing in answered ${signIn.status()}`);
        const page = await context.newPage();
        const bodies: Promise<Buffer>[] = [];
        page.on('response', (r) => void (new URL(r.url()).pathname.startsWith('/ui') && bodies.push(r.body())));
        const started = Date.now();
        await page.goto(`${stack.apiUrl}/ui/`);
        await page.locator('tr[data-job]').first().waitFor({ timeout: 30_000 });
        firstRows.push(Date.now() - started);
        paints.push(Number(await page.evaluate("performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN")));
        if (run === 0) {
          const all = await Promise.all(bodies);
          served = all.reduce((n, b) => n + b.length, 0);
          gzipped = all.reduce((n, b) => n + gzipSync(b).length, 0);
        }
      } finally {
        await context.close();
      }
    }
  } finally {
    await browser.close();
    await stack.store.pool.query('DELETE FROM events WHERE job_id IN (SELECT id FROM jobs WHERE repo = $1)', [repo]);
    await stack.store.pool.query('DELETE FROM jobs WHERE repo = $1', [repo]);
  }
  const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
  return [
    {
      name: 'dashboard page weight, first visit',
      how: `the page, its script and its style sheet as served (${kib(served)}), gzipped as a compressing proxy would send them (${kib(gzipped)}); KiB`,
      unit: 'count',
      summary: summarize([served / 1024]),
    },
    {
      name: `dashboard jobs list with ${opts.jobs} jobs: first rows`,
      how: 'new browser context (cold cache), navigation to /ui/ to the first row of the first page (50 jobs) in the DOM; Chromium headless',
      target: '< 1 s',
      summary: summarize(firstRows),
    },
    {
      name: `dashboard jobs list with ${opts.jobs} jobs: first contentful paint`,
      how: "the browser's own first-contentful-paint entry, same runs",
      summary: summarize(paints.filter((p) => Number.isFinite(p))),
    },
  ];
}
