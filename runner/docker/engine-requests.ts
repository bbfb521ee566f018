/**
 * Two engine requests that dockerode does not make the way a step needs them: a ping
 * over a fresh connection (is the engine stopping?) and a wait that fails when the
 * engine goes away instead of hanging.
 */
import http from 'node:http';
import type Docker from 'dockerode';

/** Whether the engine takes a new connection (a kept-alive one would still work while it stops). TLS engines are not asked. */
export async function acceptsConnections(docker: Docker): Promise<boolean> {
  const m = docker.modem as unknown as { socketPath?: string | (() => Promise<string>); host?: string; port?: number | string; protocol?: string };
  if (m.protocol === 'https' || m.protocol === 'ssh') return true;
  // The default socket is found lazily (a function that resolves the path).
  const socketPath = typeof m.socketPath === 'function' ? await m.socketPath() : m.socketPath;
  return new Promise((resolve) => {
    const req = http.request({ ...(socketPath ? { socketPath } : { host: m.host, port: m.port }), path: '/_ping', agent: false, timeout: 5_000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.once('error', () => resolve(false));
    req.once('timeout', () => req.destroy(new Error('the engine did not answer a ping')));
    req.end();
  });
}

/**
 * The engine's wait, read as a stream: dockerode's own wait never settles when the
 * engine dies after it sent the response headers (the body's end never comes, and
 * the broken response is not an error of the request), so a step would wait forever
 * on an engine that was restarted under it.
 */
export async function waitNotRunning(docker: Docker, name: string, signal?: AbortSignal): Promise<void> {
  const res = await new Promise<NodeJS.ReadableStream>((resolve, reject) => {
    docker.modem.dial(
      {
        path: `/containers/${encodeURIComponent(name)}/wait?`,
        method: 'POST',
        isStream: true,
        abortSignal: signal,
        statusCodes: { 200: true, 400: 'bad parameter', 404: 'no such container', 500: 'server error' },
        options: { condition: 'not-running' },
      },
      (err: unknown, stream: unknown) => (err ? reject(err) : resolve(stream as NodeJS.ReadableStream)),
    );
  });
  const body = await new Promise<string>((resolve, reject) => {
    let text = '';
    let ended = false;
    res.on('data', (chunk: Buffer) => (text += chunk.toString()));
    res.once('end', () => {
      ended = true;
      resolve(text);
    });
    const broke = (err?: unknown) => {
      if (ended) return;
      if (signal?.aborted) reject(signal.reason ?? Object.assign(new Error('The operation was aborted'), { name: 'AbortError' }));
      else reject(Object.assign(new Error(`the engine closed the wait for ${name} before its end`), { code: 'ECONNRESET', cause: err }));
    };
    res.once('error', broke);
    res.once('close', () => broke());
    signal?.addEventListener('abort', () => (res as unknown as { destroy(): void }).destroy(), { once: true });
  });
  // A wait the engine could not finish says so in the body: { StatusCode, Error: { Message } }.
  const parsed = JSON.parse(body || '{}') as { Error?: { Message?: string } | null };
  if (parsed.Error?.Message) throw new Error(`the engine's wait for ${name} failed: ${parsed.Error.Message}`);
}
