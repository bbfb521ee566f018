import { labelHoldingSecret } from './jobs';

it.each([
  [{ pr: '123' }, ['s3cret-value'], null],
  [{ pr: '123', token: 's3cret-value' }, ['s3cret-value'], 'token'],
  [{ note: 'prefix-s3cret-value-suffix' }, ['other', 's3cret-value'], 'note'],
  // Values under 4 characters are not taken as secrets (too many false hits).
  [{ pr: 'abc' }, ['abc'], null],
  [{}, ['s3cret-value'], null],
])('labels %j with secrets %j -> %j', (labels, secrets, key) => {
  expect(labelHoldingSecret(labels, secrets)).toBe(key);
});
