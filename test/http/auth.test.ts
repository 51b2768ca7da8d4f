import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { defaultConfig } from '../../src/config/load.ts';
import {
  type AccessRuleOptions,
  constantTimeEqual,
  createAccessRule,
  createCidrMatcher,
  decideAccess,
  parseCidr,
  principalOf,
} from '../../src/http/auth.ts';
import type { ErrorFormatter } from '../../src/http/errors.ts';
import {
  type App,
  createLogger,
  createServer,
  type SwitchboardServer,
} from '../../src/http/server.ts';

const TOKEN = 'tok-callout-0123456789abcdef';
const OTHER_TOKEN = 'tok-announce-0123456789abcdef';
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** Barista's error shape. */
const baristaErrors: ErrorFormatter = (error) => ({
  body: { success: 'false', error: '99', message: error.message },
});

describe('CIDR matcher', () => {
  test('IPv4 networks, bare addresses and prefixes', () => {
    const match = createCidrMatcher(['10.0.0.0/8', '192.168.1.7', '172.16.0.0/12']);
    assert.equal(match('10.200.3.4'), true);
    assert.equal(match('11.0.0.1'), false);
    assert.equal(match('192.168.1.7'), true);
    assert.equal(match('192.168.1.8'), false);
    assert.equal(match('172.31.255.255'), true);
    assert.equal(match('172.32.0.0'), false);
    assert.equal(match('not an ip'), false);
  });

  test('IPv6 networks, compressed forms and zones', () => {
    const match = createCidrMatcher(['2001:db8::/32', '::1', 'fe80::/10']);
    assert.equal(match('2001:db8:0:0:0:0:0:1'), true);
    assert.equal(match('2001:db9::1'), false);
    assert.equal(match('::1'), true);
    assert.equal(match('::2'), false);
    assert.equal(match('fe80::1%eth0'), true);
  });

  test('IPv4-mapped IPv6 clients match IPv4 networks, and mapped networks match IPv4', () => {
    assert.equal(createCidrMatcher(['127.0.0.0/8'])('::ffff:127.0.0.1'), true);
    assert.equal(createCidrMatcher(['10.0.0.0/8'])('::ffff:10.1.2.3'), true);
    assert.equal(createCidrMatcher(['10.0.0.0/8'])('::ffff:11.1.2.3'), false);
    assert.equal(createCidrMatcher(['::ffff:10.0.0.0/104'])('10.9.9.9'), true);
    // An IPv4 network never matches an unrelated IPv6 address.
    assert.equal(createCidrMatcher(['0.0.0.0/0'])('2001:db8::1'), false);
    assert.equal(createCidrMatcher(['::/0'])('2001:db8::1'), true);
  });

  test('invalid networks are refused', () => {
    for (const bad of ['10.0.0.0/33', '::/129', 'example.com', '10.0.0.0/8/1', '10.0.0.0/x']) {
      assert.throws(() => parseCidr(bad), /invalid CIDR/, bad);
    }
  });
});

describe('constantTimeEqual', () => {
  test('equal, different, different lengths, unicode', () => {
    assert.equal(constantTimeEqual('secret', 'secret'), true);
    assert.equal(constantTimeEqual('secret', 'secreT'), false);
    assert.equal(constantTimeEqual('secret', 'secret2'), false);
    assert.equal(constantTimeEqual('', ''), true);
    assert.equal(constantTimeEqual('pässwörd', 'pässwörd'), true);
  });

  test('the rule compares against every configured credential (no early exit)', () => {
    const calls: Array<[string, string]> = [];
    const options: AccessRuleOptions = {
      tokens: [{ token: 'a'.repeat(20) }, { token: 'b'.repeat(20) }, { token: 'c'.repeat(20) }],
      users: [
        { username: 'u1', password: 'p1-password' },
        { username: 'u2', password: 'p2-password' },
      ],
      compare: (presented, configured) => {
        calls.push([presented, configured]);
        return constantTimeEqual(presented, configured);
      },
    };
    assert.equal('kind' in decideAccess(options, `Bearer ${'a'.repeat(20)}`, '10.0.0.1'), true);
    assert.equal(calls.length, 3, 'every token compared even though the first matched');
    calls.length = 0;
    assert.equal('kind' in decideAccess(options, basic('u1', 'p1-password'), '10.0.0.1'), true);
    assert.equal(calls.length, 4, 'user and password compared for every user');
    calls.length = 0;
    decideAccess(options, basic('nobody', 'x'), '10.0.0.1');
    assert.equal(calls.length, 4);
  });
});

/** Starts a server with a callout-like module protected by the rule. */
async function startProtected(options: {
  rule: AccessRuleOptions;
  listen: string;
  trustProxy?: string[] | false;
}): Promise<{ server: SwitchboardServer; url: string }> {
  const config = defaultConfig();
  config.http.trustProxy = options.trustProxy ?? false;
  const server = await createServer({ config, logger: createLogger('silent') });
  await server.app.register(async (app: App) => {
    app.addHook('onRequest', createAccessRule(options.rule));
    app.get('/api/v1/call', async (request) => ({ ok: true, principal: principalOf(request) }));
  });
  const { url } = await server.listen(options.listen);
  return { server, url };
}

describe('access rule over real sockets', () => {
  let server: SwitchboardServer;
  let url: string;

  before(async () => {
    ({ server, url } = await startProtected({
      listen: '127.0.0.1:0',
      trustProxy: ['127.0.0.1'], // X-Forwarded-For sets the client IP for the remote cases
      rule: {
        ...defaultConfig().auth,
        tokens: [
          { name: 'nagios', token: TOKEN, modules: ['callout'] },
          { name: 'gong-only', token: OTHER_TOKEN, modules: ['announce'] },
        ],
        users: [
          { username: 'zabbix', password: 'basic-pass-1', modules: [] },
          { username: 'gong', password: 'basic-pass-2', modules: ['announce'] },
        ],
        allowNetworks: ['10.20.0.0/16', '2001:db8:aa::/48'],
        allowLoopback: true,
        module: 'callout',
        formatter: baristaErrors,
      },
    }));
  });

  after(() => server.close());

  const call = (headers: Record<string, string> = {}) =>
    fetch(`${url}/api/v1/call`, { headers }).then(async (r) => ({
      status: r.status,
      body: (await r.json()) as Record<string, unknown>,
      authenticate: r.headers.get('www-authenticate'),
    }));
  const from = (ip: string, headers: Record<string, string> = {}) =>
    call({ 'x-forwarded-for': ip, ...headers });

  test('a valid Bearer token is allowed from anywhere', async () => {
    const r = await from('203.0.113.9', { authorization: `Bearer ${TOKEN}` });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.principal, { kind: 'token', name: 'nagios' });
  });

  test('a valid Basic user is allowed from anywhere', async () => {
    const r = await from('203.0.113.9', { authorization: basic('zabbix', 'basic-pass-1') });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.principal, { kind: 'user', name: 'zabbix' });
  });

  test('an unknown token or wrong password is 401 in the module shape, even from an allowed network', async () => {
    for (const authorization of [
      'Bearer not-the-token-0123456789',
      basic('zabbix', 'wrong'),
      basic('nobody', 'basic-pass-1'),
      'Digest abc',
    ]) {
      const r = await from('10.20.1.1', { authorization });
      assert.equal(r.status, 401, authorization);
      assert.equal(r.body.success, 'false');
      assert.equal(r.body.error, '99');
      assert.match(String(r.authenticate), /Bearer realm="switchboard", Basic/);
      assert.ok(!JSON.stringify(r.body).includes('wrong'));
    }
  });

  test('a valid credential for another module is 403', async () => {
    const token = await from('203.0.113.9', { authorization: `Bearer ${OTHER_TOKEN}` });
    assert.equal(token.status, 403);
    assert.equal(token.body.success, 'false');
    assert.equal(token.authenticate, null);
    const user = await from('203.0.113.9', { authorization: basic('gong', 'basic-pass-2') });
    assert.equal(user.status, 403);
  });

  test('no credential: allowed from an allowed IPv4 or IPv6 network', async () => {
    const v4 = await from('10.20.99.1');
    assert.equal(v4.status, 200);
    assert.deepEqual(v4.body.principal, { kind: 'network', address: '10.20.99.1' });
    assert.equal((await from('2001:db8:aa:1::5')).status, 200);
    assert.equal((await from('::ffff:10.20.0.1')).status, 200);
  });

  test('no credential from elsewhere: 401 (credentials exist, the client may send one)', async () => {
    const r = await from('203.0.113.9');
    assert.equal(r.status, 401);
    assert.equal(r.body.message, 'credential required');
    assert.equal((await from('2001:db8:bb::1')).status, 401);
  });

  test('loopback (127.0.0.1) is allowed without credential by default', async () => {
    const r = await call();
    assert.equal(r.status, 200);
    assert.equal((r.body.principal as { kind: string }).kind, 'network');
  });
});

describe('access rule: loopback and IPv6 sockets', () => {
  test('IPv6 loopback client (::1) is allowed by default', async () => {
    const { server, url } = await startProtected({
      listen: '[::1]:0',
      rule: { tokens: [{ token: TOKEN }], module: 'callout' },
    });
    try {
      const r = await fetch(`${url}/api/v1/call`);
      assert.equal(r.status, 200);
      assert.deepEqual(((await r.json()) as { principal: unknown }).principal, {
        kind: 'network',
        address: '::1',
      });
    } finally {
      await server.close();
    }
  });

  test('an IPv4 client of a dual-stack socket (::ffff:127.0.0.1) counts as loopback', async () => {
    const { server, url } = await startProtected({ listen: '[::]:0', rule: {} });
    try {
      const port = new URL(url).port;
      const r = await fetch(`http://127.0.0.1:${port}/api/v1/call`);
      assert.equal(r.status, 200);
      const principal = ((await r.json()) as { principal: { address: string } }).principal;
      assert.equal(principal.address, '::ffff:127.0.0.1');
    } finally {
      await server.close();
    }
  });

  test('loopback refused when allowLoopback is false: 403 without credentials configured', async () => {
    const { server, url } = await startProtected({
      listen: '127.0.0.1:0',
      rule: { allowLoopback: false, allowNetworks: ['10.0.0.0/8'], formatter: baristaErrors },
    });
    try {
      const r = await fetch(`${url}/api/v1/call`);
      assert.equal(r.status, 403);
      assert.deepEqual(await r.json(), {
        success: 'false',
        error: '99',
        message: 'network not allowed',
      });
    } finally {
      await server.close();
    }
  });

  test('an invalid allow-list entry fails at creation', () => {
    assert.throws(() => createAccessRule({ allowNetworks: ['10.0.0.0/40'] }), /invalid CIDR/);
  });
});
