import { execFileSync } from 'node:child_process';
import { bashCompletion } from './completion';

const script = bashCompletion('draftsman', [
  { name: 'run', options: ['--follow', '--json'] },
  { name: 'cancel', options: ['--reason'] },
]);

/** What bash completes for the words typed so far (the last one being completed). */
function complete(...words: string[]): string[] {
  const program = `${script}
COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}
_draftsman_complete; printf '%s\\n' "\${COMPREPLY[@]}"`;
  return execFileSync('bash', ['-c', program], { encoding: 'utf8', cwd: '/' }).split('\n').filter(Boolean);
}

it.each([
  [
    ['draftsman', ''],
    ['run', 'cancel'],
  ],
  [['draftsman', 'r'], ['run']],
  [['draftsman', 'run', '--f'], ['--follow']],
  [
    ['draftsman', 'run', '--'],
    ['--follow', '--json'],
  ],
  [['draftsman', 'cancel', '--'], ['--reason']],
  [['draftsman', 'bogus', '--'], []],
])('completing %j offers %j', (words, offered) => {
  expect(complete(...words).sort()).toEqual([...offered].sort());
});
