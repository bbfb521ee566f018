import { decideTarget, parseTarget, type Target } from './target';

const exceptions = [{ host: '127.0.0.1', port: 8099 }];

it.each([
  ['https://hooks.example.com/draftsman', null],
  ['http://hooks.example.com:8080/x?y=1', null],
  ['http://127.0.0.1:8099/hook', null],
  ['http://127.0.0.1:8098/hook', /loopback/],
  ['http://10.1.2.3/hook', /private/],
  ['http://169.254.169.254/latest/meta-data', /linkLocal/],
  ['http://[::1]:8099/', /loopback/],
  ['http://0x7f000001/', /loopback/],
  ['ftp://hooks.example.com/', /http/],
  ['https://user:pass@hooks.example.com/', /credentials/],
  ['https://hooks.example.com/#x', /fragment/],
  ['not a url', /absolute/],
])('%s as a target: %s', (url, problem) => {
  const t = parseTarget(url, exceptions);
  if (problem === null) expect(t).not.toHaveProperty('problem');
  else expect((t as { problem: string }).problem).toMatch(problem);
});

const stub = (answers: Record<string, string[]>) => async (host: string) => {
  if (!answers[host]) throw new Error('NXDOMAIN');
  return answers[host]!;
};

it.each([
  ['a public name', 'https://hooks.example.com/', { 'hooks.example.com': ['93.184.216.34'] }, { allowed: true, address: '93.184.216.34' }],
  ['a name with one private answer', 'https://hooks.example.com/', { 'hooks.example.com': ['93.184.216.34', '10.0.0.5'] }, { allowed: false }],
  ['a name that rebinds to loopback', 'https://hooks.example.com/', { 'hooks.example.com': ['127.0.0.1'] }, { allowed: false }],
  ['a name that does not resolve', 'https://nowhere.example.com/', {}, { allowed: false }],
  ['the operator’s exception', 'http://127.0.0.1:8099/', {}, { allowed: true, address: '127.0.0.1' }],
])('delivering to %s', async (_name, url, answers, expected) => {
  const decision = await decideTarget(parseTarget(url, exceptions) as Target, exceptions, stub(answers));
  expect(decision).toMatchObject(expected);
});
