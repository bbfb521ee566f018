import { execFileSync } from 'node:child_process';
import { secretScanner } from './secret-scan';

const SECRET = 'adv-Read/Token+0123456789';
const scanner = secretScanner([SECRET, 'line-one-secret\nline-two-secret']);
const hex = Buffer.from(SECRET).toString('hex');

/** `xxd`'s layout: address, 16 bytes in groups of 2, the text gutter (which shows the value in pieces). */
function xxd(data: Buffer): string {
  const lines: string[] = [];
  for (let at = 0; at < data.length; at += 16) {
    const row = data.subarray(at, at + 16);
    const groups = (row.toString('hex').match(/.{1,4}/g) ?? []).join(' ');
    lines.push(`${at.toString(16).padStart(8, '0')}: ${groups.padEnd(39)}  ${row.toString('latin1').replace(/[^\x20-\x7e]/g, '.')}`);
  }
  return lines.join('\n');
}

/** `hexdump -C`'s layout: address, two groups of 8 bytes, the gutter between bars. */
function hexdumpC(data: Buffer): string {
  const lines: string[] = [];
  for (let at = 0; at < data.length; at += 16) {
    const row = [...data.subarray(at, at + 16)].map((b) => b.toString(16).padStart(2, '0'));
    const bytes = `${row.slice(0, 8).join(' ')}  ${row.slice(8).join(' ')}`.padEnd(48);
    lines.push(`${at.toString(16).padStart(8, '0')}  ${bytes}  |${data.subarray(at, at + 16).toString('latin1')}|`);
  }
  return lines.join('\n');
}

const od = (data: Buffer, ...args: string[]) => execFileSync('od', args, { input: data, encoding: 'utf8' });
const wrapped = (text: string, cols: number) => (text.match(new RegExp(`.{1,${cols}}`, 'g')) ?? []).join('\n');
const inside = Buffer.from(`{"user":"me","token":"${SECRET}","more":"padding to wrap"}`);

describe('secretScanner finds a secret', () => {
  it.each([
    ['as it is', `token=${SECRET} done`],
    ['base64', Buffer.from(SECRET).toString('base64')],
    ['base64 inside a longer string', inside.toString('base64')],
    ["base64 wrapped at 76 columns (base64's default)", wrapped(inside.toString('base64'), 76)],
    ['base64 wrapped at 20 columns', wrapped(inside.toString('base64'), 20)],
    ['base64 wrapped with CR LF', wrapped(inside.toString('base64'), 30).replace(/\n/g, '\r\n')],
    ['base64url inside a longer string', inside.toString('base64url')],
    ['hex', `h ${hex}`],
    ['hex upper case with spaces', hex.toUpperCase().replace(/(..)/g, '$1 ')],
    ['hex with colons', hex.replace(/(..)(?!$)/g, '$1:')],
    ['od -An -tx1 (hex with spaces, wrapped)', od(Buffer.from(SECRET), '-An', '-tx1')],
    ['od -tx1 (with addresses)', od(Buffer.from(SECRET), '-tx1')],
    ['od -tx1 of a longer text', od(inside, '-tx1')],
    ['xxd', xxd(inside)],
    ['hexdump -C', hexdumpC(inside)],
    ['a C array (xxd -i)', [...Buffer.from(SECRET)].map((b) => `0x${b.toString(16).padStart(2, '0')}`).join(', ')],
    ['\\x escapes', [...Buffer.from(SECRET)].map((b) => `\\x${b.toString(16)}`).join('')],
    ['URL-encoded, the usual safe set', encodeURIComponent(SECRET)],
    ['URL-encoded, every character', [...Buffer.from(SECRET)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')],
    ['URL-encoded, only / escaped (lower case)', SECRET.replace(/\//g, '%2f')],
    ['form-encoded', `a=${encodeURIComponent(SECRET).replace(/%20/g, '+')}`],
    ['JSON-escaped (slash escaped)', JSON.stringify({ t: SECRET }).replace(/\//g, '\\/')],
    ['JSON-escaped as \\u', [...SECRET].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')],
    ['one line of a multi-line secret', 'x line-two-secret y'],
  ])('%s', (_how, text) => {
    expect(scanner.holds(text)).toBe(true);
    expect(scanner.spans(text).length).toBeGreaterThan(0);
    const masked = scanner.mask(text);
    expect(scanner.holds(masked)).toBe(false);
    expect(masked).toContain('***');
  });

  it.each([
    ['ordinary output', 'build passed in 3.2 s; 14 files changed'],
    ['another value in every form', `${Buffer.from('another-value-123').toString('base64')} ${Buffer.from('another-value-123').toString('hex')}`],
    ['an od dump of other bytes', od(Buffer.from('nothing secret in here at all'), '-tx1')],
    ['the secret cut short', SECRET.slice(0, 12)],
  ])('and nothing in %s', (_what, text) => {
    expect(scanner.holds(text)).toBe(false);
    expect(scanner.spans(text)).toEqual([]);
    expect(scanner.mask(text)).toBe(text);
  });

  it('masks only the span of the value, keeping the text around it', () => {
    expect(scanner.mask(`token=${SECRET} done`)).toBe('token=*** done');
    expect(scanner.mask(`a ${hex} b ${hex.toUpperCase()} c`)).toBe('a *** b *** c');
  });

  it('masks every line of a hex dump the value is in (its gutter shows it in pieces), and no other', () => {
    const dump = `before\n${xxd(inside)}\nafter`;
    const masked = scanner.maskLines(dump.split('\n'));
    expect(masked[0]).toBe('before');
    expect(masked.at(-1)).toBe('after');
    const joined = masked.join('\n');
    for (let i = 0; i + 8 <= SECRET.length; i++) expect(joined).not.toContain(SECRET.slice(i, i + 8));
  });

  it.each([
    ['a value cut by a line cut', [`x ${SECRET.slice(0, 10)}`, `${SECRET.slice(10)} y`], ['x ***', '*** y']],
    ['a value wrapped in base64 at 76 columns', wrapped(Buffer.from(`${'x'.repeat(40)}${SECRET} tail`).toString('base64'), 76).split('\n'), null],
    ['a value across three lines', [SECRET.slice(0, 5), SECRET.slice(5, 15), `${SECRET.slice(15)} tail`], ['***', '***', '*** tail']],
  ])('across lines read together: %s', (_what, lines, expected) => {
    const masked = scanner.maskLines(lines);
    expect(masked).toHaveLength(lines.length);
    if (expected) expect(masked).toEqual(expected);
    expect(scanner.holds(masked.join('\n'))).toBe(false);
    // Positive control: each line alone holds no whole form, so a per-line mask would keep them all.
    expect(lines.map((l) => scanner.mask(l))).toEqual(lines);
  });

  it('looks for nothing when there is no secret, or only short ones', () => {
    expect(secretScanner([]).empty).toBe(true);
    expect(secretScanner(['abc']).empty).toBe(true);
    const short = secretScanner(['abcdefg']);
    // Encoded forms of a short value would turn up by chance: only the value itself.
    expect(short.mask('abcdefg')).toBe('***');
    expect(short.holds(Buffer.from('abcdefg').toString('hex'))).toBe(false);
  });
});
