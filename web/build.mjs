/**
 * Builds the dashboard into dist/web: one script and one style sheet named by their
 * content's hash, and manifest.json naming them (the API reads it to write its page).
 * Run by `npm run build`; offline, from the packages in node_modules.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist', 'web');
fs.rmSync(out, { recursive: true, force: true });
const result = await build({
  entryPoints: { main: path.join(root, 'web', 'main.tsx') },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2022', 'chrome111', 'firefox111', 'safari16'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  entryNames: '[name]-[hash]',
  outdir: out,
  metafile: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  logLevel: 'warning',
});
const outputs = Object.keys(result.metafile.outputs).map((f) => path.basename(f));
const script = outputs.find((f) => f.endsWith('.js'));
const style = outputs.find((f) => f.endsWith('.css'));
if (!script || !style) throw new Error(`the dashboard build wrote no script or style sheet: ${outputs.join(', ')}`);
fs.writeFileSync(path.join(out, 'manifest.json'), `${JSON.stringify({ script, style }, null, 2)}\n`);
