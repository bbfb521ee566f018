/**
 * An independent witness of step starts: the engine's own event stream (`docker
 * events`), reconnected if it drops, counting `start` events per container name.
 * Draftsman's store is not consulted: it is what is being checked.
 */
import type Docker from 'dockerode';
import { LABEL_DEPLOYMENT, LABEL_ROLE } from '../common/names';

export class StartWitness {
  readonly starts = new Map<string, number>();
  private stream: NodeJS.ReadableStream | null = null;
  private stopped = false;
  private since = Math.floor(Date.now() / 1000);

  constructor(
    private readonly docker: Docker,
    private readonly deployment: string,
  ) {}

  async start(): Promise<void> {
    const filters = JSON.stringify({ type: ['container'], event: ['start'], label: [`${LABEL_DEPLOYMENT}=${this.deployment}`] });
    const stream = (await this.docker.getEvents({ since: this.since, filters })) as NodeJS.ReadableStream;
    this.stream = stream;
    let buffered = '';
    stream.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (!line.trim()) continue;
        const e = JSON.parse(line) as { Actor?: { Attributes?: Record<string, string> }; time?: number; timeNano?: number };
        const name = e.Actor?.Attributes?.name;
        // A job's network holder and the workspace's measurement run no command of the
        // job's: they may start again (after an engine restart, every few seconds).
        const role = e.Actor?.Attributes?.[LABEL_ROLE];
        if (!name || role === 'holder' || role === 'measure') continue;
        // A reconnect replays from `since`: count each start once by its time.
        const key = `${name}@${e.timeNano ?? e.time}`;
        if (this.seen.has(key)) continue;
        this.seen.add(key);
        this.starts.set(name, (this.starts.get(name) ?? 0) + 1);
      }
    });
    const reconnect = () => {
      if (this.stopped) return;
      setTimeout(() => void this.start().catch(reconnect), 500);
    };
    stream.once('end', reconnect);
    stream.once('error', reconnect);
  }

  private readonly seen = new Set<string>();

  /** Lets the stream catch up with the engine, then stops it. */
  async stop(): Promise<void> {
    await new Promise((r) => setTimeout(r, 1_000));
    this.stopped = true;
    (this.stream as unknown as { destroy?: () => void })?.destroy?.();
  }
}
