import { wireEvent } from './logs';

const line = { t: '2026-12-03T08:00:00.000Z', s: 'e' as const, x: 'oops' };

it.each([
  [
    { type: 'line' as const, id: '17.3', step: 'setup-0', line },
    { event: 'line', id: '17.3', data: { step: 'setup-0', stream: 'stderr', time: line.t, text: 'oops' } },
  ],
  [
    { type: 'line' as const, id: '2.0', step: 'loop-1', line: { ...line, s: 'o' as const, x: '' } },
    { event: 'line', id: '2.0', data: { step: 'loop-1', stream: 'stdout', time: line.t, text: '' } },
  ],
  [
    { type: 'step' as const, event: { id: 9, type: 'step_finished' as const, data: { kind: 'validate', index: 0, exitCode: 1 } } },
    { event: 'step', data: { type: 'step_finished', kind: 'validate', index: 0, exitCode: 1 } },
  ],
  [
    { type: 'status' as const, status: 'running' as const },
    { event: 'status', data: { status: 'running' } },
  ],
  [
    { type: 'end' as const, status: 'cancelled' as const },
    { event: 'end', data: { status: 'cancelled' } },
  ],
])('follow event %j is sent as %j (only lines carry an id)', (event, wire) => {
  expect(wireEvent(event)).toEqual(wire);
});
