import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { projectRoot } from '../../stack/paths';

// Keeps the benchmark harness from rotting: one quick pass of every measure.
// No time is asserted; the figures of a smoke run mean little.
test('the benchmark harness runs every measure and prints its table', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['dist/bench/main.js'], {
    cwd: projectRoot(),
    env: { ...process.env, BENCH_QUICK: '1' },
    timeout: 170_000,
  });
  expect(stdout).toMatch(/\| overhead ratio \(Draftsman \/ raw\) \| \d+\.\d\dx \|/);
  for (const measure of ['pickup latency', 'cancel latency', 'recovery latency']) {
    expect(stdout).toMatch(new RegExp(`\\| ${measure} \\| \\d+(\\.\\d+)? (ms|s) \\| \\d+(\\.\\d+)? (ms|s) \\| \\d+ \\|`));
  }
});
