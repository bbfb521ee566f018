import { newSecret, sign, signedHeaders, verify } from './signing';

// The example of the Standard Webhooks specification's reference libraries.
const SPEC = { secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', id: 'msg_p5jXN8AQM9LWM0D4loKWxJek', ts: 1614265330, body: '{"test": 2432232314}' };

it('signs as the Standard Webhooks reference libraries do', () => {
  expect(sign(SPEC.secret, SPEC.id, SPEC.ts, SPEC.body)).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
});

const secret = newSecret();
const older = newSecret();
const body = '{"type":"job.ended"}';
const headers = signedHeaders([secret, older], 'msg_1', 1_000_000, body);

it.each([
  ['the newest secret', secret, headers, body, 1_000_000, true],
  ['the previous secret, during a rotation', older, headers, body, 1_000_100, true],
  ['another secret', newSecret(), headers, body, 1_000_000, false],
  ['a changed body', secret, headers, '{"type":"job.started"}', 1_000_000, false],
  ['a changed id', secret, { ...headers, 'webhook-id': 'msg_2' }, body, 1_000_000, false],
  ['a replay past the tolerance', secret, headers, body, 1_000_301, false],
  ['a timestamp from the future past the tolerance', secret, headers, body, 999_699, false],
  ['no signature', secret, { ...headers, 'webhook-signature': undefined }, body, 1_000_000, false],
])('verifying with %s: %s', (_name, key, h, b, now, ok) => {
  expect(verify(key, h, b, now)).toBe(ok);
});

it('a secret is whsec_ and 24 random bytes', () => {
  expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
  expect(newSecret()).not.toBe(secret);
});
