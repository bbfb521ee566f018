import net from 'node:net';
import path from 'node:path';
import { projectRoot } from '../../stack/paths';

export const TEST_DATA_DIR = path.join(projectRoot(), 'data', 'test');

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** The payload key of the tests' workers and clients (every process of a namespace needs the same). */
export const TEST_PAYLOAD_KEYS = `test:${Buffer.alloc(32, 7).toString('base64')}`;
