// A web page opened in a browser on an allowed network must not make the service dial,
// announce or wake phones: browser cross-site requests (Origin / Sec-Fetch-Site of another
// site) are refused 403 in each API's error shape unless they carry a Bearer token;
// non-browser clients (no such headers) and same-origin pages keep working. A real `serve`
// with every module, over real sockets.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Service } from '../../src/serve/service.ts';
import { form, PUSH_USER, rawRequest, startServe } from '../support/http.ts';

const TOKEN = 'cross-site-token-0123456789';
const USER = { username: 'ops', password: 'ops-password' };
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
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
const EVIL = { origin: 'https://evil.example' };
const CROSS = { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors' };

function multipart(fields: Record<string, string>): { type: string; body: string } {
  const boundary = '----sbtest7MA4YWxkTrZu0gW';
  const body = `${Object.entries(fields)
    .map(
      ([name, value]) =>
        `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`,
    )
    .join('')}--${boundary}--\r\n`;
  return { type: `multipart/form-data; boundary=${boundary}`, body };
}

describe('browser cross-site requests are refused 403 in each API shape', () => {
  let service: Service;
  let url: string;
  before(async () => {
    ({ service, url } = await startServe({
      yaml: `auth:\n  tokens:\n    - {name: nagios, token: ${TOKEN}}\n  users:\n    - {username: ${USER.username}, password: ${USER.password}}\n`,
    }));
  });
  after(() => service.stop());

  const barista = (headers: Record<string, string>) =>
    rawRequest(url, 'POST', '/api/v1/call', { ...FORM, ...headers }, CALL);

  test('Barista POST /api/v1/call: form from a page of another site → 403, error 99', async () => {
    for (const headers of [
      EVIL,
      CROSS,
      { ...EVIL, ...CROSS },
      { origin: 'null' },
      { 'sec-fetch-site': 'same-site' },
    ]) {
      const r = await barista(headers);
      assert.equal(r.status, 403, JSON.stringify(headers));
      const body = JSON.parse(r.body) as Record<string, string>;
      assert.equal(body.success, 'false');
      assert.equal(body.error, '99');
      assert.match(body.message ?? '', /^cross-site request refused/);
    }
    // Cached Basic credentials are sent by the browser itself: they do not count.
    const withBasic = await barista({
      ...EVIL,
      authorization: basic(USER.username, USER.password),
    });
    assert.equal(withBasic.status, 403);
  });

  test('non-browser clients, same-origin pages and Bearer tokens pass', async () => {
    const curl = await barista({ 'user-agent': 'curl/8.5.0' });
    assert.equal(curl.status, 200, curl.body);
    assert.equal(JSON.parse(curl.body).success, 'true');
    const port = new URL(url).port;
    const passing: Array<Record<string, string>> = [
      { origin: `http://127.0.0.1:${port}`, 'sec-fetch-site': 'same-origin' },
      { origin: `http://127.0.0.1:${port}` },
      { 'sec-fetch-site': 'none' },
      { ...EVIL, ...CROSS, authorization: `Bearer ${TOKEN}` },
    ];
    for (const headers of passing) {
      const r = await barista(headers);
      assert.equal(r.status, 200, `${JSON.stringify(headers)}: ${r.body}`);
    }
    // Reading is not refused: a page cannot read the answer anyway (same-origin policy).
    const read = await rawRequest(url, 'GET', '/api/v1/call?eventid=nope', { ...EVIL, ...CROSS });
    assert.equal(read.status, 404);
  });

  test('Gong /messages/*: multipart and forms from another site → 403 {error, code}', async () => {
    const upload = multipart({ text: 'The building is on fire' });
    const cases: Array<[string, string, Record<string, string>, string | undefined]> = [
      ['POST', '/messages/tts/add', { 'content-type': upload.type }, upload.body],
      ['POST', '/messages/tts/add', FORM, form({ text: 'hello' })],
      ['POST', '/messages/add', { 'content-type': upload.type }, upload.body],
      ['DELETE', '/messages/1', {}, undefined],
    ];
    for (const [method, path, headers, body] of cases) {
      for (const browser of [EVIL, CROSS]) {
        const r = await rawRequest(url, method, path, { ...headers, ...browser }, body);
        assert.equal(r.status, 403, `${method} ${path} ${JSON.stringify(browser)}: ${r.body}`);
        const answer = JSON.parse(r.body) as Record<string, string>;
        assert.equal(answer.code, 'cross_site');
        assert.match(answer.error ?? '', /^cross-site request refused/);
      }
    }
    const curl = await rawRequest(url, 'POST', '/messages/tts/add', FORM, form({ text: 'hello' }));
    assert.equal(curl.status, 200, curl.body);
  });

  test('CTI POST and the event stream (even GET) refuse cross-site; push refuses every route', async () => {
    const cti = await rawRequest(
      url,
      'POST',
      '/api/cti/call_form_result',
      { ...FORM, ...EVIL },
      form({ user_id: '1' }),
    );
    assert.equal(cti.status, 403);
    assert.equal(JSON.parse(cti.body).error, 'cross_site');
    const events = await rawRequest(url, 'GET', '/api/events', CROSS);
    assert.equal(events.status, 403);
    assert.equal(JSON.parse(events.body).statusCode, 403);
    for (const [path, fields, headers] of [
      ['/api/incoming-call/', { sip_user_id: PUSH_USER.sip, phonenumber: '0612345678' }, {}],
      ['/api/call-response/', { unique_key: 'abc', message_start_time: '1' }, {}],
      [
        '/api/apns-device/',
        { sip_user_id: PUSH_USER.sip, token: 'x', app: 'com.example' },
        { authorization: basic(PUSH_USER.username, PUSH_USER.password) },
      ],
    ] as Array<[string, Record<string, string>, Record<string, string>]>) {
      const r = await rawRequest(url, 'POST', path, { ...FORM, ...EVIL, ...headers }, form(fields));
      assert.equal(r.status, 403, path);
      assert.equal(r.body, 'forbidden');
    }
    // The PBX (no browser headers) still gets its answer.
    const pbx = await rawRequest(
      url,
      'POST',
      '/api/incoming-call/',
      FORM,
      form({ sip_user_id: PUSH_USER.sip, phonenumber: '0612345678' }),
    );
    assert.equal(pbx.status, 200);
    assert.match(pbx.body, /^status=/);
  });
});
