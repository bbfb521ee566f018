import { jobMetadata } from './jobs';

const repo = 'https://example.com/org/repo.git';
const commit = 'a'.repeat(40);

it.each([
  ['a clone only', { repo, commit }, { staticSummary: `${repo} @ aaaaaaaaaaaa`, staticDetails: '- clone only' }],
  [
    'every phase and a gate',
    { repo, commit, setup: ['a', 'b'], loop: { command: './agent.sh', maxIterations: 5 }, validate: ['t'], publish: ['p'], approval: { before: 'publish' } },
    {
      staticSummary: `${repo} @ aaaaaaaaaaaa`,
      staticDetails: '- setup: 2 steps\n- loop: up to 5 iterations of `./agent.sh`\n- validate: 1 step\n- publish: 1 step\n- approval before publish',
    },
  ],
  ['no repository', { commit }, {}],
  ['not an object', 'spec', {}],
  ['a repository that is not a string', { repo: 7, commit }, {}],
])('the Web UI metadata of %s', (_name, spec, expected) => {
  expect(jobMetadata(spec)).toEqual(expected);
});
