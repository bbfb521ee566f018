import { checkJob, INVARIANTS, ownExit, type ObservedJob } from './invariants';

/** The engine was stopped at STOP, under a step that ran from a second before to two after. */
const STOP = Date.parse('2026-01-01T00:00:10Z');
const engineStep = (status: 'succeeded' | 'failed' | 'cancelled', exitCode: number) => ({
  kind: 'setup' as const,
  index: 0,
  status,
  exitCode,
  startedAt: new Date(STOP - 1_000).toISOString(),
  finishedAt: new Date(STOP + 2_000).toISOString(),
});

const ok: ObservedJob = {
  id: 'j',
  shape: 'single',
  temporal: 'COMPLETED',
  status: 'succeeded',
  steps: [{ kind: 'setup', index: 0, status: 'succeeded', exitCode: 0, startedAt: null, finishedAt: null }],
  logs: { 'setup-0': ['1', '2', '3'] },
  events: ['step_started:setup-0', 'step_finished:setup-0'],
  leftovers: [],
  starts: { 'setup-0': 1 },
  engineOutages: [[STOP, STOP + 3_000]],
};
const commands = { 'setup-0': 'seq 1 3' };

describe('checkJob', () => {
  it('a clean job has no violation', () => {
    expect(checkJob(ok, commands)).toEqual([]);
  });

  it.each<[string, Partial<ObservedJob>, Record<string, string>, (typeof INVARIANTS)[number]]>([
    ['still running', { status: 'running' }, commands, INVARIANTS[0]],
    ['Temporal disagrees', { temporal: 'FAILED' }, commands, INVARIANTS[0]],
    ['started twice', { starts: { 'setup-0': 2 } }, commands, INVARIANTS[1]],
    ['a volume left', { leftovers: ['draftsman-x-workspace'] }, commands, INVARIANTS[2]],
    ['a step still running', { steps: [{ ...ok.steps[0]!, status: 'running' }] }, commands, INVARIANTS[3]],
    [
      'killed without TERM',
      { status: 'cancelled', temporal: 'CANCELLED', steps: [{ ...ok.steps[0]!, status: 'cancelled', exitCode: 137 }] },
      { 'setup-0': 'trap "exit 42" TERM; sleep 9' },
      INVARIANTS[4],
    ],
    ['a line lost, unmarked', { logs: { 'setup-0': ['1', '3'] } }, commands, INVARIANTS[5]],
    ['a duplicate event', { events: ['step_started:setup-0', 'step_started:setup-0', 'step_finished:setup-0'] }, commands, INVARIANTS[6]],
    ['failed of its own across an engine stop', { status: 'failed', temporal: 'FAILED', steps: [engineStep('failed', 143)] }, commands, INVARIANTS[8]],
  ])('%s is a violation', (_name, change, cmds, invariant) => {
    expect(checkJob({ ...ok, ...change }, cmds).map((v) => v.invariant)).toContain(invariant);
  });

  it.each<[string, ObservedJob['steps'][number]]>([
    ['lost with the engine', { ...engineStep('failed', 143), reason: 'container_lost' }],
    ['its own success first', engineStep('succeeded', 0)],
    ['stopped by Draftsman', engineStep('cancelled', 143)],
  ])('a step across an engine stop %s is no violation of that invariant', (_name, s) => {
    expect(checkJob({ ...ok, status: 'failed', temporal: 'FAILED', logs: {}, steps: [s] }, {}).map((v) => v.invariant)).not.toContain(INVARIANTS[8]);
  });

  it('an engine stop while no worker watched (a worker lost) is not held against the step', () => {
    const away: [number, number][] = [[STOP - 1_000, STOP + 9_000]];
    expect(
      checkJob({ ...ok, status: 'failed', temporal: 'FAILED', workerAway: away, steps: [engineStep('failed', 42)] }, {}).map((v) => v.invariant),
    ).not.toContain(INVARIANTS[8]);
  });

  it('a step started while the engine stopped, and failed of its own, is a violation', () => {
    const during = { ...engineStep('failed', 143), startedAt: new Date(STOP + 10).toISOString() };
    expect(checkJob({ ...ok, status: 'failed', temporal: 'FAILED', steps: [during] }, {}).map((v) => v.invariant)).toContain(INVARIANTS[8]);
  });

  it('a step started as the engine stopped that ended with its own exit code is no violation', () => {
    const during = { ...engineStep('failed', 3), startedAt: new Date(STOP + 38).toISOString(), finishedAt: new Date(STOP + 38).toISOString() };
    const failing = { 'setup-0': 'echo failing; exit 3' };
    expect(checkJob({ ...ok, status: 'failed', temporal: 'FAILED', logs: {}, steps: [during] }, failing)).toEqual([]);
    // The same end with another code is the engine's.
    expect(
      checkJob({ ...ok, status: 'failed', temporal: 'FAILED', logs: {}, steps: [{ ...during, exitCode: 143 }] }, failing).map((v) => v.invariant),
    ).toContain(INVARIANTS[8]);
  });

  it.each<[string, number | null]>([
    ['echo failing; exit 3', 3],
    ['exit 0', 0],
    ['trap "exit 42" TERM; sleep 9', null],
    ['trap "exit 42" TERM; exit 5', null],
    ['seq 1 3', null],
    ['echo exit 3 later; sleep 1', null],
  ])('ownExit(%j) is %p', (command, code) => {
    expect(ownExit(command)).toBe(code);
  });

  it.each([
    ['failed on its own before the engine stop', -2_000, -100],
    ['started on the engine once it was back', 3_100, 4_000],
  ])('a step that %s is no violation', (_name, from, to) => {
    const s = { ...engineStep('failed', 3), startedAt: new Date(STOP + from).toISOString(), finishedAt: new Date(STOP + to).toISOString() };
    expect(checkJob({ ...ok, status: 'failed', temporal: 'FAILED', steps: [s] }, {})).toEqual([]);
  });

  const cancelled = { ...ok, status: 'cancelled' as const, temporal: 'CANCELLED' };
  const step = (name: string, status: 'succeeded' | 'cancelled') => {
    const [kind, index] = name.split('-');
    return { kind: kind as 'setup', index: Number(index), status, exitCode: 0, startedAt: null, finishedAt: null };
  };
  it.each([
    [
      'a step cancelled before create that ran to its end',
      { ...cancelled, steps: [step('setup-0', 'succeeded')] },
      { boundary: 'before-create', step: 'setup-0' },
      true,
    ],
    ['a step cancelled before create, stopped', { ...cancelled, steps: [step('setup-0', 'cancelled')] }, { boundary: 'before-create', step: 'setup-0' }, false],
    [
      'a step that started after a cancel between steps',
      { ...cancelled, steps: [step('setup-0', 'succeeded'), step('setup-1', 'succeeded')] },
      { boundary: 'between-steps', step: 'setup-1' },
      true,
    ],
    [
      'a step claimed after a cancel between steps, recorded cancelled before its command started',
      { ...cancelled, steps: [step('setup-0', 'succeeded'), { ...step('setup-1', 'cancelled'), exitCode: null, startedAt: new Date(9_000).toISOString() }] },
      { boundary: 'between-steps', step: 'setup-1' },
      false,
    ],
    [
      'a loop going on after a cancel at continue-as-new',
      { ...cancelled, steps: [step('until-2', 'succeeded'), step('loop-3', 'succeeded')] },
      { boundary: 'at-step-end', step: 'until-2' },
      true,
    ],
    ['a loop stopped at continue-as-new', { ...cancelled, steps: [step('until-2', 'succeeded')] }, { boundary: 'at-step-end', step: 'until-2' }, false],
    ['a job that went on to succeed after a cancel', { ...ok, steps: [step('setup-0', 'succeeded')] }, { boundary: 'at-step-end', step: 'setup-0' }, true],
    [
      'a job cancelled while queued that ran a step',
      { ...cancelled, steps: [step('clone-0', 'succeeded'), { ...step('setup-0', 'succeeded'), startedAt: new Date(9_000).toISOString() }] },
      { boundary: 'queued', step: '-' },
      true,
    ],
    [
      'a job cancelled while queued whose clone, scheduled before the cancel, started late and ran to its end',
      { ...cancelled, steps: [{ ...step('clone-0', 'succeeded'), startedAt: new Date(5_000).toISOString() }] },
      { boundary: 'queued', step: '-', at: 500 },
      false,
    ],
    [
      'a job whose first steps started within the delivery time of a cancel sent with its start',
      { ...cancelled, steps: [{ ...step('clone-0', 'succeeded'), startedAt: new Date(1_000).toISOString() }] },
      { boundary: 'queued', step: '-', at: 500 },
      false,
    ],
    [
      'a job with a step started long after a cancel sent with its start',
      { ...cancelled, steps: [step('clone-0', 'succeeded'), { ...step('setup-0', 'succeeded'), startedAt: new Date(5_000).toISOString() }] },
      { boundary: 'queued', step: '-', at: 500 },
      true,
    ],
    [
      'a job whose step started late and was stopped by the cancel',
      { ...cancelled, steps: [step('clone-0', 'succeeded'), { ...step('setup-0', 'cancelled'), startedAt: new Date(5_000).toISOString() }] },
      { boundary: 'queued', step: '-', at: 500 },
      false,
    ],
    ['a job cancelled while queued that ran nothing', { ...cancelled, steps: [] }, { boundary: 'queued', step: '-' }, false],
    [
      'a failing job cancelled during its cleanup keeps its end',
      { ...ok, status: 'failed' as const, temporal: 'FAILED', steps: [] },
      { boundary: 'during-cleanup', step: '-' },
      false,
    ],
  ])('boundary cancel: %s', (_name, job, probed, violated) => {
    const found = checkJob(
      { ...job, logs: {}, events: job.steps.flatMap((s) => [`step_started:${s.kind}-${s.index}`, `step_finished:${s.kind}-${s.index}`]), starts: {} },
      {},
      probed,
    ).map((v) => v.invariant);
    expect(found.includes(INVARIANTS[7])).toBe(violated);
  });

  it('a re-attached step that ends by itself just after a create-boundary cancel is fine; one that runs on long after is not', () => {
    const job = (finishedAt: number) => ({
      ...cancelled,
      steps: [{ ...step('setup-0', 'succeeded'), finishedAt: new Date(finishedAt).toISOString() }],
      logs: {},
      events: ['step_started:setup-0', 'step_finished:setup-0'],
      starts: {},
    });
    const probed = { boundary: 'after-create', step: 'setup-0', at: 10_000 };
    expect(checkJob(job(10_400), {}, probed).map((v) => v.invariant)).not.toContain(INVARIANTS[7]);
    expect(checkJob(job(16_000), {}, probed).map((v) => v.invariant)).toContain(INVARIANTS[7]);
  });

  it('a step that started after a boundary cancel while the worker was stopped is excused, and only then', () => {
    const job = {
      ...cancelled,
      steps: [step('setup-0', 'succeeded'), step('setup-1', 'succeeded')].map((s, i) => ({ ...s, startedAt: new Date(1_000 + i * 10_000).toISOString() })),
      logs: {},
      events: [],
      starts: {},
    };
    job.events = job.steps.flatMap((s) => [`step_started:${s.kind}-${s.index}`, `step_finished:${s.kind}-${s.index}`]) as never;
    const probed = (faultAt: number) => ({
      boundary: 'at-step-end',
      step: 'setup-0',
      at: 2_000,
      faultBetween: (from: number, to: number) => faultAt >= from && faultAt <= to,
    });
    expect(checkJob(job, {}, probed(5_000)).map((v) => v.invariant)).not.toContain(INVARIANTS[7]);
    expect(checkJob(job, {}, probed(50_000)).map((v) => v.invariant)).toContain(INVARIANTS[7]);
  });

  it('a log cut with a marker, whose lines are a prefix, is complete enough', () => {
    expect(checkJob({ ...ok, logs: { 'setup-0': ['1', '2', '[draftsman] output missing from here: x'] } }, commands)).toEqual([]);
  });
});
