import type { ResolvedJobSpec } from '../common/job';

/** A resolved spec for tests whose steps run on FakeRunner or scripted activities (nothing is cloned). */
export function fakeSpec(overrides: Partial<ResolvedJobSpec> = {}): ResolvedJobSpec {
  return {
    repo: 'https://example.com/r.git',
    commit: 'a'.repeat(40),
    image: 'fake:1',
    setup: [],
    loop: null,
    validate: [],
    env: {},
    secrets: {},
    gitTokenSecret: null,
    timeouts: { stepSeconds: 60, jobSeconds: 600 },
    ...overrides,
  };
}
