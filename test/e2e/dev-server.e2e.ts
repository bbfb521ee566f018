/**
 * The Temporal dev server the tests, benchmarks and `npm start` run: it is ready when
 * it answers for its namespace, not when something listens on its port.
 */
import net from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { projectRoot } from '../../common/paths';
import { DevServerExitedError, freePort, startTemporalDevServer, temporalCliPath } from '../../stack/temporal';

const cli = temporalCliPath(path.join(projectRoot(), 'data'));

function listen(port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((socket) => socket.destroy());
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

test("a port another process holds fails the start with the server's exit, instead of a server that is not there", async () => {
  const port = await freePort();
  const squatter = await listen(port);
  try {
    const started = Date.now();
    await expect(startTemporalDevServer({ cli, port })).rejects.toBeInstanceOf(DevServerExitedError);
    expect(Date.now() - started).toBeLessThan(30_000);
  } finally {
    await new Promise((r) => squatter.close(r));
  }
});

test('on ports it chooses, the server answers for its namespace and its Web UI, and stop ends the process', async () => {
  const server = await startTemporalDevServer({ cli, ui: true, namespace: 'dev-server-test' });
  try {
    const connection = await Connection.connect({ address: server.address });
    try {
      const described = await connection.workflowService.describeNamespace({ namespace: 'dev-server-test' });
      expect(described.namespaceInfo?.name).toBe('dev-server-test');
    } finally {
      await connection.close();
    }
    expect(server.uiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await fetch(server.uiUrl)).status).toBe(200);
  } finally {
    await server.stop();
  }
  expect(server.process.exitCode !== null || server.process.signalCode !== null).toBe(true);
});
