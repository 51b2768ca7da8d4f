// Every route of every API of a running `serve` process (real HTTP), fed a table of hostile
// inputs: wrong types, arrays for scalars, huge numbers, NaN, empty bodies, wrong content
// types, duplicate form keys, malformed multipart, invalid UTF-8, deep JSON, prototype keys,
// header injection, path traversal in ids. No answer may be 5xx (or a dropped connection),
// and every error is in its API's documented shape. The cases of issue 10 are then checked
// one by one: 400 naming the field.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type RunningCli, startCli } from '../support/cli.ts';
import { form, PUSH_USER, type RawAnswer, rawRequest, serveConfigYaml } from '../support/http.ts';
import { freePort, until } from './helpers.ts';

const ENTRY = join(import.meta.dirname, 'cli-entry.ts');
const XIVO = 'ca7f87e9-c2c8-5fad-ba1b-c3140ebb9be3';
const PUSH_AUTH = `Basic ${Buffer.from(`${PUSH_USER.username}:${PUSH_USER.password}`).toString('base64')}`;

type Api = 'barista' | 'gong' | 'push' | 'switchboard';

/** A route and a body every field of which is valid, so one hostile field is what fails. */
interface Route {
  api: Api;
  method: string;
  path: string;
  fields?: Record<string, unknown>;
  headers?: Record<string, string>;
  multipart?: boolean;
}

const ROUTES: Route[] = [
  {
    api: 'barista',
    method: 'POST',
    path: '/api/v1/call',
    fields: {
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
    },
  },
  {
    api: 'gong',
    method: 'POST',
    path: '/messages/tts/add',
    fields: { text: 'hi', extension: '100', start: '', description: 'd', language: 'en' },
  },
  {
    api: 'gong',
    method: 'POST',
    path: '/messages/add',
    fields: { extension: '100', start: '', description: 'd' },
    multipart: true,
  },
  {
    api: 'switchboard',
    method: 'POST',
    path: '/api/cti/call_form_result',
    fields: { user_id: 1, variables: { a: 'b' } },
  },
  {
    api: 'switchboard',
    method: 'POST',
    path: '/api/cti/user_status_update',
    fields: { user_id: 1, xivo_id: XIVO, status: 'away' },
  },
  {
    api: 'switchboard',
    method: 'POST',
    path: '/api/cti/chat_message_event',
    fields: { alias: 'a', to: [XIVO, 7], from: [XIVO, 1], msg: 'hi' },
  },
  {
    api: 'push',
    method: 'POST',
    path: '/api/incoming-call/',
    fields: {
      sip_user_id: PUSH_USER.sip,
      phonenumber: '0612345678',
      caller_id: 'Bob',
      call_id: 'c1',
    },
  },
  {
    api: 'push',
    method: 'POST',
    path: '/api/call-response/',
    fields: { unique_key: 'abc', message_start_time: '1700000000.5', available: 'true' },
  },
  ...['apns-device', 'gcm-device', 'android-device'].flatMap((device): Route[] => [
    {
      api: 'push',
      method: 'POST',
      path: `/api/${device}/`,
      headers: { authorization: PUSH_AUTH },
      fields: {
        sip_user_id: PUSH_USER.sip,
        token: 'tok',
        app: 'com.example.app',
        name: 'n',
        os_version: '1',
        client_version: '1',
        sandbox: 'false',
      },
    },
    {
      api: 'push',
      method: 'DELETE',
      path: `/api/${device}/`,
      headers: { authorization: PUSH_AUTH },
      fields: { sip_user_id: PUSH_USER.sip, token: 'tok', app: 'com.example.app' },
    },
  ]),
  {
    api: 'push',
    method: 'POST',
    path: '/api/hangup-reason/',
    headers: { authorization: PUSH_AUTH },
    fields: { sip_user_id: PUSH_USER.sip, unique_key: 'abc', reason: 'declined' },
  },
  {
    api: 'push',
    method: 'POST',
    path: '/api/log-metrics/',
    headers: { authorization: PUSH_AUTH },
    fields: {
      sip_user_id: PUSH_USER.sip,
      os: 'android',
      direction: 'incoming',
      call_setup_successful: 'true',
    },
  },
  {
    api: 'push',
    method: 'POST',
    path: '/api/check-in/',
    headers: { authorization: PUSH_AUTH },
    fields: { sip_user_id: PUSH_USER.sip, token: 'tok', app: 'com.example.app' },
  },
];

/** Hostile values for one field (JSON bodies). */
const HOSTILE_VALUES: unknown[] = [
  {},
  { value: 'x' },
  [],
  ['a', 'b'],
  null,
  true,
  0,
  -1,
  1.5,
  1e308,
  Number.MAX_SAFE_INTEGER + 2,
  'NaN',
  'Infinity',
  '-0',
  '',
  ' ',
  '9'.repeat(400),
  'x'.repeat(20_000),
  'a\r\nX-Injected: 1',
  'a\u0000b',
  '\u001b[31mred',
  '../../../../etc/passwd',
  '/etc/passwd',
  '%00',
  '$(id)',
  '`id`',
  '"; id; echo "',
  "' OR 1=1 --",
  '\uFFFD',
  '😀'.repeat(50),
  '\u202Eevil',
  '__proto__',
  '+31900123456@pstn-trunk',
  'PJSIP/100&Local/1@default',
];

/** Hostile raw values for one form field (written into the body as is). */
const HOSTILE_FORM = ['%FF', '%C3%28', '%', '%0D%0AX-Injected:%201', '%00', '%E2%80%AE'];

interface Case {
  route: Route;
  label: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
}

const boundary = 'sbhostile0123456789';

function multipartBody(fields: Record<string, unknown>, file = true): string {
  let out = '';
  for (const [name, value] of Object.entries(fields)) {
    out += `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${String(value)}\r\n`;
  }
  if (file) {
    out += `--${boundary}\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\nRIFF....WAVEfmt \r\n`;
  }
  return `${out}--${boundary}--\r\n`;
}

const MULTIPART = `multipart/form-data; boundary=${boundary}`;
const JSON_TYPE = { 'content-type': 'application/json' };
const FORM_TYPE = { 'content-type': 'application/x-www-form-urlencoded' };

/** Text for a form value: strings as is, anything else as JSON. */
const formText = (value: unknown) => (typeof value === 'string' ? value : JSON.stringify(value));

function bodyCases(route: Route): Case[] {
  const base = route.fields ?? {};
  const headers = route.headers ?? {};
  const c = (label: string, extra: Record<string, string>, body?: string | Buffer): Case => ({
    route,
    label,
    method: route.method,
    path: route.path,
    headers: { ...headers, ...extra },
    ...(body === undefined ? {} : { body }),
  });
  const deep = `${'['.repeat(20_000)}${']'.repeat(20_000)}`;
  const deepField = `{"x":${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}}`;
  const cases: Case[] = [
    c('no body, no content-type', {}),
    c('empty JSON body', JSON_TYPE, ''),
    c('empty form body', FORM_TYPE, ''),
    c('JSON null', JSON_TYPE, 'null'),
    c('JSON array', JSON_TYPE, '[1,2]'),
    c('JSON string', JSON_TYPE, '"text"'),
    c('JSON huge number', JSON_TYPE, '1e999'),
    c('JSON object empty', JSON_TYPE, '{}'),
    c('JSON truncated', JSON_TYPE, '{"a":'),
    c('JSON 20,000 deep array', JSON_TYPE, deep),
    c('JSON 20,000 deep field', JSON_TYPE, deepField),
    c(
      'JSON __proto__',
      JSON_TYPE,
      JSON.stringify({ ...base }).replace('{', '{"__proto__":{"admin":true},'),
    ),
    c('JSON constructor.prototype', JSON_TYPE, '{"constructor":{"prototype":{"admin":true}}}'),
    c(
      'JSON invalid UTF-8',
      JSON_TYPE,
      Buffer.concat([Buffer.from('{"x":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]),
    ),
    c(
      'JSON charset utf-16',
      { 'content-type': 'application/json; charset=utf-16' },
      JSON.stringify(base),
    ),
    c('text/plain', { 'content-type': 'text/plain' }, 'hello'),
    c('text/plain invalid UTF-8', { 'content-type': 'text/plain' }, Buffer.from([0xc3, 0x28])),
    c('application/xml', { 'content-type': 'application/xml' }, '<a/>'),
    c('content-type garbage', { 'content-type': ';;;' }, 'x'),
    c('multipart, no boundary', { 'content-type': 'multipart/form-data' }, 'x'),
    c('multipart, empty boundary', { 'content-type': 'multipart/form-data; boundary=' }, 'x'),
    c(
      'multipart, 300-char boundary',
      { 'content-type': `multipart/form-data; boundary=${'b'.repeat(300)}` },
      'x',
    ),
    c(
      'multipart, broken body',
      { 'content-type': MULTIPART },
      `--${boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\nhel`,
    ),
    c('multipart, no parts', { 'content-type': MULTIPART }, `--${boundary}--\r\n`),
    c(
      'multipart, bad part header',
      { 'content-type': MULTIPART },
      `--${boundary}\r\nContent-Disposition\r\n\r\nx\r\n--${boundary}--\r\n`,
    ),
    c(
      'multipart, JSON part',
      { 'content-type': MULTIPART },
      `--${boundary}\r\nContent-Disposition: form-data; name="text"\r\nContent-Type: application/json\r\n\r\n{"value":"x"}\r\n--${boundary}--\r\n`,
    ),
    c(
      'multipart, __proto__ field',
      { 'content-type': MULTIPART },
      multipartBody({ __proto__x: 1, ['__proto__']: 'x' }),
    ),
    c(
      'multipart, invalid UTF-8 field',
      { 'content-type': MULTIPART },
      Buffer.concat([
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\n`),
        Buffer.from([0xff]),
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]),
    ),
    c('form of 20,000 empty pairs', FORM_TYPE, '&'.repeat(20_000)),
    c(
      'form __proto__ / constructor',
      FORM_TYPE,
      '__proto__=x&constructor=y&toString=z&hasOwnProperty=w',
    ),
    c('form, body over the limit', FORM_TYPE, `x=${'a'.repeat(1_100_000)}`),
  ];
  for (const [name, value] of Object.entries(base)) {
    for (const hostile of HOSTILE_VALUES) {
      cases.push(
        c(
          `JSON ${name}=${formText(hostile).slice(0, 30)}`,
          JSON_TYPE,
          JSON.stringify({ ...base, [name]: hostile }),
        ),
      );
    }
    const rest = Object.entries(base).filter(([k]) => k !== name);
    const restForm = form(Object.fromEntries(rest.map(([k, v]) => [k, formText(v)])));
    for (const raw of HOSTILE_FORM) {
      cases.push(c(`form ${name}=${raw}`, FORM_TYPE, `${restForm}&${name}=${raw}`));
    }
    cases.push(
      c(
        `form ${name} twice`,
        FORM_TYPE,
        `${restForm}&${form({ [name]: [formText(value), formText(value)] })}`,
      ),
    );
    cases.push(c(`form ${name}[]`, FORM_TYPE, `${restForm}&${name}%5B%5D=x`));
    cases.push(
      c(
        `form ${name} raw 0xFF`,
        FORM_TYPE,
        Buffer.concat([Buffer.from(`${restForm}&${name}=`), Buffer.from([0xff])]),
      ),
    );
    if (route.multipart || route.path === '/messages/tts/add') {
      cases.push(
        c(
          `multipart ${name} twice`,
          { 'content-type': MULTIPART },
          multipartBody({ ...base, [name]: value }).replace(
            `--${boundary}\r\n`,
            `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\nagain\r\n--${boundary}\r\n`,
          ),
        ),
      );
      for (const hostile of HOSTILE_VALUES.filter((v) => typeof v === 'string')) {
        cases.push(
          c(
            `multipart ${name}=${String(hostile).slice(0, 30)}`,
            { 'content-type': MULTIPART },
            multipartBody({ ...base, [name]: hostile }, route.multipart === true),
          ),
        );
      }
    }
  }
  return cases;
}

/** Hostile paths, query strings, methods and headers. */
function urlCases(): Case[] {
  const get = (
    api: Api,
    path: string,
    headers: Record<string, string> = {},
    method = 'GET',
  ): Case => ({
    route: { api, method, path },
    label: `${method} ${path.slice(0, 60)}`,
    method,
    path,
    headers,
  });
  const cases: Case[] = [];
  for (const id of [
    '1',
    '0',
    '-1',
    '1e3',
    '0x10',
    '%201',
    '99999999999999999999',
    '..%2F..%2Fetc%2Fpasswd',
    '..',
    '%00',
    '%FF',
    '%E0%A4%A',
    'a'.repeat(500),
    '1;DROP%20TABLE%20x',
    '__proto__',
  ]) {
    cases.push(get('gong', `/messages/${id}`, {}, 'DELETE'));
  }
  for (const query of [
    '',
    '?all=1',
    '?all[]=1',
    '?all=%FF',
    '?all=1&all=2',
    `?${'x=1&'.repeat(500)}`,
  ]) {
    cases.push(get('gong', `/messages${query}`));
  }
  for (const query of [
    '',
    '?eventid=',
    '?eventid=a&eventid=b',
    '?eventid[]=a',
    '?eventid=%FF',
    '?eventid=../../x',
    `?eventid=${'a'.repeat(2000)}`,
    '?eventid=%00',
    '?eventid=__proto__',
  ]) {
    cases.push(get('barista', `/api/v1/call${query}`));
  }
  for (const event of [
    'nope',
    '__proto__',
    'constructor',
    'toString',
    '..%2F..%2Fx',
    '%00',
    '%FF',
    'a'.repeat(500),
  ]) {
    cases.push({ ...get('switchboard', `/api/cti/${event}`, JSON_TYPE, 'POST'), body: '{}' });
  }
  for (const query of [
    '?bind=',
    '?bind=%FF',
    '?bind=a..b',
    `?bind=${'#.'.repeat(200)}`,
    `?${'bind=a&'.repeat(40)}`,
    '?bind[]=a',
    '?bind=%00',
  ]) {
    cases.push(get('switchboard', `/api/events${query}`));
  }
  // The operations routes and the OpenAPI UI (static files: traversal stays inside).
  for (const path of [
    '/healthz?x=%FF',
    '/readyz',
    '/metrics?name[]=x',
    '/docs/json',
    '/docs/static/..%2F..%2F..%2Fpackage.json',
    '/docs/static/%2e%2e/%2e%2e/package.json',
    '/docs/%00',
    '/%2e%2e/%2e%2e/etc/passwd',
  ]) {
    cases.push(get('switchboard', path));
  }
  // Methods a route does not have, unknown paths under each API.
  for (const [api, path] of [
    ['barista', '/api/v1/call'],
    ['barista', '/api/v1/call/x/../../etc'],
    ['gong', '/messages/add'],
    ['gong', '/messages/1/x'],
    ['push', '/api/incoming-call/'],
    ['push', '/api/apns-device/x'],
    ['switchboard', '/api/cti/call_form_result'],
    ['switchboard', '/api/nothing'],
  ] as Array<[Api, string]>) {
    for (const method of ['PUT', 'PATCH', 'OPTIONS', 'TRACE'])
      cases.push(get(api, path, {}, method));
  }
  // Authorization headers of every broken kind.
  for (const authorization of [
    'Bearer',
    'Bearer ',
    'Basic',
    'Basic !!!',
    `Basic ${Buffer.from('nocolon').toString('base64')}`,
    `Basic ${Buffer.from('\u0000:\u0000').toString('base64')}`,
    `Bearer ${'x'.repeat(6000)}`,
    'Digest x',
    'Negotiate AAAA',
  ]) {
    cases.push({
      ...get('barista', '/api/v1/call?eventid=x', { authorization }),
      label: `Authorization ${authorization.slice(0, 20)}`,
    });
    cases.push({
      ...get('push', '/api/check-in/', { authorization, ...FORM_TYPE }, 'POST'),
      body: form({ sip_user_id: PUSH_USER.sip }),
    });
  }
  // Host headers that would end up in the push payload's response_api.
  for (const host of ['evil.example/../x', 'a b', '[::1', 'x:99999999', '"><script>', '']) {
    cases.push({
      ...get('push', '/api/incoming-call/', { host, ...FORM_TYPE }, 'POST'),
      body: form({ sip_user_id: PUSH_USER.sip, phonenumber: '0612345678' }),
      label: `Host ${JSON.stringify(host)}`,
    });
  }
  return cases;
}

const PUSH_MESSAGES = new Set([
  'bad request',
  'unauthorized',
  'forbidden',
  'not found',
  'method not allowed',
  'payload too large',
  'unsupported media type',
  'service unavailable',
]);

/** Checks an error answer against its API's documented shape; returns the parsed body. */
function assertShape(api: Api, answer: RawAnswer, label: string): Record<string, unknown> | string {
  const where = `${label}: ${answer.status} ${answer.body.slice(0, 200)}`;
  if (api === 'push') {
    assert.match(String(answer.headers['content-type']), /^text\/plain/, where);
    assert.ok(PUSH_MESSAGES.has(answer.body), where);
    return answer.body;
  }
  assert.match(String(answer.headers['content-type']), /^application\/json/, where);
  const body = JSON.parse(answer.body) as Record<string, unknown>;
  if (api === 'barista') {
    assert.equal(body.success, 'false', where);
    assert.ok(['1', '2', '99'].includes(String(body.error)), where);
    assert.equal(typeof body.message, 'string', where);
    assert.deepEqual(Object.keys(body).sort(), ['error', 'message', 'success'], where);
  } else if (api === 'gong') {
    assert.equal(typeof body.error, 'string', where);
    assert.equal(typeof body.code, 'string', where);
    for (const key of Object.keys(body)) assert.ok(['error', 'code', 'field'].includes(key), where);
  } else {
    assert.equal(typeof body.error, 'string', where);
    assert.equal(typeof body.message, 'string', where);
    assert.equal(body.statusCode, answer.status, where);
  }
  return body;
}

describe('hostile input to every route of a running serve', () => {
  let serve: RunningCli;
  let url: string;
  before(async () => {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'sb-hostile-'));
    const file = join(dir, 'switchboard.yaml');
    writeFileSync(file, serveConfigYaml('log:\n  level: error\n', `127.0.0.1:${port}`));
    serve = startCli(['serve', '--config', file], [process.execPath, ENTRY]);
    url = `http://127.0.0.1:${port}`;
    await until(
      async () => (await fetch(`${url}/healthz`).catch(() => undefined))?.status === 200,
      'serve listening',
      30_000,
    );
  });
  after(async () => {
    serve.child.kill('SIGTERM');
    await serve.exited;
  });

  async function send(c: Case): Promise<RawAnswer> {
    try {
      return await rawRequest(url, c.method, c.path, c.headers, c.body, {
        headOnly: c.path.startsWith('/api/events'),
      });
    } catch (error) {
      throw new Error(
        `${c.route.api} ${c.method} ${c.path} [${c.label}]: ${(error as Error).message}`,
      );
    }
  }

  test('no answer is 5xx, every error is in its API shape', async () => {
    const cases = [...ROUTES.flatMap(bodyCases), ...urlCases()];
    const statuses = new Map<number, number>();
    for (const c of cases) {
      const answer = await send(c);
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      const label = `${c.route.api} ${c.method} ${c.path.slice(0, 60)} [${c.label}]`;
      assert.ok(
        answer.status >= 200 && answer.status < 500,
        `${label}: ${answer.status} ${answer.body.slice(0, 300)}`,
      );
      if (/\.\.|%2e%2e/i.test(c.path)) {
        assert.ok(answer.status >= 400, `${label}: a traversal answered ${answer.status}`);
      }
      if (answer.status >= 400) {
        assertShape(c.route.api, answer, label);
      }
    }
    assert.ok(cases.length > 1000, `${cases.length} cases`);
    assert.ok((statuses.get(400) ?? 0) > 500, JSON.stringify([...statuses]));
    // Nothing was logged as a failure of the server.
    assert.doesNotMatch(serve.stdout(), /"level":50/, serve.stdout().slice(0, 2000));
  });

  test('the cases of issue 10: 400 naming the field', async () => {
    const expect400 = async (c: Omit<Case, 'route' | 'label'>, api: Api, field: string) => {
      const answer = await rawRequest(url, c.method, c.path, c.headers, c.body);
      const label = `${c.method} ${c.path} ${String(c.body).slice(0, 40)}`;
      assert.equal(answer.status, 400, `${label}: ${answer.body}`);
      const body = assertShape(api, answer, label) as Record<string, unknown>;
      if (api === 'barista')
        assert.match(String(body.message), new RegExp(`^${field.replace(/^body\./, '')}: `), label);
      else assert.equal(body.field, field, label);
      return body;
    };
    // Malformed multipart: broken body, no boundary.
    await expect400(
      {
        method: 'POST',
        path: '/messages/add',
        headers: { 'content-type': 'multipart/form-data' },
        body: 'x',
      },
      'gong',
      'body',
    );
    await expect400(
      {
        method: 'POST',
        path: '/messages/add',
        headers: { 'content-type': MULTIPART },
        body: `--${boundary}\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n\r\nRIFF`,
      },
      'gong',
      'body',
    );
    await expect400(
      {
        method: 'POST',
        path: '/messages/tts/add',
        headers: { 'content-type': MULTIPART },
        body: `--${boundary}\r\nContent-Dispo`,
      },
      'gong',
      'body',
    );
    // JSON start: {...} and text: {"value": ...}
    await expect400(
      {
        method: 'POST',
        path: '/messages/tts/add',
        headers: JSON_TYPE,
        body: JSON.stringify({ text: 'hi', start: { value: '2030-01-01T00:00:00' } }),
      },
      'gong',
      'body.start',
    );
    await expect400(
      {
        method: 'POST',
        path: '/messages/tts/add',
        headers: JSON_TYPE,
        body: JSON.stringify({ text: { value: 'hi' } }),
      },
      'gong',
      'body.text',
    );
    await expect400(
      { method: 'POST', path: '/messages/tts/add', headers: FORM_TYPE, body: 'text=a&text=b' },
      'gong',
      'body.text',
    );
    // Invalid UTF-8: JSON, form (raw and percent-encoded), multipart.
    await expect400(
      {
        method: 'POST',
        path: '/messages/tts/add',
        headers: JSON_TYPE,
        body: Buffer.concat([Buffer.from('{"text":"'), Buffer.from([0xff]), Buffer.from('"}')]),
      },
      'gong',
      'body',
    );
    await expect400(
      { method: 'POST', path: '/api/v1/call', headers: FORM_TYPE, body: 'hostname=%FF' },
      'barista',
      'body.hostname',
    );
    await expect400(
      {
        method: 'POST',
        path: '/api/v1/call',
        headers: FORM_TYPE,
        body: Buffer.concat([Buffer.from('message='), Buffer.from([0xc3, 0x28])]),
      },
      'barista',
      'body.message',
    );
    await expect400(
      {
        method: 'POST',
        path: '/messages/tts/add',
        headers: { 'content-type': MULTIPART },
        body: Buffer.concat([
          Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\n`),
          Buffer.from([0xff]),
          Buffer.from(`\r\n--${boundary}--\r\n`),
        ]),
      },
      'gong',
      'body.text',
    );
    // A 20,000-deep JSON body to /api/cti/{event}.
    const deep = `{"user_id":1,"variables":${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}}`;
    const cti = await expect400(
      { method: 'POST', path: '/api/cti/call_form_result', headers: JSON_TYPE, body: deep },
      'switchboard',
      'body',
    );
    assert.match(String(cti.message), /nested deeper than 32 levels/);
  });
});
