import { PauseDetector } from './pause-detector';

describe('PauseDetector', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it.each([
    ['time that passes with the timers running', (ms: number) => jest.advanceTimersByTime(ms), false],
    ['a jump of the clock with no timer run (the process was stopped)', (ms: number) => jest.setSystemTime(Date.now() + ms), true],
  ])('%s: paused = %s', (_name, pass, paused) => {
    const d = new PauseDetector(2_500);
    pass(6_000);
    expect(d.take()).toBe(paused);
    // Taken once: the next call starts afresh.
    expect(d.take()).toBe(false);
    d.stop();
  });
});
