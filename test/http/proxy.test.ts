// Who may make the service dial, behind a reverse proxy: X-Forwarded-For is believed only
// from the proxies listed in http.trustProxy, a forwarded request from any other peer gets
// no loopback or allow-list access (logged once with the fix), and `trustProxy: true` is
// refused. A real `serve` (every module) behind a real proxy process, over real sockets.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/load.ts';
import { createServer } from '../../src/http/server.ts';
import { startCli } from '../support/cli.ts';
import {
  form,
  logLines,
  PUSH_USER,
  type ReverseProxy,
  rawRequest,
  startReverseProxy,
  startServe,
} from '../support/http.ts';

const TOKEN = 'proxy-test-token-0123456789';
/** A dry-run alert call (testflg=1): allowed means the service would accept to dial. */
const CALL = form({
  testflg: '1',
  hostname: 'db1',
  operator: 'nagios',
  calltype: '1',
  frequency: '1',
  language: 'en',
  message: 'disk full',
  headid: '1',
  footid: '2',
  addressee: '1:u1:0612345678:Alice:60',
});
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const AUTH_YAML = `auth:\n  tokens:\n    - {name: nagios, token: ${TOKEN}}\n`;

/** A non-loopback IPv4 address of this host, if it has one. */
function externalIPv4(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const entry of list ?? [])
      if (entry.family === 'IPv4' && !entry.internal) return entry.address;
  }
  return undefined;
}

describe('http.trustProxy: the client address comes only through listed proxies', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  async function serveBehindProxy(
    trustProxy: string[] | false,
    proxy: { remoteAddress?: string; realIpOnly?: boolean },
    yaml = AUTH_YAML,
  ) {
    const logs = logLines();
    const started = await startServe({
      yaml,
      http: { trustProxy },
      logLevel: 'warn',
      logs: logs.stream,
    });
    cleanups.push(() => started.service.stop());
    const front: ReverseProxy = await startReverseProxy(started.url, proxy);
    cleanups.push(() => front.close());
    return { ...started, proxy: front.url, logs: logs.lines };
  }

  test('a remote client behind a listed proxy cannot pass as loopback with X-Forwarded-For: 127.0.0.1', async () => {
    // nginx on this host; the client is remote (the proxy appends its address).
    const s = await serveBehindProxy(['127.0.0.1'], { remoteAddress: '203.0.113.7' });
    const spoofed = await rawRequest(
      s.proxy,
      'POST',
      '/api/v1/call',
      { ...FORM, 'x-forwarded-for': '127.0.0.1' },
      CALL,
    );
    assert.equal(spoofed.status, 401, spoofed.body);
    assert.deepEqual(JSON.parse(spoofed.body), {
      success: 'false',
      error: '99',
      message: 'credential required',
    });
    const gong = await rawRequest(
      s.proxy,
      'POST',
      '/messages/tts/add',
      { ...FORM, 'x-forwarded-for': '::1, 127.0.0.1' },
      form({ text: 'hello' }),
    );
    assert.equal(gong.status, 401, gong.body);
    // The token still works through the proxy.
    const withToken = await rawRequest(
      s.proxy,
      'POST',
      '/api/v1/call',
      { ...FORM, authorization: `Bearer ${TOKEN}` },
      CALL,
    );
    assert.equal(withToken.status, 200, withToken.body);
    assert.equal(JSON.parse(withToken.body).success, 'true');
  });

  test('the derived address is what allowNetworks sees; a local client through the proxy is loopback', async () => {
    const remote = await serveBehindProxy(
      ['127.0.0.1'],
      { remoteAddress: '203.0.113.7' },
      `${AUTH_YAML}  allowNetworks: [203.0.113.0/24]\n`,
    );
    const ok = await rawRequest(remote.proxy, 'POST', '/api/v1/call', FORM, CALL);
    assert.equal(ok.status, 200, ok.body);
    const local = await serveBehindProxy(['127.0.0.0/8'], {});
    const viaProxy = await rawRequest(local.proxy, 'POST', '/api/v1/call', FORM, CALL);
    assert.equal(viaProxy.status, 200, viaProxy.body);
    assert.deepEqual(
      local.logs.filter((l) => l.level === 40),
      [],
      'nothing to warn about',
    );
  });

  test('a direct client from another address is not trusted for its X-Forwarded-For', async (t) => {
    const address = externalIPv4();
    if (address === undefined) {
      t.skip('this host has no non-loopback IPv4 address');
      return;
    }
    const s = await startServe({
      yaml: `${AUTH_YAML}`,
      http: { trustProxy: ['127.0.0.1'], listen: '0.0.0.0:0' },
    });
    cleanups.push(() => s.service.stop());
    const port = new URL(s.url).port;
    const direct = `http://${address}:${port}`;
    const spoofed = await rawRequest(
      direct,
      'POST',
      '/api/v1/call',
      { ...FORM, 'x-forwarded-for': '127.0.0.1' },
      CALL,
    );
    assert.equal(spoofed.status, 401, spoofed.body);
    assert.match(JSON.parse(spoofed.body).message, /credential required/);
    const plain = await rawRequest(direct, 'POST', '/api/v1/call', FORM, CALL);
    assert.equal(plain.status, 401, 'not loopback either way');
  });

  test('trustProxy false: a proxy on this host does not make its clients loopback; logged once', async () => {
    const s = await serveBehindProxy(false, {});
    for (let i = 0; i < 3; i += 1) {
      const proxied = await rawRequest(s.proxy, 'POST', '/api/v1/call', FORM, CALL);
      assert.equal(proxied.status, 401, proxied.body);
      assert.match(JSON.parse(proxied.body).message, /credential required \(a forwarded request/);
    }
    const gong = await rawRequest(s.proxy, 'GET', '/messages', {});
    assert.equal(gong.status, 401);
    assert.equal(JSON.parse(gong.body).code, 'credential_required');
    const cti = await rawRequest(
      s.proxy,
      'POST',
      '/api/cti/call_form_result',
      { 'content-type': 'application/json' },
      JSON.stringify({ user_id: 1, variables: {} }),
    );
    assert.equal(cti.status, 401);
    // The PBX allow-list of the push API (loopback by default) does not apply either.
    const push = await rawRequest(
      s.proxy,
      'POST',
      '/api/incoming-call/',
      FORM,
      form({ sip_user_id: PUSH_USER.sip, phonenumber: '0612345678' }),
    );
    assert.equal(push.status, 403);
    assert.equal(push.body, 'forbidden');
    // X-Real-IP or Forwarded alone, sent straight from loopback: the same.
    const headers: Array<Record<string, string>> = [
      { 'x-real-ip': '127.0.0.1' },
      { forwarded: 'for=127.0.0.1' },
    ];
    for (const header of headers) {
      const r = await rawRequest(s.url, 'POST', '/api/v1/call', { ...FORM, ...header }, CALL);
      assert.equal(r.status, 401, JSON.stringify(header));
    }
    // A credential still works; a loopback client without forwarding headers still passes.
    const token = await rawRequest(
      s.proxy,
      'POST',
      '/api/v1/call',
      { ...FORM, authorization: `Bearer ${TOKEN}` },
      CALL,
    );
    assert.equal(token.status, 200, token.body);
    const local = await rawRequest(s.url, 'POST', '/api/v1/call', FORM, CALL);
    assert.equal(local.status, 200, local.body);

    const warnings = s.logs.filter((l) => l.level === 40);
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    const message = String(warnings[0]?.msg);
    assert.match(message, /carries x-forwarded-for but 127\.0\.0\.1 is not a trusted proxy/);
    assert.match(message, /set http\.trustProxy: \[127\.0\.0\.1\]/);
  });

  test('a listed proxy that sends only X-Real-IP: the client is unknown, not loopback; logged once', async () => {
    const s = await serveBehindProxy(['127.0.0.1'], { realIpOnly: true });
    for (let i = 0; i < 2; i += 1) {
      const r = await rawRequest(s.proxy, 'POST', '/api/v1/call', FORM, CALL);
      assert.equal(r.status, 401, r.body);
    }
    const warnings = s.logs.filter((l) => l.level === 40);
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.match(String(warnings[0]?.msg), /no X-Forwarded-For/);
    assert.match(String(warnings[0]?.msg), /proxy_add_x_forwarded_for/);
  });
});

describe('http.trustProxy in the configuration', () => {
  test('true is refused with the reason and the fix; lists and false are accepted', async () => {
    assert.throws(
      () => loadConfig({ text: 'http:\n  trustProxy: true\n', env: {} }),
      (error: unknown) =>
        error instanceof ConfigError &&
        /^config: http\.trustProxy: true would trust X-Forwarded-For from every client .*e\.g\. \[127\.0\.0\.1\]$/m.test(
          error.message,
        ),
    );
    const listed = loadConfig({
      text: 'http:\n  trustProxy: [127.0.0.1, "10.0.0.0/8", "fd00::/8"]\n',
      env: {},
    });
    assert.deepEqual(listed.http.trustProxy, ['127.0.0.1', '10.0.0.0/8', 'fd00::/8']);
    assert.equal(loadConfig({ text: '', env: {} }).http.trustProxy, false);
    const fromEnv = loadConfig({ env: { SWITCHBOARD_HTTP_TRUST_PROXY: '127.0.0.1, 10.0.0.0/8' } });
    assert.deepEqual(fromEnv.http.trustProxy, ['127.0.0.1', '10.0.0.0/8']);
    assert.equal(
      loadConfig({ env: { SWITCHBOARD_HTTP_TRUST_PROXY: 'false' } }).http.trustProxy,
      false,
    );
    assert.throws(
      () => loadConfig({ env: { SWITCHBOARD_HTTP_TRUST_PROXY: 'yes' } }),
      /http\.trustProxy \(from SWITCHBOARD_HTTP_TRUST_PROXY\): true would trust/,
    );
    assert.throws(
      () => loadConfig({ text: 'http:\n  trustProxy: [nginx.local]\n', env: {} }),
      /config: http\.trustProxy\[0\]: expected an IP address or CIDR network/,
    );
    // A configuration object built in code cannot slip it past either.
    const config = loadConfig({ text: '', env: {} });
    (config.http as { trustProxy: unknown }).trustProxy = true;
    await assert.rejects(createServer({ config }), /http\.trustProxy: true would trust/);
  });

  test('switchboard config check names the key and exits 1', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'sb-proxy-')), 'sb.yaml');
    writeFileSync(file, 'http:\n  trustProxy: true\n');
    const entry = join(import.meta.dirname, '..', 'serve', 'cli-entry.ts');
    const check = startCli(['config', 'check', '--config', file], [process.execPath, entry]);
    assert.equal(await check.exited, 1);
    assert.match(check.stderr(), /config: http\.trustProxy: true would trust X-Forwarded-For/);
  });
});
