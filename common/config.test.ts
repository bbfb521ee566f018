import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from './config';

describe('loadConfig', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'draftsman-config-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const secretFile = (name: string, content: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, content);
    return file;
  };

  it('takes defaults, and names the variable of an invalid value', () => {
    expect(loadConfig({}).PORT).toBe(3000);
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/PORT: /);
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(ConfigError);
  });

  it.each([
    ['DRAFTSMAN_STEP_RUNTIME', 'runsc --debug', /DRAFTSMAN_STEP_RUNTIME: a runtime name/],
    ['DRAFTSMAN_STEP_RUNTIME', '../runsc', /DRAFTSMAN_STEP_RUNTIME: a runtime name/],
    ['DRAFTSMAN_ENGINE_REQUEST_SECONDS', '0', /DRAFTSMAN_ENGINE_REQUEST_SECONDS: /],
  ])('refuses %s=%j', (name, value, message) => {
    expect(() => loadConfig({ [name]: value })).toThrow(message);
  });

  it.each([
    ['DRAFTSMAN_STEP_RUNTIME', 'runsc'],
    ['DRAFTSMAN_ENGINE_REQUEST_SECONDS', '1'],
  ])('takes %s=%j', (name, value) => {
    expect(String(loadConfig({ [name]: value })[name as 'DRAFTSMAN_STEP_RUNTIME'])).toBe(value);
  });

  it('treats an empty variable as unset', () => {
    const config = loadConfig({ DRAFTSMAN_STEP_NETWORK: '', DATABASE_URL: '', PORT: '' });
    expect(config.DRAFTSMAN_STEP_NETWORK).toBeUndefined();
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config.PORT).toBe(3000);
  });

  it('reads NAME_FILE, without the trailing newline', () => {
    const file = secretFile('keys', 'k1:' + Buffer.alloc(32, 1).toString('base64') + '\n');
    expect(loadConfig({ DRAFTSMAN_PAYLOAD_KEYS_FILE: file }).DRAFTSMAN_PAYLOAD_KEYS).toBe(`k1:${Buffer.alloc(32, 1).toString('base64')}`);
  });

  it('refuses NAME and NAME_FILE together, and an unreadable file', () => {
    const file = secretFile('url', 'postgres://a@db/x');
    expect(() => loadConfig({ DATABASE_URL: 'postgres://b@db/x', DATABASE_URL_FILE: file })).toThrow(
      /DATABASE_URL: set either DATABASE_URL or DATABASE_URL_FILE, not both/,
    );
    expect(() => loadConfig({ DATABASE_URL_FILE: path.join(dir, 'missing') })).toThrow(/DATABASE_URL_FILE: cannot read .*missing: ENOENT/);
  });

  it('keeps DRAFTSMAN_API_TOKENS_FILE as its own variable (a file of tokens, one a line)', () => {
    const config = loadConfig({ DRAFTSMAN_API_TOKENS_FILE: '/run/secrets/api_tokens' });
    expect(config.DRAFTSMAN_API_TOKENS_FILE).toBe('/run/secrets/api_tokens');
    expect(config.DRAFTSMAN_API_TOKENS).toBeUndefined();
  });

  it('puts DATABASE_PASSWORD into DATABASE_URL, encoded', () => {
    const file = secretFile('pg', 'p@ss:w/rd%\n');
    const config = loadConfig({ DATABASE_URL: 'postgres://draftsman@postgres:5432/draftsman', DATABASE_PASSWORD_FILE: file });
    const url = new URL(config.DATABASE_URL!);
    expect(decodeURIComponent(url.password)).toBe('p@ss:w/rd%');
    expect(url.username).toBe('draftsman');
    expect(url.host).toBe('postgres:5432');
    expect(() => loadConfig({ DATABASE_PASSWORD: 'x' })).toThrow(/DATABASE_PASSWORD: needs DATABASE_URL/);
  });
});
