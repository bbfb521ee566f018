/**
 * Which failures of an engine request mean that the engine itself went away (it is
 * stopping, restarting, gone, or hanging past a request's bound) rather than that it
 * answered with an error. On a
 * graceful stop the engine closes its API before it stops its containers, so a step's
 * wait sees the connection break first; the exit it finds afterwards is the engine's
 * doing, not the command's.
 */
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOENT', 'EPIPE', 'ECONNABORTED', 'ENOTCONN']);

export function isEngineUnreachable(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const e = err as { statusCode?: unknown; code?: unknown; message?: unknown; name?: unknown; cause?: { name?: unknown } };
  // An HTTP answer, however bad, came from a running engine.
  if (typeof e.statusCode === 'number') return false;
  // A request Draftsman bounded in time and the engine left unanswered: it hangs.
  if (e.name === 'AbortError' && e.cause?.name === 'TimeoutError') return true;
  if (typeof e.code === 'string' && CONNECTION_CODES.has(e.code)) return true;
  return typeof e.message === 'string' && /socket hang up|connect ECONN|read ECONNRESET/.test(e.message);
}

/**
 * A start refused because the runtime still holds the container or its task: an
 * engine killed between creating them and recording it comes back not knowing it, and
 * every later start of that container fails the same way ("task ...: already exists",
 * "id already in use" when the kill came before the task, or the shim's folder left).
 */
export function isWedged(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const e = err as { statusCode?: unknown; message?: unknown };
  // Or the runtime's task folder of the container is left from before the kill (its shim
  // cannot be started: "failed to start shim: mkdir .../<id>: file exists").
  if (
    e.statusCode === 500 &&
    typeof e.message === 'string' &&
    /task [0-9a-f]{12,}: already exists|server error - id already in use|failed to start shim: mkdir \S*\/[0-9a-f]{12,}: file exists/.test(e.message)
  ) {
    return true;
  }
  // Or the other half: the engine came back with the container's name and record (an
  // inspect finds it, `created`) but not the container itself, so a start of it is a 404.
  // dockerode words every 404 of a start "no such container"; the engine's own text, after
  // it, says which (a missing network is a 404 too).
  return e.statusCode === 404 && typeof e.message === 'string' && /No such container: [0-9a-f]{12,}/.test(e.message);
}
