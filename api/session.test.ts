import { cookieValue } from './auth';
import { loginPage } from './login-page';
import { safeNext } from './session';

it.each([
  ['/temporal/namespaces/default/workflows', '/temporal/namespaces/default/workflows'],
  ['/', '/'],
  ['//evil.example/x', '/'],
  ['/\\evil.example', '/'],
  ['https://evil.example/', '/'],
  ['javascript:alert(1)', '/'],
  ['/a b', '/'],
  [undefined, '/'],
  [['/a', '/b'], '/'],
])('after signing in, %j sends the browser to %s', (next, expected) => {
  expect(safeNext(next)).toBe(expected);
});

it.each([
  ['draftsman_session=abc', 'abc'],
  ['a=1; draftsman_session=abc; b=2', 'abc'],
  ['xdraftsman_session=abc', undefined],
  ['draftsman_session=', ''],
  [undefined, undefined],
])('the session cookie of %j is %j', (header, expected) => {
  expect(cookieValue(header, 'draftsman_session')).toBe(expected);
});

it('the sign-in page escapes what it shows of the request', () => {
  const page = loginPage({ next: '/"><script>alert(1)</script>', error: '<b>no</b>' });
  expect(page).not.toContain('<script>');
  expect(page).toContain('value="/&#34;&#62;&#60;script&#62;alert(1)&#60;/script&#62;"');
  expect(page).toContain('&#60;b&#62;no&#60;/b&#62;');
});
