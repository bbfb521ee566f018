import { useEffect, useRef } from 'preact/hooks';

/**
 * Runs `load` now, then every `intervalMs` while the tab is visible (a hidden tab does not
 * poll, so that many open tabs stay under the API's rate limit), and at once when it
 * becomes visible again. A load still running is not started twice.
 */
export function usePoll(load: () => Promise<void>, intervalMs: number, deps: unknown[]): void {
  const latest = useRef(load);
  latest.current = load;
  useEffect(() => {
    let busy = false;
    let stopped = false;
    const tick = async () => {
      if (busy || stopped || document.visibilityState === 'hidden') return;
      busy = true;
      try {
        await latest.current();
      } finally {
        busy = false;
      }
    };
    void tick();
    const timer = setInterval(() => void tick(), intervalMs);
    const onVisible = () => void tick();
    document.addEventListener('visibilitychange', onVisible);
    return () => {
      stopped = true;
      clearInterval(timer);
      document.removeEventListener('visibilitychange', onVisible);
    };
    // The caller's deps decide when the poll restarts, as with any effect.
  }, deps);
}
