// The service's own HTTP routes on the in-process bus: CTI events (validation, access
// rule), /api/events binding keys, OpenAPI; and webhooks fed from the engine.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import type { BusMessage } from '../../src/bus/bus.ts';
import { createService, type Service } from '../../src/serve/service.ts';
import { verifySignature } from '../../src/sinks/webhook.ts';
import { fakePbx, fixtureEvents, readSse, testConfig, until } from './helpers.ts';

const XIVO = 'ca7f87e9-c2c8-5fad-ba1b-c3140ebb9be3';

describe('serve HTTP routes (in-process bus)', () => {
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  async function start(yaml = ''): Promise<{ service: Service; url: string }> {
    const service = createService({ config: testConfig({}, yaml), sseKeepAliveMs: 50 });
    cleanups.push(() => service.stop());
    const { url } = await service.start();
    return { service, url };
  }

  const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });

  test('CTI events are validated and published with the seed routing keys', async () => {
    const { service, url } = await start();
    const got: [string, BusMessage][] = [];
    service.context?.bus.subscribe('#', (message, key) => {
      got.push([key, message]);
    });
    assert.equal((await fetch(`${url}/readyz`)).status, 200, 'no AMI configured: ready');

    const ok = await post(`${url}/api/cti/user_status_update`, {
      user_id: 42,
      xivo_id: XIVO,
      status: 'busy',
    });
    assert.equal(ok.status, 202);
    assert.deepEqual(await ok.json(), { routing_key: 'status.user', name: 'user_status_update' });
    const chat = await post(`${url}/api/cti/chat_message_event`, {
      alias: 'alice',
      to: [XIVO, 7],
      from: [XIVO, 42],
      msg: 'hi',
    });
    assert.equal(chat.status, 202);
    const form = await post(`${url}/api/cti/call_form_result`, {
      user_id: 1,
      variables: { a: 'b' },
    });
    assert.equal(form.status, 202);
    await until(() => got.length >= 3, 'three messages');
    assert.deepEqual(
      got.map(([key]) => key),
      ['status.user', `chat.message.${XIVO}.7`, 'call_form_result'],
    );
    assert.deepEqual(got[0]?.[1], {
      name: 'user_status_update',
      origin_uuid: service.context?.config.instance.uuid,
      data: { user_id: 42, xivo_id: XIVO, status: 'busy' },
    });

    const bad = await post(`${url}/api/cti/user_status_update`, { user_id: 'x', status: '' });
    assert.equal(bad.status, 400);
    const reasons = (await bad.json()) as { errors: string[]; message: string };
    assert.ok(
      reasons.errors.some((e) => e.includes('/user_id')),
      reasons.message,
    );
    assert.ok(
      reasons.errors.some((e) => e.includes('xivo_id')),
      reasons.message,
    );
    const extra = await post(`${url}/api/cti/call_form_result`, {
      user_id: 1,
      variables: {},
      oops: 1,
    });
    assert.equal(extra.status, 400);
    assert.match(((await extra.json()) as { message: string }).message, /oops/);
    const badUuid = await post(`${url}/api/cti/chat_message_event`, {
      alias: 'a',
      to: ['not-a-uuid', 7],
      from: [XIVO, 1],
      msg: 'x',
    });
    assert.equal(badUuid.status, 400);
    const unknown = await post(`${url}/api/cti/agent_status_update`, {});
    assert.equal(unknown.status, 400);
    const notJson = await fetch(`${url}/api/cti/call_form_result`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{',
    });
    assert.equal(notJson.status, 400);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(got.length, 3, 'nothing invalid was published');
  });

  test('the access rule applies: a token is required when loopback is not allowed', async () => {
    const token = 'cti-token-0123456789abcdef';
    const { url } = await start(
      `auth:\n  allowLoopback: false\n  tokens:\n    - {name: crm, token: ${token}, modules: [cti]}\n`,
    );
    const body = { user_id: 1, variables: {} };
    const anonymous = await post(`${url}/api/cti/call_form_result`, body);
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /Bearer/);
    const wrong = await post(`${url}/api/cti/call_form_result`, body, {
      authorization: 'Bearer wrong-token-0123456789',
    });
    assert.equal(wrong.status, 401);
    const good = await post(`${url}/api/cti/call_form_result`, body, {
      authorization: `Bearer ${token}`,
    });
    assert.equal(good.status, 202);
    // The token is for `cti` only: the event stream refuses it.
    const events = await fetch(`${url}/api/events`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(events.status, 403);
  });

  test('/api/events: malformed binding keys are 400 naming the key; a valid one streams', async () => {
    const { service, url } = await start();
    for (const key of ['call*', 'a..b', '.call', 'call.#x', '', 'ca ll']) {
      const res = await fetch(`${url}/api/events?bind=${encodeURIComponent(key)}`);
      assert.equal(res.status, 400, `binding key ${JSON.stringify(key)}`);
      const body = (await res.json()) as { message: string; field: string };
      assert.match(body.message, /binding key/);
      assert.equal(body.field, 'querystring.bind');
    }
    const mixed = await fetch(`${url}/api/events?bind=call.%23&bind=a..b`);
    assert.equal(mixed.status, 400);

    const sse = await readSse(`${url}/api/events?bind=status.*`);
    cleanups.push(() => sse.close());
    assert.equal(sse.status, 200);
    await until(() => sse.ready, 'ready');
    await post(`${url}/api/cti/user_status_update`, { user_id: 1, xivo_id: XIVO, status: 'away' });
    await post(`${url}/api/cti/call_form_result`, { user_id: 1, variables: {} });
    await sse.until((ms) => ms.length >= 1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(
      sse.messages.map((m) => m.routing_key),
      ['status.user'],
    );
    // Stop ends open streams (graceful shutdown does not wait for them).
    await service.stop();
    await sse.ended;
  });

  test('OpenAPI documents the routes', async () => {
    const { url } = await start();
    const doc = (await (await fetch(`${url}/docs/json`)).json()) as {
      paths: Record<string, unknown>;
    };
    assert.ok(doc.paths['/api/cti/{event}'], 'CTI route documented');
    assert.ok(doc.paths['/api/events'], 'event stream documented');
  });

  test('webhooks: call events POSTed, filtered by routing-key pattern, signed', async () => {
    const received: { body: string; headers: IncomingMessage['headers'] }[] = [];
    const hook = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        received.push({ body, headers: req.headers });
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => hook.close(resolve)));
    const port = (hook.address() as { port: number }).port;
    const pbx = await fakePbx();
    cleanups.push(() => pbx.close());
    const secret = 'webhook-secret-xyz';
    const yaml = `webhooks:\n  endpoints:\n    - {url: "http://127.0.0.1:${port}/hook", secret: ${secret}, events: [call.hangup, call.up]}\n`;
    const config = testConfig({ ami: [pbx.url] }, yaml);
    const service = createService({ config });
    cleanups.push(() => service.stop());
    await service.start();
    await until(() => service.context?.ami.clients[0]?.connected === true, 'AMI connected');
    await new Promise((resolve) => setTimeout(resolve, 50));
    pbx.send(fixtureEvents('simple/ab_success_a_hangup'));
    await until(() => received.length >= 2, 'two deliveries');
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(
      received.map((r) => (JSON.parse(r.body) as { event: string }).event),
      ['up', 'hangup'],
    );
    for (const r of received) {
      assert.ok(
        verifySignature({
          secret,
          body: r.body,
          signature: r.headers['x-switchboard-signature'] as string,
          timestamp: r.headers['x-switchboard-timestamp'] as string,
        }),
      );
    }
  });

  test('webhooks: events by kind ([hangup]), by pattern ([call.up]), and [] = every call event', async () => {
    const received = new Map<string, string[]>();
    const hook = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        const list = received.get(req.url ?? '') ?? [];
        list.push((JSON.parse(body) as { event: string }).event);
        received.set(req.url ?? '', list);
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => hook.close(resolve)));
    const port = (hook.address() as { port: number }).port;
    const pbx = await fakePbx();
    cleanups.push(() => pbx.close());
    const base = `http://127.0.0.1:${port}`;
    const yaml = [
      'webhooks:',
      '  endpoints:',
      `    - {url: "${base}/kind", name: kind, events: [hangup]}`,
      `    - {url: "${base}/pattern", name: pattern, events: [call.up]}`,
      `    - {url: "${base}/all", name: all, events: []}`,
      `    - {url: "${base}/default", name: default}`,
      '',
    ].join('\n');
    const config = testConfig({ ami: [pbx.url] }, yaml);
    const reported: string[] = [];
    const service = createService({
      config,
      reporter: { onCallEvent: (event) => void reported.push(event.event) },
    });
    cleanups.push(() => service.stop());
    await service.start();
    await until(() => service.context?.ami.clients[0]?.connected === true, 'AMI connected');
    pbx.send(fixtureEvents('simple/ab_success_a_hangup'));
    const got = (path: string) => received.get(path) ?? [];
    await until(
      () =>
        got('/kind').length > 0 &&
        got('/pattern').length > 0 &&
        got('/all').includes('hangup') &&
        got('/default').includes('hangup'),
      'deliveries to the four endpoints',
    );
    assert.ok(reported.length > 2, `call events: ${reported.join(', ')}`);
    assert.deepEqual(got('/kind'), ['hangup']);
    assert.deepEqual(got('/pattern'), ['up']);
    assert.deepEqual(got('/all'), reported);
    assert.deepEqual(got('/default'), reported);
  });

  test('webhooks: an events entry that is neither a kind nor a pattern is refused naming it', () => {
    const config = testConfig(
      {},
      'webhooks:\n  endpoints:\n    - {url: "http://127.0.0.1:1/", events: [up, hangpu]}\n',
    );
    assert.throws(
      () => createService({ config }),
      (error: Error) =>
        /webhooks\.endpoints\[0\]\.events\[1\]/.test(error.message) &&
        /"hangpu" is not a call event kind/.test(error.message),
    );
  });

  test('a bad webhook pattern or duplicate AMI names are refused naming the key', () => {
    const config = testConfig(
      { ami: ['tcp://a:b@127.0.0.1:5038', 'tcp://a:b@127.0.0.1:5038'] },
      'webhooks:\n  endpoints:\n    - {url: "http://127.0.0.1:1/", events: ["call*"]}\n',
    );
    assert.throws(
      () => createService({ config }),
      (error: Error) =>
        /webhooks\.endpoints\[0\]\.events\[0\]/.test(error.message) &&
        /ami\.servers\[1\]\.name/.test(error.message),
    );
  });
});

describe('serve with the embedded PBX simulator', () => {
  test('replays the demo recording: call events flow on the in-process bus and to the reporter', async () => {
    const config = testConfig({}, 'simulator:\n  enabled: true\n  listen: "127.0.0.1:0"\n');
    const printed: string[] = [];
    const service = createService({
      config,
      reporter: { onCallEvent: (event) => void printed.push(event.event) },
    });
    try {
      const { url } = await service.start();
      const seen: string[] = [];
      service.context?.bus.subscribe('call.#', (_message, key) => {
        seen.push(key);
      });
      await until(() => seen.includes('call.up'), 'a call answered on the bus', 15_000);
      assert.ok(printed.includes('up'), 'the extra reporter got the events');
      assert.equal((await fetch(`${url}/readyz`)).status, 200);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      assert.match(metrics, /switchboard_ami_connected\{server="simulator"\} 1/);
    } finally {
      await service.stop();
    }
  });

  test('an extra reporter that rejects: one warning per event, with the event kind and server', async () => {
    const config = testConfig({}, 'simulator:\n  enabled: true\n  listen: "127.0.0.1:0"\n');
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino(
      { level: 'warn' },
      { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
    );
    const service = createService({
      config,
      logger,
      reporter: {
        onCallEvent: async (event) => {
          if (event.event === 'up') throw new Error('printer gone');
        },
      },
    });
    try {
      await service.start();
      const failed = () =>
        lines.filter((line) => /extra reporter/.test(String(line.msg)) && line.event === 'up');
      await until(() => failed().length > 0, 'the warning about the failed reporter', 15_000);
      const [line] = failed();
      assert.equal(line?.server, 'simulator');
      assert.match(JSON.stringify(line?.err), /printer gone/);
    } finally {
      await service.stop();
    }
  });
});
