import fs from 'node:fs';
import path from 'node:path';

/** The project's root folder, from sources (ts) and compiled code (dist/) alike. */
export function projectRoot(): string {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'draftsman') {
      return dir;
    }
  }
  throw new Error(`no draftsman package.json above ${__dirname}`);
}
