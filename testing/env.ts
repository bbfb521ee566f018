import path from 'node:path';
import { projectRoot } from '../common/paths';

export const TEST_DATA_DIR = path.join(projectRoot(), 'data', 'test');

/** Tests' servers take their ports from here. */
export { freePort } from '../stack/temporal';

/** The payload key of the tests' workers and clients (every process of a namespace needs the same). */
export const TEST_PAYLOAD_KEYS = `test:${Buffer.alloc(32, 7).toString('base64')}`;
