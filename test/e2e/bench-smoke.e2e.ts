import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { projectRoot } from '../../common/paths';

// Keeps the benchmark harness from rotting: one quick pass of every measure.
// No time is asserted; the figures of a smoke run mean little.
test('the benchmark harness runs every measure and prints its table', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['dist/bench/main.js'], {
    cwd: projectRoot(),
    env: { ...process.env, BENCH_QUICK: '1' },
    // Every measure once, the two-host one with a private engine of its own, the warm-start one
    // with its image, registry stand-in and fixture: a few minutes on a loaded machine.
    timeout: 400_000,
  });
  expect(stdout).toMatch(/\| overhead ratio \(Draftsman \/ raw\) \| \d+\.\d\dx \|/);
  for (const measure of [
    'pickup latency',
    'API call to the first command output',
    'cancel latency',
    'recovery latency',
    'CPU per job, Draftsman round',
    'CPU per job, raw dockerode round',
    'control-plane CPU per job',
  ]) {
    expect(stdout).toMatch(new RegExp(`\\| ${measure} \\| \\d+(\\.\\d+)? (ms|s) \\| \\d+(\\.\\d+)? (ms|s) \\| \\d+ \\|`));
  }
  // Every other measure of the issue has its row, with figures.
  for (const row of [
    /\| throughput ratio \(Draftsman \/ raw\) \| \d+\.\d\dx \|/,
    /\| API \+ worker RSS, peak under the throughput run \| \d+ MiB \|/,
    /\| loop of \d+ iterations: history events per workflow run \| \d+/,
    /\| worker RSS while the step prints \| \d+ MiB \|/,
    /\| start-up, new data folder \| \d+(\.\d+)? (ms|s) \|/,
    /\| whole embedded stack RSS, idle \| \d+ MiB \|/,
    /\| log fanout, 20 followers: storage to delivery \| \d+(\.\d+)? (ms|s) \|/,
    /\| log fanout: database statements\/s, 20 followers vs 1 \| \d+\.\d\dx \|/,
    /\| throughput, 1 host \| \d+\.\d\d \|/,
    /\| throughput, 2 hosts \| \d+\.\d\d \|/,
    /\| pickup from the line for a host \| \d+(\.\d+)? (ms|s) \|/,
    /\| warm start: cold \| \d+(\.\d+)? (ms|s) \|/,
    /\| warm start: dependency cache warm \| \d+(\.\d+)? (ms|s) \|/,
    /\| warm start: node_modules cache warm \| \d+(\.\d+)? (ms|s) \|/,
    /\| warm start: setup snapshot warm \| \d+(\.\d+)? (ms|s) \|/,
    /\| warm start: node_modules cache warm \/ cold \| \d+\.\d\dx \|/,
    /\| warm start: snapshot warm \/ cold \| \d+\.\d\dx \|/,
    /\| credential: request to a bound host \| \d+(\.\d+)? (ms|s) \|/,
    /\| credential: request through a plain tunnel \| \d+(\.\d+)? (ms|s) \|/,
    /\| credential: added latency per request \| -?\d+(\.\d+)? (ms|s) \|/,
  ]) {
    expect(stdout).toMatch(row);
  }
}, 410_000);
