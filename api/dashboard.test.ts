import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DASHBOARD_CSP, dashboardShell, readManifest } from './dashboard';

describe('the dashboard shell', () => {
  it('names the hashed assets and escapes what it writes', () => {
    const html = dashboardShell({ script: 'main-ABC.js', style: 'main-DEF.css' }, { temporalUi: '/temporal/namespaces/"x"<y>/workflows' });
    expect(html).toContain('<script type="module" src="/ui/assets/main-ABC.js"></script>');
    expect(html).toContain('<link rel="stylesheet" href="/ui/assets/main-DEF.css">');
    expect(html).toContain('content="/temporal/namespaces/&#34;x&#34;&#60;y&#62;/workflows"');
    expect(html).not.toMatch(/<script>|<style>|\sstyle=|\son\w+=/);
  });

  it('leaves the Temporal link out when there is no UI', () => {
    expect(dashboardShell({ script: 'a.js', style: 'a.css' }, {})).not.toContain('draftsman-temporal-ui');
  });

  it.each(["'unsafe-inline'", "'unsafe-eval'", 'http:', '*'])('its policy allows no %s', (source) => {
    expect(DASHBOARD_CSP).not.toContain(source);
  });

  it.each([["default-src 'none'"], ["script-src 'self'"], ["frame-ancestors 'none'"]])('its policy says %s', (directive) => {
    expect(DASHBOARD_CSP.split('; ')).toContain(directive);
  });
});

describe('readManifest', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dashboard-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['a build', '{"script":"main-1.js","style":"main-1.css"}', { script: 'main-1.js', style: 'main-1.css' }],
    ['a manifest without a style sheet', '{"script":"main-1.js"}', null],
    ['a file that is not JSON', 'not json', null],
    ['no build at all', null, null],
  ])('%s', (_name, content, expected) => {
    const file = path.join(dir, 'manifest.json');
    fs.rmSync(file, { force: true });
    if (content !== null) fs.writeFileSync(file, content);
    expect(readManifest(dir)).toEqual(expected);
  });
});
