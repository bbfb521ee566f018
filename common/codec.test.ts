import { randomBytes } from 'node:crypto';
import { defaultPayloadConverter } from '@temporalio/common';
import { AesGcmCodec, KEY_ID, parsePayloadKeys, UnknownPayloadKeyError } from './codec';

const key = (id: string) => ({ id, key: randomBytes(32) });

describe('AesGcmCodec', () => {
  const k1 = key('k1');
  const k2 = key('k2');
  const payload = defaultPayloadConverter.toPayload({ repo: 'https://example.com/secret-repo.git', setup: ['npm ci'] });

  it('round-trips, hides the plaintext and names the key', async () => {
    const codec = new AesGcmCodec([k1]);
    const [encoded] = await codec.encode([payload]);
    expect(Buffer.from(encoded!.data!).toString('latin1')).not.toContain('secret-repo');
    expect(Buffer.from(encoded!.metadata![KEY_ID]!).toString()).toBe('k1');
    const [decoded] = await codec.decode([encoded!]);
    expect(defaultPayloadConverter.fromPayload(decoded!)).toEqual({ repo: 'https://example.com/secret-repo.git', setup: ['npm ci'] });
  });

  it('decodes with an older key after rotation, and refuses an unknown key or tampered data', async () => {
    const [old] = await new AesGcmCodec([k1]).encode([payload]);
    const rotated = new AesGcmCodec([k2, k1]);
    expect(defaultPayloadConverter.fromPayload((await rotated.decode([old!]))[0]!)).toMatchObject({ setup: ['npm ci'] });
    await expect(new AesGcmCodec([k2]).decode([old!])).rejects.toBeInstanceOf(UnknownPayloadKeyError);
    const tampered = { ...old!, data: Buffer.from(old!.data!) };
    tampered.data[20] = tampered.data[20]! ^ 1;
    await expect(rotated.decode([tampered])).rejects.toThrow();
  });

  it('passes payloads that are not encrypted through', async () => {
    expect(await new AesGcmCodec([k1]).decode([payload])).toEqual([payload]);
  });
});

describe('parsePayloadKeys', () => {
  it('reads id:base64 entries, first one first', () => {
    const b = randomBytes(32).toString('base64');
    expect(parsePayloadKeys(`new:${b}, old:${b}`).map((k) => k.id)).toEqual(['new', 'old']);
  });
  it.each(['nokey', `id:${randomBytes(16).toString('base64')}`, `bad id:${randomBytes(32).toString('base64')}`])('refuses %s', (t) => {
    expect(() => parsePayloadKeys(t)).toThrow(/DRAFTSMAN_PAYLOAD_KEYS/);
  });
});
