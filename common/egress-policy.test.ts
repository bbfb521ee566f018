import {
  ceilingCovers,
  decide,
  EgressPolicyError,
  forbiddenRange,
  jobPolicy,
  parseAllowEntry,
  parseExceptions,
  ruleMatches,
  type EgressPolicy,
  type Resolver,
} from './egress-policy';

/** A stub resolver: no test here sends a packet or asks a real DNS server. */
const stubResolver = (table: Record<string, string[] | Error>): Resolver & { calls: string[] } => {
  const calls: string[] = [];
  const fn = async (host: string) => {
    calls.push(host);
    const a = table[host];
    if (a === undefined) throw new Error(`ENOTFOUND ${host}`);
    if (a instanceof Error) throw a;
    return a;
  };
  return Object.assign(fn, { calls });
};

describe('forbiddenRange', () => {
  it.each([
    ['93.184.215.14', null],
    ['2606:4700::6810:84e5', null],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['::1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'linkLocal'],
    ['fe80::1', 'linkLocal'],
    ['100.64.0.1', 'shared address space'],
    ['100.100.100.200', 'shared address space'],
    ['fd00:ec2::254', 'uniqueLocal'],
    ['fc00::1', 'uniqueLocal'],
    ['64:ff9b::a00:1', 'nat64'],
    ['64:ff9b::7f00:1', 'nat64'],
    ['64:ff9b:1::a00:1', 'nat64'],
    // IPv4-compatible (::/96, deprecated): no range of the library's, refused all the same.
    ['::7f00:1', 'ipv4Compatible'],
    ['::a00:1', 'ipv4Compatible'],
    ['::5db8:d70e', 'ipv4Compatible'],
    ['0:0:0:0:0:1:7f00:1', null],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['2002:a00:1::', '6to4'],
    ['2001::1', 'teredo'],
    // IPv4-mapped forms are judged by the IPv4 address they carry.
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:169.254.169.254', 'linkLocal'],
    // Other notations of loopback that resolvers and URL parsers accept.
    ['127.1', 'loopback'],
    ['2130706433', 'loopback'],
    ['0x7f000001', 'loopback'],
    ['0177.0.0.1', 'loopback'],
    ['0x7f.0.0.1', 'loopback'],
    ['127.0.0.1.', 'loopback'],
    ['[::1]', 'loopback'],
    ['example.org', 'not an IP address'],
  ])('%s -> %s', (address, expected) => {
    expect(forbiddenRange(address)).toBe(expected);
  });
});

describe('parseAllowEntry', () => {
  it.each([
    ['github.com', [{ host: 'github.com', wildcard: false, port: 443 }]],
    ['GitHub.com.', [{ host: 'github.com', wildcard: false, port: 443 }]],
    ['*.example.org:443', [{ host: 'example.org', wildcard: true, port: 443 }]],
    ['example.org:8080', [{ host: 'example.org', wildcard: false, port: 8080 }]],
    ['127.0.0.1:9418', [{ host: '127.0.0.1', wildcard: false, port: 9418 }]],
    ['[::1]:80', [{ host: '0:0:0:0:0:0:0:1', wildcard: false, port: 80 }]],
  ])('%s', (entry, expected) => {
    expect(parseAllowEntry(entry)).toEqual(expected);
  });

  it('expands a preset the operator defined', () => {
    expect(parseAllowEntry('models', { models: ['api.example.com', '*.cdn.example.com:443'] })).toEqual([
      { host: 'api.example.com', wildcard: false, port: 443 },
      { host: 'cdn.example.com', wildcard: true, port: 443 },
    ]);
  });

  it.each([
    ['', /empty/],
    ['example.org:0', /outside 1-65535/],
    ['example.org:70000', /outside 1-65535/],
    ['http://example.org', /is not host/],
    ['exa mple.org', /not a valid host name/],
    ['-bad.example.org', /not a valid host name/],
    ['*.org', /at least two labels/],
    ['*.10.0.0.1', /wildcard needs a domain/],
    ['user@example.org', /not a valid host name/],
  ])('refuses %j naming it', (entry, message) => {
    const err = (() => {
      try {
        parseAllowEntry(entry);
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(EgressPolicyError);
    expect((err as Error).message).toMatch(message);
    expect((err as EgressPolicyError).entry).toBe(entry.trim());
  });
});

describe('ruleMatches', () => {
  const wild = parseAllowEntry('*.example.org')[0]!;
  const exact = parseAllowEntry('example.org:8443')[0]!;
  it.each([
    [wild, 'a.example.org', 443, true],
    [wild, 'a.b.example.org', 443, true],
    [wild, 'A.Example.Org.', 443, true],
    [wild, 'example.org', 443, false],
    [wild, 'badexample.org', 443, false],
    [wild, 'a.example.org', 80, false],
    [wild, 'example.org.evil.test', 443, false],
    [exact, 'example.org', 8443, true],
    [exact, 'example.org', 443, false],
    [exact, 'a.example.org', 8443, false],
  ])('%j matches %s:%d -> %s', (rule, host, port, expected) => {
    expect(ruleMatches(rule, host, port)).toBe(expected);
  });
});

describe('ceilingCovers', () => {
  const ceiling = ['*.example.org', 'api.example.com', 'example.net:8080'].flatMap((e) => parseAllowEntry(e));
  it.each([
    ['a.example.org', true],
    ['*.a.example.org', true],
    ['*.example.org', true],
    ['example.org', false],
    ['api.example.com', true],
    ['*.example.com', false],
    ['example.net:8080', true],
    ['example.net', false],
  ])('%s -> %s', (entry, expected) => {
    expect(ceilingCovers(ceiling, parseAllowEntry(entry)[0]!)).toBe(expected);
  });
  it('any covers everything', () => expect(ceilingCovers('any', parseAllowEntry('*.example.org')[0]!)).toBe(true));
});

describe('jobPolicy', () => {
  const operator = { defaults: ['default.example.org'], ceiling: ['*.example.org'], presets: { docs: ['docs.example.org'] }, exceptions: [] };
  it('takes the operator default list when the spec has none', () => {
    expect(jobPolicy(undefined, operator).allow.map((r) => r.host)).toEqual(['default.example.org']);
  });
  it('takes the spec list (and presets) when it has one', () => {
    expect(jobPolicy(['a.example.org', 'docs'], operator).allow.map((r) => r.host)).toEqual(['a.example.org', 'docs.example.org']);
  });
  it('an empty list allows nothing', () => expect(jobPolicy([], operator).allow).toEqual([]));
  it('an entry outside the ceiling is refused, naming it', () => {
    expect(() => jobPolicy(['a.example.org', 'evil.test'], operator)).toThrow(/"evil.test" is outside the operator's egress ceiling/);
  });
});

describe('parseExceptions', () => {
  it('needs one host and an explicit port', () => {
    expect(parseExceptions(['127.0.0.1:9000'])).toEqual([{ host: '127.0.0.1', port: 9000 }]);
    expect(() => parseExceptions(['127.0.0.1'])).toThrow(/explicit port/);
    expect(() => parseExceptions(['*.example.org:443'])).toThrow(/one host/);
  });
});

describe('decide', () => {
  const policy = (allow: string[], exceptions: string[] = []): EgressPolicy => ({
    allow: allow.flatMap((e) => parseAllowEntry(e)),
    exceptions: parseExceptions(exceptions),
  });

  it('allows a listed name whose every address is public, and returns the address it checked', async () => {
    const r = stubResolver({ 'a.example.org': ['93.184.215.14', '2606:4700::6810:84e5'] });
    await expect(decide(policy(['*.example.org']), 'a.example.org', 443, r)).resolves.toEqual({
      allowed: true,
      host: 'a.example.org',
      port: 443,
      address: '93.184.215.14',
    });
  });

  it.each([
    ['a name off the list', ['other.example.org'], 'a.example.org', 443, { 'a.example.org': ['93.184.215.14'] }, /not in the egress allow list/],
    ['the right name on another port', ['a.example.org'], 'a.example.org', 22, { 'a.example.org': ['93.184.215.14'] }, /not in the egress allow list/],
    ['a listed name that resolves to loopback', ['a.example.org'], 'a.example.org', 443, { 'a.example.org': ['127.0.0.1'] }, /127.0.0.1 \(loopback\)/],
    [
      'a listed name with one private answer among public ones',
      ['a.example.org'],
      'a.example.org',
      443,
      { 'a.example.org': ['93.184.215.14', '10.0.0.5'] },
      /10.0.0.5 \(private\)/,
    ],
    ['a listed name that resolves to the metadata address', ['a.example.org'], 'a.example.org', 443, { 'a.example.org': ['169.254.169.254'] }, /linkLocal/],
    ['a listed name that resolves to an IPv4-mapped loopback', ['a.example.org'], 'a.example.org', 443, { 'a.example.org': ['::ffff:127.0.0.1'] }, /loopback/],
    ['a listed name that resolves to a NAT64 address', ['a.example.org'], 'a.example.org', 443, { 'a.example.org': ['64:ff9b::a00:1'] }, /nat64/],
    ['a listed name that does not resolve', ['a.example.org'], 'a.example.org', 443, {}, /did not resolve/],
    ['a listed loopback literal without an operator exception', ['127.0.0.1:3000'], '127.0.0.1', 3000, {}, /loopback/],
    ['a loopback literal in decimal', ['a.example.org'], '2130706433', 443, {}, /not in the egress allow list/],
    ['an invalid port', ['a.example.org'], 'a.example.org', 0, {}, /invalid port/],
  ])('refuses %s', async (_name, allow, host, port, table, reason) => {
    const r = stubResolver(table);
    const d = await decide(policy(allow), host, port, r);
    expect(d.allowed).toBe(false);
    expect(d.allowed === false && d.reason).toMatch(reason);
  });

  it('an operator exception lifts the address rules only for a host:port the job allows', async () => {
    const r = stubResolver({ 'mirror.example.org': ['10.0.0.7'] });
    const exceptions = ['127.0.0.1:9418', 'mirror.example.org:443'];
    await expect(decide(policy([], exceptions), '127.0.0.1', 9418, r)).resolves.toMatchObject({ allowed: false, reason: 'not in the egress allow list' });
    await expect(decide(policy(['mirror.example.org'], exceptions), 'mirror.example.org', 443, r)).resolves.toMatchObject({
      allowed: true,
      address: '10.0.0.7',
    });
    await expect(decide(policy(['mirror.example.org'], []), 'mirror.example.org', 443, r)).resolves.toMatchObject({
      allowed: false,
      reason: expect.stringMatching(/private/),
    });
  });

  it('refuses the control plane on loopback in every notation, while an operator exception for one fixture port passes', async () => {
    const p = policy(['*.example.org', '127.0.0.1:9418'], ['127.0.0.1:9418']);
    const r = stubResolver({});
    for (const host of ['127.0.0.1', '127.1', '0x7f000001', '2130706433', '0177.0.0.1', '[::1]', '::ffff:127.0.0.1', 'localhost']) {
      for (const port of [3000, 7233, 8233, 54329]) {
        expect(await decide(p, host, port, r)).toMatchObject({ allowed: false });
      }
    }
    // Positive control: the exception itself, in another notation of the same address.
    expect(await decide(p, '127.1', 9418, r)).toEqual({ allowed: true, host: '127.0.0.1', port: 9418, address: '127.0.0.1' });
    // A name off the list is refused before any lookup.
    expect(r.calls).toEqual([]);
  });

  it('resolves once and connects to the checked address, so a rebinding name gets no second answer', async () => {
    let n = 0;
    const answers = [['93.184.215.14'], ['127.0.0.1']];
    const calls: string[] = [];
    const rebinding: Resolver = async (host) => {
      calls.push(host);
      return answers[Math.min(n++, 1)]!;
    };
    const d = await decide(policy(['a.example.org']), 'a.example.org', 443, rebinding);
    expect(d).toMatchObject({ allowed: true, address: '93.184.215.14' });
    expect(calls).toEqual(['a.example.org']);
    // The same name asked again now points at loopback: refused on its own answer.
    await expect(decide(policy(['a.example.org']), 'a.example.org', 443, rebinding)).resolves.toMatchObject({ allowed: false });
  });
});
